"""The reference provider: a deployable GP Connect security edge in front of an ASGI app.

``server_context`` for TLS, a :class:`~spinepki.validation.ClientCertValidator` as the
gate's certificate checker, :class:`~spinepki.gate.GateASGIMiddleware` in front of the
application, served by anycorn's HTTP/1.1 protocol under a hardened accept loop
(handshake, header and body deadlines, connection caps in total and per source, strict
HTTP/1.1 framing, every connection's failures contained). Reference:
``docs/provider.md``; the server choice and its measurements: ADR 0005.

    >>> from spinepki.provider import load_config, run_provider
    >>> with run_provider(load_config("provider.toml")) as provider:  # doctest: +SKIP
    ...     print(provider.url)

Serving needs the optional ``provider`` extra (anycorn); importing this module does not.
"""

from __future__ import annotations

from spinepki._public import publish as _publish
from spinepki.provider._app import FHIRDemoApp, demo_app
from spinepki.provider._build import create_server, load_app, run_provider, serve
from spinepki.provider._config import (
    DEFAULT_APP,
    ProviderConfig,
    ProviderConfigError,
    ProviderLimits,
    example_config,
    load_config,
)
from spinepki.provider._server import ProviderFailedError, ProviderServer, ServerStats

__all__ = [
    "DEFAULT_APP",
    "FHIRDemoApp",
    "ProviderConfig",
    "ProviderConfigError",
    "ProviderFailedError",
    "ProviderLimits",
    "ProviderServer",
    "ServerStats",
    "create_server",
    "demo_app",
    "example_config",
    "load_app",
    "load_config",
    "run_provider",
    "serve",
]

# Show each name at its public path (``<class 'spinepki.gate.RequestGate'>``), not
# the private module that implements it, as httpx does.
_publish(__name__, __all__, globals())
