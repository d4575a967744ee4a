"""What a Spine operator wants to see about one certificate (``spinepki cert show``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID

from spinepki._loading import MALFORMED_INPUT, is_dsa
from spinepki.errors import CertificateLoadError
from spinepki.validation._checks import fqdn_names

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
    subject_alt_names: tuple[str, ...]
    """Every subjectAltName entry, typed as OpenSSL prints them (``DNS:…``, ``IP:…``,
    ``URI:…``, ``email:…``, ``DirName:…``); empty when the extension is absent."""
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
    key_type: str
    """Public key algorithm: ``RSA``, ``EC``, ``Ed25519``, ``Ed448`` or ``DSA``."""
    key_size: int | None
    """Public key size in bits (the curve's size for EC); None when unknown (DSA)."""
    signature_algorithm: str
    """Signature algorithm name."""
    key_usage: tuple[str, ...]
    """Key usage bits set (``digitalSignature``, ``keyEncipherment``…); empty when absent."""
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
    subject_key_id: str | None
    """Subject key identifier, colon-separated upper-case hex; None when absent."""
    authority_key_id: str | None
    """Authority key identifier's keyIdentifier, same format; None when absent."""
    sha256: str
    """SHA-256 fingerprint, colon-separated upper-case hex (as ``openssl x509 -fingerprint``)."""
    sha1: str
    """SHA-1 fingerprint (the thumbprint NHS Digital publishes), in the same format."""

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


def _key(cert: x509.Certificate) -> tuple[str, int | None, str]:
    """``(type, bits, label)`` of the public key, e.g. ``("EC", 256, "EC secp256r1")``."""
    if is_dsa(cert):  # named from the OID: building a DSA key object warns (see _loading)
        return "DSA", None, "DSA"
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size, f"EC {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, "Ed448"
    name = type(key).__name__.removeprefix("_").replace("PublicKey", "")
    return name, None, name


#: KeyUsage attributes in RFC 5280 4.2.1.3 bit order, with the RFC's names.
_KEY_USAGE_BITS = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)


def _key_usage(ku: x509.KeyUsage | None) -> tuple[str, ...]:
    if ku is None:
        return ()
    names = [name for attr, name in _KEY_USAGE_BITS if getattr(ku, attr)]
    if ku.key_agreement:  # the last two bits are only defined with keyAgreement
        names += [n for a, n in (("encipher_only", "encipherOnly"),
                                 ("decipher_only", "decipherOnly")) if getattr(ku, a)]  # fmt: skip
    return tuple(names)


def _general_name(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"IP:{name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"URI:{name.value}"
    if isinstance(name, x509.RFC822Name):
        return f"email:{name.value}"
    if isinstance(name, x509.DirectoryName):
        return f"DirName:{name.value.rfc4514_string()}"
    if isinstance(name, x509.RegisteredID):
        return f"RID:{name.value.dotted_string}"
    return f"othername:{name.type_id.dotted_string}" if isinstance(name, x509.OtherName) else "?"


def _hex(value: bytes | None) -> str | None:
    return value.hex(":").upper() if value is not None else None


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
    san = _ext(cert, x509.SubjectAlternativeName)
    ski = _ext(cert, x509.SubjectKeyIdentifier)
    aki = _ext(cert, x509.AuthorityKeyIdentifier)
    key_type, key_size, key_label = _key(cert)
    return CertificateSummary(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        fqdn=names[0] if names else None,
        fqdn_source=source,
        other_names=tuple(names[1:]),
        subject_alt_names=tuple(_general_name(n) for n in san or ()),
        not_before=not_before,
        not_after=not_after,
        days_left=(not_after - at).days,
        state=state,
        is_ca=bool(bc and bc.ca),
        key=key_label,
        key_type=key_type,
        key_size=key_size,
        signature_algorithm=getattr(sig, "_name", None) or sig.dotted_string,
        key_usage=_key_usage(_ext(cert, x509.KeyUsage)),
        extended_key_usage=tuple(getattr(o, "_name", o.dotted_string) for o in eku or ()),
        policies=tuple(p.policy_identifier.dotted_string for p in policies or ()),
        crl_urls=tuple(crl_urls),
        ocsp_urls=tuple(_uris(d.access_location for d in ocsp)),
        ca_issuer_urls=tuple(_uris(d.access_location for d in issuers)),
        subject_key_id=_hex(ski.digest if ski is not None else None),
        authority_key_id=_hex(aki.key_identifier if aki is not None else None),
        sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        sha1=cert.fingerprint(hashes.SHA1()).hex(":").upper(),  # noqa: S303 - an identifier
    )
