"""Audit events: one per decision, structured, and never leaking query, token or names."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from spinepki.audit import AuditLogger, JSONAuditFormatter, audit_event
from spinepki.gate import INTERACTIONS, RequestGate, RootKind
from tests.gate._helpers import (
    NOW_DT,
    READ_PATIENT,
    asgi_server,
    encode,
    make_config,
    pki,
    request_for,
    ssp_headers,
    v1_claims,
)

NHS_NUMBER = "9658218873"
SECRETS = [NHS_NUMBER, "Claire", "Jones", "Margaret", "Featherstonehaugh", "Test Hospital"]
__all__ = ["asgi_server", "pki"]  # fixtures, imported so pytest finds them here
SEARCH = {(i.interaction_id, i.root): i for i in INTERACTIONS}[
    ("urn:nhs:names:services:gpconnect:fhir:rest:search:patient-1", RootKind.FOUNDATIONS)
]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def every_record() -> Iterator[_Capture]:
    """Capture every record of every logger at every level."""
    root = logging.getLogger()
    handler = _Capture()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def _leaky_claims(now: int) -> dict[str, Any]:
    claims = v1_claims(now)
    claims["requesting_practitioner"]["name"] = [
        {"family": "Featherstonehaugh", "given": ["Margaret", "Claire"], "prefix": ["Dr"]}
    ]
    claims["requesting_practitioner"]["identifier"].append(
        {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBER}
    )
    claims["requested_record"] = {"resourceType": "Patient", "name": [{"family": "Jones"}]}
    return claims


def _dump(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), repr(record.args), repr(record.__dict__)]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    parts.append(JSONAuditFormatter().format(record))
    return "\n".join(parts)


@pytest.mark.network
@pytest.mark.parametrize("sub", ["10019", "99"], ids=["allowed", "refused"])
def test_no_secret_in_any_log_record(asgi_server: Any, every_record: _Capture, sub: str) -> None:
    """An NHS number and names in the query and in the token appear in no log record."""
    claims = _leaky_claims(int(time.time()))
    claims["sub"] = sub
    headers = ssp_headers(SEARCH.interaction_id, encode(claims))
    query = (
        f"identifier=https://fhir.nhs.uk/Id/nhs-number|{NHS_NUMBER}&name=Margaret+Featherstonehaugh"
    )
    url = f"{asgi_server.base_url}{request_for(SEARCH).path}?{query}"
    resp = asgi_server.ssp.get(url, headers=headers)
    assert resp.status_code == (200 if sub == "10019" else 400)
    audit = [r for r in every_record.records if r.name == "spinepki.audit"]
    assert len(audit) == 1
    event = audit[0].spinepki_audit  # type: ignore[attr-defined]
    assert event["organization_ods"] == ["A1001"] or event["organization_ods"] == ("A1001",)
    assert list(event["practitioner_sds_user_ids"]) == ["111222333444"]
    assert event["trace_id"]
    assert event["from_asid"] == "200000000359"
    assert event["interaction_id"] == SEARCH.interaction_id
    # httpx/httpcore records are the test's own client (the consumer side), not the provider.
    provider_side = [
        r for r in every_record.records if not r.name.startswith(("httpx", "httpcore"))
    ]
    assert provider_side
    for record in provider_side:
        text = _dump(record)
        for secret in SECRETS:
            assert secret not in text, (record.name, secret)
        assert "Bearer" not in text
        assert "eyJ" not in text


def test_event_fields_and_levels(every_record: _Capture, pki: Any) -> None:
    """Allowed -> INFO, refused -> WARNING; fields are identifier-shaped or absent."""
    cert = pki.leaf("ssp").certificate
    gate = RequestGate(make_config())
    audit = AuditLogger()
    patient = {(i.interaction_id, i.root): i for i in INTERACTIONS}[
        (READ_PATIENT, RootKind.FOUNDATIONS)
    ]
    req = request_for(patient)
    ok = gate.check("GET", req.path, req.headers, peer_cert=cert, now=NOW_DT)
    event = audit.record(ok, method="GET", now=NOW_DT)
    assert event is not None
    assert event.allowed
    assert event.status == 200
    assert event.spine_code is None
    assert event.device_identifiers == ("CONS-APP-4",)
    assert event.device_model is None  # "Consumer product name" is free text, not logged
    assert event.device_version == "5.3.0"
    assert event.practitioner_sds_role_profile_ids == ("444555666777",)
    assert event.reason_for_request == "directcare"
    assert event.time.startswith("2025-06-15T")
    bad = gate.check(b"BREW", "/x?y", [("Ssp-TraceID", "a b")], peer_cert=cert, now=NOW_DT)
    event2 = audit.record(bad, method=b"BREW")
    assert event2 is not None
    assert (event2.status, event2.spine_code, event2.method, event2.trace_id) == (
        400,
        "BAD_REQUEST",
        None,
        None,
    )
    assert event2.sequence > event.sequence
    levels = [r.levelno for r in every_record.records if r.name == "spinepki.audit"]
    assert levels == [logging.INFO, logging.WARNING]
    line = JSONAuditFormatter().format(every_record.records[-1])
    assert json.loads(line)["status"] == 400


def _refused_with(claims: dict[str, Any]) -> Any:
    """The audit event of a refusal whose token carried ``claims``."""
    from spinepki.gate import GateDecision

    decision = GateDecision(
        allowed=False,
        status=400,
        spine_code=None,
        issue_code=None,
        diagnostics="x",
        claims=claims,
    )
    return audit_event(decision)


def test_odd_claims_are_dropped() -> None:
    """Claims of the wrong shape never reach the event (no crash either)."""
    event = _refused_with(
        {
            "requesting_practitioner": {"identifier": "nope"},
            "requesting_device": {
                "identifier": [{"system": 1}, "x", {"system": "s", "value": "a b"}]
            },
            "requesting_organization": [],
            "reason_for_request": "other",
        }
    )
    assert event.practitioner_sds_user_ids == ()
    assert event.device_identifiers == ()
    assert event.organization_ods == ()
    assert event.reason_for_request is None


def test_unhashable_claim_values_are_dropped() -> None:
    """Lists and dicts where strings belong (a refused token) are dropped, not looked up.

    Regression: ``value in frozenset`` raised TypeError for them, which the middleware
    turned into a 500.
    """
    event = _refused_with(
        {
            "reason_for_request": ["directcare"],
            "requesting_organization": {"identifier": [{"system": ["s"], "value": "A1"}]},
            "requesting_practitioner": {"identifier": [{"system": {}, "value": "1"}]},
            "requesting_device": {"identifier": [{"system": ["s"], "value": "D"}]},
        }
    )
    assert event.reason_for_request is None
    assert event.organization_ods == ()
    assert event.practitioner_sds_user_ids == ()
    assert event.device_identifiers == ()


def test_as_dict_matches_asdict() -> None:
    """The shallow as_dict is what dataclasses.asdict gives (every value is immutable)."""
    import dataclasses

    from spinepki.gate import GateDecision

    event = audit_event(GateDecision(True, 200, None, None, "allowed"), now=NOW_DT)
    assert event.as_dict() == dataclasses.asdict(event)


def test_disabled_level_builds_nothing() -> None:
    """A logger that filters the level gets no event (and costs nothing)."""
    logger = logging.getLogger("spinepki.audit.test-quiet")
    logger.setLevel(logging.CRITICAL)
    from spinepki.gate import GateDecision

    decision = GateDecision(True, 200, None, None, "allowed")
    assert AuditLogger(logger).record(decision) is None
    assert AuditLogger(logger).logger is logger


def test_formatter_plain_records() -> None:
    """Non-audit records render as level/logger/message JSON."""
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("w",), None)
    assert json.loads(JSONAuditFormatter().format(record)) == {
        "level": "INFO",
        "logger": "x",
        "message": "hello w",
    }


def test_soft_failed_revocation_is_audited_at_warning() -> None:
    """A decision allowed under revocation soft-fail: WARNING, with the revocation field
    and the problem summaries in the event and in its JSON line; an ordinary allowed
    decision carries neither (regression: soft-fail acceptances were invisible)."""
    from spinepki.gate import GateDecision

    logger = logging.getLogger("spinepki.audit.test-soft-fail")
    logger.setLevel(logging.INFO)
    handler = _Capture()
    logger.addHandler(handler)
    try:
        degraded = GateDecision(
            True,
            200,
            None,
            None,
            "allowed",
            trace_id="t-1",
            revocation="soft-failed",
            warnings=("http://crl.example/x.crl: request failed",),
        )
        event = AuditLogger(logger).record(degraded, method="GET", now=NOW_DT)
        plain = AuditLogger(logger).record(GateDecision(True, 200, None, None, "allowed"))
    finally:
        logger.removeHandler(handler)
    assert event is not None
    assert plain is not None
    assert (event.revocation, event.revocation_problems) == (
        "soft-failed",
        ("http://crl.example/x.crl: request failed",),
    )
    assert (plain.revocation, plain.revocation_problems) == (None, ())
    assert [r.levelno for r in handler.records] == [logging.WARNING, logging.INFO]
    assert handler.records[0].getMessage().endswith("trace=t-1 revocation=soft-failed")
    assert "revocation" not in handler.records[1].getMessage()
    line = json.loads(JSONAuditFormatter().format(handler.records[0]))
    assert line["revocation"] == "soft-failed"
    assert line["revocation_problems"] == ["http://crl.example/x.crl: request failed"]


_REFUSE_ONE_REQUEST = """
import logging, sys
from spinepki.audit import AuditLogger
from spinepki.gate import GateDecision
from spinepki.gate._outcome import IssueType, SpineCode
refused = GateDecision(False, 496, SpineCode.BAD_REQUEST, IssueType.INVALID, "no certificate")
AuditLogger().record(refused)
logging.getLogger("spinepki.gate").warning("soft-failed revocation")
if len(sys.argv) > 1:
    logging.basicConfig(stream=sys.stderr)
    AuditLogger().record(refused)
"""


@pytest.mark.parametrize("configured", [False, True], ids=["unconfigured", "basicConfig"])
def test_the_library_never_prints_by_itself(configured: bool) -> None:
    """With no logging configured, a refused request prints nothing (the `spinepki` logger
    has a NullHandler); once the application configures logging, the record reaches it."""
    import subprocess

    argv = [sys.executable, "-c", _REFUSE_ONE_REQUEST, *(["configure"] if configured else [])]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout == ""
    if configured:
        assert run.stderr.count("gate decision status=496") == 1
    else:
        assert run.stderr == ""
