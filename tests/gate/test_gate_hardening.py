"""Regressions for the security-evidence findings against the gate.

* exp/iat bounded to 64 bits and to the clock (``token.huge_numbers``);
* an explicit JSON depth limit, no RecursionError path (``token.nested_json``);
* soft-failed revocation acceptances reported in the decision, the audit and the log;
* the SSP identification headers audited whatever rule refuses the request;
* the ASGI middleware keeps certificate checks that may block off the event loop, and
  answers from the checker's cache on it.

Time is an input throughout: every decision time is passed in; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st

from spinepki._json import MAX_JSON_DEPTH, json_depth, parse_json_strict
from spinepki.audit import AuditLogger, JSONAuditFormatter, audit_event
from spinepki.errors import CertificateLoadError, ConfigurationError, TokenParseError
from spinepki.gate import (
    INTERACTIONS,
    BodyRule,
    CachedCertificateChecker,
    CertificateChecker,
    GateASGIMiddleware,
    GateWSGIMiddleware,
    PeerCertificate,
    RequestGate,
    SpineCode,
)
from tests.gate._helpers import (
    ASID,
    FROM_ASID,
    MIGRATE,
    NOW,
    NOW_DT,
    PATIENT,
    TRACE,
    Fixed,
    Outcome,
    SerialDenyList,
    b64,
    check,
    encode,
    make_config,
    request_for,
    ssp_headers,
    v1_claims,
)

HEADER = b64(b'{"alg":"none","typ":"JWT"}')


def raw_token(payload: str) -> str:
    """An unsecured JWT whose payload is ``payload`` verbatim (JSON text)."""
    return f"{HEADER}.{b64(payload.encode())}."


def with_times(exp: str, iat: str) -> str:
    """The valid example claims with ``exp``/``iat`` spliced in as raw JSON numbers."""
    claims = v1_claims(exp=0, iat=1)
    text = json.dumps(claims, separators=(",", ":"))
    return text.replace('"exp":0', f'"exp":{exp}').replace('"iat":1', f'"iat":{iat}')


def decide(gate: RequestGate, token: str, cert: x509.Certificate, now: int = NOW) -> Any:
    req = request_for(PATIENT)
    headers = ssp_headers(PATIENT.interaction_id, token)
    return check(gate, replace(req, headers=headers), cert, now=datetime.fromtimestamp(now, UTC))


# -- token.huge_numbers ----------------------------------------------------------------


class TestTimeBounds:
    """exp/iat must be 64-bit integers, and iat no further ahead than the allowance."""

    @pytest.mark.parametrize(
        ("exp", "iat"),
        [
            (str(2**64 + 300), str(2**64)),  # the finding: accepted, never expired
            (str(2**63 + 300), str(2**63)),  # just beyond signed 64 bits
            (str(-(2**64)), str(-(2**64) - 300)),
            (str(10**400 + 300), str(10**400)),  # was an OverflowError (a 500)
        ],
        ids=["2**64", "2**63", "negative-2**64", "10**400"],
    )
    def test_beyond_64_bits_is_400(
        self, gate: RequestGate, ssp_cert: Any, exp: str, iat: str
    ) -> None:
        decision = decide(gate, raw_token(with_times(exp, iat)), ssp_cert)
        assert (decision.status, decision.spine_code) == (400, SpineCode.BAD_REQUEST)
        assert decision.diagnostics == "JWT claim exp is out of range"

    def test_largest_64_bit_time_is_too_far_ahead(self, gate: RequestGate, ssp_cert: Any) -> None:
        top = 2**63 - 1
        decision = decide(gate, raw_token(with_times(str(top), str(top - 300))), ssp_cert)
        assert decision.status == 400
        assert decision.diagnostics == "JWT claim iat is too far in the future"

    @pytest.mark.parametrize(
        ("exp", "iat", "reason"),
        [
            ("1e400", str(NOW), "JWT payload is not valid JSON"),  # inf: refused by the parser
            (str(NOW + 300), "9" * 5000, "JWT payload is not valid JSON"),  # int digit limit
        ],
        ids=["float-overflow", "5000-digits"],
    )
    def test_other_huge_numbers(
        self, gate: RequestGate, ssp_cert: Any, exp: str, iat: str, reason: str
    ) -> None:
        decision = decide(gate, raw_token(with_times(exp, iat)), ssp_cert)
        assert (decision.status, decision.diagnostics) == (400, reason)

    @pytest.mark.parametrize("ahead", [0, 200, 599, 600])
    def test_future_iat_within_allowance_is_accepted(
        self, gate: RequestGate, ssp_cert: Any, ahead: int
    ) -> None:
        """The assurance pack sends iat up to +200 s; the default allowance is 600 s."""
        token = encode(v1_claims(exp=NOW + ahead + 300, iat=NOW + ahead))
        assert decide(gate, token, ssp_cert).allowed

    @pytest.mark.parametrize("ahead", [601, 3600, 10**9])
    def test_future_iat_beyond_allowance_is_400(
        self, gate: RequestGate, ssp_cert: Any, ahead: int
    ) -> None:
        decision = decide(gate, encode(v1_claims(exp=NOW + ahead + 300, iat=NOW + ahead)), ssp_cert)
        assert (decision.status, decision.spine_code) == (400, SpineCode.BAD_REQUEST)
        assert decision.diagnostics == "JWT claim iat is too far in the future"

    def test_allowance_is_configurable(self, ssp_cert: Any) -> None:
        strict = RequestGate(make_config(future_iat_allowance=timedelta(0)))
        assert decide(strict, encode(v1_claims(exp=NOW + 300, iat=NOW)), ssp_cert).allowed
        late = decide(strict, encode(v1_claims(exp=NOW + 301, iat=NOW + 1)), ssp_cert)
        assert late.diagnostics == "JWT claim iat is too far in the future"
        loose = RequestGate(make_config(future_iat_allowance=timedelta(hours=1)))
        assert decide(loose, encode(v1_claims(exp=NOW + 3900, iat=NOW + 3600)), ssp_cert).allowed

    @pytest.mark.parametrize(
        "value", [timedelta(seconds=-1), timedelta(hours=1, seconds=1), 600, None]
    )
    def test_allowance_validated(self, value: Any) -> None:
        with pytest.raises(ConfigurationError, match="future_iat_allowance"):
            make_config(future_iat_allowance=value)


# -- token.nested_json -----------------------------------------------------------------


def nested(depth: int, *, kind: str = "object") -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


class TestJsonDepth:
    """parse_json_strict refuses nesting deeper than MAX_JSON_DEPTH before decoding."""

    @pytest.mark.parametrize(
        ("depth", "kind"),
        [(33, "object"), (33, "array"), (666, "object"), (2000, "array"), (200_000, "array")],
    )
    def test_too_deep_never_reaches_the_decoder(
        self, monkeypatch: pytest.MonkeyPatch, depth: int, kind: str
    ) -> None:
        """Refused by the pre-scan: the (recursive) decoder is never called, so no
        RecursionError path exists, whatever the stack depth or recursion limit."""

        class Untouchable:
            def decode(self, text: str) -> object:
                raise AssertionError("the decoder was called")

        monkeypatch.setattr("spinepki._json._DECODER", Untouchable())
        with pytest.raises(TokenParseError) as info:
            parse_json_strict(nested(depth, kind=kind).encode(), what="the body")
        assert info.value.reason == "the body is nested too deeply"

    def test_limit_is_inclusive(self) -> None:
        assert MAX_JSON_DEPTH == 32
        assert parse_json_strict(nested(32, kind="array").encode(), what="x") is not None
        assert parse_json_strict(nested(32).encode(), what="x") is not None
        with pytest.raises(TokenParseError, match="nested too deeply"):
            parse_json_strict(nested(3).encode(), what="x", max_depth=2)

    def test_brackets_in_strings_do_not_count(self) -> None:
        text = json.dumps({"a": "[{" * 500, "b": ['\\"[[[', "]]]"]})
        assert json_depth(text) == 2
        assert parse_json_strict(text.encode(), what="x") == json.loads(text)

    @pytest.mark.parametrize(
        ("text", "depth"),
        [
            ("1", 0),
            ('"[[[["', 0),
            ("[[[[", 4),  # unterminated: the decoder's prefix depth still counts
            ("]]][[", 0),
            ('["abc\\', 1),  # a lone trailing backslash
            ('["' + '\\"' * 5000, 1),  # unterminated string of escaped quotes: linear
            ('[{"a":["é", {"[": "]"}]}]', 4),
        ],
    )
    def test_json_depth_edges(self, text: str, depth: int) -> None:
        assert json_depth(text) == depth

    @settings(max_examples=300, deadline=None)
    @given(
        value=st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ aé\n\x00'),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(alphabet='[]{}"\\a'), inner, max_size=3)
            ),
            max_leaves=40,
        ),
        ascii_only=st.booleans(),
    )
    def test_json_depth_matches_the_structure(self, value: object, ascii_only: bool) -> None:
        def depth(v: object) -> int:
            if isinstance(v, list):
                return 1 + max(map(depth, v), default=0)
            if isinstance(v, dict):
                return 1 + max(map(depth, v.values()), default=0)
            return 0

        assert json_depth(json.dumps(value, ensure_ascii=ascii_only)) == depth(value)

    def test_through_the_gate(self, gate: RequestGate, ssp_cert: Any) -> None:
        """A claim making the payload 33 deep is 400; 32 deep is accepted (unknown claims
        are ignored); a body 40 deep is 422 INVALID_RESOURCE."""
        base = json.dumps(v1_claims(), separators=(",", ":"))[:-1]
        ok = decide(gate, raw_token(base + ',"x":' + nested(31) + "}"), ssp_cert)
        assert ok.allowed, ok.diagnostics
        deep = decide(gate, raw_token(base + ',"x":' + nested(32) + "}"), ssp_cert)
        assert (deep.status, deep.spine_code) == (400, SpineCode.BAD_REQUEST)
        assert deep.diagnostics == "JWT payload is nested too deeply"
        for depth in (666, 2000):
            assert (
                decide(gate, raw_token(base + ',"x":' + nested(depth) + "}"), ssp_cert).status
                == 400
            )
        req = request_for(MIGRATE)
        body = b'{"resourceType":"Parameters","parameter":[' + nested(40).encode() + b"]}"
        decision = check(gate, req, ssp_cert, body=body)
        assert (decision.status, decision.spine_code) == (422, SpineCode.INVALID_RESOURCE)
        assert decision.diagnostics == "the request body is nested too deeply"


# -- revocation soft-fail reported -------------------------------------------------------


@dataclass(frozen=True)
class Revocation:
    soft_failed: bool
    problems: Any = ()


@dataclass(frozen=True)
class RevocationOutcome:
    valid: bool
    failures: tuple[Any, ...] = ()
    revocation: Any = None


class RevocationStub:
    """A checker whose (valid) outcome carries the given revocation result."""

    def __init__(self, revocation: Any) -> None:
        self.revocation = revocation

    def validate(
        self, leaf: Any, intermediates: Any = (), *, at: datetime | None = None
    ) -> RevocationOutcome:
        return RevocationOutcome(True, (), self.revocation)


SECRET_PROBLEMS = (
    "http://user:s3cret@crl.example.nhs.uk/sub.crl?token=t0ps3cret: request failed: "
    "('Connection aborted.')",
    "http://ocsp.example.nhs.uk/ocsp#frag: the OCSP responder does not know the certificate",
    "bad\x00control\nchars é " + "x" * 400,
    "a fourth problem is not reported",
)


class TestSoftFailReported:
    def test_decision_log_and_audit(self, ssp_cert: Any, caplog: pytest.LogCaptureFixture) -> None:
        gate = RequestGate(
            make_config(certificate_checker=RevocationStub(Revocation(True, SECRET_PROBLEMS)))
        )
        with caplog.at_level(logging.INFO):
            decision = check(gate, request_for(PATIENT), ssp_cert)
            event = AuditLogger().record(decision, method="GET", now=NOW_DT)
        assert decision.allowed
        assert decision.status == 200
        assert decision.revocation == "soft-failed"
        assert decision.warnings == (
            "http://crl.example.nhs.uk/sub.crl: request failed: ('Connection aborted.')",
            "http://ocsp.example.nhs.uk/ocsp: the OCSP responder does not know the certificate",
            "bad?control?chars ? " + "x" * 137 + "...",
        )
        gate_logs = [r for r in caplog.records if r.name == "spinepki.gate"]
        assert [r.levelno for r in gate_logs] == [logging.WARNING]
        message = gate_logs[0].getMessage()
        assert "soft-fail" in message
        assert TRACE in message
        (audit,) = [r for r in caplog.records if r.name == "spinepki.audit"]
        assert audit.levelno == logging.WARNING  # allowed, but degraded
        assert "revocation=soft-failed" in audit.getMessage()
        assert event is not None
        assert event.revocation == "soft-failed"
        assert event.revocation_problems == decision.warnings
        line = JSONAuditFormatter().format(audit)
        assert json.loads(line)["revocation"] == "soft-failed"
        for text in (line, message):
            assert "s3cret" not in text
            assert "t0ps3cret" not in text
            assert "frag" not in text

    @pytest.mark.parametrize(
        ("revocation", "warnings"),
        [
            (Revocation(True, ()), ("revocation status unknown",)),
            (Revocation(True, None), ("revocation status unknown",)),
            (Revocation(True, (1, b"x", "plain")), ("plain",)),
        ],
    )
    def test_odd_problem_lists(self, ssp_cert: Any, revocation: Any, warnings: Any) -> None:
        gate = RequestGate(make_config(certificate_checker=RevocationStub(revocation)))
        decision = check(gate, request_for(PATIENT), ssp_cert)
        assert (decision.allowed, decision.revocation, decision.warnings) == (
            True,
            "soft-failed",
            warnings,
        )

    @pytest.mark.parametrize(
        "revocation",
        [None, Revocation(False, ("an earlier source failed",)), SimpleNamespace(soft_failed=1)],
    )
    def test_not_soft_failed_is_quiet(
        self, ssp_cert: Any, revocation: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        gate = RequestGate(make_config(certificate_checker=RevocationStub(revocation)))
        with caplog.at_level(logging.INFO):
            decision = check(gate, request_for(PATIENT), ssp_cert)
            AuditLogger().record(decision, method="GET", now=NOW_DT)
        assert (decision.revocation, decision.warnings) == (None, ())
        assert [r.levelno for r in caplog.records] == [logging.INFO]
        assert "revocation" not in caplog.records[0].getMessage()
        assert audit_event(decision).revocation is None

    def test_refused_request_carries_no_warning(self, ssp_cert: Any) -> None:
        gate = RequestGate(make_config(certificate_checker=RevocationStub(Revocation(True))))
        decision = check(gate, request_for(PATIENT, exp=NOW - 1, iat=NOW - 301), ssp_cert)
        assert not decision.allowed
        assert (decision.revocation, decision.warnings) == (None, ())

    def test_real_validator_soft_fail(self, pki: Any) -> None:
        """ClientCertValidator under SOFT_FAIL with every fetch failing: accepted, reported,
        and never cached (so the middleware's fast path never hides it)."""
        from spinepki.errors import FetchError
        from spinepki.revocation import RevocationChecker, RevocationMode
        from spinepki.validation import ClientCertValidator

        class Down:
            def fetch_crl(self, url: str) -> bytes:
                raise FetchError(f"{url}: connection refused")

            def post_ocsp(self, url: str, request_der: bytes) -> bytes:
                raise FetchError(f"{url}: connection refused")

        validator = ClientCertValidator(
            pki.trust_store(),
            ssp_fqdns=pki.ssp_fqdn,
            revocation=RevocationChecker(RevocationMode.SOFT_FAIL, fetcher=Down()),
        )
        gate = RequestGate(make_config(certificate_checker=validator))
        at = pki.reference_time
        req = request_for(PATIENT, int(at.timestamp()))
        cert = pki.leaf("ssp").certificate
        decision = check(gate, req, cert, now=at)
        assert decision.allowed
        assert decision.revocation == "soft-failed"
        assert decision.warnings
        assert all("connection refused" in w for w in decision.warnings)
        assert validator.cached(cert, (), at=at) is None
        assert (
            gate.check_nonblocking(
                req.method, req.path, req.headers, query=req.query, peer_cert=cert, now=at
            )
            is None
        )


# -- SSP identification audited whatever refuses ------------------------------------------


def refusing_gate(pki: Any) -> RequestGate:
    checker = SerialDenyList([pki.leaf("ssp").certificate.serial_number])
    return RequestGate(make_config(certificate_checker=checker))


class TestIdentificationAudited:
    def test_certificate_refusal_has_the_ids(self, pki: Any, ssp_cert: Any) -> None:
        decision = check(refusing_gate(pki), request_for(PATIENT), ssp_cert)
        assert (decision.status, decision.spine_code) == (495, SpineCode.ACCESS_DENIED_SSL)
        assert decision.diagnostics == "the client certificate is not acceptable (revoked)"
        assert (decision.trace_id, decision.from_asid, decision.to_asid) == (TRACE, FROM_ASID, ASID)
        assert audit_event(decision).trace_id == TRACE

    def test_missing_certificate_has_the_ids(self, gate: RequestGate) -> None:
        req = request_for(PATIENT)
        decision = gate.check(req.method, req.path, req.headers, query=req.query, now=NOW_DT)
        assert decision.status == 496
        assert (decision.trace_id, decision.from_asid, decision.to_asid) == (TRACE, FROM_ASID, ASID)

    def test_certificate_wins_over_broken_headers(self, pki: Any, ssp_cert: Any) -> None:
        """The rejection and its response do not change: only the audit ids are added,
        and an ambiguous (duplicated) or unsafe one is left out."""
        req = request_for(PATIENT)
        headers = [*req.headers, ("ssp-traceid", "another"), ("Ssp-From", "not safe!")]
        headers = [(k, v) for k, v in headers if k != "Ssp-From"] + [("Ssp-From", "not safe!")]
        decision = check(refusing_gate(pki), replace(req, headers=headers), ssp_cert)
        assert decision.status == 495
        assert (decision.trace_id, decision.from_asid, decision.to_asid) == (None, None, ASID)

    def test_mapping_bytes_and_generators(self, pki: Any, ssp_cert: Any) -> None:
        req = request_for(PATIENT)
        gate = refusing_gate(pki)
        as_bytes = [(k.lower().encode(), v.encode()) for k, v in req.headers]
        for headers in (dict(req.headers), as_bytes, iter(as_bytes), (h for h in req.headers)):
            decision = check(gate, replace(req, headers=headers), ssp_cert)  # type: ignore[arg-type]
            assert (decision.status, decision.trace_id) == (495, TRACE)

    def test_malformed_pairs_do_not_break_audit(self, pki: Any, ssp_cert: Any) -> None:
        req = request_for(PATIENT)
        headers: list[Any] = [("Ssp-TraceID", TRACE), (1, 2), ("x",), ("Ssp-To", b"\xff")]
        decision = check(refusing_gate(pki), replace(req, headers=headers), ssp_cert)
        assert (decision.status, decision.trace_id, decision.to_asid) == (495, TRACE, None)

    def test_header_limit_refusal_has_the_ids(self, gate: RequestGate, ssp_cert: Any) -> None:
        req = request_for(PATIENT)
        headers = [*req.headers, *[(f"x-{n}", "v") for n in range(200)]]
        decision = check(gate, replace(req, headers=headers), ssp_cert)
        assert decision.diagnostics == "the request has too many headers"
        assert (decision.trace_id, decision.from_asid, decision.to_asid) == (TRACE, FROM_ASID, ASID)
        # A one-shot iterator already read by the refusing rule is not read again.
        decision = check(gate, replace(req, headers=iter(headers)), ssp_cert)  # type: ignore[arg-type]
        assert decision.diagnostics == "the request has too many headers"
        assert decision.trace_id is None

    def test_middlewares_unusable_certificate_and_large_body(
        self, caplog: pytest.LogCaptureFixture, ssp_cert: Any
    ) -> None:
        req = request_for(PATIENT)
        gate = RequestGate(make_config())
        asgi = GateASGIMiddleware(_app, gate=gate, cert_source=Fixed(CertificateLoadError("bad")))
        wsgi = GateWSGIMiddleware(
            _wsgi_app, gate=gate, cert_source=Fixed(CertificateLoadError("x"))
        )
        huge = replace(req, method="POST")
        with caplog.at_level(logging.WARNING, logger="spinepki.audit"):
            assert run_asgi(asgi, scope_of(req))[0]["status"] == 495
            assert run_wsgi(wsgi, environ_of(req)) == "495 SSL Certificate Error"
            # A certificate, so the request is not refused on that before its body.
            mw = GateASGIMiddleware(_app, gate=gate, cert_source=Fixed(PeerCertificate(ssp_cert)))
            large = scope_of(huge)
            large["headers"].append((b"content-length", b"99999999"))
            assert run_asgi(mw, large)[0]["status"] == 400
            wsgi_ok = GateWSGIMiddleware(
                _wsgi_app, gate=gate, cert_source=Fixed(PeerCertificate(ssp_cert))
            )
            environ = environ_of(huge)
            environ["CONTENT_LENGTH"] = "99999999"
            assert run_wsgi(wsgi_ok, environ).startswith("400")
        events = [r.spinepki_audit for r in caplog.records if r.name == "spinepki.audit"]  # type: ignore[attr-defined]
        assert [(e["status"], e["trace_id"], e["from_asid"]) for e in events] == [
            (495, TRACE, FROM_ASID),
            (495, TRACE, FROM_ASID),
            (400, TRACE, FROM_ASID),
            (400, TRACE, FROM_ASID),
        ]


# -- the ASGI middleware keeps blocking checks off the event loop ----------------------------


async def _app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


def scope_of(req: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "method": req.method,
        "path": req.path,
        "query_string": req.query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in req.headers],
    }


def environ_of(req: Any) -> dict[str, Any]:
    import io

    environ: dict[str, Any] = {
        "REQUEST_METHOD": req.method,
        "PATH_INFO": req.path,
        "QUERY_STRING": req.query,
        "wsgi.input": io.BytesIO(b""),
    }
    for key, value in req.headers:
        environ["HTTP_" + key.upper().replace("-", "_")] = value
    return environ


def run_wsgi(mw: GateWSGIMiddleware, environ: dict[str, Any]) -> str:
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None, /) -> Any:
        statuses.append(status)

    mw(environ, start_response)
    return statuses[0]


async def call(mw: GateASGIMiddleware, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await mw(scope, receive, send)
    return sent


def run_asgi(mw: GateASGIMiddleware, scope: dict[str, Any]) -> list[dict[str, Any]]:
    return asyncio.run(call(mw, scope))


class Recording:
    """A checker that records the thread of each call; ``cached`` answers for the serials
    in ``known`` (None otherwise), or raises when ``cached_raises``."""

    def __init__(self, *, known: set[int] | None = None, cached_raises: bool = False) -> None:
        self.known = known or set()
        self.cached_raises = cached_raises
        self.validated: list[str] = []
        self.looked_up: list[str] = []
        self.entered = threading.Event()
        self.release: threading.Event | None = None

    def validate(self, leaf: Any, intermediates: Any = (), *, at: Any = None) -> Outcome:
        self.validated.append(threading.current_thread().name)
        self.entered.set()
        if self.release is not None:
            assert self.release.wait(10), "never released"
        return Outcome(True)

    def cached(self, leaf: Any, intermediates: Any = (), *, at: Any = None) -> Outcome | None:
        self.looked_up.append(threading.current_thread().name)
        if self.cached_raises:
            raise RuntimeError("broken cache")
        return Outcome(True) if leaf.serial_number in self.known else None


class NoCache:
    def __init__(self) -> None:
        self.validated: list[str] = []

    def validate(self, leaf: Any, intermediates: Any = (), *, at: Any = None) -> Outcome:
        self.validated.append(threading.current_thread().name)
        return Outcome(True)


def middleware(checker: Any, cert: x509.Certificate, **kw: Any) -> GateASGIMiddleware:
    gate = RequestGate(make_config(certificate_checker=checker))
    return GateASGIMiddleware(
        _app, gate=gate, cert_source=Fixed(PeerCertificate(cert)), clock=lambda: NOW_DT, **kw
    )


class TestOffLoop:
    def test_checker_without_cached_runs_on_the_pool(
        self, ssp_cert: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        checker = NoCache()
        mw = middleware(checker, ssp_cert)
        try:
            with caplog.at_level(logging.INFO, logger="spinepki.audit"):
                assert run_asgi(mw, scope_of(request_for(PATIENT)))[0]["status"] == 200
        finally:
            mw.close()
        (name,) = checker.validated
        assert name.startswith("spinepki-gate-check")
        (record,) = [r for r in caplog.records if r.name == "spinepki.audit"]
        assert record.threadName == name  # audited where it was decided

    def test_cached_answer_stays_on_the_loop(self, ssp_cert: Any) -> None:
        checker = Recording(known={ssp_cert.serial_number})
        mw = middleware(checker, ssp_cert)
        assert run_asgi(mw, scope_of(request_for(PATIENT)))[0]["status"] == 200
        assert checker.validated == []
        assert checker.looked_up == [threading.current_thread().name]  # asyncio.run's thread
        assert mw._pool is None  # no thread was ever started

    @pytest.mark.parametrize("cached_raises", [False, True])
    def test_no_cached_answer_goes_to_the_pool(self, ssp_cert: Any, cached_raises: bool) -> None:
        checker = Recording(cached_raises=cached_raises)
        mw = middleware(checker, ssp_cert)
        try:
            assert run_asgi(mw, scope_of(request_for(PATIENT)))[0]["status"] == 200
        finally:
            mw.close()
        assert len(checker.looked_up) == 1
        (name,) = checker.validated
        assert name.startswith("spinepki-gate-check")

    def test_a_blocked_check_does_not_hold_the_loop(self, pki: Any, ssp_cert: Any) -> None:
        """While one request's check blocks (a slow revocation fetch), another request
        with a cached answer is served on the same loop; then the first completes."""
        other = pki.leaf("consumer").certificate
        checker = Recording(known={other.serial_number})
        checker.release = threading.Event()
        gate = RequestGate(make_config(certificate_checker=checker))
        slow_mw = GateASGIMiddleware(
            _app, gate=gate, cert_source=Fixed(PeerCertificate(ssp_cert)), clock=lambda: NOW_DT
        )
        fast_mw = GateASGIMiddleware(
            _app, gate=gate, cert_source=Fixed(PeerCertificate(other)), clock=lambda: NOW_DT
        )
        scope = scope_of(request_for(PATIENT))

        async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            loop = asyncio.get_running_loop()
            slow = asyncio.create_task(call(slow_mw, scope))
            entered = await loop.run_in_executor(None, checker.entered.wait, 10)
            assert entered, "the slow check never started"
            fast = await call(fast_mw, scope)  # served while the slow check blocks
            assert not slow.done()
            assert checker.release is not None
            checker.release.set()
            return fast, await slow

        try:
            fast, slow = asyncio.run(main())
        finally:
            checker.release.set()
            slow_mw.close()
        assert fast[0]["status"] == slow[0]["status"] == 200
        assert checker.validated[0].startswith("spinepki-gate-check")

    def test_lifespan_shutdown_closes_the_pool(self, ssp_cert: Any) -> None:
        # Only this middleware's workers: another test's pool may still be winding down.
        before = set(threading.enumerate())
        mw = middleware(NoCache(), ssp_cert, check_threads=2)
        assert run_asgi(mw, scope_of(request_for(PATIENT)))[0]["status"] == 200
        assert mw._pool is not None
        workers = [
            t
            for t in set(threading.enumerate()) - before
            if t.name.startswith("spinepki-gate-check")
        ]
        assert workers

        async def lifespan() -> list[dict[str, Any]]:
            messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
            sent: list[dict[str, Any]] = []

            async def receive() -> dict[str, Any]:
                return next(messages)

            async def send(message: Any) -> None:
                sent.append(message)

            await mw({"type": "lifespan"}, receive, send)
            return sent

        sent = asyncio.run(lifespan())
        assert [m["type"] for m in sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]
        assert mw._pool is None
        for worker in workers:
            worker.join(timeout=10)
            assert not worker.is_alive()
        # A request after close starts a new pool.
        try:
            assert run_asgi(mw, scope_of(request_for(PATIENT)))[0]["status"] == 200
        finally:
            mw.close()

    @pytest.mark.parametrize("threads", [0, -1, True, 1.5, "4"])
    def test_check_threads_validated(self, ssp_cert: Any, threads: Any) -> None:
        with pytest.raises(ConfigurationError, match="check_threads"):
            middleware(NoCache(), ssp_cert, check_threads=threads)

    def test_check_nonblocking(self, ssp_cert: Any) -> None:
        req = request_for(PATIENT)
        args = (req.method, req.path, req.headers)
        kw: dict[str, Any] = {"query": req.query, "peer_cert": ssp_cert, "now": NOW_DT}
        no_checker = RequestGate(make_config())
        assert not no_checker.may_block
        assert no_checker.check_nonblocking(*args, **kw) == no_checker.check(*args, **kw)
        blind = RequestGate(make_config(certificate_checker=NoCache()))
        assert blind.may_block
        assert blind.check_nonblocking(*args, **kw) is None
        knowing = RequestGate(
            make_config(certificate_checker=Recording(known={ssp_cert.serial_number}))
        )
        decision = knowing.check_nonblocking(*args, **kw)
        assert decision is not None
        assert decision.allowed
        # No certificate at all: decided (496) without the checker.
        assert blind.check_nonblocking(*args, query=req.query, now=NOW_DT).status == 496  # type: ignore[union-attr]

    def test_protocols(self, pki: Any) -> None:
        from spinepki.validation import ClientCertValidator

        validator = ClientCertValidator(pki.trust_store(), ssp_fqdns=pki.ssp_fqdn)
        assert isinstance(validator, CachedCertificateChecker)
        assert isinstance(validator, CertificateChecker)
        assert isinstance(NoCache(), CertificateChecker)
        assert not isinstance(NoCache(), CachedCertificateChecker)


class TestValidatorCached:
    """ClientCertValidator.cached: the cache lookup alone, never any work."""

    @pytest.fixture
    def validator(self, pki: Any) -> Any:
        from spinepki.revocation import RevocationChecker, RevocationMode
        from spinepki.validation import ClientCertValidator

        checker = RevocationChecker(
            RevocationMode.OFFLINE, crls=[pki.crl("sub-ca"), pki.crl("root")]
        )
        return ClientCertValidator(pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=checker)

    def test_answers_only_what_validate_cached(self, pki: Any, validator: Any) -> None:
        at = pki.reference_time
        leaf = pki.leaf("ssp")
        cert = leaf.certificate
        assert validator.cached(cert, (), at=at) is None
        assert validator.validate(cert, (), at=at).valid
        hit = validator.cached(cert, (), at=at)
        assert hit is not None
        assert hit.valid
        assert hit.from_cache
        assert validator.cached(cert, [], at=at + timedelta(minutes=4)) is hit
        assert validator.cached(cert, (), at=at + timedelta(minutes=5)) is None  # past the TTL
        assert validator.cached(cert, (), at=at - timedelta(seconds=1)) is None  # before
        assert validator.cached(cert, (pki.sub_ca.certificate,), at=at) is None
        assert validator.cached(leaf.cert_pem, (), at=at) is None  # would need parsing
        der = cert.public_bytes(Encoding.DER)
        assert validator.cached(der, (), at=at) is None  # cached by the key it was given
        with pytest.raises(ConfigurationError):
            validator.cached(cert, (), at=datetime(2026, 1, 1))

    def test_invalid_results_are_not_cached(self, pki: Any, validator: Any) -> None:
        at = pki.reference_time
        cert = pki.leaf("wrong-fqdn").certificate
        assert not validator.validate(cert, (), at=at).valid
        assert validator.cached(cert, (), at=at) is None

    def test_cache_disabled(self, pki: Any) -> None:
        from spinepki.validation import ClientCertValidator

        validator = ClientCertValidator(pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, cache_ttl=0)
        assert validator.cached(pki.leaf("ssp").certificate, at=pki.reference_time) is None

    def test_gate_with_validator_second_request_stays_on_the_loop(
        self, pki: Any, validator: Any
    ) -> None:
        """The first request validates on the pool; the repeat is answered on the loop."""
        threads: list[tuple[str, str]] = []

        class Spy:
            def validate(self, *a: Any, **k: Any) -> Any:
                threads.append(("validate", threading.current_thread().name))
                return validator.validate(*a, **k)

            def cached(self, *a: Any, **k: Any) -> Any:
                threads.append(("cached", threading.current_thread().name))
                return validator.cached(*a, **k)

        at = pki.reference_time
        gate = RequestGate(make_config(certificate_checker=Spy()))
        mw = GateASGIMiddleware(
            _app,
            gate=gate,
            cert_source=Fixed(PeerCertificate(pki.leaf("ssp").certificate)),
            clock=lambda: at,
        )
        scope = scope_of(request_for(PATIENT, int(at.timestamp())))
        try:
            assert run_asgi(mw, scope)[0]["status"] == 200
            assert run_asgi(mw, scope)[0]["status"] == 200
        finally:
            mw.close()
        here = threading.current_thread().name
        assert [kind for kind, _ in threads] == ["cached", "validate", "cached"]
        assert threads[1][1].startswith("spinepki-gate-check")
        assert threads[0][1] == threads[2][1] == here


def test_no_recursion_limit_dependence() -> None:
    """The depth check does not recurse: it refuses a million-deep array even with the
    recursion limit barely above the current stack."""
    frame, depth = sys._getframe(), 0
    while frame is not None:
        depth, frame = depth + 1, frame.f_back  # type: ignore[assignment]
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 30)
    try:
        with pytest.raises(TokenParseError, match="nested too deeply"):
            parse_json_strict(nested(1_000_000, kind="array").encode(), what="x")
    finally:
        sys.setrecursionlimit(old)


class TestCareRecordBody:
    """0.7.x getcarerecord: the body's patient must be the token's (found in review)."""

    NHS = "http://fhir.nhs.net/Id/nhs-number"

    def _decide(self, params: list[dict[str, Any]], cert: x509.Certificate) -> Any:
        interaction = next(
            i for i in INTERACTIONS if i.body_rule is BodyRule.CARE_RECORD_NHS_NUMBER
        )
        r = request_for(interaction)
        body = json.dumps({"resourceType": "Parameters", "parameter": params}).encode()
        gate = RequestGate(make_config(enable_legacy_drafts=True))
        return gate.check(
            r.method,
            r.path,
            r.headers,
            query=r.query or None,
            body=body,
            peer_cert=cert,
            now=NOW_DT,
        )

    def _param(self, value: str, system: str = NHS) -> dict[str, Any]:
        return {"name": "patientNHSNumber", "valueIdentifier": {"system": system, "value": value}}

    def test_matching_patient_is_allowed(self, ssp_cert: x509.Certificate) -> None:
        """The token's NHS number in the body: allowed."""
        assert self._decide([self._param("9658218873")], ssp_cert).allowed

    def test_second_parameter_naming_another_patient_is_refused(
        self, ssp_cert: x509.Certificate
    ) -> None:
        """A matching first patientNHSNumber no longer hides a second, different one."""
        decision = self._decide([self._param("9658218873"), self._param("9999999999")], ssp_cert)
        assert decision.status == 422
        assert decision.spine_code is SpineCode.INVALID_RESOURCE

    def test_identifier_system_must_be_the_nhs_number(self, ssp_cert: x509.Certificate) -> None:
        """The token's value under another identifier system does not match."""
        decision = self._decide([self._param("9658218873", system="urn:other")], ssp_cert)
        assert decision.status == 400


def test_non_finite_numbers_are_refused() -> None:
    """1e999 overflows to inf in Python's json; the strict parser refuses it like NaN."""
    from spinepki._json import parse_json_strict

    with pytest.raises(TokenParseError):
        parse_json_strict(b'{"a": 1e999}', what="body")
    assert parse_json_strict(b'{"a": 1.5}', what="body") == {"a": 1.5}
