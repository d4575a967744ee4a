"""The provider hop: kept-alive mutual-TLS connections, the provider's certificate
checked before a byte of the request is sent, HTTP/1.1 by h11, the response streamed
back. Imported only when an SSP runs (it needs anyio and h11, which come with anycorn).

Per provider (by ASID) a small pool of idle connections is kept, at most
``max_idle_connections``, each for at most ``idle_timeout`` seconds. A connection is
opened with the SSP's client context (``spinepki.tls.client_context``: the Spine policy,
the SSP's certificate, OpenSSL checking the chain and the host name); then the provider's
certificate is validated by a :class:`~spinepki.validation.ClientCertValidator` with
``Purpose.SERVER`` and the provider's registered FQDN (revocation included). Only then is
the request written. A kept-alive connection the provider closed meanwhile is detected
when nothing at all comes back, and the request is retried once on a new connection.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import h11
from anyio.streams.tls import TLSAttribute, TLSStream

from spinepki.ssp._config import ForwardingLimits, ProviderSystem
from spinepki.ssp._headers import response_headers
from spinepki.ssp._outcome import SSPError, SSPRefusal, echo
from spinepki.ssp._route import Route
from spinepki.validation import ClientCertValidator

__all__ = ["HopResult", "ProviderHop"]

_log = logging.getLogger("spinepki.ssp")

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: Bytes asked for per read (the body is streamed in pieces of at most this).
READ_SIZE = 65536
#: How long closing a provider connection may take.
_CLOSE_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True)
class HopResult:
    """What happened on the provider hop."""

    status: int
    """The provider's status, or the 502/504 the SSP answered."""
    refusal: SSPRefusal | None
    """The SSP's own answer when the provider gave none (502/504); None otherwise."""
    sent: bool
    """The request was written to the provider (False: refused before, e.g. for its
    certificate, or the connection failed)."""
    complete: bool
    """The response reached the consumer in full."""
    detail: str
    """Why, in fixed words (for the audit trail)."""
    elapsed: float
    """Seconds from taking a connection to the end of the response."""


class _Failure(Exception):
    """The hop failed before a response started: answered 502 or 504."""

    def __init__(self, error: SSPError, detail: str, *, sent: bool = False) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail
        self.sent = sent


class _Stale(Exception):
    """The connection turned out closed before any response byte (a kept-alive one the
    provider closed while it was idle, typically)."""

    def __init__(self, *, sent: bool) -> None:
        super().__init__("closed")
        self.sent = sent


class _Connection:
    __slots__ = ("h11", "idle_since", "stream")

    def __init__(self, stream: anyio.abc.ByteStream, max_head: int) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_head)
        self.idle_since = 0.0

    async def aclose(self) -> None:
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            with contextlib.suppress(Exception):
                await self.stream.aclose()


class ProviderHop:
    """Connections to the providers, and one request forwarded at a time per connection.

    Lives on the event loop of the SSP's server; not thread-safe (it needs no lock: the
    pools are touched only from that loop).

    Args:
        context: the SSP's client context (its certificate, the Spine policy, the trust).
        validators: per provider ASID, the validator of its server certificate.
        limits: timeouts and pool sizes.
        clock: the validation time of provider certificates.
    """

    def __init__(
        self,
        context: ssl.SSLContext,
        validators: dict[str, ClientCertValidator],
        limits: ForwardingLimits,
        clock: Callable[[], datetime],
    ) -> None:
        self._context = context
        self._validators = validators
        self._limits = limits
        self._clock = clock
        self._idle: dict[str, list[_Connection]] = {}
        self.requests_sent = 0
        """Requests written to a provider so far (counted as soon as they are written)."""

    @property
    def idle_connections(self) -> int:
        """Kept-alive connections waiting for a request, over all providers."""
        return sum(len(v) for v in self._idle.values())

    async def aclose(self) -> None:
        """Close every kept-alive connection."""
        pools, self._idle = self._idle, {}
        for pool in pools.values():
            for conn in pool:
                await conn.aclose()

    async def forward(
        self, route: Route, method: str, headers: list[tuple[bytes, bytes]], body: bytes, send: Send
    ) -> HopResult:
        """Send the request to ``route.provider`` and stream the response to ``send``.

        Never raises for the provider's faults: they become a 502/504 answer (when no
        response has started) or a cut connection (when one has).
        """
        started = time.perf_counter()
        provider = route.provider
        try:
            conn, response = await self._attempt(provider, method, route, headers, body)
        except _Failure as failure:
            return self._failed(route, failure, started)
        complete = await self._relay(conn, response, provider.asid, send)
        return HopResult(
            response.status_code,
            None,
            True,
            complete,
            "answered" if complete else "the provider's response was cut short",
            time.perf_counter() - started,
        )

    async def _attempt(
        self,
        provider: ProviderSystem,
        method: str,
        route: Route,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> tuple[_Connection, h11.Response]:
        """A kept-alive connection if there is one (once more on a new one if it turns out
        closed), else a new connection; the request written and the response head read."""
        conn = await self._take(provider.asid)
        if conn is not None:
            try:
                return conn, await self._exchange(conn, method, route, headers, body)
            except _Stale:
                await conn.aclose()  # the provider closed it while it was idle
            except BaseException:
                await conn.aclose()
                raise
        conn = await self._open(provider)
        try:
            return conn, await self._exchange(conn, method, route, headers, body)
        except _Stale as stale:
            await conn.aclose()
            raise _Failure(
                SSPError.PROVIDER_UNREACHABLE, "the provider closed the connection", sent=stale.sent
            ) from None
        except BaseException:
            await conn.aclose()
            raise

    def _failed(self, route: Route, failure: _Failure, started: float) -> HopResult:
        refusal = SSPRefusal(
            failure.error, f"{failure.error.value}_{echo(route.url)}", failure.detail
        )
        return HopResult(
            refusal.status,
            refusal,
            failure.sent,
            False,
            failure.detail,
            time.perf_counter() - started,
        )

    async def _take(self, asid: str) -> _Connection | None:
        """The most recently used idle connection, unless it idled too long; the pool is a
        stack, so when the top one is too old all below it are too and are closed."""
        pool = self._idle.get(asid)
        if not pool:
            return None
        conn = pool.pop()
        if conn.idle_since >= time.monotonic() - self._limits.idle_timeout:
            return conn
        stale = [conn, *pool]
        pool.clear()
        for old in stale:
            await old.aclose()
        return None

    def _give_back(self, asid: str, conn: _Connection) -> bool:
        pool = self._idle.setdefault(asid, [])
        if len(pool) >= self._limits.max_idle_connections:
            return False
        conn.idle_since = time.monotonic()
        pool.append(conn)
        return True

    async def _open(self, provider: ProviderSystem) -> _Connection:
        host, port = provider.connect_to
        limits = self._limits
        try:
            with anyio.fail_after(limits.connect_timeout):
                tcp = await anyio.connect_tcp(host, port)
                try:
                    tls = await TLSStream.wrap(
                        tcp,
                        hostname=provider.fqdn,
                        ssl_context=self._context,
                        standard_compatible=False,
                    )
                except BaseException:
                    await anyio.aclose_forcefully(tcp)
                    raise
        except TimeoutError:
            raise _Failure(
                SSPError.PROVIDER_TIMEOUT, "connecting to the provider timed out"
            ) from None
        except ssl.SSLError as exc:
            reason = exc.reason or type(exc).__name__
            raise _Failure(
                SSPError.PROVIDER_UNREACHABLE, f"TLS handshake with the provider failed: {reason}"
            ) from None
        except (OSError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
            reason = type(exc).__name__
            raise _Failure(
                SSPError.PROVIDER_UNREACHABLE, f"cannot connect to the provider: {reason}"
            ) from None
        problem = await self._check_certificate(provider.asid, tls)
        if problem is not None:
            with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
                await anyio.aclose_forcefully(tls)
            raise _Failure(SSPError.PROVIDER_UNREACHABLE, problem)
        return _Connection(tls, limits.max_response_head_bytes)

    async def _check_certificate(self, asid: str, tls: TLSStream) -> str | None:
        """Why the provider's certificate is unacceptable, or None when it is good."""
        obj = tls.extra(TLSAttribute.ssl_object)  # noqa: S610 - anyio's typed attributes
        der = obj.getpeercert(binary_form=True)
        if not der:  # pragma: no cover - a TLS 1.2 server always sends one
            return "the provider presented no certificate"
        intermediates: tuple[bytes, ...] = ()
        get_chain = getattr(obj, "get_unverified_chain", None)
        if callable(get_chain):  # Python 3.13+: the chain the provider sent
            sent = get_chain() or []
            intermediates = tuple(
                c if isinstance(c, bytes) else bytes(c.public_bytes()) for c in sent[1:]
            )
        validator = self._validators[asid]
        at = self._clock()
        result = validator.cached(der, intermediates, at=at)
        if result is None:
            # A first sight (or expired evidence) may fetch a CRL or ask OCSP: off the loop.
            result = await anyio.to_thread.run_sync(
                lambda: validator.validate(der, intermediates, at=at)
            )
        if result.valid:
            return None
        codes = ", ".join(str(code) for code in result.codes)
        return f"the provider's certificate is not acceptable: {codes}"

    async def _exchange(
        self,
        conn: _Connection,
        method: str,
        route: Route,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> h11.Response:
        """Write the request and read the response head (bounded by the timeouts)."""
        http = conn.h11
        data = http.send(
            h11.Request(method=method.encode("ascii"), target=route.target, headers=headers)
        )
        if body:
            data = (data or b"") + (http.send(h11.Data(data=body)) or b"")
        data = (data or b"") + (http.send(h11.EndOfMessage()) or b"")
        received = False
        try:
            await conn.stream.send(data)
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, ssl.SSLError):
            raise _Stale(sent=False) from None  # nothing reached the provider
        self.requests_sent += 1
        try:
            with anyio.fail_after(self._limits.response_timeout):
                while True:
                    event = http.next_event()
                    if event is h11.NEED_DATA:
                        try:
                            chunk = await conn.stream.receive(READ_SIZE)
                        except anyio.EndOfStream:
                            chunk = b""
                        if chunk:
                            received = True
                        elif not received:
                            raise _Stale(sent=True)
                        http.receive_data(chunk)
                    elif isinstance(event, h11.Response):
                        return event
                    elif isinstance(event, h11.InformationalResponse):
                        continue  # 100 Continue and the like are the SSP's business only
                    else:  # pragma: no cover - h11 yields nothing else before a Response
                        raise h11.RemoteProtocolError("unexpected event")
        except TimeoutError:
            raise _Failure(
                SSPError.PROVIDER_TIMEOUT, "the provider did not answer in time", sent=True
            ) from None
        except h11.RemoteProtocolError:
            raise _Failure(
                SSPError.PROVIDER_UNREACHABLE,
                "the provider's answer is not a valid HTTP response",
                sent=True,
            ) from None
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, ssl.SSLError):
            if not received:
                raise _Stale(sent=True) from None
            raise _Failure(
                SSPError.PROVIDER_UNREACHABLE, "the connection to the provider broke", sent=True
            ) from None

    async def _relay(
        self, conn: _Connection, response: h11.Response, asid: str, send: Send
    ) -> bool:
        """Stream the response to the consumer; keep the connection when it is reusable."""
        http = conn.h11
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response_headers(response.headers),
            }
        )
        complete = False
        # A piece is held until h11 has looked at what follows it, so the last one goes
        # out with the end of the message (one write fewer per response); before waiting
        # for more from the provider, what is held is sent.
        pending: bytes | None = None
        try:
            with anyio.fail_after(self._limits.response_timeout) as scope:
                while True:
                    event = http.next_event()
                    if event is h11.NEED_DATA:
                        if pending is not None:
                            await send(
                                {"type": "http.response.body", "body": pending, "more_body": True}
                            )
                            pending = None
                        try:
                            chunk = await conn.stream.receive(READ_SIZE)
                        except anyio.EndOfStream:
                            chunk = b""
                        http.receive_data(chunk)
                        # Each read gets the whole timeout: a slow, steady body is fine.
                        scope.deadline = anyio.current_time() + self._limits.response_timeout
                    elif isinstance(event, h11.Data):
                        if pending is not None:
                            await send(
                                {"type": "http.response.body", "body": pending, "more_body": True}
                            )
                        pending = bytes(event.data)
                    elif isinstance(event, h11.EndOfMessage):
                        complete = True
                        break
                    else:  # pragma: no cover - h11 yields nothing else inside a body
                        break
        except Exception as exc:  # after the response started, any failure
            # (the provider's timeout or garbage, the consumer gone) can only cut it short.
            _log.debug("response relay ended early: %s", type(exc).__name__)
            complete = False
        if not complete:
            # Returning without the last body message makes the server cut the consumer's
            # connection: a truncated response is never passed off as a whole one.
            await conn.aclose()
            return False
        # Back in the pool before the consumer has its answer: its next request finds it.
        kept = False
        if http.our_state is h11.DONE and http.their_state is h11.DONE:
            http.start_next_cycle()
            kept = self._give_back(asid, conn)
        if not kept:
            await conn.aclose()
        await send({"type": "http.response.body", "body": pending or b"", "more_body": False})
        return True
