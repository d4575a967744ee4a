"""One TLS (or plaintext) connection attempt, reported as a value instead of an exception.

The client side of the test PKI's TLS server (:mod:`spinepki.testpki._tlsserver`), and
how the demo asks each deployment shape whether a caller gets through. Private and
neutral, at the bottom of the layers (docs/architecture.md).
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

__all__ = ["ProbeResult", "probe", "tls_reason"]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What a client saw on one connection attempt."""

    accepted: bool
    """True when the handshake completed and an HTTP response was read."""
    version: str | None = None
    cipher: str | None = None
    response: bytes = b""
    error: str | None = None
    """Why the connection failed (OpenSSL reason or socket error), in short form."""


def tls_reason(exc: BaseException) -> str:
    """OpenSSL's short reason for a TLS failure, or the exception's type and text."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")


def probe(
    address: tuple[str, int],
    context: ssl.SSLContext | None,
    *,
    server_hostname: str | None = None,
    timeout: float = 5.0,
    request: bytes = b"GET / HTTP/1.0\r\n\r\n",
) -> ProbeResult:
    """Connect once, send ``request``, read the response; never raises for TLS failures.

    ``context=None`` sends ``request`` in plaintext (to show plaintext is dropped).
    """
    try:
        with socket.create_connection(address, timeout=timeout) as raw:
            if context is None:
                raw.sendall(request)
                data = _read_all(raw)
                # A TLS server answers plaintext with nothing or a TLS alert, never HTTP.
                served = data.startswith(b"HTTP/")
                return ProbeResult(
                    served, response=data, error=None if served else "plaintext refused"
                )
            with context.wrap_socket(raw, server_hostname=server_hostname) as tls:
                # Read the negotiated parameters before the peer closes the connection.
                version, cipher = tls.version(), tls.cipher()
                tls.sendall(request)
                data = _read_all(tls)
                return ProbeResult(True, version, cipher[0] if cipher else None, data)
    except (ssl.SSLError, OSError) as exc:
        return ProbeResult(False, error=tls_reason(exc))


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ssl.SSLError, ConnectionResetError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
