"""Revocation freshness (issue 11 item 5): ``max_staleness`` is the worst case from a CA
publishing a revocation to the certificate being refused, through every cache.

The finding: after ``spinepki pki revoke`` and a re-served CRL listing the serial, the
revoked certificate was still accepted - the 300 s background refresh and the
validator's 5-minute result cache added up, a reload kept the cached evidence, and
nothing documented the worst case. Time is an input (``at=``) throughout.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from spinepki.errors import ConfigurationError, FetchError
from spinepki.revocation import (
    DEFAULT_MAX_STALENESS,
    RevocationChecker,
    RevocationLimits,
    RevocationStatus,
    StaticFetcher,
)
from spinepki.testpki import KeyType, TestPKI
from spinepki.validation import ClientCertValidator, FailureCode

from ._helpers import M, make_ocsp
from .conftest import BASE, CRL_URL, OCSP_URL, ROOT_CRL_URL, der

S = DEFAULT_MAX_STALENESS
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def pki() -> TestPKI:
    """A PKI of its own per test: the tests revoke certificates in it."""
    return TestPKI.create(key_type=KeyType.EC_P256, base_url=BASE)


@pytest.fixture
def at(pki: TestPKI) -> dt.datetime:
    return pki.reference_time


def _fetcher(pki: TestPKI, at: dt.datetime) -> StaticFetcher:
    return StaticFetcher(
        crls={
            CRL_URL: der(pki.crl(at=at - dt.timedelta(hours=1))),
            ROOT_CRL_URL: der(pki.root_crl()),
        }
    )


def _publish(pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime, name: str = "ssp") -> None:
    """The CA revokes ``name`` and its distribution point serves the new CRL."""
    pki.revoke(name, at=at)
    ca = "root" if name == "sub-ca" else "sub-ca"
    url = ROOT_CRL_URL if ca == "root" else CRL_URL
    fetcher.crls[url] = der(pki.crl(ca, at=at - dt.timedelta(hours=1)))


def _status(checker: RevocationChecker, pki: TestPKI, at: dt.datetime) -> RevocationStatus:
    return checker.check(pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=at).status


class TestMaxStaleness:
    def test_a_cached_crl_is_asked_for_again_after_max_staleness(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """Not before (the cache is used), and exactly then: the stated bound."""
        fetcher = _fetcher(pki, at)
        checker = RevocationChecker(M.CRL_ONLY, fetcher=fetcher)
        assert _status(checker, pki, at) is RevocationStatus.GOOD
        _publish(pki, fetcher, at)
        assert _status(checker, pki, at + S - SECOND) is RevocationStatus.GOOD
        assert len(fetcher.calls) == 1
        assert _status(checker, pki, at + S) is RevocationStatus.REVOKED
        assert len(fetcher.calls) == 2

    def test_results_say_until_when_they_may_be_reused(self, pki: TestPKI, at: dt.datetime) -> None:
        checker = RevocationChecker(
            M.CRL_ONLY, fetcher=_fetcher(pki, at), limits=RevocationLimits(max_staleness=60)
        )
        result = checker.check(pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=at)
        assert result.reuse_until == at + dt.timedelta(seconds=60)
        assert result.valid_until == at + dt.timedelta(seconds=60)
        later = checker.check(pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=at + SECOND)
        assert later.valid_until == at + dt.timedelta(seconds=60)  # from the same fetch

    def test_when_the_ca_cannot_be_reached_the_crl_in_hand_serves_to_next_update(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """Availability: a refetch that fails keeps the cached CRL (until its nextUpdate)
        but its answers are not cacheable (valid_until already past)."""
        fetcher = _fetcher(pki, at)
        checker = RevocationChecker(M.CRL_ONLY, fetcher=fetcher)
        _status(checker, pki, at)
        fetcher.crls[CRL_URL] = FetchError("down", source=CRL_URL)
        result = checker.check(pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=at + S)
        assert result.status is RevocationStatus.GOOD
        assert result.valid_until is not None
        assert result.valid_until <= at + S

    def test_an_ocsp_answer_is_asked_for_again_after_max_staleness(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        answers = {"status": "good"}

        def responder(request_der: bytes) -> bytes:
            from cryptography.x509 import ocsp

            request = ocsp.load_der_ocsp_request(request_der)
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            status = (
                ocsp.OCSPCertStatus.REVOKED
                if answers["status"] == "revoked"
                else ocsp.OCSPCertStatus.GOOD
            )
            return make_ocsp(
                pki, pki.leaf("ssp").certificate, pki.sub_ca, this_update=at, nonce=nonce,
                status=status,
            )  # fmt: skip

        fetcher = StaticFetcher(ocsp={OCSP_URL: responder})
        checker = RevocationChecker(M.OCSP_ONLY, fetcher=fetcher)
        assert _status(checker, pki, at) is RevocationStatus.GOOD
        generation = checker.generation
        answers["status"] = "revoked"
        assert _status(checker, pki, at + S - SECOND) is RevocationStatus.GOOD
        assert _status(checker, pki, at + S) is RevocationStatus.REVOKED
        assert checker.generation > generation  # a status changed
        # The responder gone: the answer in hand is used (within its nextUpdate).
        fetcher.ocsp[OCSP_URL] = FetchError("down", source=OCSP_URL)
        assert _status(checker, pki, at + 2 * S) is RevocationStatus.REVOKED

    @pytest.mark.parametrize(
        "bad", [0, -1, dt.timedelta(0), True, "300", 1e18, float("inf"), float("nan")]
    )
    def test_bad_max_staleness(self, bad: Any) -> None:
        with pytest.raises(ConfigurationError) as info:
            RevocationLimits(max_staleness=bad)
        assert info.value.source == "RevocationLimits.max_staleness"

    def test_default_is_300_seconds(self) -> None:
        assert RevocationChecker().max_staleness == dt.timedelta(seconds=300) == S


class TestGeneration:
    def test_a_refresh_that_revokes_moves_it(self, pki: TestPKI, at: dt.datetime) -> None:
        fetcher = _fetcher(pki, at)
        checker = RevocationChecker(M.CRL_ONLY, fetcher=fetcher)
        _status(checker, pki, at)
        before = checker.generation
        assert checker.refresh(at=at + SECOND) == ()
        assert checker.generation == before  # the same serials: nothing changed
        _publish(pki, fetcher, at)
        assert checker.refresh(at=at + 2 * SECOND) == ()
        assert checker.generation == before + 1
        assert _status(checker, pki, at + 2 * SECOND) is RevocationStatus.REVOKED

    def test_reload_refetches_now_and_forgets(self, pki: TestPKI, at: dt.datetime) -> None:
        """What a trust reload does: the CRL is fetched again at once, failures and OCSP
        answers are forgotten, and the generation moves on."""
        fetcher = _fetcher(pki, at)
        checker = RevocationChecker(M.CRL_ONLY, fetcher=fetcher)
        _status(checker, pki, at)
        _publish(pki, fetcher, at)
        before = checker.generation
        assert checker.reload(at=at + SECOND) == ()
        assert checker.generation > before
        assert _status(checker, pki, at + SECOND) is RevocationStatus.REVOKED
        assert len(fetcher.calls) == 2


class TestThroughTheValidator:
    """The validator's result cache honours the same bound."""

    def _validator(self, pki: TestPKI, fetcher: StaticFetcher) -> ClientCertValidator:
        checker = RevocationChecker(M.CRL_ONLY, fetcher=fetcher)
        return ClientCertValidator(pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=checker)

    def test_a_cached_result_expires_with_its_evidence(self, pki: TestPKI, at: dt.datetime) -> None:
        fetcher = _fetcher(pki, at)
        validator = self._validator(pki, fetcher)
        leaf = pki.leaf("ssp").certificate
        assert validator.validate(leaf, at=at).valid
        _publish(pki, fetcher, at)
        assert validator.validate(leaf, at=at + S - SECOND).from_cache
        result = validator.validate(leaf, at=at + S)
        assert not result.valid
        assert FailureCode.REVOKED in {f.code for f in result.failures}

    def test_a_status_change_drops_cached_results_at_once(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """A refresh (the provider's background one) that revokes: the very next
        validation is refused, though the cached result's window has not ended."""
        fetcher = _fetcher(pki, at)
        validator = self._validator(pki, fetcher)
        leaf = pki.leaf("ssp").certificate
        assert validator.validate(leaf, at=at).valid
        assert validator.cached(leaf, at=at + SECOND) is not None
        _publish(pki, fetcher, at)
        validator.revocation.refresh(at=at + SECOND)
        assert validator.cached(leaf, at=at + SECOND) is None
        assert not validator.validate(leaf, at=at + SECOND).valid

    def test_a_revoked_sub_ca_is_refused_at_once_after_a_refresh(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        fetcher = _fetcher(pki, at)
        validator = self._validator(pki, fetcher)
        leaf = pki.leaf("ssp").certificate
        assert validator.validate(leaf, at=at).valid
        _publish(pki, fetcher, at, name="sub-ca")
        validator.revocation.refresh(at=at + SECOND)
        result = validator.validate(leaf, at=at + SECOND)
        assert not result.valid

    @given(
        steps=st.lists(st.integers(min_value=0, max_value=900), min_size=1, max_size=12),
        published=st.integers(min_value=0, max_value=900),
        refreshes=st.lists(st.integers(min_value=0, max_value=1200), max_size=4),
    )
    @settings(max_examples=60, deadline=None)
    def test_the_bound_holds_for_any_schedule(
        self, steps: list[int], published: int, refreshes: list[int]
    ) -> None:
        """For any times of validation and of background refresh, and any moment of
        publication: every validation at or after publication + max_staleness refuses."""
        pki = TestPKI.create(key_type=KeyType.EC_P256, base_url=BASE)
        at = pki.reference_time
        good = der(pki.crl(at=at - dt.timedelta(hours=1)))
        pki.revoke("ssp", at=at)
        revoked = der(pki.crl(at=at - dt.timedelta(hours=1)))
        now = {"t": at}

        class Fetcher(StaticFetcher):
            def fetch_crl(self, url: str, *, timeout: float | None = None) -> bytes:
                if url == CRL_URL:
                    return revoked if now["t"] >= at + dt.timedelta(seconds=published) else good
                return super().fetch_crl(url, timeout=timeout)

        fetcher = Fetcher(crls={ROOT_CRL_URL: der(pki.root_crl())})
        validator = self._validator(pki, fetcher)
        leaf = pki.leaf("ssp").certificate
        events = sorted([(s, "validate") for s in steps] + [(r, "refresh") for r in refreshes])
        for offset, kind in events:
            now["t"] = at + dt.timedelta(seconds=offset)
            if kind == "refresh":
                validator.revocation.refresh(at=now["t"])
                continue
            result = validator.validate(leaf, at=now["t"])
            if offset >= published + S.total_seconds():
                assert not result.valid, (offset, published, events)
