"""The event-loop side of :class:`~spinepki.provider.ProviderServer` (imports anycorn).

Kept apart so ``import spinepki.provider`` works without the optional ``provider``
extra; :meth:`ProviderServer.start` imports this module. See ``_server.py`` and ADR 0005
for why the accept loop is ours and the HTTP protocol is anycorn's.

Hooks into anycorn (pinned ``>=0.20.1,<0.21`` because they rely on modules it does not
document as public; re-check each of them before raising the pin):

* :class:`_TCPServer` subclasses ``anycorn.tcp_server.TCPServer`` and, when its ``run``
  assigns ``self.protocol = ProtocolWrapper(...)``, puts :class:`_H11Protocol` inside the
  wrapper in place of the ``H11Protocol`` it built (no ALPN is offered, so that is always
  the HTTP/1.1 protocol); it extends ``_read_data`` to stop ``idle_task`` once reading
  has ended, so a dead connection does not wait for the keep-alive timer. Nothing in
  anycorn is patched globally.
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
import errno
import ipaddress
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
from anycorn.protocol.events import Body as StreamBody
from anycorn.protocol.events import EndBody as StreamEndBody
from anycorn.protocol.events import Event as StreamEvent
from anycorn.protocol.events import Response as StreamResponse
from anycorn.protocol.h11 import H11Protocol
from anycorn.tcp_server import TCPServer
from anycorn.typing import AppWrapper, ConnectionState, LifespanState
from anycorn.utils import wrap_app
from anycorn.worker_context import WorkerContext
from anyio.streams.tls import TLSStream

from spinepki._asgi import force_no_store
from spinepki.gate import IssueType, SpineCode, render_operation_outcome
from spinepki.provider._app import operation_outcome
from spinepki.provider._config import ProviderLimits

__all__ = ["CONNECTION_FAILED", "TLS_ERROR", "serve", "source_key"]

_log = logging.getLogger("spinepki.provider")
#: How long closing a TLS connection may wait for the peer's close_notify.
CLOSE_TIMEOUT = 1.0
#: How long sending the alert of a failed handshake may take.
ALERT_TIMEOUT = 1.0
#: Pause after a failed accept() (e.g. EMFILE), so the loop does not spin.
ACCEPT_BACKOFF = 0.05
#: Log code of an exception that escaped one connection: contained (the connection is
#: closed, the server serves on) but unexpected, so logged at WARNING.
CONNECTION_FAILED = "provider.connection_failed"
#: Log code of a TLS error after the handshake (a garbage or tampered record, a
#: renegotiation attempt, an unexpected alert): the peer's doing, logged at DEBUG.
TLS_ERROR = "provider.tls_error"
#: accept() errors that mean "not now": out of descriptors or buffers, or a connection
#: that failed before it was accepted (Linux hands pending network errors to accept;
#: accept(2) says to retry them). The loop pauses and serves on. Any other error means
#: the listening socket itself is broken, which no retry mends: the loop ends and the
#: server stops loudly (``ProviderServer.serve_forever`` raises ``ProviderFailedError``).
_TRANSIENT_ACCEPT_ERRORS = frozenset(
    {
        errno.EMFILE,
        errno.ENFILE,
        errno.ENOBUFS,
        errno.ENOMEM,
        errno.EAGAIN,
        errno.EINTR,
        errno.ECONNABORTED,
        errno.ECONNRESET,
        errno.EPERM,  # a firewall rule refused the connection
        errno.EPROTO,
        errno.ENOPROTOOPT,
        errno.ENETDOWN,
        errno.ENETUNREACH,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
        errno.EOPNOTSUPP,
        errno.ETIMEDOUT,
    }
)

Handler = Callable[[Any], Awaitable[None]]
ContextSource = Callable[[], ssl.SSLContext]


class Counters(Protocol):
    """**Protocol**: the counters the loop updates (owned by the server object)."""

    active: int
    accepted: int
    refused: int
    refused_per_source: int
    handshake_timeouts: int
    handshake_failures: int
    tls_errors: int
    body_timeouts: int
    connection_errors: int


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
    per_source = min(limits.max_connections_per_source, cap)
    sources: dict[str, int] = {}  # open connections per source; at most `cap` keys
    while True:
        try:
            stream = await listener.accept()
        except OSError as exc:
            if exc.errno not in _TRANSIENT_ACCEPT_ERRORS:
                raise  # the listening socket is broken: fatal, reported by the server
            _log.warning("accept failed: %s", exc)
            await anyio.sleep(ACCEPT_BACKOFF)
            continue
        source = _source_of(stream)
        if counters.active >= cap:
            # Refused before any TLS work: an over-cap connection costs one accept().
            counters.refused += 1
            await anyio.aclose_forcefully(stream)
            continue
        held = sources.get(source, 0)
        if held >= per_source:
            # One source may not take the slots everyone else (the SSP) needs.
            counters.refused_per_source += 1
            await anyio.aclose_forcefully(stream)
            continue
        sources[source] = held + 1
        counters.active += 1
        counters.accepted += 1
        connections.start_soon(
            _connection, stream, handler, contexts(), limits, counters, sources, source
        )


def source_key(host: str) -> str:
    """The key connections are counted under for the per-source limit.

    An IPv4 address is itself (an IPv4-mapped IPv6 address too); an IPv6 address counts
    by its /64, the block one host or site is normally given, so a client cannot walk its
    own /64 to get around the limit. Anything that is not an IP address (a UNIX socket
    path) is used as it is.
    """
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _source_of(stream: anyio.abc.SocketStream) -> str:
    try:
        address = stream.extra(anyio.abc.SocketAttribute.remote_address)  # noqa: S610 - anyio
    except anyio.TypedAttributeLookupError:  # pragma: no cover - TCP streams always have one
        return ""
    return source_key(str(address[0]) if isinstance(address, tuple) else str(address))


async def _connection(
    stream: anyio.abc.SocketStream,
    handler: Handler,
    ctx: ssl.SSLContext,
    limits: ProviderLimits,
    counters: Counters,
    sources: dict[str, int],
    source: str,
) -> None:
    """One connection, from handshake to close, with everything it can raise contained.

    Nothing one connection does may stop the server serving the others (design decision
    7): whatever escapes the handshake or the HTTP protocol (an ``ExceptionGroup`` from
    anycorn's task group included) is logged with :data:`CONNECTION_FAILED`, the
    connection is closed, and the server serves on. Only cancellation (the server
    stopping) passes.
    """
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
        await handler(BoundedClose(tls, limits.body_timeout, counters))
    except Exception as exc:  # the invariant above; cancellation is a BaseException
        counters.connection_errors += 1
        _log.warning(
            "%s: a connection failed (%s); it was closed and the server serves on",
            CONNECTION_FAILED,
            _describe(exc),
            extra={"spinepki_code": CONNECTION_FAILED},
            exc_info=_log.isEnabledFor(logging.DEBUG),
        )
        with contextlib.suppress(Exception):
            await anyio.aclose_forcefully(stream)
    finally:
        counters.active -= 1
        left = sources.pop(source, 1) - 1
        if left > 0:
            sources[source] = left


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return type(exc).__name__


def _describe(exc: BaseException) -> str:
    """What failed, for the log: exception types (and OpenSSL's reason), never messages
    that could quote what the peer sent."""
    if isinstance(exc, BaseExceptionGroup):
        return ", ".join(_describe(inner) for inner in exc.exceptions[:5])
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"{type(exc).__name__} {exc.reason}"
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
    """The TLS stream anycorn reads and writes: bounded close, body deadline, TLS errors.

    * A standard TLS close sends close_notify and then *reads* until the peer's reply; a
      client that never answers would hold the connection, and its slot, forever:
      :meth:`aclose` waits at most ``CLOSE_TIMEOUT``.
    * While a request body is being read (:meth:`start_body` to :meth:`end_body`, told
      by :class:`_StrictConnection`), every read ends at the body's deadline.
    * A TLS error after the handshake (a record that fails its MAC, a renegotiation
      attempt, an unexpected record or alert) ends the connection like a reset: it is
      raised as ``BrokenResourceError``, on which anycorn's reader and writer stop.
      anycorn catches only ``SSLZeroReturnError``; any other ``SSLError`` escaped its
      task group and, before this, the server's (issue 11).
    """

    def __init__(self, inner: TLSStream, body_timeout: float, counters: Counters) -> None:
        self._inner = inner
        self._body_timeout = body_timeout
        self._counters = counters
        self._body_deadline: float | None = None

    def start_body(self) -> None:
        """A request's head is complete and its body follows: start the body deadline."""
        self._body_deadline = anyio.current_time() + self._body_timeout

    def end_body(self) -> None:
        """The request body is complete (or there was none): no deadline."""
        self._body_deadline = None

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Decrypted bytes from the peer.

        Raises ``ClosedResourceError`` (which anycorn's reader ends on) when the close
        below is reading the peer's close_notify: at shutdown anycorn closes an idle
        connection from another task while its reader waits, and anyio's
        ``BusyResourceError`` would otherwise escape the connection and the server.
        ``TimeoutError`` (anycorn's reader ends on it too) when a body misses its
        deadline.
        """
        deadline = self._body_deadline
        try:
            if deadline is None:
                return await self._inner.receive(max_bytes)
            with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                return await self._inner.receive(max_bytes)
        except anyio.BusyResourceError:
            raise anyio.ClosedResourceError from None
        except TimeoutError:
            if deadline is not None and anyio.current_time() >= deadline:
                self._counters.body_timeouts += 1
                _log.debug("request body not complete within %s s", self._body_timeout)
            raise
        except ssl.SSLZeroReturnError:
            raise  # the peer's close_notify: anycorn ends the connection on it
        except ssl.SSLError as exc:
            raise self._tls_error(exc) from exc

    async def send(self, item: bytes) -> None:
        """Encrypt and send ``item``."""
        try:
            await self._inner.send(item)
        except ssl.SSLError as exc:
            raise self._tls_error(exc) from exc

    def _tls_error(self, exc: ssl.SSLError) -> anyio.BrokenResourceError:
        self._counters.tls_errors += 1
        _log.debug("%s: %s", TLS_ERROR, _reason(exc), extra={"spinepki_code": TLS_ERROR})
        return anyio.BrokenResourceError()

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
#: The headers of the answers anycorn's HTTP stream gives by itself (a bare status).
_BARE_ERROR_HEADERS = [(b"content-length", b"0"), (b"connection", b"close")]
#: Diagnostics of the answers the server gives before the gate sees a request. Fixed
#: texts: h11's own messages may quote the request's bytes, which are not echoed.
_DIAGNOSTICS = {
    400: "the request is not well-formed HTTP/1.1",
    431: "the request head is larger than the server accepts",
    500: "the application failed before it answered",
    505: "only HTTP/1.1 is supported",
}
#: HTTP versions a request line may name (HTTP/1.0 is h11's, and RFC 9112's, floor).
_VERSIONS = frozenset({b"1.0", b"1.1"})
_HEX = frozenset(b"0123456789abcdefABCDEF")
#: Bytes a path may not carry percent-encoded: each means something else to a decoder
#: than to a server or proxy that matches the raw path - a segment separator (``/``, and
#: ``\`` for some servers), a dot segment once decoded (``.``), a second round of
#: decoding (``%``), a query, fragment or path parameter (``?``, ``#``, ``;``), controls
#: (NUL cuts C strings) and non-ASCII (overlong UTF-8 forms such as ``%C0%AE``).
_REFUSED_ESCAPES = frozenset([*range(0x20), 0x7F, *range(0x80, 0x100), *b"/\\.%?#;"])

REFUSED_PATH = (
    "the request path holds an encoded delimiter, dot, percent sign, control or non-ASCII byte"
)
MALFORMED_PATH = "the request path holds malformed percent-encoding"
RAW_DELIMITER = "the request target holds a backslash or a fragment"
CL_AND_TE = "Content-Length together with Transfer-Encoding is refused (RFC 9112 section 6.1)"
REPEATED_FRAMING = "a repeated Content-Length or Transfer-Encoding header is refused"
LOWER_CASE_METHOD = "the method name is not upper case (method names are case-sensitive)"
UPGRADE = "protocol upgrades are refused: this server speaks HTTP/1.1 only"


def error_body(status: int, diagnostics: str | None = None) -> bytes:
    """The OperationOutcome (1.x shape) of an answer the server gives itself."""
    text = diagnostics or _DIAGNOSTICS.get(status, "the request could not be processed")
    if status >= 500 and status != 505:
        return operation_outcome(status, "INTERNAL_SERVER_ERROR", "Internal server error", text)
    return render_operation_outcome(
        spine_code=SpineCode.BAD_REQUEST, issue_code=IssueType.INVALID, diagnostics=text
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
            protocol = _H11Protocol(
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
            if isinstance(self.stream, BoundedClose):
                protocol.connection.body_clock = self.stream
            wrapper.protocol = protocol
        self._wrapper = wrapper

    async def _read_data(self) -> None:
        try:
            await super()._read_data()
        finally:
            # Nothing more can be read (the peer closed or reset, a TLS error, a deadline):
            # anycorn would keep the connection, and its slot, until the keep-alive timer
            # fired. A response still being written finishes; then the connection closes.
            await self.idle_task.stop()


class _H11Protocol(H11Protocol):
    """anycorn's HTTP/1.1 protocol: every final response says ``no-store``, the answers
    it gives itself carry an OperationOutcome, request heads are checked by
    :class:`_StrictConnection`, and there is no switch to HTTP/2."""

    connection: _StrictConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection = _StrictConnection(self.config.h11_max_incomplete_size)
        self._outcome: bytes | None = None

    async def stream_send(self, event: StreamEvent) -> None:
        """Send a stream event; a final response gets ``Cache-Control: no-store``, and
        anycorn's own bare error answers (400, 404, 500) an OperationOutcome."""
        if isinstance(event, StreamResponse) and event.status_code >= 200:
            headers: list[tuple[bytes, bytes]] = list(event.headers)
            if event.status_code >= 400 and headers == _BARE_ERROR_HEADERS:
                self._outcome = error_body(event.status_code)
                headers = _outcome_headers(self._outcome)
            event = StreamResponse(
                stream_id=event.stream_id,
                headers=force_no_store(headers),
                status_code=event.status_code,
            )
        elif isinstance(event, StreamEndBody) and self._outcome is not None:
            body, self._outcome = self._outcome, None
            await super().stream_send(StreamBody(stream_id=event.stream_id, data=body))
        await super().stream_send(event)

    async def _send_error_response(self, status_code: int) -> None:
        # anycorn's version: a bare status with Content-Length 0 and Connection: close.
        body = error_body(status_code, self.connection.refusal)
        headers = [*_outcome_headers(body), *self.config.response_headers("h11")]
        await self._send_h11_event(h11.Response(status_code=status_code, headers=headers))
        await self._send_h11_event(h11.Data(data=body))
        await self._send_h11_event(h11.EndOfMessage())

    async def _check_protocol(self, event: h11.Request) -> None:
        # anycorn answers "Upgrade: h2c" with 101 and takes "PRI * HTTP/2.0" as HTTP/2
        # with prior knowledge; this server speaks HTTP/1.1 only (its limits, and the
        # no-store rule above, are HTTP/1.1's). _StrictConnection refuses any Upgrade
        # and the HTTP/2 preface (505) before anycorn sees the request.
        return


def _outcome_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        _FHIR_JSON,
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
        _NO_STORE,
    ]


class _Refused(h11.RemoteProtocolError):
    """A request head this server refuses; ``diagnostics`` is a fixed text."""

    def __init__(self, status: int, diagnostics: str) -> None:
        super().__init__(diagnostics, error_status_hint=status)
        self.diagnostics = diagnostics


def request_problem(request: h11.Request) -> tuple[int, str] | None:
    """Why this server refuses ``request`` before the gate sees it (status, fixed text).

    The rules keep the provider and anything in front of it agreeing on what the request
    is: one framing (RFC 9112 §6.1: Content-Length with Transfer-Encoding is a smuggling
    attempt; a repeated framing header too), one path (no encoded delimiters, see
    :data:`_REFUSED_ESCAPES`), one method (case-sensitive, RFC 9110 §9.1; anycorn would
    upper-case ``get``), and no protocol switch (an ``Upgrade`` refused and the connection
    closed, so no proxy can take it for a tunnel).
    """
    if request.http_version not in _VERSIONS:
        return 505, _DIAGNOSTICS[505]
    if request.method != request.method.upper():
        return 400, LOWER_CASE_METHOD
    lengths = encodings = 0
    for name, _ in request.headers:  # h11 lower-cases the names
        if name == b"content-length":
            lengths += 1
        elif name == b"transfer-encoding":
            encodings += 1
        elif name == b"upgrade":
            return 400, UPGRADE
    if lengths and encodings:
        return 400, CL_AND_TE
    if lengths > 1 or encodings > 1:
        return 400, REPEATED_FRAMING
    return _target_problem(request.target)


def _target_problem(target: bytes) -> tuple[int, str] | None:
    if b"\\" in target or b"#" in target:
        return 400, RAW_DELIMITER
    path = target.partition(b"?")[0]
    index = path.find(b"%")
    while index != -1:
        pair = path[index + 1 : index + 3]
        if len(pair) < 2 or pair[0] not in _HEX or pair[1] not in _HEX:
            return 400, MALFORMED_PATH
        if int(pair, 16) in _REFUSED_ESCAPES:
            return 400, REFUSED_PATH
        index = path.find(b"%", index + 3)
    return None


class _StrictConnection(h11.Connection):
    """h11's server side, refusing a request head that contains a bare LF (400), names
    an HTTP version other than 1.0 or 1.1 (505) or breaks :func:`request_problem`, and
    telling the stream when a request body starts and ends (its deadline).

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
        self.refusal: str | None = None
        """The fixed diagnostics of the last refusal (None: h11's own, see error_body)."""
        self.body_clock: BoundedClose | None = None
        """The stream whose body deadline this connection starts and stops."""

    def receive_data(self, data: bytes) -> None:
        """Add ``data`` to the receive buffer (scanning it while a head is incomplete)."""
        if self._scan.active and not self._scan.feed(data):
            self._bare_lf = True
        super().receive_data(data)

    def next_event(self) -> Any:
        """h11's next event; ``RemoteProtocolError`` for a refused head."""
        if self._bare_lf:
            raise h11.RemoteProtocolError("bare LF in the request head", error_status_hint=400)
        if self.refusal is not None:
            raise _Refused(400, self.refusal)
        event = super().next_event()
        if isinstance(event, h11.Request):
            problem = request_problem(event)
            if problem is not None:
                self.refusal = problem[1]
                raise _Refused(*problem)
            if self.body_clock is not None and self.their_state is h11.SEND_BODY:
                self.body_clock.start_body()
        elif isinstance(event, h11.EndOfMessage) and self.body_clock is not None:
            self.body_clock.end_body()
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
