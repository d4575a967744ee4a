"""Gate test fixtures (defined in gate_helpers so test modules can import the helpers)."""

from __future__ import annotations

from gate_helpers import asgi_server, gate, pki, ssp_cert, wsgi_server

__all__ = ["asgi_server", "gate", "pki", "ssp_cert", "wsgi_server"]
