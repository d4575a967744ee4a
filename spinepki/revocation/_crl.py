"""CRLs: parse, verify once against the issuer, index the serials, look up in O(1).

RFC 5280 section 5 and 6.3. Supported: complete, direct CRLs (the common and the Spine
case). Refused with a reason: delta CRLs, indirect CRLs, CRLs partitioned by reason, and
CRLs with an unrecognised critical extension, on the CRL or on any entry (RFC 5280 5.2,
5.3), because a relying party that ignored any of those could accept a revoked
certificate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import count
from operator import attrgetter

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from spinepki._der import certificate_spki, read_tlv, signed_parts, spki_bit_string
from spinepki._loading import (
    MALFORMED_INPUT,
    certificate_public_key,
    short_reason,
    unusable_input,
)
from spinepki._time import shift
from spinepki.errors import CRLParseError, EvidenceError
from spinepki.revocation._types import RevocationEvidence, RevocationResult, RevocationStatus

__all__ = ["VerifiedCRL", "check_window", "load_crl", "verify_crl"]

_PEM_MARK = b"-----BEGIN"
_serial_of = attrgetter("serial_number")
#: Entry extensions whose meaning we know, so a critical one is not "unrecognised"
#: (RFC 5280 5.3). certificateIssuer is left out: it only belongs in indirect CRLs.
_KNOWN_ENTRY_EXTENSIONS = (x509.CRLReason, x509.InvalidityDate)
#: Reasons that may be undone (RFC 5280 5.3.1: only certificateHold is temporary;
#: removeFromCRL belongs in delta CRLs). Every other listing is permanent.
_TEMPORARY_REASONS = frozenset(
    {x509.ReasonFlags.certificate_hold, x509.ReasonFlags.remove_from_crl}
)
#: In DER, an extension marked critical always has ``BOOLEAN TRUE`` (01 01 FF) right
#: before its extnValue OCTET STRING (04). A CRL whose entry list lacks these four bytes
#: has no critical entry extension; only one that has them is walked entry by entry.
#: Sound only because the bytes are DER: cryptography refuses, at load, a CRL whose
#: booleans or lengths are not DER (a BER ``01 01 01`` TRUE, a long-form length where a
#: short one fits, a constructed extnValue), so a critical flag cannot hide from the search.
_CRITICAL_MARK = b"\x01\x01\xff\x04"


def load_crl(
    data: bytes | x509.CertificateRevocationList, *, source: str | None = None
) -> x509.CertificateRevocationList:
    """Parse a CRL from DER or PEM bytes.

    The header fields spinepki uses (issuer, thisUpdate, nextUpdate, extensions) are read
    here, so a CRL that parses lazily but is malformed underneath fails now, with this
    error, rather than later. Entries are read when the CRL is indexed (:func:`verify_crl`).

    Args:
        data: the CRL bytes (or an already loaded CRL, returned after the same checks).
        source: a file name or URL for messages.

    Raises:
        CRLParseError: the bytes are not a CRL (the only exception this raises).
    """
    label = source or "<CRL bytes>"
    try:
        if isinstance(data, x509.CertificateRevocationList):
            crl = data
        elif _PEM_MARK in data:
            crl = x509.load_pem_x509_crl(data)
        else:
            crl = x509.load_der_x509_crl(data)
        if not isinstance(data, x509.CertificateRevocationList):
            # RFC 5280 5.1.1.2: the two algorithm fields must match. cryptography 49 and
            # later refuse such bytes at load; older releases in our range do not.
            der = crl.public_bytes(serialization.Encoding.DER) if _PEM_MARK in data else data
            _, inner_alg, outer_alg = signed_parts(der)
            if inner_alg != outer_alg:
                raise ValueError("the two signature algorithm fields differ (RFC 5280 5.1.1.2)")
        # Touch every lazily decoded header field now.
        _ = crl.issuer.rfc4514_string()
        _ = crl.last_update_utc
        _ = crl.next_update_utc
        for ext in crl.extensions:
            _ = ext.value
    except MALFORMED_INPUT as exc:
        why = (
            unusable_input(data, exc, what="CRL")
            if isinstance(data, bytes)
            else f"a CRL that does not parse: {short_reason(exc)}"
        )
        raise CRLParseError(why, source=label) from exc
    return crl


def _verify_signature(
    crl: x509.CertificateRevocationList, der: bytes, issuer: x509.Certificate, label: str
) -> None:
    try:
        tbs, inner_alg, outer_alg = signed_parts(der)
    except ValueError as exc:
        raise CRLParseError(f"unexpected CRL structure: {exc}", source=label) from exc
    if inner_alg != outer_alg:
        raise EvidenceError(
            "the CRL's two signature algorithm fields differ (RFC 5280 5.1.1.2)", source=label
        )
    try:
        key = certificate_public_key(issuer)
        params = crl.signature_algorithm_parameters
        algorithm = crl.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey) and isinstance(params, padding.PKCS1v15 | padding.PSS):
            if algorithm is None:  # pragma: no cover - RSA signatures always name a hash
                raise EvidenceError("RSA signature without a hash algorithm", source=label)
            key.verify(crl.signature, tbs, params, algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(params, ec.ECDSA):
            key.verify(crl.signature, tbs, params)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) and params is None:
            key.verify(crl.signature, tbs)
        else:
            raise EvidenceError(
                "the CRL's signature algorithm does not fit the issuer's key type", source=label
            )
    except InvalidSignature as exc:
        raise EvidenceError(
            "the CRL signature does not verify with the issuer's key", source=label
        ) from exc
    except (UnsupportedAlgorithm, ValueError, TypeError) as exc:
        raise EvidenceError(f"unsupported CRL signature algorithm: {exc}", source=label) from exc


def _key_id(cert: x509.Certificate) -> bytes:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        # RFC 5280 4.2.1.2 method (1), which is also what cryptography's from_public_key does.
        spki = certificate_spki(cert.public_bytes(serialization.Encoding.DER))
        return hashlib.sha1(spki_bit_string(spki)).digest()  # noqa: S324 - a key id, not security


def check_window(
    this_update: datetime,
    next_update: datetime | None,
    *,
    at: datetime,
    tolerance: timedelta,
    what: str,
    source: str,
) -> None:
    """Refuse evidence issued after ``at`` or whose nextUpdate passed before ``at``.

    ``tolerance`` widens the window on both sides for clock skew between hosts.

    Raises:
        EvidenceError: not yet valid, or stale.
    """
    if this_update > shift(at, tolerance):
        raise EvidenceError(
            f"{what} thisUpdate {this_update.isoformat()} is after the validation time "
            f"{at.isoformat()}",
            source=source,
        )
    if next_update is not None and shift(next_update, tolerance) < at:
        raise EvidenceError(
            f"{what} is stale: its nextUpdate {next_update.isoformat()} is before the "
            f"validation time {at.isoformat()}",
            source=source,
        )


@dataclass(frozen=True, slots=True)
class VerifiedCRL:
    """A CRL whose signature, issuer and shape were checked once, with its serials indexed.

    Freshness is not part of verification: it depends on the time of each check, so it is
    checked at every use with :meth:`check_fresh`.
    """

    crl: x509.CertificateRevocationList
    """The parsed CRL (kept for the details of a revoked entry)."""
    issuer: x509.Certificate
    """The CA certificate whose key verified the signature."""
    url: str | None
    """Where it was fetched from; None when the caller supplied it."""
    this_update: datetime
    """thisUpdate, UTC."""
    next_update: datetime
    """nextUpdate, UTC (a CRL without one is refused)."""
    number: int | None
    """The CRL number, when present."""
    size: int
    """Length of the DER encoding, the weight of this CRL in the cache."""
    only_user_certs: bool
    """The issuingDistributionPoint limits this CRL to end-entity certificates."""
    only_ca_certs: bool
    """The issuingDistributionPoint limits this CRL to CA certificates."""
    idp_urls: frozenset[str]
    """URIs of the issuingDistributionPoint name (empty when it names none)."""
    index: dict[int, int]
    """Revoked serial → position in :attr:`crl`, built once: an O(1) lookup at any size."""
    _evidence: RevocationEvidence = field(init=False, repr=False, compare=False)
    _good: RevocationResult = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Every certificate the CRL does not list gets the same (immutable) answer; built
        # once here rather than on every lookup.
        evidence = RevocationEvidence(
            source="crl",
            url=self.url,
            this_update=self.this_update,
            next_update=self.next_update,
            crl_number=self.number,
        )
        object.__setattr__(self, "_evidence", evidence)
        object.__setattr__(self, "_good", RevocationResult(RevocationStatus.GOOD, evidence))

    @property
    def label(self) -> str:
        """The URL, or a description for a supplied CRL."""
        return self.url or f"supplied CRL from {self.crl.issuer.rfc4514_string()}"

    def check_fresh(self, at: datetime, tolerance: timedelta) -> None:
        """Raise EvidenceError when the CRL is not yet valid or stale at ``at``."""
        if self.this_update <= shift(at, tolerance) and at <= shift(self.next_update, tolerance):
            return  # fresh: the common case, so skip building the label for a message
        check_window(
            self.this_update,
            self.next_update,
            at=at,
            tolerance=tolerance,
            what="the CRL",
            source=self.label,
        )

    def scope_problem(self, cert: x509.Certificate) -> str | None:
        """Why this CRL does not cover ``cert`` (RFC 5280 6.3.3 b.2), or None when it does."""
        if self.only_user_certs or self.only_ca_certs:
            try:
                is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
            except x509.ExtensionNotFound:
                is_ca = False
            if self.only_user_certs and is_ca:
                return f"{self.label}: the CRL covers only end-entity certificates"
            if self.only_ca_certs and not is_ca:
                return f"{self.label}: the CRL covers only CA certificates"
        if self.idp_urls:
            names = _cdp_urls(cert)
            if names and not (names & self.idp_urls):
                return (
                    f"{self.label}: the CRL's issuing distribution point does not match the "
                    "certificate's distribution points"
                )
        return None

    def is_stale(self, at: datetime, tolerance: timedelta) -> bool:
        """True when the CRL's nextUpdate has passed at ``at`` (not merely not yet valid)."""
        return shift(self.next_update, tolerance) < at

    def lookup(self, serial: int) -> tuple[datetime, x509.ReasonFlags | None] | None:
        """``(revocation date, reason)`` when ``serial`` is listed, else None. O(1)."""
        position = self.index.get(serial)
        if position is None:
            return None
        entry = self.crl[position]
        reason: x509.ReasonFlags | None
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reason = None
        except ValueError:
            # A malformed entry extension must not turn "revoked" into an error that
            # could be soft-failed: the serial is listed, so it is revoked.
            reason = None
        return entry.revocation_date_utc, reason

    @property
    def recency(self) -> tuple[int, datetime]:
        """What orders two CRLs of one issuer: the CRL number (RFC 5280 5.2.3: the higher
        supersedes; -1 when absent), then thisUpdate."""
        return (-1 if self.number is None else self.number, self.this_update)

    def evidence(self) -> RevocationEvidence:
        """The evidence record for results."""
        return self._evidence

    def good(self, reuse_until: datetime | None = None) -> RevocationResult:
        """The GOOD result this CRL gives a certificate it does not list."""
        if reuse_until is None:
            return self._good
        return RevocationResult(RevocationStatus.GOOD, self._evidence, reuse_until=reuse_until)

    def revoked(
        self,
        listed: tuple[datetime, x509.ReasonFlags | None],
        reuse_until: datetime | None = None,
    ) -> RevocationResult:
        """The REVOKED result for a certificate this CRL lists (``listed`` from
        :meth:`lookup`)."""
        return RevocationResult(
            RevocationStatus.REVOKED,
            self._evidence,
            revoked_at=listed[0],
            reason=listed[1],
            reuse_until=reuse_until,
        )


def _cdp_urls(cert: x509.Certificate) -> frozenset[str]:
    try:
        cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return frozenset()
    return frozenset(
        name.value
        for point in cdp
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
    )


def is_permanent(reason: x509.ReasonFlags | None) -> bool:
    """True when a listing with this reason can never be undone (all but certificateHold)."""
    return reason not in _TEMPORARY_REASONS


def _entry_list(der: bytes) -> tuple[int, int]:
    """Where the revokedCertificates list lies in a CRL's DER (an empty span when none).

    TBSCertList (RFC 5280 5.1): version?, signature, issuer, thisUpdate, nextUpdate?,
    revokedCertificates?, [0] crlExtensions?.
    """
    _, start, _ = read_tlv(der, 0)
    _, pos, tbs_end = read_tlv(der, start)
    tag, _, end = read_tlv(der, pos)
    if tag == 0x02:  # version
        pos = end
    for _ in range(3):  # signature, issuer, thisUpdate
        _, _, pos = read_tlv(der, pos)
    while pos < tbs_end:
        tag, content, end = read_tlv(der, pos)
        if tag == 0x30:
            return content, end
        if tag not in (0x17, 0x18):  # nextUpdate (UTCTime or GeneralizedTime)
            break
        pos = end
    return 0, 0


def _check_entry_extensions(crl: x509.CertificateRevocationList, der: bytes, label: str) -> None:
    """Refuse a CRL with an unrecognised critical entry extension (RFC 5280 5.3).

    Done once per CRL, at load: a byte search over the entry list (memchr speed), and a
    walk over the entries only when it finds the mark of a critical extension.
    """
    try:
        start, end = _entry_list(der)
    except ValueError as exc:  # pragma: no cover - cryptography parsed these bytes
        raise CRLParseError(f"unexpected CRL structure: {exc}", source=label) from exc
    if der.find(_CRITICAL_MARK, start, end) < 0:
        return
    try:
        unknown = next(
            (
                (entry.serial_number, ext.oid.dotted_string)
                for entry in crl
                for ext in entry.extensions
                if ext.critical and not isinstance(ext.value, _KNOWN_ENTRY_EXTENSIONS)
            ),
            None,
        )
    except MALFORMED_INPUT as exc:
        raise CRLParseError(f"malformed CRL entry: {short_reason(exc)}", source=label) from exc
    if unknown is not None:
        raise EvidenceError(
            f"the CRL entry for serial {unknown[0]} has an unrecognised critical extension "
            f"{unknown[1]} (RFC 5280 5.3: such a CRL is not used for any certificate)",
            source=label,
        )


def verify_crl(
    crl: x509.CertificateRevocationList,
    issuer: x509.Certificate,
    *,
    der: bytes | None = None,
    url: str | None = None,
) -> VerifiedCRL:
    """Check a CRL against its issuer once and index its serials.

    Checks: the issuer's name matches, the authority key identifier (when present)
    matches the issuer's key identifier, the issuer may sign CRLs (keyUsage cRLSign when
    keyUsage is present), the signature verifies over the TBSCertList as received, the CRL
    is complete and direct, there is a nextUpdate, and no extension of the CRL or of an
    entry is critical and unrecognised.

    Args:
        crl: a CRL from :func:`load_crl`.
        issuer: the CA certificate that should have signed it.
        der: the bytes ``crl`` was parsed from (re-encoded when not given).
        url: where it came from, for messages and evidence.

    Raises:
        EvidenceError: any check fails.
        CRLParseError: an entry is malformed.
    """
    label = url or "supplied CRL"
    if crl.issuer != issuer.subject:
        raise EvidenceError(
            f"the CRL is issued by {crl.issuer.rfc4514_string()!r}, not by the certificate's "
            f"issuer {issuer.subject.rfc4514_string()!r}",
            source=label,
        )
    number: int | None = None
    only_user = only_ca = False
    idp_urls: frozenset[str] = frozenset()
    for ext in crl.extensions:
        value = ext.value
        if isinstance(value, x509.AuthorityKeyIdentifier):
            if value.key_identifier is not None and value.key_identifier != _key_id(issuer):
                raise EvidenceError(
                    "the CRL's authority key identifier does not match the issuer's key",
                    source=label,
                )
        elif isinstance(value, x509.CRLNumber):
            number = value.crl_number
        elif isinstance(value, x509.DeltaCRLIndicator):
            raise EvidenceError(
                "delta CRLs are not supported; a complete CRL is needed", source=label
            )
        elif isinstance(value, x509.IssuingDistributionPoint):
            if value.indirect_crl:
                raise EvidenceError("indirect CRLs are not supported", source=label)
            if value.only_some_reasons is not None:
                raise EvidenceError(
                    "the CRL covers only some revocation reasons; a complete CRL is needed",
                    source=label,
                )
            if value.only_contains_attribute_certs:
                raise EvidenceError("the CRL covers only attribute certificates", source=label)
            only_user = value.only_contains_user_certs
            only_ca = value.only_contains_ca_certs
            idp_urls = frozenset(
                name.value
                for name in value.full_name or ()
                if isinstance(name, x509.UniformResourceIdentifier)
            )
        elif ext.critical and not isinstance(
            value, x509.AuthorityInformationAccess | x509.FreshestCRL
        ):
            raise EvidenceError(
                f"the CRL has an unrecognised critical extension {ext.oid.dotted_string}",
                source=label,
            )
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.crl_sign:
        raise EvidenceError("the issuer's keyUsage does not allow signing CRLs", source=label)
    next_update = crl.next_update_utc
    if next_update is None:
        raise EvidenceError(
            "the CRL has no nextUpdate (RFC 5280 5.1.2.5 requires one)", source=label
        )
    raw = der if der is not None else crl.public_bytes(serialization.Encoding.DER)
    _verify_signature(crl, raw, issuer, label)
    _check_entry_extensions(crl, raw, label)
    try:
        # One pass over the entries, in C/Rust where possible: no per-entry Python code.
        index = dict(zip(map(_serial_of, crl), count(), strict=False))
    except MALFORMED_INPUT as exc:
        raise CRLParseError(f"malformed CRL entry: {exc}", source=label) from exc
    return VerifiedCRL(
        crl=crl,
        issuer=issuer,
        url=url,
        this_update=crl.last_update_utc,
        next_update=next_update,
        number=number,
        size=len(raw),
        only_user_certs=only_user,
        only_ca_certs=only_ca,
        idp_urls=idp_urls,
        index=index,
    )
