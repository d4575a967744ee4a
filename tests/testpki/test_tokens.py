"""The GP Connect example token builder: what the gate accepts, and the knobs tests use."""

from __future__ import annotations

import datetime as dt

from spinepki.gate import GateConfig, RequestGate, RootKind, decode_unsecured_jwt
from spinepki.testpki import KeyType, TestPKI, example_claims, gp_connect_token, unsigned_jwt

NOW = 1_750_000_000
ROOT = "https://gp.example.nhs.uk/A12345/STU3/1/gpconnect"
PATIENT = "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1"
_SSP = TestPKI.create(key_type=KeyType.EC_P256).leaf("ssp")


def _decide(token: str) -> int:
    gate = RequestGate(
        GateConfig(provider_asid="918999198738", service_roots={RootKind.FOUNDATIONS: ROOT})
    )
    headers = [
        ("Ssp-TraceID", "09a01679-2564-0fb4-5129-aecc81ea2706"),
        ("Ssp-From", "200000000359"),
        ("Ssp-To", "918999198738"),
        ("Ssp-InteractionID", PATIENT),
        ("Authorization", f"Bearer {token}"),
    ]
    decision = gate.check(
        "GET",
        "/A12345/STU3/1/gpconnect/Patient/1",
        headers,
        peer_cert=_SSP.certificate,  # no certificate checker configured: presence only
        now=dt.datetime.fromtimestamp(NOW, dt.UTC),
    )
    return decision.status


def test_example_token_is_accepted_by_the_gate() -> None:
    """The default token is the specification's example A with fresh times: allowed."""
    assert _decide(gp_connect_token(NOW)) == 200


def test_times_follow_gp_connect() -> None:
    """iat is two seconds before now (as the assurance pack), exp = iat + 300."""
    claims = decode_unsecured_jwt(gp_connect_token(NOW))
    assert claims["iat"] == NOW - 2
    assert claims["exp"] - claims["iat"] == 300


def test_age_makes_an_expired_token() -> None:
    """age=600 gives a token whose exp has passed: the gate refuses it with 400."""
    assert _decide(gp_connect_token(NOW, age=600)) == 400


def test_overrides_and_scope() -> None:
    """Scope and any claim can be replaced; unsigned_jwt encodes with the trailing dot."""
    claims = example_claims(NOW, scope="organization/*.read", sub="other")
    assert claims["requested_scope"] == "organization/*.read"
    assert claims["sub"] == "other"
    token = unsigned_jwt(claims)
    assert token.endswith(".")
    assert token.count(".") == 2
    assert decode_unsecured_jwt(token)["sub"] == "other"
