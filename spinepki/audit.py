"""Structured audit events for gate decisions, through stdlib :mod:`logging`.

One event per decision, allowed or not [JWT][NFR]: time, a per-process sequence
number, trace ID, from/to ASID, interaction, decision and code, the requesting
organisation's ODS code, the practitioner's SDS user and role profile ids, and the
requesting device; for a certificate accepted under revocation soft-fail, that fact
and why the evidence was unusable. The fields ride on the log record as
``record.spinepki_audit`` (a dict); :class:`JSONAuditFormatter` renders them as one
JSON line.

Redaction is by construction, not by filtering: an event is built only from values
the gate has already reduced to identifier-shaped strings. It never holds the query
string, the raw token, the Authorization header, a request body, the request path's
ids, or any name (patient or practitioner) [SEC].
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spinepki.gate._decision import GateDecision

__all__ = ["AuditEvent", "AuditLogger", "JSONAuditFormatter", "audit_event"]

AUDIT_LOGGER_NAME = "spinepki.audit"
RECORD_ATTRIBUTE = "spinepki_audit"

# Identifier-shaped: ODS codes, SDS ids, ASIDs, GUIDs, URNs, versions. Anything else
# (free text, names, addresses, surrogates, control characters) is dropped.
_IDENTIFIER = re.compile(r"[A-Za-z0-9:._\-]{1,64}")
_ODS_SYSTEMS = frozenset(
    {"https://fhir.nhs.uk/Id/ods-organization-code", "http://fhir.nhs.net/Id/ods-organization-code"}
)
_SDS_USER_SYSTEMS = frozenset(
    {
        "https://fhir.nhs.uk/Id/sds-user-id",
        "http://fhir.nhs.net/sds-user-id",
        "http://fhir.nhs.net/Id/sds-user-id",
    }
)
_SDS_ROLE_SYSTEMS = frozenset({"https://fhir.nhs.uk/Id/sds-role-profile-id"})
_REASONS = frozenset({"directcare", "migration"})


def _ident(value: object) -> str | None:
    if isinstance(value, str) and _IDENTIFIER.fullmatch(value):
        return value
    return None


def _identifiers(resource: object, systems: frozenset[str] | None) -> tuple[str, ...]:
    """Identifier-shaped values of ``resource``'s identifiers in ``systems`` (None: any)."""
    # Claims come from JSON, so exact dicts: test for those before the slower ABC check.
    if type(resource) is not dict and not isinstance(resource, Mapping):
        return ()
    idents = resource.get("identifier")
    if not isinstance(idents, list):
        return ()
    found = []
    for ident in idents:
        if type(ident) is not dict and not isinstance(ident, Mapping):
            continue
        system = ident.get("system")
        # A claim can be audited before the gate validated it: an unhashable "system"
        # must not reach the set lookup.
        if isinstance(system, str) and (systems is None or system in systems):
            value = _ident(ident.get("value"))
            if value is not None:
                found.append(value)
    return tuple(found[:4])


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audited gate decision. Every field is identifier-shaped, an enum value or the
    library's own fixed text (``reason``, ``revocation_problems``)."""

    time: str
    """Decision time, ISO 8601 UTC."""
    sequence: int
    """Per-process sequence number: gaps or repeats in a log stream show tampering or loss."""
    allowed: bool
    """Whether the request went on to the application."""
    status: int
    """HTTP status of the decision."""
    spine_code: str | None
    """Spine error code of a rejection."""
    reason: str
    """The decision's diagnostics (fixed text; never echoes request content)."""
    method: str | None
    """HTTP method (only the standard ones are recorded)."""
    interaction_id: str | None
    """The matched interaction, if any."""
    trace_id: str | None
    """``Ssp-TraceID``."""
    from_asid: str | None
    """``Ssp-From``: for audit only, never routing [SDSREG]."""
    to_asid: str | None
    """``Ssp-To``."""
    organization_ods: tuple[str, ...]
    """ODS code(s) of the requesting organisation."""
    practitioner_sds_user_ids: tuple[str, ...]
    """SDS user id(s) of the requesting practitioner (``UNK`` if no smartcard)."""
    practitioner_sds_role_profile_ids: tuple[str, ...]
    """SDS role profile id(s)."""
    device_identifiers: tuple[str, ...]
    """The requesting device's identifier value(s)."""
    device_model: str | None
    """The requesting device's model, when identifier-shaped."""
    device_version: str | None
    """The requesting device's version, when identifier-shaped."""
    reason_for_request: str | None
    """``directcare`` or ``migration`` when the token said so."""
    revocation: str | None = None
    """``soft-failed`` when the certificate was accepted under revocation SOFT_FAIL
    without usable evidence; None otherwise."""
    revocation_problems: tuple[str, ...] = ()
    """Why the revocation evidence was unusable, for a soft-failed check (at most three
    summaries, URL credentials and queries removed)."""

    def as_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready dict."""
        # Every value is immutable (str, int, bool, None, tuple of str): a shallow copy is
        # what dataclasses.asdict would build, at a tenth of its recursive cost.
        return {name: getattr(self, name) for name in _EVENT_FIELDS}


_EVENT_FIELDS = tuple(f.name for f in fields(AuditEvent))


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_sequence = itertools.count(1)
_sequence_lock = threading.Lock()


def _next_sequence() -> int:
    with _sequence_lock:
        return next(_sequence)


def audit_event(
    decision: GateDecision, *, method: str | bytes | None = None, now: datetime | None = None
) -> AuditEvent:
    """Build the redacted audit event of ``decision``.

    Args:
        decision: what the gate decided.
        method: the request's HTTP method (recorded only if it is a standard one).
        now: the event time; None reads the clock.
    """
    when = now or datetime.now(UTC)
    if isinstance(method, bytes):
        method = method.decode("latin-1")
    claims = decision.claims
    if type(claims) is not dict and not isinstance(claims, Mapping):
        claims = {}
    practitioner = claims.get("requesting_practitioner")
    device = claims.get("requesting_device")
    device_map = device if type(device) is dict or isinstance(device, Mapping) else {}
    reason = claims.get("reason_for_request")
    return AuditEvent(
        time=when.astimezone(UTC).isoformat(timespec="milliseconds"),
        sequence=_next_sequence(),
        allowed=decision.allowed,
        status=decision.status,
        spine_code=decision.spine_code.value if decision.spine_code else None,
        reason=decision.diagnostics,
        method=method if method in _METHODS else None,
        interaction_id=decision.interaction.interaction_id if decision.interaction else None,
        trace_id=decision.trace_id,
        from_asid=decision.from_asid,
        to_asid=decision.to_asid,
        organization_ods=_identifiers(claims.get("requesting_organization"), _ODS_SYSTEMS),
        practitioner_sds_user_ids=_identifiers(practitioner, _SDS_USER_SYSTEMS),
        practitioner_sds_role_profile_ids=_identifiers(practitioner, _SDS_ROLE_SYSTEMS),
        # Device identifier systems are consumer-defined (not even URLs in the test pack),
        # so any system is taken; values still have to be identifier-shaped.
        device_identifiers=_identifiers(device, None),
        device_model=_ident(device_map.get("model")),
        device_version=_ident(device_map.get("version")),
        # isinstance first: a refused token's claim may be unhashable (a list).
        reason_for_request=reason if isinstance(reason, str) and reason in _REASONS else None,
        revocation=decision.revocation,
        revocation_problems=decision.warnings,
    )


class AuditLogger:
    """Emits one log record per gate decision on the ``spinepki.audit`` logger.

    Allowed requests log at INFO, rejections - and requests allowed with warnings (a
    certificate accepted under revocation soft-fail) - at WARNING. The message is a
    short ``key=value`` summary; the full event is ``record.spinepki_audit``.
    """

    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger | None = None) -> None:
        """Use ``logger``, or ``logging.getLogger("spinepki.audit")``."""
        self._logger = logger or logging.getLogger(AUDIT_LOGGER_NAME)

    @property
    def logger(self) -> logging.Logger:
        """Where events go."""
        return self._logger

    def record(
        self,
        decision: GateDecision,
        *,
        method: str | bytes | None = None,
        now: datetime | None = None,
    ) -> AuditEvent | None:
        """Log the audit event of ``decision`` and return it.

        The event is built only when the logger is enabled for its level (INFO for
        allowed, WARNING for refused or allowed with warnings), so a deployment that
        routes allowed decisions elsewhere does not pay for them. Returns None when
        nothing was logged.
        """
        level = logging.INFO if decision.allowed and not decision.warnings else logging.WARNING
        if not self._logger.isEnabledFor(level):
            return None
        event = audit_event(decision, method=method, now=now)
        if event.revocation is None:
            message = "gate decision status=%s code=%s interaction=%s trace=%s"
            args: tuple[object, ...] = ()
        else:
            message = "gate decision status=%s code=%s interaction=%s trace=%s revocation=%s"
            args = (event.revocation,)
        self._logger.log(
            level,
            message,
            event.status,
            event.spine_code or "-",
            event.interaction_id or "-",
            event.trace_id or "-",
            *args,
            extra={RECORD_ATTRIBUTE: event.as_dict()},
        )
        return event


class JSONAuditFormatter(logging.Formatter):
    """Renders audit records as one JSON object per line (other records: level + message)."""

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line."""
        event = getattr(record, RECORD_ATTRIBUTE, None)
        if isinstance(event, dict):
            return json.dumps(event, separators=(",", ":"), ensure_ascii=True)
        return json.dumps(
            {"level": record.levelname, "logger": record.name, "message": record.getMessage()},
            ensure_ascii=True,
        )
