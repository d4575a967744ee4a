"""Helpers for the reference-provider tests: a written test PKI, configs, HTTP over TLS."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spinepki.demo._callers import DEMO_ASID, DEMO_ROOT, SSPRequest
from spinepki.gate import RootKind
from spinepki.provider import ProviderConfig, ProviderLimits, ProviderServer
from spinepki.revocation import RevocationMode
from spinepki.testpki import TestPKI
from tests._helpers import client_for

ROOTS = {RootKind.FOUNDATIONS: (DEMO_ROOT,)}


@dataclass(frozen=True)
class Written:
    """A test PKI written to disk, with the responder serving it."""

    pki: TestPKI
    directory: Path

    def config(self, **over: Any) -> ProviderConfig:
        values: dict[str, Any] = {
            "asid": DEMO_ASID,
            "service_roots": ROOTS,
            "certificate": self.directory / "certs/provider.chain.pem",
            "key": self.directory / "certs/provider.key.pem",
            "ssp_fqdns": (self.pki.ssp_fqdn,),
            "trust_files": (self.directory / "ca/trust-bundle.pem",),
            "revocation": RevocationMode.CRL_ONLY,
            "port": 0,
        }
        values.update(over)
        return ProviderConfig(**values)

    def client(self, name: str | None = "ssp") -> ssl.SSLContext:
        return client_for(self.pki, name)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


def tls_connect(
    address: tuple[str, int], ctx: ssl.SSLContext, fqdn: str, timeout: float = 5.0
) -> ssl.SSLSocket:
    raw = socket.create_connection(address, timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=fqdn)
    except BaseException:
        raw.close()
        raise


def read_response(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    """Everything until the peer closes (bounded by ``limit`` and the socket timeout)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        try:
            chunk = sock.recv(65536)
        except (ssl.SSLError, ConnectionResetError):
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def parse(raw: bytes) -> Response:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Response(status, headers, body)


def request(
    written: Written,
    address: tuple[str, int],
    req: SSPRequest | None = None,
    *,
    cert: str | None = "ssp",
    timeout: float = 5.0,
) -> Response:
    """One SSP request over a fresh TLS connection (``Connection: close``)."""
    req = req or SSPRequest()
    started = time.perf_counter()
    with tls_connect(address, written.client(cert), written.pki.provider_fqdn, timeout) as tls:
        tls.sendall(req.render(f"{written.pki.provider_fqdn}:{address[1]}", int(time.time())))
        raw = read_response(tls)
    response = parse(raw)
    response.elapsed = time.perf_counter() - started
    return response


def limits(**over: Any) -> ProviderLimits:
    return ProviderLimits(**over)


def read_one_response(tls: socket.socket) -> Response:
    """One response with a Content-Length, on a connection that stays open (keep-alive)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += tls.recv(65536)
    response = parse(data)
    length = int(response.headers["content-length"])
    while len(response.body) < length:
        response.body += tls.recv(65536)
    return response


def answers(written: Written, server: ProviderServer) -> bool:
    """Whether the SSP's request is served now (a refused or reset connection is a no)."""
    try:
        return request(written, server.address).status == 200
    except OSError:
        return False


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it is true (bounded by ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")
