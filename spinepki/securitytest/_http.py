"""Raw HTTP/1.1 over TLS: the suite writes every byte itself, so nothing is sanitised.

A client library would refuse a CR in a header value, normalise ``/../`` or re-encode
``%2e``; the probes need the bytes on the wire exactly as written. Each exchange opens
its own connection, sends ``Connection: close`` requests, and reads a bounded response
within a deadline.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, replace

__all__ = ["MAX_RESPONSE_BYTES", "Client", "Response", "parse_response"]

#: The most bytes read from one connection.
MAX_RESPONSE_BYTES = 1024 * 1024
#: How long to keep reading after a complete response, to see a second (split) one.
SPLIT_GRACE = 0.2


@dataclass(frozen=True, slots=True)
class Response:
    """What came back on one connection."""

    outcome: str
    """``answered``, ``closed`` (closed without a response), ``timeout`` or ``error``."""
    status: int | None = None
    """The HTTP status of the first response."""
    status_line: str = ""
    """Its status line."""
    headers: tuple[tuple[str, str], ...] = ()
    """Its headers, in order."""
    head: bytes = b""
    """Its raw head (status line and headers)."""
    body: bytes = b""
    """Its body (de-chunked)."""
    trailing: bytes = b""
    """Bytes after the first complete response: a second response means a split."""
    error: str | None = None
    """Why there is no response (the TLS or socket error), when there is none."""
    elapsed: float = 0.0
    """Seconds from connect to the end of reading."""

    def header(self, name: str) -> str | None:
        """All values of header ``name`` joined with ``, `` (None when absent)."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    @property
    def answered(self) -> bool:
        """True when an HTTP response came back."""
        return self.status is not None

    @property
    def text(self) -> str:
        """Head and body as text (ISO 8859-1, so every byte maps to a character)."""
        return (self.head + b"\r\n\r\n" + self.body).decode("iso-8859-1")

    @property
    def split(self) -> bool:
        """True when a second HTTP response followed the first on the connection."""
        return self.trailing.lstrip(b"\r\n").startswith(b"HTTP/")


def _chunked(data: bytes) -> tuple[bytes, int] | None:
    """De-chunk ``data``; (body, bytes consumed) or None while incomplete."""
    body = b""
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        size_text = data[pos:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return body, len(data)  # malformed: take what there is
        pos = end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n\r\n", pos - 2)
            if trailer_end < 0:
                return None
            return body, trailer_end + 4
        if len(data) < pos + size + 2:
            return None
        body += data[pos : pos + size]
        pos += size + 2


def parse_response(data: bytes, *, eof: bool, head_request: bool = False) -> Response | None:
    """Parse the first HTTP response in ``data``; None while it is incomplete.

    At ``eof`` whatever arrived is parsed (a body without a length ends at EOF).
    Returns a response with outcome ``error`` when the bytes are not HTTP.
    """
    if not data.startswith(b"HTTP/"):
        if data and (eof or len(data) >= 5):
            return Response("error", error=f"{len(data)} non-HTTP byte(s) came back")
        return None
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        if eof:
            return Response("error", error="the response head was cut off")
        return None
    head = data[:head_end]
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers = tuple(
        (k.strip(), v.strip()) for k, sep, v in (ln.partition(":") for ln in lines[1:]) if sep
    )
    rest = data[head_end + 4 :]
    names = {k.lower(): v for k, v in headers}
    if head_request or status is None or status < 200 or status in (204, 304):
        body, consumed = b"", 0
    elif "chunked" in names.get("transfer-encoding", "").lower():
        got = _chunked(rest)
        if got is None:
            if not eof:
                return None
            got = (rest, len(rest))
        body, consumed = got
    elif names.get("content-length", "").isdigit():
        length = int(names["content-length"])
        if len(rest) < length and not eof:
            return None
        body, consumed = rest[:length], min(length, len(rest))
    else:
        if not eof:
            return None
        body, consumed = rest, len(rest)
    return Response(
        "answered",
        status=status,
        status_line=lines[0],
        headers=headers,
        head=head,
        body=body,
        trailing=rest[consumed:],
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__


class Client:
    """Opens TLS connections to one address with one client context."""

    def __init__(
        self,
        address: tuple[str, int],
        context: ssl.SSLContext,
        *,
        server_name: str | None,
        timeout: float,
        source: str | None = None,
    ) -> None:
        self.address = address
        self.context = context
        self.server_name = server_name
        self.timeout = timeout
        self.source = source
        """The local address connections are made from (None: the system's choice)."""

    def with_context(self, context: ssl.SSLContext) -> Client:
        """The same target with another client context (another credential)."""
        return Client(
            self.address,
            context,
            server_name=self.server_name,
            timeout=self.timeout,
            source=self.source,
        )

    def from_source(self, source: str) -> Client:
        """The same target and credential, connecting from the local address ``source``."""
        return Client(
            self.address,
            self.context,
            server_name=self.server_name,
            timeout=self.timeout,
            source=source,
        )

    def tcp(self, timeout: float | None = None) -> socket.socket:
        """A plain TCP connection (no TLS).

        Raises:
            OSError: the connection could not be opened.
        """
        bind = (self.source, 0) if self.source is not None else None
        return socket.create_connection(
            self.address, timeout=timeout or self.timeout, source_address=bind
        )

    def connect(
        self, timeout: float | None = None, session: ssl.SSLSession | None = None
    ) -> ssl.SSLSocket:
        """A TLS connection with the handshake done (resuming ``session`` if given).

        Raises:
            OSError: (including ``ssl.SSLError``) the connection or handshake failed.
        """
        raw = self.tcp(timeout)
        try:
            return self.context.wrap_socket(raw, server_hostname=self.server_name, session=session)
        except BaseException:
            raw.close()
            raise

    def exchange(self, request: bytes, *, timeout: float | None = None) -> Response:
        """Send ``request`` on a new connection and read the response (never raises)."""
        limit = timeout or self.timeout
        started = time.monotonic()
        deadline = started + limit
        try:
            tls = self.connect(limit)
        except OSError as exc:
            return Response(
                "error",
                error=f"connect/handshake failed: {_reason(exc)}",
                elapsed=time.monotonic() - started,
            )
        head_request = request.startswith(b"HEAD ")
        data = b""
        outcome: Response | None = None
        error: str | None = None
        with tls:
            try:
                tls.sendall(request)
            except OSError as exc:
                error = _reason(exc)  # e.g. the server closed on an oversized head; read on
            timed_out = False
            while len(data) < MAX_RESPONSE_BYTES:
                complete = parse_response(data, eof=False, head_request=head_request)
                remaining = deadline - time.monotonic()
                if complete is not None:
                    # Linger briefly for a second response (a split), then stop.
                    remaining = min(remaining, SPLIT_GRACE)
                if remaining <= 0:
                    timed_out = complete is None
                    break
                tls.settimeout(remaining)
                try:
                    chunk = tls.recv(65536)
                except TimeoutError:
                    timed_out = complete is None
                    break
                except OSError as exc:
                    error = error or _reason(exc)
                    break
                if not chunk:
                    break
                data += chunk
            outcome = parse_response(data, eof=True, head_request=head_request)
        elapsed = time.monotonic() - started
        if outcome is not None:  # a response, or bytes that are not HTTP
            return replace(outcome, elapsed=elapsed)
        if timed_out:
            return Response("timeout", error=f"no answer within {limit:g} s", elapsed=elapsed)
        return Response("closed", error=error or "closed without a response", elapsed=elapsed)
