"""SSP header collection: case-insensitive names, duplicates visible, sizes bounded [SSP]."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from spinepki.gate._decision import Rejection

if TYPE_CHECKING:
    from spinepki.gate._config import GateLimits

__all__ = ["HeaderInput", "SspHeader", "collect_headers", "identification_headers", "safe_value"]

HeaderInput = Iterable[tuple[str | bytes, str | bytes]] | Mapping[str, str] | Mapping[bytes, bytes]
"""Headers as (name, value) pairs, str or bytes, so duplicates stay visible; or a mapping."""


class SspHeader(enum.IntEnum):
    """The request headers the gate reads; the value is the slot index."""

    TRACE_ID = 0
    FROM = 1
    TO = 2
    INTERACTION_ID = 3
    AUTHORIZATION = 4

    @property
    def spelling(self) -> str:
        """The specification's spelling of the header name [SEC]."""
        return _SPELLING[self]


_SPELLING = {
    SspHeader.TRACE_ID: "Ssp-TraceID",
    SspHeader.FROM: "Ssp-From",
    SspHeader.TO: "Ssp-To",
    SspHeader.INTERACTION_ID: "Ssp-InteractionID",
    SspHeader.AUTHORIZATION: "Authorization",
}
_BY_STR = {h.spelling.lower(): h for h in SspHeader}
_SLOTS = tuple(SspHeader)  # iterating an Enum class runs Python code on every pass
_BY_BYTES = {k.encode("ascii"): v for k, v in _BY_STR.items()}
# Trace IDs, ASIDs and interaction IDs only ever use these; anything else is not logged.
_SAFE = re.compile(r"[A-Za-z0-9:._\-]{1,128}")


def safe_value(value: str | None) -> str | None:
    """``value`` if it is short and made of URN/GUID/ASID characters, else None (for audit)."""
    if value is not None and _SAFE.fullmatch(value):
        return value
    return None


def collect_headers(headers: HeaderInput, limits: GateLimits) -> list[str | None]:
    """Pick the SSP headers out of ``headers``, enforcing limits and uniqueness.

    Names match case-insensitively (RFC 7230 §3.2; the test pack sends
    ``Ssp-InteractionId``). Values are not trimmed: a trailing space makes a different,
    invalid interaction ID [PT-160]. Other headers are tolerated [PT-074].

    Returns:
        One slot per :class:`SspHeader`: the value, or None when absent.

    Raises:
        Rejection: too many or too large headers, a duplicated SSP header, or an SSP
            header value that is not printable ASCII.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    slots: list[str | bytes | None] = [None, None, None, None, None]
    count = 0
    total = 0
    max_count = limits.max_header_count
    max_value = limits.max_header_bytes
    max_total = limits.max_total_header_bytes
    for name, value in pairs:
        count += 1
        size = len(value)
        total += size
        if count > max_count:
            raise Rejection("the request has too many headers")
        if isinstance(name, bytes):
            slot = _BY_BYTES.get(name.lower())
        elif isinstance(name, str):
            slot = _BY_STR.get(name.lower())
        else:
            raise Rejection("a request header name is malformed")
        if slot is None:
            if size > max_value or total > max_total:
                raise Rejection("a request header is too large")
            continue
        # Authorization carries the token, which has its own bound (checked later with
        # a clearer message); every other header gets the general one.
        if (size > max_value and slot is not SspHeader.AUTHORIZATION) or total > max_total:
            raise Rejection(f"the {slot.spelling} header is too large")
        if slots[slot] is not None:
            raise Rejection(f"the {slot.spelling} header appears more than once")
        slots[slot] = value
    out: list[str | None] = [None, None, None, None, None]
    for slot, raw in zip(_SLOTS, slots, strict=True):
        if raw is None:
            continue
        if isinstance(raw, bytes):
            try:
                text = raw.decode("ascii")
            except UnicodeDecodeError:
                raise Rejection(f"the {slot.spelling} header is not ASCII") from None
        elif isinstance(raw, str):
            text = raw
        else:
            raise Rejection(f"the {slot.spelling} header is malformed")
        # isprintable() refuses control characters (and tab); isascii() the rest. A comma
        # never occurs in a legitimate SSP value and is what WSGI servers use to join
        # duplicated headers, so it also betrays a duplicate hidden by the server.
        if not (text.isascii() and text.isprintable()) or (
            "," in text and slot is not SspHeader.AUTHORIZATION
        ):
            raise Rejection(f"the {slot.spelling} header holds characters it cannot hold")
        out[slot] = text
    return out


_NO_IDS: tuple[None, None, None] = (None, None, None)


def identification_headers(
    headers: HeaderInput, limits: GateLimits, *, reiterable_only: bool = False
) -> tuple[str | None, str | None, str | None]:
    """``Ssp-TraceID``, ``Ssp-From`` and ``Ssp-To`` for the audit record of a request
    refused before (or while) :func:`collect_headers` ran; never raises.

    Lenient where ``collect_headers`` is strict, because nothing is decided on these:
    at most ``limits.max_header_count`` pairs are looked at, malformed pairs end the
    scan, a duplicated or non-ASCII header gives None. Values still go through
    :func:`safe_value` before they reach a decision.

    Args:
        headers: as given to the gate.
        reiterable_only: ``headers`` may already have been read once, so give up on a
            one-shot iterator rather than read what is left of it.
    """
    if isinstance(headers, Mapping):
        pairs: Iterable[tuple[object, object]] = headers.items()
    else:
        pairs = headers
        if reiterable_only and iter(pairs) is pairs:
            return _NO_IDS
    found: list[object] = [None, None, None]
    seen = [0, 0, 0]
    try:
        for count, (name, value) in enumerate(pairs):
            if count >= limits.max_header_count:
                break
            if isinstance(name, bytes):
                slot = _BY_BYTES.get(name.lower())
            elif isinstance(name, str):
                slot = _BY_STR.get(name.lower())
            else:
                continue
            if slot is None or slot > SspHeader.TO:
                continue
            seen[slot] += 1
            found[slot] = value
    except (TypeError, ValueError):  # a pair that is not a (name, value) pair
        pass
    out: list[str | None] = [None, None, None]
    for index in range(3):
        value = found[index] if seen[index] == 1 else None
        if isinstance(value, bytes) and len(value) <= 128:
            try:
                value = value.decode("ascii")
            except UnicodeDecodeError:
                value = None
        out[index] = safe_value(value) if isinstance(value, str) else None
    return out[0], out[1], out[2]
