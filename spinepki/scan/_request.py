"""The GP Connect ``GET /metadata`` the scanner sends: SSP headers and an unsigned JWT.

The token follows GP Connect's example token (rules §3.7, the 1.x shape) with the
``organization/*.read`` scope the metadata interaction uses (rules §4), fresh ``iat`` and
``exp`` (``exp`` = ``iat`` + 300 s) and ``alg: none`` — the SSP forwards unsigned tokens.
The identities are the specification's published examples, not real people or systems.
"""

from __future__ import annotations

import uuid
from typing import Any

from spinepki._tokens import unsigned_jwt

__all__ = ["METADATA_INTERACTION", "malformed_request", "metadata_request", "unsigned_jwt"]

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
        "requesting_organization": {
            "resourceType": "Organization",
            "identifier": [
                {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A1001"}
            ],
            "name": "spinepki scanner",
        },
        "requesting_practitioner": {
            "resourceType": "Practitioner",
            "id": "10019",
            "identifier": [
                {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "111222333444"},
                {"system": "https://fhir.nhs.uk/Id/sds-role-profile-id", "value": "444555666777"},
            ],
            "name": [{"family": "Scanner", "given": ["Spinepki"], "prefix": ["Mx"]}],
        },
    }


def metadata_request(*, host_header: str, path: str, now: int) -> bytes:
    """The complete HTTP/1.1 request bytes for ``GET path`` with the SSP headers."""
    base = path[: -len("/metadata")] if path.endswith("/metadata") else path
    token = unsigned_jwt(metadata_claims(f"https://{host_header}{base}", now))
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host_header}",
        "Accept: application/fhir+json",
        f"Ssp-TraceID: {uuid.uuid4()}",
        f"Ssp-From: {FROM_ASID}",
        f"Ssp-To: {TO_ASID}",
        f"Ssp-InteractionID: {METADATA_INTERACTION}",
        f"Authorization: Bearer {token}",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def malformed_request(*, host_header: str, path: str, now: int) -> bytes:
    """The metadata request with one header line that is not ``name: value``.

    No HTTP server may parse it (RFC 9112 §5): whatever answers — the server itself, a
    proxy, the gate — answers with an error, which must carry ``Cache-Control: no-store``
    like every other answer.
    """
    request = metadata_request(host_header=host_header, path=path, now=now)
    return request[:-2] + b"this line is not a header\r\n\r\n"
