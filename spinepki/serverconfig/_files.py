"""The files an exported configuration names, opened and checked before it is written.

A server reads these files when it starts or reloads, far from the command that wrote
its configuration; a missing, empty or mismatched file found then is found late. So
:func:`check_server_files` opens each one the way the server will and refuses what the
server would refuse (or would serve wrongly), and returns absolute paths, because a
server resolves a relative path against its own directory, not the operator's.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from spinepki._der import read_tlv
from spinepki._loading import (
    MAX_INPUT_BYTES,
    describe_input,
    load_certificates,
    load_private_key,
    read_source,
)
from spinepki.errors import (
    ConfigurationError,
    CRLParseError,
    InputError,
    TrustStoreError,
)
from spinepki.policy import SPINE_POLICY, TLSPolicy
from spinepki.revocation import load_crl
from spinepki.revocation.fetchers import DEFAULT_MAX_CRL_BYTES
from spinepki.serverconfig._common import ServerKind
from spinepki.tls import _check_credential
from spinepki.trust import TrustStore

__all__ = [
    "DHPARAM_SERVERS",
    "MIN_DH_BITS",
    "ServerFiles",
    "check_server_files",
    "dh_prime_bits",
    "dhparam_pem",
]

#: Smallest DH group accepted for ``--dhparam`` (RFC 7919's smallest; NCSC and Mozilla's
#: intermediate profile agree).
MIN_DH_BITS = 2048

_PEM_MARK = b"-----BEGIN"

#: The servers whose configuration names a DH parameters file (Tomcat's JSSE negotiates
#: the RFC 7919 groups itself).
DHPARAM_SERVERS = frozenset({ServerKind.NGINX, ServerKind.APACHE, ServerKind.HAPROXY})


@dataclass(frozen=True, slots=True)
class ServerFiles:
    """The checked files of a server configuration, as absolute paths."""

    cert: Path
    """The certificate chain file (PEM, leaf first)."""
    key: Path
    """Its private key (PEM, unencrypted: the exports name no password file)."""
    trust_bundle: Path | None
    """The CA bundle client certificates must chain to (PEM), when given."""
    crl: Path | None
    """The CRL file (PEM, one or more CRLs), when given."""
    dhparam: Path | None
    """The DH parameters file, when given."""
    certificate: x509.Certificate
    """The leaf of ``cert`` (for a summary line)."""


def dhparam_pem() -> bytes:
    """The RFC 7919 ffdhe2048 group that ships with spinepki, as PEM.

    Write it next to the exported configuration: the copy inside the installed package
    (:func:`default_dhparam`) moves or disappears when spinepki is upgraded or its
    virtual environment is rebuilt.
    """
    return resources.files("spinepki.data").joinpath("ffdhe2048.pem").read_bytes()


def _absolute(value: str | Path) -> Path:
    # absolute(), not resolve(): a symlink such as a certificate manager's "live" link
    # must stay in the configuration so a renewal behind it is picked up.
    return Path(value).absolute()


def _pem(data: bytes, what: str, source: str) -> None:
    if _PEM_MARK not in data:
        raise ConfigurationError(
            f"the server reads PEM and this {what} is not PEM "
            "(convert it with `spinepki cert show --format pem` or openssl)",
            source=source,
        )


def _read_bounded(path: Path, limit: int, error: type[InputError] | type[TrustStoreError]) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise error(f"file is {size} bytes, over the {limit} byte limit", source=str(path))
        return path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", source=str(path)) from exc


def _check_crls(path: Path) -> None:
    data = _read_bounded(path, DEFAULT_MAX_CRL_BYTES, CRLParseError)
    _pem(data, "CRL file", str(path))
    blocks = data.split(b"-----END X509 CRL-----")
    parsed = 0
    for block in blocks:
        start = block.find(b"-----BEGIN X509 CRL-----")
        if start < 0:
            continue
        load_crl(block[start:] + b"-----END X509 CRL-----\n", source=str(path))
        parsed += 1
    if not parsed:
        load_crl(data, source=str(path))  # raises, saying what the file is instead


_DH_BEGIN = b"-----BEGIN DH PARAMETERS-----"
_DH_END = b"-----END DH PARAMETERS-----"


def dh_prime_bits(data: bytes) -> int:
    """The size in bits of the prime of PEM ``DH PARAMETERS`` (PKCS #3 DHParameter).

    Read with spinepki's DER walker, not cryptography: cryptography 51 deprecates
    finite-field DH and warns on touching its DH module, which under ``-W error`` (a
    user's pytest) is an exception.

    Raises:
        ValueError: not PEM DH parameters.
    """
    start = data.find(_DH_BEGIN)
    end = data.find(_DH_END, start + 1)
    if start < 0 or end < 0:
        raise ValueError("no DH PARAMETERS block")
    body = b"".join(data[start + len(_DH_BEGIN) : end].split())
    try:
        der = base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise ValueError("the DH PARAMETERS block is not base64") from exc
    tag, pos, end_pos = read_tlv(der, 0)  # DHParameter ::= SEQUENCE {
    if tag != 0x30 or end_pos != len(der):
        raise ValueError("not a DHParameter SEQUENCE")
    tag, p_start, p_end = read_tlv(der, pos)  #   prime INTEGER,
    g_tag, g_start, g_end = read_tlv(der, p_end)  #   base INTEGER, ... }
    if tag != 0x02 or g_tag != 0x02 or der[p_start] & 0x80:
        raise ValueError("not a DHParameter (prime, base)")
    prime = int.from_bytes(der[p_start:p_end], "big")
    base = int.from_bytes(der[g_start:g_end], "big")
    if prime < 3 or not prime & 1 or not 1 < base < prime - 1:
        raise ValueError("not a usable DH group")
    return prime.bit_length()


def _check_dhparam(path: Path) -> None:
    data = _read_bounded(path, MAX_INPUT_BYTES, InputError)
    try:
        bits = dh_prime_bits(data)
    except ValueError as exc:
        raise InputError(
            f"not PEM DH parameters ({exc}; found {describe_input(data)}); "
            "`openssl dhparam` makes them",
            source=str(path),
        ) from exc
    if bits < MIN_DH_BITS:
        raise InputError(
            f"a {bits}-bit DH group is below the {MIN_DH_BITS}-bit floor", source=str(path)
        )


def check_server_files(
    *,
    cert: str | Path,
    key: str | Path,
    trust_bundle: str | Path | None,
    crl: str | Path | None = None,
    dhparam: str | Path | None = None,
    password: bytes | str | None = None,
    policy: TLSPolicy = SPINE_POLICY,
    at: dt.datetime | None = None,
) -> ServerFiles:
    """Open every file a server configuration names, and check it as the server would.

    * ``cert``: PEM certificates, leaf first; ``key``: the PEM private key that matches
      the leaf, usable with a suite of ``policy``; the leaf is within its validity at
      ``at``, has serverAuth (or no EKU) and is not a CA (as ``server_context`` checks).
    * ``trust_bundle``: a PEM bundle of CA certificates with a root among them (None when
      the caller writes a known bundle itself, e.g. ``TrustStore.spine("live")``).
    * ``crl``: PEM CRLs, every one parsing; ``dhparam``: PEM DH parameters of at least
      :data:`MIN_DH_BITS` bits.

    Files are read with size limits (10 MB; a CRL file 20 MB), so a wrong path to a huge
    file costs nothing.

    Args:
        password: the key's password, if it is encrypted (the exports name no password
            file, so the server itself needs an unencrypted key).
        at: the time the certificate must be valid at (default now).

    Returns:
        The absolute paths (symlinks kept) and the leaf certificate.

    Raises:
        CertificateLoadError / KeyLoadError / CRLParseError / InputError: a file is
            missing, unreadable, too large, or not what it should be (the message says
            what it is instead).
        TrustStoreError: the bundle holds no CA certificate.
        ServerCredentialError: the key does not match, the certificate is expired, not
            for serverAuth, a CA, or its key suits no suite of the policy.
        ConfigurationError: a file is DER (the servers read PEM).
    """
    # Read as given, so messages name the files the way the operator did.
    # Loaded before the PEM check, so a wrong file is named for what it is.
    cert_data, label = read_source(Path(cert), what="certificate")
    chain: Sequence[x509.Certificate] = load_certificates(cert_data, source=label)
    _pem(cert_data, "certificate file", label)
    key_data, key_label = read_source(Path(key), what="key")
    private_key = load_private_key(key_data, password=password, source=key_label)
    _pem(key_data, "key file", key_label)
    when = at or dt.datetime.now(dt.UTC)
    _check_credential(
        chain,
        private_key,
        purpose=ExtendedKeyUsageOID.SERVER_AUTH,
        at=when,
        source=f"{label} + {key_label}",
        policy=policy,
    )
    if trust_bundle is not None:
        bundle = _read_bounded(Path(trust_bundle), MAX_INPUT_BYTES, TrustStoreError)
        TrustStore.from_pem(bundle, name=str(trust_bundle))  # CAs only, a root among them
        _pem(bundle, "trust bundle", str(trust_bundle))
    if crl is not None:
        _check_crls(Path(crl))
    if dhparam is not None:
        _check_dhparam(Path(dhparam))
    return ServerFiles(
        cert=_absolute(cert),
        key=_absolute(key),
        trust_bundle=_absolute(trust_bundle) if trust_bundle is not None else None,
        crl=_absolute(crl) if crl is not None else None,
        dhparam=_absolute(dhparam) if dhparam is not None else None,
        certificate=chain[0],
    )
