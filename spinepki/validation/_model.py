"""The validator's value objects: codes, options, failures and results."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from spinepki.errors import CertificateValidationError
from spinepki.revocation import RevocationResult

__all__ = [
    "FailureCode",
    "Profile",
    "Purpose",
    "ValidationFailure",
    "ValidationResult",
]


class FailureCode(enum.StrEnum):
    """Why a certificate was rejected: stable, machine-readable, never parsed from messages."""

    UNTRUSTED = "untrusted"
    """No acceptable path to a configured trust anchor: an unknown issuer, a bad signature,
    a CA that is not a CA, a key usage that forbids signing certificates, a certificate
    that breaks the profile's extension rules (a critical extKeyUsage on the leaf, a
    subjectAltName of the wrong criticality, an unrecognised critical extension…), or a
    search that ran out of its work budget."""
    EXPIRED = "expired"
    """A certificate on the path (or the leaf) was past its notAfter at the validation time."""
    NOT_YET_VALID = "not_yet_valid"
    """A certificate on the path (or the leaf) was before its notBefore."""
    REVOKED = "revoked"
    """The leaf (or its Sub CA) is revoked by fresh, verified evidence."""
    REVOCATION_UNKNOWN = "revocation_unknown"
    """No usable revocation evidence for the leaf and the mode does not allow that."""
    FQDN_MISMATCH = "fqdn_mismatch"
    """The certificate's FQDN (or IP address) is none of the configured names, it carries
    no name, or the name would come from a subject with more than one CN."""
    WRONG_PURPOSE = "wrong_purpose"
    """The leaf lacks the extended key usage for the purpose (clientAuth / serverAuth), or
    a key usage bit that ``required_key_usage`` asks for."""
    POLICY_MISSING = "policy_missing"
    """The leaf does not assert a required certificate policy OID."""
    MALFORMED = "malformed"
    """A certificate parsed, but an extension or field in it is not valid DER/X.509."""
    WEAK_KEY = "weak_key"
    """A key below the floor: RSA < 2048 bits, an EC curve other than P-256/384/521, DSA…"""
    WEAK_SIGNATURE = "weak_signature"
    """A signature below the trust anchor made with MD5, SHA-1 or an unapproved algorithm."""
    CHAIN_TOO_LONG = "chain_too_long"
    """The path needs more intermediates than allowed (max depth or a CA's
    pathLenConstraint), or the peer sent more certificates than are ever considered
    (:data:`~spinepki.validation.MAX_INTERMEDIATES`)."""


class Purpose(enum.Enum):
    """What the leaf certificate must be good for (its extended key usage)."""

    CLIENT = "client"
    """TLS client authentication (id-kp-clientAuth): the SSP connecting to a provider.
    Checked with cryptography's client verifier; CA certificates that carry an EKU must
    allow clientAuth (or anyExtendedKeyUsage)."""
    SERVER = "server"
    """TLS server authentication (id-kp-serverAuth): a provider's (or the SSP's) server
    certificate. Checked with cryptography's *server* verifier and its name rules (DNS
    names, IP-address SANs for an IP); CA certificates that carry an EKU must allow
    serverAuth (or anyExtendedKeyUsage)."""
    ANY = "any"
    """No purpose: neither the leaf's nor the CAs' extended key usage is checked (only
    its criticality). For general PKI use, never for the SSP connection."""


class Profile(enum.Enum):
    """Which certificate profile the chain must meet (see ``docs/validation.md``)."""

    SPINE = "spine"
    """``strict`` with exactly the two relaxations real Spine certificates need:
    basicConstraints may be non-critical on CAs, and a leaf may have no subjectAltName,
    its FQDN then coming from its one subject CN. The default."""
    STRICT = "strict"
    """cryptography's RFC 5280 / CA/Browser Forum (webpki) extension rules; the leaf must
    carry a subjectAltName (names come only from it) and an extKeyUsage."""
    GENERAL = "general"
    """A general-purpose RFC 5280 profile: the ``strict`` extension rules, but an absent
    extKeyUsage means any purpose (RFC 5280 4.2.1.12), and the default maximum depth is
    8 intermediates (cryptography's default) rather than Spine's 3."""


@dataclass(frozen=True, slots=True)
class ValidationFailure:
    """One reason a certificate was rejected."""

    code: FailureCode
    """The stable code; callers branch on this."""
    message: str
    """What went wrong, in plain words (for people and logs, never parsed)."""
    certificate_subject: str | None = None
    """RFC 4514 subject of the certificate concerned, when it is one certificate."""

    def as_dict(self) -> dict[str, str | None]:
        """JSON-friendly form."""
        return {
            "code": self.code.value,
            "message": self.message,
            "certificate_subject": self.certificate_subject,
        }


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The outcome of validating one certificate. Immutable; safe to share and cache."""

    valid: bool
    """True only when there are no failures."""
    failures: tuple[ValidationFailure, ...]
    """Every failure found (not only the first), in the order the checks ran."""
    chain: tuple[x509.Certificate, ...]
    """The path built, leaf first and trust anchor last; when no trusted path exists, the
    best partial path found (leaf first) so reports can name the certificates."""
    fqdn: str | None
    """The FQDN matched (or, on a mismatch, the first name the certificate carries)."""
    fqdn_source: str | None
    """Where :attr:`fqdn` came from: ``"san"`` (subjectAltName dNSName) or ``"cn"``."""
    revocation: RevocationResult | None
    """The leaf's revocation result with its evidence; None when not checked (untrusted
    chain, or revocation disabled). Under soft-fail, a CA on the path whose status is
    unknown marks it ``soft_failed`` and adds its problems (``"issuing CA …: …"``)."""
    validated_at: dt.datetime
    """The validation time (``at``) of the validation that produced this result, in UTC
    (the same instant as the ``at`` given, whatever its time zone)."""
    from_cache: bool = False
    """True when this result was served from the validator's cache."""

    @property
    def codes(self) -> tuple[FailureCode, ...]:
        """The failure codes, in order, without duplicates."""
        return tuple(dict.fromkeys(f.code for f in self.failures))

    def has(self, code: FailureCode) -> bool:
        """True when a failure with ``code`` was found."""
        return any(f.code is code for f in self.failures)

    def raise_for_failure(self) -> None:
        """Raise :class:`~spinepki.errors.CertificateValidationError` unless valid.

        Raises:
            CertificateValidationError: with ``failure_codes`` set to the codes' values.
        """
        if self.valid:
            return
        leaf = self.chain[0].subject.rfc4514_string() if self.chain else None
        raise CertificateValidationError(
            "; ".join(f.message for f in self.failures),
            source=leaf,
            failure_codes=tuple(c.value for c in self.codes),
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the CLI's ``--json`` output)."""
        return {
            "valid": self.valid,
            "failures": [f.as_dict() for f in self.failures],
            "chain": [_describe(c) for c in self.chain],
            "fqdn": self.fqdn,
            "fqdn_source": self.fqdn_source,
            "revocation": _describe_revocation(self.revocation),
            "validated_at": self.validated_at.isoformat(),
            "from_cache": self.from_cache,
        }


def _describe(cert: x509.Certificate) -> dict[str, str]:
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


def _plain(value: dt.datetime | enum.Enum | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value.name


def _describe_revocation(outcome: RevocationResult | None) -> dict[str, Any] | None:
    if outcome is None:
        return None
    evidence = outcome.evidence
    described: dict[str, Any] = {
        "status": outcome.status.name,
        "revoked_at": _plain(outcome.revoked_at),
        "reason": _plain(outcome.reason),
        "problems": list(outcome.problems),
        "soft_failed": outcome.soft_failed,
        "valid_until": _plain(outcome.valid_until),
        "evidence": None,
    }
    if evidence is not None:
        described["evidence"] = {
            "source": evidence.source,
            "url": evidence.url,
            "this_update": _plain(evidence.this_update),
            "next_update": _plain(evidence.next_update),
            "crl_number": evidence.crl_number,
            "produced_at": _plain(evidence.produced_at),
        }
    return described
