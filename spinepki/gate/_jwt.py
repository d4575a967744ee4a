"""A small strict decoder for the GP Connect unsecured JWT, and the claim rules (rules §3).

Why not PyJWT: with ``verify_signature`` off it also switches off every claim check, it
accepts tokens GP Connect does not (padding, any header), and it costs several times a
plain base64+json decode. See ``docs/decisions/0002-strict-jwt-decoder.md``.

Every error message here is fixed text naming a claim at most: no token or claim
content is ever echoed, so messages are safe to return and to log.
"""

from __future__ import annotations

import binascii
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from spinepki.errors import TokenParseError
from spinepki.gate._config import Generation, WrongResourceTypeResponse
from spinepki.gate._decision import Rejection, SpineCode
from spinepki.gate._fhir import FhirProblem, FhirResourceError, check_resource, identifier_values

if TYPE_CHECKING:
    from spinepki.gate._catalogue import Interaction
    from spinepki.gate._config import GateConfig

__all__ = ["MAX_JSON_DEPTH", "check_claims", "decode_unsecured_jwt", "parse_json_strict"]

#: Deepest nesting of JSON arrays/objects accepted (the top-level value is depth 1). The
#: GP Connect claims need 5 (payload > practitioner > name > HumanName > given); FHIR
#: Parameters bodies about 8. Checked before decoding, so the decoder never recurses more.
MAX_JSON_DEPTH = 32

_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_FROM_B64URL = bytes.maketrans(b"-_+/=", b"+/!!!")
_PADDING = (b"", b"", b"==", b"=")  # by length % 4 (1 is refused before)
# An escaped UTF-16 surrogate (\uD800-\uDFFF): a pair is how JSON spells U+10000 and up; a
# lone one cannot be UTF-8, and logging or re-encoding it later would fail far from here.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# base64url('{"alg":"none","typ":"JWT"}'): the header every conforming consumer sends.
_NONE_HEADER = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"
_EXPECTED_HEADER = {"alg": "none", "typ": "JWT"}
_LIFETIME = 300  # exp - iat, exactly [JWT][PT-160]
# exp and iat must fit a signed 64-bit time_t: anything wider is no time, and would
# overflow when compared with the (float) clock.
_MIN_TIME = -(2**63)
_MAX_TIME = 2**63 - 1
# A JSON string (possibly unterminated, so the match never fails and the scan stays
# linear), for removing strings before counting brackets.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\[\s\S])*+(?:"|\\?\Z)')
_BRACKETS_ONLY = {c: None for c in range(128) if chr(c) not in "[]{}"}
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_OPENERS = frozenset("{[")

_ODS_V1 = frozenset({"https://fhir.nhs.uk/Id/ods-organization-code"})
_ODS_RC5 = "http://fhir.nhs.net/Id/ods-organization-code"
_ODS_V07 = frozenset({_ODS_RC5})
_ODS_V1_RC5 = _ODS_V1 | _ODS_V07
_SDS_USER_V1 = frozenset({"https://fhir.nhs.uk/Id/sds-user-id"})
# 0.7.x consumers MUST send the erroneous system [ISS-422]; the corrected one is harmless.
_SDS_USER_V07 = frozenset({"http://fhir.nhs.net/sds-user-id", "http://fhir.nhs.net/Id/sds-user-id"})
NHS_NUMBER_V07 = "http://fhir.nhs.net/Id/nhs-number"


def _reject_constant(_: str) -> object:
    raise ValueError("NaN and Infinity are not JSON")


def _finite_float(text: str) -> float:
    # parse_constant only sees the literals NaN/Infinity; a number like 1e999 overflows to
    # inf on its own. No JWT claim or body rule needs a non-finite number.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {text[:20]!r}")
    return value


class _DuplicateMember(ValueError):
    """Internal: an object names the same member twice."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7519 §4 lets a JWT parser reject duplicate claim names, and RFC 8259 §4 leaves
    # their meaning to the implementation: Python keeps the last, many parsers the first.
    # A WAF, the SSP or an audit tool that reads the first `exp` or `aud` would see another
    # token than the one the gate approved, so no object anywhere may repeat a name. The
    # names are compared decoded, so "\u0065xp" is "exp".
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _DuplicateMember
    return members


# Built once: ``json.loads(text, parse_constant=...)`` would build a decoder (and its C
# scanner) on every call. ``decode`` does not special-case a BOM the way ``loads`` does,
# but a BOM is not a JSON value, so it is refused all the same.
_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant,
    parse_float=_finite_float,
    object_pairs_hook=_unique_members,
)
# The decoder's scanner, called directly for a value that fills the text exactly (what
# every consumer sends): ``decode`` would match leading and trailing whitespace with two
# regexes and two more Python frames on every call. Anything else goes through ``decode``.
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def json_depth(text: str) -> int:
    """The deepest array/object nesting in ``text`` (0 for a scalar), outside strings.

    For malformed JSON this is at least the depth a decoder reaches before it fails (the
    prefix it accepts is counted the same way), which is what bounding recursion needs.
    Linear time at C speed: strings are cut out by one regex, the brackets kept by
    ``str.translate``, and the running depth summed by ``itertools.accumulate``.
    """
    brackets = _JSON_STRING.sub("", text).translate(_BRACKETS_ONLY)
    # Non-ASCII characters survive translate (the table covers ASCII only): step 0.
    steps = map(_BRACKET_STEP.get, brackets, itertools.repeat(0))
    return max(itertools.accumulate(steps, initial=0))


def parse_json_strict(raw: bytes, *, what: str, max_depth: int = MAX_JSON_DEPTH) -> object:
    """Parse UTF-8 JSON strictly: no BOM or UTF-16/32 guessing, no NaN, no lone surrogates,
    no member name twice in one object (compared after unescaping), no nesting deeper than
    ``max_depth`` (checked before decoding: the decoder recurses once per level, so a deep
    value must never reach it).

    Raises:
        TokenParseError: for any malformed input (also used for bodies; ``what`` names it).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TokenParseError(f"{what} is not UTF-8") from None
    # Only a \u escape can spell a surrogate: the plain find is C-fast, the regex is not.
    has_surrogate = "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None
    # Fewer opening brackets than the limit cannot nest deeper than it (brackets inside
    # strings only over-count): the common case costs two str.count calls.
    if text.count("{") + text.count("[") > max_depth and json_depth(text) > max_depth:
        raise TokenParseError(f"{what} is nested too deeply")
    try:
        if text[:1] in _OPENERS:
            value, end = _SCAN(text, 0)
            if end != len(text):
                value = _DECODER.decode(text)  # trailing whitespace, or garbage: decide there
        else:
            value = _DECODER.decode(text)
    except StopIteration:  # the scanner's "expected a value here", as raw_decode knows it
        raise TokenParseError(f"{what} is not valid JSON") from None
    except _DuplicateMember:
        raise TokenParseError(f"{what} names a member twice") from None
    except ValueError:  # JSONDecodeError, int digit limit, NaN
        raise TokenParseError(f"{what} is not valid JSON") from None
    if has_surrogate:
        # RFC 8259 §7 escapes U+10000 and above as a surrogate *pair*, which decodes to one
        # character; only a lone surrogate survives decoding, and it cannot be UTF-8.
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise TokenParseError(f"{what} holds a lone UTF-16 surrogate") from None
    return value


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
    """Apply every JWT claim rule of rules §3 for ``interaction``'s generation.

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
