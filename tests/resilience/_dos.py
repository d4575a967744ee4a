"""Denial-of-service attacks on the reference provider and the SSP's view while they run.

Shared by ``tests/resilience/test_dos.py`` (bounded assertions) and
``tests/benchmarks/bench_dos.py`` (the measurements in docs/resilience.md). Loopback only;
every attack is bounded in connections, threads and seconds and stops by itself.

The attacker and the SSP are distinct sources, as they are in life: the SSP connects from
127.0.0.1, every attack from :data:`ATTACKER` (127.0.0.2), so the provider's per-source
limit applies to the attacker only; :func:`many_sources` spreads an attack over several
loopback addresses.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.resilience._helpers import Env, connect, latency_summary, one_request

__all__ = [
    "ATTACKER",
    "DHE_ONLY",
    "ECDHE_ONLY",
    "Attack",
    "SSPProbe",
    "flood",
    "garbage_records",
    "hostile_connections",
    "idle_tcp",
    "many_sources",
    "measure",
    "one_source_exhaustion",
    "stalled_handshakes",
    "trickle_headers",
]

#: The attack's source address (the SSP's is 127.0.0.1).
ATTACKER = "127.0.0.2"

#: Client cipher lists that force the key exchange (TLS 1.2, RSA server certificate).
DHE_ONLY = "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256"
ECDHE_ONLY = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"
#: The first bytes of a TLS record carrying a ClientHello: enough to start the server's
#: handshake, never enough to finish it.
_PARTIAL_HELLO = bytes.fromhex("160301020001")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class SSPProbe:
    """The SSP's requests during an attack: sequential, each on a new TLS connection."""

    statuses: list[int | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def run(self, env: Env, address: tuple[str, int], *, count: int, limit: float) -> None:
        end = time.monotonic() + limit
        for _ in range(count):
            if time.monotonic() > end:
                break
            started = time.perf_counter()
            try:
                status, _, _ = one_request(env, address, _now, timeout=5.0)
            except (OSError, ValueError):
                status = None
            self.seconds.append(time.perf_counter() - started)
            self.statuses.append(status)
            time.sleep(0.02)  # a steady trickle of requests, not a flood of its own

    @property
    def success_rate(self) -> float:
        if not self.statuses:
            return 0.0
        return sum(1 for s in self.statuses if s == 200) / len(self.statuses)

    def summary(self) -> dict[str, float]:
        return {"success": self.success_rate, **latency_summary(self.seconds)}


class Attack:
    """A running attack: ``with attack: ...``; :attr:`count` says how much it did."""

    def __init__(self, name: str, start: Callable[[threading.Event, Attack], None]) -> None:
        self.name = name
        self.count = 0
        self.failures = 0
        self.held = 0
        self._start = start
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def spawn(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"attack-{self.name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def keep(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            self.held += 1

    def tick(self, *, failed: bool = False) -> None:
        with self._lock:
            self.count += 1
            self.failures += failed

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def __enter__(self) -> Attack:
        self._start(self._stop, self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        with self._lock:
            socks, self._sockets = self._sockets, []
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()


def _tcp(address: tuple[str, int], source: str) -> socket.socket:
    return socket.create_connection(address, timeout=5, source_address=(source, 0))


def many_sources(n: int) -> list[str]:
    """``n`` distinct loopback source addresses other than the SSP's (127.0.0.2 on)."""
    return [f"127.0.{2 + i // 250}.{2 + i % 250}" for i in range(n)]


def idle_tcp(address: tuple[str, int], n: int, *, sources: tuple[str, ...] = (ATTACKER,)) -> Attack:
    """``n`` TCP connections that never send a byte, spread evenly over ``sources``."""

    def start(stop: threading.Event, attack: Attack) -> None:
        for i in range(n):
            with contextlib.suppress(OSError):
                attack.keep(_tcp(address, sources[i % len(sources)]))

    suffix = f"-from-{len(sources)}" if len(sources) > 1 else ""
    return Attack(f"idle-tcp-{n}{suffix}", start)


def one_source_exhaustion(
    address: tuple[str, int], n: int = 600, *, seconds: float = 10, rate: int = 200
) -> Attack:
    """What the report did from one address: open ``n`` bare TCP connections, then keep
    re-opening the ones the server closes (at most ``rate`` a second), so the address
    holds all it can for as long as the attack runs. Bounded by ``seconds``, by ``n``
    connections at a time and by ``rate``."""
    reopen = 0.05
    per_round = max(1, int(rate * reopen))

    def start(stop: threading.Event, attack: Attack) -> None:
        socks: list[socket.socket] = []
        for _ in range(n):
            with contextlib.suppress(OSError):
                socks.append(_tcp(address, ATTACKER))
                attack.tick()

        def reopen_closed() -> None:
            end = time.monotonic() + seconds
            while not stop.wait(reopen) and time.monotonic() < end:
                readable, _, _ = select.select(socks, [], [], 0) if socks else ([], [], [])
                for sock in readable[:per_round]:
                    with contextlib.suppress(OSError):
                        if sock.recv(1, socket.MSG_PEEK) != b"":
                            continue
                    socks.remove(sock)
                    sock.close()
                    with contextlib.suppress(OSError):
                        socks.append(_tcp(address, ATTACKER))
                        attack.tick()
            attack.held = len(socks)
            for sock in socks:
                sock.close()

        attack.spawn(reopen_closed)

    return Attack(f"one-source-{n}", start)


def stalled_handshakes(
    address: tuple[str, int], n: int, *, sources: tuple[str, ...] = (ATTACKER,)
) -> Attack:
    """``n`` connections that start a TLS handshake (a partial ClientHello) and stall,
    spread evenly over ``sources``."""

    def start(stop: threading.Event, attack: Attack) -> None:
        for i in range(n):
            with contextlib.suppress(OSError):
                sock = _tcp(address, sources[i % len(sources)])
                sock.sendall(_PARTIAL_HELLO)
                attack.keep(sock)

    return Attack(f"stalled-handshakes-{n}", start)


def trickle_headers(
    env: Env, address: tuple[str, int], n: int, *, interval: float = 0.5, seconds: float = 10
) -> Attack:
    """``n`` clients with a valid certificate that complete the handshake, then send
    their request head one byte every ``interval`` seconds (bounded by ``seconds``)."""

    def start(stop: threading.Event, attack: Attack) -> None:
        ctx = env.client("ssp")
        conns: list[ssl.SSLSocket] = []
        for _ in range(n):
            with contextlib.suppress(OSError):
                raw = _tcp(address, ATTACKER)
                tls = ctx.wrap_socket(raw, server_hostname=env.pki.provider_fqdn)
                attack.keep(tls)
                conns.append(tls)
        head = b"GET /A12345/STU3/1/gpconnect/metadata HTTP/1.1\r\nHost: x\r\nX-Slow: "

        def drip() -> None:
            end = time.monotonic() + seconds
            position = 0
            while not stop.wait(interval) and time.monotonic() < end:
                byte = head[position : position + 1] or b"a"
                position += 1
                for tls in conns:
                    try:
                        tls.sendall(byte)
                        attack.tick()
                    except OSError:
                        attack.tick(failed=True)

        attack.spawn(drip)

    return Attack(f"trickle-headers-{n}", start)


def flood(
    env: Env,
    address: tuple[str, int],
    *,
    cert: str,
    threads: int = 2,
    ciphers: str | None = None,
    seconds: float = 10,
    max_handshakes: int = 20000,
) -> Attack:
    """``threads`` clients doing full TLS handshakes (and, when accepted, one request)
    back to back with ``cert`` - bounded by ``seconds`` and ``max_handshakes``."""

    def start(stop: threading.Event, attack: Attack) -> None:
        ctx = env.client(cert, ciphers=ciphers)
        end = time.monotonic() + seconds

        def loop() -> None:
            while not stop.is_set() and time.monotonic() < end and attack.count < max_handshakes:
                try:
                    with connect(address, ctx, env.pki.provider_fqdn, 5.0, ATTACKER) as tls:
                        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        tls.recv(1)
                    attack.tick()
                except (OSError, ValueError):
                    attack.tick(failed=True)

        for _ in range(threads):
            attack.spawn(loop)

    suffix = f"-{ciphers.split('-')[0].lower()}" if ciphers else ""
    return Attack(f"flood-{cert}{suffix}", start)


@contextlib.contextmanager
def timed(attack: Attack) -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    started = time.perf_counter()
    with attack:
        yield out
    out["seconds"] = time.perf_counter() - started


def measure(
    env: Env,
    address: tuple[str, int],
    attack: Attack | None,
    *,
    probes: int = 30,
    limit: float = 15.0,
) -> dict[str, Any]:
    """Run ``attack`` (None: idle server) while the SSP sends ``probes`` requests."""
    probe = SSPProbe()
    if attack is None:
        probe.run(env, address, count=probes, limit=limit)
        return {"attack": "none", **probe.summary()}
    started = time.perf_counter()
    with attack:
        probe.run(env, address, count=probes, limit=limit)
        elapsed = time.perf_counter() - started
    return {
        "attack": attack.name,
        **probe.summary(),
        "attack_count": attack.count,
        "attack_failures": attack.failures,
        "attack_held": attack.held,
        "attack_rate": attack.count / elapsed if elapsed else 0.0,
    }


def garbage_records(
    env: Env, address: tuple[str, int], *, threads: int = 2, seconds: float = 10
) -> Attack:
    """``threads`` clients with a valid certificate, each completing a handshake and then
    sending one TLS record of random bytes, back to back (the report's critical finding,
    repeated) - bounded by ``seconds``."""

    def start(stop: threading.Event, attack: Attack) -> None:
        ctx = env.client("ssp")
        end = time.monotonic() + seconds
        record = bytes.fromhex("1703030020")

        def loop() -> None:
            while not stop.is_set() and time.monotonic() < end:
                try:
                    with connect(address, ctx, env.pki.provider_fqdn, 5.0, ATTACKER) as tls:
                        raw = socket.socket(fileno=os.dup(tls.fileno()))
                        with raw:
                            raw.sendall(record + os.urandom(32))
                            raw.recv(64)
                    attack.tick()
                except OSError:
                    attack.tick(failed=True)

        for _ in range(threads):
            attack.spawn(loop)

    return Attack("garbage-records", start)


def hostile_connections(
    env: Env, address: tuple[str, int], *, threads: int = 2, seconds: float = 10, seed: int = 11
) -> Attack:
    """``threads`` clients playing the generated hostile connections of
    ``tests/provider/connection_cases.py`` (every stage, every misbehaviour but the
    renegotiation, which needs openssl processes) back to back - bounded by ``seconds``."""
    import random

    from tests.provider.connection_cases import Action, Case, Stage, run_case

    class _Target:
        def __init__(self, address: tuple[str, int]) -> None:
            self.address = address

    def start(stop: threading.Event, attack: Attack) -> None:
        end = time.monotonic() + seconds
        actions = [a for a in Action if a is not Action.RENEGOTIATE]

        def loop(rng: random.Random) -> None:
            while not stop.is_set() and time.monotonic() < end:
                case = Case(
                    stage=rng.choice(list(Stage)),
                    action=rng.choice(actions),
                    data=rng.randbytes(rng.randrange(0, 512)),
                    cert=rng.choice(["ssp", None, "revoked"]),
                )
                try:
                    run_case(case, env, _Target(address), source=ATTACKER)  # type: ignore[arg-type]
                    attack.tick()
                except OSError:
                    attack.tick(failed=True)

        for i in range(threads):
            attack.spawn(functools.partial(loop, random.Random(seed + i)))

    return Attack("hostile-connections", start)
