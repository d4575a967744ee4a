"""spinepki: the security edge of a GP Connect provider.

Data flows one way: policy -> TLS contexts; trust + revocation -> validation;
validation + gate -> middleware. Public submodules serve separate audiences:
``spinepki.testpki`` (test PKI), ``spinepki.errors`` (the exception tree).
"""

from __future__ import annotations

from spinepki.errors import (
    CertificateLoadError,
    CertificateValidationError,
    ConfigurationError,
    CRLParseError,
    EvidenceError,
    FetchError,
    InputError,
    KeyLoadError,
    OCSPParseError,
    PolicyError,
    RevocationError,
    ServerCredentialError,
    SpinePKIError,
    TestPKIError,
    TokenParseError,
    TrustStoreError,
)
from spinepki.policy import (
    SPINE_POLICY,
    SPINE_STRICT_POLICY,
    CipherSuite,
    ClientAuth,
    TLSPolicy,
    expand_ciphers,
)
from spinepki.tls import (
    ContextFinding,
    FindingCode,
    check_context,
    client_context,
    server_context,
)
from spinepki.trust import SpineEnvironment, TrustedCertificate, TrustStore

__version__ = "0.1.0"

__all__ = [
    "SPINE_POLICY",
    "SPINE_STRICT_POLICY",
    "CRLParseError",
    "CertificateLoadError",
    "CertificateValidationError",
    "CipherSuite",
    "ClientAuth",
    "ConfigurationError",
    "ContextFinding",
    "EvidenceError",
    "FetchError",
    "FindingCode",
    "InputError",
    "KeyLoadError",
    "OCSPParseError",
    "PolicyError",
    "RevocationError",
    "ServerCredentialError",
    "SpineEnvironment",
    "SpinePKIError",
    "TLSPolicy",
    "TestPKIError",
    "TokenParseError",
    "TrustStore",
    "TrustStoreError",
    "TrustedCertificate",
    "__version__",
    "check_context",
    "client_context",
    "expand_ciphers",
    "server_context",
]
