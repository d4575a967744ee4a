"""A small threaded TLS server for tests, which records what each connection did.

``TLSTestServer`` accepts connections on 127.0.0.1, completes the handshake with the
``SSLContext`` it is given (e.g. from ``server_context``), answers one HTTP/1.0 response
naming the client certificate it saw, and records every connection's outcome so tests
can assert what the *server* observed. The client side, ``probe``, is in
:mod:`spinepki._probe` (the demo uses it too).

Not a production server: the reference provider (a later part of spinepki) is that.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from spinepki._probe import tls_reason

__all__ = ["ConnectionRecord", "LoopbackServer", "TLSTestServer"]

#: How long the server waits for a handshake or request before dropping a connection.
_IO_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """What the server saw on one connection."""

    completed: bool
    """True when the TLS handshake completed."""
    error: str | None
    """OpenSSL's reason when it did not (e.g. ``PEER_DID_NOT_RETURN_A_CERTIFICATE``)."""
    version: str | None
    cipher: str | None
    peer_certificate: bytes | None
    """DER of the client certificate, or None when the client sent none."""


class LoopbackServer:
    """An accept loop on 127.0.0.1 for test servers: subclasses implement :meth:`handle`.

    Binds at construction (``port=0`` picks a free port), serves in a daemon thread inside
    a ``with`` block, and hands each connection to :meth:`handle` on its own thread (or
    inline with ``sequential=True``, to play a naive one-at-a-time server). The accept loop
    polls a stop flag, so leaving the block never waits on a blocked ``accept``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        backlog: int = 128,
        sequential: bool = False,
        name: str = "spinepki-loopback",
    ) -> None:
        self._sock = socket.create_server((host, port), backlog=backlog)
        self._sock.settimeout(0.05)
        self._sequential = sequential
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` the server listens on."""
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting and wait for the accept loop to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:  # pragma: no cover - socket closed under us at shutdown
                return
            if self._sequential:
                self.handle(conn)
            else:
                # Off the accept loop, so one slow client cannot block the others.
                threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        """Serve one accepted connection (and close it)."""
        raise NotImplementedError


class TLSTestServer(LoopbackServer):
    """Threaded TLS server on 127.0.0.1 (``port=0`` picks a free port).

    Use as a context manager; ``records`` lists what each connection did.
    ``respond`` builds the HTTP response from the record (default: a 200 naming the
    client certificate's presence).
    """

    def __init__(
        self,
        context: ssl.SSLContext,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        respond: Callable[[ConnectionRecord], bytes] | None = None,
    ) -> None:
        super().__init__(host=host, port=port, name="spinepki-tls-test")
        self._context = context
        self._respond = respond or _default_response
        self._lock = threading.Condition()
        self._records: list[ConnectionRecord] = []

    @property
    def records(self) -> list[ConnectionRecord]:
        """A copy of the per-connection records so far."""
        with self._lock:
            return list(self._records)

    def handle(self, conn: socket.socket) -> None:
        """Handshake, record what happened, answer one HTTP request."""
        conn.settimeout(_IO_TIMEOUT)
        try:
            tls = self._context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self._record(ConnectionRecord(False, tls_reason(exc), None, None, None))
            conn.close()
            return
        with tls:
            cipher = tls.cipher()
            record = ConnectionRecord(
                True, None, tls.version(), cipher[0] if cipher else None, tls.getpeercert(True)
            )
            self._record(record)
            try:
                tls.recv(4096)
                tls.sendall(self._respond(record))
            except (ssl.SSLError, OSError):  # pragma: no cover - client went away
                pass

    def _record(self, record: ConnectionRecord) -> None:
        with self._lock:
            self._records.append(record)
            self._lock.notify_all()

    def wait_for_records(self, count: int, timeout: float = 5.0) -> list[ConnectionRecord]:
        """Block until at least ``count`` connections were recorded (or ``timeout``).

        The server records a connection in its own thread, which may finish after the
        client has already seen the outcome; tests synchronise here instead of sleeping.
        """
        with self._lock:
            self._lock.wait_for(lambda: len(self._records) >= count, timeout=timeout)
            return list(self._records)


def _default_response(record: ConnectionRecord) -> bytes:
    body = b"client-certificate: " + (b"present" if record.peer_certificate else b"none") + b"\n"
    return (
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\n"
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
