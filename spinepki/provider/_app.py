"""A tiny GP Connect FHIR application for the reference provider and the demo.

It is deliberately small: a CapabilityStatement at ``/metadata``, a Patient read, and an
Appointment read, create and update, answering FHIR STU3 JSON. It trusts the request
gate in front of it to have checked the SSP headers, the interaction ID against the
path, the token and the scope, so it routes on the path's last segments only and works
under any service root. Appointments live in a bounded in-memory store.

It fails safe, because it is what users copy: a body is parsed with the gate's strict,
depth-bounded JSON parser and every field it reads is type-checked, so a bad body is a
422 ``INVALID_RESOURCE`` OperationOutcome, never a 500; and should a request still fail
(a bug), the answer is a 500 OperationOutcome with a fixed text and the traceback goes to
the ``spinepki.provider`` log, not to the caller.

Not a clinical system: the data are invented and nothing is persisted.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from spinepki._json import parse_json_strict
from spinepki.errors import TokenParseError

__all__ = ["FHIRDemoApp", "demo_app"]

_log = logging.getLogger("spinepki.provider")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_FHIR_JSON = b"application/fhir+json"
_OUTCOME_PROFILE = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1"
_SPINE_CODES = "https://fhir.nhs.uk/STU3/ValueSet/Spine-ErrorOrWarningCode-1"
_APPOINTMENT_STATUSES = frozenset(
    {"proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow"}
)
#: Largest body the app itself reads (the gate has its own, configured, limit).
_MAX_BODY = 1024 * 1024

_PATIENTS: dict[str, dict[str, Any]] = {
    "1": {
        "resourceType": "Patient",
        "id": "1",
        "meta": {
            "profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1"]
        },
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9658218873"}],
        "name": [{"use": "official", "family": "Demo", "given": ["Pat"]}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }
}


def _capability_statement() -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "version": "1.2.7",
        "name": "spinepki reference provider",
        "status": "active",
        "date": "2024-01-01",
        "publisher": "spinepki (demo data)",
        "kind": "instance",
        "fhirVersion": "3.0.1",
        "acceptUnknown": "both",
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "security": {"cors": False},
                "resource": [
                    {"type": "Patient", "interaction": [{"code": "read"}]},
                    {
                        "type": "Appointment",
                        "interaction": [
                            {"code": "read"},
                            {"code": "create"},
                            {"code": "update"},
                        ],
                    },
                ],
            }
        ],
    }


def operation_outcome(status: int, code: str, display: str, diagnostics: str) -> bytes:
    """A GP Connect 1.x OperationOutcome with one error issue."""
    if status == 404:
        issue_code = "not-found"
    elif status < 500:
        issue_code = "invalid"
    else:
        issue_code = "not-supported" if status == 501 else "exception"
    return _json(
        {
            "resourceType": "OperationOutcome",
            "meta": {"profile": [_OUTCOME_PROFILE]},
            "issue": [
                {
                    "severity": "error",
                    "code": issue_code,
                    "details": {
                        "coding": [{"system": _SPINE_CODES, "code": code, "display": display}]
                    },
                    "diagnostics": diagnostics,
                }
            ],
        }
    )


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


class FHIRDemoApp:
    """The demo FHIR application (pure ASGI, no framework).

    Args:
        max_appointments: most appointments kept; the oldest are forgotten first, so
            a client creating appointments in a loop cannot grow memory without bound.
    """

    __slots__ = ("_appointments", "_ids", "_lock", "_max")

    def __init__(self, *, max_appointments: int = 1000) -> None:
        self._appointments: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._max = max_appointments

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI scope (lifespan is acknowledged; only HTTP is served)."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        method: str = scope["method"]
        segments = [s for s in str(scope["path"]).split("/") if s]
        body = b""
        if method in {"POST", "PUT"}:
            read = await _read_body(receive)
            if read is None:
                await _respond(send, 413, _error(413, "the request body is too large"))
                return
            body = read
        try:
            status, payload, extra = self.handle(method, segments, body)
        except Exception:  # a bug: answer like a server, log like one, never leak it
            _log.exception("the demo application failed on %s", method)
            status, payload, extra = 500, _error(500, "the application failed"), []
        await _respond(send, status, payload, extra)

    def handle(
        self, method: str, segments: list[str], body: bytes
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Route one request by its path's last segments; returns status, body, headers."""
        tail = segments[-2:]
        if method == "GET" and segments[-1:] == ["metadata"]:
            return 200, _json(_capability_statement()), []
        if len(tail) == 2 and tail[0] == "Patient" and method == "GET":
            patient = _PATIENTS.get(tail[1])
            if patient is None:
                return 404, _error(404, "no such patient", "PATIENT_NOT_FOUND"), []
            return 200, _json(patient), []
        if segments[-1:] == ["Appointment"] and method == "POST":
            return self._create(body)
        if len(tail) == 2 and tail[0] == "Appointment":
            if method == "GET":
                with self._lock:
                    found = self._appointments.get(tail[1])
                if found is None:
                    return 404, _error(404, "no such appointment", "NO_RECORD_FOUND"), []
                return 200, _json(found), []
            if method == "PUT":
                return self._update(tail[1], body)
        return 501, _error(501, "not implemented by the demo application"), []

    def _create(self, body: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        resource, problem = _appointment(body)
        if resource is None:
            return 422, _error(422, problem), []
        with self._lock:
            new_id = str(next(self._ids))
            resource = {**resource, "id": new_id, "meta": {"versionId": "1"}}
            self._appointments[new_id] = resource
            while len(self._appointments) > self._max:
                self._appointments.popitem(last=False)
        return 201, _json(resource), [(b"location", f"Appointment/{new_id}".encode("ascii"))]

    def _update(
        self, appointment_id: str, body: bytes
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        resource, problem = _appointment(body)
        if resource is None:
            return 422, _error(422, problem), []
        if resource.get("id") != appointment_id:
            return 422, _error(422, "the resource id does not match the URL"), []
        with self._lock:
            current = self._appointments.get(appointment_id)
            if current is None:
                return 404, _error(404, "no such appointment", "NO_RECORD_FOUND"), []
            version = int(current.get("meta", {}).get("versionId", "1")) + 1
            resource = {**resource, "meta": {"versionId": str(version)}}
            self._appointments[appointment_id] = resource
        return 200, _json(resource), []


def _appointment(body: bytes) -> tuple[dict[str, Any] | None, str]:
    """The parsed Appointment, or None and why it is not a valid one.

    Every field read is type-checked before use (a list or object where a code belongs
    is a bad resource, not an exception), and the JSON is parsed with the gate's strict
    parser: at most 32 levels deep, so 100,000 nested arrays never reach the recursive
    decoder.
    """
    try:
        value = parse_json_strict(body, what="the request body")
    except TokenParseError as exc:
        return None, exc.reason
    if not isinstance(value, dict) or value.get("resourceType") != "Appointment":
        return None, "the request body is not an Appointment resource"
    status = value.get("status")
    if not isinstance(status, str) or status not in _APPOINTMENT_STATUSES:
        return None, "Appointment.status is missing or not a valid code"
    for name in ("start", "end"):
        if not isinstance(value.get(name), str):
            return None, f"Appointment.{name} is missing"
    if "id" in value and not isinstance(value["id"], str):
        return None, "Appointment.id is not a string"
    return value, ""


_DISPLAY = {
    "INVALID_RESOURCE": "Invalid validation of resource",
    "PATIENT_NOT_FOUND": "Patient record not found",
    "NO_RECORD_FOUND": "No record found",
    "NOT_IMPLEMENTED": "Not implemented",
    "BAD_REQUEST": "Bad request",
    "INTERNAL_SERVER_ERROR": "Internal server error",
}


def _error(status: int, diagnostics: str, code: str | None = None) -> bytes:
    if code is None:
        code = {422: "INVALID_RESOURCE", 500: "INTERNAL_SERVER_ERROR", 501: "NOT_IMPLEMENTED"}.get(
            status, "BAD_REQUEST"
        )
    return operation_outcome(status, code, _DISPLAY[code], diagnostics)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(
    send: Send, status: int, payload: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-type", _FHIR_JSON),
        (b"content-length", str(len(payload)).encode("ascii")),
        (b"cache-control", b"no-store"),
        *(extra or ()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


#: A ready instance (what ``provider.app = "spinepki.provider:demo_app"`` names). The
#: server builds a fresh :class:`FHIRDemoApp` per provider for the default instead, so
#: two providers in one process do not share appointments.
demo_app = FHIRDemoApp()
