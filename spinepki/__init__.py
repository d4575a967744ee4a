"""spinepki: the security edge of a GP Connect provider.

Data flows one way: policy -> TLS contexts; trust + revocation -> validation;
validation + gate -> middleware. This facade re-exports what most users need; each area
is a public module or package of its own (``spinepki.gate``, ``spinepki.testpki``,
``spinepki.errors`` …), and ``docs/stability.md`` lists every public module;
``make lint`` enforces the layers (docs/architecture.md).
"""

from __future__ import annotations

import logging

from spinepki._loading import MALFORMED_INPUT, MAX_INPUT_BYTES, load_certificate_chain
from spinepki._names import check_fqdn, check_http_url
from spinepki._public import publish as _publish
from spinepki._version import __version__
from spinepki.audit import AuditLogger
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
    ProviderConfigError,
    ProviderFailedError,
    RevocationError,
    ScanError,
    SecurityTestError,
    ServerCredentialError,
    SpinePKIError,
    SSPConfigError,
    TestPKIError,
    TokenParseError,
    TrustStoreError,
    UnreachableError,
)
from spinepki.gate import (
    CertificateChecker,
    GateASGIMiddleware,
    GateConfig,
    GateDecision,
    GateLimits,
    GateWSGIMiddleware,
    Generation,
    ProxyCertFormat,
    ProxyHeaderSource,
    RequestGate,
    RootKind,
)
from spinepki.policy import (
    SPINE_POLICY,
    SPINE_STRICT_POLICY,
    CipherSuite,
    ClientAuth,
    TLSPolicy,
    expand_ciphers,
)
from spinepki.provider import (
    ProviderConfig,
    ProviderLimits,
    ProviderServer,
    run_provider,
)
from spinepki.revocation import (
    RevocationChecker,
    RevocationEvidence,
    RevocationLimits,
    RevocationMode,
    RevocationResult,
    RevocationStatus,
)
from spinepki.scan import ScanCheck, ScanReport, scan_endpoint
from spinepki.serverconfig import ServerKind, render_config
from spinepki.ssp import SSPConfig, run_ssp
from spinepki.tls import (
    ContextFinding,
    FindingCode,
    check_context,
    client_context,
    server_context,
)
from spinepki.trust import SpineEnvironment, TrustedCertificate, TrustStore
from spinepki.validation import (
    CertificateSummary,
    ClientCertValidator,
    FailureCode,
    Profile,
    Purpose,
    ValidationFailure,
    ValidationResult,
    summarize_certificate,
)

# A library never prints by itself: without this, Python's last-resort handler writes our
# WARNING records (refused requests, soft-failed revocation) to stderr of whatever program
# imported us. Where audit and decision logs go is the application's choice (the logging
# HOWTO, "Configuring Logging for a Library").
logging.getLogger("spinepki").addHandler(logging.NullHandler())

__all__ = [
    "MALFORMED_INPUT",
    "MAX_INPUT_BYTES",
    "SPINE_POLICY",
    "SPINE_STRICT_POLICY",
    "AuditLogger",
    "CRLParseError",
    "CertificateChecker",
    "CertificateLoadError",
    "CertificateSummary",
    "CertificateValidationError",
    "CipherSuite",
    "ClientAuth",
    "ClientCertValidator",
    "ConfigurationError",
    "ContextFinding",
    "EvidenceError",
    "FailureCode",
    "FetchError",
    "FindingCode",
    "GateASGIMiddleware",
    "GateConfig",
    "GateDecision",
    "GateLimits",
    "GateWSGIMiddleware",
    "Generation",
    "InputError",
    "KeyLoadError",
    "OCSPParseError",
    "PolicyError",
    "Profile",
    "ProviderConfig",
    "ProviderConfigError",
    "ProviderFailedError",
    "ProviderLimits",
    "ProviderServer",
    "ProxyCertFormat",
    "ProxyHeaderSource",
    "Purpose",
    "RequestGate",
    "RevocationChecker",
    "RevocationError",
    "RevocationEvidence",
    "RevocationLimits",
    "RevocationMode",
    "RevocationResult",
    "RevocationStatus",
    "RootKind",
    "SSPConfig",
    "SSPConfigError",
    "ScanCheck",
    "ScanError",
    "ScanReport",
    "SecurityTestError",
    "ServerCredentialError",
    "ServerKind",
    "SpineEnvironment",
    "SpinePKIError",
    "TLSPolicy",
    "TestPKIError",
    "TokenParseError",
    "TrustStore",
    "TrustStoreError",
    "TrustedCertificate",
    "UnreachableError",
    "ValidationFailure",
    "ValidationResult",
    "__version__",
    "check_context",
    "check_fqdn",
    "check_http_url",
    "client_context",
    "expand_ciphers",
    "load_certificate_chain",
    "render_config",
    "run_provider",
    "run_ssp",
    "scan_endpoint",
    "server_context",
    "summarize_certificate",
]

# Show each name at its public path (``<class 'spinepki.gate.RequestGate'>``), not
# the private module that implements it, as httpx does.
_publish(__name__, __all__, globals())
