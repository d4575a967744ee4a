"""Builders for unusual CRLs and OCSP responses that the test PKI does not make."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from spinepki._der import read_tlv
from spinepki.revocation import (
    CertID,
    OCSPVerdict,
    RevocationMode,
    parse_ocsp_response,
    verify_ocsp_response,
)
from spinepki.testpki import IssuedCertificate, TestPKI

#: The fetch deadline the timed tests give the fetcher (seconds).
TIMEOUT = 0.6
#: Scheduling slack on a shared machine, beyond the +10 % a deadline allows: the bound
#: under test is the deadline (a slow fault holds 5 s), not how promptly the OS wakes
#: the thread that notices it.
SLACK = 0.15

ECDSA_SHA384_ALG = bytes.fromhex("300a06082a8648ce3d040303")
#: The revocation modes, short: the tests name one in almost every checker they build.
M = RevocationMode
#: The clock tolerance the tests verify OCSP responses with.
TOL = dt.timedelta(minutes=5)
DAY = dt.timedelta(days=1)


def make_cert(
    subject: x509.Name,
    public_key: object,
    signing_key: object,
    at: dt.datetime,
    *,
    issuer: x509.Name | None = None,
    serial: int = 1,
    digest: hashes.HashAlgorithm | None = None,
) -> x509.Certificate:
    """A bare certificate valid a day either side of ``at`` (self-issued unless ``issuer``);
    ``digest`` None for Ed25519 keys."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(serial)
        .not_valid_before(at - DAY)
        .not_valid_after(at + DAY)
        .sign(signing_key, digest)  # type: ignore[arg-type]
    )


def cn(common_name: str) -> x509.Name:
    """A name with only a common name."""
    return x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)])


def verify_ocsp(
    pki: TestPKI,
    data: bytes,
    at: dt.datetime,
    *,
    name: str = "ssp",
    cert: x509.Certificate | None = None,
    issuer: x509.Certificate | None = None,
    tolerance: dt.timedelta = TOL,
    nonce: bytes | None = None,
    max_age: dt.timedelta | None = None,
) -> OCSPVerdict:
    """Verify DER ``data`` as an OCSP response about ``cert`` (default ``pki``'s leaf
    ``name``), issued by ``issuer`` (default the Sub CA)."""
    issuer = issuer or pki.sub_ca.certificate
    extra = {} if max_age is None else {"max_age": max_age}
    return verify_ocsp_response(
        parse_ocsp_response(data),
        CertID.of(cert or pki.leaf(name).certificate, issuer),
        issuer,
        at=at,
        tolerance=tolerance,
        nonce=nonce,
        **extra,
    )


def make_crl(
    ca: IssuedCertificate,
    *,
    this_update: dt.datetime,
    next_update: dt.timedelta = dt.timedelta(days=7),
    serials: Iterable[int] = (),
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    aki: bool = True,
    number: int | None = 1,
    signer: IssuedCertificate | None = None,
    reason: x509.ReasonFlags | None = x509.ReasonFlags.key_compromise,
) -> x509.CertificateRevocationList:
    """A CRL from ``ca``'s name, signed by ``signer`` (default ``ca``)."""
    key = (signer or ca).private_key
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(this_update)
        .next_update(this_update + next_update)
    )
    if number is not None:
        builder = builder.add_extension(x509.CRLNumber(number), critical=False)
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    for serial in serials:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(this_update)
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]


def idp(
    url: str | None = None, *, user_certs: bool = False, ca_certs: bool = False
) -> x509.IssuingDistributionPoint:
    """An issuingDistributionPoint: the partition at ``url``, or only user or only CA
    certificates; no reasons, not indirect, no attribute certificates."""
    return x509.IssuingDistributionPoint(
        full_name=None if url is None else [x509.UniformResourceIdentifier(url)],
        relative_name=None,
        only_contains_user_certs=user_certs,
        only_contains_ca_certs=ca_certs,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )


def tlv(tag: int, content: bytes) -> bytes:
    """A DER element."""
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + content


def children(data: bytes) -> list[bytes]:
    """The elements inside a constructed DER element."""
    _, pos, end = read_tlv(data, 0)
    out = []
    while pos < end:
        _, _, nxt = read_tlv(data, pos)
        out.append(data[pos:nxt])
        pos = nxt
    return out


def resign_crl(
    crl: x509.CertificateRevocationList,
    key: ec.EllipticCurvePrivateKey,
    *,
    drop_next_update: bool = False,
    outer_alg: bytes | None = None,
) -> bytes:
    """Re-assemble an EC-signed CRL with changes, signed again with ``key``."""
    der = crl.public_bytes(serialization.Encoding.DER)
    tbs, alg, _ = children(der)
    fields = children(tbs)
    if drop_next_update:
        del fields[4]  # version, signature, issuer, thisUpdate, nextUpdate, ...
    new_tbs = tlv(0x30, b"".join(fields))
    digest: hashes.HashAlgorithm = hashes.SHA256()
    if outer_alg == ECDSA_SHA384_ALG:
        digest = hashes.SHA384()
    signature = key.sign(new_tbs, ec.ECDSA(digest))
    return tlv(0x30, new_tbs + (outer_alg or alg) + tlv(0x03, b"\0" + signature))


def make_ocsp(
    pki: TestPKI,
    cert: x509.Certificate,
    issuer: IssuedCertificate,
    *,
    this_update: dt.datetime,
    next_update: dt.timedelta | None = dt.timedelta(hours=12),
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
    signer: IssuedCertificate | None = None,
    include: Sequence[x509.Certificate] = (),
    nonce: bytes | None = None,
    by_name: bool = False,
    serial: int | None = None,
    reason: x509.ReasonFlags | None = x509.ReasonFlags.superseded,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    ed25519: bool = False,
) -> bytes:
    """A DER OCSP response about ``cert`` (``reason``: of a REVOKED status; ``extensions``:
    response extensions with their criticality; ``ed25519``: the signer's key is Ed25519,
    which takes no digest)."""
    signer = signer or issuer
    builder = ocsp.OCSPResponseBuilder()
    if serial is None:
        builder = builder.add_response(
            cert=cert,
            issuer=issuer.certificate,
            algorithm=hashes.SHA1(),
            cert_status=status,
            this_update=this_update,
            next_update=this_update + next_update if next_update is not None else None,
            revocation_time=this_update if status is ocsp.OCSPCertStatus.REVOKED else None,
            revocation_reason=reason if status is ocsp.OCSPCertStatus.REVOKED else None,
        )
    else:
        probe = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer.certificate, hashes.SHA1())
        request = probe.build()
        builder = builder.add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=serial,
            algorithm=hashes.SHA1(),
            cert_status=status,
            this_update=this_update,
            next_update=this_update + next_update if next_update is not None else None,
            revocation_time=None,
            revocation_reason=None,
        )
    encoding = ocsp.OCSPResponderEncoding.NAME if by_name else ocsp.OCSPResponderEncoding.HASH
    builder = builder.responder_id(encoding, signer.certificate)
    if include:
        builder = builder.certificates(list(include))
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    digest = None if ed25519 else hashes.SHA256()
    response = builder.sign(signer.private_key, digest)  # type: ignore[arg-type]
    return response.public_bytes(serialization.Encoding.DER)
