"""Hypothesis: hostile tokens, headers and paths only ever produce 400/422, quickly."""

from __future__ import annotations

import json
import time
import tracemalloc
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinepki.gate import INTERACTIONS, RequestGate, RootKind
from tests.gate._helpers import (
    NOW_DT,
    READ_PATIENT,
    ROOTS,
    b64,
    encode,
    make_config,
    request_for,
    ssp_headers,
    v1_claims,
)

GATE = RequestGate(make_config())
PATIENT = {(i.interaction_id, i.root): i for i in INTERACTIONS}[
    (READ_PATIENT, RootKind.FOUNDATIONS)
]
PATH = ROOTS[RootKind.FOUNDATIONS] + "/Patient/1"
FUZZ = settings(max_examples=300, deadline=500, suppress_health_check=[HealthCheck.too_slow])


def _cert() -> Any:
    from spinepki.testpki import KeyType, TestPKI

    return TestPKI.create(key_type=KeyType.EC_P256).leaf("ssp").certificate


CERT = _cert()


def _check(
    headers: Any, path: Any = PATH, method: Any = "GET", query: Any = None, body: Any = None
) -> Any:
    start = time.perf_counter()
    decision = GATE.check(method, path, headers, query=query, body=body, peer_cert=CERT, now=NOW_DT)
    assert time.perf_counter() - start < 0.25
    assert decision.status in {200, 400, 422}
    decision.operation_outcome()
    return decision


def _with_token(token: str) -> Any:
    return ssp_headers(READ_PATIENT, token)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=30,
)


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes_token(data: bytes) -> None:
    """Random bytes as the Authorization value: 400, never an exception."""
    headers = [(k.encode(), v.encode()) for k, v in _with_token("x") if k != "Authorization"]
    headers.append((b"authorization", b"Bearer " + data))
    assert _check(headers).status == 400


@FUZZ
@given(st.text(max_size=3000))
def test_random_text_token(text: str) -> None:
    """Random text (any Unicode) as the token: 400."""
    assert _check(_with_token(text)).status == 400


@FUZZ
@given(st.binary(max_size=2000), st.binary(max_size=200))
def test_random_base64_parts(payload: bytes, header: bytes) -> None:
    """Well-formed base64url of random bytes (non-UTF-8, junk JSON): 400."""
    assert _check(_with_token(f"{b64(header)}.{b64(payload)}.")).status == 400


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(v1_claims())), json_values, max_size=12))
def test_random_claims(over: dict[str, Any]) -> None:
    """Valid JWT framing around random claim values: 200, 400 or 422 only."""
    claims = {**v1_claims(), **over}
    _check(_with_token(encode(claims)))


@FUZZ
@given(
    st.sampled_from(["requesting_device", "requesting_organization", "requesting_practitioner"]),
    st.dictionaries(st.text(max_size=12), json_values, max_size=6),
)
def test_random_resources(claim: str, resource: dict[str, Any]) -> None:
    """Random objects as embedded FHIR resources: 400 or 422 (or 200 if valid)."""
    _check(_with_token(encode(v1_claims(**{claim: resource}))))


@FUZZ
@given(st.lists(st.tuples(st.binary(max_size=40), st.binary(max_size=200)), max_size=120))
def test_random_headers(extra: list[tuple[bytes, bytes]]) -> None:
    """Random extra header pairs (non-UTF-8, repeats, many) never crash the gate."""
    headers = [(k.encode(), v.encode()) for k, v in request_for(PATIENT).headers]
    _check(extra + headers)


@FUZZ
@given(st.text(max_size=300), st.text(max_size=300))
def test_random_paths_and_queries(suffix: str, query: str) -> None:
    """Random paths and queries under a root: 200 or 400."""
    iid = "urn:nhs:names:services:gpconnect:fhir:rest:search:patient-1"
    headers = ssp_headers(iid, encode(v1_claims()))
    _check(headers, ROOTS[RootKind.FOUNDATIONS] + "/" + suffix, query=query)


@FUZZ
@given(st.binary(max_size=300), st.text(max_size=10))
def test_random_paths_bytes_and_methods(path: bytes, method: str) -> None:
    """Random byte paths and method strings: 400."""
    _check(request_for(PATIENT).headers, path, method)


def test_deep_nesting_and_huge_values_bounded() -> None:
    """Deeply nested JSON and huge values are refused in bounded time and memory."""
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    tokens = [
        f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{b64(deep.encode())}.",
        encode(v1_claims(exp=int("9" * 4000))),
        encode(v1_claims(iss="x" * 7000)),
        "a" * 10_000_000,
    ]
    requests = [_with_token(token) for token in tokens]
    tracemalloc.start()
    try:
        for headers in requests:
            assert _check(headers).status == 400
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # the 10 MB token is refused by its length, never copied


def test_deep_body_bounded() -> None:
    """A 1 MiB body of nested arrays is a 422, not a RecursionError."""
    iid = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.migratestructuredrecord-1"
    migrate = {(i.interaction_id, i.root): i for i in INTERACTIONS}[(iid, RootKind.STRUCTURED)]
    req = request_for(migrate)
    decision = _check(req.headers, req.path, "POST", body=b"[" * (1024 * 1024))
    assert decision.status == 422
