"""Loopback TLS servers for the security-test tests: a deliberately weak one, and helpers.

``RawTLSServer`` accepts on 127.0.0.1 and hands each TLS connection to ``handler``;
``sequential=True`` serves one connection at a time (so idle or trickling clients block
everyone, as a naive server does). Every wait is bounded by socket timeouts.
"""

from __future__ import annotations

import json
import socket
import ssl
import traceback
from collections.abc import Callable

from spinepki.testpki._tlsserver import LoopbackServer

Handler = Callable[[ssl.SSLSocket], None]


def read_head(sock: socket.socket, limit: int = 1 << 17) -> bytes:
    data = b""
    for _ in range(4096):  # bounded number of reads
        if b"\r\n\r\n" in data or len(data) > limit:
            break
        try:
            chunk = sock.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


class RawTLSServer(LoopbackServer):
    def __init__(
        self,
        context: ssl.SSLContext,
        handler: Handler,
        *,
        sequential: bool = False,
        conn_timeout: float = 3.0,
    ) -> None:
        super().__init__(sequential=sequential)
        self._context = context
        self._handler = handler
        self._conn_timeout = conn_timeout

    @property
    def url(self) -> str:
        host, port = self.address
        return f"https://{host}:{port}"

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(self._conn_timeout)
        with conn:
            try:
                with self._context.wrap_socket(conn, server_side=True) as tls:
                    self._handler(tls)
            except OSError:
                return


def _headers(head: bytes) -> dict[str, str]:
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    out: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        out.setdefault(name.strip().lower(), value.strip())
    return out


def weak_handler(tls: ssl.SSLSocket) -> None:
    """Everything a provider must not do: echoes TRACE, leaks a traceback on a 500, sends
    ``Server: Foo/1.2`` and ``X-Powered-By``, no ``no-store``, accepts any path and token
    for any interaction, opens CORS to any origin and echoes Ssp-TraceID raw."""
    head = read_head(tls)
    if not head:
        return
    method = head.split(b" ", 1)[0]
    headers = _headers(head)
    banner = "Server: Foo/1.2\r\nX-Powered-By: Bar/3.4\r\n"
    if method == b"TRACE":
        body = head
        extra = "Content-Type: message/http\r\n"
        status = "200 OK"
    elif method == b"OPTIONS":
        body = b""
        extra = "Allow: GET, POST, DELETE, TRACE\r\nAccess-Control-Allow-Origin: *\r\n"
        status = "200 OK"
    elif "ssp-interactionid" not in headers or "ssp-from" not in headers:
        try:
            raise KeyError("Ssp-InteractionID")
        except KeyError:
            body = traceback.format_exc().encode()
        extra = "Content-Type: text/plain\r\n"
        status = "500 Internal Server Error"
    else:
        body = json.dumps({"resourceType": "CapabilityStatement"}).encode()
        trace = headers.get("ssp-traceid", "")
        extra = f"Content-Type: application/fhir+json\r\nX-Trace-Echo: {trace}\r\n"
        status = "200 OK"
    response = (
        f"HTTP/1.1 {status}\r\n{banner}{extra}Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1") + body
    tls.sendall(response)


def fixed_handler(response: bytes, *, read: bool = True) -> Handler:
    """Answer every connection with ``response`` (after reading the head when ``read``)."""

    def handler(tls: ssl.SSLSocket) -> None:
        if read:
            read_head(tls)
        if response:
            tls.sendall(response)

    return handler


def gp_response(status: int, body: dict[str, object] | None = None, extra: str = "") -> bytes:
    payload = json.dumps(body or {}).encode()
    return (
        f"HTTP/1.1 {status} X\r\nCache-Control: no-store\r\n{extra}"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload
