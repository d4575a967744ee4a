"""One connection each: a raw hello, a full handshake, a plaintext request, an HTTP request.

Every probe opens its own TCP connection with ``timeout`` on connect and on every read,
reads a bounded number of bytes, and reports what happened as a value instead of raising
(except :class:`OSError` from the TCP connect itself, which the scanner turns into
"could not scan" on the first probe).
"""

from __future__ import annotations

import socket
import ssl
import time
import warnings
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from spinepki.scan._hello import (
    TLS1_3,
    Alert,
    FlightReader,
    HelloParseError,
    ServerHello,
    build_client_hello,
    build_sslv2_client_hello,
    parse_sslv2_server_hello,
)

__all__ = [
    "HandshakeOutcome",
    "HelloOutcome",
    "HttpHead",
    "handshake",
    "hello_probe",
    "parse_http_head",
    "plaintext_probe",
    "scan_context",
    "sslv2_probe",
]

#: The most bytes read for an HTTP response head (status line and headers).
MAX_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class HelloOutcome:
    """The server's answer to one raw ClientHello."""

    server_hello: ServerHello | None
    certificates: tuple[bytes, ...] | None
    alert: Alert | None
    error: str | None
    """Why there is no ServerHello when there is no alert either (closed, timeout…)."""

    @property
    def refusal(self) -> str:
        """Why the server did not answer with a ServerHello, in a few words."""
        if self.alert is not None:
            return f"alert {self.alert.name}"
        return self.error or "no answer"


def _x25519_share() -> bytes:
    return X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _recv(sock: socket.socket, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("timed out")
    sock.settimeout(remaining)
    return sock.recv(16384)


def hello_probe(
    address: tuple[str, int],
    version: int,
    suites: list[int] | tuple[int, ...],
    *,
    server_name: str | None,
    timeout: float,
    want_certificate: bool = False,
) -> HelloOutcome:
    """Send one ClientHello and read the server's ServerHello (and Certificate).

    Raises:
        OSError: the TCP connection could not be opened.
    """
    hello = build_client_hello(
        version,
        suites,
        server_name=server_name,
        key_share=_x25519_share() if version == TLS1_3 else None,
    )
    reader = FlightReader(want_certificate=want_certificate)
    deadline = time.monotonic() + timeout
    with socket.create_connection(address, timeout=timeout) as sock:
        try:
            sock.sendall(hello)
            while not reader.done:
                data = _recv(sock, deadline)
                if not data:
                    reader.stopped = reader.stopped or "connection closed"
                    break
                reader.feed(data)
        except HelloParseError as exc:
            return HelloOutcome(reader.server_hello, reader.certificates, None, f"malformed: {exc}")
        except OSError as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            return HelloOutcome(reader.server_hello, reader.certificates, reader.alert, reason)
    error = None if reader.server_hello else (reader.stopped or "no answer")
    return HelloOutcome(reader.server_hello, reader.certificates, reader.alert, error)


def sslv2_probe(address: tuple[str, int], *, timeout: float) -> tuple[bool, str]:
    """Send an SSLv2 CLIENT-HELLO; ``(accepted, detail)``.

    Raises:
        OSError: the TCP connection could not be opened.
    """
    deadline = time.monotonic() + timeout
    with socket.create_connection(address, timeout=timeout) as sock:
        data = b""
        try:
            sock.sendall(build_sslv2_client_hello())
            # An SSLv2 SERVER-HELLO is at most 2 + 32767 bytes; a TLS server answers
            # with an alert or closes. Read until one of those is clear.
            while len(data) < 2 + 0x7FFF:
                chunk = _recv(sock, deadline)
                if not chunk:
                    break
                data += chunk
                if len(data) >= 2 and data[0] & 0x80:
                    if len(data) >= 2 + (int.from_bytes(data[:2], "big") & 0x7FFF):
                        break
                elif len(data) >= 2:
                    break  # not SSLv2: a TLS record (alert) or garbage
        except OSError as exc:
            if not data:
                return False, "no answer" if isinstance(exc, TimeoutError) else "connection reset"
    try:
        hello = parse_sslv2_server_hello(data)
    except HelloParseError as exc:
        return False, f"malformed SSLv2 answer: {exc}"
    if hello is None:
        return False, "refused" if data else "connection closed"
    if not hello.cipher_specs:
        return False, "SSLv2 SERVER-HELLO without cipher specs"
    return True, f"SSLv2 SERVER-HELLO offering {len(hello.cipher_specs)} cipher kind(s)"


# -- full handshakes with the system OpenSSL ------------------------------------------


def scan_context(
    version: ssl.TLSVersion, *, client_chain: tuple[str, str] | None = None
) -> ssl.SSLContext:
    """A client context that offers every suite this OpenSSL has at exactly ``version``.

    The scanner judges the server, not itself: no verification (the presented chain is
    validated separately), ``@SECLEVEL=0`` so old protocols and weak suites are offered.
    ``client_chain`` is ``(chain_pem_path, key_pem_path)`` written by the caller.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0/1.1; offering them to see if the server accepts is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = version
        ctx.maximum_version = version
    if client_chain is not None:
        ctx.load_cert_chain(client_chain[0], client_chain[1])
    return ctx


@dataclass(frozen=True, slots=True)
class HttpHead:
    """A parsed HTTP response head."""

    status_line: str
    status: int | None
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """All values of header ``name`` joined with ``, `` (None when absent)."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None


def parse_http_head(data: bytes) -> HttpHead | None:
    """The status line and headers of an HTTP/1.x response; None when it is not one."""
    if not data.startswith(b"HTTP/"):
        return None
    head = data.split(b"\r\n\r\n", 1)[0]
    lines = head.decode("iso-8859-1").split("\r\n")
    status_line = lines[0]
    parts = status_line.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers = tuple(
        (k.strip(), v.strip()) for k, sep, v in (ln.partition(":") for ln in lines[1:]) if sep
    )
    return HttpHead(status_line, status, headers)


def _read_head(sock: socket.socket, deadline: float) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < MAX_HEAD_BYTES:
        chunk = _recv(sock, deadline)
        if not chunk:
            break
        data += chunk
    return data


@dataclass(frozen=True, slots=True)
class HandshakeOutcome:
    """One full handshake (and optionally one HTTP request) with the system OpenSSL."""

    completed: bool
    version: str | None
    cipher: str | None
    error: str | None
    """OpenSSL's reason when the handshake (or the request) failed."""
    response: bytes
    """The start of the HTTP response (head), when a request was sent."""
    peer_certificate: bytes | None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__


def handshake(
    address: tuple[str, int],
    ctx: ssl.SSLContext,
    *,
    server_name: str | None,
    timeout: float,
    request: bytes | None = None,
) -> HandshakeOutcome:
    """Connect, complete a handshake, optionally send ``request`` and read the response head.

    Raises:
        OSError: the TCP connection could not be opened.
    """
    deadline = time.monotonic() + timeout
    raw = socket.create_connection(address, timeout=timeout)
    with raw:
        try:
            tls = ctx.wrap_socket(raw, server_hostname=server_name, do_handshake_on_connect=False)
        except (ssl.SSLError, ValueError) as exc:  # pragma: no cover - bad SNI value
            return HandshakeOutcome(False, None, None, _reason(exc), b"", None)
        with tls:
            try:
                tls.do_handshake()
            except OSError as exc:
                return HandshakeOutcome(False, None, None, _reason(exc), b"", None)
            cipher = tls.cipher()
            outcome = HandshakeOutcome(
                True, tls.version(), cipher[0] if cipher else None, None, b"", tls.getpeercert(True)
            )
            if request is None:
                return outcome
            data = b""
            try:
                tls.sendall(request)
                data = _read_head(tls, deadline)
            except OSError as exc:
                if not data:
                    return HandshakeOutcome(
                        True, outcome.version, outcome.cipher, _reason(exc), b"", None
                    )
            return HandshakeOutcome(
                True, outcome.version, outcome.cipher, None, data, outcome.peer_certificate
            )


def plaintext_probe(
    address: tuple[str, int], *, host_header: str, timeout: float
) -> tuple[HttpHead | None, str]:
    """Send ``GET / HTTP/1.1`` in the clear; the HTTP answer if any, and what came back.

    Raises:
        OSError: the TCP connection could not be opened.
    """
    deadline = time.monotonic() + timeout
    request = f"GET / HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(address, timeout=timeout) as sock:
        data = b""
        try:
            sock.sendall(request)
            data = _read_head(sock, deadline)
        except OSError as exc:
            if not data:
                if isinstance(exc, TimeoutError):
                    return None, f"no answer within {timeout:g} s"
                if isinstance(exc, ConnectionResetError):
                    return None, "connection reset"
                return None, f"connection failed ({type(exc).__name__})"
    head = parse_http_head(data)
    if head is not None:
        return head, head.status_line
    if not data:
        return None, "connection closed without an answer"
    if data[0] == 21:  # a TLS alert record
        return None, "answered with a TLS alert"
    return None, f"answered {len(data)} non-HTTP byte(s)"
