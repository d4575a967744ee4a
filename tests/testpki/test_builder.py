"""The test PKI is shaped like real Spine certificates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from spinepki.errors import TestPKIError
from spinepki.testpki import SPINE_POLICY_OID, STANDARD_LEAVES, KeyType, TestPKI
from tests._helpers import fresh, shared

AT = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def pki() -> Iterator[TestPKI]:
    """Read by the module's tests; one that issues takes a fresh() copy."""
    with shared(
        TestPKI.create(key_type=KeyType.EC_P256, at=AT, base_url="http://127.0.0.1:9999/")
    ) as pki:
        yield pki


def _ext(
    cert: x509.Certificate, cls: type[x509.ExtensionType]
) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(cls)


class TestShapes:
    def test_standard_set_is_complete(self, pki: TestPKI) -> None:
        """Every standard name exists, plus the OCSP responder."""
        assert {s.name for s in STANDARD_LEAVES} | {"ocsp-responder"} == set(pki.leaves)
        assert set(pki.cas) == {"root", "sub-ca", "foreign-root", "foreign-sub-ca"}

    def test_ca_certificates_copy_the_spine_profile(self, pki: TestPKI) -> None:
        """CAs: O=nhs, OU=CA; basicConstraints cA=TRUE but NON-critical, as real Spine CAs."""
        for ca in (pki.root, pki.sub_ca):
            cert = ca.certificate
            assert (
                cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
                == "CA"
            )
            bc = _ext(cert, x509.BasicConstraints)
            assert bc.value.ca
            assert not bc.critical
            assert _ext(cert, x509.KeyUsage).value.key_cert_sign  # type: ignore[attr-defined]
        pki.sub_ca.certificate.verify_directly_issued_by(pki.root.certificate)

    def test_endpoint_certificate_copies_the_spine_profile(self, pki: TestPKI) -> None:
        """Endpoints: OU=Devices, CN=FQDN, no SAN, serverAuth+clientAuth, Spine policy, CDP, AIA."""
        ssp = pki.leaf("ssp")
        cert = ssp.certificate
        assert cert.subject.rfc4514_string() == f"CN={pki.ssp_fqdn},OU=Devices,O=nhs"
        with pytest.raises(x509.ExtensionNotFound):
            _ext(cert, x509.SubjectAlternativeName)
        eku = _ext(cert, x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]  # type: ignore[call-overload]
        policies = _ext(cert, x509.CertificatePolicies).value
        assert [p.policy_identifier for p in policies] == [SPINE_POLICY_OID]  # type: ignore[attr-defined]
        cdp = _ext(cert, x509.CRLDistributionPoints).value
        assert cdp[0].full_name[0].value == "http://127.0.0.1:9999/crl/sub-ca.crl"  # type: ignore[index]
        aia = _ext(cert, x509.AuthorityInformationAccess).value
        assert [a.access_location.value for a in aia] == [  # type: ignore[attr-defined]
            "http://127.0.0.1:9999/ocsp",
            "http://127.0.0.1:9999/ca/sub-ca.crt",
        ]
        assert ssp.chain == (pki.sub_ca.certificate,)
        cert.verify_directly_issued_by(pki.sub_ca.certificate)

    def test_rsa_is_the_default_key_type_with_key_encipherment(self) -> None:
        """RSA-2048 by default; RSA leaves carry keyEncipherment, as Spine's do."""
        pki = TestPKI.create(standard_set=False)
        leaf = pki.issue("x", fqdn="x.nhs.uk")
        assert isinstance(leaf.private_key, rsa.RSAPrivateKey)
        assert leaf.private_key.key_size == 2048
        assert _ext(leaf.certificate, x509.KeyUsage).value.key_encipherment  # type: ignore[attr-defined]

    def test_p384_keys_sign_with_sha384(self) -> None:
        """EC P-384 CAs sign with SHA-384."""
        pki = TestPKI.create(key_type=KeyType.EC_P384, standard_set=False)
        assert isinstance(pki.root.private_key, ec.EllipticCurvePrivateKey)
        assert pki.root.certificate.signature_hash_algorithm is not None
        assert pki.root.certificate.signature_hash_algorithm.name == "sha384"

    def test_validity_windows_follow_the_reference_time(self, pki: TestPKI) -> None:
        """expired ended before `at`; not-yet-valid starts after; the rest cover `at`."""
        assert pki.leaf("expired").certificate.not_valid_after_utc < AT
        assert pki.leaf("not-yet-valid").certificate.not_valid_before_utc > AT
        for name in ("ssp", "provider", "wrong-fqdn", "foreign", "revoked"):
            cert = pki.leaf(name).certificate
            assert cert.not_valid_before_utc <= AT <= cert.not_valid_after_utc

    def test_foreign_has_the_same_names_but_another_key(self, pki: TestPKI) -> None:
        """The foreign CA copies the real names; its signature does not verify under them."""
        assert pki.cas["foreign-sub-ca"].certificate.subject == pki.sub_ca.certificate.subject
        foreign = pki.leaf("foreign").certificate
        assert foreign.issuer == pki.sub_ca.certificate.subject
        with pytest.raises(InvalidSignature):
            foreign.verify_directly_issued_by(pki.sub_ca.certificate)

    def test_san_option_adds_a_dns_name(self, pki: TestPKI) -> None:
        """san=True adds subjectAltName dNSName = FQDN."""
        leaf = fresh(pki).issue("with-san", fqdn="san.example.nhs.uk", san=True)
        san = _ext(leaf.certificate, x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["san.example.nhs.uk"]  # type: ignore[attr-defined]

    def test_without_ocsp_there_is_no_ocsp_url(self) -> None:
        """with_ocsp=False leaves only caIssuers in the AIA."""
        pki = TestPKI.create(key_type=KeyType.EC_P256, with_ocsp=False)
        aia = _ext(pki.leaf("ssp").certificate, x509.AuthorityInformationAccess).value
        assert len(aia) == 1  # type: ignore[arg-type]

    def test_ocsp_responder_certificate(self, pki: TestPKI) -> None:
        """The delegated responder has id-kp-OCSPSigning and id-pkix-ocsp-nocheck."""
        cert = pki.leaf("ocsp-responder").certificate
        assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.OCSP_SIGNING]  # type: ignore[call-overload]
        _ext(cert, x509.OCSPNoCheck)

    def test_keys_are_reused_per_role_but_never_across_roles(self) -> None:
        """Within a run, the same role reuses its key; distinct roles never share one."""
        a = TestPKI.create(key_type=KeyType.EC_P256)
        b = TestPKI.create(key_type=KeyType.EC_P256)
        assert a.root.private_key is b.root.private_key
        keys = [c.private_key for c in a]
        assert len({id(k) for k in keys}) == len(keys)
        fresh = TestPKI.create(key_type=KeyType.EC_P256, reuse_keys=False, standard_set=False)
        assert fresh.root.private_key is not a.root.private_key


class TestCRLsAndRevocation:
    def test_crl_lists_the_revoked_certificate(self, pki: TestPKI) -> None:
        """The Sub CA's CRL lists `revoked` with its reason, signed by the Sub CA."""
        crl = pki.crl()
        entry = crl.get_revoked_certificate_by_serial_number(pki.leaf("revoked").serial)
        assert entry is not None
        assert (
            entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
            is x509.ReasonFlags.key_compromise
        )
        assert crl.is_signature_valid(pki.sub_ca.private_key.public_key())  # type: ignore[arg-type]
        assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number >= 2
        crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        assert crl.next_update_utc is not None
        assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(days=7)

    def test_revoking_increments_the_crl_number(self) -> None:
        """Each revocation re-issues the CRL with a higher number."""
        pki = TestPKI.create(key_type=KeyType.EC_P256)
        before = pki.crl().extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        pki.revoke("consumer", reason=x509.ReasonFlags.superseded)
        after = pki.crl()
        assert (
            after.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == before + 1
        )
        assert pki.is_revoked("consumer")

    def test_revoking_the_sub_ca_lists_it_on_the_root_crl(self) -> None:
        """The root's CRL lists a revoked Sub CA."""
        pki = TestPKI.create(key_type=KeyType.EC_P256, standard_set=False)
        assert len(pki.root_crl()) == 0
        pki.revoke("sub-ca")
        assert (
            pki.root_crl().get_revoked_certificate_by_serial_number(pki.sub_ca.serial) is not None
        )

    def test_stale_crl_can_be_made(self, pki: TestPKI) -> None:
        """A CRL issued in the past with a short life is already stale at the reference time."""
        crl = pki.crl(at=AT - dt.timedelta(days=10), next_update=dt.timedelta(days=1))
        assert crl.next_update_utc is not None
        assert crl.next_update_utc < AT


class TestErrors:
    def test_duplicate_name_is_refused(self, pki: TestPKI) -> None:
        """Issuing an existing name needs replace_existing."""
        with pytest.raises(TestPKIError, match="already exists"):
            pki.issue("ssp", fqdn="x.nhs.uk")

    def test_unknown_issuer_is_refused(self, pki: TestPKI) -> None:
        """An issuer that is not one of the PKI's CAs is refused."""
        with pytest.raises(TestPKIError, match="unknown issuer"):
            pki.issue("new", fqdn="x.nhs.uk", issuer="nope")

    def test_empty_window_is_refused(self, pki: TestPKI) -> None:
        """not_after must follow not_before."""
        with pytest.raises(TestPKIError, match="later than"):
            pki.issue("new2", fqdn="x.nhs.uk", not_before=AT, not_after=AT)

    def test_unknown_leaf_lists_the_known_names(self, pki: TestPKI) -> None:
        """A typo in a name lists the names there are."""
        with pytest.raises(TestPKIError, match=r"known: .*ssp"):
            pki.leaf("spp")

    def test_root_cannot_be_revoked(self, pki: TestPKI) -> None:
        """Revoking a trust anchor is meaningless."""
        with pytest.raises(TestPKIError, match="root cannot be revoked"):
            pki.revoke("root")

    def test_unknown_names_for_revoke_and_crl(self, pki: TestPKI) -> None:
        """revoke() and crl() name what is missing."""
        with pytest.raises(TestPKIError):
            pki.revoke("nope")
        with pytest.raises(TestPKIError):
            pki.crl("nope")

    def test_naive_reference_time_is_refused(self) -> None:
        """Time must be timezone-aware."""
        with pytest.raises(TestPKIError, match="timezone"):
            TestPKI.create(at=dt.datetime(2026, 1, 1), key_type=KeyType.EC_P256)
