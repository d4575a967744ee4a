"""The explicit, pure checks behind precise failure codes.

cryptography's verifier answers "a path exists or not" with one opaque message, so the
checks here run alongside it to say *why*: validity of each certificate, the key and
signature-algorithm floor, the purpose (EKU), the FQDN and the certificate policies. A
small reporting-only path builder finds the path cryptography would have tried, so those
checks can name the certificate at fault even when no trusted path exists (see
``_paths``).

The helpers the gate and the scanner share with validation (``parse_fully``, the FQDN
matching) live in :mod:`spinepki._x509`; they are re-exported here for this package.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Sequence
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import (
    ExtendedKeyUsageOID,
    ExtensionOID,
    SignatureAlgorithmOID,
)

from spinepki._loading import MALFORMED_INPUT, certificate_public_key
from spinepki._x509 import (
    Extensions,
    extensions_by_oid,
    fqdn_names,
    match_fqdn,
    normalise_fqdns,
    parse_fully,
)
from spinepki._x509 import extension_value as _value
from spinepki.validation._model import FailureCode, Purpose, ValidationFailure

__all__ = [
    "KEY_USAGE_BITS",
    "MIN_RSA_BITS",
    "Extensions",
    "IPName",
    "classify_verifier_error",
    "extensions_by_oid",
    "fqdn_names",
    "key_floor",
    "key_usage_problem",
    "match_fqdn",
    "match_ip",
    "missing_policies",
    "normalise_fqdns",
    "parse_fully",
    "purpose_problem",
    "san_ip_names",
    "san_problem",
    "signature_floor",
    "split_names",
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
#: The keyUsage bits by their cryptography attribute names (RFC 5280 4.2.1.3 order).
KEY_USAGE_BITS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)
IPName: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


def subject_of(cert: x509.Certificate) -> str:
    """The subject as RFC 4514 text, or a placeholder when it cannot be rendered."""
    try:
        return cert.subject.rfc4514_string()
    except MALFORMED_INPUT:  # cryptography parses the subject lazily; it may be garbage
        return "<unreadable subject>"


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


def san_problem(leaf: x509.Certificate, exts: Extensions) -> ValidationFailure | None:
    """UNTRUSTED when the subjectAltName breaks RFC 5280 4.2.1.6 for the leaf's subject.

    An empty subject needs a subjectAltName, marked critical; a non-empty subject needs
    a non-critical one when there is one (RFC 5280 says SHOULD, the CA/Browser Forum
    Baseline Requirements 7.1.2.7.12 MUST; cryptography's verifier enforces both). The
    spine profile lets the subjectAltName be absent, and only that, so the rule is checked
    here for every profile rather than left to the verifier.
    """
    san = exts.get(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    empty = len(leaf.subject) == 0
    if san is None:
        if not empty:
            return None
        problem = "the subject is empty and there is no subjectAltName (RFC 5280 4.2.1.6)"
    else:
        if san.critical == empty:
            return None
        problem = (
            "the subject is empty, so the subjectAltName must be critical (RFC 5280 4.2.1.6)"
            if empty
            else "the subjectAltName is critical although the subject is not empty "
            "(RFC 5280 4.2.1.6; CA/Browser Forum BR 7.1.2.7.12)"
        )
    return ValidationFailure(FailureCode.UNTRUSTED, problem, subject_of(leaf))


def key_usage_problem(
    leaf: x509.Certificate, required: Sequence[str], exts: Extensions
) -> ValidationFailure | None:
    """WRONG_PURPOSE unless the leaf's keyUsage asserts every bit in ``required``.

    A leaf without a keyUsage extension fails: the option asks for the bits to be
    asserted, so "unrestricted by omission" (RFC 5280 4.2.1.3) does not satisfy it.
    """
    if not required:
        return None
    usage = _value(exts, ExtensionOID.KEY_USAGE)
    if usage is None:
        missing = list(required)
    else:
        # encipher_only/decipher_only raise unless key_agreement is set (they are
        # defined only together with it), so they count as not asserted then.
        missing = [
            bit
            for bit in required
            if not (
                usage.key_agreement and getattr(usage, bit)
                if bit in ("encipher_only", "decipher_only")
                else getattr(usage, bit)
            )
        ]
    if not missing:
        return None
    where = "the certificate has no keyUsage extension" if usage is None else "keyUsage lacks"
    return ValidationFailure(
        FailureCode.WRONG_PURPOSE,
        f"{where} {', '.join(missing)} (required)"
        if usage is not None
        else f"{where}; required: {', '.join(missing)}",
        subject_of(leaf),
    )


def purpose_problem(
    leaf: x509.Certificate,
    purpose: Purpose,
    exts: Extensions | None = None,
    *,
    require_eku: bool = True,
) -> ValidationFailure | None:
    """WRONG_PURPOSE unless the leaf's EKU lists the purpose's key purpose.

    With ``require_eku`` (the spine and strict profiles) a leaf without an EKU is refused,
    because Spine always issues one and "any purpose" is not what a provider means;
    without it (the general profile) an absent EKU means any purpose (RFC 5280 4.2.1.12).
    anyExtendedKeyUsage never counts (CA/Browser Forum BR 7.1.2.7.10, as cryptography).
    ``Purpose.ANY`` checks nothing.

    Raises:
        ValueError: the extension is malformed (the caller reports MALFORMED).
    """
    if purpose is Purpose.ANY:
        return None
    oid, label = _PURPOSE_EKU[purpose]
    eku = _value(extensions_by_oid(leaf) if exts is None else exts, ExtensionOID.EXTENDED_KEY_USAGE)
    if eku is None:
        if not require_eku:
            return None
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


def san_ip_names(exts: Extensions) -> tuple[IPName, ...]:
    """The leaf's subjectAltName iPAddress entries (addresses, not networks)."""
    san = _value(exts, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if san is None:
        return ()
    return tuple(
        ip
        for ip in san.get_values_for_type(x509.IPAddress)
        if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
    )


def match_ip(presented: Sequence[IPName], expected: frozenset[IPName]) -> IPName | None:
    """The first presented address equal to an expected one (RFC 5280 4.2.1.6: octets)."""
    for address in presented:
        if address in expected:
            return address
    return None


def split_names(names: Iterable[str]) -> tuple[frozenset[str], frozenset[IPName]]:
    """Configured peer names as compared: DNS names normalised, IP literals parsed.

    An IP address is matched only against subjectAltName iPAddress entries, never a DNS
    name or the CN (RFC 6125 6.2.1).
    """
    dns: list[str] = []
    ips: list[IPName] = []
    for raw in names:
        name = raw.strip().strip("[]")
        try:
            ips.append(ipaddress.ip_address(name))
        except ValueError:
            dns.append(raw)
    return normalise_fqdns(dns), frozenset(ips)


def missing_policies(
    leaf: x509.Certificate,
    required: frozenset[x509.ObjectIdentifier],
    exts: Extensions | None = None,
) -> frozenset[x509.ObjectIdentifier]:
    """The required policy OIDs the leaf does not assert (RFC 5280 trees are not built).

    Raises:
        ValueError: the extension is malformed (the caller reports MALFORMED).
    """
    if not required:
        return frozenset()
    policies = _value(
        extensions_by_oid(leaf) if exts is None else exts, ExtensionOID.CERTIFICATE_POLICIES
    )
    if policies is None:
        return required
    return required - {p.policy_identifier for p in policies}


def classify_verifier_error(message: str) -> FailureCode:
    """Map cryptography's one opaque VerificationError message to a failure code."""
    lowered = message.lower()
    if "exceeds max depth" in lowered or "path length constraint" in lowered:
        return FailureCode.CHAIN_TOO_LONG
    if "no matching subjectaltname" in lowered:
        # The server verifier's name rule: the same finding as spinepki's own name check.
        return FailureCode.FQDN_MISMATCH
    if "malformed" in lowered or "parse" in lowered or "asn.1" in lowered:
        return FailureCode.MALFORMED
    return FailureCode.UNTRUSTED


def clean_verifier_message(message: str) -> str:
    """cryptography's message without its object reprs (kept readable for people)."""
    text = message.removeprefix("validation failed: ")
    text = text.split(" (encountered processing <Certificate(", 1)[0]
    return text.strip()
