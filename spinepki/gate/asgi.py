"""Pure ASGI middleware around :class:`RequestGate` (no BaseHTTPMiddleware, no framework).

Example (Starlette)::

    app = Starlette(routes=..., middleware=[Middleware(GateASGIMiddleware, gate=gate)])

Per request: find the peer certificate, buffer the body of POST/PUT/PATCH (bounded),
ask the gate, audit the decision, then either answer with the OperationOutcome or
call the app with ``Cache-Control: no-store`` forced onto its response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from datetime import UTC, datetime
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
_NO_STORE_HEADER = (_CACHE_CONTROL, _NO_STORE)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def force_no_store(headers: Iterable[tuple[bytes, bytes]] | Any) -> list[tuple[bytes, bytes]]:
    """Return ``headers`` with exactly one Cache-Control that contains ``no-store``.

    A value that already says ``no-store`` (``no-store, private``) is kept; anything
    weaker (``max-age=60``, ``no-cache``) is replaced [SEC][PT-160]. Always a new list:
    the app's own header list may be reused by it (a module-level response).
    """
    out = list(headers)
    for name, _ in out:
        if name.lower() == _CACHE_CONTROL:
            break
    else:  # the common case: the app set no Cache-Control at all
        out.append(_NO_STORE_HEADER)
        return out
    kept = False
    rewritten: list[tuple[bytes, bytes]] = []
    for name, value in out:
        if name.lower() == _CACHE_CONTROL:
            if not kept and _NO_STORE in value.lower():
                rewritten.append((name, value))
                kept = True
            continue
        rewritten.append((name, value))
    if not kept:
        rewritten.append(_NO_STORE_HEADER)
    return rewritten


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
        # One coroutine per request, no helper coroutines on the allowed path: every
        # await layer costs a frame, and this runs on every request [issue 4 §5].
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": 1008})
            else:
                await self._app(scope, receive, send)
            return
        gate = self._gate
        method = scope["method"]
        # One clock read per request, shared by the decision and its audit event.
        now = self._clock() if self._clock is not None else datetime.now(UTC)
        try:
            peer: PeerCertificate | None = self._source.from_scope(scope)
        except CertificateLoadError as exc:
            await self._answer(gate.certificate_unusable(exc.reason), method, send, now)
            return
        body: bytes | None = None
        if method in _BODY_METHODS:
            body = await self._read_body(scope, receive)
            if body is None:
                await self._answer(gate.body_too_large(), method, send, now)
                return
        decision = gate.check(
            method,
            scope["path"],
            scope["headers"],
            query=scope.get("query_string"),
            body=body,
            peer_cert=peer.leaf if peer is not None else None,
            peer_chain=peer.intermediates if peer is not None else (),
            now=now,
        )
        self._audit.record(decision, method=method, now=now)
        if not decision.allowed:
            await _send_decision(decision, send)
            return
        if body is not None:
            receive = _replay(body, receive)

        # A plain function handing back send's own awaitable: no extra coroutine per
        # message, only the start message is touched.
        def send_no_store(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                message["headers"] = force_no_store(message.get("headers", ()))
            return send(message)

        await self._app(scope, receive, send_no_store)

    async def _answer(self, decision: GateDecision, method: str, send: Send, now: datetime) -> None:
        self._audit.record(decision, method=method, now=now)
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
