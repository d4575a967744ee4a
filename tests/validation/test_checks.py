"""The explicit checks behind the codes, one rule at a time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from spinepki.errors import RevocationError
from spinepki.revocation import RevocationChecker, RevocationMode
from spinepki.testpki import TestPKI
from spinepki.validation import ClientCertValidator, FailureCode
from spinepki.validation._checks import (
    classify_verifier_error,
    clean_verifier_message,
    key_floor,
    match_fqdn,
    normalise_fqdns,
    signature_floor,
)
from tests.validation.conftest import AT, make_cert

DSA_DIR = Path(__file__).resolve().parents[2] / "testdata" / "dsa"


def _self_signed(
    key: object, *, sign_with: object | None = None, rsa_pss: bool = False
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    signer = sign_with or ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(1)
        .not_valid_before(AT)
        .not_valid_after(AT + dt.timedelta(days=1))
    )
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        return builder.sign(signer, None)
    if rsa_pss:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return builder.sign(signer, hashes.SHA256(), rsa_padding=pss)  # type: ignore[arg-type]
    return builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]


class TestKeyFloor:
    @pytest.mark.parametrize(
        ("key", "weak"),
        [
            (ec.generate_private_key(ec.SECP384R1()), False),
            (ec.generate_private_key(ec.SECP521R1()), False),
            (ed25519.Ed25519PrivateKey.generate(), True),
        ],
        ids=["P-384", "P-521", "Ed25519"],
    )
    def test_key_types(self, key: object, weak: bool) -> None:
        """EC P-384/P-521 pass; Ed25519 is WEAK_KEY."""
        assert (key_floor(_self_signed(key)) is not None) is weak

    def test_dsa_is_weak_without_touching_deprecated_api(self) -> None:
        """A DSA certificate is WEAK_KEY, judged by its OID (-W error proves nothing warns)."""
        cert = x509.load_pem_x509_certificate((DSA_DIR / "dsa.cert.pem").read_bytes())
        failure = key_floor(cert)
        assert failure is not None
        assert failure.code is FailureCode.WEAK_KEY
        assert "DSA" in failure.message


class TestSignatureFloor:
    def test_rsa_pss_sha256_passes(self) -> None:
        """An RSASSA-PSS signature with SHA-256 meets the floor."""
        signer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = _self_signed(signer, sign_with=signer, rsa_pss=True)
        assert signature_floor(cert) is None

    def test_ed25519_is_not_approved(self) -> None:
        """An Ed25519 signature is not on the approved list: WEAK_SIGNATURE."""
        signer = ed25519.Ed25519PrivateKey.generate()
        failure = signature_floor(_self_signed(signer, sign_with=signer))
        assert failure is not None
        assert failure.code is FailureCode.WEAK_SIGNATURE
        assert "approved list" in failure.message


class TestNames:
    def test_match_rules(self) -> None:
        """Exact, case-insensitive names; wildcards only for one label and only if allowed."""
        want = normalise_fqdns(["Msg.Example.NHS.uk.", " "])
        assert want == frozenset({"msg.example.nhs.uk"})
        assert match_fqdn(["MSG.example.nhs.uk"], want, allow_wildcard=False)
        assert match_fqdn(["*.example.nhs.uk"], want, allow_wildcard=False) is None
        assert match_fqdn(["*.example.nhs.uk"], want, allow_wildcard=True)
        assert match_fqdn(["*.uk"], frozenset({"nhs.uk"}), allow_wildcard=True) is None
        assert match_fqdn(["*.nhs.uk"], frozenset({"localhost"}), allow_wildcard=True) is None


class TestErrors:
    @pytest.mark.parametrize(
        ("message", "code"),
        [
            (
                "validation failed: candidates exhausted: chain construction exceeds max depth",
                FailureCode.CHAIN_TOO_LONG,
            ),
            ("validation failed: path length constraint violated", FailureCode.CHAIN_TOO_LONG),
            ("validation failed: malformed certificate", FailureCode.MALFORMED),
            ("validation failed: signature does not match", FailureCode.UNTRUSTED),
            (
                "validation failed: leaf certificate has no matching subjectAltName for a.org",
                FailureCode.FQDN_MISMATCH,
            ),
        ],
    )
    def test_classify(self, message: str, code: FailureCode) -> None:
        """cryptography's message maps to the code a person would expect."""
        assert classify_verifier_error(message) is code

    def test_clean_message_drops_reprs(self) -> None:
        """The object repr cryptography appends is dropped."""
        text = "validation failed: bad (encountered processing <Certificate(subject=x, ...)>)"
        assert clean_verifier_message(text) == "bad"


class TestRevocationPlumbing:
    def test_a_subclass_check_is_asked_every_time(self, pki: TestPKI) -> None:
        """A checker subclass that overrides check() (a deny-list, an audit hook) is asked
        about the leaf and the Sub CA on every validation: the answers the base checker
        has at hand are not taken in its place (the result cache is off, by its size)."""
        calls: list[str] = []

        class Counting(RevocationChecker):
            def check(self, cert: x509.Certificate, issuer: x509.Certificate, *, at: dt.datetime):  # type: ignore[override]
                calls.append(cert.subject.rfc4514_string())
                return super().check(cert, issuer, at=at)

        checker = Counting(RevocationMode.OFFLINE, crls=[pki.crl(), pki.root_crl()])
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=checker, cache_size=0
        )
        leaf = pki.leaf("ssp").certificate
        for _ in range(3):
            assert validator.validate(leaf, at=AT).valid
        sub = pki.sub_ca.certificate.subject.rfc4514_string()
        assert calls.count(sub) == 3
        assert len(calls) == 6

    def test_a_checker_that_raises_means_unknown(self, pki: TestPKI) -> None:
        """A checker that breaks its no-raise promise yields REVOCATION_UNKNOWN, not a crash."""

        class Broken(RevocationChecker):
            def check(self, cert: x509.Certificate, issuer: x509.Certificate, *, at: dt.datetime):  # type: ignore[override]
                raise RevocationError("responder exploded")

        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=Broken(RevocationMode.OFFLINE)
        )
        result = validator.validate(pki.leaf("ssp").certificate, at=AT)
        assert result.codes == (FailureCode.REVOCATION_UNKNOWN,)
        assert result.as_dict()["revocation"] is None

    def test_weak_rsa_signature_on_a_path(self, pki: TestPKI) -> None:
        """A weak key on an intermediate found by the reporting path is named."""
        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        ca, _ = make_cert(pki.sub_ca, key=weak, cn="Weak CA", ca=True)
        validator = ClientCertValidator(
            pki.trust_store(),
            ssp_fqdns=pki.ssp_fqdn,
            revocation=RevocationChecker(RevocationMode.DISABLED, unsafe_allow_disabled=True),
        )
        from tests.validation.conftest import as_issued

        leaf, _ = make_cert(as_issued(ca, weak))
        result = validator.validate(leaf, [ca], at=AT)
        assert FailureCode.WEAK_KEY in result.codes
        assert any(
            f.certificate_subject and "Weak CA" in f.certificate_subject for f in result.failures
        )
