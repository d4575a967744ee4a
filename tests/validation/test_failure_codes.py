"""Every FailureCode, produced by a real certificate from the test PKI (no mocks)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from spinepki.errors import CertificateValidationError
from spinepki.revocation import RevocationChecker, RevocationMode
from spinepki.testpki import SPINE_POLICY_OID, TestPKI
from spinepki.validation import ClientCertValidator, FailureCode, ValidationResult
from tests._helpers import fresh
from tests.validation.conftest import AT, as_issued, make_cert, resign_with_sha1


def _only(result: ValidationResult, code: FailureCode) -> None:
    assert not result.valid
    assert result.codes == (code,), [f.message for f in result.failures]


class TestStandardLeaves:
    def test_ssp_certificate_is_valid(self, validator: ClientCertValidator, pki: TestPKI) -> None:
        """The SSP leaf validates with GOOD CRL evidence, its CN as FQDN, a 3-certificate path."""
        leaf = pki.leaf("ssp")
        result = validator.validate(leaf.certificate, leaf.chain, at=AT)
        assert result.valid, result.failures
        assert result.failures == ()
        assert result.fqdn == pki.ssp_fqdn
        assert result.fqdn_source == "cn"
        assert [c.subject for c in result.chain] == [
            leaf.certificate.subject,
            pki.sub_ca.certificate.subject,
            pki.root.certificate.subject,
        ]
        assert result.revocation is not None
        assert result.revocation.status.name == "GOOD"
        assert result.revocation.evidence is not None
        assert result.revocation.evidence.crl_number is not None
        assert result.validated_at == AT
        result.raise_for_failure()  # no exception when valid

    def test_untrusted_foreign_issuer(self, validator: ClientCertValidator, pki: TestPKI) -> None:
        """A leaf from a CA with the same names but another key is UNTRUSTED."""
        leaf = pki.leaf("foreign")
        result = validator.validate(leaf.certificate, leaf.chain, at=AT)
        _only(result, FailureCode.UNTRUSTED)
        assert "does not verify" in result.failures[0].message
        assert result.revocation is None  # never follow URLs from an untrusted certificate

    def test_untrusted_without_the_sub_ca(self, pki: TestPKI, offline: RevocationChecker) -> None:
        """With only the root trusted and no chain sent, the issuer is unknown: UNTRUSTED."""
        from spinepki.trust import TrustStore

        only_root = TrustStore([pki.root.certificate])
        validator = ClientCertValidator(only_root, ssp_fqdns=pki.ssp_fqdn, revocation=offline)
        result = validator.validate(pki.leaf("ssp").certificate, at=AT)
        _only(result, FailureCode.UNTRUSTED)
        assert "neither a trusted root nor a known intermediate" in result.failures[0].message

    def test_expired_leaf(self, validator: ClientCertValidator, pki: TestPKI) -> None:
        """An expired leaf is EXPIRED and nothing else (the path is fine at a valid time)."""
        leaf = pki.leaf("expired")
        _only(validator.validate(leaf.certificate, leaf.chain, at=AT), FailureCode.EXPIRED)

    def test_not_yet_valid_leaf(self, validator: ClientCertValidator, pki: TestPKI) -> None:
        """A leaf whose notBefore is in the future is NOT_YET_VALID."""
        leaf = pki.leaf("not-yet-valid")
        _only(validator.validate(leaf.certificate, leaf.chain, at=AT), FailureCode.NOT_YET_VALID)

    def test_revoked_leaf(self, validator: ClientCertValidator, pki: TestPKI) -> None:
        """A leaf on the Sub CA's CRL is REVOKED, with the date and reason in the message."""
        leaf = pki.leaf("revoked")
        result = validator.validate(leaf.certificate, leaf.chain, at=AT)
        _only(result, FailureCode.REVOKED)
        assert "key_compromise" in result.failures[0].message
        assert result.revocation is not None
        assert result.revocation.revoked_at is not None

    def test_fqdn_mismatch(self, validator: ClientCertValidator, pki: TestPKI) -> None:
        """A valid chain with a name that is not the SSP's is FQDN_MISMATCH."""
        leaf = pki.leaf("wrong-fqdn")
        result = validator.validate(leaf.certificate, leaf.chain, at=AT)
        _only(result, FailureCode.FQDN_MISMATCH)
        assert result.fqdn == "rogue.example.nhs.uk"

    def test_wrong_purpose(self, validator: ClientCertValidator, pki: TestPKI) -> None:
        """The OCSP responder certificate (OCSPSigning only) is WRONG_PURPOSE for a client."""
        leaf = pki.leaf("ocsp-responder")
        result = validator.validate(leaf.certificate, leaf.chain, at=AT)
        assert FailureCode.WRONG_PURPOSE in result.codes
        assert "clientAuth required" in result.failures[0].message

    def test_revocation_unknown_without_evidence(self, pki: TestPKI) -> None:
        """Offline with no CRL for the Sub CA: the leaf's status is REVOCATION_UNKNOWN."""
        nothing = RevocationChecker(RevocationMode.OFFLINE)
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=nothing
        )
        leaf = pki.leaf("ssp")
        result = validator.validate(leaf.certificate, leaf.chain, at=AT)
        _only(result, FailureCode.REVOCATION_UNKNOWN)
        assert result.revocation is not None
        assert result.revocation.problems

    def test_stale_crl_is_revocation_unknown(self, pki: TestPKI) -> None:
        """A CRL whose nextUpdate has passed is no evidence: REVOCATION_UNKNOWN."""
        stale = pki.crl(at=AT - dt.timedelta(days=20), next_update=dt.timedelta(days=7))
        checker = RevocationChecker(RevocationMode.OFFLINE, crls=[stale])
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=checker
        )
        leaf = pki.leaf("ssp")
        _only(
            validator.validate(leaf.certificate, leaf.chain, at=AT), FailureCode.REVOCATION_UNKNOWN
        )

    def test_soft_fail_accepts_unknown_and_reports_it(self, pki: TestPKI) -> None:
        """Under SOFT_FAIL an unreachable CRL is accepted, marked soft_failed, and not cached."""
        from spinepki.revocation import StaticFetcher

        soft = RevocationChecker(RevocationMode.SOFT_FAIL, fetcher=StaticFetcher())
        validator = ClientCertValidator(pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=soft)
        leaf = pki.leaf("ssp")
        first = validator.validate(leaf.certificate, leaf.chain, at=AT)
        assert first.valid
        assert first.revocation is not None
        assert first.revocation.soft_failed
        assert not validator.validate(leaf.certificate, leaf.chain, at=AT).from_cache


class TestMadeCertificates:
    def test_policy_missing(self, pki: TestPKI, offline: RevocationChecker) -> None:
        """A leaf without the Spine policy OID is POLICY_MISSING when the OID is required."""
        leaf = fresh(pki).issue("no-policy", fqdn=pki.ssp_fqdn, policies=())
        validator = ClientCertValidator(
            pki.trust_store(),
            ssp_fqdns=pki.ssp_fqdn,
            revocation=offline,
            required_policies=[SPINE_POLICY_OID.dotted_string],
        )
        result = validator.validate(leaf.certificate, leaf.chain, at=AT)
        _only(result, FailureCode.POLICY_MISSING)
        ssp = pki.leaf("ssp")
        assert validator.validate(ssp.certificate, ssp.chain, at=AT).valid

    def test_malformed_extension(self, pki: TestPKI, validator: ClientCertValidator) -> None:
        """A properly signed leaf whose subjectAltName is not DER is MALFORMED."""
        bad_san = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x01")
        cert, _ = make_cert(pki.sub_ca, extra=(bad_san,))
        result = validator.validate(cert, at=AT)
        _only(result, FailureCode.MALFORMED)

    def test_weak_rsa_key(self, pki: TestPKI, validator: ClientCertValidator) -> None:
        """A 1024-bit RSA leaf key is WEAK_KEY."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        cert, _ = make_cert(pki.sub_ca, key=key)
        result = validator.validate(cert, at=AT)
        assert FailureCode.WEAK_KEY in result.codes
        assert "1024 bits" in result.failures[0].message
        assert FailureCode.UNTRUSTED not in result.codes

    def test_weak_curve(self, pki: TestPKI, validator: ClientCertValidator) -> None:
        """An EC key on secp256k1 (not P-256/384/521) is WEAK_KEY."""
        cert, _ = make_cert(pki.sub_ca, key=ec.generate_private_key(ec.SECP256K1()))
        assert FailureCode.WEAK_KEY in validator.validate(cert, at=AT).codes

    def test_sha1_signature(self, pki: TestPKI, validator: ClientCertValidator) -> None:
        """A leaf signed with ECDSA-SHA1 by the real Sub CA is WEAK_SIGNATURE (only that)."""
        made, _ = make_cert(pki.sub_ca)
        cert = resign_with_sha1(made, pki.sub_ca.private_key)  # type: ignore[arg-type]
        result = validator.validate(cert, at=AT)
        _only(result, FailureCode.WEAK_SIGNATURE)
        assert "SHA-1" in result.failures[0].message

    def test_chain_too_long_by_depth(self, pki: TestPKI, offline: RevocationChecker) -> None:
        """Root -> Sub CA -> extra CA -> leaf is CHAIN_TOO_LONG with max_chain_depth=1."""
        extra_ca, extra_key = make_cert(pki.sub_ca, cn="spinepki Extra CA", ca=True)
        leaf, _ = make_cert(as_issued(extra_ca, extra_key))
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=offline, max_chain_depth=1
        )
        result = validator.validate(leaf, [extra_ca], at=AT)
        _only(result, FailureCode.CHAIN_TOO_LONG)
        deeper = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=offline, max_chain_depth=2
        )
        assert FailureCode.CHAIN_TOO_LONG not in deeper.validate(leaf, [extra_ca], at=AT).codes

    def test_path_length_constraint(self, pki: TestPKI, validator: ClientCertValidator) -> None:
        """A CA with pathLenConstraint 0 issuing another CA makes the path CHAIN_TOO_LONG."""
        limited, limited_key = make_cert(pki.sub_ca, cn="Limited CA", ca=True, path_length=0)
        below, below_key = make_cert(as_issued(limited, limited_key), cn="Below CA", ca=True)
        leaf, _ = make_cert(as_issued(below, below_key))
        v = ClientCertValidator(
            validator.trust, ssp_fqdns="msg.dev.spine2.ncrs.nhs.uk", revocation=validator.revocation
        )
        result = v.validate(leaf, [limited, below], at=AT)
        _only(result, FailureCode.CHAIN_TOO_LONG)
        assert "path length" in result.failures[0].message

    def test_ca_that_is_not_a_ca(self, pki: TestPKI, validator: ClientCertValidator) -> None:
        """A leaf 'issued' by an end-entity certificate is UNTRUSTED (cA not asserted)."""
        ee, ee_key = make_cert(pki.sub_ca, cn="not-a-ca.nhs.uk")
        leaf, _ = make_cert(as_issued(ee, ee_key))
        result = validator.validate(leaf, [ee], at=AT)
        _only(result, FailureCode.UNTRUSTED)
        assert "basicConstraints" in result.failures[0].message

    def test_expired_sub_ca(self, pki: TestPKI, validator: ClientCertValidator) -> None:
        """An expired intermediate is EXPIRED, naming the intermediate, not the leaf."""
        old_ca, old_key = make_cert(
            pki.root,
            cn="spinepki Old Level 1C",
            ca=True,
            not_before=AT - dt.timedelta(days=400),
            not_after=AT - dt.timedelta(days=1),
        )
        leaf, _ = make_cert(as_issued(old_ca, old_key), not_before=AT - dt.timedelta(days=300))
        result = validator.validate(leaf, [old_ca], at=AT)
        _only(result, FailureCode.EXPIRED)
        assert result.failures[0].certificate_subject == old_ca.subject.rfc4514_string()

    def test_expired_and_untrusted_together(
        self, pki: TestPKI, validator: ClientCertValidator
    ) -> None:
        """All failures are reported: an expired leaf from a foreign CA is EXPIRED and UNTRUSTED."""
        leaf, _ = make_cert(
            pki.cas["foreign-sub-ca"],
            not_before=AT - dt.timedelta(days=30),
            not_after=AT - dt.timedelta(days=1),
        )
        result = validator.validate(leaf, [pki.cas["foreign-sub-ca"].certificate], at=AT)
        assert set(result.codes) == {FailureCode.EXPIRED, FailureCode.UNTRUSTED}

    def test_expired_leaf_under_a_non_ca(
        self, pki: TestPKI, validator: ClientCertValidator
    ) -> None:
        """Time explains part of it; re-checked at a valid time the rest is UNTRUSTED."""
        ee, ee_key = make_cert(
            pki.sub_ca, cn="not-a-ca.nhs.uk", not_before=AT - dt.timedelta(days=60)
        )
        leaf, _ = make_cert(
            as_issued(ee, ee_key),
            not_before=AT - dt.timedelta(days=30),
            not_after=AT - dt.timedelta(days=1),
        )
        result = validator.validate(leaf, [ee], at=AT)
        assert set(result.codes) == {FailureCode.EXPIRED, FailureCode.UNTRUSTED}

    def test_revoked_sub_ca(self, pki: TestPKI) -> None:
        """A Sub CA on the root's CRL makes its leaves REVOKED (the Sub CA named)."""
        pki = fresh(pki)
        pki.revoke("sub-ca", at=AT - dt.timedelta(days=2))
        checker = RevocationChecker(RevocationMode.OFFLINE, crls=[pki.crl(), pki.root_crl()])
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=checker
        )
        leaf = pki.leaf("ssp")
        result = validator.validate(leaf.certificate, leaf.chain, at=AT)
        _only(result, FailureCode.REVOKED)
        assert (
            result.failures[0].certificate_subject
            == pki.sub_ca.certificate.subject.rfc4514_string()
        )
        # Without the root's CRL the Sub CA's status is unknown, which is a failure too
        # (tests/validation/test_ca_status.py).
        only_leaf_crl = RevocationChecker(RevocationMode.OFFLINE, crls=[pki.crl()])
        strict = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=only_leaf_crl
        )
        _only(strict.validate(leaf.certificate, leaf.chain, at=AT), FailureCode.REVOCATION_UNKNOWN)

    def test_raise_for_failure_carries_the_codes(
        self, validator: ClientCertValidator, pki: TestPKI
    ) -> None:
        """raise_for_failure raises CertificateValidationError with the codes' values."""
        leaf = pki.leaf("expired")
        result = validator.validate(leaf.certificate, leaf.chain, at=AT)
        with pytest.raises(CertificateValidationError) as caught:
            result.raise_for_failure()
        assert caught.value.failure_codes == ("expired",)
        assert caught.value.code == "validation"


class TestPurposeAndNames:
    def test_server_purpose(self, pki: TestPKI, offline: RevocationChecker) -> None:
        """Purpose.SERVER needs serverAuth: a clientAuth-only leaf is WRONG_PURPOSE."""
        from spinepki.validation import Purpose

        validator = ClientCertValidator(
            pki.trust_store(),
            ssp_fqdns=pki.provider_fqdn,
            revocation=offline,
            purpose=Purpose.SERVER,
        )
        provider = pki.leaf("provider")
        assert validator.validate(provider.certificate, provider.chain, at=AT).valid
        client_only, _ = make_cert(pki.sub_ca, cn=pki.provider_fqdn)
        assert validator.validate(client_only, at=AT).codes == (FailureCode.WRONG_PURPOSE,)

    def test_missing_eku_is_wrong_purpose(
        self, pki: TestPKI, validator: ClientCertValidator
    ) -> None:
        """A leaf with no EKU extension is WRONG_PURPOSE (Spine always issues one)."""
        cert, _ = make_cert(pki.sub_ca, eku=())
        result = validator.validate(cert, at=AT)
        assert FailureCode.WRONG_PURPOSE in result.codes
        assert "no extended key usage" in result.failures[0].message

    def test_fqdn_is_case_insensitive_and_accepts_several(
        self, pki: TestPKI, disabled: RevocationChecker
    ) -> None:
        """Configured names compare case-insensitively, ignoring a trailing dot."""
        validator = ClientCertValidator(
            pki.trust_store(),
            ssp_fqdns=["other.nhs.uk", pki.ssp_fqdn.upper() + "."],
            revocation=disabled,
        )
        leaf = pki.leaf("ssp")
        assert validator.validate(leaf.certificate, leaf.chain, at=AT).valid

    def test_san_wins_over_cn(self, pki: TestPKI, disabled: RevocationChecker) -> None:
        """With a SAN, the name comes from the SAN and the CN is ignored."""
        san = x509.SubjectAlternativeName([x509.DNSName("san.example.nhs.uk")])
        cert, _ = make_cert(pki.sub_ca, extra=(san,))
        by_cn = ClientCertValidator(pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=disabled)
        result = by_cn.validate(cert, at=AT)
        assert result.codes == (FailureCode.FQDN_MISMATCH,)
        by_san = ClientCertValidator(
            pki.trust_store(), ssp_fqdns="san.example.nhs.uk", revocation=disabled
        )
        result = by_san.validate(cert, at=AT)
        assert result.valid
        assert result.fqdn_source == "san"

    def test_wildcards_only_when_allowed(self, pki: TestPKI, disabled: RevocationChecker) -> None:
        """A wildcard certificate matches one label, and only with allow_wildcard."""
        cert, _ = make_cert(pki.sub_ca, cn="*.spine2.ncrs.nhs.uk")
        exact = ClientCertValidator(
            pki.trust_store(), ssp_fqdns="msg.spine2.ncrs.nhs.uk", revocation=disabled
        )
        assert exact.validate(cert, at=AT).codes == (FailureCode.FQDN_MISMATCH,)
        loose = ClientCertValidator(
            pki.trust_store(),
            ssp_fqdns="msg.spine2.ncrs.nhs.uk",
            revocation=disabled,
            allow_wildcard=True,
        )
        assert loose.validate(cert, at=AT).valid
        two_labels = ClientCertValidator(
            pki.trust_store(),
            ssp_fqdns="a.msg.spine2.ncrs.nhs.uk",
            revocation=disabled,
            allow_wildcard=True,
        )
        assert not two_labels.validate(cert, at=AT).valid

    def test_no_name_at_all(self, pki: TestPKI, disabled: RevocationChecker) -> None:
        """A leaf with an empty SAN list of dNSNames fails FQDN_MISMATCH with no name found."""
        san = x509.SubjectAlternativeName([x509.RFC822Name("a@example.nhs.uk")])
        cert, _ = make_cert(pki.sub_ca, extra=(san,))
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=disabled
        )
        result = validator.validate(cert, at=AT)
        assert result.codes == (FailureCode.FQDN_MISMATCH,)
        assert result.fqdn is None
        assert "no subjectAltName dNSName" in result.failures[0].message


def test_every_failure_code_has_a_test() -> None:
    """This module produces each FailureCode at least once (the list is complete)."""
    import inspect
    import sys

    source = inspect.getsource(sys.modules[__name__])
    for code in FailureCode:
        assert f"FailureCode.{code.name}" in source, code
    assert ExtendedKeyUsageOID.CLIENT_AUTH  # keeps the import honest
