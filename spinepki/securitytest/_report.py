"""The security test's results: frozen checks and exchanges, the limits, and the report."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from spinepki._reporting import CheckedReport
from spinepki.errors import ConfigurationError, SecurityTestError

__all__ = [
    "A01",
    "A03",
    "A05",
    "A07",
    "DOS",
    "SCHEMA",
    "Exchange",
    "ProbeLimits",
    "SecurityCheck",
    "SecurityReport",
    "SecurityTestError",
]

#: Identifies the JSON layout of :meth:`SecurityReport.as_dict`; bumped on incompatible change.
SCHEMA = "spinepki.security-test/1"

#: The categories a check proves (OWASP Top 10 2021, or denial-of-service hardening).
A01 = "A01 Broken Access Control"
A03 = "A03 Injection"
A05 = "A05 Security Misconfiguration"
A07 = "A07 Identification and Authentication Failures"
DOS = "DoS hardening"


@dataclass(frozen=True, slots=True)
class ProbeLimits:
    """Hard bounds on the two denial-of-service probes (and what they wait for).

    Every value is checked on construction; anything above the hard ceilings
    (:attr:`CEILING_CONNECTIONS`, :attr:`CEILING_SECONDS`) is refused, so the suite can
    never be turned into a flood or a long-running hold on someone's server.

    Raises:
        ConfigurationError: a value that is not positive, or above its ceiling.
    """

    max_connections: int = 50
    """Idle connections the idle-connection probe opens and holds (at most 500)."""
    max_seconds: float = 30.0
    """Longest the slow-header probe trickles, and the longest the idle-connection probe
    holds its connections (at most 120 s). Set it above the server's header deadline."""
    response_seconds: float = 1.0
    """While the idle connections are held, a valid request must be answered within this."""
    trickle_interval: float = 0.5
    """Seconds between the bytes of the slow-header probe (at most ``max_seconds``)."""

    CEILING_CONNECTIONS: ClassVar[int] = 500
    CEILING_SECONDS: ClassVar[float] = 120.0

    def __post_init__(self) -> None:
        n = self.max_connections
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= self.CEILING_CONNECTIONS:
            raise ConfigurationError(
                f"must be an integer from 1 to {self.CEILING_CONNECTIONS}, got {n!r}",
                source="limits.max_connections",
            )
        for name in ("max_seconds", "response_seconds", "trickle_interval"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or not 0 < value <= self.CEILING_SECONDS
            ):
                raise ConfigurationError(
                    f"must be a number of seconds in (0, {self.CEILING_SECONDS:g}], got {value!r}",
                    source=f"limits.{name}",
                )
        if self.trickle_interval > self.max_seconds:
            raise ConfigurationError(
                "must not exceed max_seconds", source="limits.trickle_interval"
            )

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "max_connections": self.max_connections,
            "max_seconds": self.max_seconds,
            "response_seconds": self.response_seconds,
            "trickle_interval": self.trickle_interval,
        }


@dataclass(frozen=True, slots=True)
class SecurityCheck:
    """One property checked against the deployment."""

    id: str
    """Stable identifier, e.g. ``headers.missing`` or ``dos.slow_headers``."""
    passed: bool | None
    """True passed, False failed, None could not be determined (not proven)."""
    category: str
    """OWASP Top 10 2021 category (``A01 Broken Access Control`` …) or ``DoS hardening``."""
    rule: str
    """The rule this check proves, in one line (GP Connect rule where there is one)."""
    detail: str
    """What was observed, in plain words."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "id": self.id,
            "passed": self.passed,
            "category": self.category,
            "rule": self.rule,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request the suite sent and what came back (no token or header values)."""

    check: str
    """The check the request belongs to."""
    variant: str
    """Which variant of the probe (``missing Ssp-From``, ``%2e%2e`` …)."""
    request: str
    """Method and path (at most 200 characters)."""
    status: int | None
    """The HTTP status, or None when no response came back."""
    outcome: str
    """``answered``, ``closed`` (no response, connection closed), ``timeout`` or ``error``."""
    cache_control: str | None
    """The response's Cache-Control value(s)."""
    elapsed: float
    """Seconds from connect to the end of the response."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "check": self.check,
            "variant": self.variant,
            "request": self.request,
            "status": self.status,
            "outcome": self.outcome,
            "cache_control": self.cache_control,
            "elapsed_ms": round(self.elapsed * 1000, 1),
        }


@dataclass(frozen=True, slots=True)
class SecurityReport(CheckedReport[SecurityCheck]):
    """Everything one run found, and the verdict."""

    url: str
    """The URL tested (the service root)."""
    host: str
    """The host connected to."""
    port: int
    """The port connected to."""
    root: str
    """The service root path the requests were built under."""
    started_at: dt.datetime
    """When the run started (UTC)."""
    duration: float
    """How long it took, in seconds."""
    limits: ProbeLimits
    """The bounds the DoS probes ran under."""
    checks: tuple[SecurityCheck, ...]
    """One entry per property, in a fixed order."""
    exchanges: tuple[Exchange, ...]
    """Every request sent, in order."""

    @property
    def passed(self) -> bool:
        """True only when every check passed (an undetermined check is not a pass)."""
        return all(c.passed is True for c in self.checks)

    @property
    def testable(self) -> bool:
        """False when the valid baseline request was not served: refusals prove nothing."""
        return self.check("baseline.valid_request").passed is True

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON form (``schema`` names its version)."""
        return {
            "schema": SCHEMA,
            "target": {"url": self.url, "host": self.host, "port": self.port, "root": self.root},
            "started_at": self.started_at.isoformat(),
            "duration_seconds": round(self.duration, 3),
            "limits": self.limits.as_dict(),
            "passed": self.passed,
            "testable": self.testable,
            "summary": {
                "passed": sum(1 for c in self.checks if c.passed is True),
                "failed": len(self.failed),
                "undetermined": len(self.undetermined),
            },
            "checks": [c.as_dict() for c in self.checks],
            "exchanges": [e.as_dict() for e in self.exchanges],
        }
