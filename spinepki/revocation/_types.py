"""Value types of the revocation layer: modes, statuses, evidence and results."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

__all__ = [
    "RevocationEvidence",
    "RevocationMode",
    "RevocationResult",
    "RevocationStatus",
]


class RevocationMode(enum.Enum):
    """How hard revocation is enforced; the values are the command-line spellings."""

    HARD_FAIL = "hard-fail"
    """Default. CRL from the distribution point first, then OCSP; no fresh evidence means
    :attr:`RevocationStatus.UNKNOWN`, which the validator rejects."""
    SOFT_FAIL = "soft-fail"
    """As HARD_FAIL, but UNKNOWN is marked ``soft_failed`` so the validator accepts it and
    reports the problems. A revoked certificate is still rejected."""
    CRL_ONLY = "crl-only"
    """Only CRLs (supplied or fetched from the distribution points); never OCSP."""
    OCSP_ONLY = "ocsp-only"
    """Only OCSP (supplied responses, the AIA URL or the configured responder)."""
    PREFER_OCSP = "prefer-ocsp"
    """OCSP first, then the CRL when OCSP gives no usable answer."""
    OFFLINE = "offline"
    """Only CRLs and OCSP responses supplied by the caller; nothing is fetched."""
    DISABLED = "disabled"
    """No checking at all. Needs ``unsafe_allow_disabled=True``."""


class RevocationStatus(enum.Enum):
    """What the evidence says about a certificate."""

    GOOD = "good"
    """Fresh, verified evidence says the certificate is not revoked."""
    REVOKED = "revoked"
    """Fresh, verified evidence lists the certificate as revoked."""
    UNKNOWN = "unknown"
    """No usable evidence: see :attr:`RevocationResult.problems`."""


@dataclass(frozen=True, slots=True)
class RevocationEvidence:
    """The piece of evidence a status rests on (one CRL or one OCSP response)."""

    source: str
    """``"crl"`` or ``"ocsp"``."""
    url: str | None
    """Where it was fetched from; None when the caller supplied it."""
    this_update: datetime
    """When the issuer produced the status (CRL thisUpdate / OCSP thisUpdate), UTC."""
    next_update: datetime | None
    """When newer evidence is promised (nextUpdate), UTC; None when the responder gave none."""
    crl_number: int | None = None
    """The CRL number extension, for CRL evidence that carries one."""
    produced_at: datetime | None = None
    """The OCSP producedAt time, for OCSP evidence."""


@dataclass(frozen=True, slots=True)
class RevocationResult:
    """The outcome of :meth:`RevocationChecker.check` for one certificate."""

    status: RevocationStatus
    """GOOD, REVOKED or UNKNOWN."""
    evidence: RevocationEvidence | None
    """The evidence the status rests on; None for UNKNOWN and for DISABLED."""
    revoked_at: datetime | None = None
    """Revocation date (CRL entry) or time (OCSP), UTC, for REVOKED."""
    reason: x509.ReasonFlags | None = None
    """The revocation reason when the issuer gave one."""
    problems: tuple[str, ...] = ()
    """Plain-words reasons why evidence was unusable (timeouts, bad signatures, stale…),
    in the order the sources were tried. May be non-empty even for GOOD or REVOKED, when
    an earlier source failed and a later one answered."""
    soft_failed: bool = False
    """True when SOFT_FAIL mode lets an UNKNOWN status through (in a
    ``ValidationResult``, for the leaf or for a CA on its path)."""
    reuse_until: datetime | None = None
    """For fetched evidence: when it was fetched plus the checker's ``max_staleness``.
    After it the checker asks the CA again, so a result built on it must not outlive it."""

    @property
    def valid_until(self) -> datetime | None:
        """Until when this result may be reused: the evidence's nextUpdate, and never past
        :attr:`reuse_until` (None: no bound is known)."""
        if self.evidence is None:
            return None
        until = self.evidence.next_update
        if self.reuse_until is not None and (until is None or self.reuse_until < until):
            return self.reuse_until
        return until
