"""What the checker remembers of a distribution point's CRL after the CRL leaves its cache,
and when ``generation`` moves on (which empties the validator's cached results).

Found by reviews of the answer index: a CRL fetched again after an eviction, or fetched for
the first time after GOOD answers came from elsewhere, could revoke a certificate whose
valid result stayed cached; a listing digest built on Python's ``hash`` could collide;
and a revoked client reconnecting emptied every cached result each time. Each rule has
its test here.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509 import ocsp

from spinepki.errors import FetchError
from spinepki.revocation import (
    RevocationChecker,
    RevocationLimits,
    StaticFetcher,
    _checker,
)
from spinepki.testpki import KeyType, TestPKI
from spinepki.validation import ClientCertValidator

from ._helpers import M, make_crl, make_ocsp
from .conftest import BASE, CRL_URL, OCSP_URL, ROOT_CRL_URL, der

HOUR = dt.timedelta(hours=1)


def _s(seconds: int) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)


@pytest.fixture
def own_pki() -> TestPKI:
    return TestPKI.create(key_type=KeyType.EC_P256, base_url=BASE)


def _validator(pki: TestPKI, checker: RevocationChecker) -> ClientCertValidator:
    return ClientCertValidator(pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=checker)


class TestFirstFetch:
    def test_not_news_at_start_up(self, own_pki: TestPKI) -> None:
        """The first CRL a new checker fetches changes nothing cached: the first
        validation's result is reused."""
        at = own_pki.reference_time
        fetcher = StaticFetcher(
            crls={CRL_URL: der(own_pki.crl(at=at - HOUR)), ROOT_CRL_URL: der(own_pki.root_crl())}
        )
        checker = RevocationChecker(M.HARD_FAIL, fetcher=fetcher)
        validator = _validator(own_pki, checker)
        leaf = own_pki.leaf("ssp").certificate
        assert validator.validate(leaf, at=at).valid
        assert validator.validate(leaf, at=at + _s(10)).from_cache
        assert checker.generation == 0

    def test_news_after_good_answers_from_ocsp(self, own_pki: TestPKI) -> None:
        """The distribution point was down, OCSP said GOOD and the result was cached; the
        first CRL fetched when it is back lists the leaf: the cached result goes."""
        at = own_pki.reference_time
        leaf = own_pki.leaf("ssp").certificate
        fetcher = StaticFetcher(
            crls={
                CRL_URL: FetchError("down", source=CRL_URL),
                ROOT_CRL_URL: der(own_pki.root_crl()),
            },
            ocsp={OCSP_URL: make_ocsp(own_pki, leaf, own_pki.sub_ca, this_update=at - _s(60))},
        )
        checker = RevocationChecker(M.HARD_FAIL, fetcher=fetcher)
        validator = _validator(own_pki, checker)
        assert validator.validate(leaf, at=at).valid
        own_pki.revoke("ssp", at=at)
        fetcher.crls[CRL_URL] = der(own_pki.crl(at=at))
        other = own_pki.leaf("provider").certificate
        checker.check(other, own_pki.sub_ca.certificate, at=at + _s(40))  # fetches the CRL
        result = validator.validate(leaf, at=at + _s(50))
        assert not result.from_cache
        assert not result.valid

    def test_news_after_good_answers_from_another_url(self, own_pki: TestPKI) -> None:
        at = own_pki.reference_time
        first, second = f"{BASE}/crl/a.crl", f"{BASE}/crl/b.crl"
        points = x509.CRLDistributionPoints(
            [
                x509.DistributionPoint(
                    [x509.UniformResourceIdentifier(first), x509.UniformResourceIdentifier(second)],
                    None,
                    None,
                    None,
                )
            ]
        )
        extension = x509.Extension(points.oid, False, points)
        leaf = own_pki.issue("l1", fqdn=own_pki.ssp_fqdn, extensions=[extension]).certificate
        other = own_pki.issue("l2", fqdn=own_pki.ssp_fqdn, extensions=[extension]).certificate
        fetcher = StaticFetcher(
            crls={
                first: FetchError("down", source=first),
                second: der(own_pki.crl(at=at - HOUR)),
                ROOT_CRL_URL: der(own_pki.root_crl()),
            }
        )
        checker = RevocationChecker(M.HARD_FAIL, fetcher=fetcher)
        validator = _validator(own_pki, checker)
        assert validator.validate(leaf, at=at).valid
        own_pki.revoke("l1", at=at)
        fetcher.crls[first] = fetcher.crls[second] = der(own_pki.crl(at=at))
        checker.check(other, own_pki.sub_ca.certificate, at=at + _s(40))  # first fetch of a.crl
        assert not validator.validate(leaf, at=at + _s(50)).valid


class TestAfterEviction:
    def _evicting(self, pki: TestPKI, crl: bytes) -> tuple[RevocationChecker, StaticFetcher]:
        fetcher = StaticFetcher(crls={CRL_URL: crl, ROOT_CRL_URL: der(pki.root_crl())})
        limits = RevocationLimits(crl_cache_size=1)  # the two CRLs evict each other
        return RevocationChecker(M.HARD_FAIL, fetcher=fetcher, limits=limits), fetcher

    def test_a_forgotten_distribution_point_is_compared_with_the_cache(
        self, own_pki: TestPKI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With room to remember one distribution point, the Sub CA's is forgotten while
        its CRL is still cached: a refresh that revokes still moves the generation."""
        monkeypatch.setattr(_checker, "_SEEN_MAX", 1)
        at = own_pki.reference_time
        fetcher = StaticFetcher(
            crls={CRL_URL: der(own_pki.crl(at=at - HOUR)), ROOT_CRL_URL: der(own_pki.root_crl())}
        )
        checker = RevocationChecker(M.HARD_FAIL, fetcher=fetcher)
        validator = _validator(own_pki, checker)
        leaf = own_pki.leaf("ssp").certificate
        assert validator.validate(leaf, at=at).valid
        own_pki.revoke("ssp", at=at)
        fetcher.crls[CRL_URL] = der(own_pki.crl(at=at))
        generation = checker.generation
        assert checker.refresh(at=at + _s(10)) == ()
        assert checker.generation > generation
        assert not validator.validate(leaf, at=at + _s(20)).valid


def test_listings_that_python_hash_would_confuse(own_pki: TestPKI) -> None:
    """{x} and {x + 2**61 - 1} hash alike in CPython: a CRL that drops one expired entry
    and lists the leaf instead must still move the generation."""
    at = own_pki.reference_time
    leaf, sub = own_pki.leaf("ssp").certificate, own_pki.sub_ca
    serial = leaf.serial_number
    twin = serial + (2**61 - 1) if (serial + 2**61).bit_length() < 159 else serial - (2**61 - 1)
    assert hash(frozenset({twin})) == hash(frozenset({serial}))
    before = make_crl(sub, this_update=at - HOUR, serials=[twin], number=10)
    after = make_crl(sub, this_update=at - _s(60), serials=[serial], number=11)
    fetcher = StaticFetcher(crls={CRL_URL: der(before), ROOT_CRL_URL: der(own_pki.root_crl())})
    checker = RevocationChecker(M.HARD_FAIL, fetcher=fetcher)
    validator = _validator(own_pki, checker)
    assert validator.validate(leaf, at=at).valid
    fetcher.crls[CRL_URL] = der(after)
    generation = checker.generation
    assert checker.refresh(at=at + _s(10)) == ()
    assert checker.generation > generation
    assert not validator.validate(leaf, at=at + _s(20)).valid


def test_a_revoked_client_reconnecting_is_news_once(own_pki: TestPKI) -> None:
    """OCSP answers without nextUpdate are not cached: the first REVOKED about a
    certificate moves the generation on, the same answer again does not, so a revoked
    client connecting every ten seconds cannot keep emptying everyone's cached results."""
    at = own_pki.reference_time
    good = own_pki.leaf("ssp").certificate
    bad = own_pki.leaf("revoked").certificate
    sub, root = own_pki.sub_ca, own_pki.root
    start = at - _s(60)
    answers = {
        good.serial_number: make_ocsp(own_pki, good, sub, this_update=start, next_update=None),
        bad.serial_number: make_ocsp(
            own_pki, bad, sub, this_update=start, next_update=None,
            status=ocsp.OCSPCertStatus.REVOKED,
        ),
        sub.certificate.serial_number: make_ocsp(
            own_pki, sub.certificate, root, this_update=start, next_update=None
        ),
    }  # fmt: skip

    def responder(request: bytes) -> bytes:
        return answers[ocsp.load_der_ocsp_request(request).serial_number]

    checker = RevocationChecker(M.OCSP_ONLY, fetcher=StaticFetcher(ocsp={OCSP_URL: responder}))
    validator = _validator(own_pki, checker)
    reused = 0
    for step in range(20):
        when = at + _s(10 * step)
        result = validator.validate(good, at=when)
        assert result.valid
        reused += result.from_cache
        assert not validator.validate(bad, at=when + _s(1)).valid
    assert checker.generation == 1
    assert reused >= 17
