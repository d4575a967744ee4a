"""Malformed input never escapes as anything but a typed result or error; a second engine agrees."""

from __future__ import annotations

import asyncio
import datetime as dt
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinepki.errors import CertificateLoadError
from spinepki.revocation import RevocationChecker, RevocationMode
from spinepki.testpki import TestPKI
from spinepki.validation import ClientCertValidator, FailureCode, ValidationResult
from tests.validation.conftest import AT, as_issued, make_cert

_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _typed(validator: ClientCertValidator, data: bytes) -> ValidationResult | None:
    """Validate ``data``; only a result or CertificateLoadError may come out."""
    with warnings.catch_warnings():
        # Parsing odd serials emits a deprecation warning (not an error) in cryptography.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        try:
            return validator.validate(data, at=AT)
        except CertificateLoadError:
            return None


class TestMalformed:
    @_SETTINGS
    @given(data=st.binary(max_size=2048))
    def test_random_bytes(self, validator: ClientCertValidator, data: bytes) -> None:
        """Random bytes give CertificateLoadError or an invalid result, never anything else."""
        result = _typed(validator, data)
        assert result is None or not result.valid

    @pytest.mark.parametrize("field", ["issuer", "subject"])
    def test_regression_lazily_parsed_name_is_malformed(
        self, validator: ClientCertValidator, pki: TestPKI, field: str
    ) -> None:
        """Regression (found by fuzzing): a certificate that loads but whose issuer (or
        subject) does not parse used to raise ValueError from path building; now MALFORMED."""
        cert = pki.leaf("ssp").certificate
        der = cert.public_bytes(serialization.Encoding.DER)
        name = getattr(cert, field).public_bytes()
        start = der.index(name) if field == "issuer" else der.rindex(name)
        # Byte 11 of the Name is the first AttributeValue's string tag (UTF8String, 0x0C);
        # tag 0 still loads, and fails only when the name is first read.
        value_tag = start + 11
        assert der[value_tag] == 0x0C
        broken = der[:value_tag] + b"\x00" + der[value_tag + 1 :]
        result = _typed(validator, broken)
        assert result is not None
        assert not result.valid
        assert [f.code for f in result.failures] == [FailureCode.MALFORMED]

    @_SETTINGS
    @given(data=st.data())
    def test_mutated_certificates(
        self, validator: ClientCertValidator, pki: TestPKI, data: st.DataObject
    ) -> None:
        """Flipped, truncated or spliced DER of a valid leaf is rejected with a typed outcome."""
        der = bytearray(pki.leaf("ssp").certificate.public_bytes(serialization.Encoding.DER))
        for _ in range(data.draw(st.integers(1, 4))):
            index = data.draw(st.integers(0, len(der) - 1))
            der[index] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(len(der) // 2, len(der)))
        mutated = bytes(der[:cut])
        result = _typed(validator, mutated)
        if result is not None and result.valid:
            # Only a byte flip that leaves the signed content and signature intact can pass.
            original = pki.leaf("ssp").certificate
            assert x509.load_der_x509_certificate(mutated).tbs_certificate_bytes == (
                original.tbs_certificate_bytes
            )

    @_SETTINGS
    @given(payload=st.binary(max_size=64))
    def test_garbage_extensions(
        self, validator: ClientCertValidator, pki: TestPKI, payload: bytes
    ) -> None:
        """Arbitrary SAN/EKU/policy bytes in a signed leaf: MALFORMED or judged, never a crash."""
        from cryptography.x509.oid import ExtensionOID

        for oid in (
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
            ExtensionOID.EXTENDED_KEY_USAGE,
            ExtensionOID.CERTIFICATE_POLICIES,
        ):
            cert, _ = make_cert(
                pki.sub_ca, eku=(), extra=(x509.UnrecognizedExtension(oid, payload),)
            )
            result = validator.validate(cert, at=AT)
            assert isinstance(result, ValidationResult)
            assert not result.valid or FailureCode.MALFORMED not in result.codes


def _pyhanko_valid(
    pki: TestPKI, leaf: x509.Certificate, intermediates: list[x509.Certificate]
) -> bool:
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.errors import (
        InvalidCertificateError,
        PathBuildingError,
        PathValidationError,
    )

    def conv(cert: x509.Certificate) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    context = ValidationContext(
        trust_roots=[conv(pki.root.certificate)],
        moment=AT,
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    engine = CertificateValidator(
        conv(leaf), intermediate_certs=[conv(c) for c in intermediates], validation_context=context
    )
    try:
        asyncio.run(engine.async_validate_usage(set(), {"client_auth"}))
    except (PathBuildingError, PathValidationError, InvalidCertificateError):
        return False
    return True


def _generated_chains(pki: TestPKI) -> dict[str, tuple[x509.Certificate, list[x509.Certificate]]]:
    chains = {
        name: (pki.leaf(name).certificate, list(pki.leaf(name).chain))
        for name in ("ssp", "expired", "not-yet-valid", "foreign")
    }
    extra_ca, extra_key = make_cert(pki.sub_ca, cn="Extra CA", ca=True)
    chains["four-level"] = (
        make_cert(as_issued(extra_ca, extra_key))[0],
        [pki.sub_ca.certificate, extra_ca],
    )
    ee, ee_key = make_cert(pki.sub_ca, cn="not-a-ca.nhs.uk")
    chains["ee-as-issuer"] = (make_cert(as_issued(ee, ee_key))[0], [pki.sub_ca.certificate, ee])
    old, old_key = make_cert(
        pki.root,
        cn="Old CA",
        ca=True,
        not_before=AT - dt.timedelta(days=90),
        not_after=AT - dt.timedelta(days=1),
    )
    chains["expired-sub-ca"] = (
        make_cert(as_issued(old, old_key), not_before=AT - dt.timedelta(days=60))[0],
        [old],
    )
    limited, limited_key = make_cert(pki.sub_ca, cn="Limited CA", ca=True, path_length=0)
    below, below_key = make_cert(as_issued(limited, limited_key), cn="Below CA", ca=True)
    chains["pathlen"] = (
        make_cert(as_issued(below, below_key))[0],
        [pki.sub_ca.certificate, limited, below],
    )
    from cryptography.x509.oid import ExtendedKeyUsageOID

    chains["server-only"] = (
        make_cert(pki.sub_ca, eku=(ExtendedKeyUsageOID.SERVER_AUTH,))[0],
        [pki.sub_ca.certificate],
    )
    return chains


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_differential_against_pyhanko_certvalidator(pki: TestPKI) -> None:
    """On generated chains where both engines should agree, spinepki and pyhanko do."""
    ours = ClientCertValidator(
        pki.trust_store(),
        revocation=RevocationChecker(RevocationMode.DISABLED, unsafe_allow_disabled=True),
        unsafe_skip_fqdn_check=True,
        cache_ttl=0,
    )
    verdicts = {}
    for name, (leaf, chain) in _generated_chains(pki).items():
        mine = ours.validate(leaf, chain, at=AT).valid
        theirs = _pyhanko_valid(pki, leaf, chain)
        verdicts[name] = (mine, theirs)
    assert all(mine == theirs for mine, theirs in verdicts.values()), verdicts
    assert verdicts["ssp"] == (True, True)
    assert sum(not mine for mine, _ in verdicts.values()) >= 6
