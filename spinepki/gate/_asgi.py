"""Pure ASGI middleware around :class:`RequestGate` (no BaseHTTPMiddleware, no framework).

Example (Starlette)::

    app = Starlette(routes=..., middleware=[Middleware(GateASGIMiddleware, gate=gate)])

Per request: find the peer certificate, ask the gate about everything that needs no
body (certificate, SSP headers, token, scope), and only when that allows the request
buffer the body of POST/PUT/PATCH (bounded) and apply the body rules; audit the final
decision, then either answer with the OperationOutcome or call the app with
``Cache-Control: no-store`` forced onto its response. A request refused before its body
is read is answered at once with ``Connection: close``: a client whose certificate is
refused cannot hold the connection by sending its body slowly.

The certificate checker may block (a CRL download, an OCSP request), so a check that
cannot be answered from the checker's cache runs on a small thread pool the middleware
owns: a slow revocation responder holds up that request only, never the event loop (and
with it every other connection of the worker, TLS handshakes included).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

from spinepki._asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    Unread,
    force_no_store,
    read_body,
)
from spinepki.audit import AuditLogger
from spinepki.errors import CertificateLoadError, ConfigurationError
from spinepki.gate._certsource import CertificateSource, PeerCertificate, TLSExtensionSource
from spinepki.gate._decision import GateDecision
from spinepki.gate._gate import RequestGate

__all__ = ["GateASGIMiddleware"]


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_LIFESPAN_SHUTDOWN = frozenset({"lifespan.shutdown.complete", "lifespan.shutdown.failed"})
_T = TypeVar("_T")
#: Default size of the pool that runs checks which may block (revocation fetches).
DEFAULT_CHECK_THREADS = 8


def _for_request(
    check: Callable[..., _T], scope: Scope, peer: PeerCertificate | None, now: datetime
) -> _T:
    """``check`` (one of the gate's checks) asked about the request in ``scope``: one list
    of what the gate is told, whichever thread or path asks."""
    return check(
        scope["method"],
        scope["path"],
        scope["headers"],
        query=scope.get("query_string"),
        peer_cert=peer.leaf if peer is not None else None,
        peer_chain=peer.intermediates if peer is not None else (),
        now=now,
    )


class GateASGIMiddleware:
    """Gate every HTTP request before it reaches ``app``.

    Lifespan events pass through; websocket connections are refused (GP Connect has
    none). Everything per request lives in locals; the only state is the thread pool for
    checks that may block, started on first use and shut down at lifespan shutdown (or
    by :meth:`close`).

    Where the check runs: without a certificate checker, or when the checker's
    ``cached`` answer is at hand (:class:`~spinepki.gate.CachedCertificateChecker`, as
    ``ClientCertValidator`` is), on the event loop - the SSP presents the same
    certificate again and again, and a thread hop would cost more than the check. Any
    other check (first sight of a certificate, expired evidence, a checker without
    ``cached``) runs on the pool, and is audited there. Under an event loop other than
    asyncio the pool is anyio's, when anyio is installed.
    """

    __slots__ = (
        "_app",
        "_audit",
        "_clock",
        "_gate",
        "_max_body",
        "_may_block",
        "_pool",
        "_pool_lock",
        "_source",
        "_threads",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        gate: RequestGate,
        cert_source: CertificateSource | None = None,
        audit: AuditLogger | None = None,
        clock: Callable[[], datetime] | None = None,
        check_threads: int = DEFAULT_CHECK_THREADS,
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
            check_threads: most checks that may block run at once (the rest queue on
                the pool, without holding the event loop).

        Raises:
            ConfigurationError: ``gate`` is not a RequestGate, or ``check_threads`` is
                not a positive integer.
        """
        if not isinstance(gate, RequestGate):
            raise ConfigurationError("gate must be a RequestGate", source="gate")
        if (
            isinstance(check_threads, bool)
            or not isinstance(check_threads, int)
            or check_threads < 1
        ):
            raise ConfigurationError("must be a positive integer", source="check_threads")
        self._app = app
        self._gate = gate
        self._source: CertificateSource = cert_source or TLSExtensionSource()
        self._audit = audit or AuditLogger()
        self._clock = clock
        self._max_body = gate.config.limits.max_body_bytes
        self._may_block = gate.may_block
        self._threads = check_threads
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def close(self) -> None:
        """Shut the check thread pool down (checks already queued still run and are
        audited). Called at lifespan shutdown; a later request starts a new pool."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    def _executor(self) -> ThreadPoolExecutor:
        pool = self._pool
        if pool is None:
            with self._pool_lock:
                pool = self._pool
                if pool is None:
                    pool = self._pool = ThreadPoolExecutor(
                        max_workers=self._threads, thread_name_prefix="spinepki-gate-check"
                    )
        return pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        # One coroutine per request, no helper coroutines on the allowed path: every
        # await layer costs a frame, and this runs on every request [issue 4 §5].
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": 1008})
            elif scope["type"] == "lifespan":
                await self._app(scope, receive, self._closing_on_shutdown(send))
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
            refusal = gate.certificate_unusable(exc.reason, scope["headers"])
            await self._answer(refusal, method, send, now, close=method in _BODY_METHODS)
            return
        has_body = method in _BODY_METHODS
        # First everything that needs no body: its decision is final (and audited) unless
        # it allows a request whose body is still to be read and judged.
        if not self._may_block:  # no certificate checker: pure CPU, on the loop
            decision = _for_request(gate.check, scope, peer, now)
            audited = False
        else:
            cached = _for_request(gate.check_nonblocking, scope, peer, now)
            if cached is not None:
                decision, audited = cached, False
            else:
                decision = await self._check_off_loop(scope, peer, now, final=not has_body)
                audited = not has_body or not decision.allowed
        body: bytes | None = None
        if has_body and decision.allowed:
            read = await read_body(scope, receive, self._max_body)
            if read is Unread.TOO_LARGE:
                decision = gate.body_too_large(scope["headers"])
            elif read is Unread.INCOMPLETE:
                decision = gate.body_incomplete(scope["headers"])
            else:
                body = read
                decision = gate.check_body(decision, body)
        if not audited:
            self._audit.record(decision, method=method, now=now)
        if not decision.allowed:
            # Refused before (or while) its body was read: close, do not wait for the rest.
            await _send_decision(decision, send, close=has_body and body is None)
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

    async def _check_off_loop(
        self, scope: Scope, peer: PeerCertificate | None, now: datetime, *, final: bool
    ) -> GateDecision:
        """Check on a worker thread (the certificate checker may block); audit there the
        decision when it is ``final`` or a refusal."""
        method = scope["method"]
        check = functools.partial(_for_request, self._gate.check, scope, peer, now)
        audit = self._audit

        def work() -> GateDecision:
            # Audited on the thread: a request cancelled while it waits (the client went
            # away) still leaves the record of the decision that was made.
            decision = check()
            if final or not decision.allowed:
                audit.record(decision, method=method, now=now)
            return decision

        run = contextvars.copy_context().run  # logging filters may read context variables
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): anyio's pool, or here as a last resort
            return await _run_sync_elsewhere(run, work)
        try:
            future = loop.run_in_executor(self._executor(), run, work)
        except RuntimeError:  # the pool was shut down meanwhile: start a new one
            future = loop.run_in_executor(self._executor(), run, work)
        return await future

    def _closing_on_shutdown(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            if message.get("type") in _LIFESPAN_SHUTDOWN:
                self.close()
            await send(message)

        return lifespan_send

    async def _answer(
        self, decision: GateDecision, method: str, send: Send, now: datetime, *, close: bool
    ) -> None:
        self._audit.record(decision, method=method, now=now)
        await _send_decision(decision, send, close=close)


async def _run_sync_elsewhere(
    run: Callable[[Callable[[], GateDecision]], GateDecision], work: Callable[[], GateDecision]
) -> GateDecision:
    try:
        from anyio import to_thread  # noqa: PLC0415 - optional, only off asyncio
    except ImportError:  # pragma: no cover - no asyncio and no anyio: nowhere else to go
        return run(work)
    return await to_thread.run_sync(run, work)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_decision(decision: GateDecision, send: Send, *, close: bool = False) -> None:
    payload = decision.operation_outcome()
    headers = [
        (k.lower().encode("ascii"), v.encode("ascii")) for k, v in decision.response_headers()
    ]
    headers.append((b"content-length", str(len(payload)).encode("ascii")))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": decision.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
