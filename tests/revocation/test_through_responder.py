"""CRL and OCSP through the real loopback responder: every fault switch, every mode.

Each check must end within the fetcher's timeout (+10%) in all, however many sources it
tries (the checker's time budget, ``check_timeout``, defaults to that timeout): no hang.
Time is an input: staleness is reached by moving ``at``, never by sleeping.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from cryptography import x509

from spinepki.revocation import (
    RequestsFetcher,
    RevocationChecker,
    RevocationStatus,
)
from spinepki.testpki.responder import Endpoint, Fault, OCSPSigner, Responder

from ._helpers import SLACK, TIMEOUT, M

#: Faults that spoil CRL and OCSP answers alike.
BOTH = [
    Fault.DOWN,
    Fault.SLOW,
    Fault.DRIP,
    Fault.OVERSIZED,
    Fault.GARBAGE,
    Fault.WRONG_SIGNATURE,
    Fault.STALE,
    Fault.HTTP_500,
]
#: Faults that only an OCSP answer can have.
OCSP_ONLY_FAULTS = [Fault.UNKNOWN_STATUS, Fault.WRONG_NONCE, Fault.TRY_LATER]
#: How many sources each mode tries (one problem each) when all fail.
FETCHES = {
    M.HARD_FAIL: 2,
    M.SOFT_FAIL: 2,
    M.PREFER_OCSP: 2,
    M.CRL_ONLY: 1,
    M.OCSP_ONLY: 1,
    M.OFFLINE: 0,
    M.DISABLED: 0,
}


def make_checker(mode: M, responder: Responder) -> RevocationChecker:
    if mode is M.OFFLINE:
        return RevocationChecker(mode, crls=[responder.pki.crl()])
    if mode is M.DISABLED:
        return RevocationChecker(mode, unsafe_allow_disabled=True)
    fetcher = RequestsFetcher(timeout=TIMEOUT, trust_env=False)
    return RevocationChecker(mode, fetcher=fetcher)


def timed_check(
    checker: RevocationChecker,
    responder: Responder,
    name: str = "ssp",
    at: dt.datetime | None = None,
):  # type: ignore[no-untyped-def]
    pki = responder.pki
    issued = pki.get(name)
    issuer = pki.root if name == "sub-ca" else pki.sub_ca
    start = time.monotonic()
    result = checker.check(issued.certificate, issuer.certificate, at=at or pki.reference_time)
    return result, time.monotonic() - start


def expected(fault: Fault, mode: M) -> RevocationStatus:
    if mode in (M.OFFLINE, M.DISABLED):
        return RevocationStatus.GOOD
    if fault in OCSP_ONLY_FAULTS and mode is not M.OCSP_ONLY:
        return RevocationStatus.GOOD  # the CRL answers
    return RevocationStatus.UNKNOWN


@pytest.mark.network
@pytest.mark.parametrize("mode", list(M), ids=lambda m: m.value)
@pytest.mark.parametrize("fault", BOTH + OCSP_ONLY_FAULTS, ids=lambda f: f.value)
def test_fault_matrix(spinepki_responder: Responder, fault: Fault, mode: M) -> None:
    """Each fault, on every endpoint, gives each mode its outcome within the time limit."""
    spinepki_responder.set_fault(fault, delay=5.0 if fault is Fault.SLOW else 0.05)
    with make_checker(mode, spinepki_responder) as checker:
        result, elapsed = timed_check(checker, spinepki_responder)
    assert result.status is expected(fault, mode), result.problems
    assert elapsed <= TIMEOUT * 1.1 + SLACK, elapsed
    if result.status is RevocationStatus.UNKNOWN:
        assert result.evidence is None
        assert len(result.problems) == FETCHES[mode]
        assert result.soft_failed is (mode is M.SOFT_FAIL)
    if mode in (M.OFFLINE, M.DISABLED):
        assert sum(spinepki_responder.hits.values()) == 0


@pytest.mark.network
class TestHealthy:
    def test_good_and_revoked_by_crl(self, spinepki_responder: Responder) -> None:
        """HARD_FAIL: GOOD and REVOKED from the served CRL; one fetch for both."""
        with make_checker(M.HARD_FAIL, spinepki_responder) as checker:
            good, _ = timed_check(checker, spinepki_responder, "ssp")
            revoked, _ = timed_check(checker, spinepki_responder, "revoked")
        assert good.status is RevocationStatus.GOOD
        assert revoked.status is RevocationStatus.REVOKED
        assert revoked.reason is x509.ReasonFlags.key_compromise
        assert spinepki_responder.hits == {Endpoint.CRL: 1}

    @pytest.mark.parametrize("signer", list(OCSPSigner))
    def test_ocsp_signers(self, spinepki_responder: Responder, signer: OCSPSigner) -> None:
        """OCSP_ONLY works with CA-signed and delegated responses; the nonce is echoed."""
        spinepki_responder.ocsp_signer = signer
        with make_checker(M.OCSP_ONLY, spinepki_responder) as checker:
            good, _ = timed_check(checker, spinepki_responder, "ssp")
            revoked, _ = timed_check(checker, spinepki_responder, "revoked")
            sub, _ = timed_check(checker, spinepki_responder, "sub-ca")
        assert good.status is RevocationStatus.GOOD
        assert good.evidence is not None
        assert good.evidence.produced_at is not None
        assert revoked.status is RevocationStatus.REVOKED
        # The Sub CA carries the OCSP URL too, and the root answers for it (signed by
        # the root itself: the delegated responder answers for the Sub CA's certificates).
        assert sub.status is RevocationStatus.GOOD

    def test_sub_ca_on_root_crl(self, spinepki_responder: Responder) -> None:
        """A revoked Sub CA is REVOKED on the root's CRL."""
        with make_checker(M.HARD_FAIL, spinepki_responder) as checker:
            assert (
                timed_check(checker, spinepki_responder, "sub-ca")[0].status
                is RevocationStatus.GOOD
            )
        spinepki_responder.pki.revoke("sub-ca")
        with make_checker(M.HARD_FAIL, spinepki_responder) as checker:
            assert (
                timed_check(checker, spinepki_responder, "sub-ca")[0].status
                is RevocationStatus.REVOKED
            )


@pytest.mark.network
class TestFallback:
    @pytest.mark.parametrize(
        ("fault", "source"),
        [
            (Fault.DOWN, "ocsp"),
            (Fault.GARBAGE, "ocsp"),
            # A stale CRL is no evidence of GOOD, but its (permanent) listing of the
            # certificate is still the CA's word: REVOKED without asking OCSP.
            (Fault.STALE, "crl"),
            (Fault.HTTP_500, "ocsp"),
        ],
    )
    def test_crl_fault_ocsp_answers(
        self, spinepki_responder: Responder, fault: Fault, source: str
    ) -> None:
        """HARD_FAIL: with the CRL spoiled, OCSP answers and the CRL problem is kept."""
        spinepki_responder.set_fault(fault, on=Endpoint.CRL)
        with make_checker(M.HARD_FAIL, spinepki_responder) as checker:
            result, _ = timed_check(checker, spinepki_responder, "revoked")
        assert result.status is RevocationStatus.REVOKED
        assert result.evidence is not None
        assert result.evidence.source == source
        assert len(result.problems) == 1

    @pytest.mark.parametrize("fault", [Fault.SLOW, Fault.WRONG_NONCE, Fault.UNKNOWN_STATUS])
    def test_ocsp_fault_crl_answers(self, spinepki_responder: Responder, fault: Fault) -> None:
        """PREFER_OCSP: with OCSP spoiled, the CRL answers, within one timeout."""
        spinepki_responder.set_fault(fault, on=Endpoint.OCSP, delay=5.0)
        with make_checker(M.PREFER_OCSP, spinepki_responder) as checker:
            result, elapsed = timed_check(checker, spinepki_responder)
        assert result.status is RevocationStatus.GOOD
        assert result.evidence is not None
        assert result.evidence.source == "crl"
        assert elapsed <= TIMEOUT * 1.1 + SLACK

    def test_soft_fail_still_sees_revocation(self, spinepki_responder: Responder) -> None:
        """SOFT_FAIL with OCSP down still reports the CRL's REVOKED."""
        spinepki_responder.set_fault(Fault.DOWN, on=Endpoint.OCSP)
        with make_checker(M.SOFT_FAIL, spinepki_responder) as checker:
            result, _ = timed_check(checker, spinepki_responder, "revoked")
        assert result.status is RevocationStatus.REVOKED
        assert not result.soft_failed

    def test_recovery_after_backoff(self, spinepki_responder: Responder) -> None:
        """After the responder recovers, the next check past the backoff gets evidence."""
        at = spinepki_responder.pki.reference_time
        with make_checker(M.CRL_ONLY, spinepki_responder) as checker:
            with spinepki_responder.fault(Fault.HTTP_500):
                assert (
                    timed_check(checker, spinepki_responder, at=at)[0].status
                    is RevocationStatus.UNKNOWN
                )
            result, _ = timed_check(checker, spinepki_responder, at=at + dt.timedelta(minutes=1))
        assert result.status is RevocationStatus.GOOD


@pytest.mark.network
def test_time_is_an_input(spinepki_responder: Responder) -> None:
    """Evidence served for the reference time is stale a week later (no sleeping)."""
    later = spinepki_responder.pki.reference_time + dt.timedelta(days=8)
    with make_checker(M.HARD_FAIL, spinepki_responder) as checker:
        result, _ = timed_check(checker, spinepki_responder, at=later)
    assert result.status is RevocationStatus.UNKNOWN
    assert all("stale" in p for p in result.problems)
