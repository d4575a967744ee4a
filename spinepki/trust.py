"""Trust anchors and intermediates: what a provider accepts client certificates under.

A :class:`TrustStore` holds Spine Root CAs (trust anchors) and Sub CAs (intermediates),
loaded from PEM/DER files, bundles, directories or bytes, de-duplicated by fingerprint.
The public Spine CA sets ship with the package: ``TrustStore.spine("int")``.

By default only self-issued certificates are anchors, as RFC 5280 6.1 pictures a root.
``partial_chain=True`` makes every certificate in the store an anchor (OpenSSL's
``-partial_chain``), so "trust only this Sub CA" works and a path may end at a trusted
intermediate; see docs/validation.md for what that gives up.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from spinepki._loading import MALFORMED_INPUT, MAX_INPUT_BYTES, load_certificates
from spinepki.errors import TrustStoreError

__all__ = ["SpineEnvironment", "TrustStore", "TrustedCertificate"]

#: Files in a directory that are read as certificates; others are ignored.
_CERT_SUFFIXES = frozenset({".pem", ".crt", ".cer", ".der"})


class SpineEnvironment(enum.Enum):
    """The public Spine PKI environments whose CA sets ship with spinepki."""

    LIVE = "live"
    INT = "int"
    DEP = "dep"


@dataclass(frozen=True, slots=True)
class TrustedCertificate:
    """One CA certificate in a store, described for people and reports."""

    certificate: x509.Certificate
    """The certificate itself."""
    is_anchor: bool
    """True for trust anchors (self-issued roots; every certificate with
    ``partial_chain``), False for intermediates (Sub CAs) that only help build paths."""

    @property
    def subject(self) -> str:
        """The subject as an RFC 4514 string."""
        return self.certificate.subject.rfc4514_string()

    @property
    def issuer(self) -> str:
        """The issuer as an RFC 4514 string."""
        return self.certificate.issuer.rfc4514_string()

    @property
    def sha256(self) -> str:
        """SHA-256 fingerprint, lowercase hex without separators."""
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    @property
    def not_before(self) -> datetime:
        """Start of validity (UTC)."""
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        """End of validity (UTC)."""
        return self.certificate.not_valid_after_utc

    def as_dict(self) -> dict[str, str | bool]:
        """JSON-friendly description."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "role": "anchor" if self.is_anchor else "intermediate",
            "sha256": self.sha256,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
        }


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return bc.ca


def _is_self_issued(cert: x509.Certificate) -> bool:
    # Self-issued (subject == issuer) is how RFC 5280 identifies a root; the signature is
    # not checked here because trust anchors are trusted by configuration, not signature
    # (the SHA-1-signed G1 LIVE root must still load).
    return cert.subject == cert.issuer


class TrustStore:
    """An immutable, de-duplicated set of CA certificates.

    Build one with :meth:`spine`, :meth:`from_pem`, :meth:`from_paths` or the
    constructor. Every certificate must be a CA (basicConstraints cA=TRUE); self-issued
    ones become trust anchors, the others intermediates that validation may use to
    build a path (the SSP does not always send its Sub CA).

    Args:
        certificates: the CA certificates.
        name: where the store came from, for messages and reports.
        partial_chain: make *every* certificate a trust anchor, not only self-issued
            roots (OpenSSL's ``-partial_chain``): a store may then hold just a Sub CA,
            and a path ends at the first trusted certificate. What lies above that
            certificate is then not checked at all: not its issuer's signature, not the
            root's validity, not the Sub CA's revocation by the root's CRL.

    Raises:
        TrustStoreError: no certificates, no trust anchor, or a non-CA certificate.
    """

    __slots__ = ("_anchors", "_intermediates", "_name", "_partial_chain")

    def __init__(
        self,
        certificates: Iterable[x509.Certificate],
        *,
        name: str = "custom",
        partial_chain: bool = False,
    ) -> None:
        seen: dict[bytes, x509.Certificate] = {}
        for cert in certificates:
            fp = cert.fingerprint(hashes.SHA256())
            if fp in seen:
                continue
            try:
                is_ca = _is_ca(cert)
                _is_self_issued(cert)  # parses both names now, not at first use
            except MALFORMED_INPUT as exc:
                # cryptography parses names and extensions lazily; a CA certificate whose
                # fields do not parse is refused here, with a typed error.
                raise TrustStoreError(f"a certificate is malformed: {exc}", source=name) from exc
            if not is_ca:
                raise TrustStoreError(
                    f"{cert.subject.rfc4514_string()} is not a CA certificate "
                    "(basicConstraints cA is not TRUE)",
                    source=name,
                )
            seen[fp] = cert
        if not seen:
            raise TrustStoreError("the trust store holds no certificates", source=name)
        anchors: tuple[x509.Certificate, ...]
        intermediates: tuple[x509.Certificate, ...]
        if partial_chain:
            anchors, intermediates = tuple(seen.values()), ()
        else:
            anchors = tuple(c for c in seen.values() if _is_self_issued(c))
            intermediates = tuple(c for c in seen.values() if not _is_self_issued(c))
        if not anchors:
            raise TrustStoreError(
                "the trust store holds no self-signed root (trust anchor); to trust an "
                "intermediate CA itself, pass partial_chain=True",
                source=name,
            )
        self._anchors = anchors
        self._intermediates = intermediates
        self._name = name
        self._partial_chain = partial_chain

    # -- constructors -------------------------------------------------------------

    @classmethod
    def spine(cls, environment: SpineEnvironment | str) -> TrustStore:
        """The public Spine CA set for ``live``, ``int`` or ``dep`` (G2 and G1 pairs).

        Raises:
            TrustStoreError: unknown environment name.
        """
        try:
            env = SpineEnvironment(environment)
        except ValueError:
            names = ", ".join(e.value for e in SpineEnvironment)
            raise TrustStoreError(
                f"unknown Spine environment {environment!r}; expected one of: {names}",
                source="environment",
            ) from None
        data = resources.files("spinepki.data.trust").joinpath(f"{env.value}.pem").read_bytes()
        return cls(load_certificates(data, source=f"spine:{env.value}"), name=f"spine-{env.value}")

    @classmethod
    def from_pem(
        cls, data: bytes | str, *, name: str = "custom", partial_chain: bool = False
    ) -> TrustStore:
        """A store from PEM (one or many certificates) or DER bytes."""
        return cls(load_certificates(data, source=name), name=name, partial_chain=partial_chain)

    @classmethod
    def from_paths(
        cls, *paths: str | Path, name: str | None = None, partial_chain: bool = False
    ) -> TrustStore:
        """A store from files (PEM bundles or DER) and directories of such files.

        Raises:
            TrustStoreError: a path does not exist or cannot be read.
            CertificateLoadError: a file holds no parseable certificate.
        """
        certs: list[x509.Certificate] = []
        for path in (Path(p) for p in paths):
            for file in _expand(path):
                try:
                    size = file.stat().st_size
                    if size > MAX_INPUT_BYTES:  # a wrong path to a huge file costs nothing
                        raise TrustStoreError(
                            f"file is {size} bytes, over the {MAX_INPUT_BYTES} byte limit",
                            source=str(file),
                        )
                    data = file.read_bytes()
                except OSError as exc:
                    raise TrustStoreError(
                        f"cannot read: {exc.strerror or exc}", source=str(file)
                    ) from exc
                certs.extend(load_certificates(data, source=str(file)))
        label = name or ",".join(str(p) for p in paths)
        return cls(certs, name=label, partial_chain=partial_chain)

    # -- views --------------------------------------------------------------------

    @property
    def name(self) -> str:
        """Where the store came from (``spine-int``, a path list, or ``custom``)."""
        return self._name

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        """The trust anchors: self-issued roots, or every certificate with ``partial_chain``."""
        return self._anchors

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        """CA certificates below a root (Spine Sub CAs); none with ``partial_chain``."""
        return self._intermediates

    @property
    def partial_chain(self) -> bool:
        """True when every certificate in the store is a trust anchor."""
        return self._partial_chain

    def __iter__(self) -> Iterator[TrustedCertificate]:
        for cert in self._anchors:
            yield TrustedCertificate(cert, is_anchor=True)
        for cert in self._intermediates:
            yield TrustedCertificate(cert, is_anchor=False)

    def __len__(self) -> int:
        return len(self._anchors) + len(self._intermediates)

    def __repr__(self) -> str:
        partial = ", partial_chain=True" if self._partial_chain else ""
        return (
            f"TrustStore(name={self._name!r}, anchors={len(self._anchors)}, "
            f"intermediates={len(self._intermediates)}{partial})"
        )

    def describe(self) -> list[dict[str, str | bool]]:
        """JSON-friendly description of every certificate (anchors first)."""
        return [t.as_dict() for t in self]

    def to_pem(self) -> bytes:
        """All certificates as one PEM bundle (anchors first), e.g. for OpenSSL."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.certificates())

    def certificates(self) -> tuple[x509.Certificate, ...]:
        """Anchors then intermediates."""
        return self._anchors + self._intermediates

    def fingerprint(self) -> str:
        """A stable SHA-256 over the sorted member fingerprints (identifies the store)."""
        members = sorted(c.fingerprint(hashes.SHA256()) for c in self.certificates())
        return hashlib.sha256(b"".join(members)).hexdigest()


def _expand(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in _CERT_SUFFIXES)
        if not files:
            raise TrustStoreError(
                "the directory holds no .pem/.crt/.cer/.der files", source=str(path)
            )
        return files
    if not path.exists():
        raise TrustStoreError("no such file or directory", source=str(path))
    return [path]
