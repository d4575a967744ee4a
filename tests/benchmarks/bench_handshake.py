"""Full mutual-TLS handshakes per second: server_context vs a hand-made equivalent context."""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from spinepki.testpki import KeyType, TestPKI
from spinepki.testpki._tlsserver import TLSTestServer
from spinepki.tls import _dh_params_path, client_context, server_context
from tests.benchmarks._helpers import Row, row


def _hand_made(pki: TestPKI, tmp: Path) -> ssl.SSLContext:
    provider = pki.leaf("provider")
    (tmp / "c.pem").write_bytes(provider.chain_pem)
    (tmp / "k.pem").write_bytes(provider.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("AESGCM+EECDH:AESGCM+EDH:AES256+EECDH:AES256+EDH")
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.load_dh_params(str(_dh_params_path()))
    ctx.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
    ctx.load_verify_locations(cadata=pki.trust_store().to_pem().decode())
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _rate(server: TLSTestServer, client: ssl.SSLContext, hostname: str, seconds: float) -> float:
    import socket

    count, deadline = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        with (
            socket.create_connection(server.address) as raw,
            client.wrap_socket(raw, server_hostname=hostname) as tls,
        ):
            tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
            while tls.recv(4096):
                pass
        count += 1
    return count / (time.perf_counter() - start)


def run(quick: bool = False) -> list[Row]:
    pki = TestPKI.create(key_type=KeyType.RSA_2048)
    ssp = pki.leaf("ssp")
    client = client_context(pki.trust_store(), cert=ssp.chain_pem, key=ssp.key_pem)
    provider = pki.leaf("provider")
    seconds = 0.5 if quick else 2.0
    with TemporaryDirectory() as tmp:
        ours_ctx = server_context(provider.chain_pem, provider.key_pem, pki.trust_store())
        peer_ctx = _hand_made(pki, Path(tmp))
        ours, peer = [], []
        with TLSTestServer(ours_ctx) as a, TLSTestServer(peer_ctx) as b:
            for _ in range(2 if quick else 4):  # alternate to share the noise
                ours.append(_rate(a, client, pki.provider_fqdn, seconds))
                peer.append(_rate(b, client, pki.provider_fqdn, seconds))
    best_ours, best_peer = sorted(ours)[len(ours) // 2], sorted(peer)[len(peer) // 2]
    return [
        row(
            "mutual-TLS handshakes/s, RSA-2048, server_context",
            best_ours,
            "handshakes/s",
            peer=f"hand-made context {best_peer:.0f}/s",
            ratio=best_peer / best_ours,
            target="1.0 within noise (time per handshake, ours / hand-made)",
        )
    ]
