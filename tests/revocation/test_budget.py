"""The time budget: one check (or one validation) spends at most ``check_timeout`` fetching.

The budget is measured on a clock the test owns: a fake fetcher "takes" its time by
moving that clock, so nothing sleeps. The network tests at the end use the real responder
and the real clock, with SLOW and DRIP faults.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Mapping

import pytest

from spinepki import ClientCertValidator, FailureCode
from spinepki.errors import ConfigurationError, FetchError
from spinepki.revocation import (
    RequestsFetcher,
    RevocationChecker,
    RevocationLimits,
    RevocationStatus,
    StaticFetcher,
)
from spinepki.revocation.fetchers import DEFAULT_TIMEOUT
from spinepki.testpki import KeyType, TestPKI
from spinepki.testpki.responder import Endpoint, Fault, Responder

from ._helpers import SLACK, TIMEOUT, M, make_crl, make_ocsp
from .conftest import BASE, CRL_URL, OCSP_URL, ROOT_CRL_URL, der

HANG = math.inf


class Ticking:
    """A monotonic clock that only the test and the fake fetcher move."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SlowFetcher(StaticFetcher):
    """A StaticFetcher whose calls take ``cost[url]`` seconds of a :class:`Ticking` clock.

    Given a ``timeout`` shorter than the cost, it spends the timeout and fails, as
    :class:`RequestsFetcher` does; every timeout it was given is kept in ``timeouts``.
    """

    timeout = 5.0

    def __init__(
        self,
        clock: Ticking,
        cost: Mapping[str, float],
        crls: Mapping[str, bytes | Exception] | None = None,
        ocsp: Mapping[str, bytes] | None = None,
    ) -> None:
        super().__init__(crls, ocsp)
        self.clock = clock
        self.cost = dict(cost)
        self.timeouts: list[tuple[str, float | None]] = []

    def _spend(self, url: str, timeout: float | None) -> None:
        self.timeouts.append((url, timeout))
        cost = self.cost.get(url, 0.0)
        if timeout is not None and timeout < cost:
            self.clock.now += timeout
            raise FetchError(f"no complete answer within {timeout:g} s", source=url)
        assert cost != HANG, "a hanging fetch was called without a timeout"
        self.clock.now += cost

    def fetch_crl(self, url: str, *, timeout: float | None = None) -> bytes:
        self._spend(url, timeout)
        return super().fetch_crl(url)

    def post_ocsp(self, url: str, request_der: bytes, *, timeout: float | None = None) -> bytes:
        self._spend(url, timeout)
        return super().post_ocsp(url, request_der)


def good_ocsp(pki: TestPKI, at: dt.datetime, name: str = "ssp") -> bytes:
    return make_ocsp(pki, pki.leaf(name).certificate, pki.sub_ca, this_update=at)


def check(checker: RevocationChecker, pki: TestPKI, at: dt.datetime, name: str = "ssp"):  # type: ignore[no-untyped-def]
    return checker.check(pki.leaf(name).certificate, pki.sub_ca.certificate, at=at)


class TestConfiguration:
    def test_defaults_to_the_fetchers_timeout(self) -> None:
        """check_timeout defaults to the fetcher's total timeout, else 5 s."""
        with RequestsFetcher(timeout=2.5) as fetcher:
            assert RevocationChecker(fetcher=fetcher).check_timeout == 2.5
        assert RevocationChecker(fetcher=StaticFetcher()).check_timeout == DEFAULT_TIMEOUT
        assert RevocationChecker().check_timeout == DEFAULT_TIMEOUT
        assert RevocationChecker(M.OFFLINE).check_timeout == DEFAULT_TIMEOUT
        explicit = RevocationChecker(
            fetcher=StaticFetcher(), limits=RevocationLimits(check_timeout=1.5)
        )
        assert explicit.check_timeout == 1.5

    @pytest.mark.parametrize("value", [0, -1.0, math.nan, math.inf, True])
    def test_refuses_unusable_values(self, value: float) -> None:
        """A check_timeout must be a positive, finite number of seconds."""
        with pytest.raises(ConfigurationError, match="positive, finite"):
            RevocationChecker(limits=RevocationLimits(check_timeout=value))

    @pytest.mark.parametrize("value", [0, -2.0, math.nan, math.inf])
    def test_budget_refuses_unusable_values(self, value: float) -> None:
        """So must the seconds of an explicit budget block."""
        checker = RevocationChecker(fetcher=StaticFetcher())
        with pytest.raises(ConfigurationError, match="positive, finite"), checker.budget(value):
            pass


class TestOneCheck:
    def test_hung_sources_share_the_budget(self, pki: TestPKI, at: dt.datetime) -> None:
        """Hard-fail with the CRL server and the OCSP responder both hung: each fetch gets
        half the budget, and the check ends when it is spent - not at 2 x the timeout."""
        clock = Ticking()
        fetcher = SlowFetcher(clock, {CRL_URL: HANG, OCSP_URL: HANG})
        checker = RevocationChecker(fetcher=fetcher, monotonic=clock)
        start = clock.now
        result = check(checker, pki, at)
        assert result.status is RevocationStatus.UNKNOWN
        assert fetcher.timeouts == [(CRL_URL, 2.5), (OCSP_URL, 2.5)]
        assert clock.now - start == pytest.approx(checker.check_timeout)
        assert len(result.problems) == 2

    def test_a_quick_failure_leaves_the_budget_to_the_next_source(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """A CRL fetch that fails at once costs nothing: OCSP gets the whole budget."""
        clock = Ticking()
        fetcher = SlowFetcher(
            clock,
            {OCSP_URL: 1.0},
            crls={CRL_URL: FetchError("refused", source=CRL_URL)},
            ocsp={OCSP_URL: good_ocsp(pki, at)},
        )
        result = check(RevocationChecker(fetcher=fetcher, monotonic=clock), pki, at)
        assert result.status is RevocationStatus.GOOD
        assert result.evidence is not None
        assert result.evidence.source == "ocsp"
        assert fetcher.timeouts[1] == (OCSP_URL, pytest.approx(5.0))

    def test_a_hung_crl_server_still_leaves_time_for_ocsp(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """The CRL fetch gets its share only; OCSP answers within the rest."""
        clock = Ticking()
        fetcher = SlowFetcher(
            clock, {CRL_URL: HANG, OCSP_URL: 0.1}, ocsp={OCSP_URL: good_ocsp(pki, at)}
        )
        start = clock.now
        result = check(RevocationChecker(fetcher=fetcher, monotonic=clock), pki, at)
        assert result.status is RevocationStatus.GOOD
        assert clock.now - start == pytest.approx(2.6)
        assert "within 2.5 s" in result.problems[0]

    def test_a_single_source_gets_the_whole_budget(self, at: dt.datetime) -> None:
        """A certificate with a CDP and no OCSP URL (Spine G1): the CRL gets it all."""
        pki = TestPKI.create(key_type=KeyType.EC_P256, base_url=BASE, with_ocsp=False, at=at)
        clock = Ticking()
        fetcher = SlowFetcher(clock, {ROOT_CRL_URL: HANG})
        checker = RevocationChecker(
            fetcher=fetcher, monotonic=clock, limits=RevocationLimits(check_timeout=3.0)
        )
        result = checker.check(pki.sub_ca.certificate, pki.root.certificate, at=at)
        assert result.status is RevocationStatus.UNKNOWN
        assert fetcher.timeouts == [(ROOT_CRL_URL, 3.0)]

    def test_spent_budget_starts_no_fetch_and_remembers_no_failure(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """With the budget spent nothing is fetched; since no responder failed, nothing is
        backed off, and the next check (a new budget) fetches at once."""
        clock = Ticking()
        fetcher = SlowFetcher(clock, {}, crls={CRL_URL: der(pki.crl())})
        checker = RevocationChecker(fetcher=fetcher, monotonic=clock)
        with checker.budget():
            clock.now += 5.0  # spent elsewhere (another certificate of the validation)
            result = check(checker, pki, at)
        assert result.status is RevocationStatus.UNKNOWN
        assert fetcher.calls == []
        assert len(result.problems) == 2
        assert all("time budget for revocation checking is spent" in p for p in result.problems)
        assert check(checker, pki, at).status is RevocationStatus.GOOD
        assert fetcher.calls == [("crl", CRL_URL)]

    def test_spent_budget_still_uses_the_cached_crl(self, pki: TestPKI, at: dt.datetime) -> None:
        """In the refresh window with no time left the cached CRL answers, unrefreshed."""
        clock = Ticking()
        crl = pki.crl()
        fetcher = SlowFetcher(clock, {}, crls={CRL_URL: der(crl)})
        checker = RevocationChecker(M.CRL_ONLY, fetcher=fetcher, monotonic=clock)
        assert check(checker, pki, at).status is RevocationStatus.GOOD
        next_update = crl.next_update_utc
        assert next_update is not None
        with checker.budget():
            clock.now += 4.9  # less than a tenth of the budget left: not worth a fetch
            result = check(checker, pki, next_update - dt.timedelta(minutes=30))
        assert result.status is RevocationStatus.GOOD
        assert fetcher.calls == [("crl", CRL_URL)]

    def test_a_fetcher_without_timeout_keyword_still_works(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """A two-argument third-party fetcher is never given timeout=; the budget still
        stops the checker from starting a second fetch after the first overran it."""
        clock = Ticking()
        calls: list[str] = []

        class Legacy:
            def fetch_crl(self, url: str) -> bytes:
                calls.append(url)
                clock.now += 6.0  # its own limit, longer than the budget
                raise FetchError("timed out", source=url)

            def post_ocsp(self, url: str, request_der: bytes) -> bytes:  # pragma: no cover
                calls.append(url)
                raise FetchError("unreachable", source=url)

        result = check(RevocationChecker(fetcher=Legacy(), monotonic=clock), pki, at)
        assert result.status is RevocationStatus.UNKNOWN
        assert calls == [CRL_URL]
        assert "time budget" in result.problems[1]

    def test_a_fetcher_taking_kwargs_is_given_the_timeout(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """``**kwargs`` counts as accepting timeout=."""
        seen: list[object] = []

        class Flexible:
            def fetch_crl(self, url: str, **kwargs: object) -> bytes:
                seen.append(kwargs.get("timeout"))
                return der(pki.crl())

            def post_ocsp(self, url: str, request_der: bytes) -> bytes:  # pragma: no cover
                raise FetchError("unused", source=url)

        checker = RevocationChecker(
            M.CRL_ONLY, fetcher=Flexible(), limits=RevocationLimits(check_timeout=2.0)
        )
        assert check(checker, pki, at).status is RevocationStatus.GOOD
        (given,) = seen
        assert isinstance(given, float)
        assert 0 < given <= 2.0

    def test_budget_blocks_share_and_nest(self, pki: TestPKI, at: dt.datetime) -> None:
        """Inside budget(2): the first check takes the 2 s, the second gets nothing. An
        inner block cannot extend the outer one."""
        clock = Ticking()
        fetcher = SlowFetcher(clock, {CRL_URL: HANG, ROOT_CRL_URL: HANG})
        checker = RevocationChecker(M.CRL_ONLY, fetcher=fetcher, monotonic=clock)
        with checker.budget(2.0):
            check(checker, pki, at)
            sub = checker.check(pki.sub_ca.certificate, pki.root.certificate, at=at)
        assert fetcher.timeouts == [(CRL_URL, 2.0)]
        assert "time budget" in sub.problems[0]
        fetcher.timeouts.clear()
        with checker.budget(1.0), checker.budget(10.0):
            check(checker, pki, at + dt.timedelta(minutes=1))  # past the failure backoff
        assert fetcher.timeouts == [(CRL_URL, 1.0)]
        # Outside any block, every check has its own check_timeout again.
        checker.check(pki.sub_ca.certificate, pki.root.certificate, at=at)
        assert fetcher.timeouts[-1] == (ROOT_CRL_URL, 5.0)

    def test_waiting_for_another_checks_fetch_is_bounded(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """A check that finds another thread fetching the same CRL waits at most its
        budget, then answers from the cached CRL (real clock, 0.2 s budget)."""
        crl = pki.crl()
        entered, release = threading.Event(), threading.Event()

        class Blocking(StaticFetcher):
            blocking = False

            def fetch_crl(self, url: str, *, timeout: float | None = None) -> bytes:
                if self.blocking:
                    entered.set()
                    release.wait(10)
                return super().fetch_crl(url)

        fetcher = Blocking(crls={CRL_URL: der(crl)})
        checker = RevocationChecker(
            M.CRL_ONLY, fetcher=fetcher, limits=RevocationLimits(check_timeout=0.2)
        )
        assert check(checker, pki, at).status is RevocationStatus.GOOD
        next_update = crl.next_update_utc
        assert next_update is not None
        in_window = next_update - dt.timedelta(minutes=30)
        fetcher.blocking = True
        other = threading.Thread(target=check, args=(checker, pki, in_window))
        other.start()
        try:
            assert entered.wait(10)
            started = time.monotonic()
            result = check(checker, pki, in_window)
            waited = time.monotonic() - started
        finally:
            release.set()
            other.join(10)
        assert result.status is RevocationStatus.GOOD
        assert waited < 0.2 * 1.1 + 0.1, waited


class TestValidatorSharesTheBudget:
    def validator(self, pki: TestPKI, checker: RevocationChecker) -> ClientCertValidator:
        return ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=checker, cache_ttl=0
        )

    def test_sub_ca_gets_what_the_leaf_left(self, pki: TestPKI, at: dt.datetime) -> None:
        """Leaf CRL and OCSP hung: the leaf spends the whole budget, the root CRL (for the
        Sub CA) is not fetched, and the validation took one check_timeout in all."""
        clock = Ticking()
        fetcher = SlowFetcher(
            clock, {CRL_URL: HANG, OCSP_URL: HANG}, crls={ROOT_CRL_URL: der(pki.root_crl())}
        )
        checker = RevocationChecker(fetcher=fetcher, monotonic=clock)
        start = clock.now
        result = self.validator(pki, checker).validate(pki.leaf("ssp").certificate, at=at)
        assert result.codes == (FailureCode.REVOCATION_UNKNOWN,)
        assert ("crl", ROOT_CRL_URL) not in fetcher.calls
        assert clock.now - start == pytest.approx(checker.check_timeout)

    def test_sub_ca_is_checked_with_the_rest(self, pki: TestPKI, at: dt.datetime) -> None:
        """A quick leaf answer leaves the rest of the budget to the root CRL, and a
        revoked Sub CA is still found."""
        root_crl = make_crl(
            pki.root,
            this_update=at - dt.timedelta(hours=1),
            serials=[pki.sub_ca.certificate.serial_number],
        )
        clock = Ticking()
        fetcher = SlowFetcher(
            clock,
            {CRL_URL: 1.0, ROOT_CRL_URL: 1.0},
            crls={CRL_URL: der(pki.crl()), ROOT_CRL_URL: der(root_crl)},
        )
        checker = RevocationChecker(fetcher=fetcher, monotonic=clock)
        result = self.validator(pki, checker).validate(pki.leaf("ssp").certificate, at=at)
        assert result.codes == (FailureCode.REVOKED,)
        # What is left (4 s) is shared by the root's CRL and the Sub CA's OCSP URL.
        assert fetcher.timeouts == [(CRL_URL, 2.5), (ROOT_CRL_URL, pytest.approx(2.0))]


# -- through the real responder ---------------------------------------------------------


@pytest.mark.network
class TestRealResponder:
    @pytest.mark.parametrize("fault", [Fault.SLOW, Fault.DRIP], ids=lambda f: f.value)
    def test_one_validation_within_one_timeout(
        self, spinepki_responder: Responder, fault: Fault
    ) -> None:
        """Every endpoint slow or dripping: a whole validation (leaf CRL, leaf OCSP, root
        CRL) ends within the one fetch timeout, +10 %."""
        pki = spinepki_responder.pki
        spinepki_responder.set_fault(fault, delay=5.0 if fault is Fault.SLOW else 0.05)
        with (
            RequestsFetcher(timeout=TIMEOUT, trust_env=False) as fetcher,
            RevocationChecker(fetcher=fetcher) as checker,
        ):
            validator = ClientCertValidator(
                pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=checker
            )
            started = time.monotonic()
            result = validator.validate(pki.leaf("ssp").certificate, at=pki.reference_time)
            elapsed = time.monotonic() - started
        assert result.codes == (FailureCode.REVOCATION_UNKNOWN,)
        assert elapsed <= TIMEOUT * 1.1 + SLACK, elapsed
        assert spinepki_responder.hits[Endpoint.CRL] >= 1

    def test_per_call_timeout_of_requests_fetcher(self, spinepki_responder: Responder) -> None:
        """RequestsFetcher honours a shorter per-call timeout, and refuses a spent one
        without touching the network."""
        url = f"{spinepki_responder.base_url}/crl/sub-ca.crl"
        spinepki_responder.set_fault(Fault.SLOW, delay=5.0)
        with RequestsFetcher(timeout=5.0, trust_env=False) as fetcher:
            started = time.monotonic()
            with pytest.raises(FetchError, match=r"within 0\.2 s"):
                fetcher.fetch_crl(url, timeout=0.2)
            assert time.monotonic() - started <= 0.2 * 1.1 + SLACK
            hits = sum(spinepki_responder.hits.values())
            with pytest.raises(FetchError, match="no time left"):
                fetcher.post_ocsp(f"{spinepki_responder.base_url}/ocsp", b"", timeout=0.0)
            assert sum(spinepki_responder.hits.values()) == hits


def test_static_fetcher_accepts_and_ignores_timeout(pki: TestPKI) -> None:
    """The in-memory fetcher takes timeout= like RequestsFetcher (and answers at once)."""
    fetcher = StaticFetcher(crls={CRL_URL: b"x"}, ocsp={OCSP_URL: lambda req: req})
    assert fetcher.fetch_crl(CRL_URL, timeout=0.01) == b"x"
    assert fetcher.post_ocsp(OCSP_URL, b"q", timeout=0.01) == b"q"
