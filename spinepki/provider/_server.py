"""The reference provider's server: anycorn's HTTP/1.1 protocol behind a hardened accept loop.

anycorn (a maintained Hypercorn fork) is used because it is the server that fills the
ASGI TLS extension's ``client_cert_chain``, which the gate needs in ``http-496`` mode.
Its own worker has a handshake timeout and header-size limits but no connection cap, and
it drops the TLS alert of a failed handshake, so this module runs anycorn's per-connection
protocol (``anycorn.tcp_server``) under an accept loop of its own (ADR 0005):

* every accepted connection gets its own task at once; the TLS handshake runs there,
  bounded by ``handshake_timeout``, so a silent client never blocks the accept loop;
* at most ``max_connections`` connections exist at a time, counted from accept, and at
  most ``max_connections_per_source`` from one source address; one over either is closed
  before any TLS work;
* nothing one connection does can stop the server: whatever escapes a connection is
  logged (``provider.connection_failed``) and that connection closed; a TLS error after
  the handshake (a garbage record, a renegotiation attempt) ends only its connection;
* a fatal error of the accept loop itself (the listening socket broken) is logged
  (``provider.failed``) and :meth:`ProviderServer.serve_forever` raises
  :class:`ProviderFailedError`, so ``spinepki serve`` exits non-zero and a supervisor
  restarts it;
* a failed handshake sends its TLS alert (the client learns *why*), then closes;
* after the handshake anycorn's idle timer (``header_timeout``) runs until a request's
  headers are complete. It is not reset by partial data, so a client that trickles a
  header byte at a time is cut at the same deadline as one that sends nothing;
* h11 refuses request heads larger than ``max_header_bytes`` (431); a request body must
  be complete within ``body_timeout`` of its head;
* request heads are held to one reading (``_loop.request_problem``): Content-Length with
  Transfer-Encoding, encoded delimiters in the path, lower-case methods and protocol
  upgrades are refused (400) before the gate, and the connection closed;
* closing sends close_notify but waits at most ``CLOSE_TIMEOUT`` for the peer's;
* every response carries ``Cache-Control: no-store``, including the 400/431 the HTTP
  layer answers by itself (which also get an OperationOutcome), and a request head with
  a bare LF is refused (400) before h11 reads it (``_loop._H11Protocol``);
* the TLS context is read per accepted connection, so :meth:`ProviderServer.reload_trust`
  (or :meth:`~ProviderServer.set_ssl_context`) applies to the next connection; with a
  ``session_lifetime`` the context is renewed that often, which bounds TLS session
  resumption (tickets and IDs alike: a session resumes only in the context that issued
  it), because a resumed session skips the handshake's certificate checks.

Only HTTP/1.1 is offered (no ALPN, no ``Upgrade: h2c``, 505 for other versions): the SSP
speaks HTTP/1.1, and HTTP/2's stream multiplexing would need limits of its own.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import logging
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from spinepki._extras import require_anycorn
from spinepki.errors import ConfigurationError, ProviderFailedError, _summary
from spinepki.provider._config import ProviderLimits

__all__ = ["PROVIDER_FAILED", "ProviderFailedError", "ProviderServer", "ServerStats"]

_log = logging.getLogger("spinepki.provider")
#: Log code (and :attr:`ProviderFailedError.code`) of a server that stopped serving by
#: itself: its accept loop failed.
PROVIDER_FAILED = ProviderFailedError.code

ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class ServerStats:
    """Counters of a running server (a snapshot)."""

    active: int
    """Connections open now (including those still in the handshake)."""
    accepted: int
    """Connections accepted since start."""
    refused_over_cap: int
    """Connections closed at once because ``max_connections`` were open."""
    handshake_timeouts: int
    """Handshakes cut at ``handshake_timeout``."""
    handshake_failures: int
    """Handshakes that failed (protocol, cipher, certificate, plaintext…)."""
    refused_per_source: int = 0
    """Connections closed at once because their source had
    ``max_connections_per_source`` open."""
    tls_errors: int = 0
    """Connections ended by a TLS error after the handshake (garbage or tampered
    records, renegotiation attempts, unexpected alerts)."""
    body_timeouts: int = 0
    """Connections closed because a request body missed ``body_timeout``."""
    connection_errors: int = 0
    """Unexpected exceptions contained in one connection (each logged as
    ``provider.connection_failed``); the server served on."""
    context_renewals: int = 0
    """TLS contexts renewed because ``session_lifetime`` passed."""


class _Counters:
    __slots__ = (
        "accepted",
        "active",
        "body_timeouts",
        "connection_errors",
        "handshake_failures",
        "handshake_timeouts",
        "refused",
        "refused_per_source",
        "renewals",
        "tls_errors",
    )

    def __init__(self) -> None:
        self.active = self.accepted = self.refused = self.refused_per_source = 0
        self.handshake_timeouts = self.handshake_failures = self.tls_errors = 0
        self.body_timeouts = self.connection_errors = self.renewals = 0


class ProviderServer:
    """An ASGI app served over TLS on a hardened anycorn connection loop.

    The socket is bound on construction (so :attr:`url` is known at once); requests are
    served between :meth:`start` and :meth:`stop`, or inside a ``with`` block, from a
    background thread running its own event loop.

    Args:
        app: the ASGI application (normally the gate middleware around the FHIR app).
        ssl_context: the server context (``spinepki.tls.server_context``).
        host: address to bind (loopback by default).
        port: port to bind (0: a free one).
        limits: connection-level limits.
        on_stop: called once after the server has stopped (e.g. to close a
            revocation checker's background refresh).
        reload: what :meth:`reload_trust` does (``create_server`` passes one that
            rebuilds the TLS context and the certificate validator from the config);
            None: :meth:`reload_trust` raises ``ConfigurationError``.
        renew_context: builds a fresh TLS context equal to the current one (same
            credential and trust, no file read); with ``session_lifetime``, called when
            the context in use is that old. None: the context is never renewed, and
            TLS sessions live as long as OpenSSL keeps them (7200 s).
        session_lifetime: seconds (of ``clock`` time) a TLS context is used for new
            connections before it is renewed: the longest a TLS session can be resumed.
        clock: the time ``session_lifetime`` is measured in (default the system clock).

    Raises:
        ConfigurationError: anycorn is not installed, or the address cannot be bound.
    """

    def __init__(
        self,
        app: ASGIApp,
        ssl_context: ssl.SSLContext,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: ProviderLimits | None = None,
        on_stop: Callable[[], None] | None = None,
        reload: Callable[[ProviderServer], None] | None = None,
        renew_context: Callable[[], ssl.SSLContext] | None = None,
        session_lifetime: float | None = None,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        require_anycorn()
        if session_lifetime is not None and (
            isinstance(session_lifetime, bool)
            or not isinstance(session_lifetime, int | float)
            or not session_lifetime > 0
        ):
            raise ConfigurationError(
                "must be a positive number of seconds", source="session_lifetime"
            )
        self._app = app
        self._clock = clock
        self._renew = renew_context if session_lifetime is not None else None
        self._lifetime = dt.timedelta(seconds=session_lifetime or 0)
        self._ctx = ssl_context
        self._ctx_born = clock()
        self._reload = reload
        self._reload_lock = threading.Lock()
        self.limits = limits or ProviderLimits()
        """The limits in force."""
        self._on_stop = on_stop
        self._counters = _Counters()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((host, port))
            sock.listen(self.limits.backlog)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise ConfigurationError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}", source="provider.port"
            ) from exc
        self._sock = sock
        bound = sock.getsockname()
        self.address: tuple[str, int] = (str(bound[0]), int(bound[1]))
        """The bound (host, port)."""
        shown = f"[{bound[0]}]" if family == socket.AF_INET6 else bound[0]
        self.url = f"https://{shown}:{bound[1]}"
        """``https://HOST:PORT`` of this server."""
        self._lock = threading.Lock()
        self._portal_cm: Any = None
        self._portal: Any = None
        self._future: Any = None
        self._stop_event: Any = None
        self._stopped = False
        self._failure: BaseException | None = None

    # -- lifetime --------------------------------------------------------------------

    def start(self) -> ProviderServer:
        """Serve in a background thread; returns once the server accepts connections.

        Raises:
            ConfigurationError: anycorn is not installed.
            Exception: whatever the application's lifespan startup raised.
        """
        require_anycorn()
        import anyio  # noqa: PLC0415 - optional dependency, present with anycorn
        import anyio.from_thread  # noqa: PLC0415

        from spinepki.provider import _loop  # noqa: PLC0415 - imports anycorn

        with self._lock:
            if self._portal is not None or self._stopped:
                return self
            cm = anyio.from_thread.start_blocking_portal("asyncio")
            portal = cm.__enter__()
            try:
                self._stop_event = portal.call(anyio.Event)
                self._future, _ = portal.start_task(
                    partial(
                        _loop.serve,
                        self._app,
                        self._current_context,
                        self._sock,
                        self.limits,
                        self._counters,
                        self._stop_event,
                    ),
                    name="spinepki-provider",
                )
            except BaseException:
                cm.__exit__(None, None, None)
                raise
            self._portal_cm, self._portal = cm, portal
            future = self._future
        # Outside the lock: a future already done runs the callback here, at once.
        future.add_done_callback(self._loop_ended)
        return self

    def _loop_ended(self, future: concurrent.futures.Future[Any]) -> None:
        """The serving task ended: fatal unless :meth:`stop` asked for it."""
        with self._lock:
            if self._stopped:
                return
            failure = future.exception() if not future.cancelled() else None
            self._failure = failure or RuntimeError("the accept loop ended by itself")
        _log.critical(
            "%s: the server stopped serving: %s",
            PROVIDER_FAILED,
            _summary(self._failure),
            extra={"spinepki_code": PROVIDER_FAILED},
            exc_info=failure,
        )

    @property
    def failure(self) -> BaseException | None:
        """Why the server stopped serving by itself (None while it serves, or after a
        requested stop). :meth:`serve_forever` raises it as :class:`ProviderFailedError`."""
        return self._failure

    def stop(self) -> None:
        """Stop accepting, give in-flight requests ``graceful_timeout``, release the port."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            portal, cm, future = self._portal, self._portal_cm, self._future
            self._portal = self._portal_cm = self._future = None
        try:
            if portal is not None:
                if not future.done():
                    portal.call(self._stop_event.set)
                try:
                    future.result(timeout=self.limits.graceful_timeout + 10)
                except Exception:
                    if self._failure is None:  # a failure already logged is not raised twice
                        raise
        finally:
            if cm is not None:
                cm.__exit__(None, None, None)
            with contextlib.suppress(OSError):
                self._sock.close()
            if self._on_stop is not None:
                self._on_stop()

    close = stop

    # -- TLS context -----------------------------------------------------------------

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context new connections are accepted with."""
        return self._ctx

    def _current_context(self) -> ssl.SSLContext:
        """The context for the next connection (renewed when ``session_lifetime`` passed).

        Called on the event loop once per accepted connection. A renewal costs a few
        milliseconds once per ``session_lifetime``; if it fails (e.g. the certificate has
        expired meanwhile) the current context stays and the failure is logged.
        """
        renew = self._renew
        if renew is not None:
            now = self._clock()
            # A clock that went backwards renews too: the age is then unknown.
            if not self._ctx_born <= now < self._ctx_born + self._lifetime:
                try:
                    self._set_context(renew(), now)
                except Exception as exc:
                    self._ctx_born = now  # try again after another lifetime, not per connection
                    _log.error(
                        "provider.context_renewal_failed: keeping the current TLS context: %s",
                        exc,
                        extra={"spinepki_code": "provider.context_renewal_failed"},
                    )
                else:
                    self._counters.renewals += 1
        return self._ctx

    def _set_context(self, ssl_context: ssl.SSLContext, born: dt.datetime) -> None:
        # Two assignments; a connection accepted in between gets either context, both fine.
        self._ctx = ssl_context
        self._ctx_born = born

    def set_ssl_context(self, ssl_context: ssl.SSLContext) -> None:
        """Accept connections from now on with ``ssl_context``.

        Connections already open keep the context they were accepted with (their
        requests still meet the gate). The swap is one attribute assignment, read once
        per accepted connection, so each connection sees either the old or the new one.
        """
        if not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError("ssl_context must be an ssl.SSLContext")
        self._set_context(ssl_context, self._clock())

    def reload_trust(self) -> None:
        """Re-read the trust bundle (and the TLS credential) without a restart.

        For a server built by :func:`~spinepki.provider.create_server`: the trust files,
        certificate and key named in the configuration are read again and a new TLS
        context and a new certificate validator are built; only when both are built are
        they swapped in (validator first, then the context for new connections). On any
        error nothing changes and the error is raised; the server keeps serving.

        Raises:
            ConfigurationError: the server has no reload function (built directly), or
                the key password environment variable is gone.
            CertificateLoadError / KeyLoadError / ServerCredentialError /
                TrustStoreError: the files are unusable now.
        """
        if self._reload is None:
            raise ConfigurationError(
                "this server cannot reload its trust: build it with create_server",
                source="provider.trust",
            )
        with self._reload_lock:  # one reload at a time (e.g. two SIGHUPs)
            self._reload(self)

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def stats(self) -> ServerStats:
        """Current counters."""
        c = self._counters
        return ServerStats(
            active=c.active,
            accepted=c.accepted,
            refused_over_cap=c.refused,
            handshake_timeouts=c.handshake_timeouts,
            handshake_failures=c.handshake_failures,
            refused_per_source=c.refused_per_source,
            tls_errors=c.tls_errors,
            body_timeouts=c.body_timeouts,
            connection_errors=c.connection_errors,
            context_renewals=c.renewals,
        )

    def serve_forever(self, stop: threading.Event | None = None) -> None:
        """Serve until ``stop`` is set or Ctrl-C (KeyboardInterrupt), then stop cleanly.

        Raises:
            ProviderFailedError: the server stopped serving by itself (its accept loop
                failed; already logged as ``provider.failed``).
        """
        self.start()
        stop = stop or threading.Event()
        try:
            # A bounded wait, repeated: the main thread stays responsive to Ctrl-C, and
            # sees a failed loop within a quarter of a second.
            while not stop.wait(0.25) and self._failure is None:
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
        if self._failure is not None:
            raise ProviderFailedError(self._failure)
