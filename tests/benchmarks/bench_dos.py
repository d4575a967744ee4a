"""The SSP's success rate and latency while the reference provider is attacked (issues 7
§5 and 11).

Loopback only; every attack is bounded in connections, threads and seconds, and comes
from other source addresses than the SSP's (127.0.0.1), as it would in life. The attacks
and the SSP probe are in ``tests/resilience/_dos.py`` (shared with the bounded tests in
``tests/resilience/test_dos.py``); docs/resilience.md reads its numbers from here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from spinepki.audit import AuditLogger
from spinepki.provider import ProviderLimits, ProviderServer, run_provider
from spinepki.testpki import KeyType, write_pki
from spinepki.testpki.responder import Responder
from tests.benchmarks._helpers import Row, row
from tests.resilience import _dos as dos
from tests.resilience._helpers import Env, PeakSampler

Address = tuple[str, int]


def _quiet_audit() -> AuditLogger:
    logger = logging.getLogger("spinepki.audit.bench_dos")
    logger.propagate = False
    logger.addHandler(logging.NullHandler())
    return AuditLogger(logger)


def _rows(label: str, result: dict[str, Any], *, expected: str = ">= 99%") -> list[Row]:
    extra = ""
    if result.get("attack_held"):
        extra = f"; {result['attack_held']} attack connections held by the server"
    elif result.get("attack_rate"):
        extra = f"; attack {result['attack_rate']:.0f} handshakes/s"
    return [
        row(
            f"{label}: SSP success rate",
            100 * result["success"],
            "%",
            peer=f"{result['n']} SSP requests{extra}",
            target=expected,
        ),
        row(
            f"{label}: SSP latency p95",
            result["p95_ms"],
            "ms",
            peer=f"median {result['median_ms']:.1f} ms, max {result['max_ms']:.1f} ms",
            target="< 1000 ms",
        ),
    ]


def _settle(server: ProviderServer, seconds: float = 10.0) -> None:
    """Wait (bounded) until the server holds no connection."""
    deadline = time.monotonic() + seconds
    while server.stats.active and time.monotonic() < deadline:
        time.sleep(0.05)


def _with_env(key_type: KeyType, body: Callable[[Env], list[Row]]) -> list[Row]:
    with Responder.with_new_pki(key_type=key_type) as responder, TemporaryDirectory() as tmp:
        write_pki(responder.pki, Path(tmp))
        return body(Env(responder.pki, Path(tmp)))


def run(quick: bool = False) -> list[Row]:
    probes = 15 if quick else 50
    n = 200 if quick else 500
    seconds = 5.0 if quick else 20.0

    def ec(env: Env) -> list[Row]:
        rows: list[Row] = []
        per_source = ProviderLimits().max_connections_per_source
        # Enough attacking addresses that the server holds every connection.
        spread = tuple(dos.many_sources(-(-n // per_source)))
        with run_provider(env.config(), audit=_quiet_audit()) as server:
            a: Address = server.address
            attacks: list[tuple[str, dos.Attack | None]] = [
                ("idle server (EC P-256)", None),
                (
                    f"{n} idle TCP connections ({len(spread)} addresses)",
                    dos.idle_tcp(a, n, sources=spread),
                ),
                (
                    f"{n} stalled TLS handshakes ({len(spread)} addresses)",
                    dos.stalled_handshakes(a, n, sources=spread),
                ),
                (
                    "one address exhausting: 600 connections, re-opened as closed",
                    dos.one_source_exhaustion(a, 600, seconds=seconds),
                ),
                (
                    "garbage TLS records after the handshake (2 threads)",
                    dos.garbage_records(env, a, seconds=seconds),
                ),
                (
                    "generated hostile connections, every stage (2 threads)",
                    dos.hostile_connections(env, a, seconds=seconds),
                ),
                (
                    f"{n // 5} header tricklers (1 byte / 0.5 s)",
                    dos.trickle_headers(env, a, n // 5, seconds=seconds),
                ),
                (
                    "flood, valid certificate (2 threads)",
                    dos.flood(env, a, cert="ssp", seconds=seconds),
                ),
                (
                    "flood, untrusted certificate (2 threads)",
                    dos.flood(env, a, cert="foreign", seconds=seconds),
                ),
                (
                    "flood, revoked certificate (2 threads)",
                    dos.flood(env, a, cert="revoked", seconds=seconds),
                ),
            ]
            for label, attack in attacks:
                failed_before = server.stats.connection_errors
                _settle(server)  # the previous attack's connections are gone
                # The most connections the server held at once while the attack ran.
                with PeakSampler(lambda: server.stats.active, 0.01) as peak:
                    result = dos.measure(env, a, attack, probes=probes, limit=seconds)
                if attack is not None and result.get("attack_held"):
                    result["attack_held"] = min(result["attack_held"], peak.peak)
                rows += _rows(label, result)
                if server.failure is not None or server.stats.connection_errors > failed_before:
                    raise RuntimeError(f"{label}: the server failed ({server.stats})")
        # Over the cap, from several addresses: new connections (the SSP's too) are closed
        # before TLS. Per source 16, so 4 addresses fill a cap of 64.
        cap, share = 64, 16
        limits = ProviderLimits(max_connections=cap, max_connections_per_source=share)
        with run_provider(env.config(limits=limits), audit=_quiet_audit()) as server:
            a = server.address
            sources = tuple(dos.many_sources(cap // share))
            result = dos.measure(
                env, a, dos.idle_tcp(a, cap, sources=sources), probes=min(probes, 10), limit=seconds
            )
            # Expected 0%: against many addresses the cap protects the process, not the
            # SSP (its new connections are closed before TLS); its defence is a firewall.
            rows += _rows(
                f"cap {cap} filled from {len(sources)} addresses ({share} each)",
                result,
                expected="0% expected: firewall the port to the SSP",
            )
        return rows

    def rsa(env: Env) -> list[Row]:
        rows: list[Row] = []
        with run_provider(env.config(), audit=_quiet_audit()) as server:
            a = server.address
            rows += _rows("idle server (RSA-2048)", dos.measure(env, a, None, probes=probes))
            rates = {}
            for label, ciphers in (("ECDHE", dos.ECDHE_ONLY), ("DHE", dos.DHE_ONLY)):
                result = dos.measure(
                    env,
                    a,
                    dos.flood(env, a, cert="ssp", ciphers=ciphers, seconds=seconds),
                    probes=probes,
                    limit=seconds,
                )
                rates[label] = result["attack_rate"]
                rows += _rows(f"flood, {label}-only handshakes (RSA-2048, 2 threads)", result)
            rows.append(
                row(
                    "DHE vs ECDHE: server CPU per full handshake (flood rate ratio)",
                    rates["ECDHE"] / rates["DHE"] if rates["DHE"] else 0.0,
                    "x",
                    peer=f"ECDHE {rates['ECDHE']:.0f}/s, DHE {rates['DHE']:.0f}/s",
                    target="about 2.7x (issue 7)",
                )
            )
        return rows

    return _with_env(KeyType.EC_P256, ec) + _with_env(KeyType.RSA_2048, rsa)


if __name__ == "__main__":  # pragma: no cover - manual run
    import sys

    for r in run(quick="--quick" in sys.argv):
        print(f"{r['name']}: {r['value']:.2f} {r['unit']}  ({r['peer']})")
