"""Audit events of the simulator: one per hop, with the trace ID, never patient data.

Like the gate's (:mod:`spinepki.audit`), an event is built only from values already
reduced to identifiers (ASIDs, ODS codes, FQDNs, the trace ID, the interaction ID) and
the simulator's own fixed texts. It never holds the request URL (it carries patient ids),
the query string, the token, any other header value, or a body. Records go to the
``spinepki.audit.ssp`` logger with the event as ``record.spinepki_audit``, so
:class:`~spinepki.audit.JSONAuditFormatter` writes them as JSON lines.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from spinepki.audit import AUDIT_LOGGER_NAME, RECORD_ATTRIBUTE, _ident, _next_sequence

__all__ = ["Hop", "HopEvent", "SSPAuditLogger"]

#: The simulator's audit logger (a child of the library's, so one handler sees both).
SSP_AUDIT_LOGGER_NAME = f"{AUDIT_LOGGER_NAME}.ssp"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Hop(enum.Enum):
    """Which leg of the path an event records."""

    CONSUMER = "consumer"
    """Consumer -> SSP: what the simulator decided and the status the consumer got."""
    PROVIDER = "provider"
    """SSP -> provider: the connection, the provider certificate, the provider's status."""


@dataclass(frozen=True, slots=True)
class HopEvent:
    """One audited hop. Every field is identifier-shaped, a number, or fixed text."""

    time: str
    """ISO 8601 UTC."""
    sequence: int
    """Per-process sequence number (shared with the gate's events)."""
    hop: str
    """``consumer`` or ``provider`` (:class:`Hop`)."""
    status: int
    """The HTTP status of this hop (the provider's own status on the provider hop)."""
    forwarded: bool
    """Whether the request went on to the provider (consumer hop), or a response came
    back from it (provider hop)."""
    code: str | None
    """The simulator's error code (:class:`~spinepki.ssp.SSPError` value), if any."""
    detail: str
    """Why, in the simulator's fixed words."""
    method: str | None
    """The HTTP method (standard ones only)."""
    interaction_id: str | None
    """``Ssp-InteractionID`` when identifier-shaped."""
    trace_id: str | None
    """``Ssp-TraceID`` when identifier-shaped."""
    from_asid: str | None
    """``Ssp-From``."""
    to_asid: str | None
    """``Ssp-To``."""
    consumer_fqdn: str | None
    """The FQDN in the consumer's certificate."""
    consumer_ods: str | None
    """The sending organisation's ODS code, from the directory."""
    provider_ods: str | None
    """The receiving organisation's ODS code, from the directory."""
    elapsed_ms: float | None
    """Milliseconds the hop took (provider hop: connect to end of response)."""

    def as_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready dict."""
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(f.name for f in fields(HopEvent))


class SSPAuditLogger:
    """Emits one record per hop: INFO when forwarded, WARNING for refusals and failures."""

    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger | None = None) -> None:
        """Use ``logger``, or ``logging.getLogger("spinepki.audit.ssp")``."""
        self._logger = logger or logging.getLogger(SSP_AUDIT_LOGGER_NAME)

    @property
    def logger(self) -> logging.Logger:
        """Where events go."""
        return self._logger

    def record(
        self,
        hop: Hop,
        *,
        status: int,
        forwarded: bool,
        code: str | None = None,
        detail: str = "",
        method: str | None = None,
        interaction_id: str | None = None,
        trace_id: str | None = None,
        from_asid: str | None = None,
        to_asid: str | None = None,
        consumer_fqdn: str | None = None,
        consumer_ods: str | None = None,
        provider_ods: str | None = None,
        elapsed: float | None = None,
        now: datetime | None = None,
    ) -> HopEvent | None:
        """Log one hop and return its event (None when the logger is off for its level)."""
        level = logging.INFO if forwarded and code is None else logging.WARNING
        if not self._logger.isEnabledFor(level):
            return None
        event = HopEvent(
            time=(now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds"),
            sequence=_next_sequence(),
            hop=hop.value,
            status=status,
            forwarded=forwarded,
            code=code,
            detail=detail,
            method=method if method in _METHODS else None,
            interaction_id=_ident_urn(interaction_id),
            trace_id=_ident(trace_id),
            from_asid=_ident(from_asid),
            to_asid=_ident(to_asid),
            consumer_fqdn=_ident(consumer_fqdn),
            consumer_ods=_ident(consumer_ods),
            provider_ods=_ident(provider_ods),
            elapsed_ms=None if elapsed is None else round(elapsed * 1000, 3),
        )
        self._logger.log(
            level,
            "ssp %s hop status=%s code=%s interaction=%s trace=%s",
            event.hop,
            event.status,
            event.code or "-",
            event.interaction_id or "-",
            event.trace_id or "-",
            extra={RECORD_ATTRIBUTE: event.as_dict()},
        )
        return event


def _ident_urn(value: str | None) -> str | None:
    # Interaction IDs are URNs of about 60 characters, longer than the gate's identifier
    # bound; only the catalogue's own IDs reach here (the router looked them up).
    if value is not None and len(value) <= 128 and value.isascii() and value.isprintable():
        return value if " " not in value else None
    return None
