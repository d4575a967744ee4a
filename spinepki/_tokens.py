"""GP Connect bearer tokens for tests, demos and probes.

GP Connect consumers send *unsecured* JWTs (``alg: none``, empty signature, trailing dot);
the SSP forwards them unchanged. :func:`example_claims` is the specification's 1.x example
token ([JWT]) with fresh times; :func:`gp_connect_token` encodes it.
The identities are the specification's published examples, not real people or systems.

:func:`metadata_claims` is the token of the ``GET /metadata`` probe that ``spinepki tls
scan`` and ``spinepki security-test`` both send.

Private and neutral: the test PKI (:mod:`spinepki.testpki`, which re-exports the public
names), the TLS scanner's probes (:mod:`spinepki.scan`) and the security test
(:mod:`spinepki.securitytest`) build tokens here, and none may import another
(docs/architecture.md).

    >>> from spinepki._tokens import gp_connect_token
    >>> gp_connect_token(now=1_750_000_000).endswith(".")
    True
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any

__all__ = [
    "FROM_ASID",
    "LIFETIME",
    "METADATA_INTERACTION",
    "TO_ASID",
    "example_claims",
    "gp_connect_token",
    "metadata_claims",
    "unsigned_jwt",
]

#: exp - iat, exactly, as GP Connect requires.
LIFETIME = 300
_HEADER = {"alg": "none", "typ": "JWT"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned_jwt(claims: Mapping[str, Any], header: Mapping[str, Any] = _HEADER) -> str:
    """The compact form of an unsecured JWT: ``b64(header).b64(claims).`` (RFC 7519 §6)."""

    def raw(obj: Mapping[str, Any]) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    return f"{_b64(raw(header))}.{_b64(raw(claims))}."


def _organization(name: str) -> dict[str, Any]:
    """The requesting organisation of the example tokens (ODS code A1001)."""
    return {
        "resourceType": "Organization",
        "identifier": [
            {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A1001"}
        ],
        "name": name,
    }


def _practitioner(family: str, given: str, prefix: str) -> dict[str, Any]:
    """The requesting practitioner of the example tokens (user 10019, the specification's
    example SDS user and role profile IDs). A new dict each call: callers may edit claims."""
    return {
        "resourceType": "Practitioner",
        "id": "10019",
        "identifier": [
            {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "111222333444"},
            {"system": "https://fhir.nhs.uk/Id/sds-role-profile-id", "value": "444555666777"},
        ],
        "name": [{"family": family, "given": [given], "prefix": [prefix]}],
    }


def example_claims(
    now: int | None = None,
    *,
    scope: str = "patient/*.read",
    age: int = 0,
    audience: str = "https://providersupplier.thirdparty.nhs.uk/GP0001/STU3/1",
    **overrides: Any,
) -> dict[str, Any]:
    """The 1.x example token's claims, issued two seconds before ``now`` (as the NHS
    assurance pack does), ``exp = iat + 300``.

    Args:
        now: seconds since the epoch (default: the current time).
        scope: ``requested_scope`` (``patient/*.read``, ``organization/*.read``, …).
        age: how much older than that the token is (``age=600`` makes it expired).
        audience: ``aud`` (the provider's service root URL in 1.x).
        overrides: claims to replace or add (e.g. a broken ``requesting_practitioner``).
    """
    iat = (int(time.time()) if now is None else now) - 2 - age
    claims: dict[str, Any] = {
        "iss": "https://consumersupplier.thirdparty.nhs.uk/",
        "sub": "10019",
        "aud": audience,
        "exp": iat + LIFETIME,
        "iat": iat,
        "reason_for_request": "directcare",
        "requested_scope": scope,
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
        "requesting_organization": _organization("Test Hospital"),
        "requesting_practitioner": _practitioner("Jones", "Claire", "Dr"),
    }
    claims.update(overrides)
    return claims


def gp_connect_token(
    now: int | None = None, *, scope: str = "patient/*.read", age: int = 0, **overrides: Any
) -> str:
    """An unsecured GP Connect 1.x token of :func:`example_claims` (same arguments)."""
    return unsigned_jwt(example_claims(now, scope=scope, age=age, **overrides))


METADATA_INTERACTION = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1"
#: Example ASIDs from the GP Connect specification (consumer and provider).
FROM_ASID = "200000000359"
TO_ASID = "918999198738"


def metadata_claims(audience: str, now: int) -> dict[str, Any]:
    """GP Connect 1.x claims for a metadata read at ``now`` (seconds since the epoch)."""
    return {
        "iss": "https://spinepki.scan.invalid/",
        "sub": "10019",
        "aud": audience,
        "exp": now + 300,
        "iat": now,
        "reason_for_request": "directcare",
        "requested_scope": "organization/*.read",
        "requesting_device": {
            "resourceType": "Device",
            "identifier": [
                {"system": "https://spinepki.scan.invalid/Id/device", "value": "spinepki-scan"}
            ],
            "model": "spinepki tls scan",
            "version": "1",
        },
        "requesting_organization": _organization("spinepki scanner"),
        "requesting_practitioner": _practitioner("Scanner", "Spinepki", "Mx"),
    }
