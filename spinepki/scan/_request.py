"""The GP Connect ``GET /metadata`` the scanner sends: SSP headers and an unsigned JWT.

The token follows GP Connect's example token ([JWT], the 1.x shape) with the
``organization/*.read`` scope the metadata interaction uses [SEC], fresh ``iat`` and
``exp`` (``exp`` = ``iat`` + 300 s) and ``alg: none`` — the SSP forwards unsigned tokens.
The identities are the specification's published examples, not real people or systems.
"""

from __future__ import annotations

import uuid

from spinepki._tokens import FROM_ASID, METADATA_INTERACTION, TO_ASID, metadata_claims, unsigned_jwt

__all__ = ["METADATA_INTERACTION", "malformed_request", "metadata_request", "unsigned_jwt"]


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
