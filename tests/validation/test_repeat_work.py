"""What a cold validation reuses, and that reusing it never changes an answer.

A validation with the result cache off still reuses three things: the leaf's
time-independent verdicts (per certificate object), the revocation layer's answer index
(which CRL answers for a certificate), and cryptography's verifier within one second.
Each test here changes the world underneath the reused thing and checks the next
validation sees the change.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509 import ocsp
from cryptography.x509.verification import PolicyBuilder, Store

from spinepki.errors import ConfigurationError
from spinepki.revocation import (
    RevocationChecker,
    RevocationLimits,
    RevocationMode,
    RevocationResult,
    RevocationStatus,
    StaticFetcher,
)
from spinepki.testpki import KeyType, TestPKI
from spinepki.validation import ClientCertValidator, FailureCode
from tests._helpers import CLOCKS_GO_BACK
from tests.revocation._helpers import make_ocsp

from .conftest import AT

BASE = "http://crl.test.invalid"
CRL_URL = f"{BASE}/crl/sub-ca.crl"
ROOT_CRL_URL = f"{BASE}/crl/root.crl"
OCSP_URL = f"{BASE}/ocsp"
HOUR = dt.timedelta(hours=1)


def _der(crl: object) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return crl.public_bytes(serialization.Encoding.DER)  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def own_pki() -> TestPKI:
    return TestPKI.create(key_type=KeyType.EC_P256, at=AT, base_url=BASE)


def _setup(pki: TestPKI) -> tuple[ClientCertValidator, RevocationChecker, StaticFetcher]:
    fetcher = StaticFetcher(
        crls={CRL_URL: _der(pki.crl(at=AT - HOUR)), ROOT_CRL_URL: _der(pki.root_crl())}
    )
    checker = RevocationChecker(RevocationMode.HARD_FAIL, fetcher=fetcher)
    validator = ClientCertValidator(
        pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=checker, cache_ttl=0
    )
    return validator, checker, fetcher


class TestRevocationAtHand:
    def test_a_revoked_sub_ca_is_refused_once_its_crl_lists_it(self, own_pki: TestPKI) -> None:
        """Leaf and Sub CA answered from the index, then the root's CRL lists the Sub CA:
        the next validations (walked, then from the index again) refuse it."""
        validator, checker, fetcher = _setup(own_pki)
        leaf = own_pki.leaf("ssp").certificate
        for _ in range(3):
            assert validator.validate(leaf, at=AT).valid
        assert checker.cached(leaf, own_pki.sub_ca.certificate, at=AT) is not None
        own_pki.revoke("sub-ca", at=AT - HOUR)
        fetcher.crls[ROOT_CRL_URL] = _der(own_pki.root_crl())
        assert checker.refresh(at=AT) == ()
        for _ in range(2):
            result = validator.validate(leaf, at=AT)
            assert FailureCode.REVOKED in result.codes
            assert "Level 1C" in str(result.failures[0].certificate_subject)  # the Sub CA

    def test_a_sub_ca_revoked_while_its_crl_was_evicted_is_refused(self, own_pki: TestPKI) -> None:
        """One CRL cached at a time, so the root's is evicted and fetched again on each
        validation: the first one that lists the Sub CA refuses the path (no GOOD verdict
        about the Sub CA outlives the CRL it came from)."""
        fetcher = StaticFetcher(
            crls={CRL_URL: _der(own_pki.crl(at=AT - HOUR)), ROOT_CRL_URL: _der(own_pki.root_crl())}
        )
        checker = RevocationChecker(
            RevocationMode.HARD_FAIL, fetcher=fetcher, limits=RevocationLimits(crl_cache_size=1)
        )
        validator = ClientCertValidator(
            own_pki.trust_store(), ssp_fqdns=own_pki.ssp_fqdn, revocation=checker, cache_size=0
        )
        leaf = own_pki.leaf("ssp").certificate
        for second in range(2):
            assert validator.validate(leaf, at=AT + dt.timedelta(seconds=second)).valid
        own_pki.revoke("sub-ca", at=AT - HOUR)
        fetcher.crls[ROOT_CRL_URL] = _der(own_pki.root_crl())
        result = validator.validate(leaf, at=AT + dt.timedelta(seconds=2))
        assert FailureCode.REVOKED in result.codes

    def test_a_revoked_leaf_is_refused_from_the_index(self, own_pki: TestPKI) -> None:
        validator, checker, fetcher = _setup(own_pki)
        leaf = own_pki.leaf("ssp").certificate
        assert validator.validate(leaf, at=AT).valid
        own_pki.revoke("ssp", at=AT - HOUR)
        fetcher.crls[CRL_URL] = _der(own_pki.crl(at=AT - HOUR))
        checker.refresh(at=AT)
        for _ in range(3):
            assert validator.validate(leaf, at=AT).codes == (FailureCode.REVOKED,)


class _DenyList:
    """A wrapper, not a subclass: its own check() (an operator's deny-list), everything
    else forwarded to the checker inside."""

    def __init__(self, inner: RevocationChecker) -> None:
        self.inner = inner
        self.denied: set[int] = set()
        self.asked = 0

    def check(
        self, cert: x509.Certificate, issuer: x509.Certificate, *, at: dt.datetime
    ) -> RevocationResult:
        self.asked += 1
        if cert.serial_number in self.denied:
            return RevocationResult(RevocationStatus.REVOKED, None, problems=("denied",))
        return self.inner.check(cert, issuer, at=at)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_wrapped_checker_is_asked_every_time(own_pki: TestPKI) -> None:
    wrapper = _DenyList(
        RevocationChecker(RevocationMode.OFFLINE, crls=[own_pki.crl(), own_pki.root_crl()])
    )
    validator = ClientCertValidator(
        own_pki.trust_store(),
        ssp_fqdns=own_pki.ssp_fqdn,
        revocation=wrapper,
        cache_size=0,  # type: ignore[arg-type]
    )
    leaf = own_pki.leaf("ssp").certificate
    for second in range(3):
        assert validator.validate(leaf, at=AT + dt.timedelta(seconds=second)).valid
    assert wrapper.asked == 6  # the leaf and the Sub CA, each time
    wrapper.denied.add(leaf.serial_number)
    assert not validator.validate(leaf, at=AT + dt.timedelta(seconds=5)).valid


class TestCachedResults:
    """A cached result lasts no longer than any revocation evidence about its path."""

    def test_a_refetch_after_an_eviction_that_revokes_the_sub_ca(self, own_pki: TestPKI) -> None:
        """One CRL cached at a time: the root's, fetched again for another leaf, now lists
        the Sub CA, and the leaf validated (and cached) before is refused at once."""
        fetcher = StaticFetcher(
            crls={CRL_URL: _der(own_pki.crl(at=AT - HOUR)), ROOT_CRL_URL: _der(own_pki.root_crl())}
        )
        checker = RevocationChecker(
            RevocationMode.HARD_FAIL, fetcher=fetcher, limits=RevocationLimits(crl_cache_size=1)
        )
        validator = ClientCertValidator(
            own_pki.trust_store(), ssp_fqdns=own_pki.ssp_fqdn, revocation=checker
        )
        first = own_pki.leaf("ssp").certificate
        other = own_pki.issue("ssp-2", fqdn=own_pki.ssp_fqdn).certificate
        assert validator.validate(first, at=AT).valid
        own_pki.revoke("sub-ca", at=AT - HOUR)
        fetcher.crls[ROOT_CRL_URL] = _der(own_pki.root_crl())
        later = AT + dt.timedelta(seconds=10)
        assert FailureCode.REVOKED in validator.validate(other, at=later).codes
        again = validator.validate(first, at=later + dt.timedelta(seconds=10))
        assert not again.from_cache
        assert FailureCode.REVOKED in again.codes

    def test_the_sub_cas_evidence_bounds_the_result(self, own_pki: TestPKI) -> None:
        """The root CRL was fetched at 0 s and lists the Sub CA from 1 s; a leaf whose own
        CRL is first fetched at 290 s is valid then, but that result is not reused past
        the root CRL's max_staleness (300 s)."""
        other_url = f"{BASE}/crl/sub-ca-2.crl"
        points = x509.CRLDistributionPoints(
            [x509.DistributionPoint([x509.UniformResourceIdentifier(other_url)], None, None, None)]
        )
        late = own_pki.issue(
            "late", fqdn=own_pki.ssp_fqdn, extensions=[x509.Extension(points.oid, False, points)]
        ).certificate
        sub_crl = _der(own_pki.crl(at=AT - HOUR))
        fetcher = StaticFetcher(
            crls={CRL_URL: sub_crl, other_url: sub_crl, ROOT_CRL_URL: _der(own_pki.root_crl())}
        )
        checker = RevocationChecker(RevocationMode.HARD_FAIL, fetcher=fetcher)
        validator = ClientCertValidator(
            own_pki.trust_store(), ssp_fqdns=own_pki.ssp_fqdn, revocation=checker
        )
        at = AT
        assert validator.validate(own_pki.leaf("ssp").certificate, at=at).valid
        own_pki.revoke("sub-ca", at=at)
        fetcher.crls[ROOT_CRL_URL] = _der(own_pki.root_crl())
        assert validator.validate(late, at=at + dt.timedelta(seconds=290)).valid
        result = validator.validate(late, at=at + dt.timedelta(seconds=305))
        assert not result.from_cache
        assert FailureCode.REVOKED in result.codes

    def test_a_revoked_sub_ca_by_ocsp_with_nothing_cached(self) -> None:
        """OCSP answers without nextUpdate are not cached, so a REVOKED one has nothing to
        be compared with: it still drops the results cached before it."""
        pki = TestPKI.create(key_type=KeyType.EC_P256, base_url=BASE)
        at = pki.reference_time
        first = pki.leaf("ssp").certificate
        other = pki.issue("ssp-2", fqdn=pki.ssp_fqdn).certificate
        sub_status = {"now": ocsp.OCSPCertStatus.GOOD}

        def responder(request_der: bytes) -> bytes:
            serial = ocsp.load_der_ocsp_request(request_der).serial_number
            if serial == pki.sub_ca.certificate.serial_number:
                return make_ocsp(
                    pki, pki.sub_ca.certificate, pki.root, this_update=at, next_update=None,
                    status=sub_status["now"],
                )  # fmt: skip
            leaf = first if serial == first.serial_number else other
            return make_ocsp(pki, leaf, pki.sub_ca, this_update=at, next_update=None)

        checker = RevocationChecker(
            RevocationMode.OCSP_ONLY,
            fetcher=StaticFetcher(ocsp={OCSP_URL: responder}),
            ocsp_url=OCSP_URL,
        )
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=checker
        )
        assert validator.validate(first, at=at).valid
        sub_status["now"] = ocsp.OCSPCertStatus.REVOKED
        later = at + dt.timedelta(seconds=30)
        assert FailureCode.REVOKED in validator.validate(other, at=later).codes
        again = validator.validate(first, at=later)
        assert not again.from_cache
        assert FailureCode.REVOKED in again.codes


class TestVerifierWithinASecond:
    def test_cryptography_keeps_whole_seconds(self) -> None:
        """What reusing a verifier within one second rests on: a verifier built for a time
        with microseconds verifies at the whole second (were that to change, the reuse
        would have to go)."""
        pki = TestPKI.create(key_type=KeyType.EC_P256, at=AT)
        at = AT + dt.timedelta(microseconds=999_999)
        verifier = PolicyBuilder().store(Store([pki.root.certificate])).time(at)
        assert verifier.build_client_verifier().policy.validation_time == AT.replace(tzinfo=None)

    def test_a_ca_expiring_between_two_validations_is_seen(self, own_pki: TestPKI) -> None:
        """A Sub CA whose notAfter falls between two validations a second apart: the
        verifier of the first second is not reused for the next."""
        end = AT + dt.timedelta(seconds=30)
        own_pki.issue_ca("short-ca", cn="spinepki Short", not_after=end)
        leaf = own_pki.issue("short-leaf", fqdn=own_pki.ssp_fqdn, issuer="short-ca")
        checker = RevocationChecker(RevocationMode.DISABLED, unsafe_allow_disabled=True)
        validator = ClientCertValidator(
            own_pki.trust_store("root", "short-ca"),
            ssp_fqdns=own_pki.ssp_fqdn,
            revocation=checker,
            cache_ttl=0,
        )
        cert = leaf.certificate
        assert validator.validate(cert, at=end - dt.timedelta(microseconds=1)).valid
        assert validator.validate(cert, at=end).valid  # notAfter is inclusive
        later = validator.validate(cert, at=end + dt.timedelta(seconds=1))
        assert FailureCode.EXPIRED in later.codes
        # And back: a time earlier again gets its own verifier.
        assert validator.validate(cert, at=end - dt.timedelta(seconds=5)).valid

    def test_the_repeated_hour_is_not_the_same_second(self) -> None:
        """01:30:00.1 before the clocks go back and 01:30:00.9 after are an hour apart, so
        a CA that expired in between is seen (the verifier is per second of UTC)."""
        pki = TestPKI.create(key_type=KeyType.EC_P256, at=dt.datetime(2024, 10, 26, tzinfo=dt.UTC))
        pki.issue_ca(
            "short-ca", cn="spinepki Short", not_after=dt.datetime(2024, 10, 27, 1, tzinfo=dt.UTC)
        )
        cert = pki.issue("short-leaf", fqdn=pki.ssp_fqdn, issuer="short-ca").certificate
        validator = ClientCertValidator(
            pki.trust_store("root", "short-ca"),
            ssp_fqdns=pki.ssp_fqdn,
            revocation=RevocationChecker(RevocationMode.DISABLED, unsafe_allow_disabled=True),
            cache_ttl=0,
        )
        before = dt.datetime(2024, 10, 27, 1, 30, 0, 100_000, tzinfo=CLOCKS_GO_BACK, fold=0)
        after = before.replace(microsecond=900_000, fold=1)
        assert validator.validate(cert, at=before).valid  # 00:30Z
        assert FailureCode.EXPIRED in validator.validate(cert, at=after).codes  # 01:30Z


@pytest.mark.parametrize("bad", [-1, 1e18, float("inf"), float("nan"), "300", True])
def test_a_cache_ttl_that_cannot_work_is_a_configuration_error(bad: object) -> None:
    pki = TestPKI.create(key_type=KeyType.EC_P256, at=AT)
    with pytest.raises(ConfigurationError) as info:
        ClientCertValidator(pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, cache_ttl=bad)  # type: ignore[arg-type]
    assert info.value.source == "cache_ttl"
