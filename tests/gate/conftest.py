"""Gate test fixtures (defined in _helpers so test modules can import the helpers)."""

from __future__ import annotations

from tests.gate._helpers import asgi_server, gate, pki, ssp_cert, wsgi_server

__all__ = ["asgi_server", "gate", "pki", "ssp_cert", "wsgi_server"]
