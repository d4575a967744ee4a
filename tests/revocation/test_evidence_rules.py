"""What counts as revocation evidence (docs/revocation.md, "Evidence rules").

Each class is one rule an attacker who can block, replay or reorder traffic between the
provider and the CA would otherwise use: the older of two CRLs winning, a replayed OCSP
"good", a critical extension ignored, a genuine listing softened to "unknown".
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from spinepki.errors import ConfigurationError, EvidenceError
from spinepki.revocation import (
    DEFAULT_OCSP_MAX_AGE,
    RevocationChecker,
    RevocationLimits,
    RevocationStatus,
    StaticFetcher,
    load_crl,
    parse_ocsp_response,
    verify_crl,
)
from spinepki.testpki import TestPKI

from ._helpers import TOL, M, children, idp, make_crl, make_ocsp, tlv, verify_ocsp
from .conftest import OCSP_URL, der

UNKNOWN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.99999.1")


def _crl(
    pki: TestPKI,
    at: dt.datetime,
    number: int | None,
    *,
    listed: bool,
    reason: x509.ReasonFlags | None = x509.ReasonFlags.key_compromise,
    age: dt.timedelta = dt.timedelta(hours=1),
) -> x509.CertificateRevocationList:
    serials = [pki.leaf("ssp").certificate.serial_number] if listed else []
    return make_crl(pki.sub_ca, this_update=at - age, serials=serials, number=number, reason=reason)


def _offline(pki: TestPKI, at: dt.datetime, crls: list[x509.CertificateRevocationList]):  # type: ignore[no-untyped-def]
    return RevocationChecker(M.OFFLINE, crls=crls).check(
        pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=at
    )


class TestNewestCRLWins:
    """RFC 5280 5.2.3: of two CRLs from one CA the higher CRL number supersedes, and a
    supplied set answers the same whatever order it came in (``--crl a --crl b``, or a
    folder loaded by file name, where the older file often sorts first)."""

    @pytest.mark.parametrize(
        ("numbers", "order"),
        [
            pytest.param(numbers, o, id=" then ".join(f"#{numbers[i]}" for i in o))
            for numbers in ((5, 6), (4, 5, 6))
            for o in itertools.permutations(range(len(numbers)))
        ],
    )
    def test_the_newest_crl_lists(
        self, pki: TestPKI, at: dt.datetime, numbers: tuple[int, ...], order: tuple[int, ...]
    ) -> None:
        """Only #6 lists the leaf: REVOKED whatever the order of the two (#5, #6) or three
        (#4, #5, #6) CRLs."""
        crls = [_crl(pki, at, n, listed=n == 6) for n in numbers]
        result = _offline(pki, at, [crls[i] for i in order])
        assert result.status is RevocationStatus.REVOKED
        assert result.evidence is not None
        assert result.evidence.crl_number == 6

    @pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
    def test_three_crls_hold_released(
        self, pki: TestPKI, at: dt.datetime, order: tuple[int, ...]
    ) -> None:
        """certificateHold on #4 and #5, released on #6: GOOD (from #6) in every order."""
        hold = x509.ReasonFlags.certificate_hold
        crls = [_crl(pki, at, n, listed=n < 6, reason=hold) for n in (4, 5, 6)]
        result = _offline(pki, at, [crls[i] for i in order])
        assert result.status is RevocationStatus.GOOD
        assert result.evidence is not None
        assert result.evidence.crl_number == 6

    @pytest.mark.parametrize("order", [(0, 1), (1, 0)])
    def test_hold_on_the_newest(
        self, pki: TestPKI, at: dt.datetime, order: tuple[int, int]
    ) -> None:
        """A hold placed on the newest CRL (#6) is REVOKED (certificate_hold) either way."""
        hold = x509.ReasonFlags.certificate_hold
        crls = [_crl(pki, at, 5, listed=False), _crl(pki, at, 6, listed=True, reason=hold)]
        result = _offline(pki, at, [crls[i] for i in order])
        assert result.status is RevocationStatus.REVOKED
        assert result.reason is hold

    @pytest.mark.parametrize("order", [(0, 1), (1, 0)])
    def test_permanent_listing_is_never_undone(
        self, pki: TestPKI, at: dt.datetime, order: tuple[int, int]
    ) -> None:
        """keyCompromise on #5 and absent from #6: still REVOKED (only a hold is released)."""
        crls = [_crl(pki, at, 5, listed=True), _crl(pki, at, 6, listed=False)]
        result = _offline(pki, at, [crls[i] for i in order])
        assert result.status is RevocationStatus.REVOKED
        assert result.reason is x509.ReasonFlags.key_compromise

    @pytest.mark.parametrize("order", [(0, 1), (1, 0)])
    def test_without_numbers_the_later_this_update_wins(
        self, pki: TestPKI, at: dt.datetime, order: tuple[int, int]
    ) -> None:
        """Two CRLs without a CRL number: the later thisUpdate decides (hold released)."""
        hold = x509.ReasonFlags.certificate_hold
        older = _crl(pki, at, None, listed=True, reason=hold, age=dt.timedelta(hours=2))
        newer = _crl(pki, at, None, listed=False)
        result = _offline(pki, at, [[older, newer][i] for i in order])
        assert result.status is RevocationStatus.GOOD

    def test_a_stale_newer_crl_does_not_supersede(self, pki: TestPKI, at: dt.datetime) -> None:
        """Only usable CRLs compete: a stale #6 (hold) leaves the fresh #5 to decide."""
        hold = x509.ReasonFlags.certificate_hold
        stale = make_crl(
            pki.sub_ca,
            this_update=at - dt.timedelta(days=9),
            serials=[pki.leaf("ssp").certificate.serial_number],
            number=6,
            reason=hold,
        )
        for crls in (
            [stale, _crl(pki, at, 5, listed=False)],
            [_crl(pki, at, 5, listed=False), stale],
        ):
            result = _offline(pki, at, crls)
            assert result.status is RevocationStatus.GOOD
            assert any("stale" in p for p in result.problems)


class TestStaleListing:
    """A stale CRL is no evidence of GOOD, but its permanent listing is still the CA's
    word: soft-fail must not turn a key compromise into "unknown, accepted"."""

    def _stale(self, pki: TestPKI, at: dt.datetime, reason: x509.ReasonFlags | None):  # type: ignore[no-untyped-def]
        return make_crl(
            pki.sub_ca,
            this_update=at - dt.timedelta(days=9),
            serials=[pki.leaf("ssp").certificate.serial_number],
            reason=reason,
        )

    @pytest.mark.parametrize("reason", [x509.ReasonFlags.key_compromise, None])
    def test_soft_fail_refuses_a_stale_permanent_listing(
        self, pki: TestPKI, at: dt.datetime, reason: x509.ReasonFlags | None
    ) -> None:
        """SOFT_FAIL, a stale CRL listing the leaf: REVOKED (not a soft-failed UNKNOWN)."""
        checker = RevocationChecker(
            M.SOFT_FAIL, crls=[self._stale(pki, at, reason)], fetcher=StaticFetcher()
        )
        result = checker.check(pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.REVOKED
        assert result.reason is reason
        assert not result.soft_failed
        assert any("stale" in p for p in result.problems)

    def test_a_stale_hold_stays_unknown(self, pki: TestPKI, at: dt.datetime) -> None:
        """certificateHold may have been released since: a stale hold is no evidence."""
        checker = RevocationChecker(
            M.SOFT_FAIL,
            crls=[self._stale(pki, at, x509.ReasonFlags.certificate_hold)],
            fetcher=StaticFetcher(),
        )
        result = checker.check(pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.UNKNOWN
        assert result.soft_failed

    def test_a_future_crl_proves_nothing(self, pki: TestPKI, at: dt.datetime) -> None:
        """A CRL issued after the validation time does not revoke before it."""
        future = make_crl(
            pki.sub_ca,
            this_update=at + dt.timedelta(days=1),
            serials=[pki.leaf("ssp").certificate.serial_number],
        )
        assert _offline(pki, at, [future]).status is RevocationStatus.UNKNOWN

    def test_a_stale_crl_about_another_scope_proves_nothing(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """A stale CA-certificates-only CRL listing the leaf's serial does not revoke it."""
        scope = idp(ca_certs=True)
        crl = make_crl(
            pki.sub_ca,
            this_update=at - dt.timedelta(days=9),
            serials=[pki.leaf("ssp").certificate.serial_number],
            extensions=[(scope, True)],
        )
        assert _offline(pki, at, [crl]).status is RevocationStatus.UNKNOWN


class TestCriticalCRLEntryExtension:
    """RFC 5280 5.3: a CRL with an unrecognised critical entry extension is not used for
    any certificate, listed or not; checked once, when the CRL is loaded."""

    def _crl_with_entry_extension(
        self, pki: TestPKI, at: dt.datetime, ext: x509.ExtensionType, *, critical: bool
    ) -> x509.CertificateRevocationList:
        other = pki.leaf("revoked").certificate.serial_number
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(other)
            .revocation_date(at - dt.timedelta(hours=1))
            .add_extension(ext, critical=critical)
            .build()
        )
        return (
            x509.CertificateRevocationListBuilder()
            .issuer_name(pki.sub_ca.certificate.subject)
            .last_update(at - dt.timedelta(hours=1))
            .next_update(at + dt.timedelta(days=7))
            .add_extension(x509.CRLNumber(9), critical=False)
            .add_revoked_certificate(entry)
            .sign(pki.sub_ca.private_key, hashes.SHA256())  # type: ignore[arg-type]
        )

    def test_unrecognised_critical_entry_extension_refuses_the_crl(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """verify_crl refuses it, and the checker uses it for no certificate (not even an
        unlisted one)."""
        crl = self._crl_with_entry_extension(
            pki, at, x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), critical=True
        )
        with pytest.raises(EvidenceError, match=r"unrecognised critical extension 1\.3\.6"):
            verify_crl(load_crl(der(crl)), pki.sub_ca.certificate)
        result = _offline(pki, at, [crl])
        assert result.status is RevocationStatus.UNKNOWN
        assert any("RFC 5280 5.3" in p for p in result.problems)

    def test_the_same_extension_not_critical_is_ignored(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """Non-critical, the unknown entry extension is ignored (RFC 5280 5.3)."""
        crl = self._crl_with_entry_extension(
            pki, at, x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), critical=False
        )
        assert _offline(pki, at, [crl]).status is RevocationStatus.GOOD

    @pytest.mark.parametrize(
        "ext",
        [
            x509.CRLReason(x509.ReasonFlags.superseded),
            x509.InvalidityDate(dt.datetime(2024, 1, 1)),
        ],
    )
    def test_recognised_critical_entry_extensions_are_fine(
        self, pki: TestPKI, at: dt.datetime, ext: x509.ExtensionType
    ) -> None:
        """A reason code or invalidity date marked critical is understood: the CRL is used."""
        crl = self._crl_with_entry_extension(pki, at, ext, critical=True)
        assert _offline(pki, at, [crl]).status is RevocationStatus.GOOD
        revoked = RevocationChecker(M.OFFLINE, crls=[crl]).check(
            pki.leaf("revoked").certificate, pki.sub_ca.certificate, at=at
        )
        assert revoked.status is RevocationStatus.REVOKED

    def test_the_byte_search_has_no_false_refusal(self, pki: TestPKI, at: dt.datetime) -> None:
        """A serial that contains the bytes of a critical flag makes the entries be walked,
        and a CRL without any critical entry extension is still used."""
        serial = int.from_bytes(b"\x41\x01\x01\xff\x04\x02", "big")
        crl = make_crl(pki.sub_ca, this_update=at - dt.timedelta(hours=1), serials=[serial])
        assert b"\x01\x01\xff\x04" in der(crl)
        assert verify_crl(crl, pki.sub_ca.certificate).lookup(serial) is not None
        assert _offline(pki, at, [crl]).status is RevocationStatus.GOOD

    def test_a_critical_crl_extension_is_not_an_entry_extension(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """A critical issuingDistributionPoint (common) is a CRL extension, recognised."""
        scope = idp(user_certs=True)
        crl = make_crl(
            pki.sub_ca, this_update=at - dt.timedelta(hours=1), extensions=[(scope, True)]
        )
        assert _offline(pki, at, [crl]).status is RevocationStatus.GOOD

    def test_a_crl_without_entries_or_extensions(self, pki: TestPKI, at: dt.datetime) -> None:
        """A CRL with no entries at all verifies (there is no entry list to search)."""
        crl = make_crl(pki.sub_ca, this_update=at - dt.timedelta(hours=1), number=None, aki=False)
        assert verify_crl(crl, pki.sub_ca.certificate).index == {}


# -- OCSP ------------------------------------------------------------------------------

OLD = dt.timedelta(days=30)


def _responder(pki: TestPKI, at: dt.datetime, *, echo: bool, age: dt.timedelta):  # type: ignore[no-untyped-def]
    """An OCSP responder function: GOOD without nextUpdate, ``age`` old, nonce echoed
    or not."""

    def answer(request_der: bytes) -> bytes:
        nonce = None
        if echo:
            request = ocsp.load_der_ocsp_request(request_der)
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        return make_ocsp(
            pki,
            pki.leaf("ssp").certificate,
            pki.sub_ca,
            this_update=at - age,
            next_update=None,
            nonce=nonce,
        )

    return answer


class TestOCSPFreshness:
    """A response with no nextUpdate and no echo of our nonce shows no freshness: only
    its age tells it from a replay, so past ``ocsp_max_age`` it is refused."""

    def test_online_replayed_old_good_is_refused(self, pki: TestPKI, at: dt.datetime) -> None:
        """HARD_FAIL: a 30-day-old GOOD, no nonce echo, no nextUpdate: UNKNOWN, not GOOD."""
        fetcher = StaticFetcher(ocsp={OCSP_URL: _responder(pki, at, echo=False, age=OLD)})
        checker = RevocationChecker(M.OCSP_ONLY, fetcher=fetcher)
        result = checker.check(pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.UNKNOWN
        assert any("shows no freshness" in p for p in result.problems)

    def test_online_recent_without_nonce_is_accepted(self, pki: TestPKI, at: dt.datetime) -> None:
        """The same response ten minutes old is within the default maximum age."""
        answer = _responder(pki, at, echo=False, age=dt.timedelta(minutes=10))
        checker = RevocationChecker(M.OCSP_ONLY, fetcher=StaticFetcher(ocsp={OCSP_URL: answer}))
        result = checker.check(pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.GOOD

    def test_online_echoed_nonce_proves_freshness(self, pki: TestPKI, at: dt.datetime) -> None:
        """With our nonce echoed, the response was made for this request: accepted."""
        fetcher = StaticFetcher(ocsp={OCSP_URL: _responder(pki, at, echo=True, age=OLD)})
        checker = RevocationChecker(M.OCSP_ONLY, fetcher=fetcher)
        result = checker.check(pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.GOOD

    def test_offline_replayed_old_good_is_refused(self, pki: TestPKI, at: dt.datetime) -> None:
        """A supplied response never echoes a nonce: a 30-day-old one without nextUpdate
        is no evidence."""
        data = make_ocsp(
            pki, pki.leaf("ssp").certificate, pki.sub_ca, this_update=at - OLD, next_update=None
        )
        checker = RevocationChecker(M.OFFLINE, ocsp_responses=[data])
        result = checker.check(pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.UNKNOWN
        assert any("shows no freshness" in p for p in result.problems)

    def test_offline_within_the_configured_age(self, pki: TestPKI, at: dt.datetime) -> None:
        """ocsp_max_age is configurable: 40 days accepts the 30-day-old response."""
        data = make_ocsp(
            pki, pki.leaf("ssp").certificate, pki.sub_ca, this_update=at - OLD, next_update=None
        )
        checker = RevocationChecker(
            M.OFFLINE,
            ocsp_responses=[data],
            limits=RevocationLimits(ocsp_max_age=dt.timedelta(days=40)),
        )
        result = checker.check(pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.GOOD

    def test_offline_next_update_is_the_cas_promise(self, pki: TestPKI, at: dt.datetime) -> None:
        """An old response whose nextUpdate is still ahead is in date: accepted."""
        data = make_ocsp(
            pki,
            pki.leaf("ssp").certificate,
            pki.sub_ca,
            this_update=at - OLD,
            next_update=OLD + dt.timedelta(days=1),
        )
        checker = RevocationChecker(M.OFFLINE, ocsp_responses=[data])
        result = checker.check(pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.GOOD

    def test_default_age_and_bound(self, pki: TestPKI, at: dt.datetime) -> None:
        """verify_ocsp_response's default is DEFAULT_OCSP_MAX_AGE (one hour), plus the
        clock tolerance."""
        assert dt.timedelta(hours=1) == DEFAULT_OCSP_MAX_AGE
        assert RevocationLimits().ocsp_max_age == DEFAULT_OCSP_MAX_AGE
        cert = pki.leaf("ssp").certificate
        for age, fresh in (
            (DEFAULT_OCSP_MAX_AGE + TOL, True),
            (DEFAULT_OCSP_MAX_AGE + 2 * TOL, False),
        ):
            data = make_ocsp(pki, cert, pki.sub_ca, this_update=at - age, next_update=None)
            if fresh:
                verify_ocsp(pki, data, at)
            else:
                with pytest.raises(EvidenceError, match="replay"):
                    verify_ocsp(pki, data, at)

    @pytest.mark.parametrize("bad", [0, -5, dt.timedelta(0), "60", True])
    def test_bad_max_age(self, bad: object) -> None:
        """ocsp_max_age must be a positive duration."""
        with pytest.raises(ConfigurationError) as info:
            RevocationLimits(ocsp_max_age=bad)  # type: ignore[arg-type]
        assert info.value.source == "RevocationLimits.ocsp_max_age"


def _with_single_extension(pki: TestPKI, data: bytes, extension_der: bytes) -> bytes:
    """``data`` (a one-answer response signed by the EC Sub CA) with singleExtensions
    added to its SingleResponse, signed again."""
    (status, response_bytes) = children(data)
    explicit = children(response_bytes)[0]  # [0] EXPLICIT ResponseBytes
    oid, octets = children(explicit)
    basic = octets[2:] if octets[1] < 0x80 else octets[2 + (octets[1] & 0x7F) :]
    tbs, alg, _signature, *rest = children(basic)
    fields = children(tbs)
    responses_index = next(i for i, f in enumerate(fields) if f[0] == 0x30 and i > 0)
    (single,) = children(fields[responses_index])
    single = tlv(0x30, b"".join(children(single)) + tlv(0xA1, tlv(0x30, extension_der)))
    fields[responses_index] = tlv(0x30, single)
    new_tbs = tlv(0x30, b"".join(fields))
    key = pki.sub_ca.private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signature = key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    new_basic = tlv(0x30, new_tbs + alg + tlv(0x03, b"\0" + signature) + b"".join(rest))
    new_explicit = tlv(0xA0, tlv(0x30, oid + tlv(0x04, new_basic)))
    return tlv(0x30, status + new_explicit)


class TestOCSPCriticalExtensions:
    """RFC 6960 4.4: a critical extension the client does not recognise makes the response
    unusable."""

    def _response(
        self, pki: TestPKI, at: dt.datetime, ext: x509.ExtensionType, *, critical: bool
    ) -> bytes:
        cert = pki.leaf("ssp").certificate
        return make_ocsp(pki, cert, pki.sub_ca, this_update=at, extensions=[(ext, critical)])

    def test_unrecognised_critical_response_extension(self, pki: TestPKI, at: dt.datetime) -> None:
        """Refused by verification, and UNKNOWN through the checker (online and offline)."""
        data = self._response(
            pki, at, x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), critical=True
        )
        with pytest.raises(EvidenceError, match=r"unrecognised critical extension 1\.3\.6"):
            verify_ocsp(pki, data, at)
        offline = RevocationChecker(M.OFFLINE, ocsp_responses=[data])
        online = RevocationChecker(M.OCSP_ONLY, fetcher=StaticFetcher(ocsp={OCSP_URL: data}))
        for checker in (offline, online):
            result = checker.check(pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=at)
            assert result.status is RevocationStatus.UNKNOWN

    def test_the_same_extension_not_critical_is_ignored(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """Non-critical, it is ignored."""
        data = self._response(
            pki, at, x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), critical=False
        )
        verify_ocsp(pki, data, at)

    def test_a_critical_nonce_is_recognised(self, pki: TestPKI, at: dt.datetime) -> None:
        """The nonce is understood, critical or not."""
        verify_ocsp(pki, self._response(pki, at, x509.OCSPNonce(b"n" * 32), critical=True), at)

    def test_unrecognised_critical_single_extension(self, pki: TestPKI, at: dt.datetime) -> None:
        """A critical singleExtensions entry is refused too."""
        ext = (
            tlv(0x06, bytes.fromhex("2b0601040186bb1f01"))
            + tlv(0x01, b"\xff")
            + tlv(0x04, b"\x05\x00")
        )
        data = _with_single_extension(
            pki,
            make_ocsp(pki, pki.leaf("ssp").certificate, pki.sub_ca, this_update=at),
            tlv(0x30, ext),
        )
        assert parse_ocsp_response(data).single_extensions[0].critical
        with pytest.raises(EvidenceError, match="single response has an unrecognised critical"):
            verify_ocsp(pki, data, at)
        not_critical = tlv(0x06, bytes.fromhex("2b0601040186bb1f01")) + tlv(0x04, b"\x05\x00")
        verify_ocsp(
            pki,
            _with_single_extension(
                pki,
                make_ocsp(pki, pki.leaf("ssp").certificate, pki.sub_ca, this_update=at),
                tlv(0x30, not_critical),
            ),
            at,
        )


class TestSuppliedBundles:
    def test_a_pem_bundle_is_every_crl_in_it(self, pki: TestPKI, at: dt.datetime) -> None:
        """crls=[one PEM file with the root's and the Sub CA's CRLs] answers for both."""
        bundle = b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in (pki.crl(), pki.root_crl())
        )
        checker = RevocationChecker(M.OFFLINE, crls=[bundle])
        leaf = checker.check(pki.leaf("ssp").certificate, pki.sub_ca.certificate, at=at)
        sub = checker.check(pki.sub_ca.certificate, pki.root.certificate, at=at)
        assert leaf.status is sub.status is RevocationStatus.GOOD
