"""A 495 for revocation_unknown says that the revocation data was unreachable.

A valid SSP certificate is refused when no CRL or OCSP answer can be had (hard-fail):
the body's diagnostics and the audit line must point the operator at the responder,
not leave them looking at a certificate that is fine.
"""

from __future__ import annotations

import json
import logging
import socket

import pytest

from spinepki.audit import AuditLogger, JSONAuditFormatter
from spinepki.gate import GateConfig, GateDecision, RequestGate
from spinepki.revocation import RequestsFetcher, RevocationChecker, RevocationMode
from spinepki.testpki import KeyType, TestPKI
from spinepki.validation import ClientCertValidator
from tests.gate._helpers import ASID, NOW_DT, READ_PATIENT, ROOTS, encode, ssp_headers, v1_claims

UNREACHABLE = "the revocation data (CRL or OCSP) was unreachable or unusable"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    """A PKI whose CRL/OCSP URLs point at a loopback port nobody listens on."""
    return TestPKI.create(
        key_type=KeyType.EC_P256, base_url=f"http://127.0.0.1:{_free_port()}", at=NOW_DT
    )


def _gate(pki: TestPKI, revocation: RevocationChecker) -> RequestGate:
    validator = ClientCertValidator(
        pki.trust_store(), ssp_fqdns=[pki.ssp_fqdn], revocation=revocation
    )
    return RequestGate(
        GateConfig(provider_asid=ASID, service_roots=ROOTS, certificate_checker=validator)
    )


def _ask(gate: RequestGate, pki: TestPKI, name: str) -> GateDecision:
    leaf = pki.leaf(name)
    return gate.check(
        "GET",
        "/A12345/STU3/1/gpconnect/Patient/1",
        ssp_headers(READ_PATIENT, encode(v1_claims())),
        peer_cert=leaf.certificate,
        peer_chain=leaf.chain,
        now=NOW_DT,
    )


@pytest.mark.network
def test_revocation_unknown_says_the_data_was_unreachable(pki: TestPKI) -> None:
    """495 ACCESS_DENIED_SSL; the diagnostics and the audit line name the cause."""
    fetcher = RequestsFetcher(timeout=1, trust_env=False)
    gate = _gate(pki, RevocationChecker(RevocationMode.HARD_FAIL, fetcher=fetcher))
    decision = _ask(gate, pki, "ssp")
    assert decision.status == 495
    diagnostics = decision.diagnostics
    assert diagnostics.startswith("the client certificate is not acceptable (revocation_unknown)")
    assert UNREACHABLE in diagnostics
    body = json.loads(decision.operation_outcome())
    assert UNREACHABLE in body["issue"][0]["diagnostics"]

    logger = logging.getLogger("spinepki.test.audit495")
    logger.propagate = False
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(JSONAuditFormatter().format(record))

    logger.addHandler(Keep())
    AuditLogger(logger).record(decision, method="GET", now=NOW_DT)
    (line,) = records
    assert UNREACHABLE in json.loads(line)["reason"]

    # The same certificate is served once revocation evidence is available.
    offline = _gate(
        pki, RevocationChecker(RevocationMode.OFFLINE, crls=[pki.crl(), pki.root_crl()])
    )
    assert _ask(offline, pki, "ssp").status == 200


def test_other_refusals_do_not_blame_revocation_data(pki: TestPKI) -> None:
    """An expired or revoked certificate's 495 says nothing about unreachable data."""
    gate = _gate(pki, RevocationChecker(RevocationMode.OFFLINE, crls=[pki.crl(), pki.root_crl()]))
    for name, code in (("expired", "expired"), ("revoked", "revoked")):
        decision = _ask(gate, pki, name)
        assert decision.status == 495
        assert code in decision.diagnostics
        assert "unreachable" not in decision.diagnostics
    assert _ask(gate, pki, "ssp").status == 200
