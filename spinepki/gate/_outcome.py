"""OperationOutcome rendering in the 1.x (STU3) and 0.7.x (DSTU2) shapes [ERR]."""

from __future__ import annotations

import enum
import json

from spinepki.gate._config import Generation, OutcomeCodingSystem

__all__ = ["IssueType", "SpineCode", "content_type", "render_operation_outcome"]


class SpineCode(enum.Enum):
    """Spine error codes the gate can answer with [ERR]; the value is the code."""

    BAD_REQUEST = "BAD_REQUEST"
    INVALID_RESOURCE = "INVALID_RESOURCE"
    CONFLICTING_VALUES = "CONFLICTING_VALUES"
    INVALID_IDENTIFIER_SYSTEM = "INVALID_IDENTIFIER_SYSTEM"
    ACCESS_DENIED_SSL = "ACCESS_DENIED_SSL"
    """Certificate problems (495/496); from the Spine value set [PT-VS]."""

    @property
    def issue_type(self) -> IssueType:
        """The FHIR issue type the error tables pair with this code [ERR]."""
        return _ISSUE_TYPE[self]

    @property
    def display(self) -> str:
        """The value set's display text for this code."""
        return _DISPLAY[self]


_DISPLAY = {
    SpineCode.BAD_REQUEST: "Bad request",
    SpineCode.INVALID_RESOURCE: "Invalid validation of resource",
    SpineCode.CONFLICTING_VALUES: "Conflicting values have been specified in different fields",
    SpineCode.INVALID_IDENTIFIER_SYSTEM: "Invalid identifier system",
    SpineCode.ACCESS_DENIED_SSL: "SSL Protocol or Cipher requirements not met",
}
"""Displays exactly as in the Spine value set the assurance pack ships [PT-VS]."""


class IssueType(enum.Enum):
    """FHIR ``OperationOutcome.issue.code`` values the gate uses."""

    INVALID = "invalid"
    """Header, JWT, scope and body problems: BAD_REQUEST, CONFLICTING_VALUES,
    INVALID_RESOURCE [ERR]."""
    VALUE = "value"
    """Identity errors: INVALID_IDENTIFIER_SYSTEM ([ERR], identity codes)."""
    SECURITY = "security"
    """ACCESS_DENIED_SSL on 495/496. The rules file fixes no issue type for these
    statuses (§1.4); the Spine tables list the code as 403 ``forbidden``, a child of
    ``security`` in the FHIR issue-type hierarchy."""


_ISSUE_TYPE = {
    SpineCode.BAD_REQUEST: IssueType.INVALID,
    SpineCode.INVALID_RESOURCE: IssueType.INVALID,
    SpineCode.CONFLICTING_VALUES: IssueType.INVALID,
    SpineCode.INVALID_IDENTIFIER_SYSTEM: IssueType.VALUE,
    SpineCode.ACCESS_DENIED_SSL: IssueType.SECURITY,
}


_PROFILE_V1 = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1"
_PROFILE_V07 = "http://fhir.nhs.net/StructureDefinition/gpconnect-operationoutcome-1"
_SYSTEM_V07 = "http://fhir.nhs.net/ValueSet/gpconnect-error-or-warning-code-1"


def content_type(generation: Generation) -> str:
    """The FHIR JSON media type of ``generation``."""
    # DSTU2 used application/json+fhir; STU3 registered application/fhir+json.
    if generation is Generation.V0_7:
        return "application/json+fhir"
    return "application/fhir+json"


def render_operation_outcome(
    *,
    spine_code: SpineCode,
    issue_code: IssueType,
    diagnostics: str,
    generation: Generation = Generation.V1,
    coding_system: OutcomeCodingSystem = OutcomeCodingSystem.VALUE_SET,
) -> bytes:
    """Render one error issue as the OperationOutcome the assurance pack checks.

    One issue, severity ``error``, one coding with code and display, diagnostics
    [ERR][PT-BUNDLE]. 1.x and 0.7.x differ in profile and coding system [ERR-07].

    Returns:
        Compact JSON, 7-bit ASCII (non-ASCII diagnostics are escaped).
    """
    if generation is Generation.V0_7:
        profile, system = _PROFILE_V07, _SYSTEM_V07
    else:
        profile, system = _PROFILE_V1, coding_system.value
    outcome = {
        "resourceType": "OperationOutcome",
        "meta": {"profile": [profile]},
        "issue": [
            {
                "severity": "error",
                "code": issue_code.value,
                "details": {
                    "coding": [
                        {"system": system, "code": spine_code.value, "display": spine_code.display}
                    ]
                },
                "diagnostics": diagnostics,
            }
        ],
    }
    return json.dumps(outcome, separators=(",", ":"), ensure_ascii=True).encode("ascii")
