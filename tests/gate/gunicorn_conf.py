"""gunicorn configuration for the end-to-end gate test: TLS from ``spinepki.tls``.

Started by ``test_gate_gunicorn.py`` as ``python -m gunicorn -c gunicorn_conf.py``; the
test passes the PKI directory (``write_pki`` layout), the bind address and the client
certificate mode through the environment.

gunicorn's hook is ``ssl_context(config, default_ssl_context_factory) -> SSLContext``
(gunicorn >= 21). The sync and gthread workers call it for *every accepted connection*
(``gunicorn.sock.ssl_wrap_socket``), so the context is built once per worker and reused.
``certfile`` and ``keyfile`` must still be set: they are what switches gunicorn's TLS on
(``config.is_ssl``); the default factory, which would load them into a context of its
own, is not used.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

from spinepki.policy import ClientAuth
from spinepki.tls import server_context
from spinepki.trust import TrustStore

_PKI = Path(os.environ["SPINEPKI_GATE_PKI_DIR"])
_CLIENT_AUTH = ClientAuth(os.environ.get("SPINEPKI_GATE_CLIENT_AUTH", ClientAuth.HTTP_496.value))

bind = [os.environ["SPINEPKI_GATE_BIND"]]
workers = 1
worker_class = "sync"
certfile = str(_PKI / "certs" / "provider.chain.pem")
keyfile = str(_PKI / "certs" / "provider.key.pem")
accesslog = None  # an access log would record query strings (NHS numbers)
errorlog = "-"
loglevel = "warning"
control_socket_disable = True  # no gunicorn.ctl in $HOME or $XDG_RUNTIME_DIR
graceful_timeout = 5

_built: list[ssl.SSLContext] = []


def ssl_context(config: Any, default_ssl_context_factory: Any) -> ssl.SSLContext:
    """gunicorn's hook: spinepki's provider context (TLS 1.2, Spine suites, client auth)."""
    if not _built:
        _built.append(
            server_context(
                cert=Path(config.certfile),
                key=Path(config.keyfile),
                trust=TrustStore.from_paths(_PKI / "ca" / "trust-bundle.pem"),
                client_auth=_CLIENT_AUTH,
            )
        )
    return _built[0]
