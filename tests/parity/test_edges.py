"""What the exported servers announce and answer by themselves, read off the wire.

* The TLS 1.2 session ticket lifetime nginx, Apache and HAProxy announce (RFC 5077 §3.3,
  ``ticket_lifetime_hint``): the export's ``session_lifetime`` (300 s), so resumption —
  which skips the certificate and revocation checks — ends with the freshness bound.
  HAProxy's default was 7200 s.
* The answers the servers make themselves when the application is down: an
  OperationOutcome with ``Cache-Control: no-store`` (HAProxy's built-in pages said
  ``no-cache``).
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
from contextlib import ExitStack
from pathlib import Path

import pytest

from spinepki._probe import probe
from spinepki.demo._demo import DemoEnvironment
from spinepki.demo._edges import find_server, free_port, run_apache, run_haproxy, run_nginx
from spinepki.demo._shapes import Shape
from spinepki.errors import ConfigurationError
from spinepki.policy import ClientAuth
from spinepki.serverconfig import render_config
from spinepki.testpki import TestPKI, write_pki
from spinepki.tls import client_context

pytestmark = pytest.mark.network


def ticket_lifetime_hints(address: tuple[str, int], ctx: ssl.SSLContext, sni: str) -> list[int]:
    """The ``ticket_lifetime_hint`` of every NewSessionTicket a TLS 1.2 server sends.

    TLS 1.2 sends NewSessionTicket before ChangeCipherSpec, in the clear: the handshake
    runs through memory BIOs and the server's records are read as they pass.
    """
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    seen = b""
    with socket.create_connection(address, timeout=5) as sock:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if data := outgoing.read():
                    sock.sendall(data)
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed during the handshake") from None
                seen += chunk
                incoming.write(chunk)
        sock.sendall(outgoing.read())
    hints: list[int] = []
    at = 0
    while at + 5 <= len(seen):
        content_type, length = seen[at], struct.unpack(">H", seen[at + 3 : at + 5])[0]
        body = seen[at + 5 : at + 5 + length]
        if content_type == 20:  # ChangeCipherSpec: what follows is encrypted
            break
        if content_type == 22:
            pos = 0
            while pos + 4 <= len(body):
                kind, size = body[pos], int.from_bytes(body[pos + 1 : pos + 4], "big")
                if kind == 4:  # NewSessionTicket
                    hints.append(struct.unpack(">I", body[pos + 4 : pos + 8])[0])
                pos += 4 + size
        at += 5 + length
    return hints


def _ssp_context(pki: TestPKI) -> ssl.SSLContext:
    ssp = pki.leaf("ssp")
    ctx = client_context(
        pki.trust_store(),
        cert=ssp.chain_pem,
        key=ssp.key_pem,
        unsafe_skip_credential_checks=True,
    )
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


@pytest.mark.parametrize("shape", [Shape.NGINX, Shape.APACHE, Shape.HAPROXY], ids=lambda s: s.value)
@pytest.mark.parametrize("mode", list(ClientAuth), ids=lambda m: m.value)
def test_session_tickets_live_no_longer_than_the_bound(
    parity_env: DemoEnvironment, shape: Shape, mode: ClientAuth
) -> None:
    """Each exported server announces the export's session lifetime, 300 s."""
    address = parity_env.endpoints[shape][mode]
    hints = ticket_lifetime_hints(
        address, _ssp_context(parity_env.pki), parity_env.pki.provider_fqdn
    )
    assert hints == [300]


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory, spine_pki_rsa: TestPKI) -> Path:
    directory: Path = tmp_path_factory.mktemp("edges-pki")
    write_pki(spine_pki_rsa, directory)
    return directory


def _export(server: str, directory: Path, port: int, pki: TestPKI, **kw: object) -> str:
    return render_config(
        server,
        cert=kw.pop("cert", directory / "certs/provider.chain.pem"),  # type: ignore[arg-type]
        key=kw.pop("key", directory / "certs/provider.key.pem"),  # type: ignore[arg-type]
        trust_bundle=directory / "ca/trust-bundle.pem",
        crl=directory / "crl/crl-set.pem",
        upstream=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        listen=f"127.0.0.1:{port}",
        server_name=pki.provider_fqdn,
        ssp_fqdns=[pki.ssp_fqdn],
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("server", ["nginx", "apache2", "haproxy"])
def test_own_errors_are_outcomes_with_no_store(
    server: str, pki_dir: Path, spine_pki_rsa: TestPKI, tmp_path: Path
) -> None:
    """With the application down, each server's own answer (502/503/500) is an
    OperationOutcome with Cache-Control: no-store."""
    try:
        binary = find_server(server)
    except ConfigurationError as exc:  # not installed
        pytest.skip(str(exc))
    port = free_port()
    with ExitStack() as stack:
        if server == "nginx":
            block = _export("nginx", pki_dir, port, spine_pki_rsa)
            stack.enter_context(run_nginx(binary, tmp_path / "nginx", block, port))
        elif server == "apache2":
            export = _export("apache", pki_dir, port, spine_pki_rsa)
            stack.enter_context(run_apache(binary, tmp_path / "apache", [export], [port]))
        else:
            crt = tmp_path / "provider.pem"
            crt.write_bytes((pki_dir / "certs/provider.chain.pem").read_bytes())
            Path(f"{crt}.key").write_bytes((pki_dir / "certs/provider.key.pem").read_bytes())
            config = _export("haproxy", pki_dir, port, spine_pki_rsa, cert=crt, key=f"{crt}.key")
            stack.enter_context(run_haproxy(binary, tmp_path / "haproxy", config, port))
        request = (
            f"GET /A12345/STU3/1/gpconnect/metadata HTTP/1.1\r\nHost: {spine_pki_rsa.provider_fqdn}"
            "\r\nConnection: close\r\n\r\n"
        ).encode()
        result = probe(
            ("127.0.0.1", port),
            _ssp_context(spine_pki_rsa),
            server_hostname=spine_pki_rsa.provider_fqdn,
            request=request,
        )
    head, _, body = result.response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    assert status in (500, 502, 503), result.response[:300]
    assert headers["cache-control"] == "no-store"
    assert json.loads(body)["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("shape", "error_no_store"),
    [(Shape.NGINX, True), (Shape.APACHE, True), (Shape.HAPROXY, False), (Shape.SERVE, True)],
    ids=lambda v: v.value if isinstance(v, Shape) else str(v),
)
def test_tls_scan_checks_errors_and_the_fqdn(
    parity_env: DemoEnvironment, shape: Shape, error_no_store: bool
) -> None:
    """`spinepki tls scan` with a wrong-FQDN certificate: every export refuses it
    (client_cert.fqdn); the error answers carry no-store except HAProxy 2.6's own 400
    (difference 9), which the scan reports."""
    from spinepki.scan import scan_endpoint

    pki, directory = parity_env.pki, parity_env.directory
    host, port = parity_env.endpoints[shape][ClientAuth.REQUIRE]
    report = scan_endpoint(
        host,
        port,
        trust=pki.trust_store(),
        server_name=pki.provider_fqdn,
        client_cert=directory / "certs/ssp.chain.pem",
        client_key=directory / "certs/ssp.key.pem",
        wrong_fqdn_cert=directory / "certs/wrong-fqdn.chain.pem",
        wrong_fqdn_key=directory / "certs/wrong-fqdn.key.pem",
        metadata_path="/A12345/STU3/1/gpconnect/metadata",
    )
    assert report.check("client_cert.fqdn").passed, report.check("client_cert.fqdn").detail
    error = report.check("http.error_cache_control")
    assert error.passed is error_no_store, error.detail
    if not error_no_store:
        assert "no-cache" in error.detail
