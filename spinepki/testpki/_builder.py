"""Building a Spine-shaped test PKI in memory.

The shapes copy real Spine certificates (see ``/docs/testpki.md`` and the public
examples in ``spinepki/data/trust/README.md``): CA subjects ``O=nhs, OU=CA, CN=…`` with
*non-critical* basicConstraints, endpoint subjects ``O=nhs, OU=Devices, CN=<FQDN>`` with
no subjectAltName, EKU serverAuth+clientAuth, the Spine certificate policy OID and a CRL
distribution point. Test keys are throwaway: never use them outside tests.
"""

from __future__ import annotations

import datetime as dt
import enum
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from spinepki._loading import PrivateKey
from spinepki._names import check_file_name, check_fqdn, check_http_url
from spinepki.errors import TestPKIError
from spinepki.trust import TrustStore

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CONSUMER_FQDN",
    "DEFAULT_PROVIDER_FQDN",
    "DEFAULT_SSP_FQDN",
    "SPINE_POLICY_OID",
    "STANDARD_LEAVES",
    "IssuedCertificate",
    "KeyType",
    "Revocation",
    "TestPKI",
]

#: The SSP's client-certificate FQDN used by the NHS demonstrator and assurance pack (dev).
DEFAULT_SSP_FQDN = "msg.dev.spine2.ncrs.nhs.uk"
DEFAULT_PROVIDER_FQDN = "provider.spinepki.test.nhs.uk"
DEFAULT_CONSUMER_FQDN = "consumer.spinepki.test.nhs.uk"
#: Where CRLs, OCSP and CA certificates are served by ``spinepki pki serve`` by default.
DEFAULT_BASE_URL = "http://127.0.0.1:8089"
#: Certificate policy OID on real Spine endpoint certificates (NHS INT Level 1C example).
SPINE_POLICY_OID = x509.ObjectIdentifier("1.2.826.0.1275.101.0.3.1.1")

ROOT_CN = "spinepki Test Root Authority"
SUB_CN = "spinepki Test Level 1C"
# A small, fixed skew so certificates minted "now" are valid on a host whose clock is a
# little behind the one that minted them.
_BACKDATE = dt.timedelta(hours=1)


class KeyType(enum.Enum):
    """Key algorithm for generated certificates."""

    RSA_2048 = "rsa2048"
    """What real Spine certificates use (default, for realism)."""
    RSA_4096 = "rsa4096"
    """As on some real Spine endpoint certificates; slow to generate."""
    EC_P256 = "ec-p256"
    """ECDSA P-256: fast, for unit tests."""
    EC_P384 = "ec-p384"
    """ECDSA P-384."""

    def generate(self) -> PrivateKey:
        """A fresh private key of this type."""
        if self is KeyType.RSA_2048:
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if self is KeyType.RSA_4096:
            return rsa.generate_private_key(public_exponent=65537, key_size=4096)
        if self is KeyType.EC_P384:
            return ec.generate_private_key(ec.SECP384R1())
        return ec.generate_private_key(ec.SECP256R1())

    @property
    def is_rsa(self) -> bool:
        """True for RSA types."""
        return self in (KeyType.RSA_2048, KeyType.RSA_4096)


# RSA key generation dominates the cost of a PKI. Within one process, keys are reused
# per (key type, role): safe for tests because every *role* still has its own key (the
# foreign CA never shares the real CA's key, or its signatures would verify).
_KEY_CACHE: dict[tuple[KeyType, str], PrivateKey] = {}
_KEY_LOCK = threading.Lock()


def _key_for(key_type: KeyType, role: str, *, reuse: bool) -> PrivateKey:
    if not reuse:
        return key_type.generate()
    with _KEY_LOCK:
        key = _KEY_CACHE.get((key_type, role))
        if key is None:
            key = _KEY_CACHE[(key_type, role)] = key_type.generate()
        return key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A certificate with its key and the chain up to (not including) the root."""

    name: str
    """Role name in the PKI (``ssp``, ``provider``, ``revoked``, ``root``, ``sub-ca``…)."""
    certificate: x509.Certificate
    """The certificate."""
    private_key: PrivateKey
    """Its private key (a throwaway test key)."""
    chain: tuple[x509.Certificate, ...]
    """Issuing CA certificates above this one, excluding the root (leaf's Sub CA)."""
    purpose: str = ""
    """What the certificate is for, in plain words (shown by ``spinepki pki show``)."""
    fqdn: str | None = None
    """The FQDN in the subject CN (and SAN when one was asked for); None for CAs."""

    @property
    def serial(self) -> int:
        """The certificate serial number."""
        return self.certificate.serial_number

    @property
    def cert_pem(self) -> bytes:
        """The certificate as PEM."""
        return _pem(self.certificate)

    @property
    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def encrypted_key_pem(self, password: bytes) -> bytes:
        """The private key as password-encrypted PKCS#8 PEM."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )

    @property
    def chain_pem(self) -> bytes:
        """This certificate followed by its chain (what a TLS peer sends)."""
        return self.cert_pem + b"".join(_pem(c) for c in self.chain)


@dataclass(frozen=True, slots=True)
class Revocation:
    """A revoked serial as it appears on the CRL."""

    serial: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags


@dataclass(frozen=True, slots=True)
class _LeafSpec:
    name: str
    purpose: str
    fqdn_attr: str  # "ssp", "provider", "consumer" or a literal FQDN prefixed with "="
    issuer: str = "sub-ca"
    offset_start: dt.timedelta = dt.timedelta(0)
    lifetime: dt.timedelta = dt.timedelta(days=365)
    revoke: bool = False


#: The standard set, by name, in the order they are issued.
STANDARD_LEAVES: tuple[_LeafSpec, ...] = (
    _LeafSpec("ssp", "the SSP's client certificate (valid)", "ssp"),
    _LeafSpec("provider", "the provider's server certificate (valid)", "provider"),
    _LeafSpec("consumer", "a consumer system's endpoint certificate (valid)", "consumer"),
    _LeafSpec("revoked", "SSP FQDN, listed on the Sub CA's CRL", "ssp", revoke=True),
    _LeafSpec(
        "expired",
        "SSP FQDN, expired a day before the PKI's reference time",
        "ssp",
        offset_start=-dt.timedelta(days=366),
        lifetime=dt.timedelta(days=365),
    ),
    _LeafSpec(
        "not-yet-valid",
        "SSP FQDN, valid only from 30 days after the reference time",
        "ssp",
        offset_start=dt.timedelta(days=30),
    ),
    _LeafSpec(
        "wrong-fqdn", "valid chain, but a name that is not the SSP's", "=rogue.example.nhs.uk"
    ),
    _LeafSpec(
        "foreign",
        "SSP FQDN, issued by an untrusted CA with the same names",
        "ssp",
        "foreign-sub-ca",
    ),
)


def _validity(start: dt.datetime, lifetime: dt.timedelta) -> tuple[dt.datetime, dt.datetime]:
    return start, start + lifetime


def _signature_hash(key: PrivateKey) -> hashes.HashAlgorithm:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


@dataclass(slots=True)
class TestPKI:
    """A Spine-shaped test PKI: Root CA → Sub CA → endpoint certificates, plus a foreign
    (untrusted) hierarchy with the same names, CRLs and OCSP/AIA pointers.

    Build one with :meth:`create`; persist with :func:`spinepki.testpki.write_pki`.
    Mutating operations (:meth:`issue`, :meth:`revoke`) re-issue what depends on them.
    """

    __test__ = False  # not a pytest test class, despite the name

    reference_time: dt.datetime
    """The time the validity windows are built around (``at`` of :meth:`create`)."""
    key_type: KeyType
    """Key algorithm used for new certificates unless asked otherwise."""
    base_url: str
    """Base URL of the CRL/OCSP/AIA pointers in the certificates."""
    ssp_fqdn: str
    provider_fqdn: str
    consumer_fqdn: str
    with_ocsp: bool
    """Whether endpoint and Sub CA certificates carry an AIA OCSP URL."""
    reuse_keys: bool
    cas: dict[str, IssuedCertificate] = field(default_factory=dict)
    leaves: dict[str, IssuedCertificate] = field(default_factory=dict)
    revocations: dict[str, dict[int, Revocation]] = field(default_factory=dict)
    """Per CA name, the revoked serials."""
    crl_numbers: dict[str, int] = field(default_factory=dict)
    issuers: dict[str, str] = field(default_factory=dict)
    """Certificate name -> the name of the CA that issued it (known at issuance, so
    revocation need not search CAs by signature; a loaded PKI falls back to the search)."""

    # -- construction ------------------------------------------------------------

    @classmethod
    def create(
        cls,
        *,
        ssp_fqdn: str = DEFAULT_SSP_FQDN,
        provider_fqdn: str = DEFAULT_PROVIDER_FQDN,
        consumer_fqdn: str = DEFAULT_CONSUMER_FQDN,
        key_type: KeyType = KeyType.RSA_2048,
        base_url: str = DEFAULT_BASE_URL,
        with_ocsp: bool = True,
        at: dt.datetime | None = None,
        reuse_keys: bool = True,
        standard_set: bool = True,
    ) -> TestPKI:
        """Generate the CAs, the standard endpoint certificates and the CRLs.

        Args:
            ssp_fqdn: FQDN in the ``ssp`` certificate (and ``revoked``/``expired``…).
            provider_fqdn: FQDN of the provider's server certificate.
            consumer_fqdn: FQDN of the consumer's certificate.
            key_type: RSA-2048 by default for realism; ``EC_P256`` is much faster.
            base_url: where CRL/OCSP/CA URLs in the certificates point.
            with_ocsp: add an AIA OCSP URL (``{base_url}/ocsp``) to endpoint and Sub CA
                certificates.
            at: reference time (default: now); validity windows are built around it.
            reuse_keys: reuse keys per role within this process (fast; tests only).
            standard_set: issue the standard leaves (``ssp``, ``provider``, ``revoked``…).

        Raises:
            TestPKIError: ``at`` is naive.
            ConfigurationError: an FQDN that is not a host name, or a base URL that is not
                ``http(s)://HOST[:PORT][/PATH]`` (checked before any key is generated).
        """
        now = (at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        if now.tzinfo is None:
            raise TestPKIError("the reference time must be timezone-aware", source="at")
        # Checked before any key is generated: these go into every certificate.
        check_fqdn(ssp_fqdn, what="ssp_fqdn")
        check_fqdn(provider_fqdn, what="provider_fqdn")
        check_fqdn(consumer_fqdn, what="consumer_fqdn")
        check_http_url(base_url, what="base_url")
        pki = cls(
            reference_time=now,
            key_type=key_type,
            base_url=base_url.rstrip("/"),
            ssp_fqdn=ssp_fqdn,
            provider_fqdn=provider_fqdn,
            consumer_fqdn=consumer_fqdn,
            with_ocsp=with_ocsp,
            reuse_keys=reuse_keys,
        )
        for prefix in ("", "foreign-"):
            pki._make_ca(f"{prefix}root", ROOT_CN, None, lifetime=dt.timedelta(days=365 * 20))
            pki._make_ca(
                f"{prefix}sub-ca", SUB_CN, f"{prefix}root", lifetime=dt.timedelta(days=3650)
            )
        pki._issue_ocsp_responder()
        if standard_set:
            for spec in STANDARD_LEAVES:
                pki.issue(
                    spec.name,
                    fqdn=pki._fqdn(spec.fqdn_attr),
                    not_before=now - _BACKDATE + spec.offset_start,
                    not_after=now - _BACKDATE + spec.offset_start + spec.lifetime,
                    issuer=spec.issuer,
                    purpose=spec.purpose,
                )
                if spec.revoke:
                    pki.revoke(spec.name, at=now - _BACKDATE)
        return pki

    def _fqdn(self, attr: str) -> str:
        if attr.startswith("="):
            return attr[1:]
        return {"ssp": self.ssp_fqdn, "provider": self.provider_fqdn}.get(attr, self.consumer_fqdn)

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def _status_pointers(self, issuer: str) -> list[x509.ExtensionType]:
        """Where a certificate issued by CA ``issuer`` has its status: that CA's CRL, and
        an AIA naming the CA's certificate (and the OCSP responder, when there is one)."""
        access = [
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier(self._url(f"ca/{issuer}.crt")),
            )
        ]
        if self.with_ocsp:
            # An OCSP-only relying party needs somewhere to ask.
            access.insert(
                0,
                x509.AccessDescription(
                    AuthorityInformationAccessOID.OCSP,
                    x509.UniformResourceIdentifier(self._url("ocsp")),
                ),
            )
        return [
            x509.CRLDistributionPoints([_distribution_point(self._url(f"crl/{issuer}.crl"))]),
            x509.AuthorityInformationAccess(access),
        ]

    def _make_ca(
        self, name: str, cn: str, parent: str | None, *, lifetime: dt.timedelta
    ) -> IssuedCertificate:
        start = self.reference_time - dt.timedelta(days=30)
        return self.issue_ca(
            name, cn=cn, parent=parent, not_before=start, not_after=start + lifetime
        )

    def issue_ca(
        self,
        name: str,
        *,
        cn: str | None = None,
        subject: x509.Name | None = None,
        parent: str | None = "root",
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        key_type: KeyType | None = None,
        path_length: int | None = None,
        extensions: Iterable[x509.Extension[x509.ExtensionType]] = (),
        omit: Iterable[type[x509.ExtensionType]] = (),
        replace_existing: bool = False,
    ) -> IssuedCertificate:
        """Issue a CA certificate shaped like a real Spine one, or a root (``parent=None``).

        The shape: ``O=nhs, OU=CA, CN=<cn>``; basicConstraints cA=TRUE **non-critical**
        (as every real Spine G1 CA); keyUsage keyCertSign + cRLSign; SKI and AKI; below a
        root, a CRL distribution point and caIssuers URL pointing at ``{base_url}/crl/
        <parent>.crl`` and ``{base_url}/ca/<parent>.crt``. ``extensions`` replace the
        extension of the same type (or add one), ``omit`` drops one: that is how a test
        makes a CA the RFC 5280 way (basicConstraints critical) or breaks a rule on purpose.
        The certificate is kept in :attr:`cas`, so it can issue (``issue(issuer=name)``,
        ``issue_ca(parent=name)``) and publish a CRL (``crl(name)``). :func:`write_pki`
        writes every certificate, but :func:`load_pki` gives a leaf only its issuer as its
        chain: deeper hierarchies are for use in memory.

        Args:
            name: role name; must be new unless ``replace_existing``.
            cn: the subject CN (default ``name``); ignored when ``subject`` is given.
            subject: the whole subject name.
            parent: the issuing CA's name, or None for a self-signed root.
            not_before / not_after: default 30 days before the reference time, 10 years.
            key_type: default the PKI's key type.
            path_length: basicConstraints pathLenConstraint.
            extensions: extensions (with their criticality) replacing or adding to these.
            omit: extension types to leave out.
            replace_existing: allow re-issuing an existing name.

        Raises:
            TestPKIError: the name exists, the parent is unknown, or the window is empty.
        """
        if (name in self.leaves or name in self.cas) and not replace_existing:
            raise TestPKIError(f"a certificate named {name!r} already exists", source=name)
        issuer_ca = self.cas.get(parent) if parent is not None else None
        if parent is not None and issuer_ca is None:
            raise TestPKIError(f"unknown parent CA {parent!r}", source=name)
        start = not_before or (self.reference_time - dt.timedelta(days=30))
        end = not_after or (start + dt.timedelta(days=3650))
        if end <= start:
            raise TestPKIError("not_after must be later than not_before", source=name)
        key = _key_for(key_type or self.key_type, name, reuse=self.reuse_keys)
        # Real Spine roots are O=NHS (G1 LIVE) or O=nhs; Sub CAs O=nhs. Keep O=nhs.
        subject = subject if subject is not None else _spine_name("CA", cn or name)
        issuer_name = issuer_ca.certificate.subject if issuer_ca else subject
        signing_key = issuer_ca.private_key if issuer_ca else key
        defaults: list[x509.ExtensionType] = [
            # Spine CA certificates mark basicConstraints NON-critical (real bundles).
            x509.BasicConstraints(ca=True, path_length=path_length),
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
        ]
        if issuer_ca is not None and parent is not None:
            # A validator checks the Sub CA's status too (RFC 5280 6.1.3(a)(3)), so it
            # points at its issuer's CRL and OCSP like a leaf does.
            defaults.extend(self._status_pointers(parent))
        cert = self._sign(
            subject, issuer_name, key, signing_key, start, end, defaults, extensions, omit
        )
        is_root = issuer_ca is None
        issued = IssuedCertificate(
            name=name,
            certificate=cert,
            private_key=key,
            chain=self._chain_below(parent),
            purpose="trust anchor" if is_root else "issuing CA for endpoint certificates",
        )
        self.cas[name] = issued
        if parent is not None:
            self.issuers[name] = parent
        self.revocations.setdefault(name, {})
        self.crl_numbers.setdefault(name, 1)
        return issued

    def _chain_below(self, ca_name: str | None) -> tuple[x509.Certificate, ...]:
        """What a certificate issued by ``ca_name`` sends above itself (the root excluded)."""
        if ca_name is None or ca_name not in self.issuers:
            return ()
        ca = self.cas[ca_name]
        return (ca.certificate, *ca.chain)

    @staticmethod
    def _sign(
        subject: x509.Name,
        issuer: x509.Name,
        key: PrivateKey,
        signing_key: PrivateKey,
        start: dt.datetime,
        end: dt.datetime,
        defaults: Iterable[x509.ExtensionType],
        extensions: Iterable[x509.Extension[x509.ExtensionType]],
        omit: Iterable[type[x509.ExtensionType]],
    ) -> x509.Certificate:
        """Sign with the shape's ``defaults`` (non-critical), as ``extensions``/``omit`` say."""
        chosen = {value.oid: x509.Extension(value.oid, False, value) for value in defaults}
        for ext in extensions:
            chosen[ext.oid] = ext
        for kind in omit:
            chosen.pop(kind.oid, None)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
        )
        for ext in chosen.values():
            builder = builder.add_extension(ext.value, critical=ext.critical)
        return builder.sign(signing_key, _signature_hash(signing_key))  # type: ignore[arg-type]

    def _issue_ocsp_responder(self) -> None:
        self.issue(
            "ocsp-responder",
            fqdn="ocsp.spinepki.test.nhs.uk",
            eku=(ExtendedKeyUsageOID.OCSP_SIGNING,),
            purpose="delegated OCSP responder for the Sub CA (id-kp-OCSPSigning)",
            ocsp_nocheck=True,
            not_before=self.reference_time - dt.timedelta(days=30),
            not_after=self.reference_time + dt.timedelta(days=3650),
        )

    # -- issuing -----------------------------------------------------------------

    def issue(
        self,
        name: str,
        *,
        fqdn: str,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        key_type: KeyType | None = None,
        san: bool = False,
        eku: Iterable[x509.ObjectIdentifier] = (
            ExtendedKeyUsageOID.SERVER_AUTH,
            ExtendedKeyUsageOID.CLIENT_AUTH,
        ),
        issuer: str = "sub-ca",
        purpose: str = "",
        policies: Iterable[x509.ObjectIdentifier] = (SPINE_POLICY_OID,),
        ocsp_nocheck: bool = False,
        subject: x509.Name | None = None,
        extensions: Iterable[x509.Extension[x509.ExtensionType]] = (),
        omit: Iterable[type[x509.ExtensionType]] = (),
        replace_existing: bool = False,
    ) -> IssuedCertificate:
        """Issue an endpoint certificate shaped like a real Spine one.

        Args:
            name: role name; must be new unless ``replace_existing``.
            fqdn: goes into the subject CN (and SAN dNSName when ``san``).
            not_before / not_after: default a year from an hour before the reference time.
            key_type: default the PKI's key type.
            san: add a subjectAltName dNSName (real Spine certificates have none).
            eku: extended key usages (default serverAuth + clientAuth, as Spine issues).
            issuer: ``sub-ca`` (trusted), ``foreign-sub-ca`` (untrusted), or any CA made
                with :meth:`issue_ca`.
            purpose: plain-words description for the manifest.
            policies: certificate policy OIDs (default the Spine endpoint policy).
            ocsp_nocheck: add id-pkix-ocsp-nocheck (for OCSP responder certificates).
            subject: the whole subject name (default ``O=nhs, OU=Devices, CN=<fqdn>``).
            extensions: extensions (with their criticality) replacing the default one of
                the same type, or added: e.g. a critical subjectAltName.
            omit: extension types to leave out (e.g. ``x509.ExtendedKeyUsage``).
            replace_existing: allow re-issuing an existing name.

        Raises:
            TestPKIError: the name exists, the issuer is unknown, or the window is empty.
            ConfigurationError: the name cannot name a file (see ``check_file_name``:
                it becomes ``certs/<name>.pem``) or the FQDN is not a host name.
        """
        check_file_name(name, what="name")
        check_fqdn(fqdn, what="fqdn", wildcard=True)
        if (name in self.leaves or name in self.cas) and not replace_existing:
            raise TestPKIError(f"a certificate named {name!r} already exists", source=name)
        ca = self.cas.get(issuer)
        if ca is None:
            raise TestPKIError(f"unknown issuer {issuer!r}", source=name)
        start = not_before or (self.reference_time - _BACKDATE)
        end = not_after or (start + dt.timedelta(days=365))
        if end <= start:
            raise TestPKIError("not_after must be later than not_before", source=name)
        ktype = key_type or self.key_type
        key = _key_for(ktype, f"leaf:{name}", reuse=self.reuse_keys)
        subject = subject if subject is not None else _spine_name("Devices", fqdn)
        is_rsa = isinstance(key, rsa.RSAPrivateKey)
        defaults: list[x509.ExtensionType] = [
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                # RSA key transport needs keyEncipherment (as Spine issues); an EC key
                # cannot encipher, so it is left off for EC keys.
                key_encipherment=is_rsa,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            x509.ExtendedKeyUsage(list(eku)),
            x509.BasicConstraints(ca=False, path_length=None),
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key.public_key()),
        ]
        policy_list = list(policies)
        if policy_list:
            defaults.append(
                x509.CertificatePolicies([x509.PolicyInformation(p, None) for p in policy_list])
            )
        if ocsp_nocheck:
            defaults.append(x509.OCSPNoCheck())
        else:
            defaults.extend(self._status_pointers(issuer))
        if san:
            defaults.append(x509.SubjectAlternativeName([x509.DNSName(fqdn)]))
        cert = self._sign(
            subject,
            ca.certificate.subject,
            key,
            ca.private_key,
            start,
            end,
            defaults,
            extensions,
            omit,
        )
        issued = IssuedCertificate(
            name=name,
            certificate=cert,
            private_key=key,
            chain=(ca.certificate, *ca.chain) if issuer in self.issuers else (),
            purpose=purpose,
            fqdn=fqdn,
        )
        self.leaves[name] = issued
        self.issuers[name] = issuer
        return issued

    def revoke(
        self,
        name: str,
        *,
        reason: x509.ReasonFlags = x509.ReasonFlags.key_compromise,
        at: dt.datetime | None = None,
    ) -> Revocation:
        """Put a certificate on its issuer's CRL (the next :meth:`crl` lists it).

        Revoking a Sub CA (``sub-ca``) puts it on the root's CRL.

        Raises:
            TestPKIError: no certificate of that name, or it is a root.
        """
        issued = self.leaves.get(name) or self.cas.get(name)
        if issued is None:
            raise TestPKIError(f"no certificate named {name!r}", source=name)
        issuer = self._issuer_name_of(issued)
        if issuer is None:
            raise TestPKIError(
                "a root cannot be revoked; remove it from trust instead", source=name
            )
        entry = Revocation(
            serial=issued.serial,
            revoked_at=(at or self.reference_time).replace(microsecond=0),
            reason=reason,
        )
        self.revocations[issuer][issued.serial] = entry
        self.crl_numbers[issuer] += 1
        return entry

    def _issuer_name_of(self, issued: IssuedCertificate) -> str | None:
        known = self.issuers.get(issued.name)
        if known is not None:
            return known
        if issued.certificate.subject == issued.certificate.issuer:
            return None
        for ca_name, ca in self.cas.items():
            if issued.name != ca_name and signed_by(issued.certificate, ca.certificate):
                return ca_name
        return None  # pragma: no cover - every issued certificate has an issuer here

    def is_revoked(self, name: str) -> bool:
        """True when the named certificate is on its issuer's CRL."""
        issued = self.get(name)
        issuer = self._issuer_name_of(issued)
        return issuer is not None and issued.serial in self.revocations[issuer]

    # -- views -------------------------------------------------------------------

    @property
    def root(self) -> IssuedCertificate:
        """The trusted root CA."""
        return self.cas["root"]

    @property
    def sub_ca(self) -> IssuedCertificate:
        """The trusted Sub CA that issues endpoint certificates."""
        return self.cas["sub-ca"]

    def leaf(self, name: str) -> IssuedCertificate:
        """An endpoint certificate by role name.

        Raises:
            TestPKIError: no such name (the message lists the names there are).
        """
        try:
            return self.leaves[name]
        except KeyError:
            known = ", ".join(sorted(self.leaves))
            raise TestPKIError(
                f"no certificate named {name!r}; known: {known}", source=name
            ) from None

    def get(self, name: str) -> IssuedCertificate:
        """A CA or endpoint certificate by name."""
        if name in self.cas:
            return self.cas[name]
        return self.leaf(name)

    def __iter__(self) -> Iterator[IssuedCertificate]:
        yield from self.cas.values()
        yield from self.leaves.values()

    def trust_store(self, *cas: str, partial_chain: bool = False) -> TrustStore:
        """The trusted hierarchy (root + Sub CA), as a provider would configure it.

        Args:
            cas: other CA names to trust instead (e.g. a root made with :meth:`issue_ca`).
            partial_chain: every certificate is an anchor (``TrustStore`` option).
        """
        names = cas or ("root", "sub-ca")
        return TrustStore(
            [self.get(n).certificate for n in names], name="testpki", partial_chain=partial_chain
        )

    def crl(
        self,
        ca: str = "sub-ca",
        *,
        at: dt.datetime | None = None,
        next_update: dt.timedelta = dt.timedelta(days=7),
        number: int | None = None,
    ) -> x509.CertificateRevocationList:
        """A freshly signed CRL from ``ca`` listing everything revoked under it.

        Args:
            ca: ``sub-ca`` (the endpoint CRL), ``root`` (lists revoked Sub CAs), or a
                ``foreign-`` CA.
            at: thisUpdate (default the reference time less an hour).
            next_update: nextUpdate after thisUpdate (for a stale CRL, pass an ``at``
                in the past with a short ``next_update``).
            number: CRL number (default the current number for that CA).
        """
        issuer = self.cas.get(ca)
        if issuer is None:
            raise TestPKIError(f"unknown CA {ca!r}", source=ca)
        this_update = (at or (self.reference_time - _BACKDATE)).replace(microsecond=0)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.certificate.subject)
            .last_update(this_update)
            .next_update(this_update + next_update)
            .add_extension(x509.CRLNumber(number or self.crl_numbers[ca]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.private_key.public_key()),
                critical=False,
            )
        )
        for entry in self.revocations[ca].values():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(entry.serial)
                .revocation_date(entry.revoked_at)
                .add_extension(x509.CRLReason(entry.reason), critical=False)
                .build()
            )
        return builder.sign(issuer.private_key, _signature_hash(issuer.private_key))  # type: ignore[arg-type]

    def root_crl(
        self, *, at: dt.datetime | None = None, next_update: dt.timedelta = dt.timedelta(days=7)
    ) -> x509.CertificateRevocationList:
        """The root's CRL (lists revoked Sub CAs); options as for :meth:`crl`."""
        return self.crl("root", at=at, next_update=next_update)

    def with_reference_time(self, at: dt.datetime) -> TestPKI:
        """A shallow copy whose CRLs default to another time (certificates unchanged)."""
        return replace(self, reference_time=at)


def _spine_name(unit: str, cn: str) -> x509.Name:
    """``O=nhs, OU=<unit>, CN=<cn>``: the shape of every real Spine subject."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nhs"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _distribution_point(url: str) -> x509.DistributionPoint:
    return x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
