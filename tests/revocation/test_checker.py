"""RevocationChecker: modes, source order, caching, refresh (with the in-memory fetcher)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from spinepki.errors import ConfigurationError, FetchError
from spinepki.revocation import (
    DEFAULT_MAX_STALENESS,
    RevocationChecker,
    RevocationLimits,
    RevocationStatus,
    StaticFetcher,
    _checker,
)
from spinepki.testpki import TestPKI

from ._helpers import M, make_crl, make_ocsp
from .conftest import CRL_URL, OCSP_URL, ROOT_CRL_URL, der

DAY = dt.timedelta(days=1)


def ocsp_answer(pki: TestPKI, at: dt.datetime, **kw: object) -> Callable[[bytes], bytes]:
    """An OCSP 'responder' for StaticFetcher that answers about the asked serial."""

    def answer(request_der: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(request_der)
        cert = next(c.certificate for c in pki if c.serial == request.serial_number)
        nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        revoked = any(cert.serial_number in r for r in pki.revocations.values())
        status = ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD
        return make_ocsp(pki, cert, pki.sub_ca, this_update=at, nonce=nonce, status=status, **kw)  # type: ignore[arg-type]

    return answer


def leaf(pki: TestPKI, name: str = "ssp") -> x509.Certificate:
    return pki.leaf(name).certificate


def check(checker: RevocationChecker, pki: TestPKI, name: str, at: dt.datetime):  # type: ignore[no-untyped-def]
    return checker.check(leaf(pki, name), pki.sub_ca.certificate, at=at)


@pytest.fixture
def fetcher(pki: TestPKI, at: dt.datetime) -> StaticFetcher:
    """CRL and OCSP both answering."""
    return StaticFetcher(
        crls={CRL_URL: der(pki.crl()), ROOT_CRL_URL: der(pki.root_crl())},
        ocsp={OCSP_URL: ocsp_answer(pki, at)},
    )


class TestConfiguration:
    def test_disabled_needs_unsafe_flag(self) -> None:
        """DISABLED without unsafe_allow_disabled is a configuration error."""
        with pytest.raises(ConfigurationError, match="unsafe_allow_disabled"):
            RevocationChecker(M.DISABLED)

    def test_offline_refuses_fetcher(self) -> None:
        """OFFLINE with a fetcher is a configuration error."""
        with pytest.raises(ConfigurationError, match="OFFLINE"):
            RevocationChecker(M.OFFLINE, fetcher=StaticFetcher())

    def test_negative_clock_tolerance(self) -> None:
        """A negative clock tolerance is refused."""
        with pytest.raises(ConfigurationError) as info:
            RevocationChecker(clock_tolerance=dt.timedelta(seconds=-1))
        assert info.value.source == "clock_tolerance"

    @pytest.mark.parametrize("name", ["refresh_before", "failure_backoff"])
    @pytest.mark.parametrize("value", [dt.timedelta(seconds=-1), 30])
    def test_bad_durations(self, name: str, value: object) -> None:
        """A limit duration must be a timedelta, not negative; the error names the field."""
        with pytest.raises(ConfigurationError) as info:
            RevocationLimits(**{name: value})  # type: ignore[arg-type]
        assert info.value.source == f"RevocationLimits.{name}"

    @pytest.mark.parametrize("name", ["crl_cache_size", "crl_cache_bytes", "ocsp_cache_size"])
    @pytest.mark.parametrize("value", [0, -1, True, 2.0])
    def test_bad_cache_sizes(self, name: str, value: object) -> None:
        """Cache sizes must be positive integers."""
        with pytest.raises(ConfigurationError) as info:
            RevocationLimits(**{name: value})  # type: ignore[arg-type]
        assert info.value.source == f"RevocationLimits.{name}"

    def test_bad_mode_and_limits(self) -> None:
        """The mode must be an enum member and the limits a RevocationLimits."""
        with pytest.raises(ConfigurationError):
            RevocationChecker("hard-fail")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError) as info:
            RevocationChecker(limits={"max_staleness": 60})  # type: ignore[arg-type]
        assert info.value.source == "limits"

    def test_limits_are_kept_and_frozen(self) -> None:
        """The checker exposes its limits; they are immutable and seconds become timedeltas."""
        limits = RevocationLimits(max_staleness=60, ocsp_max_age=90.5)
        assert limits.max_staleness == dt.timedelta(seconds=60)
        assert limits.ocsp_max_age == dt.timedelta(seconds=90.5)
        checker = RevocationChecker(limits=limits)
        assert checker.limits is limits
        assert checker.max_staleness == dt.timedelta(seconds=60)
        assert RevocationChecker().limits == RevocationLimits()
        with pytest.raises(dataclasses.FrozenInstanceError):
            limits.crl_cache_size = 1  # type: ignore[misc]

    def test_naive_time(self, pki: TestPKI, fetcher: StaticFetcher) -> None:
        """A naive validation time is refused rather than guessed."""
        with pytest.raises(ConfigurationError):
            check(RevocationChecker(fetcher=fetcher), pki, "ssp", dt.datetime(2030, 1, 1))

    def test_mode_property(self) -> None:
        """The mode is readable and hard-fail by default."""
        assert RevocationChecker().mode is M.HARD_FAIL


class TestHardFail:
    def test_good_from_crl(self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime) -> None:
        """A listed-nowhere certificate is GOOD on CRL evidence, which is tried first."""
        result = check(RevocationChecker(fetcher=fetcher), pki, "ssp", at)
        assert result.status is RevocationStatus.GOOD
        assert result.evidence is not None
        assert result.evidence.source == "crl"
        assert result.evidence.url == CRL_URL
        assert result.evidence.crl_number == pki.crl_numbers["sub-ca"]
        # Reused until the CA is asked again: max_staleness after the fetch (before the
        # CRL's nextUpdate, a week away).
        assert result.evidence.next_update is not None
        assert result.valid_until == at + DEFAULT_MAX_STALENESS < result.evidence.next_update
        assert fetcher.calls == [("crl", CRL_URL)]

    def test_revoked_from_crl(self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime) -> None:
        """A revoked certificate is REVOKED with its date and reason."""
        result = check(RevocationChecker(fetcher=fetcher), pki, "revoked", at)
        assert result.status is RevocationStatus.REVOKED
        entry = pki.revocations["sub-ca"][pki.leaf("revoked").serial]
        assert result.revoked_at == entry.revoked_at
        assert result.reason is entry.reason

    def test_sub_ca_against_root_crl(
        self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime
    ) -> None:
        """The Sub CA is checked against the root's CRL."""
        result = RevocationChecker(fetcher=fetcher).check(
            pki.sub_ca.certificate, pki.root.certificate, at=at
        )
        assert result.status is RevocationStatus.GOOD
        assert result.evidence is not None
        assert result.evidence.url == ROOT_CRL_URL

    def test_crl_fetched_and_verified_once(
        self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Many checks against one CDP cost one fetch and one signature check."""
        import spinepki.revocation._checker as checker_module

        calls = []
        real = checker_module.verify_crl
        monkeypatch.setattr(
            checker_module, "verify_crl", lambda *a, **k: calls.append(1) or real(*a, **k)
        )
        checker = RevocationChecker(fetcher=fetcher)
        for name in ("ssp", "provider", "consumer", "revoked") * 5:
            check(checker, pki, name, at)
        assert fetcher.calls == [("crl", CRL_URL)]
        assert len(calls) == 1

    def test_ocsp_when_crl_unavailable(
        self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime
    ) -> None:
        """With the CRL unreachable, OCSP answers and the CRL problem is reported."""
        fetcher.crls[CRL_URL] = FetchError("connection refused", source=CRL_URL)
        result = check(RevocationChecker(fetcher=fetcher), pki, "revoked", at)
        assert result.status is RevocationStatus.REVOKED
        assert result.evidence is not None
        assert result.evidence.source == "ocsp"
        assert any("connection refused" in p for p in result.problems)

    def test_nothing_available(self, pki: TestPKI, at: dt.datetime) -> None:
        """No CRL and no OCSP: UNKNOWN, not soft-failed, with both problems."""
        result = check(RevocationChecker(fetcher=StaticFetcher()), pki, "ssp", at)
        assert result.status is RevocationStatus.UNKNOWN
        assert result.evidence is None
        assert not result.soft_failed
        assert len(result.problems) == 2

    def test_no_pointers(self, pki: TestPKI, at: dt.datetime) -> None:
        """A certificate with neither CDP nor AIA OCSP is UNKNOWN, and says why."""
        result = check(RevocationChecker(fetcher=StaticFetcher()), pki, "ocsp-responder", at)
        assert result.status is RevocationStatus.UNKNOWN
        assert "no CRL distribution point" in result.problems[0]

    def test_issuer_mismatch(self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime) -> None:
        """Passing the wrong issuer gives UNKNOWN with a plain reason."""
        result = RevocationChecker(fetcher=fetcher).check(leaf(pki), pki.root.certificate, at=at)
        assert result.status is RevocationStatus.UNKNOWN
        assert "not the certificate's issuer" in result.problems[0]

    def test_misbehaving_fetcher(self, pki: TestPKI, at: dt.datetime) -> None:
        """A third-party fetcher raising anything becomes a problem, never an exception."""

        class Broken:
            def fetch_crl(self, url: str) -> bytes:
                raise RuntimeError("boom")

            def post_ocsp(self, url: str, request_der: bytes) -> bytes:
                raise KeyError("bang")

        result = check(RevocationChecker(fetcher=Broken()), pki, "ssp", at)
        assert result.status is RevocationStatus.UNKNOWN
        assert "RuntimeError" in result.problems[0]
        assert "KeyError" in result.problems[1]

    def test_ldap_only_cdp(self, pki: TestPKI, at: dt.datetime) -> None:
        """A CDP with no http(s) URL is reported as such."""
        cert = (
            x509.CertificateBuilder()
            .subject_name(leaf(pki).subject)
            .issuer_name(pki.sub_ca.certificate.subject)
            .public_key(pki.leaf("ssp").private_key.public_key())  # type: ignore[arg-type]
            .serial_number(77)
            .not_valid_before(at - DAY)
            .not_valid_after(at + DAY)
            .add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            [x509.UniformResourceIdentifier("ldap://dir/cn=crl")], None, None, None
                        )
                    ]
                ),
                critical=False,
            )
            .sign(pki.sub_ca.private_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        result = RevocationChecker(fetcher=StaticFetcher()).check(
            cert, pki.sub_ca.certificate, at=at
        )
        assert "no http(s) URL" in result.problems[0]


class TestModes:
    def test_soft_fail_marks_unknown(self, pki: TestPKI, at: dt.datetime) -> None:
        """SOFT_FAIL: UNKNOWN comes back marked soft_failed."""
        result = check(RevocationChecker(M.SOFT_FAIL, fetcher=StaticFetcher()), pki, "ssp", at)
        assert result.status is RevocationStatus.UNKNOWN
        assert result.soft_failed

    def test_soft_fail_still_revokes(
        self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime
    ) -> None:
        """SOFT_FAIL never softens a REVOKED answer."""
        result = check(RevocationChecker(M.SOFT_FAIL, fetcher=fetcher), pki, "revoked", at)
        assert result.status is RevocationStatus.REVOKED
        assert not result.soft_failed

    def test_crl_only(self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime) -> None:
        """CRL_ONLY never asks OCSP, even when the CRL is unavailable."""
        fetcher.crls.clear()
        result = check(RevocationChecker(M.CRL_ONLY, fetcher=fetcher), pki, "ssp", at)
        assert result.status is RevocationStatus.UNKNOWN
        assert all(kind == "crl" for kind, _ in fetcher.calls)

    def test_ocsp_only(self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime) -> None:
        """OCSP_ONLY never fetches a CRL."""
        result = check(RevocationChecker(M.OCSP_ONLY, fetcher=fetcher), pki, "ssp", at)
        assert result.evidence is not None
        assert result.evidence.source == "ocsp"
        assert fetcher.calls == [("ocsp", OCSP_URL)]

    def test_prefer_ocsp_order(self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime) -> None:
        """PREFER_OCSP asks OCSP first, and falls back to the CRL."""
        assert (
            check(RevocationChecker(M.PREFER_OCSP, fetcher=fetcher), pki, "ssp", at).evidence.source
            == "ocsp"
        )  # type: ignore[union-attr]
        fetcher.ocsp.clear()
        fetcher.calls.clear()
        result = check(RevocationChecker(M.PREFER_OCSP, fetcher=fetcher), pki, "ssp", at)
        assert result.evidence is not None
        assert result.evidence.source == "crl"
        assert [k for k, _ in fetcher.calls] == ["ocsp", "crl"]

    def test_configured_ocsp_url(self, pki: TestPKI, at: dt.datetime) -> None:
        """A configured responder URL replaces the AIA URL."""
        fetcher = StaticFetcher(ocsp={"http://other/ocsp": ocsp_answer(pki, at)})
        checker = RevocationChecker(M.OCSP_ONLY, fetcher=fetcher, ocsp_url="http://other/ocsp")
        assert check(checker, pki, "ssp", at).status is RevocationStatus.GOOD

    def test_disabled(self, pki: TestPKI, at: dt.datetime) -> None:
        """DISABLED answers GOOD with no evidence, and says so in problems."""
        fetcher = StaticFetcher()
        result = check(
            RevocationChecker(M.DISABLED, fetcher=fetcher, unsafe_allow_disabled=True),
            pki,
            "revoked",
            at,
        )
        assert result.status is RevocationStatus.GOOD
        assert result.evidence is None
        assert "disabled" in result.problems[0]
        assert fetcher.calls == []


class TestOffline:
    def test_supplied_crl(self, pki: TestPKI, at: dt.datetime) -> None:
        """OFFLINE uses the supplied CRL (bytes or object) and fetches nothing."""
        for supplied in (pki.crl(), der(pki.crl())):
            checker = RevocationChecker(M.OFFLINE, crls=[supplied])
            assert check(checker, pki, "ssp", at).status is RevocationStatus.GOOD
            result = check(checker, pki, "revoked", at)
            assert result.status is RevocationStatus.REVOKED
            assert result.evidence is not None
            assert result.evidence.url is None

    def test_supplied_crls_by_issuer_name_are_bounded(
        self, pki: TestPKI, at: dt.datetime, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The supplied CRLs found per issuer name are remembered within a bound, and a
        certificate of another issuer never gets the first one's CRLs."""
        monkeypatch.setattr(_checker, "_SUPPLIED_BY_NAME_MAX", 1)
        checker = RevocationChecker(M.OFFLINE, crls=[pki.crl(), pki.root_crl()])
        for _ in range(2):
            assert check(checker, pki, "ssp", at).status is RevocationStatus.GOOD
            assert check(checker, pki, "revoked", at).status is RevocationStatus.REVOKED
            sub = checker.check(pki.sub_ca.certificate, pki.root.certificate, at=at)
            assert sub.status is RevocationStatus.GOOD
            assert len(checker._supplied_by_name) <= 1

    def test_nothing_supplied(self, pki: TestPKI, at: dt.datetime) -> None:
        """OFFLINE with no matching evidence is UNKNOWN and says nothing was supplied."""
        result = check(RevocationChecker(M.OFFLINE, crls=[pki.root_crl()]), pki, "ssp", at)
        assert result.status is RevocationStatus.UNKNOWN
        assert "no supplied CRL" in result.problems[0]

    def test_supplied_crl_bad(self, pki: TestPKI, at: dt.datetime) -> None:
        """A supplied CRL that fails verification is a problem (remembered per issuer)."""
        checker = RevocationChecker(M.OFFLINE, crls=[pki.crl("foreign-sub-ca")])
        for _ in range(2):
            result = check(checker, pki, "ssp", at)
            assert result.status is RevocationStatus.UNKNOWN
            assert "authority key identifier" in result.problems[0]

    def test_supplied_crl_stale(self, pki: TestPKI, at: dt.datetime) -> None:
        """A supplied CRL that is stale at the validation time gives no evidence."""
        result = check(RevocationChecker(M.OFFLINE, crls=[pki.crl()]), pki, "ssp", at + 30 * DAY)
        assert result.status is RevocationStatus.UNKNOWN
        assert "stale" in result.problems[0]

    def test_supplied_crl_used_before_fetching(
        self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime
    ) -> None:
        """In an online mode a supplied CRL is used first and nothing is fetched."""
        checker = RevocationChecker(fetcher=fetcher, crls=[pki.crl()])
        assert check(checker, pki, "ssp", at).status is RevocationStatus.GOOD
        assert fetcher.calls == []

    def test_supplied_ocsp(self, pki: TestPKI, at: dt.datetime) -> None:
        """OFFLINE uses a supplied OCSP response matching the certificate."""
        good = make_ocsp(pki, leaf(pki), pki.sub_ca, this_update=at)
        other = make_ocsp(pki, leaf(pki, "provider"), pki.sub_ca, this_update=at)
        unknown = make_ocsp(
            pki, leaf(pki), pki.sub_ca, this_update=at, status=ocsp.OCSPCertStatus.UNKNOWN
        )
        unsuccessful = ocsp.OCSPResponseBuilder.build_unsuccessful(
            ocsp.OCSPResponseStatus.TRY_LATER
        )
        from cryptography.hazmat.primitives.serialization import Encoding

        checker = RevocationChecker(
            M.OFFLINE,
            ocsp_responses=[unsuccessful.public_bytes(Encoding.DER), other, unknown, good],
        )
        result = check(checker, pki, "ssp", at)
        assert result.status is RevocationStatus.GOOD
        assert result.evidence is not None
        assert result.evidence.source == "ocsp"
        assert result.evidence.url is None

    def test_supplied_ocsp_bad(self, pki: TestPKI, at: dt.datetime) -> None:
        """A supplied OCSP response signed by a stranger is a problem."""
        bad = make_ocsp(
            pki,
            leaf(pki),
            pki.sub_ca,
            this_update=at,
            signer=pki.cas["foreign-sub-ca"],
            by_name=True,
        )
        result = check(RevocationChecker(M.OFFLINE, ocsp_responses=[bad]), pki, "ssp", at)
        assert result.status is RevocationStatus.UNKNOWN
        assert "signature" in result.problems[0]

    def test_supplied_garbage_raises_at_construction(self) -> None:
        """Supplied evidence that does not parse is an input error at construction."""
        from spinepki.errors import CRLParseError, OCSPParseError

        with pytest.raises(CRLParseError):
            RevocationChecker(M.OFFLINE, crls=[b"junk"])
        with pytest.raises(OCSPParseError):
            RevocationChecker(M.OFFLINE, ocsp_responses=[b"junk"])


class TestCrlCache:
    def test_stale_cache_is_refetched(
        self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime
    ) -> None:
        """Once the cached CRL passes its refresh point, the next check refetches."""
        checker = RevocationChecker(fetcher=fetcher)
        check(checker, pki, "ssp", at)
        fetcher.crls[CRL_URL] = der(pki.crl(at=at + 6 * DAY))
        later = check(checker, pki, "ssp", at + 6 * DAY + dt.timedelta(hours=23))
        assert later.status is RevocationStatus.GOOD
        assert fetcher.calls.count(("crl", CRL_URL)) == 2

    def test_failed_early_refresh_keeps_cached(
        self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime
    ) -> None:
        """A failed refresh before nextUpdate keeps using the cached CRL, silently."""
        checker = RevocationChecker(
            fetcher=fetcher, limits=RevocationLimits(refresh_before=dt.timedelta(days=2))
        )
        first = check(checker, pki, "ssp", at)
        fetcher.crls[CRL_URL] = FetchError("down", source=CRL_URL)
        when = first.valid_until - dt.timedelta(hours=1)  # type: ignore[operator]
        result = check(checker, pki, "ssp", when)
        assert result.status is RevocationStatus.GOOD
        assert result.problems == ()
        # within the backoff, no new fetch; the cached CRL still answers
        again = check(checker, pki, "ssp", when + dt.timedelta(seconds=1))
        assert again.status is RevocationStatus.GOOD
        assert fetcher.calls.count(("crl", CRL_URL)) == 2

    def test_failure_backoff(self, pki: TestPKI, at: dt.datetime) -> None:
        """A failed fetch is not retried until the backoff has passed (in validation time)."""
        fetcher = StaticFetcher(crls={CRL_URL: FetchError("down", source=CRL_URL)})
        checker = RevocationChecker(M.CRL_ONLY, fetcher=fetcher)
        check(checker, pki, "ssp", at)
        second = check(checker, pki, "ssp", at + dt.timedelta(seconds=10))
        assert "not retried before" in second.problems[0]
        assert len(fetcher.calls) == 1
        fetcher.crls[CRL_URL] = der(pki.crl())
        third = check(checker, pki, "ssp", at + dt.timedelta(seconds=31))
        assert third.status is RevocationStatus.GOOD
        assert len(fetcher.calls) == 2

    def test_stale_fetch_with_stale_cache(
        self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime
    ) -> None:
        """When the cache is stale and the refetch fails, the fetch problem is reported."""
        checker = RevocationChecker(fetcher=fetcher)
        check(checker, pki, "ssp", at)
        fetcher.crls[CRL_URL] = FetchError("down", source=CRL_URL)
        result = check(checker, pki, "ssp", at + 30 * DAY)
        assert result.status is RevocationStatus.UNKNOWN
        assert any("down" in p for p in result.problems)

    def test_rollback_refused(self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime) -> None:
        """An older CRL number than the cached one is not accepted as a refresh."""
        fetcher.crls[CRL_URL] = der(make_crl(pki.sub_ca, this_update=at, number=10))
        checker = RevocationChecker(
            fetcher=fetcher, limits=RevocationLimits(refresh_before=dt.timedelta(days=7))
        )
        check(checker, pki, "ssp", at)
        fetcher.crls[CRL_URL] = der(make_crl(pki.sub_ca, this_update=at, number=3))
        result = check(checker, pki, "ssp", at + 4 * DAY)
        assert result.evidence is not None
        assert result.evidence.crl_number == 10
        assert "older CRL" in result.problems[0]
        assert "older CRL" in checker.refresh(at=at)[0]

    def test_refresh(self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime) -> None:
        """refresh() refetches every cached CRL and reports failures."""
        checker = RevocationChecker(fetcher=fetcher)
        check(checker, pki, "ssp", at)
        pki.revoke("consumer")
        fetcher.crls[CRL_URL] = der(pki.crl())
        assert checker.refresh(at=at) == ()
        assert check(checker, pki, "consumer", at).status is RevocationStatus.REVOKED
        fetcher.crls[CRL_URL] = FetchError("down", source=CRL_URL)
        assert "down" in checker.refresh(at=at)[0]
        assert RevocationChecker(M.OFFLINE).refresh(at=at) == ()

    def test_background_refresh(
        self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime
    ) -> None:
        """The optional background thread refreshes, and close() stops it."""
        done = threading.Event()
        checker = RevocationChecker(fetcher=fetcher)
        check(checker, pki, "ssp", at)
        calls: list[dt.datetime] = []

        def clock() -> dt.datetime:
            calls.append(at)
            if len(calls) > 2:  # once when started (the clock is tried), then the thread
                done.set()
            return at

        checker.start_background_refresh(0.01, clock=clock)
        with pytest.raises(ConfigurationError):
            checker.start_background_refresh(0.01)
        assert done.wait(5)
        checker.close()
        assert fetcher.calls.count(("crl", CRL_URL)) >= 2
        with pytest.raises(ConfigurationError):
            checker.start_background_refresh(0)

    def test_background_refresh_refuses_a_naive_clock_at_once(self, fetcher: StaticFetcher) -> None:
        checker = RevocationChecker(fetcher=fetcher)
        with pytest.raises(ConfigurationError):
            checker.start_background_refresh(0.01, clock=lambda: dt.datetime(2024, 3, 1))
        checker.close()

    def test_background_refresh_outlives_a_failed_round(
        self,
        pki: TestPKI,
        fetcher: StaticFetcher,
        at: dt.datetime,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A round that raises is logged, and the next round runs."""
        checker = RevocationChecker(fetcher=fetcher)
        check(checker, pki, "ssp", at)
        rounds: list[int] = []
        done = threading.Event()

        def clock() -> dt.datetime:
            rounds.append(1)
            if len(rounds) == 2:  # the thread's first round
                raise RuntimeError("clock broke")
            if len(rounds) > 3:
                done.set()
            return at

        checker.start_background_refresh(0.01, clock=clock)
        assert done.wait(5)
        checker.close()
        assert "background CRL refresh failed" in caplog.text

    def test_cache_is_bounded(self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime) -> None:
        """With room for one CRL, alternating issuers evict each other."""
        checker = RevocationChecker(fetcher=fetcher, limits=RevocationLimits(crl_cache_size=1))
        for _ in range(2):
            check(checker, pki, "ssp", at)
            checker.check(pki.sub_ca.certificate, pki.root.certificate, at=at)
        assert len(fetcher.calls) == 4

    def test_cache_bounded_by_bytes(
        self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime
    ) -> None:
        """The byte bound evicts older CRLs but always keeps the newest."""
        checker = RevocationChecker(fetcher=fetcher, limits=RevocationLimits(crl_cache_bytes=1))
        check(checker, pki, "ssp", at)
        check(checker, pki, "ssp", at)
        checker.check(pki.sub_ca.certificate, pki.root.certificate, at=at)
        check(checker, pki, "ssp", at)
        assert len(fetcher.calls) == 3

    def test_concurrent_checks_share_one_fetch(self, pki: TestPKI, at: dt.datetime) -> None:
        """Threads checking at once wait for a single fetch of the CRL."""
        gate = threading.Event()
        body = der(pki.crl())

        class Slow(StaticFetcher):
            def fetch_crl(self, url: str) -> bytes:
                gate.wait(5)
                return super().fetch_crl(url)

        fetcher = Slow(crls={CRL_URL: body})
        checker = RevocationChecker(fetcher=fetcher)
        results = []
        threads = [
            threading.Thread(target=lambda: results.append(check(checker, pki, "ssp", at)))
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        gate.set()
        for t in threads:
            t.join(5)
        assert [r.status for r in results] == [RevocationStatus.GOOD] * 8
        assert len(fetcher.calls) == 1

    def test_pem_crl_from_fetcher(self, pki: TestPKI, at: dt.datetime) -> None:
        """A PEM CRL served at the CDP is accepted too."""
        from cryptography.hazmat.primitives.serialization import Encoding

        fetcher = StaticFetcher(crls={CRL_URL: pki.crl().public_bytes(Encoding.PEM)})
        assert (
            check(RevocationChecker(fetcher=fetcher), pki, "ssp", at).status
            is RevocationStatus.GOOD
        )


class TestOcspCache:
    def test_answer_cached_until_next_update(self, pki: TestPKI, at: dt.datetime) -> None:
        """An OCSP answer is reused until its nextUpdate (within max_staleness of its
        fetch), then asked again."""
        fetcher = StaticFetcher(ocsp={OCSP_URL: ocsp_answer(pki, at)})
        checker = RevocationChecker(
            M.OCSP_ONLY, fetcher=fetcher, limits=RevocationLimits(max_staleness=DAY * 2)
        )
        check(checker, pki, "ssp", at)
        check(checker, pki, "ssp", at + dt.timedelta(hours=1))
        assert len(fetcher.calls) == 1
        fetcher.ocsp[OCSP_URL] = ocsp_answer(pki, at + DAY)
        assert check(checker, pki, "ssp", at + DAY).status is RevocationStatus.GOOD
        assert len(fetcher.calls) == 2

    def test_no_next_update_not_cached(self, pki: TestPKI, at: dt.datetime) -> None:
        """An answer without nextUpdate is used once and not cached (a result built on it
        is reusable for max_staleness at most)."""
        fetcher = StaticFetcher(ocsp={OCSP_URL: ocsp_answer(pki, at, next_update=None)})
        checker = RevocationChecker(M.OCSP_ONLY, fetcher=fetcher)
        assert check(checker, pki, "ssp", at).valid_until == at + DEFAULT_MAX_STALENESS
        check(checker, pki, "ssp", at)
        assert len(fetcher.calls) == 2

    def test_unknown_falls_through(
        self, pki: TestPKI, fetcher: StaticFetcher, at: dt.datetime
    ) -> None:
        """An OCSP 'unknown' answer is not evidence: PREFER_OCSP moves on to the CRL."""
        fetcher.ocsp[OCSP_URL] = lambda req: make_ocsp(
            pki, leaf(pki), pki.sub_ca, this_update=at, status=ocsp.OCSPCertStatus.UNKNOWN
        )
        result = check(RevocationChecker(M.PREFER_OCSP, fetcher=fetcher), pki, "ssp", at)
        assert result.evidence is not None
        assert result.evidence.source == "crl"
        assert "does not know" in result.problems[0]

    def test_ocsp_backoff(self, pki: TestPKI, at: dt.datetime) -> None:
        """A failed OCSP post is not retried within the backoff."""
        fetcher = StaticFetcher()
        checker = RevocationChecker(M.OCSP_ONLY, fetcher=fetcher)
        check(checker, pki, "ssp", at)
        result = check(checker, pki, "ssp", at)
        assert "not retried before" in result.problems[0]
        assert len(fetcher.calls) == 1

    def test_garbage_answer(self, pki: TestPKI, at: dt.datetime) -> None:
        """A garbage OCSP answer is a problem."""
        fetcher = StaticFetcher(ocsp={OCSP_URL: b"junk"})
        result = check(RevocationChecker(M.OCSP_ONLY, fetcher=fetcher), pki, "ssp", at)
        assert "not a valid OCSP response" in result.problems[0]


def test_default_fetcher_is_made_lazily(pki: TestPKI, at: dt.datetime) -> None:
    """Without a fetcher, a RequestsFetcher is made on first need and closed by close()."""
    with RevocationChecker(
        M.CRL_ONLY, limits=RevocationLimits(failure_backoff=dt.timedelta(0))
    ) as checker:
        assert checker._own_fetcher is None
        result = check(checker, pki, "ssp", at)  # crl.test.invalid does not resolve
        assert result.status is RevocationStatus.UNKNOWN
        assert checker._own_fetcher is not None
    assert checker._own_fetcher is None
