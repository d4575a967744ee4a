"""The few DER walks spinepki needs, done on bytes that cryptography already parsed.

cryptography re-encodes a CRL's TBSCertList to check its signature, which for a CRL of
100,000 entries costs more than the parse itself. The signature covers the bytes as
received, so verifying over the received slice is both faster and what RFC 5280 (5.1.1.3)
means. ``read_tlv`` is also used to peek at a key's algorithm before cryptography loads
it (see ``_loading``), so it is bounds-checked on any input: anything malformed raises
:class:`ValueError`, never an IndexError.
"""

from __future__ import annotations

__all__ = [
    "certificate_names",
    "certificate_spki",
    "read_tlv",
    "signed_parts",
    "spki_bit_string",
]


def read_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """``(tag, content_start, end)`` of the DER element starting at ``pos``.

    Raises:
        ValueError: truncated, indefinite or over-long length.
    """
    if pos + 2 > len(data):
        raise ValueError("truncated DER element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("high tag numbers are not expected here")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise ValueError("DER element runs past the end of the input")
    return tag, pos, end


def signed_parts(der: bytes) -> tuple[bytes, bytes, bytes]:
    """Split a signed X.509 structure (certificate, CRL, …) into its parts.

    Returns:
        ``(tbs, inner_algorithm, outer_algorithm)``: the TBS element as signed, the
        AlgorithmIdentifier inside it (the second element, after an optional version
        INTEGER) and the one outside it. RFC 5280 requires the two to be identical.

    Raises:
        ValueError: not the expected shape.
    """
    tag, start, end = read_tlv(der, 0)
    if tag != 0x30 or end != len(der):
        raise ValueError("not a single DER SEQUENCE")
    tbs_tag, tbs_start, tbs_end = read_tlv(der, start)
    if tbs_tag != 0x30:
        raise ValueError("TBS is not a SEQUENCE")
    alg_tag, _, alg_end = read_tlv(der, tbs_end)
    if alg_tag != 0x30:
        raise ValueError("signatureAlgorithm is not a SEQUENCE")
    outer = der[tbs_end:alg_end]
    pos = tbs_start
    first_tag, _, first_end = read_tlv(der, pos)
    if first_tag == 0x02:  # version INTEGER (v2 CRLs carry it)
        pos = first_end
    inner_tag, _, inner_end = read_tlv(der, pos)
    if inner_tag != 0x30 or inner_end > tbs_end:
        raise ValueError("TBS signature AlgorithmIdentifier not found")
    return der[start:tbs_end], der[pos:inner_end], outer


def spki_bit_string(spki_der: bytes) -> bytes:
    """The subjectPublicKey BIT STRING value (without the unused-bits octet).

    This is what an OCSP CertID's issuerKeyHash and a byKey ResponderID hash (RFC 6960
    4.1.1 and 4.2.1).

    Raises:
        ValueError: not a SubjectPublicKeyInfo.
    """
    tag, start, _ = read_tlv(spki_der, 0)
    if tag != 0x30:
        raise ValueError("not a SubjectPublicKeyInfo")
    _, _, alg_end = read_tlv(spki_der, start)
    bit_tag, bit_start, bit_end = read_tlv(spki_der, alg_end)
    if bit_tag != 0x03 or bit_end == bit_start:
        raise ValueError("subjectPublicKey is not a BIT STRING")
    return spki_der[bit_start + 1 : bit_end]


def certificate_names(cert_der: bytes) -> tuple[bytes, bytes, bytes]:
    """``(issuer, subject, subjectPublicKeyInfo)`` of a DER certificate, as encoded.

    Path building matches an issuer to a subject byte for byte, as cryptography's verifier
    does (no RFC 5280 7.1 case folding), so the encoded names are the keys; reading them
    from the bytes costs a few microseconds, where building cryptography's ``Name``
    objects costs about twenty.

    Raises:
        ValueError: not a certificate.
    """
    tag, start, _ = read_tlv(cert_der, 0)
    if tag != 0x30:
        raise ValueError("not a certificate")
    tag, pos, tbs_end = read_tlv(cert_der, start)
    if tag != 0x30 or pos >= tbs_end:
        raise ValueError("TBSCertificate is not a SEQUENCE")
    if cert_der[pos] == 0xA0:  # [0] EXPLICIT version
        pos = read_tlv(cert_der, pos)[2]
    pos = read_tlv(cert_der, pos)[2]  # serialNumber
    pos = read_tlv(cert_der, pos)[2]  # signature
    parts = []
    for expected in ("issuer", "validity", "subject", "subjectPublicKeyInfo"):
        tag, _, end = read_tlv(cert_der, pos)
        if tag != 0x30 or end > tbs_end:
            raise ValueError(f"{expected} not found")
        parts.append(cert_der[pos:end])
        pos = end
    return parts[0], parts[2], parts[3]


def certificate_spki(cert_der: bytes) -> bytes:
    """The SubjectPublicKeyInfo element of a DER certificate, as encoded.

    Read from the bytes, so no key object is built: that keeps key types spinepki refuses
    (DSA, whose objects cryptography deprecates) out of the OCSP CertID and key-id code.

    Raises:
        ValueError: not a certificate.
    """
    tag, start, _ = read_tlv(cert_der, 0)
    if tag != 0x30:
        raise ValueError("not a certificate")
    tag, pos, tbs_end = read_tlv(cert_der, start)
    if tag != 0x30:
        raise ValueError("TBSCertificate is not a SEQUENCE")
    if cert_der[pos] == 0xA0:  # [0] EXPLICIT version
        pos = read_tlv(cert_der, pos)[2]
    # serialNumber, signature, issuer, validity, subject
    for _ in range(5):
        pos = read_tlv(cert_der, pos)[2]
    tag, _, end = read_tlv(cert_der, pos)
    if tag != 0x30 or end > tbs_end:
        raise ValueError("subjectPublicKeyInfo not found")
    return cert_der[pos:end]
