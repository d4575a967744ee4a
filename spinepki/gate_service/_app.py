"""The WSGI application behind ``spinepki gate serve``: nginx's auth_request target.

Endpoints (all answers carry ``Cache-Control: no-store``):

``/check``
    nginx's ``auth_request`` subrequest. 204 when the gate allows the request; **403**
    for every refusal, because auth_request turns any status but 2xx/401/403 into a
    500. The refusal's real status is in ``X-Spinepki-Status`` and the decision time in
    ``X-Spinepki-Decision-Time``.
``/explain``
    nginx asks again from its ``error_page 403`` named location, passing the decision
    time back: the gate re-decides at that same instant and answers with the real status
    (400/422/495/496) and the OperationOutcome. It never answers 2xx.
``/healthz``
    200 ``ok`` (for readiness probes).

Only peers inside ``trusted_proxies`` are served; others get 403.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes

from spinepki._listen import address_in
from spinepki.audit import AuditLogger
from spinepki.errors import CertificateLoadError
from spinepki.gate import (
    GateDecision,
    PeerCertificate,
    ProxyCertFormat,
    ProxyHeaderSource,
    RequestGate,
)
from spinepki.gate_service._config import GateServiceConfig
from spinepki.serverconfig import (
    GATE_DECISION_TIME_HEADER,
    GATE_METHOD_HEADER,
    GATE_STATUS_HEADER,
    GATE_URI_HEADER,
    static_outcome,
)

__all__ = ["GateService"]

_log = logging.getLogger("spinepki.gate_service")

#: How far a decision time passed back by the proxy may be from the clock.
_MAX_TIME_DRIFT = timedelta(seconds=60)
#: The longest X-Original-URI accepted (the gate's own path and query limits are lower).
_MAX_URI = 16384


class StartResponse(Protocol):
    """PEP 3333 ``start_response``."""

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
    ) -> Callable[[bytes], object]:
        """Begin the response."""


def _environ_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


_NO_STORE = ("Cache-Control", "no-store")


class GateService:
    """A WSGI app answering nginx's auth_request subrequests with the request gate.

    Stateless per request and thread-safe (the gate, the validator and its caches are).
    """

    __slots__ = (
        "_audit",
        "_clock",
        "_decode",
        "_gate",
        "_networks",
        "_own_keys",
        "_source",
    )

    def __init__(
        self,
        config: GateServiceConfig,
        *,
        audit: AuditLogger | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Build the gate once.

        Args:
            config: the service configuration.
            audit: where decisions are audited (default the ``spinepki.audit`` logger).
            clock: the decision clock (default the system clock, UTC).
        """
        self._gate = RequestGate(config.gate)
        self._source = ProxyHeaderSource(
            config.cert_header, config.trusted_proxies, ProxyCertFormat.NGINX_ESCAPED
        )
        self._networks = tuple(
            ipaddress.ip_network(a, strict=False) for a in config.trusted_proxies
        )
        self._audit = audit or AuditLogger()
        self._clock = clock or (lambda: datetime.now(UTC))
        # The proxy's own headers are not request headers: the gate never sees them.
        self._own_keys = frozenset(
            _environ_key(h)
            for h in (
                config.cert_header,
                GATE_METHOD_HEADER,
                GATE_URI_HEADER,
                GATE_DECISION_TIME_HEADER,
            )
        )
        # The SSP presents the same certificate on every request: parse each distinct
        # header value once (bounded; the header was already found trusted).
        cert_key = _environ_key(config.cert_header)
        source = self._source

        @functools.lru_cache(maxsize=64)
        def decode(value: str, peer: str) -> PeerCertificate | None:
            return source.from_environ({cert_key: value, "REMOTE_ADDR": peer})

        self._decode: Callable[[str, str], PeerCertificate | None] = decode

    @property
    def gate(self) -> RequestGate:
        """The request gate this service runs."""
        return self._gate

    def _trusted(self, address: object) -> bool:
        return address_in(address, self._networks)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Handle one request from the proxy."""
        path = environ.get("PATH_INFO", "")
        peer = environ.get("REMOTE_ADDR")
        if not self._trusted(peer):
            _log.warning("refused a gate call from untrusted peer %s", peer)
            return _plain(start_response, "403 Forbidden", b"forbidden\n")
        if path == "/check":
            return self._check(environ, start_response, explain=False)
        if path == "/explain":
            return self._check(environ, start_response, explain=True)
        if path == "/healthz":
            return _plain(start_response, "200 OK", b"ok\n")
        return _plain(start_response, "404 Not Found", b"not found\n")

    def _now(self, environ: Mapping[str, Any], *, explain: bool) -> datetime:
        now = self._clock()
        if not explain:
            return now
        text = environ.get(_environ_key(GATE_DECISION_TIME_HEADER))
        try:
            pinned = datetime.fromtimestamp(float(text), UTC) if text else None
        except (ValueError, OverflowError, OSError):
            pinned = None
        # The time only makes the second decision repeat the first; a value far from the
        # clock is ignored (and could only ever refuse: /explain never allows).
        if pinned is not None and abs(pinned - now) <= _MAX_TIME_DRIFT:
            return pinned
        return now

    def _decide(self, environ: Mapping[str, Any], now: datetime) -> GateDecision | None:
        method = environ.get(_environ_key(GATE_METHOD_HEADER))
        uri = environ.get(_environ_key(GATE_URI_HEADER))
        if not method or not uri or len(uri) > _MAX_URI:
            return None
        raw_path, question, raw_query = uri.partition("?")
        gate = self._gate
        cert_value = environ.get(_environ_key(self._source.header))
        try:
            peer = self._decode(cert_value, environ["REMOTE_ADDR"]) if cert_value else None
        except CertificateLoadError as exc:
            return gate.certificate_unusable(exc.reason)
        own = self._own_keys
        headers = [
            (key[5:].replace("_", "-").lower(), value)
            for key, value in environ.items()
            if key.startswith("HTTP_") and key not in own
        ]
        return gate.check(
            method,
            # The path exactly as the client sent it ($request_uri), percent-decoded the way
            # ASGI servers decode scope["path"]; bytes, so bad UTF-8 is the gate's 400.
            unquote_to_bytes(raw_path),
            headers,
            query=raw_query if question else None,
            body=None,  # auth_request has no body: the two body rules need the app
            peer_cert=peer.leaf if peer is not None else None,
            peer_chain=peer.intermediates if peer is not None else (),
            now=now,
        )

    def _check(
        self, environ: dict[str, Any], start_response: StartResponse, *, explain: bool
    ) -> Iterable[bytes]:
        now = self._now(environ, explain=explain)
        decision = self._decide(environ, now)
        if decision is None:
            _log.error(
                "the proxy sent no %s/%s header (or an oversized one): check the nginx "
                "configuration",
                GATE_METHOD_HEADER,
                GATE_URI_HEADER,
            )
            return _outcome_500(start_response)
        method = environ.get(_environ_key(GATE_METHOD_HEADER))
        if not explain:
            self._audit.record(decision, method=method, now=now)
            if decision.allowed:
                start_response("204 No Content", [_NO_STORE, (GATE_STATUS_HEADER, "200")])
                return []
            start_response(
                "403 Forbidden",
                [
                    _NO_STORE,
                    (GATE_STATUS_HEADER, str(decision.status)),
                    (GATE_DECISION_TIME_HEADER, f"{now.timestamp():.6f}"),
                    ("Content-Length", "0"),
                ],
            )
            return []
        if decision.allowed:
            # Allowed now but refused at /check: nothing should change between the two at
            # the same decision time, so this is a fault. Fail closed.
            _log.error("the gate allowed at /explain what it refused at /check; refusing")
            return _outcome_500(start_response)
        body = decision.operation_outcome()
        headers = [*decision.response_headers(), ("Content-Length", str(len(body)))]
        start_response(decision.status_line, headers)
        return [body]


def _plain(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    start_response(
        status,
        [_NO_STORE, ("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _outcome_500(start_response: StartResponse) -> list[bytes]:
    body = static_outcome(500).encode("ascii")
    start_response(
        "500 Internal Server Error",
        [
            _NO_STORE,
            ("Content-Type", "application/fhir+json"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]
