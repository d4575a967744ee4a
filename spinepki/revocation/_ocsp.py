"""OCSP (RFC 6960): build a request with a nonce, parse and verify a response.

Verification: the response is successful; it is signed by the certificate's issuer or by
a responder certificate that the issuer signed directly and marked with
id-kp-OCSPSigning (RFC 6960 4.2.2.2); the signature verifies over the ResponseData as
received; no extension is critical and unrecognised (RFC 6960 4.4); a SingleResponse
matches the certificate's CertID; an echoed nonce equals ours; thisUpdate/producedAt are
not in the future and nextUpdate has not passed (with a tolerance for clock skew); and a
response that shows no freshness of its own (no nextUpdate, no echo of our nonce) is no
older than a maximum age, so an old signed "good" cannot be replayed.

The delegated responder's own revocation status is not checked. RFC 6960 4.2.2.2.1 lets
the CA mark such certificates id-pkix-ocsp-nocheck for exactly this reason, and checking
it would need another round trip while a TLS peer waits.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

from spinepki._der import certificate_spki, read_tlv, spki_bit_string
from spinepki._loading import MALFORMED_INPUT, certificate_public_key
from spinepki._time import shift
from spinepki.errors import EvidenceError, OCSPParseError
from spinepki.revocation._crl import check_window
from spinepki.revocation._limits import DEFAULT_OCSP_MAX_AGE
from spinepki.revocation._types import RevocationEvidence, RevocationStatus

__all__ = [
    "CertID",
    "OCSPVerdict",
    "build_ocsp_request",
    "parse_ocsp_response",
    "verify_ocsp_response",
]

#: Nonce length: RFC 8954 asks for 1 to 32 octets and recommends 32.
NONCE_BYTES = 32
#: CertID hash algorithms accepted in responses (by cryptography's name = hashlib's name).
_HASHES = frozenset({"sha1", "sha224", "sha256", "sha384", "sha512"})
_STATUS = {
    ocsp.OCSPCertStatus.GOOD: RevocationStatus.GOOD,
    ocsp.OCSPCertStatus.REVOKED: RevocationStatus.REVOKED,
    ocsp.OCSPCertStatus.UNKNOWN: RevocationStatus.UNKNOWN,
}


def _key_bits(cert: x509.Certificate) -> bytes:
    return spki_bit_string(certificate_spki(cert.public_bytes(serialization.Encoding.DER)))


@dataclass(frozen=True, slots=True)
class CertID:
    """What identifies a certificate to OCSP: its serial and its issuer (RFC 6960 4.1.1)."""

    serial: int
    """The certificate's serial number."""
    issuer_name_der: bytes
    """DER of the issuer's subject name."""
    issuer_key: bytes
    """The issuer's subjectPublicKey bits."""

    @classmethod
    def of(cls, cert: x509.Certificate, issuer: x509.Certificate) -> CertID:
        """The CertID of ``cert`` issued by ``issuer``."""
        return cls(cert.serial_number, issuer.subject.public_bytes(), _key_bits(issuer))

    def matches(self, name_hash: bytes, key_hash: bytes, serial: int, algorithm: str) -> bool:
        """True when a response's CertID fields denote this certificate."""
        if algorithm not in _HASHES or serial != self.serial:
            return False
        name = hashlib.new(algorithm, self.issuer_name_der).digest()
        key = hashlib.new(algorithm, self.issuer_key).digest()
        return name == name_hash and key == key_hash


def build_ocsp_request(
    cert: x509.Certificate, issuer: x509.Certificate, *, nonce: bytes | None = None
) -> tuple[bytes, bytes | None]:
    """A DER OCSP request for ``cert`` with a fresh random nonce.

    The CertID uses SHA-1, as RFC 5019 lightweight responders (and Spine) require; it
    identifies, it does not protect.

    Args:
        cert: the certificate to ask about.
        issuer: its issuer.
        nonce: the nonce to send (default 32 random bytes); ``b""`` sends none.

    Returns:
        ``(request_der, nonce_or_None)``.
    """
    value = os.urandom(NONCE_BYTES) if nonce is None else nonce
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303
    if value:
        builder = builder.add_extension(x509.OCSPNonce(value), critical=False)
    request = builder.build()
    return request.public_bytes(serialization.Encoding.DER), value or None


def parse_ocsp_response(data: bytes, *, source: str | None = None) -> ocsp.OCSPResponse:
    """Parse a DER OCSP response, reading every field spinepki uses.

    An unsuccessful response (``tryLater``, ``unauthorized``…) parses fine; verifying it
    reports the status.

    Raises:
        OCSPParseError: the bytes are not an OCSP response (the only exception raised).
    """
    label = source or "<OCSP response bytes>"
    try:
        response = ocsp.load_der_ocsp_response(data)
        if response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL:
            _ = response.produced_at_utc
            _ = response.responder_key_hash
            _ = response.responder_name
            _ = response.tbs_response_bytes
            _ = response.signature
            _ = response.signature_algorithm_oid
            for ext in response.extensions:
                _ = ext.value
            for ext in _single_extensions(response):
                _ = ext.value
            for cert in response.certificates:
                _ = cert.subject
            for single in response.responses:
                _ = single.certificate_status
                _ = single.this_update_utc
                _ = single.next_update_utc
                _ = single.serial_number
                _ = single.issuer_key_hash
                _ = single.issuer_name_hash
                if single.certificate_status is ocsp.OCSPCertStatus.REVOKED:
                    _ = single.revocation_time_utc
                    _ = single.revocation_reason
    except MALFORMED_INPUT as exc:
        raise OCSPParseError(f"not a valid OCSP response: {exc}", source=label) from exc
    return response


def _single_extensions(response: ocsp.OCSPResponse) -> x509.Extensions | tuple[()]:
    """The singleExtensions of a one-answer response (cryptography exposes no others)."""
    try:
        return response.single_extensions
    except ValueError:
        # More than one SingleResponse: cryptography does not expose their extensions;
        # spinepki's requests ask about one certificate, and so do Spine's responders.
        return ()


def _check_critical(response: ocsp.OCSPResponse, label: str) -> None:
    """RFC 6960 4.4: a critical extension the client does not recognise makes the
    response unusable. Only the nonce is recognised (and it is never critical in
    practice, but a responder may mark it so)."""
    for ext in response.extensions:
        if ext.critical and not isinstance(ext.value, x509.OCSPNonce):
            raise EvidenceError(
                f"the OCSP response has an unrecognised critical extension {ext.oid.dotted_string}",
                source=label,
            )
    for ext in _single_extensions(response):
        if ext.critical:
            raise EvidenceError(
                "the OCSP response's single response has an unrecognised critical extension "
                f"{ext.oid.dotted_string}",
                source=label,
            )
    if _has_several_answers(response) and _critical_single_extension(response.tbs_response_bytes):
        raise EvidenceError(
            "a single response of the OCSP response has an unrecognised critical extension",
            source=label,
        )


def _has_several_answers(response: ocsp.OCSPResponse) -> bool:
    answers = iter(response.responses)
    return next(answers, None) is not None and next(answers, None) is not None


def _critical_single_extension(tbs: bytes) -> bool:
    """True when any SingleResponse of a ResponseData carries a critical extension.

    cryptography exposes singleExtensions only for a one-answer response; with several,
    the DER is walked here (RFC 6960 4.2.1): ResponseData is version [0]?, responderID,
    producedAt, responses, [1] responseExtensions?; a SingleResponse is certID,
    certStatus, thisUpdate, [0] nextUpdate?, [1] singleExtensions?. No single extension
    is recognised, so any critical one refuses the response. cryptography has parsed
    these bytes as DER, so a critical flag is the three bytes 01 01 FF.
    """
    try:
        _, pos, end = read_tlv(tbs, 0)
        while pos < end:
            tag, content, nxt = read_tlv(tbs, pos)
            if tag == 0x30:  # responses (version, responderID and producedAt are not)
                return any(
                    _single_is_critical(tbs, single) for single in _elements(tbs, content, nxt)
                )
            pos = nxt
    except ValueError:  # pragma: no cover - cryptography parsed these bytes
        return True
    return False  # pragma: no cover - a ResponseData always has responses


def _elements(data: bytes, pos: int, end: int) -> list[int]:
    """Start offsets of the elements between ``pos`` and ``end``."""
    starts: list[int] = []
    while pos < end:
        starts.append(pos)
        _, _, pos = read_tlv(data, pos)
    return starts


def _single_is_critical(data: bytes, single: int) -> bool:
    _, content, end = read_tlv(data, single)
    # certID and certStatus come first; certStatus revoked is itself [1] (0xA1), so only
    # a [1] after them is singleExtensions.
    for field in _elements(data, content, end)[2:]:
        tag, extensions, _ = read_tlv(data, field)
        if tag != 0xA1:
            continue
        _, inner, inner_end = read_tlv(data, extensions)  # SEQUENCE OF Extension
        for extension in _elements(data, inner, inner_end):
            _, parts, extension_end = read_tlv(data, extension)
            for part in _elements(data, parts, extension_end):
                if data[part : part + 3] == b"\x01\x01\xff":
                    return True
    return False


@dataclass(frozen=True, slots=True)
class OCSPVerdict:
    """A verified OCSP answer about one certificate."""

    status: RevocationStatus
    """GOOD, REVOKED, or UNKNOWN (the responder does not know the certificate)."""
    this_update: datetime
    """thisUpdate, UTC."""
    next_update: datetime | None
    """nextUpdate, UTC, when given."""
    produced_at: datetime
    """producedAt, UTC."""
    revoked_at: datetime | None
    """Revocation time for REVOKED."""
    reason: x509.ReasonFlags | None
    """Revocation reason for REVOKED, when given."""
    url: str | None
    """Responder URL, or None when the caller supplied the response."""

    def check_fresh(self, at: datetime, tolerance: timedelta) -> None:
        """Raise EvidenceError when the answer is not yet valid or stale at ``at``."""
        check_window(
            self.this_update,
            self.next_update,
            at=at,
            tolerance=tolerance,
            what="the OCSP response",
            source=self.url or "supplied OCSP response",
        )

    def evidence(self) -> RevocationEvidence:
        """The evidence record for results."""
        return RevocationEvidence(
            source="ocsp",
            url=self.url,
            this_update=self.this_update,
            next_update=self.next_update,
            produced_at=self.produced_at,
        )


def _responder_is(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    key_hash = response.responder_key_hash
    if key_hash is not None:
        return hashlib.sha1(_key_bits(cert)).digest() == key_hash  # noqa: S324 - RFC 6960 byKey
    return response.responder_name == cert.subject


def _find_signer(
    response: ocsp.OCSPResponse,
    issuer: x509.Certificate,
    at: datetime,
    tolerance: timedelta,
    label: str,
) -> x509.Certificate:
    if _responder_is(response, issuer):
        return issuer
    for candidate in response.certificates:
        if not _responder_is(response, candidate):
            continue
        try:
            candidate.verify_directly_issued_by(issuer)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise EvidenceError(
                "the delegated responder certificate was not issued by the certificate's issuer",
                source=label,
            ) from exc
        try:
            eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (x509.ExtensionNotFound, ValueError) as exc:
            raise EvidenceError(
                "the delegated responder certificate has no extended key usage", source=label
            ) from exc
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            raise EvidenceError(
                "the delegated responder certificate lacks id-kp-OCSPSigning", source=label
            )
        if not (
            shift(candidate.not_valid_before_utc, -tolerance)
            <= at
            <= shift(candidate.not_valid_after_utc, tolerance)
        ):
            raise EvidenceError(
                "the delegated responder certificate is not valid at the validation time",
                source=label,
            )
        return candidate
    raise EvidenceError(
        "the response is signed neither by the issuer nor by a responder it authorised",
        source=label,
    )


def _verify_signature(response: ocsp.OCSPResponse, signer: x509.Certificate, label: str) -> None:
    data = response.tbs_response_bytes
    try:
        key = certificate_public_key(signer)
        if response.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS:
            raise EvidenceError("RSASSA-PSS signed OCSP responses are not supported", source=label)
        algorithm = response.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(response.signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(response.signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) and algorithm is None:
            key.verify(response.signature, data)
        else:
            raise EvidenceError(
                "the response's signature algorithm does not fit the signer's key type",
                source=label,
            )
    except InvalidSignature as exc:
        raise EvidenceError(
            "the OCSP response signature does not verify with the responder's key", source=label
        ) from exc
    except (UnsupportedAlgorithm, ValueError, TypeError) as exc:
        raise EvidenceError(f"unsupported OCSP signature algorithm: {exc}", source=label) from exc


def verify_ocsp_response(
    response: ocsp.OCSPResponse,
    cert_id: CertID,
    issuer: x509.Certificate,
    *,
    at: datetime,
    tolerance: timedelta,
    nonce: bytes | None = None,
    url: str | None = None,
    max_age: timedelta = DEFAULT_OCSP_MAX_AGE,
) -> OCSPVerdict:
    """Verify a parsed OCSP response about ``cert_id`` and return what it says.

    Freshness is checked too (at ``at``); callers reusing a verdict later re-check it with
    :meth:`OCSPVerdict.check_fresh`.

    Args:
        response: from :func:`parse_ocsp_response`.
        cert_id: the certificate asked about (:meth:`CertID.of`).
        issuer: the certificate's issuer.
        at: the validation time.
        tolerance: allowed clock skew.
        nonce: the nonce sent, when one was; an echoed nonce must equal it.
        url: the responder URL, for messages and evidence.
        max_age: the oldest thisUpdate accepted when the response has no nextUpdate and
            does not echo ``nonce`` (nothing else shows it is not a replay).

    Raises:
        EvidenceError: unsuccessful, unverifiable, an unrecognised critical extension,
            not about this certificate, replayed (nonce mismatch), not yet valid, stale,
            or without freshness and older than ``max_age``.
    """
    label = url or "supplied OCSP response"
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise EvidenceError(
            f"the responder answered {response.response_status.name.lower()}", source=label
        )
    signer = _find_signer(response, issuer, at, tolerance, label)
    _verify_signature(response, signer, label)
    _check_critical(response, label)
    nonce_matched = False
    if nonce is not None:
        try:
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            echoed = None  # RFC 6960 lets responders omit it (pre-produced responses)
        if echoed is not None and echoed != nonce:
            raise EvidenceError("the response's nonce is not the one sent (replay?)", source=label)
        nonce_matched = echoed is not None
    single = next(
        (
            s
            for s in response.responses
            if cert_id.matches(
                s.issuer_name_hash, s.issuer_key_hash, s.serial_number, s.hash_algorithm.name
            )
        ),
        None,
    )
    if single is None:
        raise EvidenceError("the response is not about this certificate", source=label)
    produced_at = response.produced_at_utc
    if produced_at > shift(at, tolerance):
        raise EvidenceError(
            f"the OCSP response was produced after the validation time ({produced_at.isoformat()})",
            source=label,
        )
    verdict = OCSPVerdict(
        status=_STATUS[single.certificate_status],
        this_update=single.this_update_utc,
        next_update=single.next_update_utc,
        produced_at=produced_at,
        revoked_at=(
            single.revocation_time_utc
            if single.certificate_status is ocsp.OCSPCertStatus.REVOKED
            else None
        ),
        reason=(
            single.revocation_reason
            if single.certificate_status is ocsp.OCSPCertStatus.REVOKED
            else None
        ),
        url=url,
    )
    verdict.check_fresh(at, tolerance)
    if (
        verdict.next_update is None
        and not nonce_matched
        and shift(verdict.this_update, max_age + tolerance) < at
    ):
        # Neither a promise of when newer status comes (nextUpdate) nor proof that it
        # was made for this request (our nonce): only its age can tell it from a replay.
        raise EvidenceError(
            "the OCSP response shows no freshness (no nextUpdate, no echo of our nonce) "
            f"and its thisUpdate {verdict.this_update.isoformat()} is more than "
            f"{_seconds(max_age)} before the validation time (replay?)",
            source=label,
        )
    return verdict


def _seconds(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:g} s"
