"""Fixtures for the revocation tests: an offline PKI, the real responder, helpers."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from spinepki.testpki import KeyType, TestPKI

# The responder fixtures come from the spinepki plugin too; importing them here keeps
# these tests independent of plugin registration.
from spinepki.testpki.pytest_responder import (  # noqa: F401
    spinepki_responder,
    spinepki_responder_pki,
)

BASE = "http://crl.test.invalid"
CRL_URL = f"{BASE}/crl/sub-ca.crl"
ROOT_CRL_URL = f"{BASE}/crl/root.crl"
OCSP_URL = f"{BASE}/ocsp"


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    """An EC P-256 test PKI whose URLs point at an unroutable host (offline tests)."""
    return TestPKI.create(key_type=KeyType.EC_P256, base_url=BASE)


@pytest.fixture(scope="session")
def rsa_pki() -> TestPKI:
    """An RSA-2048 test PKI (for the RSA signature paths)."""
    return TestPKI.create(key_type=KeyType.RSA_2048, base_url=BASE)


@pytest.fixture
def at(pki: TestPKI) -> dt.datetime:
    """The validation time: the PKI's reference time."""
    return pki.reference_time


def der(crl: x509.CertificateRevocationList) -> bytes:
    """DER bytes of a CRL."""
    return crl.public_bytes(serialization.Encoding.DER)
