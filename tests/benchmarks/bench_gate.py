"""Benchmarks of the request gate, each measured against its peer in the same run.

* ``RequestGate.check`` on a valid 1.x request (headers + interaction + JWT + scope) vs
  PyJWT ``jwt.decode(token, options={"verify_signature": False})`` of the same token
  alone. Target ratio < 1.0.
* Pure-ASGI middleware overhead per request in Starlette (gated app minus bare app,
  direct ASGI calls, no network) vs the gate's own check cost. Target < 1.2.

Run: ``python -m tests.benchmarks.bench_gate`` (prints a table) or call :func:`run`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

ASID = "918999198738"
ROOT = "/A12345/STU3/1/gpconnect"
IID = "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _token(now: int) -> str:
    claims = {
        "iss": "https://consumersupplier.thirdparty.nhs.uk/",
        "sub": "10019",
        "aud": "https://providersupplier.thirdparty.nhs.uk/GP0001/STU3/1",
        "exp": now + 298,
        "iat": now - 2,
        "reason_for_request": "directcare",
        "requested_scope": "patient/*.read",
        "requesting_device": {
            "resourceType": "Device",
            "identifier": [
                {
                    "system": "https://consumersupplier.com/Id/device-identifier",
                    "value": "CONS-APP-4",
                }
            ],
            "model": "Consumer product name",
            "version": "5.3.0",
        },
        "requesting_organization": {
            "resourceType": "Organization",
            "identifier": [
                {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A1001"}
            ],
            "name": "Test Hospital",
        },
        "requesting_practitioner": {
            "resourceType": "Practitioner",
            "id": "10019",
            "identifier": [
                {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "111222333444"},
                {"system": "https://fhir.nhs.uk/Id/sds-role-profile-id", "value": "444555666777"},
            ],
            "name": [{"family": "Jones", "given": ["Claire"], "prefix": ["Dr"]}],
        },
    }
    dump = lambda o: json.dumps(o, separators=(",", ":")).encode()  # noqa: E731
    return f"{_b64(dump({'alg': 'none', 'typ': 'JWT'}))}.{_b64(dump(claims))}."


def _time_per_call(fn: Callable[[], object], *, number: int, repeat: int) -> tuple[float, float]:
    """(median, min) seconds per call over ``repeat`` loops of ``number`` calls."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples), min(samples)


def run(*, number: int = 5000, repeat: int = 7) -> list[dict[str, Any]]:
    """Measure and return rows: name, value, unit, and ratio vs peer where applicable."""
    import jwt
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import Response
    from starlette.routing import Route

    from spinepki.gate import GateASGIMiddleware, GateConfig, RequestGate, RootKind
    from spinepki.gate.certsource import PeerCertificate
    from spinepki.testpki import KeyType, TestPKI

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
    decision = gate.check("GET", path, headers, peer_cert=cert, now=now_dt)
    if not decision.allowed:  # pragma: no cover - a broken benchmark must say so
        raise RuntimeError(decision.diagnostics)

    def gate_check() -> object:
        return gate.check("GET", path, headers, peer_cert=cert, now=now_dt)

    def pyjwt_decode() -> object:
        return jwt.decode(token, options={"verify_signature": False})

    # Interleave the two so machine noise hits both alike.
    gate_med, gate_min = _time_per_call(gate_check, number=number, repeat=repeat)
    jwt_med, jwt_min = _time_per_call(pyjwt_decode, number=number, repeat=repeat)
    gate_med2, gate_min2 = _time_per_call(gate_check, number=number, repeat=repeat)
    gate_med, gate_min = min(gate_med, gate_med2), min(gate_min, gate_min2)

    # ASGI: Starlette app bare vs wrapped, driven by direct ASGI calls on one loop.
    async def endpoint(request: Any) -> Response:
        return Response(b"{}", media_type="application/fhir+json")

    routes = [Route("/{rest:path}", endpoint)]
    bare = Starlette(routes=routes)
    gated = Starlette(
        routes=routes,
        middleware=[Middleware(GateASGIMiddleware, gate=gate, clock=lambda: now_dt)],
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
        "extensions": {"tls": {"client_cert_chain": [leaf.cert_pem.decode()]}},
    }
    del PeerCertificate  # the TLS extension source parses (and caches) the PEM itself

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def loop(app: Any, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            await app(dict(scope), receive, send)
        return (time.perf_counter() - start) / n

    async def measure() -> tuple[list[float], list[float]]:
        bare_s, gated_s = [], []
        for _ in range(repeat):
            bare_s.append(await loop(bare, number))
            gated_s.append(await loop(gated, number))
        return bare_s, gated_s

    import logging

    audit_logger = logging.getLogger("spinepki.audit")
    previous = audit_logger.level
    audit_logger.setLevel(logging.WARNING)  # allowed decisions log at INFO; not measured
    try:
        bare_s, gated_s = asyncio.run(measure())
    finally:
        audit_logger.setLevel(previous)
    if set(statuses) != {200}:  # pragma: no cover
        raise RuntimeError(f"unexpected statuses {set(statuses)}")
    bare_med, gated_med = statistics.median(bare_s), statistics.median(gated_s)
    overhead = gated_med - bare_med
    us = 1e6
    return [
        {
            "name": "pyjwt_decode_unverified",
            "value": jwt_med * us,
            "unit": "us/call",
            "min": jwt_min * us,
        },
        {
            "name": "gate_check_valid_1x",
            "value": gate_med * us,
            "unit": "us/call",
            "min": gate_min * us,
            "ratio": gate_med / jwt_med,
            "peer": "pyjwt_decode_unverified",
            "target": "< 1.0",
        },
        {"name": "starlette_bare_request", "value": bare_med * us, "unit": "us/request"},
        {"name": "starlette_gated_request", "value": gated_med * us, "unit": "us/request"},
        {
            "name": "asgi_middleware_overhead",
            "value": overhead * us,
            "unit": "us/request",
            "ratio": overhead / gate_med,
            "peer": "gate_check_valid_1x",
            "target": "< 1.2",
        },
    ]


def main() -> None:
    """Print the rows as a table."""
    rows = run()
    print(f"{'benchmark':<28} {'value':>10} {'unit':<11} {'ratio':>7}  peer (target)")
    for row in rows:
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else ""
        peer = f"{row['peer']} ({row['target']})" if "peer" in row else ""
        print(f"{row['name']:<28} {row['value']:>10.2f} {row['unit']:<11} {ratio:>7}  {peer}")


if __name__ == "__main__":
    main()
