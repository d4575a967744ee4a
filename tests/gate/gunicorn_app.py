"""The Flask app the gunicorn end-to-end test serves, behind ``GateWSGIMiddleware``.

Loaded by gunicorn (``tests.gate.gunicorn_app:app``) in its worker, not collected by pytest. The
peer certificate comes from ``GunicornSocketSource``: gunicorn puts the TLS socket in
``environ["gunicorn.socket"]`` and sets no ``SSL_CLIENT_CERT``, so the source asks the
socket (``getpeercert(True)``, the leaf's DER; gunicorn exposes no intermediates).
"""

from __future__ import annotations

import json
import os

from flask import Flask, Response, request

from spinepki.gate import ClientAuthMode, GateWSGIMiddleware, GunicornSocketSource, RequestGate
from tests.gate._helpers import SerialDenyList, make_config

app = Flask("gate-gunicorn-test")


@app.route("/<path:rest>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def echo(rest: str) -> Response:
    """Echo what arrived, and whether gunicorn set SSL_CLIENT_CERT (it does not)."""
    payload = {
        "method": request.method,
        "path": request.path,
        "ssl_client_cert_in_environ": "SSL_CLIENT_CERT" in request.environ,
        "server_software": request.environ.get("SERVER_SOFTWARE", ""),
    }
    return Response(
        json.dumps(payload),
        content_type="application/fhir+json",
        headers={"Cache-Control": "max-age=60"},  # weaker: the middleware replaces it
    )


_deny = [int(s) for s in os.environ.get("SPINEPKI_GATE_DENY_SERIALS", "").split(",") if s]
_gate = RequestGate(
    make_config(
        client_auth=ClientAuthMode(os.environ.get("SPINEPKI_GATE_CLIENT_AUTH", "http-496")),
        certificate_checker=SerialDenyList(_deny),
    )
)
app.wsgi_app = GateWSGIMiddleware(  # type: ignore[method-assign]
    app.wsgi_app, gate=_gate, cert_source=GunicornSocketSource()
)
