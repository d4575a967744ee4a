"""Benchmarks of the request gate (issue 4 §5), each measured against its peer in one run.

* ``RequestGate.check`` on a valid 1.x request (headers + interaction + JWT + scope) vs
  PyJWT ``jwt.decode(token, options={"verify_signature": False})`` of the same token
  alone, alternating rounds. Target ratio < 1.0.
* Pure-ASGI middleware overhead per request in Starlette: the same Starlette app and the
  same request (direct ASGI calls on one event loop, no network), bare and wrapped in
  :class:`GateASGIMiddleware`, in alternating rounds with these peers:

  - ``check`` alone, in a tight loop (the "isolated" check cost);
  - the bare app followed by a direct ``gate.check`` of the same request, per request:
    what an app pays doing the check by hand, so ``gate_check_beside_starlette`` is the
    check's cost when it shares the CPU's caches and branch predictors with Starlette;
  - the middleware around a gate that returns a ready decision: the middleware's own work
    (certificate lookup, audit call, header rewrite, one coroutine frame), without check;
  - a control without ASGI: ~5 us of unrelated stdlib work (json, urllib, email) before
    each check, which slows the check down just as much as Starlette does.

  ``asgi_middleware_overhead`` is gated minus bare; its target (< 1.2) is set against the
  check beside Starlette, and also shown against the isolated check (the literal reading
  of the issue), which charges the middleware for the ~20% the check itself slows down
  when it runs interleaved with any other code. See docs/gate.md "Performance".

Allowed decisions audit at INFO; the ASGI rounds run with the audit logger at WARNING
(as the original measurement did), and ``audit_record_allowed`` measures the INFO event
separately, through a NullHandler.

Run: ``python -m tests.benchmarks.bench_gate`` (prints a table), or ``make bench``.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import statistics
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from spinepki._tokens import gp_connect_token
from tests.benchmarks._helpers import Row, per_call, row, side_by_side

ASID = "918999198738"
ROOT = "/A12345/STU3/1/gpconnect"
IID = "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1"
US = 1e6


def _token(now: int) -> str:
    return gp_connect_token(now)


def run(quick: bool = False) -> list[Row]:
    """Measure and return rows in the shared runner's shape (see ``_util.row``)."""
    import jwt
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import Response
    from starlette.routing import Route

    from spinepki.audit import AuditLogger
    from spinepki.gate import GateASGIMiddleware, GateConfig, GateDecision, RequestGate, RootKind
    from spinepki.testpki import KeyType, TestPKI

    number, repeat = (300, 3) if quick else (3000, 15)
    pki = TestPKI.create(key_type=KeyType.EC_P256)
    leaf = pki.leaf("ssp")
    cert = leaf.certificate
    now_dt = datetime.now(UTC)
    token = _token(int(now_dt.timestamp()))
    gate = RequestGate(GateConfig(provider_asid=ASID, service_roots={RootKind.FOUNDATIONS: ROOT}))
    path = f"{ROOT}/Patient/1"
    headers = [
        (b"host", b"provider.example.nhs.uk"),
        (b"accept", b"application/fhir+json"),
        (b"ssp-traceid", b"09a01679-2564-0fb4-5129-aecc81ea2706"),
        (b"ssp-from", b"200000000359"),
        (b"ssp-to", ASID.encode()),
        (b"ssp-interactionid", IID.encode()),
        (b"authorization", f"Bearer {token}".encode()),
    ]
    decision = gate.check("GET", path, headers, query=b"", peer_cert=cert, now=now_dt)
    if not decision.allowed:  # pragma: no cover - a broken benchmark must say so
        raise RuntimeError(decision.diagnostics)

    # The same arguments the middleware passes for this request.
    def gate_check() -> object:
        return gate.check("GET", path, headers, query=b"", peer_cert=cert, now=now_dt)

    def pyjwt_decode() -> object:
        return jwt.decode(token, options={"verify_signature": False})

    check_s, jwt_s = side_by_side(gate_check, pyjwt_decode, number=number, repeat=repeat)

    # -- ASGI -----------------------------------------------------------------------------
    class FixedGate(RequestGate):
        """A gate whose check is free: isolates the middleware's own work."""

        __slots__ = ()

        def check(self, *args: Any, **kwargs: Any) -> GateDecision:
            return decision

    async def endpoint(request: Any) -> Response:
        return Response(b"{}", media_type="application/fhir+json")

    routes = [Route("/{rest:path}", endpoint)]
    clock = lambda: now_dt  # noqa: E731 - the token's times are fixed to this instant
    bare = Starlette(routes=routes)
    gated = Starlette(
        routes=routes, middleware=[Middleware(GateASGIMiddleware, gate=gate, clock=clock)]
    )
    fixed = Starlette(
        routes=routes,
        middleware=[Middleware(GateASGIMiddleware, gate=FixedGate(gate.config), clock=clock)],
    )
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 443),
        # What anycorn puts there: the leaf's PEM (parsed once, then a cache hit).
        "extensions": {"tls": {"client_cert_chain": [leaf.cert_pem.decode()]}},
    }
    statuses: set[int] = set()
    no_store: set[bool] = set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])
            no_store.add((b"cache-control", b"no-store") in message["headers"])

    async def app_round(app: Any) -> float:
        start = time.perf_counter()
        for _ in range(number):
            await app(dict(scope), receive, send)
        return (time.perf_counter() - start) / number

    async def by_hand_round() -> float:
        start = time.perf_counter()
        for _ in range(number):
            await bare(dict(scope), receive, send)
            gate_check()
        return (time.perf_counter() - start) / number

    # A control with no ASGI and no middleware in it: ~5 us of unrelated stdlib work
    # before each check shows the check's slowdown when interleaved is not Starlette's.
    payload = {"a": [1, 2, {"b": "c" * 50}], "d": {"e": list(range(30))}}

    def stdlib_work() -> None:
        json.dumps(payload)
        urllib.parse.urlsplit("https://gp.example.nhs.uk/A12345/STU3/1/gpconnect?x=1#y")
        email.utils.formatdate(0)

    async def stdlib_round() -> float:
        start = time.perf_counter()
        for _ in range(number):
            stdlib_work()
        return (time.perf_counter() - start) / number

    async def stdlib_check_round() -> float:
        start = time.perf_counter()
        for _ in range(number):
            stdlib_work()
            gate_check()
        return (time.perf_counter() - start) / number

    async def check_round() -> float:
        start = time.perf_counter()
        for _ in range(number):
            gate_check()
        return (time.perf_counter() - start) / number

    rounds: dict[str, Callable[[], Any]] = {
        "bare": lambda: app_round(bare),
        "gated": lambda: app_round(gated),
        "fixed": lambda: app_round(fixed),
        "by_hand": by_hand_round,
        "check": check_round,
        "stdlib": stdlib_round,
        "stdlib_check": stdlib_check_round,
    }

    async def measure(times: int) -> list[dict[str, float]]:
        """``times`` passes; each pass runs every variant once, back to back."""
        passes = []
        for _ in range(times):  # alternating rounds: machine noise hits all alike
            passes.append({key: await make() for key, make in rounds.items()})
        return passes

    def median_of(passes: list[dict[str, float]], fn: Callable[[dict[str, float]], float]) -> float:
        # Ratios are taken within each pass (its variants ran seconds apart, under the
        # same load) and then the median over passes: robust on a shared, busy host.
        return statistics.median(fn(p) for p in passes)

    audit_logger = logging.getLogger("spinepki.audit")
    previous = audit_logger.level
    audit_logger.setLevel(logging.WARNING)  # allowed decisions log at INFO: measured below
    try:
        asyncio.run(measure(1))  # warm-up (first-call caches, specialisation), discarded
        passes = asyncio.run(measure(repeat))
    finally:
        audit_logger.setLevel(previous)
    if statuses != {200}:  # pragma: no cover
        raise RuntimeError(f"unexpected statuses {statuses}")
    if no_store != {True, False}:  # pragma: no cover - gated says no-store, bare does not
        raise RuntimeError("Cache-Control: no-store missing from the gated responses")

    quiet = logging.getLogger("spinepki.audit.bench")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    quiet.setLevel(logging.INFO)
    audit = AuditLogger(quiet)
    audit_s = per_call(
        lambda: audit.record(decision, method="GET", now=now_dt), number=number, repeat=repeat
    )

    m = {key: statistics.median(p[key] for p in passes) for key in rounds}
    overhead = m["gated"] - m["bare"]
    beside = m["by_hand"] - m["bare"]
    own = m["fixed"] - m["bare"]
    stdlib_beside = m["stdlib_check"] - m["stdlib"]

    def ratio(numerator: tuple[str, str] | str, denominator: tuple[str, str] | str) -> float:
        def value(p: dict[str, float], spec: tuple[str, str] | str) -> float:
            return p[spec] if isinstance(spec, str) else p[spec[0]] - p[spec[1]]

        return median_of(passes, lambda p: value(p, numerator) / value(p, denominator))

    # Each: name, seconds, unit, the peer row, the ratio's (numerator, denominator), target.
    # fmt: off
    compared = [
        ("gate_check_beside_starlette", beside, "us/request", "gate_check_isolated_loop",
         (("by_hand", "bare"), "check"), ""),
        ("gate_check_beside_stdlib", stdlib_beside, "us/call", "gate_check_isolated_loop",
         (("stdlib_check", "stdlib"), "check"), ""),
        ("asgi_middleware_overhead", overhead, "us/request", "gate_check_beside_starlette",
         (("gated", "bare"), ("by_hand", "bare")), "< 1.2"),
        ("asgi_overhead_vs_isolated_check", overhead, "us/request", "gate_check_isolated_loop",
         (("gated", "bare"), "check"), "< 1.2 (literal; see gate.md)"),
        ("asgi_middleware_own_work", own, "us/request", "gate_check_isolated_loop",
         (("fixed", "bare"), "check"), "< 0.2"),
    ]
    # fmt: on
    return [
        row("pyjwt_decode_unverified", jwt_s * US, "us/call"),
        row(
            "gate_check_valid_1x",
            check_s * US,
            "us/call",
            peer="pyjwt_decode_unverified",
            ratio=check_s / jwt_s,
            target="< 1.0",
        ),
        row("starlette_bare_request", m["bare"] * US, "us/request"),
        row("starlette_gated_request", m["gated"] * US, "us/request"),
        row("gate_check_isolated_loop", m["check"] * US, "us/call"),
        *(
            row(name, value * US, unit, peer=peer, ratio=ratio(*against), target=target)
            for name, value, unit, peer, against, target in compared
        ),
        row("audit_record_allowed_info", audit_s * US, "us/call"),
    ]


def main() -> None:
    """Print the rows as a table."""
    rows = run()
    print(f"{'benchmark':<32} {'value':>9} {'unit':<11} {'ratio':>6}  peer (target)")
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
        peer = f"{r['peer']} ({r['target']})" if r["peer"] else ""
        print(f"{r['name']:<32} {r['value']:>9.2f} {r['unit']:<11} {ratio:>6}  {peer}")


if __name__ == "__main__":
    main()
