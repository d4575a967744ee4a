"""``spinepki gate serve``: the request gate as an nginx ``auth_request`` service.

nginx terminates TLS with the exported Spine policy (``spinepki tls config nginx
--gate URL``) and asks this service about every request, passing the client certificate
(``$ssl_client_escaped_cert``), the method, the original URI and the SSP headers. The
design, including how nginx gets the gate's OperationOutcome back although auth_request
only sees a status, is in ``docs/deploy-nginx-gate.md``.

    >>> service = GateService(settings.build())   # doctest: +SKIP
    >>> serve(settings.build())                     # doctest: +SKIP
"""

from __future__ import annotations

from spinepki._public import publish as _publish
from spinepki.gate_service._app import GateService
from spinepki.gate_service._config import (
    DEFAULT_LISTEN,
    GateServiceConfig,
    GateSettings,
    load_settings,
)
from spinepki.gate_service._server import gunicorn_options, serve

__all__ = [
    "DEFAULT_LISTEN",
    "GateService",
    "GateServiceConfig",
    "GateSettings",
    "gunicorn_options",
    "load_settings",
    "serve",
]

# Show each name at its public path (``<class 'spinepki.gate.RequestGate'>``), not
# the private module that implements it, as httpx does.
_publish(__name__, __all__, globals())
