"""A Spine Secure Proxy simulator: the party between a GP Connect consumer and provider.

Consumers connect with mutual TLS and send ``https://<ssp>/<provider service root>/<FHIR
request>``; the simulator checks their certificate against the FQDN registered for their
ASID, checks a small directory (the checks Spine Directory Services feeds: who may send
which interaction, who receives it, who may send to whom, the registered service root),
then forwards the request unmodified but for the SSP's own prefix, adding an RFC 7239
``Forwarded`` header, over mutual TLS with its own certificate, after validating the
provider's server certificate. Its own errors have the shapes of the GP Connect error
guidance. Reference: ``docs/ssp.md``.

    >>> from spinepki.ssp import load_config, run_ssp
    >>> with run_ssp(load_config("env.toml")) as ssp:  # doctest: +SKIP
    ...     print(ssp.url)

Serving needs the optional ``provider`` extra (anycorn); importing this module does not.
"""

from __future__ import annotations

from spinepki._public import publish as _publish
from spinepki.ssp._app import SSPApp, SSPStats
from spinepki.ssp._audit import Hop, HopEvent, SSPAuditLogger
from spinepki.ssp._build import SSPServer, create_ssp, run_ssp, serve
from spinepki.ssp._config import (
    ConsumerSystem,
    Directory,
    ForwardingLimits,
    ProviderSystem,
    SSPConfig,
    SSPConfigError,
    load_config,
    load_directory,
)
from spinepki.ssp._outcome import SSP_CODING_SYSTEM, SSPError, SSPRefusal
from spinepki.ssp._route import Route, route

__all__ = [
    "SSP_CODING_SYSTEM",
    "ConsumerSystem",
    "Directory",
    "ForwardingLimits",
    "Hop",
    "HopEvent",
    "ProviderSystem",
    "Route",
    "SSPApp",
    "SSPAuditLogger",
    "SSPConfig",
    "SSPConfigError",
    "SSPError",
    "SSPRefusal",
    "SSPServer",
    "SSPStats",
    "create_ssp",
    "load_config",
    "load_directory",
    "route",
    "run_ssp",
    "serve",
]

# Show each name at its public path (``<class 'spinepki.gate.RequestGate'>``), not
# the private module that implements it, as httpx does.
_publish(__name__, __all__, globals())
