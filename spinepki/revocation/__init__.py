"""Revocation checking of our own: CRLs and OCSP, verified once, indexed, cached, bounded.

Design decision 2 (``docs/revocation.md``, ADR 0003): a CRL is fetched size- and
time-bounded, its signature checked once per fetch and its serials indexed, so a lookup
is O(1) whatever the CRL size; OCSP uses :mod:`cryptography.x509.ocsp` with a nonce and
checks delegated responders. Hard-fail is the default.

    >>> checker = RevocationChecker()                      # hard-fail, fetches over HTTP
    >>> tight = RevocationChecker(limits=RevocationLimits(max_staleness=60))
    >>> result = checker.check(leaf, issuer, at=now)       # doctest: +SKIP
    >>> result.status, result.evidence.crl_number          # doctest: +SKIP
    (<RevocationStatus.GOOD: 'good'>, 7)

Network access goes through :class:`~spinepki.revocation.fetchers.Fetcher`
(``RequestsFetcher`` by default, ``StaticFetcher`` in memory).
"""

from __future__ import annotations

from spinepki._public import publish as _publish
from spinepki.revocation._checker import RevocationChecker
from spinepki.revocation._crl import VerifiedCRL, load_crl, verify_crl
from spinepki.revocation._limits import (
    DEFAULT_MAX_STALENESS,
    DEFAULT_OCSP_MAX_AGE,
    RevocationLimits,
)
from spinepki.revocation._ocsp import (
    CertID,
    OCSPVerdict,
    build_ocsp_request,
    parse_ocsp_response,
    verify_ocsp_response,
)
from spinepki.revocation._types import (
    RevocationEvidence,
    RevocationMode,
    RevocationResult,
    RevocationStatus,
)
from spinepki.revocation.fetchers import Fetcher, RequestsFetcher, StaticFetcher

__all__ = [
    "DEFAULT_MAX_STALENESS",
    "DEFAULT_OCSP_MAX_AGE",
    "CertID",
    "Fetcher",
    "OCSPVerdict",
    "RequestsFetcher",
    "RevocationChecker",
    "RevocationEvidence",
    "RevocationLimits",
    "RevocationMode",
    "RevocationResult",
    "RevocationStatus",
    "StaticFetcher",
    "VerifiedCRL",
    "build_ocsp_request",
    "load_crl",
    "parse_ocsp_response",
    "verify_crl",
    "verify_ocsp_response",
]

# Show each name at its public path (``<class 'spinepki.gate.RequestGate'>``), not
# the private module that implements it, as httpx does.
_publish(__name__, __all__, globals())
