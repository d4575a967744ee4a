"""nginx + `spinepki gate serve` (auth_request) against the same nginx without the gate.

Both nginx servers are exported by `render_config` from the same policy, run on
127.0.0.1 in front of the same upstream app (a child process), with the RSA-2048 test
PKI. One keep-alive TLS connection per side; rounds alternate between the sides so
machine noise falls on both; medians are reported. Bounded: a fixed number of requests.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from spinepki.policy import ClientAuth
from spinepki.testpki import KeyType, TestPKI
from tests._helpers import client_for
from tests.benchmarks._helpers import Row, row
from tests.serverconfig import _helpers as h


def _nginx(
    stack: ExitStack,
    nginx: str,
    files: h.PKIFiles,
    prefix: Path,
    upstream: int,
    gate: int | None,
    ssp_fqdn: str,
) -> int:
    port = h.free_port()
    block = h.nginx_block(
        files,
        port=port,
        upstream_port=upstream,
        client_auth=ClientAuth.REQUIRE,
        gate_url=f"http://127.0.0.1:{gate}" if gate else None,
        ssp_fqdn=ssp_fqdn,
    )
    stack.enter_context(h.nginx_running(nginx, h.nginx_test_config(prefix, block), port))
    return port


def run(quick: bool = False) -> list[Row]:
    """Requests/s through nginx with and without the gate, and the added latency."""
    nginx = h.find_nginx()
    if nginx is None:
        print("  nginx is not installed: skipped (make system-deps)", file=sys.stderr)
        return []
    number, rounds = (60, 3) if quick else (400, 7)
    pki = TestPKI.create(key_type=KeyType.RSA_2048)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        files = h.write_pki_files(pki, root / "pki")
        upstream = stack.enter_context(h.upstream_process())
        gate = stack.enter_context(
            h.gate_serve(files, ssp_fqdn=pki.ssp_fqdn, client_auth="require", workers=1, threads=4)
        )
        ports = {
            "gated": _nginx(stack, nginx, files, root / "gated", upstream, gate, pki.ssp_fqdn),
            "plain": _nginx(stack, nginx, files, root / "plain", upstream, None, pki.ssp_fqdn),
        }
        clients = {
            side: h.Client(port, client_for(pki, "ssp"), pki.provider_fqdn)
            for side, port in ports.items()
        }
        times: dict[str, list[float]] = {"gated": [], "plain": []}
        try:
            for client in clients.values():  # warm up: handshakes, keep-alive pools
                for _ in range(20):
                    assert client.request("GET", h.METADATA_PATH, h.ssp_headers()).status == 200
            for _ in range(rounds):
                headers = h.ssp_headers()  # one fresh token per round (valid 5 minutes)
                for side, client in clients.items():
                    start = time.perf_counter()
                    for _ in range(number):
                        status = client.request("GET", h.METADATA_PATH, headers).status
                        if status != 200:
                            raise RuntimeError(f"{side}: HTTP {status}")
                    times[side].append((time.perf_counter() - start) / number)
        finally:
            for client in clients.values():
                client.close()
    gated = statistics.median(times["gated"])
    plain = statistics.median(times["plain"])
    return [
        row(
            "nginx + gate serve (auth_request), gated GET /metadata",
            1 / gated,
            "req/s",
            peer="nginx, same upstream, no gate",
            ratio=plain / gated,
            target="report (one keep-alive client)",
        ),
        row("nginx without the gate, same upstream", 1 / plain, "req/s", peer="baseline"),
        row(
            "added latency per request (gate round trip)",
            (gated - plain) * 1000,
            "ms",
            peer=f"{plain * 1000:.3f} ms without the gate",
        ),
    ]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
