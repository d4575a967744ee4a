"""The requests the suite sends: SSP headers and an unsigned GP Connect JWT, as raw bytes.

The token is the scanner's (``spinepki._tokens.metadata_claims``): GP Connect's 1.x
example shape, fresh ``iat``/``exp`` (300 s apart), ``alg: none``, the specification's
example identities. Header values are written exactly as given (CR, LF and NUL included).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from spinepki._tokens import FROM_ASID, METADATA_INTERACTION, TO_ASID, metadata_claims
from spinepki.errors import ConfigurationError
from spinepki.securitytest._target import Target

__all__ = [
    "FROM_ASID",
    "TO_ASID",
    "Header",
    "InteractionPaths",
    "ProbeTarget",
    "RequestFactory",
    "b64url",
]

READ_PATIENT = "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1"
NONE_HEADER = {"alg": "none", "typ": "JWT"}

Header = tuple[str, str]


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One interaction the suite calls: its ID, method, root-relative path and scope."""

    interaction: str
    """The ``Ssp-InteractionID``."""
    path: str
    """The path below the service root, e.g. ``/metadata``."""
    scope: str
    """The ``requested_scope`` it needs."""
    method: str = "GET"
    """The HTTP method (the suite sends no request body, so GET only)."""

    def __post_init__(self) -> None:
        if self.method != "GET":
            raise ConfigurationError("probe interactions must be GET reads", source=self.path)
        for name in ("interaction", "path", "scope"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or not value.isascii():
                raise ConfigurationError(f"{name} must be a non-empty ASCII string", source=name)
            if not value.isprintable() or (name != "scope" and " " in value):
                raise ConfigurationError(f"{name} holds characters it cannot hold", source=value)
        if not self.path.startswith("/") or "?" in self.path or "%" in self.path:
            raise ConfigurationError(
                "path must start with / and hold no query or escapes", source=self.path
            )


@dataclass(frozen=True, slots=True)
class InteractionPaths:
    """The two interactions the suite uses.

    ``valid`` must be served (the baseline, the method-override and idle-connection
    probes use it); ``other`` is a different interaction whose path the path-trick probes
    try to reach under ``valid``'s interaction ID.
    """

    valid: ProbeTarget = field(
        default_factory=lambda: ProbeTarget(
            METADATA_INTERACTION, "/metadata", "organization/*.read"
        )
    )
    """Default: the Foundations metadata read (``organization/*.read``)."""
    other: ProbeTarget = field(
        default_factory=lambda: ProbeTarget(READ_PATIENT, "/Patient/1", "patient/*.read")
    )
    """Default: a Patient read (``patient/*.read``)."""

    def __post_init__(self) -> None:
        if self.valid.path == self.other.path or self.valid.interaction == self.other.interaction:
            raise ConfigurationError(
                "the valid and the other interaction must differ in ID and path",
                source="interaction_paths",
            )


class RequestFactory:
    """Builds raw request bytes for one target."""

    def __init__(self, target: Target, paths: InteractionPaths, *, to_asid: str = TO_ASID) -> None:
        self.target = target
        self.paths = paths
        self.to_asid = to_asid
        self.audience = f"https://{target.host_header}{target.root}"

    def claims(self, scope: str, **over: Any) -> dict[str, Any]:
        """Valid GP Connect 1.x claims for ``scope`` now, with ``over`` replacing some."""
        claims = metadata_claims(self.audience, int(time.time()))
        claims["iss"] = "https://spinepki.security-test.invalid/"
        claims["requested_scope"] = scope
        claims.update(over)
        return claims

    def token(
        self,
        scope: str,
        *,
        header: dict[str, Any] | None = None,
        signature: str = "",
        payload: bytes | None = None,
        **over: Any,
    ) -> str:
        """A compact JWT: ``header`` (default ``alg: none``), the claims, ``signature``."""
        head = b64url(_json(header if header is not None else NONE_HEADER))
        body = b64url(payload if payload is not None else _json(self.claims(scope, **over)))
        return f"{head}.{body}.{signature}"

    def ssp_headers(self, probe: ProbeTarget, *, token: str | None = None) -> list[Header]:
        """The SSP headers and ``Authorization`` for ``probe`` (a fresh token unless given)."""
        return [
            ("Ssp-TraceID", str(uuid.uuid4())),
            ("Ssp-From", FROM_ASID),
            ("Ssp-To", self.to_asid),
            ("Ssp-InteractionID", probe.interaction),
            ("Authorization", f"Bearer {token or self.token(probe.scope)}"),
        ]

    def path(self, relative: str) -> str:
        """``relative`` under the service root."""
        return self.target.root + relative

    def render(self, method: str, path: str, headers: list[Header]) -> bytes:
        """The request bytes: ``method path HTTP/1.1``, Host, ``headers``, Connection: close."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.target.host_header}"]
        lines += [f"{k}: {v}" for k, v in headers]
        lines += ["Accept: application/fhir+json", "Connection: close"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def valid(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        extra: list[Header] | None = None,
        replace: dict[str, str | None] | None = None,
        token: str | None = None,
    ) -> bytes:
        """The valid request, with some parts changed.

        Args:
            method / path: replace the method or the full path.
            extra: headers appended after the SSP ones.
            replace: SSP header values to replace (None removes the header).
            token: the bearer token to send.
        """
        probe = self.paths.valid
        headers = self.ssp_headers(probe, token=token)
        if replace:
            kept: list[Header] = []
            for name, value in headers:
                new = replace.get(name, value)
                if new is not None:
                    kept.append((name, new))
            headers = kept
        headers += extra or []
        return self.render(method or probe.method, path or self.path(probe.path), headers)
