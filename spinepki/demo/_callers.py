"""The scripted callers of the demo: who calls, with what, and what the policy requires.

Each :class:`Caller` is one connection and (when the handshake succeeds) one HTTP request,
tagged with the :class:`Layer` of the security edge its outcome rests on.
:func:`default_callers` is the demo's cast, in the order they are played. The parity table
(``_parity``) and the demo itself (``_demo``) both build on this module, which imports
neither, so the three form no circle.
"""

from __future__ import annotations

import base64
import enum
import json
import ssl
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spinepki._tokens import gp_connect_token
from spinepki.policy import ClientAuth

__all__ = [
    "DEMO_ASID",
    "DEMO_FROM_ASID",
    "DEMO_ROOT",
    "DEMO_STRUCTURED_ROOT",
    "Caller",
    "Evidence",
    "Layer",
    "SSPRequest",
    "default_callers",
    "ssp_headers",
    "ssp_token",
]


class Layer(enum.Enum):
    """Which part of the security edge a caller's outcome rests on."""

    TLS = "tls"
    """Protocol version, cipher suite, plaintext on the TLS port."""
    CERTIFICATE = "certificate"
    """A client certificate that is missing, expired, not yet valid or untrusted."""
    REVOCATION = "revocation"
    """A revoked client certificate (CRL or OCSP evidence)."""
    FQDN = "fqdn"
    """A valid chain whose name is not the SSP's."""
    GATE = "gate"
    """SSP headers, interaction ID, JWT, scope."""
    BODY = "body"
    """A gate rule that needs the request body."""
    APPLICATION = "application"
    """The FHIR application itself (it validates resources, serves the SSP)."""
    SERVER = "server"
    """The HTTP server: a request it cannot parse."""


#: The demo provider's ASID (the assurance pack's example provider ASID).
DEMO_ASID = "918999198738"
#: The calling system's ASID in ``Ssp-From``.
DEMO_FROM_ASID = "200000000359"
#: The demo provider's Foundations/Appointments service root (path part).
DEMO_ROOT = "/A12345/STU3/1/gpconnect"
#: Its Access Record Structured service root (the migrate operation's).
DEMO_STRUCTURED_ROOT = f"{DEMO_ROOT}/structured"

_ID = "urn:nhs:names:services:gpconnect:fhir:"
READ_METADATA = f"{_ID}rest:read:metadata-1"
READ_PATIENT = f"{_ID}rest:read:patient-1"
CREATE_APPOINTMENT = f"{_ID}rest:create:appointment-1"
MIGRATE_STRUCTURED = f"{_ID}operation:gpc.migratestructuredrecord-1"
_MIGRATE_WITHOUT_SENSITIVE = {
    "resourceType": "Parameters",
    "parameter": [
        {
            "name": "patientNHSNumber",
            "valueIdentifier": {
                "system": "https://fhir.nhs.uk/Id/nhs-number",
                "value": "9690937278",
            },
        },
        {
            "name": "includeFullRecord",
            "part": [{"name": "includeSensitiveInformation", "valueBoolean": False}],
        },
    ],
}
_APPOINTMENT = {
    "resourceType": "Appointment",
    "status": "booked",
    "start": "2030-01-07T10:00:00+00:00",
    "end": "2030-01-07T10:10:00+00:00",
    "participant": [{"actor": {"reference": "Patient/1"}, "status": "accepted"}],
}


# -- tokens and headers ------------------------------------------------------------------


def ssp_token(now: int, scope: str, *, age: int = 0, **claims: Any) -> str:
    """An unsecured GP Connect 1.x JWT as a consumer sends it (the specification's example
    token, :func:`spinepki._tokens.gp_connect_token`) with the demo's ``aud``.

    Args:
        now: the time the token is made for (seconds since the epoch).
        scope: ``requested_scope`` (``patient/*.read``, ``organization/*.read``…).
        age: seconds the token is older than ``now`` (``age=600`` makes it expired).
        claims: claims to replace (e.g. a broken ``requesting_practitioner``).
    """
    claims.setdefault("aud", "https://authorize.fhir.nhs.net/token")
    return gp_connect_token(now, scope=scope, age=age, **claims)


def ssp_headers(
    interaction_id: str, token: str | None, *, trace_id: str | None = None
) -> dict[str, str]:
    """The five SSP headers for one request to the demo provider."""
    headers = {
        "Ssp-TraceID": trace_id or str(uuid.uuid4()),
        "Ssp-From": DEMO_FROM_ASID,
        "Ssp-To": DEMO_ASID,
        "Ssp-InteractionID": interaction_id,
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


@dataclass(frozen=True, slots=True)
class SSPRequest:
    """The HTTP request a caller sends once its handshake succeeds."""

    method: str = "GET"
    """HTTP method."""
    path: str = "/metadata"
    """Path below the service root."""
    interaction: str = READ_METADATA
    """``Ssp-InteractionID``."""
    scope: str = "organization/*.read"
    """``requested_scope`` of the token."""
    token_age: int = 0
    """Seconds the token is older than now (600: expired)."""
    token: str | None = None
    """A raw token to send instead of a well-formed one."""
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """Claims to replace in the token."""
    headers: Mapping[str, str | None] = field(default_factory=dict, compare=False)
    """Headers to replace (None removes one)."""
    body: Any = None
    """A JSON-serialisable body, or None."""
    root: str = DEMO_ROOT
    """The service root the path is below."""
    duplicate: tuple[str, Any] | None = None
    """A claim to repeat with another value, placed *before* the real one (so a parser
    that keeps the first occurrence reads that value)."""
    malformed: bool = False
    """Add a header line that is not ``name: value`` (a request no server may parse)."""

    def render(self, host: str, now: int) -> bytes:
        """The request bytes (HTTP/1.1, ``Connection: close``).

        The token's ``aud`` is the service root's URL on ``host`` (its port dropped), as a
        consumer addresses it [JWT], unless ``claims`` names another.
        """
        claims = {"aud": f"https://{host.rpartition(':')[0] or host}{self.root}", **self.claims}
        token = self.token or ssp_token(now, self.scope, age=self.token_age, **claims)
        if self.duplicate is not None:
            token = _with_duplicate(token, *self.duplicate)
        headers: dict[str, str | None] = {"Host": host}
        headers.update(ssp_headers(self.interaction, token))
        headers.update(self.headers)
        payload = b"" if self.body is None else json.dumps(self.body).encode()
        if self.body is not None:
            headers["Content-Type"] = "application/fhir+json"
            headers["Content-Length"] = str(len(payload))
        headers["Connection"] = "close"
        lines = [f"{self.method} {self.root}{self.path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in headers.items() if v is not None]
        if self.malformed:
            lines.append("this line is not a header")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def _with_duplicate(token: str, name: str, value: Any) -> str:
    """``token`` with a second ``name`` member placed first in its payload."""
    header, payload, _ = token.split(".")
    claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    text = "{" + json.dumps(name) + ":" + json.dumps(value) + "," + claims[1:]
    encoded = base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode("ascii")
    return f"{header}.{encoded}."


# -- callers -----------------------------------------------------------------------------


class Evidence(enum.Enum):
    """Which revocation evidence a caller's refusal must rest on."""

    CRL = "crl"
    """The CRL (the provider never asked the OCSP responder)."""
    OCSP = "ocsp"
    """An OCSP response fetched for this very call."""


@dataclass(frozen=True, slots=True)
class Caller:
    """One scripted connection attempt and the outcome the policy requires."""

    name: str
    """Who is calling (``SSP``, ``rogue: expired certificate``…)."""
    tried: str
    """What it tried, in plain words."""
    rule: str
    """The GP Connect rule the outcome proves."""
    expect: int | None
    """The HTTP status required, or None: refused by TLS (no HTTP answer at all)."""
    expect_code: str | None = None
    """The Spine error code the OperationOutcome must carry (rejections only)."""
    certificate: str | None = "ssp"
    """Test-PKI certificate presented, or None for no certificate."""
    client_auth: ClientAuth = ClientAuth.REQUIRE
    """Which provider it calls: the ``require`` one or the ``http-496`` one."""
    request: SSPRequest = field(default_factory=SSPRequest)
    """What it sends after the handshake."""
    plaintext: bool = False
    """Send the request without TLS."""
    evidence: Evidence | None = None
    """Revocation evidence the refusal must rest on."""
    tune: Callable[[ssl.SSLContext], None] | None = field(default=None, compare=False)
    """Adjust the client context (protocol versions, cipher list)."""
    layer: Layer = Layer.APPLICATION
    """Which part of the edge the outcome rests on (where shapes may differ)."""

    @property
    def expected(self) -> str:
        """``TLS refusal``, ``HTTP 200`` or ``HTTP 400 BAD_REQUEST``."""
        if self.expect is None:
            return "TLS refusal"
        return f"HTTP {self.expect}" + (f" {self.expect_code}" if self.expect_code else "")


def _versions(low: ssl.TLSVersion, high: ssl.TLSVersion) -> Callable[[ssl.SSLContext], None]:
    def tune(ctx: ssl.SSLContext) -> None:
        # Old protocols need OpenSSL security level 0 on the *client* to be offered at all.
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            # Python deprecates TLS 1.0/1.1; playing an old client is the point here.
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version, ctx.maximum_version = low, high

    return tune


def _ciphers(spec: str) -> Callable[[ssl.SSLContext], None]:
    def tune(ctx: ssl.SSLContext) -> None:
        ctx.set_ciphers(spec)

    return tune


def default_callers(*, rsa_provider: bool = True) -> tuple[Caller, ...]:
    """The scripted callers, in the order they are played.

    Args:
        rsa_provider: the provider has an RSA key. TLS 1.2 has no DHE suite for ECDSA
            keys, so with an EC provider key a DHE-only client is rightly refused.
    """
    http_496 = ClientAuth.HTTP_496
    bad = "BAD_REQUEST"
    ssl_denied = "ACCESS_DENIED_SSL"
    tls, cert, gate = Layer.TLS, Layer.CERTIFICATE, Layer.GATE
    patient = SSPRequest(path="/Patient/1", interaction=READ_PATIENT, scope="patient/*.read")
    return (
        # -- who gets in -------------------------------------------------------------
        Caller("SSP", "GET /metadata, valid token", "mutual TLS 1.2 + a valid request", 200),
        Caller("SSP", "GET /Patient/1", "patient read with patient/*.read", 200, request=patient),
        Caller(
            "SSP",
            "POST /Appointment (book)",
            "appointment create with patient/*.write",
            201,
            request=SSPRequest(
                method="POST",
                path="/Appointment",
                interaction=CREATE_APPOINTMENT,
                scope="patient/*.write",
                body=_APPOINTMENT,
            ),
        ),
        Caller(
            "SSP (496 mode, OCSP)",
            "GET /metadata to the http-496 provider",
            "the SSP's certificate checked by OCSP",
            200,
            client_auth=http_496,
        ),
        Caller(
            "SSP (DHE only)",
            "offers only DHE-RSA-AES256-GCM-SHA384",
            "AESGCM+EDH suites work (ffdhe2048 loaded)"
            if rsa_provider
            else "TLS 1.2 has no DHE suite for an ECDSA server key",
            200 if rsa_provider else None,
            tune=_ciphers("DHE-RSA-AES256-GCM-SHA384"),
            layer=tls,
        ),
        # -- the TLS layer -----------------------------------------------------------
        Caller(
            "rogue: TLS 1.1",
            "TLS 1.0-1.1 only",
            "TLS 1.0/1.1 refused",
            None,
            tune=_versions(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1),
            layer=tls,
        ),
        Caller(
            "rogue: TLS 1.3",
            "TLS 1.3 only",
            "TLS 1.2 only",
            None,
            tune=_versions(ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3),
            layer=tls,
        ),
        Caller(
            "rogue: weak cipher",
            "offers only AES128-SHA256 / AES128-SHA",
            "only the approved cipher suites",
            None,
            tune=_ciphers("AES128-SHA256:AES128-SHA"),
            layer=tls,
        ),
        Caller(
            "rogue: plaintext",
            "plain HTTP on the TLS port",
            "plaintext dropped",
            None,
            certificate=None,
            plaintext=True,
            layer=tls,
        ),
        Caller(
            "rogue: no certificate",
            "no client certificate (require mode)",
            "mutual authentication: the handshake fails",
            None,
            certificate=None,
            layer=cert,
        ),
        Caller(
            "no certificate (496 mode)",
            "no client certificate (http-496 mode)",
            "handshake completes; the gate answers 496",
            496,
            ssl_denied,
            certificate=None,
            client_auth=http_496,
            layer=cert,
        ),
        Caller(
            "rogue: expired",
            "the `expired` certificate",
            "unexpired certificates only",
            None,
            certificate="expired",
            layer=cert,
        ),
        Caller(
            "rogue: not yet valid",
            "the `not-yet-valid` certificate",
            "certificates valid now",
            None,
            certificate="not-yet-valid",
            layer=cert,
        ),
        Caller(
            "rogue: foreign CA",
            "SSP name, untrusted CA",
            "issued under the Spine Sub CA/Root",
            None,
            certificate="foreign",
            layer=cert,
        ),
        Caller(
            "rogue: foreign CA (496 mode)",
            "untrusted certificate, http-496 mode",
            "a presented invalid certificate is refused in both modes",
            None,
            certificate="foreign",
            client_auth=http_496,
            layer=cert,
        ),
        # -- the validator (after the handshake) ---------------------------------------
        Caller(
            "rogue: revoked (CRL)",
            "the `revoked` certificate; provider checks CRLs",
            "unrevoked certificates only (CRL)",
            495,
            ssl_denied,
            certificate="revoked",
            evidence=Evidence.CRL,
            layer=Layer.REVOCATION,
        ),
        Caller(
            "rogue: revoked (OCSP)",
            "the `revoked` certificate; provider asks OCSP",
            "unrevoked certificates only (OCSP)",
            495,
            ssl_denied,
            certificate="revoked",
            client_auth=http_496,
            evidence=Evidence.OCSP,
            layer=Layer.REVOCATION,
        ),
        Caller(
            "rogue: wrong FQDN",
            "valid chain, name not the SSP's",
            "only the configured SSP FQDNs (TLS accepts any trusted name)",
            495,
            ssl_denied,
            certificate="wrong-fqdn",
            layer=Layer.FQDN,
        ),
        # -- the request gate --------------------------------------------------------------
        Caller(
            "rogue: wrong Ssp-To",
            "Ssp-To: 123456789123",
            "only this provider's ASID",
            400,
            bad,
            request=SSPRequest(headers={"Ssp-To": "123456789123"}),
            layer=gate,
        ),
        Caller(
            "rogue: interaction mismatch",
            "read:patient-1 ID on GET /metadata",
            "the interaction ID must match the request",
            400,
            bad,
            request=SSPRequest(interaction=READ_PATIENT, scope="patient/*.read"),
            layer=gate,
        ),
        Caller(
            "rogue: missing header",
            "no Ssp-TraceID",
            "every SSP header present",
            400,
            bad,
            request=SSPRequest(headers={"Ssp-TraceID": None}),
            layer=gate,
        ),
        Caller(
            "rogue: malformed token",
            "Authorization: Bearer not-a-jwt",
            "a well-formed unsecured JWT",
            400,
            bad,
            request=SSPRequest(token="not-a-jwt"),  # noqa: S106 - a deliberately bad token
            layer=gate,
        ),
        Caller(
            "rogue: expired token",
            "token issued 10 minutes ago",
            "exp in the future (5-minute tokens)",
            400,
            bad,
            request=SSPRequest(token_age=600),
            layer=gate,
        ),
        Caller(
            "rogue: token for another provider",
            "aud: another provider's service root",
            "aud is one of this provider's service roots",
            400,
            bad,
            request=SSPRequest(claims={"aud": "https://other.example.nhs.uk/B67890/STU3/1"}),
            layer=gate,
        ),
        Caller(
            "rogue: duplicate claim",
            'two "exp" members, the first an hour later',
            "no member name twice (RFC 7519 §4)",
            400,
            bad,
            request=SSPRequest(duplicate=("exp", 4_102_444_800)),
            layer=gate,
        ),
        Caller(
            "rogue: wrong scope",
            "GET /Patient/1 with organization/*.read",
            "the scope must suit the interaction",
            400,
            bad,
            request=SSPRequest(
                path="/Patient/1", interaction=READ_PATIENT, scope="organization/*.read"
            ),
            layer=gate,
        ),
        Caller(
            "rogue: invalid FHIR in token",
            "requesting_practitioner of type 'Practioner'",
            "claims hold valid FHIR resources",
            422,
            "INVALID_RESOURCE",
            request=SSPRequest(
                claims={"requesting_practitioner": {"resourceType": "Practioner", "id": "10019"}}
            ),
            layer=gate,
        ),
        Caller(
            "rogue: migrate declines conf/R",
            "migrate with conf/R, includeSensitiveInformation false",
            "the conf/* scope and the body agree",
            400,
            "CONFLICTING_VALUES",
            request=SSPRequest(
                method="POST",
                path="/Patient/$gpc.migratestructuredrecord",
                root=DEMO_STRUCTURED_ROOT,
                interaction=MIGRATE_STRUCTURED,
                scope="patient/*.read conf/R",
                claims={"reason_for_request": "migration"},
                body=_MIGRATE_WITHOUT_SENSITIVE,
            ),
            layer=Layer.BODY,
        ),
        # -- the application and the server -------------------------------------------------
        Caller(
            "rogue: invalid Appointment",
            "POST /Appointment without status/start/end",
            "the application validates the resource",
            422,
            "INVALID_RESOURCE",
            request=SSPRequest(
                method="POST",
                path="/Appointment",
                interaction=CREATE_APPOINTMENT,
                scope="patient/*.write",
                body={"resourceType": "Appointment"},
            ),
        ),
        Caller(
            "rogue: malformed request",
            "a header line without ':'",
            "an unparsable request is refused, no-store",
            400,
            bad,
            request=SSPRequest(malformed=True),
            layer=Layer.SERVER,
        ),
    )


# -- the environment -------------------------------------------------------------------
