"""The interaction catalogue: one data table, interaction ID -> method, path, scope.

The table :data:`INTERACTIONS` is the whole of [IDS] (1.x list, the 0.7.x
pair, and the legacy drafts behind a flag). Users extend it with
``Catalogue.default().extended(Interaction(...))`` for interactions published later.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPMethod
from types import MappingProxyType

from spinepki.errors import ConfigurationError
from spinepki.gate._kinds import Generation, RootKind
from spinepki.gate._scope import Scope

__all__ = ["INTERACTIONS", "BodyRule", "Catalogue", "Interaction"]

_PREFIX = "urn:nhs:names:services:gpconnect:"
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
SDS_USER_SYSTEM = "https://fhir.nhs.uk/Id/sds-user-id"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"

# A FHIR logical id: [A-Za-z0-9\-\.]{1,64}. The dot segments "." and ".." match that
# pattern too but are path traversal, so the matcher refuses them separately.
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_PLACEHOLDER = "{id}"


class BodyRule(enum.Enum):
    """A cross-check that needs the request body; it runs only when a body is given."""

    CARE_RECORD_NHS_NUMBER = "care-record-nhs-number"
    """0.7.x: the body's ``patientNHSNumber`` equals ``requested_record``'s NHS number."""
    MIGRATE_SENSITIVITY = "migrate-sensitivity"
    """1.6: ``conf/N`` may not ask for sensitive information (400 CONFLICTING_VALUES)."""


@dataclass(frozen=True, slots=True)
class Interaction:
    """One catalogue row: what an interaction ID allows.

    ``path`` is relative to the service root of kind ``root``; ``{id}`` stands for one
    FHIR logical id segment. Everything else is literal and case-sensitive.
    """

    interaction_id: str
    """The exact ``Ssp-InteractionID`` value (no surrounding whitespace)."""
    method: HTTPMethod
    """The only HTTP method allowed."""
    root: RootKind
    """Which service root ``path`` is relative to."""
    path: str
    """Path pattern, e.g. ``/Patient/{id}`` or ``/Patient/$gpc.registerpatient``."""
    scope: Scope
    """The base ``requested_scope`` this interaction needs [JWT][PT-CODE]."""
    generation: Generation = Generation.V1
    """Which generation's JWT rules and error shapes apply."""
    identifier_systems: tuple[str, ...] = ()
    """For searches: exactly one ``identifier`` parameter with one of these systems."""
    reasons: frozenset[str] = frozenset({"directcare"})
    """Acceptable ``reason_for_request`` values."""
    restricted_confidentiality: bool = False
    """Whether ``conf/R`` may be asked for (1.6 migrate interactions only)."""
    practitioner_required: bool = True
    """Whether ``requesting_practitioner`` must be present (migrate: SHOULD only)."""
    readable_history: bool = False
    """A read whose ``/_history/{vid}`` form is also accepted when vread is allowed."""
    body_rule: BodyRule | None = None
    """A cross-check that needs the request body."""
    legacy: bool = False
    """A draft ID never in a release; accepted only with ``enable_legacy_drafts``."""
    source: str = ""
    """Source key in the GP Connect rules file."""
    _segments: tuple[str | None, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        iid = self.interaction_id
        if not isinstance(iid, str) or not iid or iid != iid.strip() or not iid.isprintable():
            raise ConfigurationError(
                "interaction ID must be a trimmed printable string", source=iid
            )
        try:
            object.__setattr__(self, "method", HTTPMethod(self.method))
        except ValueError:
            raise ConfigurationError("unknown HTTP method", source=iid) from None
        if not isinstance(self.root, RootKind) or not isinstance(self.scope, Scope):
            raise ConfigurationError("root must be a RootKind and scope a Scope", source=iid)
        if not self.scope.is_base:
            raise ConfigurationError(
                "scope must be a base (patient/organization) scope", source=iid
            )
        if not self.path.startswith("/") or self.path.endswith("/") or "//" in self.path:
            raise ConfigurationError("path must be '/'-separated with no empty segment", source=iid)
        segments = tuple(None if seg == _PLACEHOLDER else seg for seg in self.path.split("/")[1:])
        if any(seg is not None and ("{" in seg or "}" in seg) for seg in segments):
            raise ConfigurationError("only the {id} placeholder is supported", source=iid)
        object.__setattr__(self, "_segments", segments)
        object.__setattr__(self, "reasons", frozenset(self.reasons))
        object.__setattr__(self, "identifier_systems", tuple(self.identifier_systems))

    def matches_path(self, segments: list[str], *, allow_vread: bool) -> bool:
        """Whether root-relative ``segments`` fit this interaction's path pattern."""
        pattern = self._segments
        n = len(pattern)
        if len(segments) != n and not (
            allow_vread
            and self.readable_history
            and len(segments) == n + 2
            and segments[n] == "_history"
            and _is_id(segments[n + 1])
        ):
            return False
        for want, got in zip(pattern, segments, strict=False):
            if want is None:
                if not _is_id(got):
                    return False
            elif want != got:
                return False
        return True


def _is_id(segment: str) -> bool:
    return segment not in {".", ".."} and _FHIR_ID.fullmatch(segment) is not None


def _v1(
    action: str,
    method: str,
    root: RootKind,
    path: str,
    scope: Scope,
    *,
    prefix: str = "fhir:",
    **extra: object,
) -> Interaction:
    return Interaction(
        interaction_id=f"{_PREFIX}{prefix}{action}-1",
        method=HTTPMethod(method),
        root=root,
        path=path,
        scope=scope,
        source=str(extra.pop("source", "IDS")),
        **extra,  # type: ignore[arg-type]
    )


_F, _S, _D, _H = (
    RootKind.FOUNDATIONS,
    RootKind.STRUCTURED,
    RootKind.DOCUMENTS,
    RootKind.ACCESS_RECORD_HTML,
)
_PR, _PW = Scope.PATIENT_READ, Scope.PATIENT_WRITE
_OR, _OW = Scope.ORGANIZATION_READ, Scope.ORGANIZATION_WRITE
_MIGRATION = frozenset({"migration"})


def _legacy(action: str, method: str, path: str, scope: Scope, **extra: object) -> Interaction:
    return Interaction(
        interaction_id=f"{_PREFIX}{action}",
        method=HTTPMethod(method),
        root=RootKind.FOUNDATIONS,
        path=path,
        scope=scope,
        legacy=True,
        source=str(extra.pop("source", "OPS-2018")),
        **extra,  # type: ignore[arg-type]
    )


#: The catalogue, as one table [IDS]. Columns: action, method, root, path, scope,
#: then per-row options. Scopes follow the test suite's JwtFactory mapping [PT-CODE].
INTERACTIONS: tuple[Interaction, ...] = (
    # §2.1 current 1.x list --------------------------------------------------------------
    _v1("rest:read:metadata", "GET", _F, "/metadata", _OR),
    _v1("rest:read:patient", "GET", _F, "/Patient/{id}", _PR, readable_history=True),
    _v1("rest:search:patient", "GET", _F, "/Patient", _PR, identifier_systems=(NHS_NUMBER_SYSTEM,)),
    _v1("rest:read:practitioner", "GET", _F, "/Practitioner/{id}", _OR, readable_history=True),
    _v1(
        "rest:search:practitioner",
        "GET",
        _F,
        "/Practitioner",
        _OR,
        identifier_systems=(SDS_USER_SYSTEM,),
    ),
    _v1("rest:read:organization", "GET", _F, "/Organization/{id}", _OR, readable_history=True),
    _v1(
        "rest:search:organization",
        "GET",
        _F,
        "/Organization",
        _OR,
        identifier_systems=(ODS_SYSTEM,),
    ),
    _v1("rest:read:location", "GET", _F, "/Location/{id}", _OR, readable_history=True),
    _v1("operation:gpc.registerpatient", "POST", _F, "/Patient/$gpc.registerpatient", _PW),
    _v1("rest:search:slot", "GET", _F, "/Slot", _OR, source="IDS RN-100"),
    _v1("rest:read:appointment", "GET", _F, "/Appointment/{id}", _PR, readable_history=True),
    _v1("rest:create:appointment", "POST", _F, "/Appointment", _PW),
    _v1("rest:update:appointment", "PUT", _F, "/Appointment/{id}", _PW),
    _v1("rest:cancel:appointment", "PUT", _F, "/Appointment/{id}", _PW),
    _v1("rest:search:patient_appointments", "GET", _F, "/Patient/{id}/Appointment", _PR),
    _v1("operation:gpc.getstructuredrecord", "POST", _S, "/Patient/$gpc.getstructuredrecord", _PR),
    _v1(
        "rest:read:metadata",
        "GET",
        _S,
        "/metadata",
        _OR,
        prefix="structured:fhir:",
        source="IDS RN-126",
    ),
    _v1(
        "operation:gpc.migratestructuredrecord",
        "POST",
        _S,
        "/Patient/$gpc.migratestructuredrecord",
        _PR,
        reasons=_MIGRATION,
        restricted_confidentiality=True,
        practitioner_required=False,
        body_rule=BodyRule.MIGRATE_SENSITIVITY,
        source="IDS MIG",
    ),
    _v1(
        "rest:read:metadata",
        "GET",
        _D,
        "/metadata",
        _OR,
        prefix="documents:fhir:",
        source="IDS IDS-DOC",
    ),
    _v1(
        "rest:search:patient",
        "GET",
        _D,
        "/Patient",
        _PR,
        prefix="documents:fhir:",
        identifier_systems=(NHS_NUMBER_SYSTEM,),
        source="IDS IDS-DOC",
    ),
    _v1(
        "rest:search:documentreference",
        "GET",
        _D,
        "/Patient/{id}/DocumentReference",
        _PR,
        prefix="documents:fhir:",
        source="IDS IDS-DOC",
    ),
    _v1(
        "rest:read:binary",
        "GET",
        _D,
        "/Binary/{id}",
        _PR,
        prefix="documents:fhir:",
        source="IDS IDS-DOC",
    ),
    _v1(
        "rest:migrate:binary",
        "GET",
        _D,
        "/Binary/{id}",
        _PR,
        prefix="documents:fhir:",
        reasons=_MIGRATION,
        restricted_confidentiality=True,
        practitioner_required=False,
        source="IDS MIG",
    ),
    # §2.2 0.7.x (DSTU2 Access Record HTML) ------------------------------------------------
    Interaction(
        f"{_PREFIX}fhir:rest:read:metadata",
        HTTPMethod.GET,
        _H,
        "/metadata",
        _OR,
        generation=Generation.V0_7,
        source="IDS-07 OPS-07",
    ),
    Interaction(
        f"{_PREFIX}fhir:operation:gpc.getcarerecord",
        HTTPMethod.POST,
        _H,
        "/Patient/$gpc.getcarerecord",
        _PR,
        generation=Generation.V0_7,
        body_rule=BodyRule.CARE_RECORD_NHS_NUMBER,
        source="IDS-07 OPS-07",
    ),
    # §2.3 1.2.8 only (reverted); no scope is published, organisational resources use
    # organization/* everywhere else [SEC], so that is assumed.
    _v1(
        "rest:read:healthcareservice",
        "GET",
        _F,
        "/HealthcareService/{id}",
        _OR,
        legacy=True,
        source="IDS-128",
        readable_history=True,
    ),
    _v1(
        "rest:search:healthcareservice",
        "GET",
        _F,
        "/HealthcareService",
        _OR,
        legacy=True,
        source="IDS-128",
    ),
    # Constants found only in SDS examples / the test suite [IDS-100SDS][PT-CODE].
    _v1(
        "operation:gpc.getcarerecord",
        "POST",
        _F,
        "/Patient/$gpc.getcarerecord",
        _PR,
        legacy=True,
        source="IDS-100SDS",
    ),
    _v1("rest:search:location", "GET", _F, "/Location", _OR, legacy=True, source="PT-CODE"),
    # §2.4 unsuffixed STU3 drafts (2018-02 operation guidance, 0.7.4 demonstrator). The
    # 0.7.x metadata ID is the same string, so it is not repeated here.
    _legacy("fhir:rest:read:patient", "GET", "/Patient/{id}", _PR, readable_history=True),
    _legacy(
        "fhir:rest:search:patient", "GET", "/Patient", _PR, identifier_systems=(NHS_NUMBER_SYSTEM,)
    ),
    _legacy("fhir:rest:read:practitioner", "GET", "/Practitioner/{id}", _OR, readable_history=True),
    _legacy(
        "fhir:rest:search:practitioner",
        "GET",
        "/Practitioner",
        _OR,
        identifier_systems=(SDS_USER_SYSTEM,),
    ),
    _legacy("fhir:rest:read:organization", "GET", "/Organization/{id}", _OR, readable_history=True),
    _legacy(
        "fhir:rest:search:organization",
        "GET",
        "/Organization",
        _OR,
        identifier_systems=(ODS_SYSTEM,),
    ),
    _legacy("fhir:rest:read:location", "GET", "/Location/{id}", _OR, readable_history=True),
    _legacy("fhir:rest:search:location", "GET", "/Location", _OR),
    _legacy("fhir:operation:gpc.registerpatient", "POST", "/Patient/$gpc.registerpatient", _PW),
    _legacy("fhir:rest:search:slot", "POST", "/Slot", _OR),
    _legacy("fhir:rest:read:appointment", "GET", "/Appointment/{id}", _PR, readable_history=True),
    _legacy("fhir:rest:create:appointment", "POST", "/Appointment", _PW),
    _legacy("fhir:rest:update:appointment", "PUT", "/Appointment/{id}", _PW),
    _legacy("fhir:rest:cancel:appointment", "PUT", "/Appointment/{id}", _PW),
    _legacy("fhir:rest:search:patient_appointments", "GET", "/Patient/{id}/Appointment", _PR),
    # Order and getschedule are organisational (0.7 lists /Task under organization/*).
    _legacy("fhir:rest:create:order", "POST", "/Order", _OW),
    _legacy("fhir:operation:gpc.getschedule", "POST", "/Organization/{id}/$gpc.getschedule", _OR),
)


@dataclass(frozen=True, slots=True)
class Catalogue:
    """An immutable set of interactions with unique IDs, indexed by ID."""

    interactions: tuple[Interaction, ...]
    """The rows, in table order."""
    _by_id: Mapping[str, Interaction] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rows = tuple(self.interactions)
        index: dict[str, Interaction] = {}
        for row in rows:
            if not isinstance(row, Interaction):
                raise ConfigurationError("catalogue rows must be Interaction", source=repr(row))
            if row.interaction_id in index:
                raise ConfigurationError("duplicate interaction ID", source=row.interaction_id)
            index[row.interaction_id] = row
        object.__setattr__(self, "interactions", rows)
        object.__setattr__(self, "_by_id", MappingProxyType(index))

    @classmethod
    def default(cls) -> Catalogue:
        """The built-in table of [IDS]."""
        return _DEFAULT

    def extended(self, *extra: Interaction, replace: bool = False) -> Catalogue:
        """A new catalogue with ``extra`` rows added.

        Args:
            extra: the new interactions.
            replace: let a row replace an existing one with the same ID.

        Raises:
            ConfigurationError: a duplicate ID without ``replace``.
        """
        if replace:
            new_ids = {row.interaction_id for row in extra}
            kept: Iterable[Interaction] = (
                r for r in self.interactions if r.interaction_id not in new_ids
            )
            return Catalogue((*kept, *extra))
        return Catalogue((*self.interactions, *extra))

    def get(self, interaction_id: str) -> Interaction | None:
        """The row for ``interaction_id`` (exact match), or None."""
        return self._by_id.get(interaction_id)

    def __len__(self) -> int:
        return len(self.interactions)


_DEFAULT = Catalogue(INTERACTIONS)
