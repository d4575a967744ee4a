"""The explicit, pure checks behind precise failure codes.

cryptography's verifier answers "a path exists or not" with one opaque message, so the
checks here run alongside it to say *why*: validity of each certificate, the key and
signature-algorithm floor, the purpose (EKU), the FQDN and the certificate policies. A
small reporting-only path builder finds the path cryptography would have tried, so those
checks can name the certificate at fault even when no trusted path exists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import (
    ExtendedKeyUsageOID,
    ExtensionOID,
    NameOID,
    SignatureAlgorithmOID,
)

from spinepki._loading import MALFORMED_INPUT, certificate_public_key, is_dsa
from spinepki._validation._model import FailureCode, Purpose, ValidationFailure

__all__ = [
    "MIN_RSA_BITS",
    "CandidatePath",
    "build_candidate_path",
    "classify_verifier_error",
    "extension_values",
    "fqdn_names",
    "key_floor",
    "match_fqdn",
    "missing_policies",
    "purpose_problem",
    "signature_floor",
    "subject_of",
    "validity_failure",
]

#: NHS approved-algorithms guidance and current practice: RSA keys of 2048 bits or more.
MIN_RSA_BITS = 2048
#: EC keys only on the NIST curves that TLS stacks and cryptography's verifier accept.
_APPROVED_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})
_APPROVED_SIGNATURES = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
        SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
    }
)
_BROKEN_SIGNATURES = {
    SignatureAlgorithmOID.RSA_WITH_MD5: "MD5",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "SHA-1",
    SignatureAlgorithmOID._RSA_WITH_SHA1: "SHA-1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "SHA-1",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "DSA with SHA-1",
}
_PSS_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_PURPOSE_EKU = {
    Purpose.CLIENT: (ExtendedKeyUsageOID.CLIENT_AUTH, "clientAuth"),
    Purpose.SERVER: (ExtendedKeyUsageOID.SERVER_AUTH, "serverAuth"),
}


def subject_of(cert: x509.Certificate) -> str:
    """The subject as RFC 4514 text, or a placeholder when it cannot be rendered."""
    try:
        return cert.subject.rfc4514_string()
    except MALFORMED_INPUT:  # cryptography parses the subject lazily; it may be garbage
        return "<unreadable subject>"


def parse_fully(cert: x509.Certificate) -> None:
    """Touch every lazily parsed field, so a malformed one fails here and nowhere later.

    cryptography defers parsing the names, the extensions and the key until first use;
    fuzzing found certificates that load but whose issuer raises deep in path building.

    Raises:
        Any of ``MALFORMED_INPUT``: some field does not parse (the caller reports MALFORMED).
    """
    _ = (cert.subject, cert.issuer, cert.not_valid_before_utc, cert.not_valid_after_utc)
    _ = list(cert.extensions)
    if not is_dsa(cert):  # DSA is refused by key_floor (WEAK_KEY), never built: see _loading
        cert.public_key()
    _ = cert.signature_hash_algorithm


def validity_failure(cert: x509.Certificate, at: dt.datetime) -> ValidationFailure | None:
    """EXPIRED / NOT_YET_VALID for ``cert`` at ``at`` (RFC 5280: both bounds inclusive)."""
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    if at < not_before:
        return ValidationFailure(
            FailureCode.NOT_YET_VALID,
            f"not valid until {not_before.isoformat()} (checked at {at.isoformat()})",
            subject_of(cert),
        )
    if at > not_after:
        return ValidationFailure(
            FailureCode.EXPIRED,
            f"expired at {not_after.isoformat()} (checked at {at.isoformat()})",
            subject_of(cert),
        )
    return None


def key_floor(cert: x509.Certificate) -> ValidationFailure | None:
    """WEAK_KEY unless the key is RSA >= 2048 bits or EC on P-256/P-384/P-521."""
    try:
        key = certificate_public_key(cert)
    except (UnsupportedAlgorithm, ValueError) as exc:
        return ValidationFailure(
            FailureCode.WEAK_KEY, f"unsupported public key: {exc}", subject_of(cert)
        )
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size >= MIN_RSA_BITS:
            return None
        problem = f"RSA key of {key.key_size} bits (at least {MIN_RSA_BITS} required)"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name in _APPROVED_CURVES:
            return None
        problem = f"EC key on curve {key.curve.name} (only P-256, P-384 and P-521 allowed)"
    else:
        problem = f"{type(key).__name__.removeprefix('_')} key (only RSA and EC are allowed)"
    return ValidationFailure(FailureCode.WEAK_KEY, problem, subject_of(cert))


def signature_floor(cert: x509.Certificate) -> ValidationFailure | None:
    """WEAK_SIGNATURE unless signed with SHA-256/384/512 RSA (PKCS#1 v1.5 or PSS) or ECDSA."""
    oid = cert.signature_algorithm_oid
    if oid in _APPROVED_SIGNATURES:
        return None
    if oid == SignatureAlgorithmOID.RSASSA_PSS:
        try:
            algorithm = cert.signature_hash_algorithm
        except UnsupportedAlgorithm:
            algorithm = None
        if isinstance(algorithm, _PSS_HASHES):
            return None
        problem = "an RSASSA-PSS signature with a hash weaker than SHA-256"
    elif oid in _BROKEN_SIGNATURES:
        problem = f"a {_BROKEN_SIGNATURES[oid]} signature (broken; not allowed below the root)"
    else:
        name = getattr(oid, "_name", None) or oid.dotted_string
        problem = f"a signature algorithm that is not on the approved list ({name})"
    return ValidationFailure(FailureCode.WEAK_SIGNATURE, f"signed with {problem}", subject_of(cert))


def extension_values(cert: x509.Certificate) -> dict[x509.ObjectIdentifier, Any]:
    """The certificate's extensions by OID, decoded once (lookups then cost a dict get).

    Raises:
        ValueError: an extension is malformed or duplicated (the caller reports MALFORMED).
    """
    return {ext.oid: ext.value for ext in cert.extensions}


def purpose_problem(
    leaf: x509.Certificate, purpose: Purpose, exts: dict[x509.ObjectIdentifier, Any] | None = None
) -> ValidationFailure | None:
    """WRONG_PURPOSE unless the leaf's EKU lists the purpose's key purpose.

    The EKU is required: a leaf without one is refused, because Spine always issues one
    and "any purpose" is not what a provider means. anyExtendedKeyUsage does not count.

    Raises:
        ValueError: the extension is malformed (the caller reports MALFORMED).
    """
    oid, label = _PURPOSE_EKU[purpose]
    eku = (extension_values(leaf) if exts is None else exts).get(ExtensionOID.EXTENDED_KEY_USAGE)
    if eku is None:
        return ValidationFailure(
            FailureCode.WRONG_PURPOSE,
            f"no extended key usage extension ({label} required)",
            subject_of(leaf),
        )
    if oid in eku:
        return None
    present = ", ".join(getattr(o, "_name", o.dotted_string) for o in eku) or "none"
    return ValidationFailure(
        FailureCode.WRONG_PURPOSE,
        f"extended key usage is {present}; {label} required",
        subject_of(leaf),
    )


def fqdn_names(
    leaf: x509.Certificate,
    *,
    cn_fallback: bool,
    exts: dict[x509.ObjectIdentifier, Any] | None = None,
) -> tuple[tuple[str, ...], str | None]:
    """The leaf's DNS names and where they came from (``"san"``, ``"cn"`` or None).

    SAN dNSNames when the certificate has a subjectAltName; otherwise, with
    ``cn_fallback``, the subject CN (real Spine certificates carry the FQDN only there).

    Raises:
        ValueError: the SAN extension is malformed (the caller reports MALFORMED).
    """
    san = (extension_values(leaf) if exts is None else exts).get(
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME
    )
    if san is not None:
        return tuple(san.get_values_for_type(x509.DNSName)), "san"
    if not cn_fallback:
        return (), None
    cns = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    names = tuple(a.value for a in cns if isinstance(a.value, str))
    return names, ("cn" if names else None)


def _normalise(name: str) -> str:
    return name.strip().rstrip(".").lower()


def match_fqdn(
    presented: Sequence[str], expected: frozenset[str], *, allow_wildcard: bool
) -> str | None:
    """The first presented name equal (case-insensitively) to an expected FQDN.

    A presented wildcard ``*.example.nhs.uk`` matches exactly one left-most label, and
    only with ``allow_wildcard``; ``expected`` must already be normalised.
    """
    for name in presented:
        norm = _normalise(name)
        if norm in expected:
            return name
        if allow_wildcard and norm.startswith("*.") and norm.count(".") >= 2:
            suffix = norm[1:]  # ".example.nhs.uk"
            for want in expected:
                head, dot, _ = want.partition(".")
                if dot and head and want[len(head) :] == suffix:
                    return name
    return None


def normalise_fqdns(names: Iterable[str]) -> frozenset[str]:
    """Configured FQDNs as compared: lower case, no trailing dot, no blanks."""
    return frozenset(n for n in (_normalise(x) for x in names) if n)


def missing_policies(
    leaf: x509.Certificate,
    required: frozenset[x509.ObjectIdentifier],
    exts: dict[x509.ObjectIdentifier, Any] | None = None,
) -> frozenset[x509.ObjectIdentifier]:
    """The required policy OIDs the leaf does not assert (RFC 5280 trees are not built).

    Raises:
        ValueError: the extension is malformed (the caller reports MALFORMED).
    """
    if not required:
        return frozenset()
    policies = (extension_values(leaf) if exts is None else exts).get(
        ExtensionOID.CERTIFICATE_POLICIES
    )
    if policies is None:
        return required
    return required - {p.policy_identifier for p in policies}


@dataclass(frozen=True, slots=True)
class CandidatePath:
    """A path found by name chaining and signatures alone (for reports, not for trust)."""

    certificates: tuple[x509.Certificate, ...]
    """Leaf first; ends at an anchor when :attr:`reached_anchor`."""
    reached_anchor: bool
    """True when the last certificate is a configured trust anchor."""
    problem: str
    """Why no anchor was reached, in plain words ("" when one was)."""


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (UnsupportedAlgorithm, ValueError):
        if cert.issuer != issuer.subject:
            return False
        # cryptography no longer verifies MD5/SHA-1 certificate signatures. To report such
        # a certificate as WEAK_SIGNATURE (rather than as a forgery) check the signature
        # with the raw primitives; trust is still refused by the floor.
        return _legacy_signed_by(cert, issuer)
    except (InvalidSignature, TypeError):
        return False
    return True


def _legacy_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        algorithm = cert.signature_hash_algorithm
        key = certificate_public_key(issuer)
        if algorithm is None:
            return False
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def build_candidate_path(
    leaf: x509.Certificate,
    pool: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    *,
    limit: int = 12,
) -> CandidatePath:
    """Follow issuer names (checking each signature) from ``leaf`` towards an anchor.

    Depth-first, anchors preferred, no certificate used twice, at most ``limit`` steps. Only
    used to explain a failure: trust is decided by cryptography's verifier.
    """
    by_subject: dict[x509.Name, list[x509.Certificate]] = {}
    for cert in (*anchors, *pool):
        by_subject.setdefault(cert.subject, []).append(cert)
    anchor_set = set(anchors)
    best: list[tuple[x509.Certificate, ...]] = [(leaf,)]
    problems: list[str] = []

    def walk(path: tuple[x509.Certificate, ...]) -> tuple[x509.Certificate, ...] | None:
        current = path[-1]
        if len(path) > len(best[0]):
            best[0] = path
        if len(path) > limit:
            return None
        candidates = [c for c in by_subject.get(current.issuer, ()) if c not in path]
        if not candidates:
            problems.append(
                f"the issuer {current.issuer.rfc4514_string()} of {subject_of(current)} is "
                "neither a trusted root nor a known intermediate"
            )
            return None
        signed = [c for c in candidates if _signed_by(current, c)]
        if not signed:
            problems.append(
                f"the signature on {subject_of(current)} does not verify with the key of "
                f"{current.issuer.rfc4514_string()}"
            )
            return None
        for issuer in signed:
            step = (*path, issuer)
            if issuer in anchor_set:
                return step
            if (found := walk(step)) is not None:
                return found
        return None

    if leaf in anchor_set:
        return CandidatePath((leaf,), True, "")
    found = walk((leaf,))
    if found is not None:
        return CandidatePath(found, True, "")
    return CandidatePath(best[0], False, problems[0] if problems else "no path found")


def classify_verifier_error(message: str) -> FailureCode:
    """Map cryptography's one opaque VerificationError message to a failure code."""
    lowered = message.lower()
    if "exceeds max depth" in lowered or "path length constraint" in lowered:
        return FailureCode.CHAIN_TOO_LONG
    if "malformed" in lowered or "parse" in lowered or "asn.1" in lowered:
        return FailureCode.MALFORMED
    return FailureCode.UNTRUSTED


def clean_verifier_message(message: str) -> str:
    """cryptography's message without its object reprs (kept readable for people)."""
    text = message.removeprefix("validation failed: ")
    text = text.split(" (encountered processing <Certificate(", 1)[0]
    return text.strip()
