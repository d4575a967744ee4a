"""The scripted callers of ``spinepki demo``: who gets through the security edge, and why.

:func:`demo_environment` generates a Spine-shaped test PKI, serves its CRLs and OCSP
with the :class:`~spinepki.testpki.responder.Responder`, and starts the deployment
shapes asked for (:class:`~spinepki.testpki.parity.Shape`; by default ``serve``: two
reference providers (:mod:`spinepki.provider`) from configurations written next to the
PKI):

* ``require`` mode (the handshake needs a client certificate), checking revocation with
  CRLs only;
* ``http-496`` mode (a missing certificate is answered 496 by the gate), checking
  revocation with OCSP only — so the ``revoked`` certificate is caught once through
  each kind of evidence.

The other shapes (the middleware under anycorn, the nginx, Apache and HAProxy exports)
serve the same two modes the same way; :mod:`spinepki.testpki.parity` says where each may
answer differently, and why.

Each :class:`Caller` is one connection and (when the handshake succeeds) one HTTP
request, with the outcome the GP Connect rules require: a TLS refusal, or an HTTP status
with the Spine error code. :func:`run_demo` plays them and returns one
:class:`DemoOutcome` each; the demo passes only when every caller got what was required.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import json
import logging
import shlex
import ssl
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from spinepki.audit import AuditLogger
from spinepki.gate import RootKind
from spinepki.policy import ClientAuth
from spinepki.provider import ProviderLimits, ProviderServer, create_server, load_config
from spinepki.provider._server import _require_anycorn
from spinepki.revocation import RevocationChecker, RevocationMode
from spinepki.testpki._builder import KeyType, TestPKI
from spinepki.testpki._shapes import Shape, ShapeContext, start_shape
from spinepki.testpki._store import write_pki
from spinepki.testpki._tlsserver import ProbeResult, probe
from spinepki.testpki.parity import Expectation, Layer, ParityMatrix, expectation_for
from spinepki.testpki.responder import Endpoint, Responder
from spinepki.testpki.tokens import gp_connect_token
from spinepki.tls import client_context

__all__ = [
    "DEMO_ASID",
    "DEMO_FROM_ASID",
    "DEMO_ROOT",
    "DEMO_STRUCTURED_ROOT",
    "Caller",
    "DemoEnvironment",
    "DemoOutcome",
    "Evidence",
    "Layer",
    "SSPRequest",
    "Shape",
    "default_callers",
    "demo_environment",
    "run_demo",
    "ssp_headers",
    "ssp_token",
]

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
_TIMEOUT = 5.0
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
    token, :func:`spinepki.testpki.tokens.gp_connect_token`) with the demo's ``aud``.

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


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    """How one caller fared."""

    caller: Caller
    """The caller."""
    result: ProbeResult
    """What the connection saw (handshake, raw response)."""
    status: int | None = None
    """The HTTP status, None when no HTTP answer came."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Response headers (lower-case names)."""
    spine_code: str | None = None
    """The OperationOutcome's Spine code, when the answer is one."""
    diagnostics: str | None = None
    """The OperationOutcome's diagnostics, when the answer is one."""
    evidence_ok: bool = True
    """Whether the required revocation evidence was used."""
    shape: Shape = Shape.SERVE
    """The deployment shape it was played against."""
    expectation: Expectation | None = None
    """What it had to get there (:func:`~spinepki.testpki.parity.expectation_for`);
    None: what the caller itself expects (the policy's outcome)."""

    @property
    def required(self) -> Expectation:
        """The expectation judged against."""
        return self.expectation or Expectation.of(self.caller)

    @property
    def no_store(self) -> bool:
        """``Cache-Control`` says ``no-store`` (required on every response)."""
        return "no-store" in self.headers.get("cache-control", "").lower()

    @property
    def as_required(self) -> bool:
        """True when the outcome is what the policy requires on this shape (its own, or a
        documented difference's), on the revocation evidence required."""
        return self.required.met(self.status, self.spine_code, self.no_store) and self.evidence_ok

    @property
    def outcome(self) -> str:
        """``TLS refusal``, ``HTTP 200`` or ``HTTP 495 ACCESS_DENIED_SSL``."""
        if self.status is None:
            return "TLS refusal" if self.result.error else "no HTTP answer"
        return f"HTTP {self.status}" + (f" {self.spine_code}" if self.spine_code else "")

    @property
    def signal(self) -> str:
        """The status line or the TLS alert the client saw."""
        if self.status is not None:
            extra = "" if self.no_store else ", no Cache-Control: no-store!"
            return f"{self.status} ({self.result.version or 'plaintext'}{extra})"
        return self.result.error or "connection closed"

    @property
    def reason(self) -> str:
        """Why, in plain words (the OperationOutcome's diagnostics, or the rule)."""
        if self.diagnostics:
            return self.diagnostics
        if self.status is not None and self.status < 300:
            return "served by the FHIR application"
        return self.caller.rule

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form."""
        difference = self.required.difference
        return {
            "caller": self.caller.name,
            "tried": self.caller.tried,
            "shape": self.shape.value,
            "provider": self.caller.client_auth.value,
            "expected": self.required.text,
            "difference": None if difference is None else difference.number,
            "outcome": self.outcome,
            "status": self.status,
            "alert": None if self.status is not None else self.result.error,
            "spine_code": self.spine_code,
            "cache_control": self.headers.get("cache-control"),
            "version": self.result.version,
            "cipher": self.result.cipher,
            "reason": self.reason,
            "rule": self.caller.rule,
            "as_required": self.as_required,
        }


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


def _quiet_audit() -> AuditLogger:
    # Rejections are audited at WARNING; without a handler Python's last-resort handler
    # would print every one of them in the middle of the demo's table.
    logger = logging.getLogger("spinepki.demo.audit")
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return AuditLogger(logger)


def _audiences(pki: TestPKI) -> tuple[str, ...]:
    """The demo provider's service root URLs: the JWT ``aud`` values it accepts."""
    return tuple(f"https://{pki.provider_fqdn}{root}" for root in (DEMO_ROOT, DEMO_STRUCTURED_ROOT))


def _config_toml(pki: TestPKI, mode: ClientAuth, revocation: RevocationMode) -> str:
    audiences = ", ".join(f'"{aud}"' for aud in _audiences(pki))
    return (
        "# Written by `spinepki demo`: a reference provider for the demo's test PKI.\n"
        "[provider]\n"
        f'asid = "{DEMO_ASID}"\n'
        f'client_auth = "{mode.value}"\n'
        'host = "127.0.0.1"\n'
        "port = 0\n"
        f"expected_aud = [{audiences}]\n\n"
        "[provider.service_roots]\n"
        f'foundations = ["{DEMO_ROOT}"]\n'
        f'structured = ["{DEMO_STRUCTURED_ROOT}"]\n\n'
        "[tls]\n"
        'certificate = "certs/provider.chain.pem"\n'
        'key = "certs/provider.key.pem"\n'
        'trust_files = ["ca/trust-bundle.pem"]\n\n'
        "[validation]\n"
        f'ssp_fqdns = ["{pki.ssp_fqdn}"]\n'
        f'revocation = "{revocation.value}"\n'
    )


@dataclass
class DemoEnvironment:
    """A running demo: the PKI on disk, the responder and the shapes started."""

    pki: TestPKI
    """The test PKI."""
    directory: Path
    """Where the PKI (and the providers' configuration files) were written."""
    responder: Responder
    """The CRL/OCSP responder."""
    providers: dict[ClientAuth, ProviderServer]
    """The reference providers (``serve``) by client-auth mode; empty without ``serve``."""
    endpoints: dict[Shape, dict[ClientAuth, tuple[str, int]]] = field(default_factory=dict)
    """Every shape started: its (host, port) per client-auth mode."""

    @property
    def rsa(self) -> bool:
        """True when the provider's key is RSA (DHE suites usable)."""
        return isinstance(self.pki.leaf("provider").private_key, rsa.RSAPrivateKey)

    @property
    def shapes(self) -> tuple[Shape, ...]:
        """The shapes running, in :class:`Shape` order."""
        return tuple(s for s in Shape if s in self.endpoints)

    def play(
        self,
        callers: tuple[Caller, ...] | None = None,
        *,
        shape: Shape = Shape.SERVE,
        progress: Callable[[DemoOutcome], None] | None = None,
    ) -> list[DemoOutcome]:
        """Play ``callers`` (default: :func:`default_callers`) in order against ``shape``.

        Raises:
            KeyError: ``shape`` was not started.
        """
        endpoints = self.endpoints[shape]
        outcomes: list[DemoOutcome] = []
        for caller in callers or default_callers(rsa_provider=self.rsa):
            outcome = self._play_one(caller, shape, endpoints[caller.client_auth])
            outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
        return outcomes

    def play_matrix(
        self,
        callers: tuple[Caller, ...] | None = None,
        *,
        shapes: tuple[Shape, ...] | None = None,
        progress: Callable[[DemoOutcome], None] | None = None,
    ) -> ParityMatrix:
        """Play every caller against every shape (default: all started)."""
        chosen = shapes or self.shapes
        rows: tuple[Caller, ...] = ()
        outcomes: dict[tuple[int, Shape], DemoOutcome] = {}
        for shape in chosen:
            played = self.play(callers, shape=shape, progress=progress)
            rows = tuple(o.caller for o in played)
            for i, outcome in enumerate(played):
                outcomes[(i, shape)] = outcome
        return ParityMatrix(tuple(chosen), rows, outcomes)

    def _play_one(self, caller: Caller, shape: Shape, address: tuple[str, int]) -> DemoOutcome:
        host = f"{self.pki.provider_fqdn}:{address[1]}"
        request = caller.request.render(host, int(time.time()))
        ocsp_before = self.responder.hits[Endpoint.OCSP]
        if caller.plaintext:
            result = probe(address, None, request=request, timeout=_TIMEOUT)
        else:
            leaf = self.pki.leaf(caller.certificate) if caller.certificate else None
            ctx = client_context(
                self.pki.trust_store(),
                cert=leaf.chain_pem if leaf else None,
                key=leaf.key_pem if leaf else None,
                unsafe_skip_credential_checks=True,
            )
            if caller.tune is not None:
                caller.tune(ctx)
            result = probe(
                address,
                ctx,
                server_hostname=self.pki.provider_fqdn,
                request=request,
                timeout=_TIMEOUT,
            )
        ocsp_asked = self.responder.hits[Endpoint.OCSP] > ocsp_before
        # The endpoint a CRL caller calls checks CRLs only (a file, or fetched): its refusal
        # rests on a CRL exactly when no OCSP responder was asked during the call.
        evidence_ok = ocsp_asked if caller.evidence is Evidence.OCSP else not ocsp_asked
        if caller.evidence is None:
            evidence_ok = True
        return _outcome(caller, result, evidence_ok, shape)

    def curl_commands(self, now: int | None = None) -> list[tuple[str, str]]:
        """``(what it shows, command)`` pairs to try by hand (tokens valid 5 minutes)."""
        now = int(time.time()) if now is None else now
        fqdn = self.pki.provider_fqdn
        d = self.directory
        commands: list[tuple[str, str]] = []

        def curl(mode: ClientAuth, cert: str | None, extra: list[str], request: SSPRequest) -> str:
            port = self.providers[mode].address[1]
            args = ["curl", "-sS", "-i", "--cacert", str(d / "ca/trust-bundle.pem")]
            args += ["--resolve", f"{fqdn}:{port}:127.0.0.1"]
            if cert is not None:
                args += ["--cert", str(d / f"certs/{cert}.chain.pem")]
                args += ["--key", str(d / f"certs/{cert}.key.pem")]
            args += extra
            token = ssp_token(now, request.scope, aud=f"https://{fqdn}{request.root}")
            for name, value in ssp_headers(request.interaction, token).items():
                args += ["-H", f"{name}: {value}"]
            args.append(f"https://{fqdn}:{port}{DEMO_ROOT}{request.path}")
            return " ".join(shlex.quote(a) for a in args)

        metadata = SSPRequest()
        commands.append(
            ("the SSP reads /metadata (200)", curl(ClientAuth.REQUIRE, "ssp", [], metadata))
        )
        commands.append(
            (
                "the SSP reads Patient/1 (200)",
                curl(
                    ClientAuth.REQUIRE,
                    "ssp",
                    [],
                    SSPRequest(path="/Patient/1", interaction=READ_PATIENT, scope="patient/*.read"),
                ),
            )
        )
        commands.append(
            (
                "no client certificate, http-496 mode (496)",
                curl(ClientAuth.HTTP_496, None, [], metadata),
            )
        )
        commands.append(
            ("the revoked certificate (495)", curl(ClientAuth.REQUIRE, "revoked", [], metadata))
        )
        commands.append(
            (
                "TLS 1.1 (refused in the handshake)",
                curl(ClientAuth.REQUIRE, "ssp", ["--tlsv1.1", "--tls-max", "1.1"], metadata),
            )
        )
        return commands


def _parse_http(raw: bytes) -> tuple[int | None, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None, {}, b""
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return int(parts[1]), headers, body


def _outcome(
    caller: Caller, result: ProbeResult, evidence_ok: bool, shape: Shape = Shape.SERVE
) -> DemoOutcome:
    status, headers, body = _parse_http(result.response) if result.accepted else (None, {}, b"")
    spine_code = diagnostics = None
    if status is not None and status >= 400:
        with contextlib.suppress(ValueError, KeyError, IndexError, TypeError, AttributeError):
            issue = json.loads(body)["issue"][0]
            spine_code = str(issue["details"]["coding"][0]["code"])
            diagnostics = str(issue.get("diagnostics", ""))
    return DemoOutcome(
        caller,
        result,
        status,
        headers,
        spine_code,
        diagnostics,
        evidence_ok,
        shape,
        expectation_for(shape, caller),
    )


@contextlib.contextmanager
def demo_environment(
    *,
    key_type: KeyType = KeyType.RSA_2048,
    directory: str | Path | None = None,
    say: Callable[[str], None] | None = None,
    limits: ProviderLimits | None = None,
    shapes: Sequence[Shape] = (Shape.SERVE,),
) -> Iterator[DemoEnvironment]:
    """Generate the PKI, start the responder and the ``shapes``; stop them all on exit.

    Args:
        key_type: key algorithm of the test PKI (RSA-2048, as Spine uses, by default).
        directory: where to write the PKI and the providers' configuration files
            (default: a temporary directory, removed on exit).
        say: progress messages (e.g. to stderr).
        limits: the reference providers' connection limits.
        shapes: the deployment shapes to start (``serve``: two reference providers);
            nginx, Apache and HAProxy must be installed for theirs.

    Raises:
        ConfigurationError: anycorn (the ``provider`` extra) is not installed, raised
            before anything is generated or started; or a shape's server is not installed.
    """
    note = say or (lambda _message: None)
    # The providers need the `provider` extra: refuse before generating keys and starting
    # a responder, not after.
    _require_anycorn()
    with contextlib.ExitStack() as stack:
        if directory is None:
            target = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spinepki-demo-")))
        else:
            target = Path(directory)
        responder = stack.enter_context(Responder())
        note(f"Generating a Spine-shaped test PKI ({key_type.value}) in {target} ...")
        started = time.perf_counter()
        pki = TestPKI.create(key_type=key_type, base_url=responder.base_url, reuse_keys=False)
        responder.attach(pki)
        write_pki(pki, target, overwrite=True)
        count = len(pki.cas) + len(pki.leaves)
        note(f"  {count} certificates in {time.perf_counter() - started:.1f} s")
        note(f"CRL/OCSP responder on {responder.base_url}")
        audit = _quiet_audit()
        env = DemoEnvironment(pki, target, responder, {})
        if Shape.SERVE in shapes:
            for mode, revocation in (
                (ClientAuth.REQUIRE, RevocationMode.CRL_ONLY),
                (ClientAuth.HTTP_496, RevocationMode.OCSP_ONLY),
            ):
                config_file = target / f"provider-{mode.value}.toml"
                config_file.write_text(_config_toml(pki, mode, revocation))
                config = load_config(config_file)
                if limits is not None:
                    config = replace(config, limits=limits)
                server = create_server(config, audit=audit)
                env.providers[mode] = stack.enter_context(server)
                note(
                    f"Reference provider ({mode.value}, revocation {revocation.value}) "
                    f"on {server.url}"
                )
            env.endpoints[Shape.SERVE] = {m: p.address for m, p in env.providers.items()}
        others = [s for s in Shape if s in shapes and s is not Shape.SERVE]
        if others:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="spinepki-shapes-"))
            )
            ctx = ShapeContext(
                pki=pki,
                directory=target,
                workdir=workdir,
                audit=audit,
                asid=DEMO_ASID,
                roots={
                    RootKind.FOUNDATIONS: (DEMO_ROOT,),
                    RootKind.STRUCTURED: (DEMO_STRUCTURED_ROOT,),
                },
                audiences=_audiences(pki),
            )
            stack.callback(_close_all, ctx.checkers)
            for shape in others:
                env.endpoints[shape] = start_shape(shape, ctx, stack)
                ports = ", ".join(f"{m.value} {a[1]}" for m, a in env.endpoints[shape].items())
                note(f"{shape.value} on 127.0.0.1 ({ports})")
        yield env


def _close_all(checkers: list[RevocationChecker]) -> None:
    for checker in checkers:
        checker.close()


def run_demo(
    callers: tuple[Caller, ...] | None = None,
    *,
    key_type: KeyType = KeyType.RSA_2048,
    directory: str | Path | None = None,
    progress: Callable[[DemoOutcome], None] | None = None,
    say: Callable[[str], None] | None = None,
    shape: Shape = Shape.SERVE,
) -> list[DemoOutcome]:
    """Set up :func:`demo_environment` with ``shape``, play ``callers``, tear it down.

    Returns:
        One outcome per caller, in order.
    """
    with demo_environment(key_type=key_type, directory=directory, say=say, shapes=(shape,)) as env:
        return env.play(callers, shape=shape, progress=progress)
