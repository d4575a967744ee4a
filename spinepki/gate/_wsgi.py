"""WSGI middleware around :class:`RequestGate`.

Example (Flask)::

    app.wsgi_app = GateWSGIMiddleware(app.wsgi_app, gate=gate)

Headers come from the environ's ``HTTP_*`` keys. WSGI servers join a repeated header
into one comma-separated value, so duplicates of SSP headers show up as a comma, which
the gate refuses (no SSP header value can hold one).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from spinepki.audit import AuditLogger
from spinepki.errors import CertificateLoadError, ConfigurationError
from spinepki.gate._certsource import (
    CertificateSource,
    EnvironSource,
    FirstOf,
    GunicornSocketSource,
    PeerCertificate,
)
from spinepki.gate._decision import GateDecision
from spinepki.gate._gate import RequestGate

__all__ = ["GateWSGIMiddleware"]

Environ = dict[str, Any]


class StartResponse(Protocol):
    """PEP 3333 ``start_response``."""

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
    ) -> Callable[[bytes], object]:
        """Begin the response."""


WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def environ_headers(environ: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Request headers as (lower-case name, value) pairs, rebuilt from ``HTTP_*`` keys."""
    out: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            out.append((key[5:].replace("_", "-").lower(), value))
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        value = environ.get(key)
        if value:
            out.append((name, value))
    return out


def force_no_store(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return ``headers`` with one Cache-Control that contains ``no-store`` (see ASGI twin)."""
    out: list[tuple[str, str]] = []
    kept = False
    for name, value in headers:
        if name.lower() == "cache-control":
            if not kept and "no-store" in value.lower():
                out.append((name, value))
                kept = True
            continue
        out.append((name, value))
    if not kept:
        out.append(("Cache-Control", "no-store"))
    return out


class GateWSGIMiddleware:
    """Gate every request before it reaches the WSGI ``app``."""

    __slots__ = ("_app", "_audit", "_clock", "_gate", "_max_body", "_source")

    def __init__(
        self,
        app: WSGIApp,
        *,
        gate: RequestGate,
        cert_source: CertificateSource | None = None,
        audit: AuditLogger | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Wrap ``app``.

        Args:
            app: the WSGI application.
            gate: the configured gate.
            cert_source: where the peer certificate comes from (default: ``SSL_CLIENT_CERT``
                in the environ, then gunicorn's TLS socket).
            audit: where decisions are audited (default: the ``spinepki.audit`` logger).
            clock: returns the decision time; None reads the system clock.

        Raises:
            ConfigurationError: ``gate`` is not a RequestGate.
        """
        if not isinstance(gate, RequestGate):
            raise ConfigurationError("gate must be a RequestGate", source="gate")
        self._app = app
        self._gate = gate
        self._source: CertificateSource = cert_source or FirstOf(
            EnvironSource(), GunicornSocketSource()
        )
        self._audit = audit or AuditLogger()
        self._clock = clock
        self._max_body = gate.config.limits.max_body_bytes

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Handle one request."""
        gate = self._gate
        method = environ.get("REQUEST_METHOD", "")
        # One clock read per request, shared by the decision and its audit event.
        now = self._clock() if self._clock is not None else datetime.now(UTC)
        try:
            peer: PeerCertificate | None = self._source.from_environ(environ)
        except CertificateLoadError as exc:
            refusal = gate.certificate_unusable(exc.reason, environ_headers(environ))
            return self._answer(refusal, method, start_response, now)
        # Everything that needs no body first: a request refused on its certificate,
        # headers or token is answered without reading a byte of its body.
        decision = gate.check(
            method,
            _request_path(environ),
            environ_headers(environ),
            query=environ.get("QUERY_STRING"),
            peer_cert=peer.leaf if peer else None,
            peer_chain=peer.intermediates if peer else (),
            now=now,
        )
        if decision.allowed and gate.has_body(method):
            body = self._read_body(environ)
            if body is None:
                decision = gate.body_too_large(environ_headers(environ))
            else:
                environ["wsgi.input"] = io.BytesIO(body)
                environ["CONTENT_LENGTH"] = str(len(body))
                decision = gate.check_body(decision, body)
        self._audit.record(decision, method=method, now=now)
        if not decision.allowed:
            return _respond(decision, start_response)

        def start_no_store(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
        ) -> Callable[[bytes], object]:
            return start_response(status, force_no_store(headers), exc_info)

        return self._app(environ, start_no_store)

    def _answer(
        self, decision: GateDecision, method: str, start_response: StartResponse, now: datetime
    ) -> Iterable[bytes]:
        self._audit.record(decision, method=method, now=now)
        return _respond(decision, start_response)

    def _read_body(self, environ: Environ) -> bytes | None:
        """The body, or None when it is larger than allowed."""
        limit = self._max_body
        stream = environ.get("wsgi.input")
        length = environ.get("CONTENT_LENGTH") or ""
        if length:
            if not length.isdigit() or len(length) > 15 or int(length) > limit:
                return None
            return stream.read(int(length)) if stream is not None else b""
        # No length: read only if the server marks the stream as terminated (chunked);
        # PEP 3333 forbids reading past CONTENT_LENGTH otherwise.
        if stream is None or not environ.get("wsgi.input_terminated"):
            return b""
        data: bytes = stream.read(limit + 1)
        return None if len(data) > limit else data


def _request_path(environ: Mapping[str, Any]) -> bytes | str:
    """SCRIPT_NAME + PATH_INFO, as the raw bytes PEP 3333 smuggles through latin-1."""
    path = f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}"
    try:
        return path.encode("latin-1")
    except UnicodeEncodeError:  # a server that already decoded UTF-8
        return path


def _respond(decision: GateDecision, start_response: StartResponse) -> list[bytes]:
    payload = decision.operation_outcome()
    headers = [*decision.response_headers(), ("Content-Length", str(len(payload)))]
    start_response(decision.status_line, headers)
    return [payload]
