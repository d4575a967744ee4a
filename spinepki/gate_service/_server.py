"""Serving :class:`GateService` with gunicorn (gthread workers).

Why gunicorn: a maintained, pre-fork production server with bounded request lines,
header counts and sizes, keep-alive, worker supervision (a crashed or hung worker is
replaced) and graceful shutdown on SIGTERM. Pre-fork workers use every core, which a
single asyncio process would not; each worker holds its own validator caches, which is
what the library's statelessness allows (design decision 7).
"""

from __future__ import annotations

import logging
from typing import Any

from spinepki._listen import check_free
from spinepki.errors import ConfigurationError
from spinepki.gate_service._app import GateService
from spinepki.gate_service._config import GateServiceConfig

__all__ = ["check_listen", "gunicorn_options", "serve"]

_log = logging.getLogger("spinepki.gate_service")


def gunicorn_options(config: GateServiceConfig) -> dict[str, Any]:
    """The gunicorn settings ``serve`` uses (exposed for review and tests)."""
    return {
        "bind": [config.listen.joined()],
        "workers": config.workers,
        "worker_class": "gthread",
        "threads": config.threads,
        "keepalive": config.keepalive,
        "timeout": 30,
        "graceful_timeout": 10,
        # The escaped certificate is ~2-4 KB (RSA-2048/4096); the bearer token ~1.5 KB.
        "limit_request_line": 4094,
        "limit_request_fields": 100,
        "limit_request_field_size": 16384,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "spinepki-gate",
        # Build the gate (trust, validator, CRLs) once, before forking.
        "preload_app": True,
        # Never believe X-Forwarded-*: the peer address is what trust is decided on.
        "forwarded_allow_ips": "",
    }


def check_listen(config: GateServiceConfig) -> None:
    """Refuse at once when the listen address cannot be bound (a port in use).

    gunicorn, left to find out itself, logs and retries for about five seconds and then
    exits 1; a port in use is a configuration error, said in one line. (Another process
    may still take the port in between; gunicorn's own retries then apply.)

    Raises:
        ConfigurationError: the address is in use or cannot be bound here.
    """
    check_free(config.listen, source="listen")


def serve(config: GateServiceConfig) -> None:
    """Run the gate service in the foreground until SIGTERM/SIGINT.

    Raises:
        ConfigurationError: gunicorn is not installed (``pip install 'spinepki[gate]'``),
            or the listen address is in use (checked before gunicorn starts).
    """
    try:
        from gunicorn.app.base import BaseApplication  # noqa: PLC0415 - optional extra
    except ImportError:
        raise ConfigurationError(
            "spinepki gate serve needs gunicorn: pip install 'spinepki[gate]'", source="gunicorn"
        ) from None
    check_listen(config)
    app = GateService(config)
    options = gunicorn_options(config)

    class _Application(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> GateService:
            return app

    _log.info("spinepki gate serve on %s", config.listen.joined())
    _Application().run()
