"""The request gate: SSP headers, ASID, interaction ID vs request, JWT, scope, no-store.

Framework-neutral core (:class:`RequestGate` -> :class:`GateDecision`) plus thin
adapters (:class:`GateASGIMiddleware`, :class:`GateWSGIMiddleware`) and the sources of
the peer certificate (:class:`TLSExtensionSource`, :class:`ProxyHeaderSource` …), all
importable from here. Reference: ``docs/gate.md``; the bracketed source keys in
docstrings ([SEC], [JWT], [ERR], [IDS], [SSP], [DEMO], [PT-…]) are its Sources table.
"""

from __future__ import annotations

from spinepki._public import publish as _publish
from spinepki.gate._asgi import GateASGIMiddleware
from spinepki.gate._catalogue import INTERACTIONS, BodyRule, Catalogue, Interaction
from spinepki.gate._certsource import (
    CertificateSource,
    EnvironSource,
    FirstOf,
    GunicornSocketSource,
    PeerCertificate,
    ProxyCertFormat,
    ProxyHeaderSource,
    TLSExtensionSource,
    decode_proxy_header,
)
from spinepki.gate._config import (
    CachedCertificateChecker,
    CertificateChecker,
    CheckFailure,
    CheckOutcome,
    ClientAuthMode,
    GateConfig,
    GateLimits,
    OutcomeCodingSystem,
    WrongResourceTypeResponse,
)
from spinepki.gate._decision import GateDecision
from spinepki.gate._gate import RequestGate
from spinepki.gate._jwt import decode_unsecured_jwt
from spinepki.gate._kinds import Generation, RootKind
from spinepki.gate._outcome import IssueType, SpineCode, render_operation_outcome
from spinepki.gate._scope import Scope
from spinepki.gate._wsgi import GateWSGIMiddleware

__all__ = [
    "INTERACTIONS",
    "BodyRule",
    "CachedCertificateChecker",
    "Catalogue",
    "CertificateChecker",
    "CertificateSource",
    "CheckFailure",
    "CheckOutcome",
    "ClientAuthMode",
    "EnvironSource",
    "FirstOf",
    "GateASGIMiddleware",
    "GateConfig",
    "GateDecision",
    "GateLimits",
    "GateWSGIMiddleware",
    "Generation",
    "GunicornSocketSource",
    "Interaction",
    "IssueType",
    "OutcomeCodingSystem",
    "PeerCertificate",
    "ProxyCertFormat",
    "ProxyHeaderSource",
    "RequestGate",
    "RootKind",
    "Scope",
    "SpineCode",
    "TLSExtensionSource",
    "WrongResourceTypeResponse",
    "decode_proxy_header",
    "decode_unsecured_jwt",
    "render_operation_outcome",
]

# Show each name at its public path (``<class 'spinepki.gate.RequestGate'>``), not
# the private module that implements it, as httpx does.
_publish(__name__, __all__, globals())
