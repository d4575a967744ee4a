"""``spinepki.securitytest``: bounded security probes of one GP Connect deployment.

    >>> from spinepki.securitytest import run_security_test
    >>> report = run_security_test(  # doctest: +SKIP
    ...     "https://provider.example.nhs.uk/A12345/STU3/1/gpconnect",
    ...     client_cert="ssp.pem", client_key="ssp.key")
    >>> report.passed, [c.id for c in report.failed]  # doctest: +SKIP

One report per run: a fixed list of :class:`SecurityCheck` (each names the OWASP Top 10
2021 category or GP Connect rule it proves) and every request sent. The probes target
one URL of one host, never a range; the denial-of-service probes are bounded by
:class:`ProbeLimits`; after every probe the valid request must still be served. See
``docs/security-test.md``.
"""

from __future__ import annotations

from spinepki._public import publish as _publish
from spinepki.securitytest._report import (
    SCHEMA,
    Exchange,
    ProbeLimits,
    SecurityCheck,
    SecurityReport,
    SecurityTestError,
)
from spinepki.securitytest._requests import InteractionPaths, ProbeTarget
from spinepki.securitytest._suite import (
    CHECKS,
    MAX_TIMEOUT,
    STEPS,
    SecurityProgress,
    run_security_test,
)
from spinepki.securitytest._target import Target, parse_url

__all__ = [
    "CHECKS",
    "MAX_TIMEOUT",
    "SCHEMA",
    "STEPS",
    "Exchange",
    "InteractionPaths",
    "ProbeLimits",
    "ProbeTarget",
    "SecurityCheck",
    "SecurityProgress",
    "SecurityReport",
    "SecurityTestError",
    "Target",
    "parse_url",
    "run_security_test",
]

# Show each name at its public path (``<class 'spinepki.gate.RequestGate'>``), not
# the private module that implements it, as httpx does.
_publish(__name__, __all__, globals())
