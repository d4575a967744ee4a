"""The event-loop side of :class:`~spinepki.provider.ProviderServer` (imports anycorn).

Kept apart so ``import spinepki.provider`` works without the optional ``provider``
extra; :meth:`ProviderServer.start` imports this module. See ``_server.py`` and ADR 0005
for why the accept loop is ours and the HTTP protocol is anycorn's.

Hooks into anycorn (pinned ``>=0.20.1,<0.21`` because they rely on modules it does not
document as public; re-check each of them before raising the pin):

* :class:`_TCPServer` subclasses ``anycorn.tcp_server.TCPServer`` and, when its ``run``
  assigns ``self.protocol = ProtocolWrapper(...)``, puts :class:`_H11Protocol` inside the
  wrapper in place of the ``H11Protocol`` it built (no ALPN is offered, so that is always
  the HTTP/1.1 protocol). Nothing in anycorn is patched globally.
* :class:`_H11Protocol` overrides ``H11Protocol._send_error_response(status_code)`` (the
  400/431 anycorn sends by itself when h11 raises ``RemoteProtocolError``: bare CR, NUL,
  a head over ``max_header_bytes``…), ``stream_send`` (every final response goes out with
  ``Cache-Control: no-store``, including ``HTTPStream``'s own 400/404/500) and
  ``_check_protocol`` (no switch to HTTP/2: ``Upgrade: h2c`` is ignored).
* :class:`_StrictConnection` subclasses ``h11.Connection`` through its public API only
  (``receive_data``, ``next_event``, ``start_next_cycle``, ``trailing_data``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import anycorn
import anyio
import anyio.abc
import h11
from anycorn.lifespan import Lifespan
from anycorn.protocol import ProtocolWrapper
from anycorn.protocol.events import Event as StreamEvent
from anycorn.protocol.events import Response as StreamResponse
from anycorn.protocol.h11 import H11Protocol
from anycorn.tcp_server import TCPServer
from anycorn.typing import AppWrapper, ConnectionState, LifespanState
from anycorn.utils import wrap_app
from anycorn.worker_context import WorkerContext
from anyio.streams.tls import TLSStream

from spinepki.gate import IssueType, SpineCode, render_operation_outcome
from spinepki.gate.asgi import force_no_store
from spinepki.provider._config import ProviderLimits

__all__ = ["serve"]

_log = logging.getLogger("spinepki.provider")
#: How long closing a TLS connection may wait for the peer's close_notify.
CLOSE_TIMEOUT = 1.0
#: How long sending the alert of a failed handshake may take.
ALERT_TIMEOUT = 1.0
#: Pause after a failed accept() (e.g. EMFILE), so the loop does not spin.
ACCEPT_BACKOFF = 0.05

Handler = Callable[[Any], Awaitable[None]]
ContextSource = Callable[[], ssl.SSLContext]


class Counters(Protocol):
    """**Protocol**: the counters the loop updates (owned by the server object)."""

    active: int
    accepted: int
    refused: int
    handshake_timeouts: int
    handshake_failures: int


def anycorn_config(limits: ProviderLimits) -> anycorn.Config:
    """anycorn's configuration for ``limits``."""
    config = anycorn.Config()
    # anycorn's idle timer runs from the start of a connection (and from the end of each
    # response) until a request's headers are complete, and partial data does not reset
    # it (anycorn/protocol/h11.py sends Updated(idle=False) only on a complete h11.Request):
    # that makes it a header deadline as well as the keep-alive limit.
    config.keep_alive_timeout = limits.header_timeout
    # Typed int in anycorn; any number works (it goes to anyio.fail_after).
    config.read_timeout = limits.read_timeout  # type: ignore[assignment]
    config.h11_max_incomplete_size = limits.max_header_bytes
    config.keep_alive_max_requests = limits.keep_alive_max_requests
    config.graceful_timeout = limits.graceful_timeout
    config.wsgi_max_body_size = limits.max_body_bytes
    config.include_server_header = False  # no product banner for scanners
    config.accesslog = None  # an access log would record query strings (NHS numbers)
    config.errorlog = _log
    return config


async def serve(
    app: Any,
    ssl_context: ContextSource,
    sock: socket.socket,
    limits: ProviderLimits,
    counters: Counters,
    stop: anyio.Event,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on the listening ``sock`` until ``stop`` is set.

    ``ssl_context`` is called once per accepted connection, so a context swapped in by
    :meth:`ProviderServer.reload_trust` applies to the next connection.
    """
    config = anycorn_config(limits)
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    context = WorkerContext(None)
    lifespan_state: dict[str, Any] = {}
    lifespan = Lifespan(wrapped, config, lifespan_state)
    async with config.log, anyio.create_task_group() as lifespan_tg:
        await lifespan_tg.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        handler = connection_handler(
            wrapped, config, context, ConnectionState(lifespan_state.copy())
        )
        listener = await anyio.abc.SocketListener.from_socket(sock)
        async with anyio.create_task_group() as connections:
            async with anyio.create_task_group() as accepting:
                accepting.start_soon(
                    _accept_loop, listener, handler, connections, ssl_context, limits, counters
                )
                task_status.started()
                await stop.wait()
                accepting.cancel_scope.cancel()
            await listener.aclose()
            # Idle keep-alive connections close now; busy ones get graceful_timeout.
            await context.terminated.set()
            connections.cancel_scope.deadline = anyio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_tg.cancel_scope.cancel()


async def _accept_loop(
    listener: anyio.abc.SocketListener,
    handler: Handler,
    connections: anyio.abc.TaskGroup,
    contexts: ContextSource,
    limits: ProviderLimits,
    counters: Counters,
) -> None:
    cap = limits.max_connections
    while True:
        try:
            stream = await listener.accept()
        except OSError as exc:  # e.g. EMFILE: keep serving the connections there are
            _log.warning("accept failed: %s", exc)
            await anyio.sleep(ACCEPT_BACKOFF)
            continue
        if counters.active >= cap:
            # Refused before any TLS work: an over-cap connection costs one accept().
            counters.refused += 1
            await anyio.aclose_forcefully(stream)
            continue
        counters.active += 1
        counters.accepted += 1
        connections.start_soon(_connection, stream, handler, contexts(), limits, counters)


async def _connection(
    stream: anyio.abc.SocketStream,
    handler: Handler,
    ctx: ssl.SSLContext,
    limits: ProviderLimits,
    counters: Counters,
) -> None:
    try:
        try:
            with anyio.fail_after(limits.handshake_timeout):
                tls = await _handshake(stream, ctx)
        except TimeoutError:
            counters.handshake_timeouts += 1
            _log.debug("TLS handshake timed out")
            await anyio.aclose_forcefully(stream)
            return
        except (ssl.SSLError, OSError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
            counters.handshake_failures += 1
            _log.debug("TLS handshake failed: %s", _reason(exc))
            await anyio.aclose_forcefully(stream)
            return
        await handler(BoundedClose(tls))
    finally:
        counters.active -= 1


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return type(exc).__name__


async def _handshake(stream: anyio.abc.SocketStream, ctx: ssl.SSLContext) -> TLSStream:
    """The server side of a TLS handshake on ``stream``; a failure's alert is sent.

    anyio's ``TLSStream.wrap`` discards the alert OpenSSL writes when a handshake fails,
    so the client would only see the connection drop. Sending it tells a misconfigured
    client (an old protocol, a wrong certificate) what is wrong, as TLS servers do.
    """
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            if outgoing.pending:
                await stream.send(outgoing.read())
            try:
                incoming.write(await stream.receive())
            except anyio.EndOfStream:
                incoming.write_eof()  # the next do_handshake raises SSLEOFError
        except ssl.SSLError:
            if outgoing.pending:
                with (
                    contextlib.suppress(OSError, anyio.BrokenResourceError),
                    anyio.move_on_after(ALERT_TIMEOUT),
                ):
                    await stream.send(outgoing.read())
            raise
        else:
            if outgoing.pending:
                await stream.send(outgoing.read())
            break
    # The same fields anyio's own TLSStream.wrap fills after its handshake.
    return TLSStream(
        transport_stream=stream,
        standard_compatible=True,
        _ssl_object=obj,
        _read_bio=incoming,
        _write_bio=outgoing,
    )


class BoundedClose(anyio.abc.ByteStream):
    """A TLS stream whose close waits for the peer's close_notify only briefly.

    A standard TLS close sends close_notify and then *reads* until the peer's reply; a
    client that never answers would hold the connection, and its slot, forever.
    """

    def __init__(self, inner: TLSStream) -> None:
        self._inner = inner

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Decrypted bytes from the peer.

        Raises ``ClosedResourceError`` (which anycorn's reader ends on) when the close
        below is reading the peer's close_notify: at shutdown anycorn closes an idle
        connection from another task while its reader waits, and anyio's
        ``BusyResourceError`` would otherwise escape the connection and the server.
        """
        try:
            return await self._inner.receive(max_bytes)
        except anyio.BusyResourceError:
            raise anyio.ClosedResourceError from None

    async def send(self, item: bytes) -> None:
        """Encrypt and send ``item``."""
        await self._inner.send(item)

    async def send_eof(self) -> None:
        """Not supported by TLS streams (anycorn expects and ignores the error)."""
        await self._inner.send_eof()

    async def aclose(self) -> None:
        """Send close_notify, wait up to ``CLOSE_TIMEOUT`` for the reply, then close."""
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True) as scope:
            with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                await self._inner.aclose()
        if scope.cancelled_caught:
            await anyio.aclose_forcefully(self._inner.transport_stream)

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The TLS stream's attributes (ssl_object, raw socket…), which anycorn reads."""
        return self._inner.extra_attributes


# -- HTTP/1.1: anycorn's protocol with our error answers and head checks -------------

_NO_STORE = (b"cache-control", b"no-store")
_FHIR_JSON = (b"content-type", b"application/fhir+json")
#: Diagnostics of the answers the server gives before the gate sees a request. Fixed
#: texts: h11's own messages may quote the request's bytes, which are not echoed.
_DIAGNOSTICS = {
    400: "the request is not well-formed HTTP/1.1",
    431: "the request head is larger than the server accepts",
    505: "only HTTP/1.1 is supported",
}
#: HTTP versions a request line may name (HTTP/1.0 is h11's, and RFC 9112's, floor).
_VERSIONS = frozenset({b"1.0", b"1.1"})


def error_body(status: int) -> bytes:
    """The OperationOutcome (1.x shape, BAD_REQUEST) of an answer the server gives itself."""
    return render_operation_outcome(
        spine_code=SpineCode.BAD_REQUEST,
        issue_code=IssueType.INVALID,
        diagnostics=_DIAGNOSTICS.get(status, "the request could not be processed"),
    )


def connection_handler(
    app: AppWrapper, config: anycorn.Config, context: WorkerContext, state: LifespanState
) -> Handler:
    """``anycorn.tcp_server.tcp_server_handler`` with :class:`_TCPServer`."""

    async def handler(stream: anyio.abc.SocketStream) -> None:
        await _TCPServer(app, config, context, state, stream).run()

    return handler


class _TCPServer(TCPServer):
    """anycorn's per-connection server, speaking HTTP/1.1 through :class:`_H11Protocol`."""

    _wrapper: ProtocolWrapper

    @property
    def protocol(self) -> ProtocolWrapper:
        return self._wrapper

    @protocol.setter
    def protocol(self, wrapper: ProtocolWrapper) -> None:
        # TCPServer.run assigns the wrapper once, before any byte is read.
        if type(wrapper.protocol) is H11Protocol:
            wrapper.protocol = _H11Protocol(
                wrapper.app,
                wrapper.config,
                wrapper.context,
                wrapper.task_group,
                wrapper.state,
                wrapper.client,
                wrapper.server,
                wrapper.send,
                wrapper.tls,
                zero_copy_send=wrapper.zero_copy_send,
            )
        self._wrapper = wrapper


class _H11Protocol(H11Protocol):
    """anycorn's HTTP/1.1 protocol: every final response says ``no-store``, the answers
    it gives itself carry an OperationOutcome, request heads are checked by
    :class:`_StrictConnection`, and there is no switch to HTTP/2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection = _StrictConnection(self.config.h11_max_incomplete_size)

    async def stream_send(self, event: StreamEvent) -> None:
        """Send a stream event; a final response gets ``Cache-Control: no-store``."""
        if isinstance(event, StreamResponse) and event.status_code >= 200:
            event = StreamResponse(
                stream_id=event.stream_id,
                headers=force_no_store(event.headers),
                status_code=event.status_code,
            )
        await super().stream_send(event)

    async def _send_error_response(self, status_code: int) -> None:
        # anycorn's version: a bare status with Content-Length 0 and Connection: close.
        body = error_body(status_code)
        headers = [
            _FHIR_JSON,
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
            _NO_STORE,
            *self.config.response_headers("h11"),
        ]
        await self._send_h11_event(h11.Response(status_code=status_code, headers=headers))
        await self._send_h11_event(h11.Data(data=body))
        await self._send_h11_event(h11.EndOfMessage())

    async def _check_protocol(self, event: h11.Request) -> None:
        # anycorn answers "Upgrade: h2c" with 101 and takes "PRI * HTTP/2.0" as HTTP/2
        # with prior knowledge; this server speaks HTTP/1.1 only (its limits, and the
        # no-store rule above, are HTTP/1.1's). An Upgrade may be ignored (RFC 9110
        # §7.8); the HTTP/2 preface is refused with 505 by _StrictConnection.
        return


class _StrictConnection(h11.Connection):
    """h11's server side, refusing (400) a request head that contains a bare LF, and
    (505) a request line naming an HTTP version other than 1.0 or 1.1.

    h11 (like RFC 9112 §2.2, which allows it) takes a bare LF as a line break. A proxy
    in front that does not would see one header where this server sees two: a framing
    disagreement, the raw material of request smuggling. Each head is scanned as its
    bytes arrive, once (linear in the bytes, however they are split), from the start of
    the head to its blank line; bodies are not scanned (a JSON body may contain LFs).
    """

    def __init__(self, max_incomplete_event_size: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_incomplete_event_size)
        self._scan = _HeadScan()
        self._bare_lf = False

    def receive_data(self, data: bytes) -> None:
        """Add ``data`` to the receive buffer (scanning it while a head is incomplete)."""
        if self._scan.active and not self._scan.feed(data):
            self._bare_lf = True
        super().receive_data(data)

    def next_event(self) -> Any:
        """h11's next event; ``RemoteProtocolError`` for a bare LF or another version."""
        if self._bare_lf:
            raise h11.RemoteProtocolError("bare LF in the request head", error_status_hint=400)
        event = super().next_event()
        if isinstance(event, h11.Request) and event.http_version not in _VERSIONS:
            raise h11.RemoteProtocolError("unsupported HTTP version", error_status_hint=505)
        return event

    def start_next_cycle(self) -> None:
        """Reset for the next request on the connection; scan its buffered start."""
        super().start_next_cycle()
        self._scan = _HeadScan()
        pending, _ = self.trailing_data  # once per request: the pipelined bytes, if any
        if pending and not self._scan.feed(pending):
            self._bare_lf = True


class _HeadScan:
    """Finds a bare LF in a request head fed in pieces; stops at the head's blank line."""

    __slots__ = ("_after_cr", "_line", "active")

    def __init__(self) -> None:
        self.active = True
        self._after_cr = False  # the last byte fed was CR
        self._line = 0  # bytes of the current line fed so far (its CR included)

    def feed(self, data: bytes) -> bool:
        """Scan the next bytes; False at a bare LF (LF not preceded by CR)."""
        if not self.active or not data:
            return True
        start = 0
        while (lf := data.find(b"\n", start)) != -1:
            after_cr = data[lf - 1] == 0x0D if lf else self._after_cr
            if not after_cr:
                return False
            if self._line + lf - start == 1:  # "\r\n" alone: the head's blank line
                self.active = False
                return True
            self._line = 0
            start = lf + 1
        self._line += len(data) - start
        self._after_cr = data[-1] == 0x0D
        return True
