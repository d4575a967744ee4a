"""OCSP requests, parsing and verification (spinepki.revocation._ocsp)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from spinepki.errors import EvidenceError, OCSPParseError
from spinepki.revocation import (
    CertID,
    RevocationStatus,
    build_ocsp_request,
    parse_ocsp_response,
)
from spinepki.testpki import IssuedCertificate, TestPKI

from ._helpers import cn, make_cert, make_ocsp, verify_ocsp

OCSPMaker = Callable[..., bytes]


@pytest.fixture
def ssp_ocsp(pki: TestPKI, at: dt.datetime) -> OCSPMaker:
    """Builds a DER OCSP response about the SSP certificate from the Sub CA, dated ``at``
    unless ``this_update`` is given; ``delegate``: signed by that responder, which the
    response includes; other keywords as for ``make_ocsp``."""

    def build(*, delegate: IssuedCertificate | None = None, **kw: Any) -> bytes:
        kw.setdefault("this_update", at)
        if delegate is not None:
            kw.update(signer=delegate, include=[delegate.certificate])
        return make_ocsp(pki, pki.leaf("ssp").certificate, pki.sub_ca, **kw)

    return build


def _responder(pki: TestPKI, name: str, *, fqdn: str, issuer: str = "sub-ca") -> IssuedCertificate:
    """The OCSP-signing leaf ``name``, issued on first use (the PKI is session-wide)."""
    if name not in pki.leaves:
        pki.issue(name, fqdn=fqdn, eku=[ExtendedKeyUsageOID.OCSP_SIGNING], issuer=issuer)
    return pki.leaf(name)


class TestRequest:
    def test_request_carries_nonce_and_cert_id(self, pki: TestPKI) -> None:
        """The request names the certificate by SHA-1 CertID and carries a 32-byte nonce."""
        cert = pki.leaf("ssp").certificate
        raw, nonce = build_ocsp_request(cert, pki.sub_ca.certificate)
        request = ocsp.load_der_ocsp_request(raw)
        assert request.serial_number == cert.serial_number
        assert isinstance(request.hash_algorithm, hashes.SHA1)
        assert nonce is not None
        assert len(nonce) == 32
        assert request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce

    def test_request_without_nonce(self, pki: TestPKI) -> None:
        """``nonce=b""`` sends no nonce."""
        raw, nonce = build_ocsp_request(
            pki.leaf("ssp").certificate, pki.sub_ca.certificate, nonce=b""
        )
        assert nonce is None
        assert len(ocsp.load_der_ocsp_request(raw).extensions) == 0


class TestParse:
    def test_garbage(self) -> None:
        """Non-OCSP bytes raise OCSPParseError with the source."""
        with pytest.raises(OCSPParseError) as info:
            parse_ocsp_response(b"junk", source="http://o/")
        assert info.value.source == "http://o/"

    def test_unsuccessful_parses_and_fails_verification(
        self, pki: TestPKI, at: dt.datetime
    ) -> None:
        """tryLater parses, and verification reports it in words."""
        raw = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
        data = raw.public_bytes(serialization.Encoding.DER)
        with pytest.raises(EvidenceError, match="try_later"):
            verify_ocsp(pki, data, at)


class TestVerify:
    def test_good_by_issuer(self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime) -> None:
        """A response signed by the issuer (responder by key hash) is GOOD."""
        data = ssp_ocsp()
        verdict = verify_ocsp(pki, data, at)
        assert verdict.status is RevocationStatus.GOOD
        assert verdict.evidence().source == "ocsp"
        assert verdict.evidence().produced_at == verdict.produced_at

    def test_responder_by_name(self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime) -> None:
        """A byName responder ID equal to the issuer's subject works too."""
        data = ssp_ocsp(by_name=True)
        assert verify_ocsp(pki, data, at).status is RevocationStatus.GOOD

    def test_revoked(self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime) -> None:
        """REVOKED carries the time and reason."""
        data = ssp_ocsp(
            status=ocsp.OCSPCertStatus.REVOKED,
        )
        verdict = verify_ocsp(pki, data, at)
        assert verdict.status is RevocationStatus.REVOKED
        assert verdict.revoked_at == at
        assert verdict.reason is x509.ReasonFlags.superseded

    def test_unknown(self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime) -> None:
        """The responder's UNKNOWN maps to RevocationStatus.UNKNOWN."""
        data = ssp_ocsp(
            status=ocsp.OCSPCertStatus.UNKNOWN,
        )
        assert verify_ocsp(pki, data, at).status is RevocationStatus.UNKNOWN

    def test_rsa(self, rsa_pki: TestPKI) -> None:
        """An RSA-signed response verifies (PKCS#1 v1.5)."""
        at = rsa_pki.reference_time
        data = make_ocsp(rsa_pki, rsa_pki.leaf("ssp").certificate, rsa_pki.sub_ca, this_update=at)
        assert verify_ocsp(rsa_pki, data, at).status is RevocationStatus.GOOD

    def test_delegated_responder(self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime) -> None:
        """A delegated responder certificate with id-kp-OCSPSigning from the issuer is accepted."""
        responder = pki.leaf("ocsp-responder")
        data = ssp_ocsp(delegate=responder)
        assert verify_ocsp(pki, data, at).status is RevocationStatus.GOOD

    def test_delegated_without_ocsp_signing(
        self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime
    ) -> None:
        """A certificate from the issuer without id-kp-OCSPSigning cannot sign responses."""
        signer = pki.leaf("provider")
        data = ssp_ocsp(delegate=signer)
        with pytest.raises(EvidenceError, match="OCSPSigning"):
            verify_ocsp(pki, data, at)

    def test_delegated_without_eku(
        self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime
    ) -> None:
        """A delegated certificate without any EKU is refused."""
        issued = _responder(pki, "ocsp-no-eku", fqdn="no-eku.test")
        # Rebuild without the EKU extension, signed by the Sub CA.
        builder = x509.CertificateBuilder(
            issuer_name=issued.certificate.issuer,
            subject_name=issued.certificate.subject,
            public_key=issued.certificate.public_key(),
            serial_number=issued.certificate.serial_number,
            not_valid_before=issued.certificate.not_valid_before_utc,
            not_valid_after=issued.certificate.not_valid_after_utc,
        )
        cert = builder.sign(pki.sub_ca.private_key, hashes.SHA256())  # type: ignore[arg-type]
        stripped = type(issued)(issued.name, cert, issued.private_key, issued.chain)
        data = ssp_ocsp(delegate=stripped)
        with pytest.raises(EvidenceError, match="no extended key usage"):
            verify_ocsp(pki, data, at)

    def test_delegated_from_other_ca(
        self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime
    ) -> None:
        """A responder certificate from the foreign CA is not authorised by the issuer."""
        signer = _responder(pki, "foreign-ocsp", fqdn="f.test", issuer="foreign-sub-ca")
        data = ssp_ocsp(delegate=signer)
        with pytest.raises(EvidenceError, match="not issued by the certificate's issuer"):
            verify_ocsp(pki, data, at)

    def test_delegated_expired(self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime) -> None:
        """A delegated responder certificate outside its validity is refused."""
        responder = pki.leaf("ocsp-responder")
        data = ssp_ocsp(this_update=at + dt.timedelta(days=4000), delegate=responder)
        with pytest.raises(EvidenceError, match="not valid at the validation time"):
            verify_ocsp(pki, data, at + dt.timedelta(days=4000))

    def test_unknown_signer(self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime) -> None:
        """A response signed by a key that is neither the issuer nor an included delegate fails."""
        responder = pki.leaf("ocsp-responder")
        data = ssp_ocsp(signer=responder)
        with pytest.raises(EvidenceError, match="neither by the issuer"):
            verify_ocsp(pki, data, at)

    def test_wrong_key_same_name(self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime) -> None:
        """Signed byName by the foreign CA (same name as the issuer): the signature fails."""
        foreign = pki.cas["foreign-sub-ca"]
        data = ssp_ocsp(
            signer=foreign,
            by_name=True,
        )
        with pytest.raises(EvidenceError, match="signature does not verify"):
            verify_ocsp(pki, data, at)

    def test_key_type_mismatch(
        self, ssp_ocsp: OCSPMaker, pki: TestPKI, rsa_pki: TestPKI, at: dt.datetime
    ) -> None:
        """An EC-signed response checked against an RSA issuer of the same name fails."""
        data = ssp_ocsp(by_name=True)
        with pytest.raises(EvidenceError):
            verify_ocsp(pki, data, at, issuer=rsa_pki.sub_ca.certificate)

    def test_other_certificate(self, pki: TestPKI, at: dt.datetime) -> None:
        """A response about another serial does not answer for this certificate."""
        data = make_ocsp(pki, pki.leaf("provider").certificate, pki.sub_ca, this_update=at)
        with pytest.raises(EvidenceError, match="not about this certificate"):
            verify_ocsp(pki, data, at)

    def test_nonce_echoed(self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime) -> None:
        """An echoed nonce equal to ours is fine; a different one is a replay."""
        data = ssp_ocsp(nonce=b"n" * 32)
        assert verify_ocsp(pki, data, at, nonce=b"n" * 32).status is RevocationStatus.GOOD
        with pytest.raises(EvidenceError, match="nonce"):
            verify_ocsp(pki, data, at, nonce=b"m" * 32)

    def test_nonce_not_echoed(self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime) -> None:
        """A response without a nonce is accepted (pre-produced responses are allowed)."""
        data = ssp_ocsp()
        assert verify_ocsp(pki, data, at, nonce=b"x" * 32).status is RevocationStatus.GOOD

    def test_stale(self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime) -> None:
        """A response whose nextUpdate passed is stale."""
        data = ssp_ocsp(this_update=at - dt.timedelta(days=2))
        with pytest.raises(EvidenceError, match="stale"):
            verify_ocsp(pki, data, at)

    def test_no_next_update(self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime) -> None:
        """A response without nextUpdate is accepted with no expiry."""
        data = ssp_ocsp(next_update=None)
        assert verify_ocsp(pki, data, at).next_update is None

    def test_produced_in_the_future(
        self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime
    ) -> None:
        """producedAt after the validation time (beyond tolerance) is refused."""
        data = ssp_ocsp(
            this_update=at - dt.timedelta(days=3),
            next_update=dt.timedelta(days=30),
        )
        with pytest.raises(EvidenceError, match="produced after"):
            verify_ocsp(pki, data, at - dt.timedelta(days=1))

    def test_cert_id_matching(self, pki: TestPKI) -> None:
        """CertID matching needs the serial and a supported hash."""
        cid = CertID.of(pki.leaf("ssp").certificate, pki.sub_ca.certificate)
        assert not cid.matches(b"", b"", cid.serial, "md5")
        assert not cid.matches(b"", b"", cid.serial + 1, "sha1")


HOUR = dt.timedelta(hours=1)


class TestOtherKeys:
    @pytest.fixture
    def ed_pki(self, at: dt.datetime) -> tuple[IssuedCertificate, x509.Certificate]:
        """An Ed25519 CA (same name as the test Sub CA) and a leaf it issued."""
        key = ed25519.Ed25519PrivateKey.generate()
        name = cn("ed ca")
        ca = make_cert(name, key.public_key(), key, at)
        leaf_key = ed25519.Ed25519PrivateKey.generate().public_key()
        leaf = make_cert(cn("leaf"), leaf_key, key, at, issuer=name, serial=2)
        return IssuedCertificate("ed-ca", ca, key, ()), leaf

    def test_ed25519(
        self, pki: TestPKI, ed_pki: tuple[IssuedCertificate, x509.Certificate], at: dt.datetime
    ) -> None:
        """An Ed25519-signed response verifies against an Ed25519 issuer."""
        ca, leaf = ed_pki
        data = make_ocsp(
            pki, leaf, ca, this_update=at, next_update=HOUR, by_name=True, ed25519=True
        )
        verdict = verify_ocsp(pki, data, at, cert=leaf, issuer=ca.certificate)
        assert verdict.status is RevocationStatus.GOOD

    def test_algorithm_key_mismatch(
        self, pki: TestPKI, ed_pki: tuple[IssuedCertificate, x509.Certificate], at: dt.datetime
    ) -> None:
        """An ECDSA-signed response naming the Ed25519 CA cannot verify with its key."""
        ca, leaf = ed_pki
        ec_key = pki.sub_ca.private_key
        # A certificate with the Ed25519 CA's name but the EC key, to sign byName with.
        name = ca.certificate.subject
        lookalike = make_cert(
            name, ec_key.public_key(), ec_key, at, serial=9, digest=hashes.SHA256()
        )
        signer = IssuedCertificate("lookalike", lookalike, ec_key, ())
        data = make_ocsp(
            pki, leaf, ca, this_update=at, next_update=HOUR, by_name=True, signer=signer
        )
        with pytest.raises(EvidenceError, match="does not fit"):
            verify_ocsp(pki, data, at, cert=leaf, issuer=ca.certificate)

    def test_delegate_search_skips_other_certificates(
        self, ssp_ocsp: OCSPMaker, pki: TestPKI, at: dt.datetime
    ) -> None:
        """Included certificates that are not the responder are skipped."""
        responder = pki.leaf("ocsp-responder")
        data = ssp_ocsp(
            signer=responder,
            include=[pki.leaf("provider").certificate, responder.certificate],
        )
        assert verify_ocsp(pki, data, at).status is RevocationStatus.GOOD
