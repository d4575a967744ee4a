"""Evidence rules the second review of the revocation layer found short (docs/revocation.md,
"Evidence rules"): a stale cached listing lost when the refetch fails, a rollback between
CRLs without numbers, supplied OCSP answers depending on their order, CRL numbers compared
across scopes, and critical extensions in a response with several answers.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from spinepki.errors import CRLParseError, EvidenceError, FetchError
from spinepki.revocation import (
    RevocationChecker,
    RevocationStatus,
    StaticFetcher,
    load_crl,
    parse_ocsp_response,
)
from spinepki.testpki import TestPKI

from ._helpers import M, children, idp, make_crl, make_ocsp, tlv, verify_ocsp
from .conftest import CRL_URL, der

KEY_COMPROMISE = x509.ReasonFlags.key_compromise
HOLD = x509.ReasonFlags.certificate_hold


def _leaf(pki: TestPKI) -> x509.Certificate:
    return pki.leaf("ssp").certificate


def _listing(
    pki: TestPKI,
    at: dt.datetime,
    *,
    number: int | None = 1,
    listed: bool = True,
    age: dt.timedelta = dt.timedelta(hours=1),
    reason: x509.ReasonFlags | None = KEY_COMPROMISE,
    extensions: list[tuple[x509.ExtensionType, bool]] | None = None,
) -> x509.CertificateRevocationList:
    return make_crl(
        pki.sub_ca,
        this_update=at - age,
        serials=[_leaf(pki).serial_number] if listed else [],
        number=number,
        reason=reason,
        extensions=extensions or [],
    )


class TestStaleCachedListingOnFailedRefetch:
    """A cached CRL that goes stale while its distribution point fails still carries the
    CA's permanent listings: REVOKED in every mode, soft-fail included."""

    @pytest.mark.parametrize("mode", [M.SOFT_FAIL, M.HARD_FAIL, M.CRL_ONLY])
    def test_stale_cached_key_compromise_stays_revoked(
        self, pki: TestPKI, at: dt.datetime, mode: M
    ) -> None:
        fetcher = StaticFetcher(crls={CRL_URL: der(_listing(pki, at))})
        checker = RevocationChecker(mode, fetcher=fetcher)
        leaf, sub = _leaf(pki), pki.sub_ca.certificate
        assert checker.check(leaf, sub, at=at).status is RevocationStatus.REVOKED
        fetcher.crls[CRL_URL] = FetchError("connection refused", source=CRL_URL)
        later = at + dt.timedelta(days=8)
        # The first check fetches and fails; the second is within the failure backoff.
        for when in (later, later + dt.timedelta(seconds=1)):
            result = checker.check(leaf, sub, at=when)
            assert result.status is RevocationStatus.REVOKED
            assert result.reason is KEY_COMPROMISE
            assert not result.soft_failed
            assert any("connection refused" in p for p in result.problems)
            assert any("stale" in p for p in result.problems)

    def test_stale_cached_crl_without_listing_is_no_evidence(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """Not listed in the stale CRL: UNKNOWN (soft-failed), with both reasons."""
        fetcher = StaticFetcher(crls={CRL_URL: der(_listing(pki, at, listed=False))})
        checker = RevocationChecker(M.SOFT_FAIL, fetcher=fetcher)
        leaf, sub = _leaf(pki), pki.sub_ca.certificate
        assert checker.check(leaf, sub, at=at).status is RevocationStatus.GOOD
        fetcher.crls[CRL_URL] = FetchError("connection refused", source=CRL_URL)
        result = checker.check(leaf, sub, at=at + dt.timedelta(days=8))
        assert result.status is RevocationStatus.UNKNOWN
        assert result.soft_failed
        assert any("connection refused" in p for p in result.problems)
        assert any("stale" in p for p in result.problems)


class TestFetchedRollbackByThisUpdate:
    """A refetch that serves an older CRL is refused as a rollback even when the CRLs
    carry no CRL number: thisUpdate orders them then (as for supplied CRLs)."""

    @pytest.mark.parametrize(
        ("cached_number", "fresh_number"), [(None, None), (5, None), (None, 5), (5, 4)]
    )
    def test_older_crl_does_not_replace_the_cached_one(
        self,
        pki: TestPKI,
        at: dt.datetime,
        cached_number: int | None,
        fresh_number: int | None,
    ) -> None:
        fetcher = StaticFetcher(crls={CRL_URL: der(_listing(pki, at, number=cached_number))})
        checker = RevocationChecker(M.HARD_FAIL, fetcher=fetcher)
        leaf, sub = _leaf(pki), pki.sub_ca.certificate
        assert checker.check(leaf, sub, at=at).status is RevocationStatus.REVOKED
        older = _listing(pki, at, number=fresh_number, listed=False, age=dt.timedelta(hours=2))
        fetcher.crls[CRL_URL] = der(older)
        # Past max_staleness: the cached CRL is due, the responder serves the older one.
        result = checker.check(leaf, sub, at=at + dt.timedelta(minutes=10))
        assert result.status is RevocationStatus.REVOKED
        assert any("older CRL" in p for p in result.problems)
        assert ("crl", CRL_URL) in fetcher.calls[1:]

    def test_an_equal_number_is_not_a_rollback(self, pki: TestPKI, at: dt.datetime) -> None:
        """The same CRL number signed again with an earlier thisUpdate (a responder whose
        clock went back) is the same CRL, not a rollback: it replaces the cached one."""
        fetcher = StaticFetcher(crls={CRL_URL: der(_listing(pki, at, number=5, reason=HOLD))})
        checker = RevocationChecker(M.HARD_FAIL, fetcher=fetcher)
        leaf, sub = _leaf(pki), pki.sub_ca.certificate
        assert checker.check(leaf, sub, at=at).status is RevocationStatus.REVOKED
        fetcher.crls[CRL_URL] = der(
            _listing(pki, at, number=5, listed=False, age=dt.timedelta(hours=2))
        )
        result = checker.check(leaf, sub, at=at + dt.timedelta(minutes=10))
        assert result.status is RevocationStatus.GOOD
        assert not result.problems

    def test_a_newer_crl_without_number_replaces_it(self, pki: TestPKI, at: dt.datetime) -> None:
        """A later thisUpdate (hold released) is taken."""
        fetcher = StaticFetcher(
            crls={
                CRL_URL: der(_listing(pki, at, number=None, reason=HOLD, age=dt.timedelta(hours=2)))
            }
        )
        checker = RevocationChecker(M.HARD_FAIL, fetcher=fetcher)
        leaf, sub = _leaf(pki), pki.sub_ca.certificate
        assert checker.check(leaf, sub, at=at).status is RevocationStatus.REVOKED
        fetcher.crls[CRL_URL] = der(_listing(pki, at, number=None, listed=False))
        result = checker.check(leaf, sub, at=at + dt.timedelta(minutes=10))
        assert result.status is RevocationStatus.GOOD
        assert not result.problems


def _ocsp(
    pki: TestPKI,
    at: dt.datetime,
    status: ocsp.OCSPCertStatus,
    *,
    age: dt.timedelta,
    reason: x509.ReasonFlags | None = KEY_COMPROMISE,
) -> bytes:
    return make_ocsp(
        pki, _leaf(pki), pki.sub_ca, this_update=at - age, status=status, reason=reason
    )


class TestSuppliedOCSPOrder:
    """Several supplied OCSP responses about one certificate answer the same in any
    order: a permanent REVOKED wins, then the latest thisUpdate."""

    @pytest.mark.parametrize("order", [(0, 1), (1, 0)])
    def test_permanent_revoked_wins_over_a_later_good(
        self, pki: TestPKI, at: dt.datetime, order: tuple[int, int]
    ) -> None:
        responses = [
            _ocsp(pki, at, ocsp.OCSPCertStatus.REVOKED, age=dt.timedelta(hours=2)),
            _ocsp(pki, at, ocsp.OCSPCertStatus.GOOD, age=dt.timedelta(hours=1)),
        ]
        checker = RevocationChecker(M.OFFLINE, ocsp_responses=[responses[i] for i in order])
        result = checker.check(_leaf(pki), pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.REVOKED
        assert result.reason is KEY_COMPROMISE

    @pytest.mark.parametrize("order", [(0, 1), (1, 0)])
    def test_a_later_good_releases_an_older_hold(
        self, pki: TestPKI, at: dt.datetime, order: tuple[int, int]
    ) -> None:
        responses = [
            _ocsp(pki, at, ocsp.OCSPCertStatus.REVOKED, age=dt.timedelta(hours=2), reason=HOLD),
            _ocsp(pki, at, ocsp.OCSPCertStatus.GOOD, age=dt.timedelta(hours=1)),
        ]
        checker = RevocationChecker(M.OFFLINE, ocsp_responses=[responses[i] for i in order])
        result = checker.check(_leaf(pki), pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.GOOD
        assert result.evidence is not None
        assert result.evidence.this_update == at - dt.timedelta(hours=1)

    @pytest.mark.parametrize("order", [(0, 1), (1, 0)])
    def test_a_later_hold_wins_over_an_older_good(
        self, pki: TestPKI, at: dt.datetime, order: tuple[int, int]
    ) -> None:
        responses = [
            _ocsp(pki, at, ocsp.OCSPCertStatus.GOOD, age=dt.timedelta(hours=2)),
            _ocsp(pki, at, ocsp.OCSPCertStatus.REVOKED, age=dt.timedelta(hours=1), reason=HOLD),
        ]
        checker = RevocationChecker(M.OFFLINE, ocsp_responses=[responses[i] for i in order])
        result = checker.check(_leaf(pki), pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.REVOKED
        assert result.reason is HOLD


class TestPermanentRevocationAcrossSources:
    """Any permanent REVOKED among the supplied evidence wins over a GOOD from the
    source tried first."""

    def test_offline_ocsp_key_compromise_beats_a_fresh_crl_good(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        checker = RevocationChecker(
            M.OFFLINE,
            crls=[_listing(pki, at, listed=False)],
            ocsp_responses=[_ocsp(pki, at, ocsp.OCSPCertStatus.REVOKED, age=dt.timedelta(hours=1))],
        )
        result = checker.check(_leaf(pki), pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.REVOKED
        assert result.reason is KEY_COMPROMISE
        assert result.evidence is not None
        assert result.evidence.source == "ocsp"

    def test_prefer_ocsp_crl_key_compromise_beats_an_ocsp_good(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        fetcher = StaticFetcher()
        checker = RevocationChecker(
            M.PREFER_OCSP,
            fetcher=fetcher,
            crls=[_listing(pki, at)],
            ocsp_responses=[_ocsp(pki, at, ocsp.OCSPCertStatus.GOOD, age=dt.timedelta(hours=1))],
        )
        result = checker.check(_leaf(pki), pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.REVOKED
        assert result.evidence is not None
        assert result.evidence.source == "crl"
        assert fetcher.calls == []

    def test_a_supplied_hold_does_not_override_the_first_source(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """Only a permanent listing crosses sources: a hold on the OCSP side does not
        undo the CRL's GOOD (the mode's order decides, as before)."""
        checker = RevocationChecker(
            M.OFFLINE,
            crls=[_listing(pki, at, listed=False)],
            ocsp_responses=[
                _ocsp(pki, at, ocsp.OCSPCertStatus.REVOKED, age=dt.timedelta(hours=1), reason=HOLD)
            ],
        )
        result = checker.check(_leaf(pki), pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.GOOD
        assert not result.problems


class TestCRLNumbersPerScope:
    """RFC 5280 5.2.3: CRL numbers increase per issuer and scope, so a full CRL's higher
    number says nothing about a partition's CRL: across scopes any in-date listing wins."""

    @pytest.mark.parametrize("order", [(0, 1), (1, 0)])
    def test_a_hold_in_a_partition_is_not_hidden_by_a_higher_full_crl(
        self, pki: TestPKI, at: dt.datetime, order: tuple[int, int]
    ) -> None:
        crls = [
            _listing(pki, at, number=10, listed=False),
            _listing(pki, at, number=3, reason=HOLD, extensions=[(idp(user_certs=True), True)]),
        ]
        checker = RevocationChecker(M.OFFLINE, crls=[crls[i] for i in order])
        result = checker.check(_leaf(pki), pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.REVOKED
        assert result.reason is HOLD

    @pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
    def test_within_a_scope_the_newest_still_decides(
        self, pki: TestPKI, at: dt.datetime, order: tuple[int, ...]
    ) -> None:
        """Hold on partition #3, released on partition #4, full CRL #10 silent: GOOD."""
        partition = [(idp(user_certs=True), True)]
        crls = [
            _listing(pki, at, number=10, listed=False),
            _listing(pki, at, number=3, reason=HOLD, extensions=partition),
            _listing(pki, at, number=4, listed=False, extensions=partition),
        ]
        checker = RevocationChecker(M.OFFLINE, crls=[crls[i] for i in order])
        result = checker.check(_leaf(pki), pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.GOOD


class TestSuppliedCRLsOnline:
    """Documented: in online modes a supplied CRL that answers is authoritative; the
    distribution point is asked only when no supplied CRL of the issuer is usable."""

    def test_a_supplied_crl_answers_without_a_fetch(self, pki: TestPKI, at: dt.datetime) -> None:
        fetcher = StaticFetcher(crls={CRL_URL: der(_listing(pki, at, number=6))})
        checker = RevocationChecker(
            M.HARD_FAIL, fetcher=fetcher, crls=[_listing(pki, at, number=5, listed=False)]
        )
        result = checker.check(_leaf(pki), pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.GOOD
        assert fetcher.calls == []

    def test_a_stale_supplied_crl_falls_through_to_the_fetch(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        fetcher = StaticFetcher(crls={CRL_URL: der(_listing(pki, at, number=6))})
        stale = _listing(pki, at, number=5, listed=False, age=dt.timedelta(days=9))
        checker = RevocationChecker(M.HARD_FAIL, fetcher=fetcher, crls=[stale])
        result = checker.check(_leaf(pki), pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.REVOKED
        assert fetcher.calls == [("crl", CRL_URL)]


def _two_answers(pki: TestPKI, at: dt.datetime, extension_der: bytes | None) -> bytes:
    """A response about the leaf and about another serial, the leaf's SingleResponse
    carrying ``extension_der`` as singleExtensions, signed again by the Sub CA."""

    def single_of(data: bytes) -> tuple[bytes, list[bytes]]:
        (_status, response_bytes) = children(data)
        explicit = children(response_bytes)[0]
        _oid, octets = children(explicit)
        basic = octets[2:] if octets[1] < 0x80 else octets[2 + (octets[1] & 0x7F) :]
        tbs = children(basic)[0]
        fields = children(tbs)
        index = next(i for i, f in enumerate(fields) if f[0] == 0x30 and i > 0)
        (single,) = children(fields[index])
        return single, fields

    data = make_ocsp(pki, _leaf(pki), pki.sub_ca, this_update=at)
    other = make_ocsp(pki, _leaf(pki), pki.sub_ca, this_update=at, serial=424242)
    single, fields = single_of(data)
    other_single, _ = single_of(other)
    if extension_der is not None:
        single = tlv(0x30, b"".join(children(single)) + tlv(0xA1, tlv(0x30, extension_der)))
    index = next(i for i, f in enumerate(fields) if f[0] == 0x30 and i > 0)
    fields[index] = tlv(0x30, other_single + single)
    new_tbs = tlv(0x30, b"".join(fields))
    (status, response_bytes) = children(data)
    explicit = children(response_bytes)[0]
    oid, octets = children(explicit)
    basic = octets[2:] if octets[1] < 0x80 else octets[2 + (octets[1] & 0x7F) :]
    _tbs, alg, _signature, *rest = children(basic)
    key = pki.sub_ca.private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signature = key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    new_basic = tlv(0x30, new_tbs + alg + tlv(0x03, b"\0" + signature) + b"".join(rest))
    return tlv(0x30, status + tlv(0xA0, tlv(0x30, oid + tlv(0x04, new_basic))))


class TestCriticalSingleExtensionAmongSeveral:
    """RFC 6960 4.4 holds for a response with several SingleResponses too, which
    cryptography does not expose the singleExtensions of."""

    OID = tlv(0x06, bytes.fromhex("2b0601040186bb1f01"))

    def test_refused(self, pki: TestPKI, at: dt.datetime) -> None:
        data = _two_answers(
            pki, at, tlv(0x30, self.OID + tlv(0x01, b"\xff") + tlv(0x04, b"\x05\x00"))
        )
        assert len(list(parse_ocsp_response(data).responses)) == 2
        with pytest.raises(EvidenceError, match="unrecognised critical extension"):
            verify_ocsp(pki, data, at)
        result = RevocationChecker(M.OFFLINE, ocsp_responses=[data]).check(
            _leaf(pki), pki.sub_ca.certificate, at=at
        )
        assert result.status is RevocationStatus.UNKNOWN

    def test_not_critical_is_ignored(self, pki: TestPKI, at: dt.datetime) -> None:
        verify_ocsp(pki, _two_answers(pki, at, tlv(0x30, self.OID + tlv(0x04, b"\x05\x00"))), at)
        verify_ocsp(pki, _two_answers(pki, at, None), at)


class TestBytePrefilterSoundness:
    """The search for critical entry extensions (``01 01 FF 04``) relies on the bytes
    being DER: a critical flag spelt any other way is refused when the CRL is loaded."""

    def test_a_ber_true_is_refused_at_load(self, pki: TestPKI, at: dt.datetime) -> None:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(5)
            .revocation_date(at)
            .add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\5\0"),
                critical=True,
            )
            .build()
        )
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(pki.sub_ca.certificate.subject)
            .last_update(at)
            .next_update(at + dt.timedelta(days=1))
            .add_revoked_certificate(entry)
            .sign(pki.sub_ca.private_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        data = der(crl)
        assert data.count(b"\x01\x01\xff\x04") == 1
        with pytest.raises(CRLParseError):
            load_crl(data.replace(b"\x01\x01\xff\x04", b"\x01\x01\x01\x04"))


class TestSuppliedEdgeCases:
    def test_prefer_ocsp_good_without_supplied_crls(self, pki: TestPKI, at: dt.datetime) -> None:
        """A supplied OCSP GOOD and no supplied CRL of the issuer: GOOD, no fetch."""
        fetcher = StaticFetcher()
        checker = RevocationChecker(
            M.PREFER_OCSP,
            fetcher=fetcher,
            crls=[pki.root_crl()],
            ocsp_responses=[_ocsp(pki, at, ocsp.OCSPCertStatus.GOOD, age=dt.timedelta(hours=1))],
        )
        result = checker.check(_leaf(pki), pki.sub_ca.certificate, at=at)
        assert result.status is RevocationStatus.GOOD
        assert fetcher.calls == []

    def test_several_supplied_crls_none_usable(self, pki: TestPKI, at: dt.datetime) -> None:
        stale = [
            _listing(pki, at, number=n, listed=False, age=dt.timedelta(days=9)) for n in (1, 2)
        ]
        result = RevocationChecker(M.OFFLINE, crls=stale).check(
            _leaf(pki), pki.sub_ca.certificate, at=at
        )
        assert result.status is RevocationStatus.UNKNOWN
