"""What a Spine operator wants to see about one certificate (``spinepki cert show``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID

from spinepki._loading import MALFORMED_INPUT, is_dsa
from spinepki._validation._checks import fqdn_names
from spinepki.errors import CertificateLoadError

__all__ = ["CertificateSummary", "summarize_certificate"]


@dataclass(frozen=True, slots=True)
class CertificateSummary:
    """The fields of a certificate that matter on Spine, decoded once."""

    subject: str
    """Subject, RFC 4514."""
    issuer: str
    """Issuer, RFC 4514."""
    serial: str
    """Serial number, lowercase hex."""
    fqdn: str | None
    """The FQDN as spinepki reads it (SAN dNSName, else the subject CN)."""
    fqdn_source: str | None
    """``"san"``, ``"cn"`` or None."""
    other_names: tuple[str, ...]
    """Further names after :attr:`fqdn` (more SAN dNSNames)."""
    not_before: dt.datetime
    """Start of validity (UTC)."""
    not_after: dt.datetime
    """End of validity (UTC)."""
    days_left: int
    """Whole days from the time asked about to notAfter (negative once expired)."""
    state: str
    """``"valid"``, ``"expired"`` or ``"not yet valid"`` at the time asked about."""
    is_ca: bool
    """basicConstraints cA."""
    key: str
    """Public key type and size, e.g. ``RSA 2048`` or ``EC secp256r1``."""
    signature_algorithm: str
    """Signature algorithm name."""
    extended_key_usage: tuple[str, ...]
    """EKU names (``serverAuth``, ``clientAuth``…); empty when absent."""
    policies: tuple[str, ...]
    """Certificate policy OIDs, dotted."""
    crl_urls: tuple[str, ...]
    """CRL distribution point URLs."""
    ocsp_urls: tuple[str, ...]
    """AIA OCSP responder URLs."""
    ca_issuer_urls: tuple[str, ...]
    """AIA caIssuers URLs."""
    sha256: str
    """SHA-256 fingerprint, colon-separated upper-case hex."""
    sha1: str
    """SHA-1 thumbprint (what NHS Digital publishes), lowercase hex."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            name: (
                getattr(self, name).isoformat()
                if isinstance(getattr(self, name), dt.datetime)
                else list(getattr(self, name))
                if isinstance(getattr(self, name), tuple)
                else getattr(self, name)
            )
            for name in self.__slots__
        }


def _ext(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _uris(names: Any) -> list[str]:
    return [n.value for n in names or () if isinstance(n, x509.UniformResourceIdentifier)]


def _key(cert: x509.Certificate) -> str:
    if is_dsa(cert):
        return "DSA"
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    return type(key).__name__.removeprefix("_").replace("PublicKey", "")


def summarize_certificate(cert: x509.Certificate, *, at: dt.datetime) -> CertificateSummary:
    """Decode the fields of ``cert`` that a Spine operator checks, at time ``at``.

    Raises:
        CertificateLoadError: a field does not parse (cryptography parses lazily, so a
            certificate that loaded can still hold a malformed extension or key).
    """
    try:
        return _summarize(cert, at=at)
    except MALFORMED_INPUT as exc:
        raise CertificateLoadError(f"malformed certificate: {exc}") from exc


def _summarize(cert: x509.Certificate, *, at: dt.datetime) -> CertificateSummary:
    names, source = fqdn_names(cert, cn_fallback=True)
    bc = _ext(cert, x509.BasicConstraints)
    eku = _ext(cert, x509.ExtendedKeyUsage)
    policies = _ext(cert, x509.CertificatePolicies)
    cdp = _ext(cert, x509.CRLDistributionPoints)
    aia = _ext(cert, x509.AuthorityInformationAccess)
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    state = "not yet valid" if at < not_before else "expired" if at > not_after else "valid"
    crl_urls = [u for point in cdp or () for u in _uris(point.full_name)]
    ocsp = [d for d in aia or () if d.access_method == AuthorityInformationAccessOID.OCSP]
    issuers = [d for d in aia or () if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS]
    sig = cert.signature_algorithm_oid
    return CertificateSummary(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        fqdn=names[0] if names else None,
        fqdn_source=source,
        other_names=tuple(names[1:]),
        not_before=not_before,
        not_after=not_after,
        days_left=(not_after - at).days,
        state=state,
        is_ca=bool(bc and bc.ca),
        key=_key(cert),
        signature_algorithm=getattr(sig, "_name", None) or sig.dotted_string,
        extended_key_usage=tuple(getattr(o, "_name", o.dotted_string) for o in eku or ()),
        policies=tuple(p.policy_identifier.dotted_string for p in policies or ()),
        crl_urls=tuple(crl_urls),
        ocsp_urls=tuple(_uris(d.access_location for d in ocsp)),
        ca_issuer_urls=tuple(_uris(d.access_location for d in issuers)),
        sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        sha1=cert.fingerprint(hashes.SHA1()).hex(),  # noqa: S303 - an identifier, not security
    )
