"""Loopback servers for the scanner tests: compliant (require / 496) and misconfigured.

``ScanTestServer`` peeks at the first bytes of each connection: plaintext HTTP is either
dropped or answered (``plaintext_answer``), anything else goes through the TLS context;
after the handshake it reads one request head and answers ``respond(peer_der, head)``.
Each connection is handled in its own thread; the accept loop polls a stop flag.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import Any

from cryptography import x509

from spinepki.gate import ClientAuthMode, GateConfig, Generation, RequestGate, RootKind
from spinepki.testpki._tlsserver import LoopbackServer

Responder = Callable[[bytes | None, bytes], bytes]

PROVIDER_ASID = "918999198738"
FHIR_ROOT = "/A12345/STU3/1/gpconnect"
METADATA_PATH = f"{FHIR_ROOT}/metadata"


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    for _ in range(64):  # bounded: at most 64 reads
        if b"\r\n\r\n" in data or len(data) > 65536:
            break
        chunk = sock.recv(16384)
        if not chunk:
            break
        data += chunk
    return data


def http_response(status: int, *, cache_control: str | None = "no-store", extra: str = "") -> bytes:
    reason = {
        200: "OK",
        301: "Moved Permanently",
        400: "Bad Request",
        496: "SSL Certificate Required",
    }
    body = b'{"resourceType":"CapabilityStatement"}' if status == 200 else b""
    headers = f"HTTP/1.1 {status} {reason.get(status, 'Status')}\r\n"
    if cache_control is not None:
        headers += f"Cache-Control: {cache_control}\r\n"
    headers += extra
    headers += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return headers.encode() + body


class ScanTestServer(LoopbackServer):
    """A threaded TLS server on 127.0.0.1 with a plaintext peek and an HTTP responder."""

    def __init__(
        self,
        context: ssl.SSLContext,
        respond: Responder,
        *,
        plaintext_answer: bytes | None = None,
    ) -> None:
        super().__init__()
        self._context = context
        self._respond = respond
        self._plaintext = plaintext_answer
        self.requests: list[bytes] = []

    @property
    def target(self) -> str:
        host, port = self.address
        return f"{host}:{port}"

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        with conn:
            try:
                first = conn.recv(4, socket.MSG_PEEK)
                if first[:4] in (b"GET ", b"HEAD", b"POST"):
                    _read_head(conn)
                    if self._plaintext is not None:
                        conn.sendall(self._plaintext)
                    return
                with self._context.wrap_socket(conn, server_side=True) as tls:
                    peer = tls.getpeercert(True)
                    head = _read_head(tls)
                    if not head:
                        return
                    self.requests.append(head)
                    tls.sendall(self._respond(peer, head))
            except (OSError, ValueError):  # ssl.SSLError is an OSError; ValueError: closed
                return


def gate_responder(
    *,
    cache_control: str | None = "no-store",
    checker: Any = None,
    client_auth: ClientAuthMode = ClientAuthMode.HTTP_496,
) -> Responder:
    """Answer through the real RequestGate (http-496 mode: 496 without a certificate),
    with ``checker`` (e.g. a ClientCertValidator) as its certificate checker."""
    gate = RequestGate(
        GateConfig(
            provider_asid=PROVIDER_ASID,
            service_roots={RootKind.FOUNDATIONS: FHIR_ROOT},
            generations=frozenset({Generation.V1}),
            client_auth=client_auth,
            certificate_checker=checker,
        )
    )

    def respond(peer: bytes | None, head: bytes) -> bytes:
        lines = head.decode("latin-1").split("\r\n")
        if any(line and ":" not in line for line in lines[1:]):
            return http_response(400, cache_control=cache_control)  # as any HTTP parser does
        method, path, _ = ([*lines[0].split(" "), "", "", ""])[:3]
        headers = [
            (k.strip(), v.strip()) for k, sep, v in (ln.partition(":") for ln in lines[1:]) if sep
        ]
        cert = x509.load_der_x509_certificate(peer) if peer else None
        decision = gate.check(method, path.split("?")[0], headers, peer_cert=cert)
        return http_response(decision.status, cache_control=cache_control)

    return respond


def always(status: int, *, cache_control: str | None = None) -> Responder:
    """Answer every request with ``status``."""

    def respond(peer: bytes | None, head: bytes) -> bytes:
        return http_response(status, cache_control=cache_control)

    return respond
