"""``ssl.SSLContext`` builders for the Spine TLS policy, and a policy check of any context.

``server_context`` is what a provider terminates TLS with; ``client_context`` is the
calling side (the SSP simulator in tests and the demo, and consumers). Everything that
can be wrong with the inputs is detected when the context is built, not at the first
handshake.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import ssl
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from spinepki._loading import (
    CertificateSource,
    PrivateKey,
    PrivateKeySource,
    certificate_public_key,
    load_certificate_chain,
    load_private_key,
)
from spinepki.errors import CRLParseError, PolicyError, ServerCredentialError
from spinepki.policy import SPINE_POLICY, ClientAuth, TLSPolicy
from spinepki.trust import TrustStore

__all__ = [
    "ContextFinding",
    "FindingCode",
    "check_context",
    "client_context",
    "server_context",
]

CRLSource = x509.CertificateRevocationList | bytes


def _dh_params_path() -> Path:
    # RFC 7919 ffdhe2048, shipped as package data. Without load_dh_params() Python's
    # ssl module negotiates no DHE suite at all, so half the seed's string would be dead.
    return Path(str(resources.files("spinepki.data").joinpath("ffdhe2048.pem")))


def _apply_policy(ctx: ssl.SSLContext, policy: TLSPolicy) -> None:
    ctx.minimum_version = policy.minimum_version
    ctx.maximum_version = policy.maximum_version
    try:
        ctx.set_ciphers(policy.cipher_string)
    except ssl.SSLError as exc:
        raise PolicyError(
            f"OpenSSL selects no cipher suite from {policy.cipher_string!r}", source="ciphers"
        ) from exc
    ctx.options |= ssl.OP_NO_COMPRESSION  # CRIME
    ctx.options |= ssl.OP_NO_RENEGOTIATION  # client-initiated renegotiation is a DoS lever
    if policy.honour_server_order:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    # Deliberately no ctx.set_ecdh_curve(): it narrows the server to one group, and the
    # OpenSSL default list (X25519, P-256, P-384, …) is what clients expect.


def _load_trust(ctx: ssl.SSLContext, trust: TrustStore) -> None:
    ctx.load_verify_locations(cadata=trust.to_pem().decode("ascii"))
    if trust.partial_chain:
        # The same anchors as ClientCertValidator: every certificate in the store, so a
        # handshake accepts a chain that ends at a trusted Sub CA.
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN


def _crl_pem(crl: CRLSource) -> str:
    if isinstance(crl, x509.CertificateRevocationList):
        return crl.public_bytes(serialization.Encoding.PEM).decode("ascii")
    try:
        if b"-----BEGIN" in crl:
            parsed = x509.load_pem_x509_crl(crl)
        else:
            parsed = x509.load_der_x509_crl(crl)
    except ValueError as exc:
        raise CRLParseError(f"not a valid CRL: {exc}", source="<crl bytes>") from exc
    return parsed.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _key_matches(cert: x509.Certificate, key: PrivateKey) -> bool:
    return certificate_public_key(cert).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_credential(
    chain: Sequence[x509.Certificate],
    key: PrivateKey,
    *,
    purpose: x509.ObjectIdentifier,
    at: dt.datetime,
    source: str,
    policy: TLSPolicy,
) -> None:
    leaf = chain[0]
    if at.tzinfo is None or at.utcoffset() is None:
        raise ServerCredentialError("the time `at` must be timezone-aware", source="at")
    try:
        matches = _key_matches(leaf, key)
    except UnsupportedAlgorithm as exc:
        raise ServerCredentialError(f"unsupported certificate key: {exc}", source=source) from exc
    if not matches:
        raise ServerCredentialError("the private key does not match the certificate", source=source)
    if at > leaf.not_valid_after_utc:
        raise ServerCredentialError(
            f"the certificate expired at {leaf.not_valid_after_utc.isoformat()}", source=source
        )
    if at < leaf.not_valid_before_utc:
        raise ServerCredentialError(
            f"the certificate is not valid before {leaf.not_valid_before_utc.isoformat()}",
            source=source,
        )
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None  # no EKU extension means "any purpose" (RFC 5280 §4.2.1.12)
    if eku is not None and purpose not in eku:
        label = "serverAuth" if purpose == ExtendedKeyUsageOID.SERVER_AUTH else "clientAuth"
        raise ServerCredentialError(
            f"the certificate's extended key usage does not include {label}", source=source
        )
    try:
        bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        if bc.ca:
            raise ServerCredentialError(
                "a CA certificate cannot be used as an endpoint certificate", source=source
            )
    except x509.ExtensionNotFound:
        pass
    # DHE-DSS suites never apply: spinepki refuses DSA keys when it loads them.
    wanted = {"RSA": rsa.RSAPrivateKey, "ECDSA": ec.EllipticCurvePrivateKey}
    usable = [
        s for s in policy.suites() if isinstance(key, wanted.get(s.authentication, type(None)))
    ]
    if not usable:
        raise ServerCredentialError(
            f"no suite of the {policy.name!r} policy can be used with a "
            f"{type(key).__name__.lstrip('_')} key",
            source=source,
        )


if sys.version_info >= (3, 13):

    class _SSLObject(ssl.SSLObject):
        """``ssl.SSLObject`` whose peer-chain methods answer ``[]`` when no certificate came."""

        def get_verified_chain(self) -> list[bytes]:
            if self.getpeercert(binary_form=True) is None:
                return []
            return super().get_verified_chain()

        def get_unverified_chain(self) -> list[bytes]:
            if self.getpeercert(binary_form=True) is None:
                return []
            return super().get_unverified_chain()

    class _SSLSocket(ssl.SSLSocket):
        """``ssl.SSLSocket`` with the same fix as :class:`_SSLObject`."""

        def get_verified_chain(self) -> list[bytes]:
            if self.getpeercert(binary_form=True) is None:
                return []
            return super().get_verified_chain()

        def get_unverified_chain(self) -> list[bytes]:
            if self.getpeercert(binary_form=True) is None:
                return []
            return super().get_unverified_chain()


def _use_safe_peer_chain(ctx: ssl.SSLContext) -> None:
    """Make the chain getters of this context's connections safe without a peer certificate.

    On Python 3.13.0 ``get_unverified_chain()`` on the server side of a connection whose
    client sent no certificate raises AttributeError (the C layer returns ``[None]``).
    ASGI servers call it on every connection to fill the TLS extension (anycorn's
    ``build_tls_extension`` does), so in ``http-496`` mode one connection without a
    certificate crashed the server. ``sslobject_class`` / ``sslsocket_class`` are the
    context's documented hooks for the connection classes, so every server that uses
    this context (``wrap_bio`` or ``wrap_socket``) gets the fix. Whether a certificate
    came is decided by ``getpeercert(binary_form=True)``, which is right on every version.
    Python 3.11 and 3.12 have no public chain getters, so nothing changes there.
    """
    if sys.version_info >= (3, 13):
        ctx.sslobject_class = _SSLObject
        ctx.sslsocket_class = _SSLSocket


def _load_chain_into(
    ctx: ssl.SSLContext,
    cert: CertificateSource,
    key: PrivateKeySource,
    *,
    password: bytes | str | None,
    purpose: x509.ObjectIdentifier,
    at: dt.datetime | None,
    policy: TLSPolicy,
    check: bool = True,
) -> None:
    chain = load_certificate_chain(cert)
    source = (
        str(cert)
        if isinstance(cert, str | Path) and not str(cert).lstrip().startswith("-----")
        else "certificate"
    )
    private_key = load_private_key(key, password=password)
    if check:
        _check_credential(
            chain,
            private_key,
            purpose=purpose,
            at=at or dt.datetime.now(dt.UTC),
            source=source,
            policy=policy,
        )
    # ssl.SSLContext.load_cert_chain only reads files. Write the (already parsed and
    # checked) chain and key to a private temporary directory and delete it at once.
    with tempfile.TemporaryDirectory(prefix="spinepki-") as tmp:
        os.chmod(tmp, 0o700)
        cert_path = Path(tmp) / "chain.pem"
        key_path = Path(tmp) / "key.pem"
        cert_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(
                private_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:  # pragma: no cover - pre-checked above
            raise ServerCredentialError(
                f"OpenSSL refused the credential: {exc}", source=source
            ) from exc


def server_context(
    cert: CertificateSource,
    key: PrivateKeySource,
    trust: TrustStore,
    *,
    password: bytes | str | None = None,
    client_auth: ClientAuth = ClientAuth.REQUIRE,
    policy: TLSPolicy = SPINE_POLICY,
    crls: Iterable[CRLSource] = (),
    at: dt.datetime | None = None,
) -> ssl.SSLContext:
    """An ``SSLContext`` for a GP Connect provider.

    TLS 1.2 only, the policy's cipher suites in server order, no compression, no
    renegotiation, DHE enabled through RFC 7919 ffdhe2048, and client certificates
    verified against ``trust``.

    Args:
        cert: the provider's certificate (optionally followed by its chain): a file
            name, PEM/DER bytes, PEM text or an ``x509.Certificate``.
        key: its private key, in the same forms; ``password`` decrypts it.
        trust: the CAs client certificates must chain to (e.g. ``TrustStore.spine("int")``).
        client_auth: ``REQUIRE`` (handshake fails without a client certificate) or
            ``HTTP_496`` (certificate optional at the TLS layer; the gate answers 496).
            A presented but invalid certificate is refused in both.
        policy: the TLS policy (default: the GP Connect one).
        crls: CRLs for OpenSSL to check the *leaf* against. OpenSSL then needs the CRL
            of every leaf's issuer, or it refuses every client ("unable to get
            certificate CRL"); ``VERIFY_CRL_CHECK_CHAIN`` is not used because it would
            need every CA's CRL, including the root's. Prefer the validator's revocation
            layer, which fetches and refreshes CRLs/OCSP; this is the static fallback.
        at: time for the server-certificate expiry check (default now).

    Raises:
        CertificateLoadError / KeyLoadError: unreadable or malformed inputs.
        ServerCredentialError: key/cert mismatch, not a server certificate, expired,
            or a key type no policy suite can use.
        PolicyError: the cipher string selects nothing.
        CRLParseError: a CRL does not parse.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _apply_policy(ctx, policy)
    ctx.load_dh_params(str(_dh_params_path()))
    _load_chain_into(
        ctx,
        cert,
        key,
        password=password,
        purpose=ExtendedKeyUsageOID.SERVER_AUTH,
        at=at,
        policy=policy,
    )
    _load_trust(ctx, trust)
    ctx.verify_mode = ssl.CERT_REQUIRED if client_auth is ClientAuth.REQUIRE else ssl.CERT_OPTIONAL
    _use_safe_peer_chain(ctx)
    crl_pems = [_crl_pem(c) for c in crls]
    if crl_pems:
        # cadata= accepts certificates only; OpenSSL reads CRLs from a file (cafile=).
        with tempfile.TemporaryDirectory(prefix="spinepki-crl-") as tmp:
            crl_file = Path(tmp) / "crls.pem"
            crl_file.write_text("".join(crl_pems))
            ctx.load_verify_locations(cafile=crl_file)
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


def client_context(
    trust: TrustStore,
    *,
    cert: CertificateSource | None = None,
    key: PrivateKeySource | None = None,
    password: bytes | str | None = None,
    policy: TLSPolicy = SPINE_POLICY,
    check_hostname: bool = True,
    at: dt.datetime | None = None,
    unsafe_skip_credential_checks: bool = False,
) -> ssl.SSLContext:
    """An ``SSLContext`` for the calling side (the SSP, a consumer, a scanner).

    Real Spine endpoint certificates carry the FQDN only in the subject CN, so
    ``hostname_checks_common_name`` is enabled (as NHS Digital's MESH client does for
    Spine-domain hosts).

    Args:
        trust: CAs the server certificate must chain to.
        cert / key / password: the client certificate presented for mutual TLS.
        policy: the TLS policy (default: the GP Connect one).
        check_hostname: verify the server name (disable only for IP-address tests).
        at: time for the client-certificate expiry check (default now).
        unsafe_skip_credential_checks: present the certificate even when it is expired,
            not yet valid or lacks clientAuth — for playing rogue clients in tests only.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _apply_policy(ctx, policy)
    ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE  # meaningless on a client
    _load_trust(ctx, trust)
    ctx.check_hostname = check_hostname
    ctx.hostname_checks_common_name = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    if (cert is None) != (key is None):
        raise ServerCredentialError("give both a client certificate and its key, or neither")
    if cert is not None and key is not None:
        _load_chain_into(
            ctx,
            cert,
            key,
            password=password,
            purpose=ExtendedKeyUsageOID.CLIENT_AUTH,
            at=at,
            policy=policy,
            check=not unsafe_skip_credential_checks,
        )
    return ctx


# -- auditing a context ---------------------------------------------------------------


class FindingCode(enum.Enum):
    """What :func:`check_context` can find wrong with a context."""

    PROTOCOL_BELOW_POLICY = "protocol-below-policy"
    PROTOCOL_ABOVE_POLICY = "protocol-above-policy"
    CIPHER_OUTSIDE_POLICY = "cipher-outside-policy"
    CIPHER_ORDER_DIFFERS = "cipher-order-differs"
    ORDER_NOT_HONOURED = "order-not-honoured"
    CLIENT_CERT_NOT_REQUIRED = "client-cert-not-required"
    CLIENT_CERT_OPTIONAL = "client-cert-optional"
    COMPRESSION_ENABLED = "compression-enabled"
    RENEGOTIATION_ENABLED = "renegotiation-enabled"


@dataclass(frozen=True, slots=True)
class ContextFinding:
    """One difference between an ``SSLContext`` and the policy."""

    code: FindingCode
    """Stable identifier."""
    severity: str
    """``error`` (breaks the policy) or ``warning`` (allowed but worth knowing)."""
    message: str
    """Plain-words explanation."""


def check_context(
    ctx: ssl.SSLContext, policy: TLSPolicy = SPINE_POLICY, *, server: bool = True
) -> tuple[ContextFinding, ...]:
    """Compare any ``SSLContext`` against ``policy``; an empty tuple means compliant.

    Use it to audit a context built by hand or by a framework. ``CERT_OPTIONAL`` on a
    server is reported as a warning (it is the ``http-496`` mode, which needs the gate).
    """
    findings: list[ContextFinding] = []

    def add(code: FindingCode, message: str, severity: str = "error") -> None:
        findings.append(ContextFinding(code, severity, message))

    min_v, max_v = ctx.minimum_version, ctx.maximum_version
    if min_v is ssl.TLSVersion.MINIMUM_SUPPORTED or min_v < policy.minimum_version:
        add(
            FindingCode.PROTOCOL_BELOW_POLICY,
            f"minimum protocol is {min_v.name}; the policy requires {policy.minimum_version.name}",
        )
    if max_v is ssl.TLSVersion.MAXIMUM_SUPPORTED or max_v > policy.maximum_version:
        add(
            FindingCode.PROTOCOL_ABOVE_POLICY,
            f"maximum protocol is {max_v.name}; "
            f"the policy allows up to {policy.maximum_version.name}",
        )
    allowed = [s.name for s in policy.suites()]
    actual = [str(c["name"]) for c in ctx.get_ciphers() if c.get("protocol") != "TLSv1.3"]
    outside = [n for n in actual if n not in allowed]
    if outside:
        add(FindingCode.CIPHER_OUTSIDE_POLICY, "suites outside the policy: " + ", ".join(outside))
    elif actual != [n for n in allowed if n in actual]:
        add(
            FindingCode.CIPHER_ORDER_DIFFERS,
            "the suites are the policy's but in a different preference order",
            "warning",
        )
    if server:
        if policy.honour_server_order and not ctx.options & ssl.OP_CIPHER_SERVER_PREFERENCE:
            add(FindingCode.ORDER_NOT_HONOURED, "the client's cipher order would win")
        if ctx.verify_mode == ssl.CERT_NONE:
            add(FindingCode.CLIENT_CERT_NOT_REQUIRED, "client certificates are not requested")
        elif ctx.verify_mode == ssl.CERT_OPTIONAL:
            add(
                FindingCode.CLIENT_CERT_OPTIONAL,
                "client certificates are optional: only compliant with the http-496 gate",
                "warning",
            )
    if not ctx.options & ssl.OP_NO_COMPRESSION:
        add(FindingCode.COMPRESSION_ENABLED, "TLS compression is not disabled (CRIME)")
    if not ctx.options & ssl.OP_NO_RENEGOTIATION:
        add(FindingCode.RENEGOTIATION_ENABLED, "renegotiation is not disabled", "warning")
    return tuple(findings)
