"""Validation times in UTC, and date arithmetic that cannot overflow.

Every time kept or compared is UTC (:func:`to_utc`): two times of one local zone compare
by wall clock, so in the hour repeated when clocks go back (PEP 495's ``fold``) they
would look like the same time.

A CRL, OCSP response or certificate may carry any time ASN.1 can encode, up to
99991231235959Z (RFC 5280 4.1.2.5 gives that value a meaning for certificates), and a
caller may ask about any ``at``. ``datetime`` raises ``OverflowError`` past year 9999, so
every shift of such a time by a tolerance or a lifetime goes through :func:`shift`, which
stops at the ends of the calendar instead: a time past them compares as the end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from spinepki.errors import ConfigurationError

__all__ = ["shift", "to_utc"]

_LATEST = datetime.max.replace(tzinfo=UTC)
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def to_utc(at: datetime) -> datetime:
    """A caller's validation time ``at`` in UTC (the same instant).

    Raises:
        ConfigurationError: ``at`` is naive (time zones are not guessed), or has no UTC
            equivalent (a local time within hours of year 1 or past year 9999).
    """
    if at.tzinfo is UTC:
        return at
    if at.utcoffset() is None:
        raise ConfigurationError(
            "the validation time must be timezone-aware (e.g. datetime.now(UTC))", source="at"
        )
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise ConfigurationError(
            "the validation time is outside the calendar once in UTC", source="at"
        ) from None


def shift(when: datetime, delta: timedelta) -> datetime:
    """``when + delta`` in UTC, held at the first or last representable instant.

    An aware time in another zone is converted first: arithmetic on a local time is on
    its wall clock, which in the hour repeated when clocks go back is an hour off.
    """
    if when.tzinfo is not None and when.tzinfo is not UTC:
        try:
            when = when.astimezone(UTC)
        except OverflowError:  # its UTC instant is past one end of the calendar
            return _LATEST if when.year > 1 else _EARLIEST
    try:
        return when + delta
    except OverflowError:
        return _LATEST if delta > timedelta(0) else _EARLIEST
