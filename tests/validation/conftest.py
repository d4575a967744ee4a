"""Fixtures for the validator tests: one EC test PKI per session, built around a fixed time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from spinepki._loading import PrivateKey
from spinepki.revocation import RevocationChecker, RevocationMode
from spinepki.testpki import IssuedCertificate, KeyType, TestPKI
from spinepki.validation import ClientCertValidator
from tests._helpers import shared

AT = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
TESTDATA = Path(__file__).resolve().parents[2] / "testdata"
SPINE_EXAMPLE = TESTDATA / "spine" / "int.api.service.nhs.uk.pem"
SPINE_EXAMPLE_FQDN = "int.api.service.nhs.uk"
IN_2023 = dt.datetime(2023, 6, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def pki() -> Iterator[TestPKI]:
    """A Spine-shaped EC P-256 test PKI with the standard leaves, reference time AT.
    Shared: a test that issues or revokes takes a ``fresh(pki)`` copy."""
    with shared(TestPKI.create(key_type=KeyType.EC_P256, at=AT), "validation pki") as pki:
        yield pki


@pytest.fixture(scope="session")
def offline(pki: TestPKI) -> RevocationChecker:
    """Offline revocation with the Sub CA's and the root's current CRLs."""
    return RevocationChecker(RevocationMode.OFFLINE, crls=[pki.crl(), pki.root_crl()])


@pytest.fixture(scope="session")
def disabled() -> RevocationChecker:
    """No revocation checking (for tests about something else)."""
    return RevocationChecker(RevocationMode.DISABLED, unsafe_allow_disabled=True)


def ext(value: x509.ExtensionType, *, critical: bool = False) -> x509.Extension[x509.ExtensionType]:
    """An extension with its criticality, for the test-PKI builder's ``extensions=``."""
    return x509.Extension(value.oid, critical, value)


def rfc_ca_extensions(path_length: int | None = None) -> list[x509.Extension[x509.ExtensionType]]:
    """basicConstraints marked critical, as RFC 5280 4.2.1.9 requires (Spine's are not)."""
    return [ext(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)]


@pytest.fixture(scope="session")
def rfc_pki() -> Iterator[TestPKI]:
    """A test PKI with a second hierarchy made the RFC 5280 way (``rfc-root`` → ``rfc-sub``):
    basicConstraints critical, so the strict and general profiles accept it."""
    pki = TestPKI.create(key_type=KeyType.EC_P256, at=AT)
    pki.issue_ca("rfc-root", parent=None, extensions=rfc_ca_extensions())
    pki.issue_ca("rfc-sub", parent="rfc-root", extensions=rfc_ca_extensions())
    with shared(pki, "validation rfc_pki") as pki:
        yield pki


@pytest.fixture(scope="session")
def validator(pki: TestPKI, offline: RevocationChecker) -> ClientCertValidator:
    """The SSP validator as a provider would configure it, with offline CRLs."""
    return ClientCertValidator(pki.trust_store(), ssp_fqdns=[pki.ssp_fqdn], revocation=offline)


def make_cert(
    issuer: IssuedCertificate | None,
    *,
    key: PrivateKey | None = None,
    cn: str = "msg.dev.spine2.ncrs.nhs.uk",
    ca: bool = False,
    path_length: int | None = None,
    not_before: dt.datetime = AT - dt.timedelta(days=1),
    not_after: dt.datetime = AT + dt.timedelta(days=30),
    eku: tuple[x509.ObjectIdentifier, ...] = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    hash_algorithm: hashes.HashAlgorithm | None = None,
    extra: tuple[x509.ExtensionType, ...] = (),
) -> tuple[x509.Certificate, PrivateKey]:
    """A certificate signed by a test-PKI CA (or self-signed), shaped like Spine's."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nhs"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "CA" if ca else "Devices"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    signer = issuer.private_key if issuer else key
    issuer_name = issuer.certificate.subject if issuer else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)  # type: ignore[arg-type]
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=False,
        )
    elif eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    for ext in extra:
        builder = builder.add_extension(ext, critical=False)
    algorithm = hash_algorithm or hashes.SHA256()
    return builder.sign(signer, algorithm), key  # type: ignore[arg-type]


def as_issued(cert: x509.Certificate, key: PrivateKey, name: str = "extra") -> IssuedCertificate:
    """Wrap a made certificate so it can sign further ones."""
    return IssuedCertificate(name=name, certificate=cert, private_key=key, chain=())


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(content)) + content


def _content(tlv: bytes) -> bytes:
    first = tlv[1]
    if first < 0x80:
        return tlv[2 : 2 + first]
    size = first & 0x7F
    length = int.from_bytes(tlv[2 : 2 + size], "big")
    return tlv[2 + size : 2 + size + length]


#: AlgorithmIdentifier DER for ecdsa-with-SHA256 and ecdsa-with-SHA1.
_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
_ECDSA_SHA1 = bytes.fromhex("300906072a8648ce3d0401")


def resign_with_sha1(
    cert: x509.Certificate, issuer_key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    """The same certificate re-signed with ECDSA-SHA1 (cryptography no longer signs SHA-1)."""
    tbs = _content(cert.tbs_certificate_bytes).replace(_ECDSA_SHA256, _ECDSA_SHA1, 1)
    new_tbs = _tlv(0x30, tbs)
    signature = issuer_key.sign(new_tbs, ec.ECDSA(hashes.SHA1()))
    der = _tlv(0x30, new_tbs + _ECDSA_SHA1 + _tlv(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)
