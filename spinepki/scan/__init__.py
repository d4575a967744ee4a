"""``spinepki.scan``: check a live endpoint against the Spine TLS policy.

    >>> from spinepki.scan import scan_endpoint
    >>> report = scan_endpoint("provider.example.nhs.uk", 443)  # doctest: +SKIP
    >>> report.compliant, [c.id for c in report.failed]  # doctest: +SKIP

One report per scan: a fixed list of :class:`ScanCheck` (each names the GP Connect rule
it proves) and the raw findings behind them. See ``docs/scan.md``.
"""

from __future__ import annotations

from spinepki._public import publish as _publish
from spinepki.scan._chain import MAX_PRESENTED_CERTIFICATES, fetch_chain, parse_https_url
from spinepki.scan._report import (
    SCHEMA,
    CertificateFinding,
    CipherFinding,
    ClientCertFinding,
    ClientCertOutcome,
    HttpFinding,
    PlaintextFinding,
    ProtocolFinding,
    ScanCheck,
    ScanError,
    ScanReport,
)
from spinepki.scan._scan import (
    MAX_CIPHER_PROBES,
    SCAN_STEPS,
    ScanProgress,
    parse_target,
    scan_endpoint,
)

__all__ = [
    "MAX_CIPHER_PROBES",
    "MAX_PRESENTED_CERTIFICATES",
    "SCAN_STEPS",
    "SCHEMA",
    "CertificateFinding",
    "CipherFinding",
    "ClientCertFinding",
    "ClientCertOutcome",
    "HttpFinding",
    "PlaintextFinding",
    "ProtocolFinding",
    "ScanCheck",
    "ScanError",
    "ScanProgress",
    "ScanReport",
    "fetch_chain",
    "parse_https_url",
    "parse_target",
    "scan_endpoint",
]

# Show each name at its public path (``<class 'spinepki.gate.RequestGate'>``), not
# the private module that implements it, as httpx does.
_publish(__name__, __all__, globals())
