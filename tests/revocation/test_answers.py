"""The answer index: a repeat check answers from the CRL that answered last time.

What it must never do is answer differently from the full walk of the sources. The
property test below runs random schedules of checks, CA publications, failing
distribution points, refreshes and clocks going back, and compares every answer the index
gives with the walk's answer at the same moment; the other tests pin each rule that keeps
the two equal (what is remembered, what forgets it) and the bound on memory.
"""

from __future__ import annotations

import datetime as dt
import functools
from contextlib import nullcontext
from unittest import mock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinepki.errors import ConfigurationError, FetchError
from spinepki.revocation import (
    RevocationChecker,
    RevocationLimits,
    RevocationResult,
    RevocationStatus,
    StaticFetcher,
)
from spinepki.revocation._answers import MAX_ANSWERS, Answers
from spinepki.testpki import KeyType, TestPKI
from tests._helpers import CLOCKS_GO_BACK

from ._helpers import M, idp, make_crl, make_ocsp
from .conftest import BASE, CRL_URL, ROOT_CRL_URL, der

HOUR = dt.timedelta(hours=1)
SECOND = dt.timedelta(seconds=1)
MICRO = dt.timedelta(microseconds=1)


@pytest.fixture
def own_pki() -> TestPKI:
    """A PKI of its own: these tests revoke certificates in it."""
    return TestPKI.create(key_type=KeyType.EC_P256, base_url=BASE)


def der_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _fetcher(pki: TestPKI, at: dt.datetime) -> StaticFetcher:
    return StaticFetcher(
        crls={CRL_URL: der(pki.crl(at=at - HOUR)), ROOT_CRL_URL: der(pki.root_crl())}
    )


def _walk(
    checker: RevocationChecker, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime
) -> RevocationResult:
    """The full walk of the sources, no answer taken from the index (it still remembers)."""
    answer = Answers.answer
    Answers.answer = lambda self, cert, issuer, at: None  # type: ignore[method-assign]
    try:
        return checker.check(cert, issuer, at=at)
    finally:
        Answers.answer = answer  # type: ignore[method-assign]


class TestRepeatChecks:
    def test_a_repeat_check_answers_without_the_walk(self, pki: TestPKI, at: dt.datetime) -> None:
        leaf, sub = pki.leaf("ssp").certificate, pki.sub_ca.certificate
        checker = RevocationChecker(M.HARD_FAIL, fetcher=_fetcher(pki, at))
        assert checker.cached(leaf, sub, at=at) is None  # first sight: walk
        first = checker.check(leaf, sub, at=at)
        assert first.status is RevocationStatus.GOOD
        # That walk fetched the CRL, and a store forgets everything: the next walk is the
        # one remembered.
        assert checker.cached(leaf, sub, at=at) is None
        assert checker.check(leaf, sub, at=at) == first
        assert checker.cached(leaf, sub, at=at + SECOND) == first
        assert checker.check(leaf, sub, at=at + SECOND) == first
        assert checker.cached(sub, pki.root.certificate, at=at) is None  # per certificate

    def test_supplied_crls_too(self, pki: TestPKI, at: dt.datetime) -> None:
        leaf, sub = pki.leaf("ssp").certificate, pki.sub_ca.certificate
        checker = RevocationChecker(M.OFFLINE, crls=[pki.crl()])
        first = checker.check(leaf, sub, at=at)
        assert checker.cached(leaf, sub, at=at) == first
        assert first.reuse_until is None

    def test_a_listing_is_read_from_the_crl_each_time(
        self, own_pki: TestPKI, at: dt.datetime
    ) -> None:
        own_pki.revoke("ssp", at=at - HOUR, reason=x509.ReasonFlags.key_compromise)
        leaf, sub = own_pki.leaf("ssp").certificate, own_pki.sub_ca.certificate
        checker = RevocationChecker(M.HARD_FAIL, fetcher=_fetcher(own_pki, at))
        checker.check(leaf, sub, at=at)  # fetches
        walked = checker.check(leaf, sub, at=at)
        assert walked.status is RevocationStatus.REVOKED
        known = checker.cached(leaf, sub, at=at)
        assert known == walked
        assert known is not None
        assert known.reason is x509.ReasonFlags.key_compromise

    def test_the_time_window_is_the_walks(self, pki: TestPKI, at: dt.datetime) -> None:
        """In date with the clock tolerance, inside the fetch window, before the refresh
        point; outside, the walk is asked (and fetches)."""
        leaf, sub = pki.leaf("ssp").certificate, pki.sub_ca.certificate
        fetcher = _fetcher(pki, at)
        checker = RevocationChecker(
            M.CRL_ONLY, fetcher=fetcher, limits=RevocationLimits(max_staleness=600)
        )
        checker.check(leaf, sub, at=at)  # fetches
        checker.check(leaf, sub, at=at)  # remembered
        assert checker.cached(leaf, sub, at=at + dt.timedelta(seconds=599)) is not None
        assert checker.cached(leaf, sub, at=at + dt.timedelta(seconds=600)) is None
        assert checker.cached(leaf, sub, at=at - SECOND) is None  # before the fetch
        assert len(fetcher.calls) == 1

    def test_a_stored_crl_forgets_every_answer(self, own_pki: TestPKI, at: dt.datetime) -> None:
        leaf, sub = own_pki.leaf("ssp").certificate, own_pki.sub_ca.certificate
        fetcher = _fetcher(own_pki, at)
        checker = RevocationChecker(M.HARD_FAIL, fetcher=fetcher)
        assert checker.check(leaf, sub, at=at).status is RevocationStatus.GOOD
        checker.check(leaf, sub, at=at)
        assert checker.cached(leaf, sub, at=at) is not None
        own_pki.revoke("ssp", at=at)
        fetcher.crls[CRL_URL] = der(own_pki.crl(at=at))
        assert checker.refresh(at=at) == ()
        assert checker.cached(leaf, sub, at=at) is None
        assert checker.check(leaf, sub, at=at).status is RevocationStatus.REVOKED
        assert checker.cached(leaf, sub, at=at + SECOND) is not None

    def test_not_remembered_when_a_problem_was_met(self, pki: TestPKI, at: dt.datetime) -> None:
        """A stale supplied CRL, then the distribution point: at another time the supplied
        CRL might answer, so the answer is not remembered."""
        leaf, sub = pki.leaf("ssp").certificate, pki.sub_ca.certificate
        stale = pki.crl(at=at - dt.timedelta(days=30), next_update=dt.timedelta(days=1))
        checker = RevocationChecker(M.HARD_FAIL, crls=[stale], fetcher=_fetcher(pki, at))
        for _ in range(2):  # the first fetches (and a store forgets)
            result = checker.check(leaf, sub, at=at)
            assert result.status is RevocationStatus.GOOD
            assert result.problems
        assert checker.cached(leaf, sub, at=at) is None

    def test_not_remembered_from_a_second_distribution_point(
        self, own_pki: TestPKI, at: dt.datetime
    ) -> None:
        """The first point is down: when it is back, it answers first, so the second
        point's answer is not remembered."""
        other = f"{BASE}/crl/mirror.crl"
        points = x509.CRLDistributionPoints(
            [
                x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None)
                for u in (CRL_URL, other)
            ]
        )
        leaf = own_pki.issue("mirrored", fqdn=own_pki.ssp_fqdn, extensions=[
            x509.Extension(points.oid, False, points)
        ]).certificate  # fmt: skip
        sub = own_pki.sub_ca.certificate
        crl = der(own_pki.crl(at=at - HOUR))
        fetcher = StaticFetcher(crls={CRL_URL: FetchError("down", source=CRL_URL), other: crl})
        checker = RevocationChecker(M.CRL_ONLY, fetcher=fetcher)
        for _ in range(2):
            result = checker.check(leaf, sub, at=at)
            assert result.status is RevocationStatus.GOOD
            assert result.problems
        assert checker.cached(leaf, sub, at=at) is None

    def test_several_supplied_crls_are_always_compared(self, pki: TestPKI, at: dt.datetime) -> None:
        leaf, sub = pki.leaf("ssp").certificate, pki.sub_ca.certificate
        checker = RevocationChecker(M.OFFLINE, crls=[pki.crl(), pki.crl(at=at - 2 * HOUR)])
        assert checker.check(leaf, sub, at=at).status is RevocationStatus.GOOD
        assert checker.cached(leaf, sub, at=at) is None

    def test_a_scoped_crl_is_not_remembered(self, pki: TestPKI, at: dt.datetime) -> None:
        leaf, sub = pki.leaf("ssp").certificate, pki.sub_ca.certificate
        scoped = make_crl(
            pki.sub_ca, this_update=at - HOUR, extensions=[(idp(user_certs=True), True)]
        )
        checker = RevocationChecker(M.OFFLINE, crls=[scoped])
        assert checker.check(leaf, sub, at=at).status is RevocationStatus.GOOD
        assert checker.cached(leaf, sub, at=at) is None

    @pytest.mark.parametrize("mode", [M.OCSP_ONLY, M.PREFER_OCSP])
    def test_never_where_ocsp_is_asked_first(self, pki: TestPKI, at: dt.datetime, mode: M) -> None:
        leaf, sub = pki.leaf("ssp").certificate, pki.sub_ca.certificate
        answer = make_ocsp(pki, leaf, pki.sub_ca, this_update=at - HOUR)
        checker = RevocationChecker(mode, fetcher=StaticFetcher(ocsp={f"{BASE}/ocsp": answer}))
        checker.check(leaf, sub, at=at)
        assert checker.cached(leaf, sub, at=at) is None

    def test_never_where_a_supplied_ocsp_answer_could_overrule(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        leaf, sub = pki.leaf("ssp").certificate, pki.sub_ca.certificate
        answer = make_ocsp(pki, leaf, pki.sub_ca, this_update=at - HOUR)
        checker = RevocationChecker(M.OFFLINE, crls=[pki.crl()], ocsp_responses=[answer])
        assert checker.check(leaf, sub, at=at).status is RevocationStatus.GOOD
        assert checker.cached(leaf, sub, at=at) is None

    def test_never_when_disabled(self, pki: TestPKI, at: dt.datetime) -> None:
        checker = RevocationChecker(M.DISABLED, unsafe_allow_disabled=True)
        leaf, sub = pki.leaf("ssp").certificate, pki.sub_ca.certificate
        checker.check(leaf, sub, at=at)
        assert checker.cached(leaf, sub, at=at) is None

    @pytest.mark.parametrize("how", ["subclass", "instance", "patch"])
    def test_never_when_check_is_replaced(self, pki: TestPKI, at: dt.datetime, how: str) -> None:
        """A replaced check() (a deny-list, an audit hook, a spy) must see every question:
        after it has once answered, nothing is answered in its place."""
        leaf, sub = pki.leaf("ssp").certificate, pki.sub_ca.certificate
        plain = RevocationChecker.check
        denied: set[int] = set()

        def deny(
            self: RevocationChecker,
            cert: x509.Certificate,
            issuer: x509.Certificate,
            *,
            at: dt.datetime,
        ) -> RevocationResult:
            if cert.serial_number in denied:
                return RevocationResult(RevocationStatus.REVOKED, None, problems=("denied",))
            return plain(self, cert, issuer, at=at)

        class Deny(RevocationChecker):
            check = deny  # type: ignore[assignment]

        if how == "subclass":
            checker: RevocationChecker = Deny(M.OFFLINE, crls=[pki.crl()])
        else:
            checker = RevocationChecker(M.OFFLINE, crls=[pki.crl()])
        if how == "instance":
            checker.check = functools.partial(deny, checker)  # type: ignore[method-assign]
        with (
            mock.patch.object(RevocationChecker, "check", deny) if how == "patch" else nullcontext()
        ):
            for _ in range(2):
                assert checker.check(leaf, sub, at=at).status is RevocationStatus.GOOD
            assert checker.cached(leaf, sub, at=at) is None
            denied.add(leaf.serial_number)
            assert checker.check(leaf, sub, at=at).status is RevocationStatus.REVOKED

    def test_a_naive_time_is_refused(self, pki: TestPKI) -> None:
        checker = RevocationChecker(M.OFFLINE, crls=[pki.crl()])
        with pytest.raises(ConfigurationError):
            checker.cached(
                pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=dt.datetime(2024, 3, 1)
            )

    def test_a_copy_of_the_certificate_is_first_sight(self, pki: TestPKI, at: dt.datetime) -> None:
        """Keyed by the very objects: an equal copy is walked (and then remembered)."""
        leaf, sub = pki.leaf("ssp").certificate, pki.sub_ca.certificate
        checker = RevocationChecker(M.OFFLINE, crls=[pki.crl()])
        checker.check(leaf, sub, at=at)
        copy = x509.load_der_x509_certificate(der_of(pki.leaf("ssp").certificate))
        assert checker.cached(copy, sub, at=at) is None
        assert checker.check(copy, sub, at=at) == checker.cached(copy, sub, at=at)


class TestWindowEdges:
    """The span an answer is remembered for is exactly the walk's, to the microsecond."""

    def test_a_supplied_crl_within_the_clock_tolerance(self, pki: TestPKI, at: dt.datetime) -> None:
        leaf, sub = pki.leaf("ssp").certificate, pki.sub_ca.certificate
        crl = pki.crl(at=at - HOUR, next_update=2 * HOUR)
        tol = dt.timedelta(minutes=5)
        checker = RevocationChecker(M.OFFLINE, crls=[crl], clock_tolerance=tol)
        checker.check(leaf, sub, at=at)
        first, last = crl.last_update_utc - tol, crl.next_update_utc + tol  # type: ignore[operator]
        for when, inside in (
            (first, True),
            (first - MICRO, False),
            (last, True),
            (last + MICRO, False),
        ):
            known = checker.cached(leaf, sub, at=when)
            walked = _walk(checker, leaf, sub, when)
            assert (known is not None) is inside, when
            assert (walked.status is RevocationStatus.GOOD) is inside, when
            if known is not None:
                assert known == walked

    def test_a_fetched_crl_until_its_refresh_point(self, pki: TestPKI, at: dt.datetime) -> None:
        """Refreshed an hour before its nextUpdate: from then on the walk fetches, so
        nothing is answered from the index, although the fetch window runs longer."""
        leaf, sub = pki.leaf("ssp").certificate, pki.sub_ca.certificate
        fetcher = StaticFetcher(crls={CRL_URL: der(pki.crl(at=at - HOUR, next_update=3 * HOUR))})
        checker = RevocationChecker(
            M.CRL_ONLY,
            fetcher=fetcher,
            limits=RevocationLimits(max_staleness=2 * HOUR, refresh_before=HOUR),
        )
        checker.check(leaf, sub, at=at)  # fetches
        checker.check(leaf, sub, at=at)  # remembered
        assert checker.cached(leaf, sub, at=at + HOUR - MICRO) is not None
        assert checker.cached(leaf, sub, at=at + HOUR) is None
        assert len(fetcher.calls) == 1


class TestWithTheCache:
    def test_answers_keep_their_crl_recent_in_the_cache(
        self, own_pki: TestPKI, at: dt.datetime
    ) -> None:
        """Two CRLs cached at most; the one answering every check (from the index) stays,
        and storing a third evicts the one not used since, as the walk's lookups would."""
        urls = [f"{BASE}/crl/p{i}.crl" for i in range(3)]
        leaves = []
        for i, url in enumerate(urls):
            points = x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)]
            )
            leaves.append(own_pki.issue(f"p{i}", fqdn=own_pki.ssp_fqdn, extensions=[
                x509.Extension(points.oid, False, points)
            ]).certificate)  # fmt: skip
        sub = own_pki.sub_ca.certificate
        crl = der(own_pki.crl(at=at - HOUR))
        fetcher = StaticFetcher(crls=dict.fromkeys(urls, crl))
        checker = RevocationChecker(
            M.HARD_FAIL, fetcher=fetcher, limits=RevocationLimits(crl_cache_size=2)
        )
        for i in (0, 1, 0, 1):  # fetch p0 and p1, then remember both answers
            checker.check(leaves[i], sub, at=at)
        for _ in range(5):
            assert checker.cached(leaves[0], sub, at=at) is not None  # p0 in use
        fetcher.crls[urls[0]] = FetchError("down", source=urls[0])
        checker.check(leaves[2], sub, at=at)  # stores p2, evicting the least recently used
        result = checker.check(leaves[0], sub, at=at)
        assert result.status is RevocationStatus.GOOD
        assert not result.problems  # p0 was still cached: not fetched again

    def test_an_evicted_crl_is_never_answered_from(self, pki: TestPKI, at: dt.datetime) -> None:
        leaf, sub = pki.leaf("ssp").certificate, pki.sub_ca.certificate
        checker = RevocationChecker(M.HARD_FAIL, fetcher=_fetcher(pki, at))
        checker.check(leaf, sub, at=at)
        checker.check(leaf, sub, at=at)
        assert checker.cached(leaf, sub, at=at) is not None
        checker._crl_cache.clear()  # as an eviction by size would, without a store
        assert checker.cached(leaf, sub, at=at) is None

    def test_a_check_between_the_store_and_the_forgetting(
        self, own_pki: TestPKI, at: dt.datetime
    ) -> None:
        """A check that runs while a refresh stores a new CRL (another thread, here made
        to run inside the store) must not leave behind an answer from the old CRL."""
        leaf, sub = own_pki.leaf("ssp").certificate, own_pki.sub_ca.certificate
        fetcher = _fetcher(own_pki, at)
        checker = RevocationChecker(M.HARD_FAIL, fetcher=fetcher)
        checker.check(leaf, sub, at=at)
        cache = checker._crl_cache
        store = cache.put

        def put(key: tuple[str, bytes], value: object, weight: int = 1) -> None:
            checker.check(leaf, sub, at=at)  # the other thread's check, mid-store
            store(key, value, weight)  # type: ignore[arg-type]

        cache.put = put  # type: ignore[method-assign]
        own_pki.revoke("ssp", at=at - HOUR)
        fetcher.crls[CRL_URL] = der(own_pki.crl(at=at - HOUR))
        assert checker.refresh(at=at) == ()
        cache.put = store  # type: ignore[method-assign]
        assert checker.check(leaf, sub, at=at).status is RevocationStatus.REVOKED


class TestLocalTime:
    def test_the_repeated_hour_is_not_the_same_time(self, own_pki: TestPKI) -> None:
        """01:30 before the clocks go back and 01:30 after are an hour apart: a CRL
        fetched at the first is not relied on past max_staleness at the second."""
        at1 = dt.datetime(2024, 10, 27, 1, 30, tzinfo=CLOCKS_GO_BACK, fold=0)  # 00:30Z
        at2 = at1.replace(minute=35, fold=1)  # 01:35Z
        leaf, sub = own_pki.leaf("ssp").certificate, own_pki.sub_ca.certificate
        this_update = at1.astimezone(dt.UTC) - HOUR
        fetcher = StaticFetcher(crls={CRL_URL: der(own_pki.crl(at=this_update))})
        checker = RevocationChecker(
            M.CRL_ONLY, fetcher=fetcher, limits=RevocationLimits(max_staleness=600)
        )
        assert checker.check(leaf, sub, at=at1).status is RevocationStatus.GOOD
        checker.check(leaf, sub, at=at1)
        own_pki.revoke("ssp", at=this_update)
        fetcher.crls[CRL_URL] = der(own_pki.crl(at=this_update + SECOND))
        assert checker.cached(leaf, sub, at=at2) is None
        assert checker.check(leaf, sub, at=at2).status is RevocationStatus.REVOKED


class TestBound:
    def test_a_hundred_times_more_certificates_than_it_holds(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """Every new certificate object is remembered; memory stays bounded and answers
        stay right."""
        checker = RevocationChecker(M.OFFLINE, crls=[pki.crl()])
        sub, data = pki.sub_ca.certificate, der_of(pki.leaf("ssp").certificate)
        for _ in range(MAX_ANSWERS * 100 // 10):  # 10x the bound: the loop, not the size
            copy = x509.load_der_x509_certificate(data)
            assert checker.check(copy, sub, at=at).status is RevocationStatus.GOOD
            assert len(checker._answers._entries) <= MAX_ANSWERS
        assert checker.cached(copy, sub, at=at) is not None


# -- the general rule: the index never answers differently from the walk ---------------

_CHECK = st.tuples(st.just("check"), st.integers(-300, 1_800))  # seconds on (or back)
_STEP = st.one_of(
    _CHECK,
    _CHECK,
    _CHECK,  # checks are most of what happens
    st.tuples(st.just("publish"), st.integers(0, 3_600)),  # the CA issues a new CRL
    st.tuples(st.just("revoke"), st.integers(0, 3_600)),  # ... listing the leaf
    st.tuples(st.just("down"), st.just(0)),  # the distribution point fails
    st.tuples(st.just("up"), st.just(0)),
    st.tuples(st.just("refresh"), st.just(0)),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    steps=st.lists(_STEP, min_size=1, max_size=30),
    mode=st.sampled_from([M.HARD_FAIL, M.SOFT_FAIL, M.CRL_ONLY]),
)
def test_the_index_answers_as_the_walk_would(steps: list[tuple[str, int]], mode: M) -> None:
    pki = TestPKI.create(key_type=KeyType.EC_P256, base_url=BASE)
    base = pki.reference_time
    leaf, sub, root = pki.leaf("ssp").certificate, pki.sub_ca.certificate, pki.root.certificate
    fetcher = StaticFetcher(
        crls={
            CRL_URL: der(pki.crl(at=base - HOUR, next_update=8 * HOUR)),
            ROOT_CRL_URL: der(pki.root_crl()),
        }
    )
    checker = RevocationChecker(mode, fetcher=fetcher, limits=RevocationLimits(max_staleness=900))
    now, latest = base, base - HOUR
    served: bytes = fetcher.crls[CRL_URL]  # type: ignore[assignment]
    for action, seconds in steps:
        if action == "check":
            now += dt.timedelta(seconds=seconds)  # the clock may go back
            for cert, issuer in ((leaf, sub), (sub, root), (leaf, sub), (sub, root)):
                known = checker.cached(cert, issuer, at=now)
                walked = _walk(checker, cert, issuer, at=now)
                if known is not None:
                    assert known == walked, (action, seconds)
        elif action in {"publish", "revoke"}:
            if action == "revoke" and not pki.is_revoked("ssp"):
                pki.revoke("ssp", at=latest)
            latest = latest + dt.timedelta(seconds=seconds)
            served = der(pki.crl(at=latest, next_update=8 * HOUR))
            fetcher.crls[CRL_URL] = served
        elif action == "down":
            fetcher.crls[CRL_URL] = FetchError("down", source=CRL_URL)
        elif action == "up":
            fetcher.crls[CRL_URL] = served
        else:
            checker.refresh(at=now)
