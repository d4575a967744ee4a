"""The demo FHIR application, driven directly through ASGI (no server)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


class TestFailsSafe:
    """Bad bodies are 422 OperationOutcomes, never a 500 (issue 11 item 6): the reference
    application is what users copy."""

    @pytest.mark.parametrize(
        ("method", "path", "raw"),
        [
            ("POST", "/Appointment", b"[" * 100_000 + b"]" * 100_000),
            ("POST", "/Appointment", json.dumps({**APPOINTMENT, "status": ["booked"]}).encode()),
            ("POST", "/Appointment", json.dumps({**APPOINTMENT, "status": {}}).encode()),
            ("PUT", "/Appointment/1", b"{}"),
            ("PUT", "/Appointment/1", json.dumps({**APPOINTMENT, "id": ["1"]}).encode()),
            ("POST", "/Appointment", b'{"resourceType":"Appointment","start":NaN}'),
        ],
        ids=["deep-arrays", "status-list", "status-object", "empty-put", "id-list", "nan"],
    )
    def test_reported_bodies(self, app: FHIRDemoApp, method: str, path: str, raw: bytes) -> None:
        """The report's bodies (they were 500 with an empty body and a traceback)."""
        status, headers, outcome = call(app, method, path, raw=raw)
        assert status == 422
        assert headers[b"cache-control"] == b"no-store"
        assert outcome["issue"][0]["details"]["coding"][0]["code"] == "INVALID_RESOURCE"

    @given(
        method=st.sampled_from(["POST", "PUT"]),
        value=st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(["resourceType", "status", "start", "end", "id", "meta", "x"]),
                    inner,
                    max_size=6,
                )
            ),
            max_leaves=20,
        ),
        appointment_like=st.booleans(),
    )
    @settings(max_examples=300, deadline=None)
    def test_any_json_body_is_never_a_500(
        self, method: str, value: Any, appointment_like: bool
    ) -> None:
        """Any JSON value where an Appointment belongs (or mixed into one) gets 200, 201,
        404 or 422, and always a FHIR resource."""
        app = FHIRDemoApp()
        if appointment_like and isinstance(value, dict):
            value = {**APPOINTMENT, **value}
        path = "/Appointment" if method == "POST" else "/Appointment/1"
        status, _, body = call(app, method, path, raw=json.dumps(value).encode())
        assert status in {200, 201, 404, 422}
        assert body["resourceType"] in {"Appointment", "OperationOutcome"}

    @given(raw=st.binary(max_size=512))
    @settings(max_examples=200, deadline=None)
    def test_any_bytes_are_never_a_500(self, raw: bytes) -> None:
        status, _, body = call(FHIRDemoApp(), "POST", "/Appointment", raw=raw)
        assert status in {201, 422}
        assert body["resourceType"] in {"Appointment", "OperationOutcome"}

    def test_a_bug_is_a_500_outcome_without_the_traceback(
        self, app: FHIRDemoApp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Should the application still fail, the caller gets a 500 OperationOutcome with a
        fixed text, and the traceback goes to the log only."""

        def broken(*args: Any) -> Any:
            raise RuntimeError("secret detail")

        monkeypatch.setattr(FHIRDemoApp, "handle", broken)
        with caplog.at_level("ERROR", logger="spinepki.provider"):
            status, headers, body = call(app, "GET", "/metadata")
        assert status == 500
        assert headers[b"cache-control"] == b"no-store"
        assert body["issue"][0]["code"] == "exception"
        assert "secret" not in json.dumps(body)
        assert any("secret detail" in (r.exc_text or "") for r in caplog.records)
