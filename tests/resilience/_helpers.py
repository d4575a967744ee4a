"""Shared machinery of the resilience tests and the DoS benchmark.

* :class:`Clock` - the validation time as an input (the gate's ``clock=``, the responder's
  ``clock``, the revocation checker's ``at``): frozen, moved by the test, never slept on.
* :func:`time_driven_provider` - the reference provider's composition
  (``spinepki.provider.create_server``) with the gate's clock injected; ``create_server``
  takes no clock, so a test that moves time past a CRL's nextUpdate has to compose it.
* :class:`AuditCapture` - every audit record of one provider, for 1:1 matching.
* :class:`SSPLoad` - a steady, bounded load of valid SSP requests from a few threads (new
  TLS connections and keep-alive), each request with its own ``Ssp-TraceID``.
* :class:`RSSSampler` - peak resident memory of this process while a scenario runs.

Everything is on 127.0.0.1; every loop is bounded in count and time and ends by itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import resource
import socket
import ssl
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from spinepki.audit import RECORD_ATTRIBUTE, AuditLogger
from spinepki.demo._callers import DEMO_ASID, DEMO_ROOT, SSPRequest
from spinepki.gate import GateASGIMiddleware, GateConfig, GateLimits, RequestGate
from spinepki.provider import FHIRDemoApp, ProviderConfig, ProviderLimits, ProviderServer
from spinepki.revocation import RevocationChecker, RevocationLimits, RevocationMode
from spinepki.revocation.fetchers import RequestsFetcher
from spinepki.testpki import TestPKI
from spinepki.tls import client_context, server_context
from spinepki.trust import TrustStore
from spinepki.validation import ClientCertValidator

__all__ = [
    "AuditCapture",
    "Clock",
    "Env",
    "Outcome",
    "PeakSampler",
    "RSSSampler",
    "SSPLoad",
    "latency_summary",
    "one_request",
    "time_driven_provider",
]

ROOTS_KIND = "foundations"


class Clock:
    """A frozen, thread-safe "now" that only the test moves (``advance`` / ``set``)."""

    def __init__(self, start: dt.datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: dt.datetime) -> None:
        with self._lock:
            self._now = when


@dataclass(frozen=True)
class Env:
    """A test PKI on disk whose CRL/OCSP URLs a live responder answers."""

    pki: TestPKI
    directory: Path

    def config(self, **over: Any) -> ProviderConfig:
        from spinepki.gate import RootKind

        values: dict[str, Any] = {
            "asid": DEMO_ASID,
            "service_roots": {RootKind(ROOTS_KIND): (DEMO_ROOT,)},
            "certificate": self.directory / "certs/provider.chain.pem",
            "key": self.directory / "certs/provider.key.pem",
            "ssp_fqdns": (self.pki.ssp_fqdn,),
            "trust_files": (self.directory / "ca/trust-bundle.pem",),
            "revocation": RevocationMode.HARD_FAIL,
            "port": 0,
        }
        values.update(over)
        return ProviderConfig(**values)

    def client(self, name: str | None = "ssp", *, ciphers: str | None = None) -> ssl.SSLContext:
        leaf = self.pki.leaf(name) if name else None
        ctx = client_context(
            self.pki.trust_store(),
            cert=leaf.chain_pem if leaf else None,
            key=leaf.key_pem if leaf else None,
            unsafe_skip_credential_checks=True,
        )
        if ciphers is not None:
            ctx.set_ciphers(ciphers)
        return ctx


# -- audit --------------------------------------------------------------------------


class AuditCapture(logging.Handler):
    """Collects the audit events (``record.spinepki_audit`` dicts) of one logger."""

    _counter = 0

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        AuditCapture._counter += 1
        self.logger = logging.getLogger(f"spinepki.audit.resilience{AuditCapture._counter}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.logger.addHandler(self)
        self.events: list[dict[str, Any]] = []
        self._events_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, RECORD_ATTRIBUTE, None)
        if isinstance(event, dict):
            with self._events_lock:
                self.events.append(event)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._events_lock:
            return list(self.events)

    def detach(self) -> None:
        self.logger.removeHandler(self)


# -- the provider -------------------------------------------------------------------


@dataclass
class Running:
    """A started provider and the parts a test pokes at."""

    server: ProviderServer
    checker: RevocationChecker
    validator: ClientCertValidator
    audit: AuditCapture
    fetch_timeout: float


@contextlib.contextmanager
def time_driven_provider(
    env: Env,
    *,
    clock: Clock,
    mode: RevocationMode = RevocationMode.HARD_FAIL,
    fetch_timeout: float = 1.0,
    limits: ProviderLimits | None = None,
    refresh_interval: float | None = None,
    crls: Sequence[bytes] = (),
    failure_backoff: dt.timedelta = dt.timedelta(seconds=30),
) -> Iterator[Running]:
    """The composition of ``create_server`` (server_context, ClientCertValidator as the
    gate's checker, GateASGIMiddleware around the FHIR demo app, ProviderServer), with the
    gate's ``clock`` injected and a fetcher whose total timeout is ``fetch_timeout``."""
    config = env.config(revocation=mode, limits=limits or ProviderLimits())
    trust = TrustStore.from_paths(*config.trust_files)
    ctx = server_context(config.certificate, config.key, trust, client_auth=config.client_auth)
    fetcher = None if mode is RevocationMode.OFFLINE else RequestsFetcher(timeout=fetch_timeout)
    checker = RevocationChecker(
        mode, fetcher=fetcher, crls=crls, limits=RevocationLimits(failure_backoff=failure_backoff)
    )
    validator = ClientCertValidator(trust, ssp_fqdns=config.ssp_fqdns, revocation=checker)
    gate = RequestGate(
        GateConfig(
            provider_asid=config.asid,
            service_roots=dict(config.service_roots),
            client_auth=config.client_auth,
            certificate_checker=validator,
            limits=GateLimits(max_body_bytes=config.limits.max_body_bytes),
        )
    )
    audit = AuditCapture()
    app = GateASGIMiddleware(FHIRDemoApp(), gate=gate, audit=AuditLogger(audit.logger), clock=clock)
    if refresh_interval is not None:
        checker.start_background_refresh(refresh_interval, clock=clock)
    try:
        server = ProviderServer(
            app, ctx, host=config.host, port=0, limits=config.limits, on_stop=checker.close
        )
        with server:
            yield Running(server, checker, validator, audit, fetch_timeout)
    finally:
        checker.close()
        if fetcher is not None:
            fetcher.close()
        audit.detach()


# -- one request --------------------------------------------------------------------


def _read_head(sock: ssl.SSLSocket, buffer: bytearray, limit: int = 65536) -> bytes:
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        buffer += chunk
        if len(buffer) > limit:
            raise ConnectionError("response head too large")
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    return head


def read_http_response(sock: ssl.SSLSocket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length (what anycorn and the gate send)."""
    buffer = bytearray()
    head = _read_head(sock, buffer)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(buffer) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the response body")
        buffer += chunk
    return status, headers, bytes(buffer[:length])


def render(
    env: Env, port: int, clock: Callable[[], dt.datetime], trace: str, *, close: bool
) -> bytes:
    req = SSPRequest(headers={"Ssp-TraceID": trace})
    raw = req.render(f"{env.pki.provider_fqdn}:{port}", int(clock().timestamp()))
    if not close:
        raw = raw.replace(b"Connection: close\r\n", b"")
    return raw


def connect(
    address: tuple[str, int],
    ctx: ssl.SSLContext,
    fqdn: str,
    timeout: float,
    source: str | None = None,
) -> ssl.SSLSocket:
    """A TLS connection (from the loopback address ``source``, when given)."""
    bind = (source, 0) if source is not None else None
    raw = socket.create_connection(address, timeout=timeout, source_address=bind)
    try:
        return ctx.wrap_socket(raw, server_hostname=fqdn)
    except BaseException:
        raw.close()
        raise


def one_request(
    env: Env,
    address: tuple[str, int],
    clock: Callable[[], dt.datetime],
    *,
    cert: str = "ssp",
    timeout: float = 10.0,
    ctx: ssl.SSLContext | None = None,
) -> tuple[int, float, str]:
    """One SSP request on a new connection: (status, seconds, trace id)."""
    trace = str(uuid.uuid4())
    started = time.perf_counter()
    with connect(address, ctx or env.client(cert), env.pki.provider_fqdn, timeout) as tls:
        tls.sendall(render(env, address[1], clock, trace, close=True))
        status, _, _ = read_http_response(tls)
    return status, time.perf_counter() - started, trace


# -- steady load --------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One request of the load."""

    trace_id: str
    phase_start: str
    phase_end: str
    keep_alive: bool
    started: float
    elapsed: float
    status: int | None
    error: str | None = None
    body: bytes = b""
    connection_phase: str = ""
    """The phase in which the connection this request used was opened (keep-alive
    connections outlive phases: one opened before a restart is stale afterwards)."""

    @property
    def settled(self) -> bool:
        """Started and finished inside one phase (no state change while it ran)."""
        return self.phase_start == self.phase_end


@dataclass
class SSPLoad:
    """A steady load of valid SSP requests: ``threads`` clients, even ones opening a new
    TLS connection per request, odd ones reusing one keep-alive connection.

    Bounded: at most ``max_requests`` in total and ``max_seconds`` of wall time; each
    client pauses ``pause`` seconds between requests. Use as a context manager; switch
    state with :meth:`phase` (label "~" while a change is in progress)."""

    env: Env
    address: tuple[str, int]
    clock: Callable[[], dt.datetime]
    threads: int = 3
    pause: float = 0.02
    max_requests: int = 3000
    max_seconds: float = 60.0
    timeout: float = 15.0
    outcomes: list[Outcome] = field(default_factory=list)
    _phase: str = "start"
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)
    _issued: int = 0

    def __enter__(self) -> SSPLoad:
        self._deadline = time.monotonic() + self.max_seconds
        self._ctx = self.env.client("ssp")
        for i in range(self.threads):
            worker = threading.Thread(
                target=self._run, args=(i % 2 == 1,), name=f"ssp-load-{i}", daemon=True
            )
            self._workers.append(worker)
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=self.timeout + 5)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """``with load.phase("down"): responder.set_fault(...)`` - the state change runs
        under the label "~", so no request is attributed to the wrong state."""
        with self._lock:
            self._phase = "~"
        try:
            yield
        finally:
            with self._lock:
                self._phase = name

    def current(self) -> str:
        with self._lock:
            return self._phase

    def wait_for(self, phase: str, count: int, limit: float = 20.0) -> None:
        """Until ``count`` requests settled in ``phase`` (bounded by ``limit`` seconds)."""
        end = time.monotonic() + limit
        while time.monotonic() < end and not self._stop.is_set():
            if len(self.settled(phase)) >= count:
                return
            time.sleep(0.02)

    def settled(self, phase: str) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.settled and o.phase_start == phase]

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def _take(self) -> bool:
        with self._lock:
            if self._issued >= self.max_requests:
                return False
            self._issued += 1
            return True

    def _run(self, keep_alive: bool) -> None:
        tls: ssl.SSLSocket | None = None
        connection_phase = ""
        fqdn = self.env.pki.provider_fqdn
        try:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                if not self._take():
                    return
                trace = str(uuid.uuid4())
                phase = self.current()
                started = time.perf_counter()
                status: int | None = None
                error: str | None = None
                body = b""
                try:
                    if tls is None:
                        connection_phase = phase
                        tls = connect(self.address, self._ctx, fqdn, self.timeout)
                    tls.sendall(
                        render(self.env, self.address[1], self.clock, trace, close=not keep_alive)
                    )
                    status, headers, body = read_http_response(tls)
                    if not keep_alive or headers.get("connection", "").lower() == "close":
                        tls.close()
                        tls = None
                except (OSError, ValueError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    if tls is not None:
                        with contextlib.suppress(OSError):
                            tls.close()
                    tls = None
                elapsed = time.perf_counter() - started
                outcome = Outcome(
                    trace,
                    phase,
                    self.current(),
                    keep_alive,
                    started,
                    elapsed,
                    status,
                    error,
                    body,
                    connection_phase,
                )
                with self._lock:
                    self.outcomes.append(outcome)
                self._stop.wait(self.pause)
        finally:
            if tls is not None:
                with contextlib.suppress(OSError):
                    tls.close()


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """median / p95 / max in milliseconds (p95 by nearest rank)."""
    if not seconds:
        return {"n": 0, "median_ms": 0.0, "p95_ms": 0.0, "max_ms": 0.0}
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {
        "n": len(ordered),
        "median_ms": statistics.median(ordered) * 1000,
        "p95_ms": p95 * 1000,
        "max_ms": ordered[-1] * 1000,
    }


# -- memory -------------------------------------------------------------------------


def current_rss() -> int:
    """Resident set size of this process now, in bytes (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def peak_rss() -> int:
    """Peak resident set size of this process since it started, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakSampler:
    """The largest value ``sample()`` gave, called every ``interval`` seconds on a daemon
    thread while in the block (and once more on leaving it, with ``sample_on_exit``)."""

    def __init__(
        self,
        sample: Callable[[], int],
        interval: float,
        *,
        initial: int = 0,
        name: str | None = None,
        sample_on_exit: bool = False,
    ) -> None:
        self.interval = interval
        self.peak = initial
        self._sample = sample
        self._sample_on_exit = sample_on_exit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        if self._sample_on_exit:
            self.peak = max(self.peak, self._sample())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._sample())


class RSSSampler(PeakSampler):
    """Samples the resident set size every ``interval`` seconds while in its block."""

    def __init__(self, interval: float = 0.02) -> None:
        self.start = current_rss()
        super().__init__(
            current_rss, interval, initial=self.start, name="rss-sampler", sample_on_exit=True
        )

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20
