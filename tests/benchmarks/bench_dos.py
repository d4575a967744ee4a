"""The SSP's success rate and latency while the reference provider is attacked (issue 7 §5).

Loopback only; every attack is bounded in connections, threads and seconds. The attacks
and the SSP probe are in ``tests/resilience/_dos.py`` (shared with the bounded tests in
``tests/resilience/test_dos.py``); docs/resilience.md reads its numbers from here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from spinepki.audit import AuditLogger
from spinepki.provider import ProviderLimits, run_provider
from spinepki.testpki import KeyType, write_pki
from spinepki.testpki.responder import Responder
from tests.benchmarks._util import Row, row
from tests.resilience._dos import (
    DHE_ONLY,
    ECDHE_ONLY,
    Attack,
    flood,
    idle_tcp,
    measure,
    stalled_handshakes,
    trickle_headers,
)
from tests.resilience._harness import Env

Address = tuple[str, int]


def _quiet_audit() -> AuditLogger:
    logger = logging.getLogger("spinepki.audit.bench_dos")
    logger.propagate = False
    logger.addHandler(logging.NullHandler())
    return AuditLogger(logger)


def _rows(label: str, result: dict[str, Any], *, expected: str = ">= 99%") -> list[Row]:
    extra = ""
    if result.get("attack_held"):
        extra = f"; {result['attack_held']} attack connections held"
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
        with run_provider(env.config(), audit=_quiet_audit()) as server:
            a: Address = server.address
            attacks: list[tuple[str, Attack | None]] = [
                ("idle server (EC P-256)", None),
                (f"{n} idle TCP connections", idle_tcp(a, n)),
                (f"{n} stalled TLS handshakes", stalled_handshakes(a, n)),
                (
                    f"{n // 5} header tricklers (1 byte / 0.5 s)",
                    trickle_headers(env, a, n // 5, seconds=seconds),
                ),
                (
                    "flood, valid certificate (2 threads)",
                    flood(env, a, cert="ssp", seconds=seconds),
                ),
                (
                    "flood, untrusted certificate (2 threads)",
                    flood(env, a, cert="foreign", seconds=seconds),
                ),
                (
                    "flood, revoked certificate (2 threads)",
                    flood(env, a, cert="revoked", seconds=seconds),
                ),
            ]
            for label, attack in attacks:
                rows += _rows(label, measure(env, a, attack, probes=probes, limit=seconds))
        # Over the cap: new connections (the SSP's too) are closed before TLS.
        cap = 64
        limits = ProviderLimits(max_connections=cap)
        with run_provider(env.config(limits=limits), audit=_quiet_audit()) as server:
            a = server.address
            result = measure(env, a, idle_tcp(a, cap), probes=min(probes, 10), limit=seconds)
            # Expected 0%: the cap protects the process, not the SSP (new connections,
            # the SSP's included, are closed before TLS); the SSP's defence is a firewall.
            rows += _rows(
                f"cap {cap} filled by {cap} idle connections",
                result,
                expected="0% expected: firewall the port to the SSP",
            )
        return rows

    def rsa(env: Env) -> list[Row]:
        rows: list[Row] = []
        with run_provider(env.config(), audit=_quiet_audit()) as server:
            a = server.address
            rows += _rows("idle server (RSA-2048)", measure(env, a, None, probes=probes))
            rates = {}
            for label, ciphers in (("ECDHE", ECDHE_ONLY), ("DHE", DHE_ONLY)):
                result = measure(
                    env,
                    a,
                    flood(env, a, cert="ssp", ciphers=ciphers, seconds=seconds),
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
