"""The event-loop side of :class:`~spinepki.provider.ProviderServer` (imports anycorn).

Kept apart so ``import spinepki.provider`` works without the optional ``provider``
extra; :meth:`ProviderServer.start` imports this module. See ``_server.py`` and ADR 0005
for why the accept loop is ours and the HTTP protocol is anycorn's.
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
from anycorn.lifespan import Lifespan
from anycorn.tcp_server import tcp_server_handler
from anycorn.typing import ConnectionState
from anycorn.utils import wrap_app
from anycorn.worker_context import WorkerContext
from anyio.streams.tls import TLSStream

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
    ssl_context: ssl.SSLContext,
    sock: socket.socket,
    limits: ProviderLimits,
    counters: Counters,
    stop: anyio.Event,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on the listening ``sock`` until ``stop`` is set."""
    config = anycorn_config(limits)
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    context = WorkerContext(None)
    lifespan_state: dict[str, Any] = {}
    lifespan = Lifespan(wrapped, config, lifespan_state)
    async with config.log, anyio.create_task_group() as lifespan_tg:
        await lifespan_tg.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        handler = tcp_server_handler(
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
    ctx: ssl.SSLContext,
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
        connections.start_soon(_connection, stream, handler, ctx, limits, counters)


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
        """Decrypted bytes from the peer."""
        return await self._inner.receive(max_bytes)

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
