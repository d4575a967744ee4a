"""The gate's answer: a frozen :class:`GateDecision`, and the codes it carries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spinepki.gate._config import Generation, OutcomeCodingSystem
from spinepki.gate._outcome import IssueType, SpineCode, content_type, render_operation_outcome

if TYPE_CHECKING:
    from spinepki.gate._catalogue import Interaction

__all__ = ["GateDecision", "IssueType", "Rejection", "SpineCode"]


#: Reason phrases, including the two nginx statuses ``http.HTTPStatus`` lacks.
REASON_PHRASES = {
    200: "OK",
    400: "Bad Request",
    422: "Unprocessable Entity",
    495: "SSL Certificate Error",
    496: "SSL Certificate Required",
}

CACHE_CONTROL = ("Cache-Control", "no-store")


class Rejection(Exception):
    """Internal: one rule failed. Caught in :meth:`RequestGate.check`."""

    __slots__ = ("diagnostics", "issue", "spine", "status")

    def __init__(
        self,
        diagnostics: str,
        *,
        status: int = 400,
        spine: SpineCode = SpineCode.BAD_REQUEST,
        issue: IssueType | None = None,
    ) -> None:
        self.status = status
        self.spine = spine
        # The issue type follows the Spine code unless a rule says otherwise.
        self.issue = spine.issue_type if issue is None else issue
        self.diagnostics = diagnostics
        super().__init__(diagnostics)


@dataclass(frozen=True, slots=True)
class GateDecision:
    """What the gate decided about one request.

    ``diagnostics`` is safe to show to the caller and to log: it names headers and
    claims but never echoes a token, a claim value or a query value.
    """

    allowed: bool
    """True when the request may go on to the application."""
    status: int
    """HTTP status: 200 when allowed, else 400, 422, 495 or 496."""
    spine_code: SpineCode | None
    """The Spine error code of a rejection, None when allowed."""
    issue_code: IssueType | None
    """The FHIR issue type of a rejection, None when allowed."""
    diagnostics: str
    """Why, in words safe to return and to log."""
    interaction: Interaction | None = None
    """The catalogue row the request matched, when it got that far."""
    claims: Mapping[str, Any] | None = None
    """The decoded JWT claims, when decoding succeeded (for audit only)."""
    generation: Generation = Generation.V1
    """Which generation's OperationOutcome shape to render."""
    coding_system: OutcomeCodingSystem = OutcomeCodingSystem.VALUE_SET
    """The 1.x Spine code system URI."""
    trace_id: str | None = None
    """``Ssp-TraceID`` if it was present and well-formed (for audit)."""
    from_asid: str | None = None
    """``Ssp-From`` if present and well-formed (audit only: never used for routing)."""
    to_asid: str | None = None
    """``Ssp-To`` if present and well-formed."""
    revocation: str | None = None
    """``"soft-failed"`` when the client certificate was accepted only because the
    revocation mode is SOFT_FAIL and no usable evidence could be had; None otherwise
    (evidence said GOOD, or revocation is not checked, or the request was refused)."""
    warnings: tuple[str, ...] = ()
    """What an operator should know about an allowed decision: for a soft-failed
    revocation check, why the evidence was unusable (at most three short summaries; no
    request content, URL credentials or query strings). Empty in the common case."""

    def operation_outcome(self) -> bytes:
        """The OperationOutcome body (UTF-8 JSON), or ``b""`` when the request is allowed."""
        if self.allowed or self.spine_code is None or self.issue_code is None:
            return b""
        return render_operation_outcome(
            spine_code=self.spine_code,
            issue_code=self.issue_code,
            diagnostics=self.diagnostics,
            generation=self.generation,
            coding_system=self.coding_system,
        )

    @property
    def content_type(self) -> str:
        """Media type of :meth:`operation_outcome` for this generation."""
        return content_type(self.generation)

    def response_headers(self) -> tuple[tuple[str, str], ...]:
        """Headers for the response: always ``Cache-Control: no-store``, plus the
        content type when the gate answers itself."""
        if self.allowed:
            return (CACHE_CONTROL,)
        return (CACHE_CONTROL, ("Content-Type", self.content_type))

    @property
    def status_line(self) -> str:
        """``"400 Bad Request"`` style, for WSGI ``start_response``."""
        return f"{self.status} {REASON_PHRASES.get(self.status, 'Error')}"
