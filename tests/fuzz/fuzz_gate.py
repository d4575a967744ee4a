"""Fuzz target: ``RequestGate.check`` (headers, interaction/path matcher, query, body) and
the WSGI middleware in front of it.

Invariants: ``check`` never raises; a decision is 200, 400, 422, 495 or 496 (never 500);
every response carries ``Cache-Control: no-store``; a rejection has an OperationOutcome
body that is JSON; no diagnostic and no audit line quotes the token, query or body
(a canary string planted in them never appears); bounded time and memory per input.

Atheris: ``python -m tests.fuzz.fuzz_gate [libFuzzer flags] [corpus]``.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from hypothesis import strategies as st

from spinepki.audit import RECORD_ATTRIBUTE, AuditLogger
from spinepki.gate import INTERACTIONS, GateDecision
from spinepki.gate._wsgi import GateWSGIMiddleware
from tests.fuzz import _samples as s
from tests.fuzz._helpers import atheris_main, fuzz_test, hypothesis_entry
from tests.gate._helpers import FOUNDATIONS, ROOTS

STATUSES = {200, 400, 422, 495, 496}
ALLOWED_STATUS_LINES = {
    "200 OK",
    "400 Bad Request",
    "422 Unprocessable Entity",
    "495 SSL Certificate Error",
    "496 SSL Certificate Required",
}
IDS = sorted({i.interaction_id for i in INTERACTIONS})
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "get", "CONNECT"]
TRICKY_SEGMENTS = [
    "",
    ".",
    "..",
    "%2e%2e",
    "%2E",
    "%2f",
    "Patient",
    "patient",
    "1",
    "1;x=y",
    "Patient;",
    "$gpc.migratestructuredrecord",
    "$gpc.getstructuredrecord",
    "metadata",
    "_history",
    "2",
    "Appointment",
    "Slot",
    "DocumentReference",
    "Binary",
    "Organization",
    "a" * 65,
    "\x00",
    "..%2f",
    "%00",
    "Patient%2F1",
    "\\",
    "~",
    s.CANARY,
]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, RECORD_ATTRIBUTE, None)
        self.lines.append(record.getMessage() + json.dumps(event, default=str))


_AUDIT_CAPTURE = _Capture()
_AUDIT_LOG = logging.getLogger("spinepki.fuzz.audit")
_AUDIT_LOG.addHandler(_AUDIT_CAPTURE)
_AUDIT_LOG.propagate = False
_AUDIT_LOG.setLevel(logging.DEBUG)


def _assert_decision(decision: GateDecision) -> None:
    assert decision.status in STATUSES, decision.status
    assert decision.status_line in ALLOWED_STATUS_LINES
    assert ("Cache-Control", "no-store") in decision.response_headers()
    assert s.CANARY not in decision.diagnostics
    if not decision.allowed:
        outcome = json.loads(decision.operation_outcome())
        assert outcome["resourceType"] == "OperationOutcome"
        assert s.CANARY not in json.dumps(outcome)


def _cert() -> Any:
    return s.pki().leaf("ssp").certificate


# -- strategies ---------------------------------------------------------------------------

segments = st.lists(st.sampled_from(TRICKY_SEGMENTS) | st.text(max_size=12), max_size=6)
paths = st.one_of(
    st.builds(
        lambda root, segs, slash: root + "/" + "/".join(segs) + ("/" if slash else ""),
        st.sampled_from([*sorted(ROOTS.values()), "", "/A12345", "/a12345/stu3/1/gpconnect"]),
        segments,
        st.booleans(),
    ),
    st.text(max_size=300),
    st.binary(max_size=300),
)
header_value = st.one_of(
    st.text(max_size=80),
    st.binary(max_size=80),
    st.sampled_from(["", " ", "a\r\nX-Injected: 1", "1,2", s.ASID, s.ASID + " ", "\t", s.CANARY]),
)


@st.composite
def ssp_header_sets(draw: st.DrawFn) -> list[tuple[Any, Any]]:
    """The valid SSP headers, then mutated: dropped, duplicated, recased, replaced, extended."""
    claims = s.v1_claims(
        requested_scope=draw(
            st.sampled_from(
                ["patient/*.read", "patient/*.write", "organization/*.read", "conf/N", s.CANARY]
            )
        )
    )
    if draw(st.booleans()):
        claims["sub"] = s.CANARY
    token = s.encode(claims)
    headers: list[tuple[Any, Any]] = list(s.ssp_headers(draw(st.sampled_from(IDS)), token))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.integers(0, 5))
        i = draw(st.integers(0, len(headers) - 1)) if headers else 0
        if not headers:
            break
        name, value = headers[i]
        if op == 0:
            del headers[i]
        elif op == 1:
            headers.append((name, value))
        elif op == 2:
            headers[i] = (str(name).swapcase() if isinstance(name, str) else name, value)
        elif op == 3:
            headers[i] = (name, draw(header_value))
        elif op == 4:
            headers[i] = (name, f"Bearer {draw(st.text(max_size=200))}{s.CANARY}")
        else:
            headers[i] = (
                name.encode() if isinstance(name, str) else name,
                value.encode("utf-8") if isinstance(value, str) else value,
            )
    extra = draw(
        st.lists(st.tuples(st.text(max_size=20) | st.binary(max_size=20), header_value), max_size=8)
    )
    return headers + extra


queries = st.one_of(
    st.none(),
    st.text(max_size=200),
    st.binary(max_size=200),
    st.builds(
        lambda system, value, extra: f"identifier={system}|{value}{extra}",
        st.sampled_from(["https://fhir.nhs.uk/Id/nhs-number", "", "x", s.CANARY]),
        st.just(s.CANARY),
        st.sampled_from(["", "&identifier=x|y", "&_format=json", "&" * 200, "%zz"]),
    ),
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=500),
    st.builds(
        lambda params: json.dumps({"resourceType": "Parameters", "parameter": params}).encode(),
        st.lists(
            st.dictionaries(
                st.sampled_from(["name", "part", "valueBoolean", "valueIdentifier", "valueString"]),
                st.none()
                | st.booleans()
                | st.text(max_size=10)
                | st.just(s.CANARY)
                | st.lists(
                    st.dictionaries(
                        st.sampled_from(["name", "valueBoolean"]),
                        st.booleans() | st.just("includeSensitiveInformation"),
                    )
                ),
            ),
            max_size=4,
        ),
    ),
)


# -- properties ---------------------------------------------------------------------------


@fuzz_test(
    st.sampled_from(METHODS) | st.text(max_size=10) | st.binary(max_size=10),
    paths,
    ssp_header_sets(),
    queries,
    bodies,
    st.booleans(),
)
def test_gate_check(
    method: Any, path: Any, headers: list[tuple[Any, Any]], query: Any, body: Any, cert: bool
) -> None:
    """Any request line, headers, query and body: a 200/400/422/496 decision, no-store."""
    decision = s.gate().check(
        method,
        path,
        headers,
        query=query,
        body=body,
        peer_cert=_cert() if cert else None,
        now=s.NOW_DT,
    )
    _assert_decision(decision)
    if not cert:
        assert decision.status == 496


@fuzz_test(st.lists(st.tuples(st.binary(max_size=40), st.binary(max_size=300)), max_size=150))
def test_gate_random_header_pairs(pairs: list[tuple[bytes, bytes]]) -> None:
    """Random raw header pairs alone (no valid request): a 400, never an exception."""
    decision = s.gate().check(
        "GET", FOUNDATIONS + "/metadata", pairs, peer_cert=_cert(), now=s.NOW_DT
    )
    _assert_decision(decision)
    assert decision.status == 400


# -- through the WSGI middleware ----------------------------------------------------------


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response(
        "200 OK",
        [("Content-Type", "application/fhir+json"), ("Cache-Control", "public, max-age=60")],
    )
    return [b"{}"]


MIDDLEWARE = GateWSGIMiddleware(
    _app, gate=s.gate(), audit=AuditLogger(_AUDIT_LOG), clock=lambda: s.NOW_DT
)


@fuzz_test(
    st.sampled_from(METHODS),
    paths.filter(lambda p: isinstance(p, str)),
    st.text(max_size=200),
    ssp_header_sets(),
    st.one_of(st.none(), st.text(max_size=12), st.just("99999999999999999999")),
    st.binary(max_size=300),
    st.sampled_from(["", "(null)", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n"]),
)
def test_wsgi_middleware(
    method: str,
    path: str,
    query: str,
    headers: list[tuple[Any, Any]],
    length: str | None,
    body: bytes,
    client_cert: str,
) -> None:
    """Any request through the WSGI middleware: never 500, always no-store, nothing leaked."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(body),
        "SSL_CLIENT_CERT": client_cert or s.chain_pem().decode(),
    }
    if length is not None:
        environ["CONTENT_LENGTH"] = length
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name
        value = raw_value.decode("latin-1") if isinstance(raw_value, bytes) else raw_value
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, hdrs: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append((status, hdrs))
        return lambda data: None

    _AUDIT_CAPTURE.lines.clear()
    body_out = b"".join(MIDDLEWARE(environ, start_response))
    [(status, hdrs)] = seen
    assert status in ALLOWED_STATUS_LINES, status
    cache = [v for k, v in hdrs if k.lower() == "cache-control"]
    assert len(cache) == 1
    assert "no-store" in cache[0]
    assert s.CANARY.encode() not in body_out
    assert all(s.CANARY not in line for line in _AUDIT_CAPTURE.lines), _AUDIT_CAPTURE.lines


def _atheris_seeds() -> list[bytes]:
    return [bytes([i]) + b"\x00" * 128 for i in range(3)]


if __name__ == "__main__":
    atheris_main(hypothesis_entry(__name__), _atheris_seeds())
