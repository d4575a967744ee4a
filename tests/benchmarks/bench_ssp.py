"""A request through the SSP simulator against the same request straight to the provider.

consumer -> SSP simulator -> reference provider, keep-alive on both hops, against the
SSP's own request straight to the same reference provider, in the same run (rounds
alternate). The goal (issue 15): the SSP adds at most 1.5 times the cost of the direct
request. All three parties run in this process, each server on its own event loop thread.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from spinepki.audit import AuditLogger
from spinepki.gate import RootKind
from spinepki.provider import ProviderConfig, run_provider
from spinepki.revocation import RevocationMode
from spinepki.ssp import Directory, ForwardingLimits, SSPAuditLogger, run_ssp
from spinepki.testpki import KeyType, write_pki
from spinepki.testpki.responder import Responder
from tests.benchmarks._util import Row, row
from tests.serverconfig.harness import Client
from tests.ssp._helpers import (
    CONSUMER,
    PROVIDER,
    consumer_entry,
    provider_entry,
    root_of,
    ssp_headers,
)
from tests.ssp._helpers import Bench as Files


def _silent(name: str) -> logging.Logger:
    # Events are built and emitted (their cost is part of each hop), then dropped.
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


def run(quick: bool = False) -> list[Row]:
    """Requests/s via the SSP and direct, the ratio, and what the SSP adds."""
    number, rounds = (50, 3) if quick else (300, 7)
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        responder = stack.enter_context(Responder.with_new_pki(key_type=KeyType.RSA_2048))
        pki = responder.pki
        write_pki(pki, folder)
        files = Files(pki, folder)
        provider = stack.enter_context(
            run_provider(
                ProviderConfig(
                    asid=PROVIDER,
                    service_roots={RootKind.FOUNDATIONS: ("/A12345/STU3/1/gpconnect",)},
                    certificate=folder / "certs/provider.chain.pem",
                    key=folder / "certs/provider.key.pem",
                    ssp_fqdns=(pki.ssp_fqdn,),
                    trust_files=(folder / "ca/trust-bundle.pem",),
                    revocation=RevocationMode.CRL_ONLY,
                    port=0,
                ),
                audit=AuditLogger(_silent("bench.ssp.gate")),
            )
        )
        directory = Directory(
            (consumer_entry(CONSUMER, pki.consumer_fqdn, {PROVIDER}),),
            (provider_entry(PROVIDER, "A12345", provider.address),),
        )
        config = files.config(
            directory,
            revocation=RevocationMode.CRL_ONLY,
            forwarding=ForwardingLimits(idle_timeout=60),
        )
        ssp = stack.enter_context(run_ssp(config, audit=SSPAuditLogger(_silent("bench.ssp"))))
        root = root_of("A12345")
        clients = {
            "via": (
                Client(ssp.address[1], files.consumer_context("consumer"), pki.ssp_fqdn),
                f"/{root}/metadata",
            ),
            "direct": (
                Client(provider.address[1], files.consumer_context("ssp"), pki.provider_fqdn),
                "/A12345/STU3/1/gpconnect/metadata",
            ),
        }
        times: dict[str, list[float]] = {"via": [], "direct": []}
        try:
            for client, path in clients.values():  # warm up: handshakes, caches, the pool
                for _ in range(20):
                    assert client.request("GET", path, ssp_headers()).status == 200
            for _ in range(rounds):
                headers = ssp_headers()  # one fresh token per round (valid 5 minutes)
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
        provider_connections = provider.stats.accepted
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
        row(
            "provider connections opened (both clients, whole run)",
            provider_connections,
            "connections",
            peer="keep-alive: 2 expected (one per hop's client)",
        ),
    ]
