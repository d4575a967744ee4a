"""Configuration of the request gate: one frozen value object, checked once at construction.

Every choice the GP Connect sources disagree on (rules file §8) is a field here with a
documented default; ``docs/gate.md`` explains each one and names its source.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlsplit

from spinepki.errors import ConfigurationError
from spinepki.gate._catalogue import Catalogue
from spinepki.gate._kinds import Generation, RootKind
from spinepki.policy import ClientAuth

if TYPE_CHECKING:
    from datetime import datetime

    from cryptography import x509


__all__ = [
    "CachedCertificateChecker",
    "CertificateChecker",
    "CheckFailure",
    "CheckOutcome",
    "ClientAuthMode",
    "GateConfig",
    "GateLimits",
    "Generation",
    "OutcomeCodingSystem",
    "RootKind",
    "WrongResourceTypeResponse",
]


# One enum for one concept: the TLS context and the gate share spinepki.policy.ClientAuth.
ClientAuthMode = ClientAuth


class OutcomeCodingSystem(enum.Enum):
    """The Spine error-code system URI used in 1.x OperationOutcomes [ERR]."""

    VALUE_SET = "https://fhir.nhs.uk/STU3/ValueSet/Spine-ErrorOrWarningCode-1"
    """Used by every published page up to 1.6.0 and by the assurance pack [ERR-127]."""
    CODE_SYSTEM = "https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1"
    """The 1.6.2 branch's spelling [ERR]."""


class WrongResourceTypeResponse(enum.Enum):
    """Answer for a JWT claim holding a *known* FHIR resource of the wrong type [ERR].

    1.x only. An element the type does not have is 422 ``INVALID_RESOURCE`` in both
    generations; a ``resourceType`` that is no FHIR type at all is 422 in 1.x; in 0.7.x
    every ``resourceType`` that is not the one wanted is 400 ``BAD_REQUEST`` (the 0.7.4
    pack's ``JWT.feature``).
    """

    BAD_REQUEST = "bad-request"
    """400 ``BAD_REQUEST``: the error table's row for a valid resource of the wrong type."""
    INVALID_RESOURCE = "invalid-resource"
    """422 ``INVALID_RESOURCE``: treat it like any other claim resource that fails validation."""


@runtime_checkable
class CheckFailure(Protocol):
    """**Protocol**: one reason a certificate check failed; ``code`` is an enum member or str."""

    @property
    def code(self) -> object:
        """A stable machine-readable code (``FailureCode`` member or plain string)."""


@runtime_checkable
class CheckOutcome(Protocol):
    """**Protocol**: the result of a certificate check (``ValidationResult`` satisfies it)."""

    @property
    def valid(self) -> bool:
        """Whether the certificate is acceptable."""

    @property
    def failures(self) -> Sequence[CheckFailure]:
        """Why it is not, empty when ``valid``."""


@runtime_checkable
class CertificateChecker(Protocol):
    """**Protocol**: validates the peer certificate the gate is given.

    ``spinepki.validation.ClientCertValidator`` satisfies it structurally. ``at`` is the
    decision time the gate read once at its edge.
    """

    def validate(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate] = (),
        *,
        at: datetime | None = None,
    ) -> CheckOutcome:
        """Check ``leaf`` (with ``intermediates``) at time ``at``."""


@runtime_checkable
class CachedCertificateChecker(CertificateChecker, Protocol):
    """**Protocol**: a :class:`CertificateChecker` that can also answer from memory.

    Optional: the ASGI middleware runs ``validate`` on a worker thread (it may fetch
    CRLs or ask OCSP responders), except when ``cached`` already has the answer, which
    it then uses on the event loop. A checker without ``cached`` is always run off the
    loop. ``spinepki.validation.ClientCertValidator`` satisfies it.
    """

    def cached(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate] = (),
        *,
        at: datetime | None = None,
    ) -> CheckOutcome | None:
        """What ``validate`` would return, if known without any blocking work; else None.

        Must be cheap and must never block (no I/O, no waiting on a lock held across
        I/O); None is always a correct answer.
        """


@dataclass(frozen=True, slots=True)
class GateLimits:
    """Size bounds applied before any parsing, so no input costs unbounded time or memory."""

    max_header_count: int = 100
    """Most request headers accepted (all names, not only SSP ones)."""
    max_header_bytes: int = 8192
    """Longest single header value; the bearer token has its own, smaller bound."""
    max_total_header_bytes: int = 65536
    """Sum of all header value lengths."""
    max_token_bytes: int = 8192
    """Longest bearer token; the specification's example is about 1.4 KB."""
    max_path_bytes: int = 2048
    """Longest request path."""
    max_query_bytes: int = 8192
    """Longest query string (it is parsed only for search interactions)."""
    max_body_bytes: int = 1024 * 1024
    """Largest request body the middleware buffers and the gate parses."""

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(
                    f"must be a positive integer, got {value!r}", source=f"GateLimits.{name}"
                )


def _root_path(value: str, kind: RootKind) -> str:
    """Reduce a service root URL (or path) to the path the provider sees, strictly."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError("service root must be a non-empty string", source=kind.value)
    parts = urlsplit(value)
    if parts.query or parts.fragment:
        raise ConfigurationError("service root has a query or fragment", source=value)
    if parts.scheme and parts.scheme != "https":
        raise ConfigurationError("service root URL must be https", source=value)
    path = parts.path
    # The specification forbids a trailing slash on service roots [API]; silently trimming
    # it would hide a mis-registered SDS endpoint, so refuse it instead.
    if not path.startswith("/") or path.endswith("/") or "//" in path:
        raise ConfigurationError(
            "service root path must start with '/', not end with '/', and have no empty segment",
            source=value,
        )
    segments = path.split("/")[1:]
    if any(seg in {".", ".."} for seg in segments):
        raise ConfigurationError("service root path has a dot segment", source=value)
    return path


def _default_catalogue() -> Catalogue:
    return Catalogue.default()


@dataclass(frozen=True, slots=True)
class GateConfig:
    """Everything the request gate needs; validated once, immutable afterwards.

    Example::

        config = GateConfig(
            provider_asid="918999198738",
            service_roots={RootKind.FOUNDATIONS: "https://gp.example.nhs.uk/A12345/STU3/1/gpconnect"},
        )

    Raises:
        ConfigurationError: (a ``ValueError``) for any setting that cannot work.
    """

    provider_asid: str
    """The provider's own ASID; ``Ssp-To`` must equal it exactly [SEC][PT-074]."""
    service_roots: Mapping[RootKind, str | Sequence[str]]
    """Service root URL(s) or paths per kind; request paths are matched relative to these,
    case-sensitively. A provider hosting several practices lists one root per ODS code."""
    generations: frozenset[Generation] = frozenset({Generation.V1})
    """Which generations' interaction IDs are accepted. Default: 1.x only."""
    enable_legacy_drafts: bool = False
    """Accept the never-released draft interaction IDs (legacy traffic only; docs/gate.md)."""
    enforce_scope: bool = True
    """Check ``requested_scope`` against the interaction ([SEC]: MAY; the pack tests it)."""
    expected_aud: str | Sequence[str] | None = None
    """If set, 1.x ``aud`` must equal it (or one of them: a provider serving several
    practices has one service root URL per ODS code). Off by default: the assurance
    pack's default ``aud`` is ``https://authorize.fhir.nhs.net/token/``, not a provider
    URL [JWT]. Set it in production: a token addressed to another provider is
    otherwise accepted."""
    expected_aud_v0_7: str | None = "https://authorize.fhir.nhs.net/token"
    """0.7.x ``aud`` must equal this fixed value (0.7 test: wrong value -> 400); None: off."""
    clock_tolerance: timedelta = timedelta(0)
    """Grace after ``exp``. GP Connect publishes no leeway; clocks are NTP-synced."""
    future_iat_allowance: timedelta = timedelta(seconds=600)
    """How far ahead of the decision time ``iat`` may be (a consumer clock running fast).
    The assurance pack sends ``iat`` up to 200 s ahead and expects acceptance [RN-123];
    beyond the allowance the token is refused (400), so ``exp`` is never later than
    now + 300 s + this. Between 0 and 1 hour."""
    limits: GateLimits = field(default_factory=GateLimits)
    """Input size bounds."""
    client_auth: ClientAuthMode = ClientAuthMode.REQUIRE
    """How a missing client certificate is answered; a missing one is 496 in both modes."""
    certificate_checker: CertificateChecker | None = None
    """Validates the peer certificate (-> 495 on failure). None: presence is checked only
    and the TLS layer's own chain verification is relied on."""
    catalogue: Catalogue = field(default_factory=_default_catalogue)
    """The interaction table; ``Catalogue.default().extended(...)`` adds entries."""
    allow_vread: bool = True
    """Accept ``/_history/{vid}`` after read paths, as the demonstrator does [DEMO]."""
    wrong_resource_type: WrongResourceTypeResponse = WrongResourceTypeResponse.BAD_REQUEST
    """Answer for a known FHIR resource of the wrong type in a 1.x claim [ERR]."""
    outcome_coding_system: OutcomeCodingSystem = OutcomeCodingSystem.VALUE_SET
    """Spine code system URI in 1.x OperationOutcomes [ERR]."""
    accept_rc5_ods_system: bool = True
    """Accept ``http://fhir.nhs.net/Id/ods-organization-code`` in 1.x, as the 1.0-1.2
    assurance packs send it [PT-100]."""
    require_sub_matches_practitioner: bool = True
    """``sub`` must equal ``requesting_practitioner.id`` where both exist [JWT][DEMO]."""
    reject_v1_requested_record: bool = False
    """Refuse a 1.x token that still carries ``requested_record`` (the demonstrator does;
    the specification only removed the claim)."""
    strict_trace_id: bool = False
    """Require ``Ssp-TraceID`` to be a hyphenated UUID; the specification sets no format."""
    _roots: tuple[tuple[RootKind, str], ...] = field(init=False, repr=False, compare=False)
    _audiences: frozenset[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        asid = self.provider_asid
        # GP Connect publishes no ASID format; every example is digits only, and a
        # value with spaces or commas could never be matched by a well-formed Ssp-To.
        if not isinstance(asid, str) or not asid or not asid.isascii() or not asid.isalnum():
            raise ConfigurationError(
                "provider ASID must be a non-empty alphanumeric string", source="provider_asid"
            )
        if not self.generations or not all(isinstance(g, Generation) for g in self.generations):
            raise ConfigurationError("at least one Generation is required", source="generations")
        object.__setattr__(self, "generations", frozenset(self.generations))
        if not isinstance(self.client_auth, ClientAuthMode):
            raise ConfigurationError("must be a ClientAuthMode member", source="client_auth")
        if not isinstance(self.clock_tolerance, timedelta) or self.clock_tolerance < timedelta(0):
            raise ConfigurationError("must be a non-negative timedelta", source="clock_tolerance")
        if self.clock_tolerance > timedelta(minutes=5):
            # A tolerance longer than the token's own 300 s lifetime would double it.
            raise ConfigurationError("must not exceed five minutes", source="clock_tolerance")
        allowance = self.future_iat_allowance
        if not isinstance(allowance, timedelta) or not (
            timedelta(0) <= allowance <= timedelta(hours=1)
        ):
            # Longer would let a token live for hours: exp - iat is fixed at 300 s, so the
            # allowance is how far past its lifetime a token can stay acceptable.
            raise ConfigurationError(
                "must be a timedelta between 0 and one hour", source="future_iat_allowance"
            )
        checker = self.certificate_checker
        if checker is not None and not callable(getattr(checker, "validate", None)):
            raise ConfigurationError(
                "must have a validate() method (CertificateChecker)", source="certificate_checker"
            )
        object.__setattr__(self, "_audiences", _audiences(self.expected_aud))
        roots: list[tuple[RootKind, str]] = []
        if not isinstance(self.service_roots, Mapping) or not self.service_roots:
            raise ConfigurationError(
                "at least one service root is required", source="service_roots"
            )
        for kind, value in self.service_roots.items():
            if not isinstance(kind, RootKind):
                raise ConfigurationError("keys must be RootKind members", source="service_roots")
            values = (value,) if isinstance(value, str) else tuple(value)
            if not values:
                raise ConfigurationError("empty list of roots", source=kind.value)
            roots.extend((kind, _root_path(v, kind)) for v in values)
        if len({path for _, path in roots}) != len(roots):
            raise ConfigurationError("the same root path is listed twice", source="service_roots")
        object.__setattr__(self, "_roots", tuple(roots))

    @property
    def root_paths(self) -> tuple[tuple[RootKind, str], ...]:
        """The normalised (kind, path) pairs, in configuration order."""
        return self._roots

    @property
    def audiences(self) -> frozenset[str] | None:
        """The 1.x ``aud`` values accepted (``expected_aud`` as a set), or None: any."""
        return self._audiences


def _audiences(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    values = (value,) if isinstance(value, str) else value
    if not isinstance(values, Sequence | frozenset | set) or not values:
        raise ConfigurationError(
            "must be None, a non-empty string or a non-empty list of them", source="expected_aud"
        )
    for item in values:
        if not isinstance(item, str) or not item.strip() or not item.isprintable():
            raise ConfigurationError(
                "every audience must be a non-empty printable string", source="expected_aud"
            )
    return frozenset(values)
