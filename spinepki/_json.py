"""Strict JSON for everything a client sends: the JWT's header and claims, request bodies.

Shared by the gate (which parses the token and FHIR bodies) and the reference provider's
demo application (which parses the bodies it is given): one parser, so both refuse the
same inputs. Private and neutral, at the bottom of the layers (docs/architecture.md).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable
from typing import Any

from spinepki.errors import TokenParseError

__all__ = ["MAX_JSON_DEPTH", "json_depth", "parse_json_strict"]

#: Deepest nesting of JSON arrays/objects accepted (the top-level value is depth 1). The
#: GP Connect claims need 5 (payload > practitioner > name > HumanName > given); FHIR
#: Parameters bodies about 8. Checked before decoding, so the decoder never recurses more.
MAX_JSON_DEPTH = 32

# An escaped UTF-16 surrogate (\uD800-\uDFFF): a pair is how JSON spells U+10000 and up; a
# lone one cannot be UTF-8, and logging or re-encoding it later would fail far from here.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# A JSON string (possibly unterminated, so the match never fails and the scan stays
# linear), for removing strings before counting brackets.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\[\s\S])*+(?:"|\\?\Z)')
_BRACKETS_ONLY = {c: None for c in range(128) if chr(c) not in "[]{}"}
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_OPENERS = frozenset("{[")


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
