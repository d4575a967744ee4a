"""Loading certificates and keys from files, PEM/DER bytes or objects.

One place decides what an input means, so every API accepts the same forms:
``x509.Certificate`` objects; ``bytes`` holding PEM or DER; ``str`` holding PEM text;
any other ``str`` or a ``pathlib.Path`` is a file name. Errors name the source.

It is also the one place that decides which key types exist for spinepki: RSA, EC,
Ed25519 and Ed448. DSA is refused. cryptography 51 deprecated DSA, and its warning fires
on *touching* ``dsa.DSAPrivateKey``, on loading a DSA key and on ``public_key()`` of a DSA
certificate; under ``-W error`` (a user's pytest) that warning is an exception. So DSA is
recognised here by its algorithm OID, before cryptography builds a DSA object, and the
``dsa`` module is never imported.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import PublicKeyAlgorithmOID

from spinepki._der import read_tlv
from spinepki.errors import CertificateLoadError, KeyLoadError

__all__ = [
    "MALFORMED_INPUT",
    "SUPPORTED_PRIVATE_KEYS",
    "CertificateSource",
    "PrivateKey",
    "PrivateKeySource",
    "certificate_public_key",
    "describe_input",
    "is_dsa",
    "load_certificate",
    "load_certificate_chain",
    "load_certificates",
    "load_private_key",
    "read_source",
    "short_reason",
    "unusable_input",
]

PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
#: The private key classes spinepki accepts, for ``isinstance`` checks.
SUPPORTED_PRIVATE_KEYS = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)
#: id-dsa (RFC 3279 2.3.2): the algorithm of a DSA SubjectPublicKeyInfo or PKCS#8 key.
_DSA_OID_DER = b"\x06\x07\x2a\x86\x48\xce\x38\x04\x01"
CertificateSource: TypeAlias = x509.Certificate | bytes | str | Path
PrivateKeySource: TypeAlias = PrivateKey | bytes | str | Path

#: Refuse to read files larger than this as certificates or keys (a bundle of the whole
#: Mozilla root program is about 200 kB; nothing legitimate comes close to 10 MB).
MAX_INPUT_BYTES = 10 * 1024 * 1024

_PEM_MARK = b"-----BEGIN"

#: What cryptography raises for malformed input. Only some of it is ValueError: an
#: unknown certificate version, a duplicated extension, an unknown key algorithm are
#: their own classes (found by fuzzing), so every parse boundary catches this tuple.
#: cryptography 45 to 48 raise KeyError for a name that fails its lazy parse (later
#: releases raise ValueError); both are in the tested dependency range.
MALFORMED_INPUT: tuple[type[Exception], ...] = (
    ValueError,
    KeyError,
    TypeError,
    OverflowError,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    UnsupportedAlgorithm,
)


def read_source(value: bytes | str | Path, *, what: str) -> tuple[bytes, str]:
    """Return ``(data, source_label)`` for bytes, PEM text, or a file name.

    Raises:
        CertificateLoadError / KeyLoadError: the file cannot be read or is too large.
    """
    error = KeyLoadError if what == "key" else CertificateLoadError
    if isinstance(value, bytes):
        return value, f"<{what} bytes>"
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return value.encode("ascii", "replace"), f"<{what} PEM text>"
    path = Path(value)
    try:
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise error(
                f"file is {size} bytes, over the {MAX_INPUT_BYTES} byte limit", source=str(path)
            )
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", source=str(path)) from exc


def load_certificates(data: bytes | str, *, source: str = "<bytes>") -> list[x509.Certificate]:
    """Every certificate in PEM text (one or many) or a single DER certificate.

    Raises:
        CertificateLoadError: nothing parseable, or a PEM block that does not parse. The
            message says what the input is instead ("a PEM PRIVATE KEY, not a
            certificate") or why a certificate did not parse.
    """
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    if len(raw) > MAX_INPUT_BYTES:
        raise CertificateLoadError("input is over the size limit", source=source)
    try:
        if _PEM_MARK in raw:
            certs = x509.load_pem_x509_certificates(raw)
        else:
            certs = [x509.load_der_x509_certificate(raw)]
    except MALFORMED_INPUT as exc:
        raise CertificateLoadError(
            unusable_input(raw, exc, what="certificate"),
            source=source,
        ) from exc
    return certs


def load_certificate(value: CertificateSource, *, source: str | None = None) -> x509.Certificate:
    """Exactly one certificate from an object, bytes, PEM text or a file.

    When PEM holds several certificates, the first is returned (the leaf of a chain
    file, by the usual convention).
    """
    if isinstance(value, x509.Certificate):
        return value
    data, label = read_source(value, what="certificate")
    return load_certificates(data, source=source or label)[0]


def load_certificate_chain(
    value: CertificateSource, *, source: str | None = None
) -> list[x509.Certificate]:
    """All certificates from an object, bytes, PEM text or a file (leaf first)."""
    if isinstance(value, x509.Certificate):
        return [value]
    data, label = read_source(value, what="certificate")
    return load_certificates(data, source=source or label)


def load_private_key(
    value: PrivateKeySource, *, password: bytes | str | None = None, source: str | None = None
) -> PrivateKey:
    """A private key from an object, PEM/DER bytes, PEM text or a file.

    Raises:
        KeyLoadError: unreadable, not a key, encrypted without (or with a wrong)
            password, or an unsupported key type.
    """
    if isinstance(value, SUPPORTED_PRIVATE_KEYS):
        return value
    data, label = read_source(value, what="key")
    label = source or label
    if _is_dsa_private_key(data):
        raise KeyLoadError(_DSA_REFUSED, source=label)
    pw = password.encode() if isinstance(password, str) else password
    try:
        if _PEM_MARK in data:
            key = serialization.load_pem_private_key(data, password=pw)
        else:
            key = serialization.load_der_private_key(data, password=pw)
    except TypeError as exc:
        # cryptography raises TypeError for "encrypted but no password" and the reverse.
        raise KeyLoadError(str(exc), source=label) from exc
    except ValueError as exc:
        raise KeyLoadError(
            unusable_input(data, exc, what="private key"),
            source=label,
        ) from exc
    if not isinstance(key, SUPPORTED_PRIVATE_KEYS):
        # An encrypted PKCS#8 DSA key only shows its algorithm once decrypted (cryptography
        # warns about DSA while loading it); any other type lands here too.
        raise KeyLoadError(
            f"unsupported key type {type(key).__name__.lstrip('_')} "
            "(supported: RSA, EC, Ed25519, Ed448)",
            source=label,
        )
    return key


#: PEM labels (RFC 7468) of the inputs each loader expects.
_CERT_LABELS = frozenset({"CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE"})
_KEY_LABELS = frozenset(
    {"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"}
)
_CRL_LABELS = frozenset({"X509 CRL"})
#: Per kind of input: the PEM labels that mean "this is one", its DER shape, in words.
_KINDS = {
    "certificate": (_CERT_LABELS, "certificate"),
    "private key": (_KEY_LABELS, "private key"),
    "CRL": (_CRL_LABELS, "CRL"),
}
_EXPECTED = {
    "certificate": "PEM CERTIFICATE blocks or one DER certificate",
    "private key": "a PEM PRIVATE KEY or a DER private key",
    "CRL": "PEM X509 CRL blocks or one DER CRL",
}
#: The PEM labels looked at when describing an input: the first few distinct ones among
#: the first blocks are enough to say what a file is, whatever its size.
_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9][A-Z0-9 ]{0,39})-----")
_MAX_LABELS = 4
_MAX_BLOCKS = 64


def _pem_labels(data: bytes) -> list[str]:
    labels: list[str] = []
    for seen, match in enumerate(_PEM_LABEL.finditer(data)):
        label = match.group(1).decode("ascii")
        if label not in labels:
            labels.append(label)
        if len(labels) == _MAX_LABELS or seen == _MAX_BLOCKS:
            break
    return labels


def _der_kind(data: bytes) -> str | None:
    """What a DER structure is, from its shape (no key or certificate is built)."""
    try:
        tag, pos, end = read_tlv(data, 0)
        if tag != 0x30 or end != len(data):
            return None
        tags: list[tuple[int, int, int]] = []
        while pos < end and len(tags) < 4:
            tag, start, pos = read_tlv(data, pos)
            tags.append((tag, start, pos))
        top = [t for t, _, _ in tags]
        if top[:3] == [0x30, 0x30, 0x03]:  # signed: TBS, algorithm, signature
            inner: list[int] = []
            _, pos, end = tags[0]
            while pos < end and len(inner) < 4:
                tag, _, pos = read_tlv(data, pos)
                inner.append(tag)
            if inner[:1] == [0xA0] or (inner[:3] == [0x02, 0x30, 0x30] and 0x30 in inner[3:4]):
                return "certificate"
            if 0x17 in inner or 0x18 in inner:  # thisUpdate: UTCTime or GeneralizedTime
                return "CRL"
            if inner[:1] == [0x02]:
                return "certificate request"
            return "signed structure of another kind"
        if top[:3] == [0x02, 0x30, 0x04] or top[:2] == [0x02, 0x04] or top == [0x02] * len(top):
            return "private key"  # PKCS#8, SEC 1 EC key, PKCS#1 RSA key
        if top[:2] == [0x30, 0x03]:
            return "public key"
        if top[:1] == [0x0A]:
            return "OCSP response"
    except ValueError:
        return None
    return "structure of another kind"


def _looks_like_text(data: bytes) -> bool:
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
    return printable >= 0.95 * len(text)


def describe_input(data: bytes) -> str:
    """What ``data`` holds, in a few words, for an error message.

    ``"empty"``, ``"a PEM PRIVATE KEY"``, ``"PEM blocks CERTIFICATE, PRIVATE KEY"``,
    ``"a DER CRL"``, ``"text without a PEM block"``, ``"damaged or truncated DER"`` or
    ``"binary data (neither PEM nor DER)"``.
    Looks at the PEM labels and the outer DER shape only: nothing is parsed or decrypted.
    """
    if not data.strip():
        return "empty"
    labels = _pem_labels(data)
    if len(labels) == 1:
        return f"a PEM {labels[0]}"
    if labels:
        return "PEM blocks " + ", ".join(labels)
    if _PEM_MARK in data:
        return "a damaged PEM block"
    kind = _der_kind(data)
    if kind is not None:
        return f"a DER {kind}"
    if _looks_like_text(data):
        return "text without a PEM block"
    if data[:1] == b"\x30":
        return "damaged or truncated DER"
    return "binary data (neither PEM nor DER)"


def short_reason(exc: BaseException) -> str:
    """cryptography's parse error in a few words (no FAQ link, no Rust debug output)."""
    text = str(exc) or type(exc).__name__
    kind = re.search(r"kind: (\w+)", text)
    if kind is not None:
        return _ASN1_KINDS.get(kind.group(1), f"ASN.1 error {kind.group(1)}")
    if "MalformedFraming" in text:
        return "damaged PEM framing"
    text = re.sub(r"\s*See https?://\S+.*?(details\.)?", "", text).strip()
    return text if len(text) <= 120 else text[:117] + "..."


_ASN1_KINDS = {
    "ShortData": "truncated",
    "UnexpectedTag": "an unexpected ASN.1 tag",
    "InvalidLength": "a bad ASN.1 length",
    "ExtraData": "data after the end",
    "InvalidValue": "an invalid ASN.1 value",
    "InvalidSetOrdering": "a badly ordered SET",
    "EncodedDefault": "a DEFAULT value encoded",
    "OidTooLong": "an over-long object identifier",
    "IntegerOverflow": "an oversized integer",
}


def unusable_input(data: bytes, exc: BaseException, *, what: str) -> str:
    """Why ``data`` could not be loaded as ``what`` (``"certificate"``, ``"private key"``
    or ``"CRL"``): what it is instead, or why it did not parse."""
    pem_labels, der_kind = _KINDS[what]
    kind = describe_input(data)
    if kind == "empty":
        return f"the input is empty; expected {_EXPECTED[what]}"
    looks_right = (
        kind == f"a DER {der_kind}"
        if _PEM_MARK not in data
        else any(label in pem_labels for label in _pem_labels(data))
    )
    if not looks_right:
        return f"{kind}, not a {what} (expected {_EXPECTED[what]})"
    if what == "private key":
        return f"the private key does not load ({short_reason(exc)}), or the password is wrong"
    return f"a {what} that does not parse: {short_reason(exc)}"


_DSA_REFUSED = "DSA keys are not supported (supported: RSA, EC, Ed25519, Ed448)"


def certificate_public_key(cert: x509.Certificate) -> CertificatePublicKeyTypes:
    """``cert.public_key()``, refusing DSA before cryptography builds (and warns about) it.

    Raises:
        UnsupportedAlgorithm: a DSA key, or a key type cryptography does not know.
        Any of ``MALFORMED_INPUT``: the key does not parse.
    """
    if is_dsa(cert):
        raise UnsupportedAlgorithm(_DSA_REFUSED)
    return cert.public_key()


def is_dsa(cert: x509.Certificate) -> bool:
    """Whether the certificate's key is DSA (read from the OID; no key object is built)."""
    return cert.public_key_algorithm_oid == PublicKeyAlgorithmOID.DSA


def _is_dsa_private_key(data: bytes) -> bool:
    """Whether ``data`` is a DSA private key, judged without loading it.

    Recognises the traditional form (the ``DSA PRIVATE KEY`` PEM label, or DER holding a
    SEQUENCE of exactly six INTEGERs, OpenSSL's DSAPrivateKey) and unencrypted PKCS#8 (PEM
    or DER) whose AlgorithmIdentifier is id-dsa. Anything else is left to the loader.
    """
    if b"-----BEGIN DSA PRIVATE KEY-----" in data:
        return True
    der = data
    if _PEM_MARK in data:
        begin = data.find(b"-----BEGIN PRIVATE KEY-----")
        if begin < 0:
            return False
        body = data[begin + 27 :].split(b"-----END", 1)[0]
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except ValueError:
            return False
    try:
        tag, pos, end = read_tlv(der, 0)
        if tag != 0x30:
            return False
        tags: list[tuple[int, int]] = []
        while pos < end and len(tags) < 7:
            tag, start, pos = read_tlv(der, pos)
            tags.append((tag, start))
    except ValueError:
        return False
    if [t for t, _ in tags] == [0x02] * 6:  # DSAPrivateKey ::= SEQUENCE { version, p, q, g, y, x }
        return True
    # PrivateKeyInfo ::= SEQUENCE { version INTEGER, privateKeyAlgorithm SEQUENCE { OID ...
    if len(tags) < 2 or tags[0][0] != 0x02 or tags[1][0] != 0x30:
        return False
    alg_start = tags[1][1]
    return der[alg_start : alg_start + len(_DSA_OID_DER)] == _DSA_OID_DER
