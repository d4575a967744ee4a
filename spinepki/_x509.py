"""X.509 helpers shared by validation, the gate's certificate sources and the TLS scanner.

Private and neutral: :mod:`spinepki.validation`, :mod:`spinepki.gate` and
:mod:`spinepki.scan` all read certificates the same way (every lazily parsed field touched
once, DNS names from the SAN or the CN, FQDNs compared case-insensitively with one
optional left-most wildcard label), and none of them may reach into another's private
modules (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from spinepki._loading import is_dsa

__all__ = [
    "Extensions",
    "extension_value",
    "extensions_by_oid",
    "fqdn_names",
    "match_fqdn",
    "normalise_fqdns",
    "parse_fully",
]

#: A certificate's extensions by OID (the objects, so both value and criticality are at hand).
Extensions: TypeAlias = Mapping[x509.ObjectIdentifier, "x509.Extension[Any]"]


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


def extensions_by_oid(cert: x509.Certificate) -> dict[x509.ObjectIdentifier, x509.Extension[Any]]:
    """The certificate's extensions by OID, read once (a lookup then costs a dict get).

    Raises:
        ValueError: an extension is malformed or duplicated (the caller reports MALFORMED).
    """
    return {ext.oid: ext for ext in cert.extensions}


def extension_value(exts: Extensions, oid: x509.ObjectIdentifier) -> Any:
    """The value of the extension with ``oid``, or None when the certificate has none."""
    ext = exts.get(oid)
    return None if ext is None else ext.value


def fqdn_names(
    leaf: x509.Certificate,
    *,
    cn_fallback: bool,
    exts: Extensions | None = None,
) -> tuple[tuple[str, ...], str | None]:
    """The leaf's DNS names and where they came from (``"san"``, ``"cn"`` or None).

    SAN dNSNames when the certificate has a subjectAltName; otherwise, with
    ``cn_fallback``, the subject CN (real Spine certificates carry the FQDN only there).

    Raises:
        ValueError: the SAN extension is malformed (the caller reports MALFORMED).
    """
    san = extension_value(
        extensions_by_oid(leaf) if exts is None else exts, ExtensionOID.SUBJECT_ALTERNATIVE_NAME
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
