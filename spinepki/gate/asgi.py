"""Pure ASGI middleware around :class:`RequestGate` (no BaseHTTPMiddleware, no framework).

Example (Starlette)::

    app = Starlette(routes=..., middleware=[Middleware(GateASGIMiddleware, gate=gate)])

Per request: find the peer certificate, buffer the body of POST/PUT/PATCH (bounded),
ask the gate, audit the decision, then either answer with the OperationOutcome or
call the app with ``Cache-Control: no-store`` forced onto its response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any

from spinepki.audit import AuditLogger
from spinepki.errors import CertificateLoadError, ConfigurationError
from spinepki.gate._decision import GateDecision
from spinepki.gate._gate import RequestGate
from spinepki.gate.certsource import CertificateSource, PeerCertificate, TLSExtensionSource

__all__ = ["GateASGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_NO_STORE = b"no-store"
_CACHE_CONTROL = b"cache-control"


def force_no_store(headers: list[tuple[bytes, bytes]] | Any) -> list[tuple[bytes, bytes]]:
    """Return ``headers`` with exactly one Cache-Control that contains ``no-store``.

    A value that already says ``no-store`` (``no-store, private``) is kept; anything
    weaker (``max-age=60``, ``no-cache``) is replaced [SEC][PT-160].
    """
    out: list[tuple[bytes, bytes]] = []
    kept = False
    for name, value in headers:
        if name.lower() == _CACHE_CONTROL:
            if not kept and _NO_STORE in value.lower():
                out.append((name, value))
                kept = True
            continue
        out.append((name, value))
    if not kept:
        out.append((_CACHE_CONTROL, _NO_STORE))
    return out


class GateASGIMiddleware:
    """Gate every HTTP request before it reaches ``app``.

    Lifespan events pass through; websocket connections are refused (GP Connect has
    none). The middleware is stateless: everything per request lives in locals.
    """

    __slots__ = ("_app", "_audit", "_clock", "_gate", "_max_body", "_source")

    def __init__(
        self,
        app: ASGIApp,
        *,
        gate: RequestGate,
        cert_source: CertificateSource | None = None,
        audit: AuditLogger | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Wrap ``app``.

        Args:
            app: the ASGI application.
            gate: the configured gate.
            cert_source: where the peer certificate comes from (default: the ASGI TLS
                extension).
            audit: where decisions are audited (default: the ``spinepki.audit`` logger).
                Audit cannot be switched off [NFR].
            clock: returns the decision time; None reads the system clock.

        Raises:
            ConfigurationError: ``gate`` is not a RequestGate.
        """
        if not isinstance(gate, RequestGate):
            raise ConfigurationError("gate must be a RequestGate", source="gate")
        self._app = app
        self._gate = gate
        self._source: CertificateSource = cert_source or TLSExtensionSource()
        self._audit = audit or AuditLogger()
        self._clock = clock
        self._max_body = gate.config.limits.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
        else:
            await self._app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate = self._gate
        method = scope["method"]
        now = self._clock() if self._clock is not None else None
        try:
            peer: PeerCertificate | None = self._source.from_scope(scope)
        except CertificateLoadError as exc:
            await self._answer(gate.certificate_unusable(exc.reason), method, send)
            return
        body: bytes | None = None
        if gate.has_body(method):
            body = await self._read_body(scope, receive)
            if body is None:
                await self._answer(gate.body_too_large(), method, send)
                return
        decision = gate.check(
            method,
            scope["path"],
            scope["headers"],
            query=scope.get("query_string"),
            body=body,
            peer_cert=peer.leaf if peer else None,
            peer_chain=peer.intermediates if peer else (),
            now=now,
        )
        self._audit.record(decision, method=method, now=now)
        if not decision.allowed:
            await _send_decision(decision, send)
            return
        if body is not None:
            receive = _replay(body, receive)

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = force_no_store(message.get("headers", ()))
            await send(message)

        await self._app(scope, receive, send_no_store)

    async def _answer(self, decision: GateDecision, method: str, send: Send) -> None:
        self._audit.record(decision, method=method)
        await _send_decision(decision, send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None when it is larger than allowed (read no further)."""
        limit = self._max_body
        for name, value in scope["headers"]:
            # A declared length over the limit is refused before reading a byte.
            if name.lower() == b"content-length" and (
                not value.isdigit() or len(value) > 15 or int(value) > limit
            ):
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_decision(decision: GateDecision, send: Send) -> None:
    payload = decision.operation_outcome()
    headers = [
        (k.lower().encode("ascii"), v.encode("ascii")) for k, v in decision.response_headers()
    ]
    headers.append((b"content-length", str(len(payload)).encode("ascii")))
    await send({"type": "http.response.start", "status": decision.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
