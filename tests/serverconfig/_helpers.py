"""Real nginx, `spinepki gate serve` and a tiny upstream on 127.0.0.1, for tests and benchmarks.

Everything runs as a child process (or thread) with its own files under a temporary
directory, binds 127.0.0.1 on free ports, and is stopped by the context managers.
Waiting is always polling with a deadline.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from spinepki._tokens import gp_connect_token
from spinepki.demo._edges import (
    find_server,
    free_port,
    nginx_main_conf,
    stop_process,
    wait_for_port,
)
from spinepki.errors import ConfigurationError
from spinepki.policy import ClientAuth
from spinepki.serverconfig import render_config
from spinepki.testpki import TestPKI

ROOT = Path(__file__).resolve().parents[2]
ASID = "918999198738"
FROM_ASID = "200000000359"
FOUNDATIONS = "/A12345/STU3/1/gpconnect"
METADATA_PATH = f"{FOUNDATIONS}/metadata"
READ_METADATA = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1"
READ_PATIENT = "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1"


def find_nginx() -> str | None:
    """The nginx binary, or None."""
    try:
        return find_server("nginx")
    except ConfigurationError:
        return None


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop a child we started: ``sig``, then SIGKILL after ``timeout``."""
    stop_process(proc, sig, timeout)


# -- the test PKI on disk --------------------------------------------------------------


@dataclass(frozen=True)
class PKIFiles:
    """The files nginx and the gate need."""

    directory: Path
    provider_chain: Path
    provider_key: Path
    bundle: Path
    crl_bundle: Path
    """Sub CA and root CRLs in one PEM (nginx checks the whole chain)."""
    crls: tuple[Path, ...]
    """The same CRLs one per file (the gate's --crl)."""


def write_pki_files(pki: TestPKI, directory: Path) -> PKIFiles:
    """Write the provider credentials, the trust bundle and the CRLs under ``directory``."""
    from cryptography.hazmat.primitives import serialization

    directory.mkdir(parents=True, exist_ok=True)
    provider = pki.leaf("provider")
    chain = directory / "provider.chain.pem"
    chain.write_bytes(provider.chain_pem)
    key = directory / "provider.key.pem"
    key.write_bytes(provider.key_pem)
    key.chmod(0o600)
    bundle = directory / "trust-bundle.pem"
    bundle.write_bytes(pki.trust_store().to_pem())
    crl_pems = [pki.crl("sub-ca"), pki.crl("root")]
    crls = []
    for name, crl in zip(("sub-ca", "root"), crl_pems, strict=True):
        path = directory / f"{name}.crl.pem"
        path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        crls.append(path)
    crl_bundle = directory / "crls.pem"
    crl_bundle.write_bytes(b"".join(p.read_bytes() for p in crls))
    return PKIFiles(directory, chain, key, bundle, crl_bundle, tuple(crls))


# -- the upstream app ------------------------------------------------------------------


class _UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: with Nagle on, the second waits for nginx's
    # delayed ACK (40 ms per request on a kept-alive connection).
    disable_nagle_algorithm = True
    server: _UpstreamServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        self.server.seen.append((self.command, self.path, dict(self.headers.items())))
        del self.server.seen[:-50]
        body = b'{"resourceType":"CapabilityStatement","status":"active"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        # Weaker than the policy: the server in front must replace it with no-store.
        self.send_header("Cache-Control", "max-age=60")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer


class _UpstreamServer(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[tuple[str, str, dict[str, str]]]


@contextmanager
def upstream_thread() -> Iterator[_UpstreamServer]:
    """The tiny provider app in a thread of this process (records what it received)."""
    server = _UpstreamServer(("127.0.0.1", 0), _UpstreamHandler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def upstream_process() -> Iterator[int]:
    """The same app in a child process (for benchmarks: no GIL shared with the client)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.serverconfig._helpers", "upstream", str(port)], cwd=ROOT
    )
    try:
        wait_for_port(port, proc=proc)
        yield port
    finally:
        stop(proc)


# -- nginx ---------------------------------------------------------------------------


def nginx_block(
    files: PKIFiles,
    *,
    port: int,
    upstream_port: int,
    client_auth: ClientAuth,
    gate_url: str | None,
    ssp_fqdn: str,
    server_name: str = "_",
    ocsp: bool = False,
) -> str:
    """The exported nginx server block for ``files``, listening on 127.0.0.1:``port`` in
    front of the upstream on 127.0.0.1:``upstream_port``."""
    return render_config(
        "nginx",
        cert=files.provider_chain,
        key=files.provider_key,
        trust_bundle=files.bundle,
        crl=files.crl_bundle,
        ocsp=ocsp,
        client_auth=client_auth,
        gate_url=gate_url,
        upstream=f"http://127.0.0.1:{upstream_port}",
        listen=f"127.0.0.1:{port}",
        server_name=server_name,
        ssp_fqdns=[ssp_fqdn],
    )


def nginx_test_config(prefix: Path, server_block: str) -> Path:
    """Write the exported block and the wrapper; return the wrapper's path."""
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "tmp").mkdir(exist_ok=True)
    (prefix / "spinepki.conf").write_text(server_block)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_main_conf(prefix))
    return conf


def nginx_check(nginx: str, conf: Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on ``conf``."""
    return subprocess.run(
        [
            nginx,
            "-t",
            "-p",
            str(conf.parent),
            "-c",
            str(conf),
            "-e",
            str(conf.parent / "error.log"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@contextmanager
def nginx_running(nginx: str, conf: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """nginx as a non-daemon child (``daemon off``) until the block exits."""
    prefix = conf.parent
    proc = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        try:
            wait_for_port(port, proc=proc)
        except (RuntimeError, TimeoutError) as exc:
            err = (
                proc.stderr.read().decode(errors="replace")
                if proc.stderr and proc.poll() is not None
                else ""
            )
            log = (
                (prefix / "error.log").read_text(errors="replace")
                if (prefix / "error.log").exists()
                else ""
            )
            raise RuntimeError(f"nginx did not start: {exc}\n{err}\n{log[-2000:]}") from None
        yield proc
    finally:
        stop(proc, signal.SIGQUIT)  # graceful; SIGKILL after the timeout
        if proc.stderr:
            proc.stderr.close()


# -- spinepki gate serve -------------------------------------------------------------


@contextmanager
def gate_serve(
    files: PKIFiles,
    *,
    ssp_fqdn: str,
    client_auth: str = "http-496",
    workers: int = 1,
    threads: int = 8,
) -> Iterator[int]:
    """``spinepki gate serve`` as a child process; yields its port."""
    port = free_port()
    argv = [
        sys.executable, "-m", "spinepki_cli", "gate", "serve",
        "--asid", ASID,
        "--root", f"foundations={FOUNDATIONS}",
        "--trust-bundle", str(files.bundle),
        "--ssp-fqdn", ssp_fqdn,
        "--revocation", "offline",
        *[arg for crl in files.crls for arg in ("--crl", str(crl))],
        "--client-auth", client_auth,
        "--listen", f"127.0.0.1:{port}",
        "--trusted-proxy", "127.0.0.1",
        "--workers", str(workers),
        "--threads", str(threads),
    ]  # fmt: skip
    log = open(files.directory / f"gate-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_for_port(port, proc=proc, deadline_s=30)
        except (RuntimeError, TimeoutError) as exc:
            log.flush()
            text = (files.directory / f"gate-{port}.log").read_text(errors="replace")
            raise RuntimeError(f"gate serve did not start: {exc}\n{text[-3000:]}") from None
        yield port
    finally:
        stop(proc)
        log.close()


# -- clients ---------------------------------------------------------------------------


@dataclass
class Response:
    """What came back."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    cipher: str | None = None
    version: str | None = None

    def header(self, name: str) -> list[str]:
        """All values of ``name``."""
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class Client:
    """A keep-alive HTTPS client for one TLS connection to 127.0.0.1:port."""

    def __init__(self, port: int, ctx: ssl.SSLContext, server_hostname: str) -> None:
        self._port = port
        self._ctx = ctx
        self._sni = server_hostname
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        raw = socket.create_connection(("127.0.0.1", self._port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock = self._ctx.wrap_socket(raw, server_hostname=self._sni)
        except BaseException:
            raw.close()
            raise
        conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=10)
        conn.sock = sock
        return conn

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        """One request on the kept-alive connection (reconnects once if it was closed)."""
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            try:
                conn.request(method, path, body=body, headers=dict(headers or {}))
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise
                continue
            sock = conn.sock
            cipher = sock.cipher() if isinstance(sock, ssl.SSLSocket) else None
            if resp.will_close:
                self.close()
            return Response(
                resp.status,
                resp.getheaders(),
                data,
                cipher[0] if cipher else None,
                cipher[1] if cipher else None,
            )
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# -- GP Connect requests ---------------------------------------------------------------


def token(now: int | None = None, *, scope: str = "organization/*.read", **over: Any) -> str:
    """A valid 1.x unsecured JWT (rules §3.7 example A) issued two seconds ago."""
    return gp_connect_token(now, scope=scope, **over)


def ssp_headers(
    interaction: str = READ_METADATA, *, to: str = ASID, bearer: str | None = None
) -> dict[str, str]:
    """The SSP headers of a valid metadata read."""
    return {
        "Ssp-TraceID": str(uuid.uuid4()),
        "Ssp-From": FROM_ASID,
        "Ssp-To": to,
        "Ssp-InteractionID": interaction,
        "Authorization": f"Bearer {bearer if bearer is not None else token()}",
        "Accept": "application/fhir+json",
    }


def _main(argv: Sequence[str]) -> int:
    if len(argv) == 2 and argv[0] == "upstream":
        server = _UpstreamServer(("127.0.0.1", int(argv[1])), _UpstreamHandler)
        server.seen = []
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        server.serve_forever(poll_interval=0.1)
        return 0
    print("usage: python -m tests.serverconfig._helpers upstream PORT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
