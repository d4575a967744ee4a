"""Fuzz target: the strict unsecured-JWT decoder and the claim checker (rules §3).

Invariants: ``decode_unsecured_jwt`` and ``parse_json_strict`` raise only
``TokenParseError``; ``check_claims`` raises only the gate's ``Rejection`` (400 or 422);
no diagnostic ever quotes token content; each input is bounded in time and memory.

Atheris: ``python -m tests.fuzz.fuzz_jwt [libFuzzer flags] [corpus]``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import strategies as st

from spinepki._json import parse_json_strict
from spinepki.errors import TokenParseError
from spinepki.gate import INTERACTIONS, Generation
from spinepki.gate._decision import Rejection
from spinepki.gate._jwt import check_claims, decode_unsecured_jwt
from tests.fuzz import _samples as s
from tests.fuzz._helpers import atheris_main, fuzz_test, hypothesis_entry
from tests.gate._helpers import READ_PATIENT

V1_READ = next(i for i in INTERACTIONS if i.interaction_id == READ_PATIENT)
V07 = next(i for i in INTERACTIONS if i.generation is Generation.V0_7)
CONFIG = s.gate_config()

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=24)
    | st.just(s.CANARY)
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)


json_values = st.recursive(json_scalars, _containers, max_leaves=40)
# Plausible FHIR-ish resources: a resourceType (often right) plus random elements.
resources = st.fixed_dictionaries(
    {
        "resourceType": st.sampled_from(
            ["Device", "Organization", "Practitioner", "Patient", "Bundle", "", s.CANARY]
        )
    },
    optional={
        "id": json_values,
        "identifier": st.lists(
            st.dictionaries(st.sampled_from(["system", "value", "use"]), json_values), max_size=3
        ),
        "name": json_values,
    },
).flatmap(
    lambda base: st.dictionaries(st.text(max_size=10), json_values, max_size=3).map(
        lambda extra: {**extra, **base}
    )
)
claim_names = [*sorted(s.v1_claims()), "requested_record", "jti", s.CANARY]


def _decode(token: str) -> dict[str, Any] | None:
    try:
        claims = decode_unsecured_jwt(token)
    except TokenParseError as exc:
        assert s.CANARY not in exc.reason  # noqa: PT017 - a property of every refusal
        return None
    assert isinstance(claims, dict)
    return claims


def _astral(value: object) -> bool:
    """Whether json.dumps would escape a character as a UTF-16 surrogate pair."""
    return any(ord(c) > 0xFFFF for c in json.dumps(value, ensure_ascii=False))


def _check(claims: dict[str, Any], v07: bool = False) -> None:
    interaction = V07 if v07 else V1_READ
    try:
        check_claims(claims, interaction, CONFIG, float(s.NOW))
    except Rejection as rejection:
        assert rejection.status in {400, 422}, rejection.status  # noqa: PT017 - see above
        assert s.CANARY not in rejection.diagnostics  # noqa: PT017


@fuzz_test(st.text(max_size=2000) | st.text(alphabet="eyJAaz09_-.=", max_size=400))
def test_decode_any_text(token: str) -> None:
    """Any text as a token: claims or TokenParseError, never another exception."""
    _decode(token)


@fuzz_test(st.binary(max_size=300), st.binary(max_size=2000), st.text("._-=A", max_size=3))
def test_decode_framed_bytes(header: bytes, payload: bytes, tail: str) -> None:
    """Well-framed base64url of random bytes (non-UTF-8, junk JSON, BOMs): parse error."""
    _decode(f"{s.b64(header)}.{s.b64(payload)}.{tail}")


@fuzz_test(json_values, json_values)
def test_decode_random_json(header: Any, payload: Any) -> None:
    """Any JSON header and payload: only the exact none header and an object pass."""
    token = f"{s.b64(json.dumps(header).encode())}.{s.b64(json.dumps(payload).encode())}."
    claims = _decode(token)
    if claims is not None:
        assert header == s.NONE_HEADER
        _check(claims)


@fuzz_test(st.binary(max_size=4000))
def test_parse_json_strict(raw: bytes) -> None:
    """parse_json_strict on any bytes: a value or TokenParseError."""
    with contextlib.suppress(TokenParseError):
        parse_json_strict(raw, what="fuzz")


@fuzz_test(
    st.dictionaries(st.sampled_from(claim_names), json_values | resources, max_size=12),
    st.lists(st.sampled_from(sorted(s.v1_claims())), max_size=4),
    st.booleans(),
)
def test_check_claims(over: dict[str, Any], drop: list[str], v07: bool) -> None:
    """A decodable token with random claim values and missing claims: 400/422 or pass."""
    claims = {**s.v1_claims(), **over}
    for name in drop:
        claims.pop(name, None)
    token = s.encode(claims)
    decoded = _decode(token)
    if decoded is None and _astral(claims):
        return  # finding F1 (see test_regression_escaped_surrogate_pair), owned by _jwt.py
    assert decoded == claims, "a well-formed token must round-trip"
    _check(decoded, v07)


@fuzz_test(
    st.sampled_from(["requesting_device", "requesting_organization", "requesting_practitioner"]),
    resources,
)
def test_check_claims_resources(claim: str, resource: dict[str, Any]) -> None:
    """Random embedded FHIR resources: 400/422 or pass, never a crash."""
    _check(s.v1_claims(**{claim: resource}))


def test_regression_escaped_surrogate_pair() -> None:
    """Found by fuzzing (minimised: a claim holding U+10000): a token whose JSON escapes a
    non-BMP character as a surrogate pair (json.dumps' default) must decode."""
    claims = s.v1_claims(iss="\U00010000")
    token = s.encode(claims)  # the payload holds "iss":"\ud800\udc00"
    assert '"iss":"\\ud800\\udc00"' in json.dumps(claims, separators=(",", ":"))
    assert decode_unsecured_jwt(token) == claims


def test_regression_lone_surrogate_still_refused() -> None:
    """A lone escaped surrogate stays refused (it cannot be encoded as UTF-8 later)."""
    payload = s.b64(b'{"iss":"\\ud800"}')
    with pytest.raises(TokenParseError):
        decode_unsecured_jwt(f"{s.b64(json.dumps(s.NONE_HEADER).encode())}.{payload}.")


def _atheris_seeds() -> list[bytes]:
    return [bytes([i]) + b"\x00" * 64 for i in range(6)]


if __name__ == "__main__":
    atheris_main(hypothesis_entry(__name__), _atheris_seeds())
