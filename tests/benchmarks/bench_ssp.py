"""A request through the SSP simulator against the same request straight to the provider.

consumer -> SSP simulator -> reference provider, keep-alive on both hops, against the
SSP's own request straight to the same reference provider, in the same run (rounds
alternate). The goal (issue 15): the SSP adds at most 1.5 times the cost of the direct
request.

The provider (`spinepki serve`) and the simulator (`spinepki ssp serve`) run as their own
processes, as they do in reality: in one process their threads would share one GIL and
each hop would wait for the others' switch interval. Both write their JSON audit lines
(to /dev/null), so the audit's cost is in the numbers.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from spinepki.demo._environment import _provider_toml, _ssp_toml, default_directory
from spinepki.ssp import Directory
from spinepki.testpki import KeyType, write_pki
from spinepki.testpki.responder import Responder
from tests.benchmarks._helpers import Row, row
from tests.serverconfig._helpers import ROOT, Client, free_port, stop, wait_for_port
from tests.ssp._helpers import (
    CONSUMER,
    PROVIDER,
    Bench,
    consumer_entry,
    provider_entry,
    ssp_headers,
)

PATH = "/A12345/STU3/1/gpconnect/metadata"


@contextmanager
def _spinepki(*args: str, port: int) -> Iterator[None]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "spinepki_cli", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc=proc, deadline_s=60)
        yield
    finally:
        stop(proc)


def run(quick: bool = False) -> list[Row]:
    """Requests/s via the SSP and direct, the cost ratio, and what the SSP adds."""
    number, rounds = (50, 3) if quick else (300, 7)
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        responder = stack.enter_context(Responder.with_new_pki(key_type=KeyType.RSA_2048))
        pki = responder.pki
        write_pki(pki, folder)
        provider_port, ssp_port = free_port(), free_port()
        provider_entry_ = default_directory().providers[0]
        (folder / "provider.toml").write_text(
            _provider_toml(provider_entry_, "provider", pki.ssp_fqdn).replace(
                "port = 0", f"port = {provider_port}"
            )
        )
        directory = Directory(
            (consumer_entry(CONSUMER, pki.consumer_fqdn, {PROVIDER}),),
            (provider_entry(PROVIDER, "A12345", ("127.0.0.1", provider_port)),),
        )
        (folder / "env.toml").write_text(_ssp_toml(directory, ssp_port))
        stack.enter_context(
            _spinepki("serve", "--config", str(folder / "provider.toml"), port=provider_port)
        )
        stack.enter_context(
            _spinepki("ssp", "serve", "--config", str(folder / "env.toml"), port=ssp_port)
        )
        files = Bench(pki, folder)
        root = provider_entry_.service_roots[next(iter(provider_entry_.service_roots))][0]
        clients = {
            "via": (
                Client(ssp_port, files.consumer_context("consumer"), pki.ssp_fqdn),
                f"/{root}/metadata",
            ),
            "direct": (
                Client(provider_port, files.consumer_context("ssp"), pki.provider_fqdn),
                PATH,
            ),
        }
        times: dict[str, list[float]] = {"via": [], "direct": []}
        try:
            for client, path in clients.values():  # warm up: handshakes, caches, the pool
                for _ in range(20):
                    assert client.request("GET", path, ssp_headers(audience=root)).status == 200
            for _ in range(rounds):
                headers = ssp_headers(audience=root)  # one fresh token per round (valid 5 min)
                for side, (client, path) in clients.items():
                    start = time.perf_counter()
                    for _ in range(number):
                        status = client.request("GET", path, headers).status
                        if status != 200:
                            raise RuntimeError(f"{side}: HTTP {status}")
                    times[side].append((time.perf_counter() - start) / number)
        finally:
            for client, _ in clients.values():
                client.close()
    via = statistics.median(times["via"])
    direct = statistics.median(times["direct"])
    return [
        row(
            "GET /metadata consumer -> SSP -> provider (keep-alive both hops)",
            1 / via,
            "req/s",
            peer=f"direct to the same provider: {1 / direct:,.0f} req/s",
            ratio=via / direct,
            target="cost ratio (via / direct)",
        ),
        row(
            "what the SSP adds per request",
            (via - direct) * 1000,
            "ms",
            peer=f"{direct * 1000:.3f} ms direct",
            ratio=(via - direct) / direct,
            target="<= 1.5 x the direct request",
        ),
    ]
