"""The demo FHIR application, driven directly through ASGI (no server)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from spinepki.provider import FHIRDemoApp

ROOT = "/A12345/STU3/1/gpconnect"
APPOINTMENT = {
    "resourceType": "Appointment",
    "status": "booked",
    "start": "2030-01-07T10:00:00+00:00",
    "end": "2030-01-07T10:10:00+00:00",
}


def call(
    app: FHIRDemoApp, method: str, path: str, body: Any = None, *, raw: bytes | None = None
) -> tuple[int, dict[bytes, bytes], Any]:
    payload = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
    sent: list[dict[str, Any]] = []
    chunks = [payload[i : i + 10] for i in range(0, len(payload), 10)] or [b""]

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": ROOT + path, "headers": []}
    asyncio.run(app(scope, receive, send))
    start, body_msg = sent
    headers = dict(start["headers"])
    return start["status"], headers, json.loads(body_msg["body"])


@pytest.fixture
def app() -> FHIRDemoApp:
    return FHIRDemoApp(max_appointments=3)


class TestReads:
    """CapabilityStatement and Patient."""

    def test_metadata(self, app: FHIRDemoApp) -> None:
        """GET /metadata is a CapabilityStatement naming Patient and Appointment."""
        status, headers, body = call(app, "GET", "/metadata")
        assert status == 200
        assert headers[b"content-type"] == b"application/fhir+json"
        assert headers[b"cache-control"] == b"no-store"
        assert body["resourceType"] == "CapabilityStatement"
        types = {r["type"] for r in body["rest"][0]["resource"]}
        assert types == {"Patient", "Appointment"}

    def test_patient(self, app: FHIRDemoApp) -> None:
        """Patient/1 exists; any other id is 404 PATIENT_NOT_FOUND."""
        assert call(app, "GET", "/Patient/1")[2]["resourceType"] == "Patient"
        status, _, body = call(app, "GET", "/Patient/2")
        assert status == 404
        assert body["issue"][0]["details"]["coding"][0]["code"] == "PATIENT_NOT_FOUND"

    def test_not_implemented(self, app: FHIRDemoApp) -> None:
        """Other paths are 501 NOT_IMPLEMENTED OperationOutcomes."""
        status, _, body = call(app, "GET", "/Slot")
        assert status == 501
        assert body["resourceType"] == "OperationOutcome"


class TestAppointments:
    """Create, read, update; invalid resources are 422; the store is bounded."""

    def test_create_read_update(self, app: FHIRDemoApp) -> None:
        """POST creates (201 + Location), GET reads it, PUT updates the version."""
        status, headers, created = call(app, "POST", "/Appointment", APPOINTMENT)
        assert status == 201
        assert headers[b"location"] == f"Appointment/{created['id']}".encode()
        assert call(app, "GET", f"/Appointment/{created['id']}")[2] == created
        changed = {**APPOINTMENT, "id": created["id"], "status": "cancelled"}
        status, _, updated = call(app, "PUT", f"/Appointment/{created['id']}", changed)
        assert status == 200
        assert (updated["status"], updated["meta"]["versionId"]) == ("cancelled", "2")

    @pytest.mark.parametrize(
        ("body", "raw"),
        [
            (None, b"{not json"),
            (None, b"\xff\xfe"),
            ([1, 2], None),
            ({"resourceType": "Patient"}, None),
            ({**APPOINTMENT, "status": "maybe"}, None),
            ({k: v for k, v in APPOINTMENT.items() if k != "end"}, None),
        ],
        ids=["not-json", "not-utf8", "array", "wrong-type", "bad-status", "no-end"],
    )
    def test_invalid_is_422(self, app: FHIRDemoApp, body: Any, raw: bytes | None) -> None:
        """A body that is not a valid Appointment is 422 INVALID_RESOURCE."""
        status, _, outcome = call(app, "POST", "/Appointment", body, raw=raw)
        assert status == 422
        assert outcome["issue"][0]["details"]["coding"][0]["code"] == "INVALID_RESOURCE"

    def test_update_unknown_and_mismatched(self, app: FHIRDemoApp) -> None:
        """PUT of an unknown id is 404; an id that differs from the URL is 422."""
        assert call(app, "PUT", "/Appointment/9", {**APPOINTMENT, "id": "9"})[0] == 404
        assert call(app, "PUT", "/Appointment/9", {**APPOINTMENT, "id": "8"})[0] == 422
        assert call(app, "GET", "/Appointment/9")[0] == 404

    def test_store_is_bounded(self, app: FHIRDemoApp) -> None:
        """Past max_appointments the oldest are forgotten."""
        ids = [call(app, "POST", "/Appointment", APPOINTMENT)[2]["id"] for _ in range(5)]
        assert call(app, "GET", f"/Appointment/{ids[0]}")[0] == 404
        assert call(app, "GET", f"/Appointment/{ids[-1]}")[0] == 200

    def test_body_too_large(self, app: FHIRDemoApp) -> None:
        """A body over 1 MiB is 413 without being kept."""
        status, _, _ = call(app, "POST", "/Appointment", raw=b" " * (1024 * 1024 + 1))
        assert status == 413


def test_lifespan_and_other_scopes(app: FHIRDemoApp) -> None:
    """Lifespan startup/shutdown are acknowledged; other scope types are ignored."""
    events = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return events.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    asyncio.run(app({"type": "lifespan"}, receive, send))
    asyncio.run(app({"type": "websocket"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
