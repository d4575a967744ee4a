"""A small strict decoder for the GP Connect unsecured JWT, and the claim rules (GP Connect
cross-organisation audit and provenance; sources in docs/gate.md).

Why not PyJWT: with ``verify_signature`` off it also switches off every claim check, it
accepts tokens GP Connect does not (padding, any header), and it costs several times a
plain base64+json decode. See ``docs/decisions/0002-strict-jwt-decoder.md``.

Every error message here is fixed text naming a claim at most: no token or claim
content is ever echoed, so messages are safe to return and to log.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from spinepki._json import parse_json_strict
from spinepki.errors import TokenParseError
from spinepki.gate._config import Generation, WrongResourceTypeResponse
from spinepki.gate._decision import Rejection, SpineCode
from spinepki.gate._fhir import FhirProblem, FhirResourceError, check_resource, identifier_values

if TYPE_CHECKING:
    from spinepki.gate._catalogue import Interaction
    from spinepki.gate._config import GateConfig

__all__ = ["check_claims", "decode_unsecured_jwt"]

_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_FROM_B64URL = bytes.maketrans(b"-_+/=", b"+/!!!")
_PADDING = (b"", b"", b"==", b"=")  # by length % 4 (1 is refused before)
# base64url('{"alg":"none","typ":"JWT"}'): the header every conforming consumer sends.
_NONE_HEADER = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"
_EXPECTED_HEADER = {"alg": "none", "typ": "JWT"}
_LIFETIME = 300  # exp - iat, exactly [JWT][PT-160]
# exp and iat must fit a signed 64-bit time_t: anything wider is no time, and would
# overflow when compared with the (float) clock.
_MIN_TIME = -(2**63)
_MAX_TIME = 2**63 - 1

_ODS_V1 = frozenset({"https://fhir.nhs.uk/Id/ods-organization-code"})
_ODS_RC5 = "http://fhir.nhs.net/Id/ods-organization-code"
_ODS_V07 = frozenset({_ODS_RC5})
_ODS_V1_RC5 = _ODS_V1 | _ODS_V07
_SDS_USER_V1 = frozenset({"https://fhir.nhs.uk/Id/sds-user-id"})
# 0.7.x consumers MUST send the erroneous system [ISS-422]; the corrected one is harmless.
_SDS_USER_V07 = frozenset({"http://fhir.nhs.net/sds-user-id", "http://fhir.nhs.net/Id/sds-user-id"})
NHS_NUMBER_V07 = "http://fhir.nhs.net/Id/nhs-number"


def _b64url(part: str, what: str) -> bytes:
    n = len(part)
    if not n:
        raise TokenParseError(f"JWT {what} is not unpadded base64url")
    rem = n % 4
    if rem == 1:
        if _B64URL.fullmatch(part) is None:
            raise TokenParseError(f"JWT {what} is not unpadded base64url")
        raise TokenParseError(f"JWT {what} has an impossible base64url length")
    # One C pass instead of a regex, a translation and a lenient decode: base64url's two
    # letters become base64's, and '+', '/' and '=' (not base64url) become '!', which the
    # strict decoder refuses like any other character outside the alphabet.
    try:
        data = binascii.a2b_base64(
            part.encode("ascii").translate(_FROM_B64URL) + _PADDING[rem], strict_mode=True
        )
    except (UnicodeEncodeError, binascii.Error):
        raise TokenParseError(f"JWT {what} is not unpadded base64url") from None
    # Canonical encoding only: the unused low bits of the last character must be 0,
    # otherwise two different strings decode to the same bytes.
    if rem and _INDEX[part[-1]] & (0x0F if rem == 2 else 0x03):
        raise TokenParseError(f"JWT {what} is not canonical base64url")
    return data


def decode_unsecured_jwt(token: str, *, max_bytes: int = 8192) -> dict[str, Any]:
    """Decode a GP Connect unsecured JWT (``alg: none``) and return its claims.

    Strict: three base64url parts (unpadded, canonical), an empty third part (so the
    token ends with ``.``), a header that is exactly ``{"alg":"none","typ":"JWT"}`` in
    any key order, and a JSON object payload; no object in the header or payload may
    name a member twice. No claim is checked here.

    Args:
        token: the compact token (without ``Bearer``).
        max_bytes: longest token accepted, checked before any decoding.

    Returns:
        The claims object.

    Raises:
        TokenParseError: the token is not such a JWT; the message never quotes it.
    """
    if len(token) > max_bytes:
        raise TokenParseError("JWT is too long")
    if not token.isascii():
        raise TokenParseError("JWT holds non-ASCII characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenParseError("JWT does not have three parts")
    header_b64, payload_b64, signature = parts
    if signature:
        raise TokenParseError("JWT signature part must be empty (unsecured JWT)")
    if header_b64 != _NONE_HEADER:
        header = parse_json_strict(_b64url(header_b64, "header"), what="JWT header")
        if header != _EXPECTED_HEADER:
            raise TokenParseError('JWT header must be exactly {"alg":"none","typ":"JWT"}')
    claims = parse_json_strict(_b64url(payload_b64, "payload"), what="JWT payload")
    if not isinstance(claims, dict):
        raise TokenParseError("JWT payload is not a JSON object")
    return claims


def _string(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if value is None:
        raise Rejection(f"JWT claim {name} is missing")
    if not isinstance(value, str):
        raise Rejection(f"JWT claim {name} has the wrong type")
    if not value.strip():
        raise Rejection(f"JWT claim {name} is blank")
    return value


def _integer(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if value is None:
        raise Rejection(f"JWT claim {name} is missing")
    # bool is an int subclass in Python; true is not a time.
    if type(value) is not int:
        raise Rejection(f"JWT claim {name} must be an integer number of seconds")
    if not _MIN_TIME <= value <= _MAX_TIME:
        raise Rejection(f"JWT claim {name} is out of range")
    return value


def _resource(
    claims: Mapping[str, Any],
    name: str,
    expected: str | tuple[str, ...],
    generation: Generation,
    config: GateConfig,
) -> dict[str, Any]:
    value = claims.get(name)
    if value is None:
        raise Rejection(f"JWT claim {name} is missing")
    wanted = (expected,) if isinstance(expected, str) else expected
    if isinstance(value, dict) and value.get("resourceType") in wanted[1:]:
        wanted = (value["resourceType"],)
    try:
        return check_resource(value, wanted[0], generation, claim=name)
    except FhirResourceError as exc:
        problem = exc.problem
    if problem is FhirProblem.NOT_AN_OBJECT:
        raise Rejection(f"JWT claim {name} has the wrong type")
    # A resource that fails validation (an element its type lacks, a malformed identifier
    # or name) is 422 INVALID_RESOURCE in both generations: the 0.7.4 pack's JWT.feature
    # ("JWT requesting device/organization/practitioner is not valid FHIR ... resource",
    # an invalidField added) expects 422 [PT-074], as 1.x does [PT-160]. A resourceType
    # that is not the one wanted is 400 in 0.7.x ("... invalid resourceType" scenarios),
    # and in 1.x 422 unless configured, for a known type in the wrong place, as 400.
    wrong_type = problem in (FhirProblem.WRONG_TYPE, FhirProblem.UNKNOWN_TYPE)
    if (generation is Generation.V0_7 and wrong_type) or (
        problem is FhirProblem.WRONG_TYPE
        and config.wrong_resource_type is WrongResourceTypeResponse.BAD_REQUEST
    ):
        raise Rejection(f"JWT claim {name} does not hold a valid {'/'.join(wanted)} resource")
    raise Rejection(
        f"JWT claim {name} does not hold a valid {'/'.join(wanted)} resource",
        status=422,
        spine=SpineCode.INVALID_RESOURCE,
    )


def check_claims(
    claims: Mapping[str, Any], interaction: Interaction, config: GateConfig, now: float
) -> None:
    """Apply every JWT claim rule (docs/gate.md, rules 12-19) for ``interaction``'s generation.

    ``requested_scope`` is only checked for presence here; the scope rules run after.

    Raises:
        Rejection: the first rule that fails (400, or 422 for invalid FHIR resources).
    """
    generation = interaction.generation
    v07 = generation is Generation.V0_7
    _string(claims, "iss")
    sub = _string(claims, "sub")
    aud = _string(claims, "aud")
    if v07:
        wrong_aud = config.expected_aud_v0_7 is not None and aud != config.expected_aud_v0_7
    else:
        wrong_aud = config.audiences is not None and aud not in config.audiences
    if wrong_aud:
        raise Rejection("JWT claim aud is not this provider's expected audience")
    exp = _integer(claims, "exp")
    iat = _integer(claims, "iat")
    if exp - iat != _LIFETIME:
        raise Rejection("JWT claims exp and iat must be exactly 300 seconds apart")
    if now >= exp + config.clock_tolerance.total_seconds():
        raise Rejection("JWT has expired")
    # A future iat must pass (consumer clocks run ahead; the assurance pack sends up to
    # +200 s) [RN-123], but only so far: otherwise a token would never expire.
    if iat > now + config.future_iat_allowance.total_seconds():
        raise Rejection("JWT claim iat is too far in the future")
    reason = _string(claims, "reason_for_request")
    if reason not in interaction.reasons:
        raise Rejection("JWT claim reason_for_request is not valid for this interaction")
    _string(claims, "requested_scope")

    _resource(claims, "requesting_device", "Device", generation, config)
    org = _resource(claims, "requesting_organization", "Organization", generation, config)
    if v07:
        if not isinstance(org.get("id"), str) or not isinstance(
            claims["requesting_device"].get("id"), str
        ):
            raise Rejection("JWT device and organization resources need an id in 0.7.x")
        ods_systems = _ODS_V07
    else:
        ods_systems = _ODS_V1_RC5 if config.accept_rc5_ods_system else _ODS_V1
    if not identifier_values(org, ods_systems):
        raise Rejection("JWT requesting_organization has no ODS code identifier")

    if claims.get("requesting_practitioner") is not None or interaction.practitioner_required:
        practitioner = _resource(
            claims, "requesting_practitioner", "Practitioner", generation, config
        )
        # An SDS user id is required; "UNK" (no smartcard) is a valid value [ISS-224].
        if not identifier_values(practitioner, _SDS_USER_V07 if v07 else _SDS_USER_V1):
            raise Rejection("JWT requesting_practitioner has no SDS user id identifier")
        if not practitioner.get("name"):
            raise Rejection("JWT requesting_practitioner has no name")
        pid = practitioner.get("id")
        if config.require_sub_matches_practitioner and pid is not None and pid != sub:
            raise Rejection("JWT claim sub does not equal requesting_practitioner.id")

    record = claims.get("requested_record")
    if v07:
        if record is None:
            raise Rejection("JWT claim requested_record is missing")
        record = _resource(
            claims, "requested_record", ("Patient", "Organization"), generation, config
        )
        system = NHS_NUMBER_V07 if record["resourceType"] == "Patient" else _ODS_RC5
        if not identifier_values(record, frozenset({system})):
            raise Rejection("JWT requested_record has no NHS number or ODS code identifier")
    elif record is not None and config.reject_v1_requested_record:
        raise Rejection("JWT claim requested_record is not allowed in 1.x")
