"""A Spine-shaped test PKI for integration environments and pytest.

Throwaway keys only: nothing built here may protect real data.

    >>> from spinepki.testpki import TestPKI, KeyType
    >>> pki = TestPKI.create(key_type=KeyType.EC_P256)
    >>> pki.leaf("ssp").fqdn
    'msg.dev.spine2.ncrs.nhs.uk'
"""

from __future__ import annotations

from spinepki._public import publish as _publish
from spinepki._tokens import example_claims, gp_connect_token, unsigned_jwt
from spinepki.testpki._builder import (
    DEFAULT_BASE_URL,
    DEFAULT_CONSUMER_FQDN,
    DEFAULT_PROVIDER_FQDN,
    DEFAULT_SSP_FQDN,
    SPINE_POLICY_OID,
    STANDARD_LEAVES,
    IssuedCertificate,
    KeyType,
    Revocation,
    TestPKI,
)
from spinepki.testpki._store import CRL_SET, MANIFEST_NAME, load_pki, write_pki

__all__ = [
    "CRL_SET",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONSUMER_FQDN",
    "DEFAULT_PROVIDER_FQDN",
    "DEFAULT_SSP_FQDN",
    "MANIFEST_NAME",
    "SPINE_POLICY_OID",
    "STANDARD_LEAVES",
    "IssuedCertificate",
    "KeyType",
    "Revocation",
    "TestPKI",
    "example_claims",
    "gp_connect_token",
    "load_pki",
    "unsigned_jwt",
    "write_pki",
]

# Show each name at its public path (``<class 'spinepki.gate.RequestGate'>``), not
# the private module that implements it, as httpx does.
# tokens has no underscore (yet) but is internal: its names are public from here.
_publish(__name__, __all__, globals())
