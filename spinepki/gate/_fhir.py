"""Element sets of the FHIR resources embedded in GP Connect JWT claims.

Only what the gate needs to answer "does this claim hold a well-formed resource of the
right type": the element names of Device, Organization, Practitioner (STU3 for 1.x and
DSTU2 for 0.7.x, plus DSTU2 Patient for ``requested_record``), the shapes of the two
datatypes the gate reads (Identifier, HumanName), and the list of STU3 resource type
names (to tell "a valid FHIR resource of the wrong type" from "not a FHIR type at all",
[ERR]). This is a structural check, not a full profile validator.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from spinepki.gate._config import Generation

__all__ = ["FhirProblem", "FhirResourceError", "check_resource"]

# Elements every resource (DomainResource) has, in STU3 and DSTU2 alike.
_DOMAIN = frozenset(
    {
        "resourceType",
        "id",
        "meta",
        "implicitRules",
        "language",
        "text",
        "contained",
        "extension",
        "modifierExtension",
    }
)

_ELEMENTS: Mapping[Generation, Mapping[str, frozenset[str]]] = {
    Generation.V1: {
        # http://hl7.org/fhir/STU3/device.html
        "Device": _DOMAIN
        | {
            "identifier",
            "udi",
            "status",
            "type",
            "lotNumber",
            "manufacturer",
            "manufactureDate",
            "expirationDate",
            "model",
            "version",
            "patient",
            "owner",
            "contact",
            "location",
            "url",
            "note",
            "safety",
        },
        # http://hl7.org/fhir/STU3/organization.html
        "Organization": _DOMAIN
        | {
            "identifier",
            "active",
            "type",
            "name",
            "alias",
            "telecom",
            "address",
            "partOf",
            "contact",
            "endpoint",
        },
        # http://hl7.org/fhir/STU3/practitioner.html (practitionerRole left in STU3)
        "Practitioner": _DOMAIN
        | {
            "identifier",
            "active",
            "name",
            "telecom",
            "address",
            "gender",
            "birthDate",
            "photo",
            "qualification",
            "communication",
        },
    },
    Generation.V0_7: {
        # http://hl7.org/fhir/DSTU2/device.html
        "Device": _DOMAIN
        | {
            "identifier",
            "type",
            "note",
            "status",
            "manufacturer",
            "model",
            "version",
            "manufactureDate",
            "expiry",
            "udi",
            "lotNumber",
            "owner",
            "location",
            "patient",
            "contact",
            "url",
        },
        # http://hl7.org/fhir/DSTU2/organization.html
        "Organization": _DOMAIN
        | {
            "identifier",
            "active",
            "type",
            "name",
            "telecom",
            "address",
            "partOf",
            "contact",
        },
        # http://hl7.org/fhir/DSTU2/practitioner.html
        "Practitioner": _DOMAIN
        | {
            "identifier",
            "active",
            "name",
            "telecom",
            "address",
            "gender",
            "birthDate",
            "photo",
            "practitionerRole",
            "qualification",
            "communication",
        },
        # http://hl7.org/fhir/DSTU2/patient.html (for 0.7.x requested_record)
        "Patient": _DOMAIN
        | {
            "identifier",
            "active",
            "name",
            "telecom",
            "gender",
            "birthDate",
            "deceasedBoolean",
            "deceasedDateTime",
            "address",
            "maritalStatus",
            "multipleBirthBoolean",
            "multipleBirthInteger",
            "photo",
            "contact",
            "animal",
            "communication",
            "careProvider",
            "managingOrganization",
            "link",
        },
    },
}
# 0.7.x requested_record may also name an Organization; it has the same element set.
# The two tables by identity: hashing an Enum member runs Python code, and this lookup is
# on every request's path three times.
_V1_ELEMENTS = _ELEMENTS[Generation.V1]
_V07_ELEMENTS = _ELEMENTS[Generation.V0_7]

_IDENTIFIER = frozenset({"id", "extension", "use", "type", "system", "value", "period", "assigner"})
_HUMAN_NAME = frozenset(
    {"id", "extension", "use", "text", "family", "given", "prefix", "suffix", "period"}
)

#: STU3 (3.0.x) resource type names: http://hl7.org/fhir/STU3/resourcelist.html
STU3_RESOURCE_TYPES = frozenset(
    """Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment
    AppointmentResponse AuditEvent Basic Binary BodySite Bundle CapabilityStatement CarePlan
    CareTeam ChargeItem Claim ClaimResponse ClinicalImpression CodeSystem Communication
    CommunicationRequest CompartmentDefinition Composition ConceptMap Condition Consent
    Contract Coverage DataElement DetectedIssue Device DeviceComponent DeviceMetric
    DeviceRequest DeviceUseStatement DiagnosticReport DocumentManifest DocumentReference
    EligibilityRequest EligibilityResponse Encounter Endpoint EnrollmentRequest
    EnrollmentResponse EpisodeOfCare ExpansionProfile ExplanationOfBenefit
    FamilyMemberHistory Flag Goal GraphDefinition Group GuidanceResponse HealthcareService
    ImagingManifest ImagingStudy Immunization ImmunizationRecommendation ImplementationGuide
    Library Linkage List Location Measure MeasureReport Media Medication
    MedicationAdministration MedicationDispense MedicationRequest MedicationStatement
    MessageDefinition MessageHeader NamingSystem NutritionOrder Observation
    OperationDefinition OperationOutcome Organization Parameters Patient PaymentNotice
    PaymentReconciliation Person PlanDefinition Practitioner PractitionerRole Procedure
    ProcedureRequest ProcessRequest ProcessResponse Provenance Questionnaire
    QuestionnaireResponse ReferralRequest RelatedPerson RequestGroup ResearchStudy
    ResearchSubject RiskAssessment Schedule SearchParameter Sequence ServiceDefinition Slot
    Specimen StructureDefinition StructureMap Subscription Substance SupplyDelivery
    SupplyRequest Task TestReport TestScript ValueSet VisionPrescription""".split()  # noqa: SIM905 - a word list reads better than 118 quoted names
)


class FhirProblem(enum.Enum):
    """Why an embedded resource was refused; the gate maps each to a status per generation."""

    NOT_AN_OBJECT = "not-an-object"
    """The claim is not a JSON object (a claim type error: 400)."""
    WRONG_TYPE = "wrong-type"
    """A valid FHIR resource type, but not the one the claim needs."""
    UNKNOWN_TYPE = "unknown-type"
    """``resourceType`` missing or not a FHIR resource type at all."""
    UNKNOWN_ELEMENT = "unknown-element"
    """An element the resource type does not have."""
    BAD_SHAPE = "bad-shape"
    """A known element with the wrong JSON shape (e.g. ``identifier`` not a list)."""


class FhirResourceError(Exception):
    """An embedded resource failed the structural check.

    Attributes:
        problem: what kind of failure.
        claim: the claim name (never the claim's content).
    """

    def __init__(self, problem: FhirProblem, claim: str) -> None:
        self.problem = problem
        self.claim = claim
        super().__init__(f"{claim}: {problem.value}")


def _elements_ok(resource: Mapping[str, Any], allowed: frozenset[str]) -> bool:
    for key in resource:
        # "_x" carries the id/extensions of primitive element "x" in FHIR JSON.
        if key not in allowed and not (key[:1] == "_" and key[1:] in allowed):
            return False
    return True


def _identifiers_ok(value: object) -> bool:
    if not isinstance(value, list):
        return False
    for ident in value:
        if not isinstance(ident, dict) or not _elements_ok(ident, _IDENTIFIER):
            return False
        system = ident.get("system")
        val = ident.get("value")
        if (system is not None and not isinstance(system, str)) or (
            val is not None and not isinstance(val, str)
        ):
            return False
    return True


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _human_name_ok(value: object, generation: Generation) -> bool:
    if not isinstance(value, dict) or not _elements_ok(value, _HUMAN_NAME):
        return False
    family = value.get("family")
    # STU3 made family a single string; DSTU2 had an array [JWT][JWT-07].
    if family is not None:
        if generation is Generation.V1 and not isinstance(family, str):
            return False
        if generation is Generation.V0_7 and not _strings(family):
            return False
    return all(value.get(k) is None or _strings(value[k]) for k in ("given", "prefix", "suffix"))


def check_resource(
    value: object, expected: str, generation: Generation, *, claim: str
) -> dict[str, Any]:
    """Check that ``value`` is a structurally valid ``expected`` resource.

    Args:
        value: the decoded claim.
        expected: the resource type the claim must hold.
        generation: STU3 (1.x) or DSTU2 (0.7.x) element sets.
        claim: the claim name, for the error.

    Returns:
        The resource, typed as a dict.

    Raises:
        FhirResourceError: the resource is refused; ``problem`` says why.
    """
    if not isinstance(value, dict):
        raise FhirResourceError(FhirProblem.NOT_AN_OBJECT, claim)
    rtype = value.get("resourceType")
    if rtype != expected:
        known = isinstance(rtype, str) and rtype in STU3_RESOURCE_TYPES
        raise FhirResourceError(
            FhirProblem.WRONG_TYPE if known else FhirProblem.UNKNOWN_TYPE, claim
        )
    table = _V1_ELEMENTS if generation is Generation.V1 else _V07_ELEMENTS
    if not _elements_ok(value, table[expected]):
        raise FhirResourceError(FhirProblem.UNKNOWN_ELEMENT, claim)
    if "identifier" in value and not _identifiers_ok(value["identifier"]):
        raise FhirResourceError(FhirProblem.BAD_SHAPE, claim)
    rid = value.get("id")
    if rid is not None and not isinstance(rid, str):
        raise FhirResourceError(FhirProblem.BAD_SHAPE, claim)
    if expected == "Practitioner" and "name" in value:
        names = value["name"]
        ok = (
            _human_name_ok(names, generation)
            if generation is Generation.V0_7
            else isinstance(names, list) and all(_human_name_ok(n, generation) for n in names)
        )
        if not ok:
            raise FhirResourceError(FhirProblem.BAD_SHAPE, claim)
    return value


def identifier_values(resource: Mapping[str, Any], systems: frozenset[str]) -> list[str]:
    """The non-empty ``value`` of every identifier whose system is in ``systems``."""
    out: list[str] = []
    for ident in resource.get("identifier") or ():
        if ident.get("system") in systems:
            value = ident.get("value")
            if value:
                out.append(value)
    return out
