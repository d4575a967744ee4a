"""RevocationLimits: the cache, backoff, time and age bounds of a RevocationChecker."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from spinepki.errors import ConfigurationError

__all__ = ["DEFAULT_MAX_STALENESS", "DEFAULT_OCSP_MAX_AGE", "RevocationLimits"]

#: The default worst-case delay from a CA publishing a revocation to the certificate being
#: refused: no fetched CRL or OCSP answer is relied on longer than this after it was
#: fetched (``RevocationLimits(max_staleness=...)``). The reference provider also renews
#: its TLS context this often, so no TLS session outlives it, and the exported server
#: configurations use it as their session lifetime. docs/revocation.md, "Freshness".
DEFAULT_MAX_STALENESS = timedelta(seconds=300)

#: The default oldest thisUpdate accepted on an OCSP response that shows no freshness of
#: its own (no nextUpdate, and no echo of our nonce). An on-demand responder's thisUpdate
#: is seconds old and one that pre-produces responses renews them well within the hour;
#: anything older could be a replay, and a replayed "good" would defeat revocation for
#: as long as it is accepted. docs/revocation.md, "Evidence rules".
DEFAULT_OCSP_MAX_AGE = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class RevocationLimits:
    """How long, how much and how often a :class:`RevocationChecker` may rely, cache and
    retry: every bound in one immutable value (``RevocationChecker(limits=...)``).

    Durations are of validation time (the ``at`` of each check) except ``check_timeout``,
    which is wall-clock seconds. ``docs/revocation.md`` explains each one.

    Raises:
        ConfigurationError: a negative duration, a non-positive ``max_staleness`` or
            ``ocsp_max_age``, a cache size below 1, or a ``check_timeout`` that is not a
            positive, finite number (naming the field).
    """

    max_staleness: timedelta = DEFAULT_MAX_STALENESS
    """The longest a fetched CRL or OCSP answer is relied on before the CA is asked
    again (a number of seconds is accepted and stored as a ``timedelta``)."""
    ocsp_max_age: timedelta = DEFAULT_OCSP_MAX_AGE
    """The oldest thisUpdate accepted on an OCSP response with neither a nextUpdate nor
    an echo of the nonce sent (a number of seconds is accepted, as above).
    Applies to supplied responses too, which never echo a nonce."""
    check_timeout: float | None = None
    """Seconds (wall clock) one check may spend fetching, in total; None: the fetcher's
    ``timeout`` attribute when it has one (5 s for the default ``RequestsFetcher``),
    else 5 s."""
    refresh_before: timedelta = timedelta(hours=1)
    """Refetch a cached CRL this long before its nextUpdate (at most half its lifetime)."""
    failure_backoff: timedelta = timedelta(seconds=30)
    """How long a failed fetch, or an unusable OCSP answer, is remembered and not retried."""
    crl_cache_size: int = 64
    """Most CRLs cached."""
    crl_cache_bytes: int = 128 * 1024 * 1024
    """Most CRL bytes cached (the newest CRL is always kept)."""
    ocsp_cache_size: int = 4096
    """Most OCSP answers cached (and most unusable OCSP answers remembered)."""

    _SECONDS: ClassVar[tuple[str, ...]] = ("max_staleness", "ocsp_max_age")
    _SIZES: ClassVar[tuple[str, ...]] = ("crl_cache_size", "crl_cache_bytes", "ocsp_cache_size")

    def __post_init__(self) -> None:
        for name in self._SECONDS:
            value = getattr(self, name)
            if not isinstance(value, timedelta):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ConfigurationError(
                        f"must be a timedelta or a number of seconds, got {value!r}",
                        source=f"RevocationLimits.{name}",
                    )
                try:
                    value = timedelta(seconds=value)
                except (OverflowError, ValueError):  # inf, nan, past timedelta.max
                    raise ConfigurationError(
                        f"must be a finite number of seconds, got {value!r}",
                        source=f"RevocationLimits.{name}",
                    ) from None
                object.__setattr__(self, name, value)
            if not value > timedelta(0):
                raise ConfigurationError("must be positive", source=f"RevocationLimits.{name}")
        for name in ("refresh_before", "failure_backoff"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value < timedelta(0):
                raise ConfigurationError(
                    f"must be a timedelta, not negative, got {value!r}",
                    source=f"RevocationLimits.{name}",
                )
        for name in self._SIZES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(
                    f"must be a positive integer, got {value!r}",
                    source=f"RevocationLimits.{name}",
                )
        timeout = self.check_timeout
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise ConfigurationError(
                f"must be a positive, finite number of seconds, got {timeout!r}",
                source="RevocationLimits.check_timeout",
            )
