"""ClientCertValidator: cryptography's path validation plus the Spine checks around it."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID
from cryptography.x509.verification import (
    ClientVerifier,
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    ServerVerifier,
    Store,
    VerificationError,
)

from spinepki._loading import (
    MALFORMED_INPUT,
    CertificateSource,
    load_certificates,
    read_source,
)
from spinepki._time import shift, to_utc
from spinepki.errors import CertificateLoadError, ConfigurationError, RevocationError
from spinepki.revocation import (
    RevocationChecker,
    RevocationMode,
    RevocationResult,
    RevocationStatus,
)
from spinepki.trust import TrustStore
from spinepki.validation._cache import ResultCache
from spinepki.validation._checks import (
    KEY_USAGE_BITS,
    IPName,
    classify_verifier_error,
    clean_verifier_message,
    extensions_by_oid,
    fqdn_names,
    key_floor,
    key_usage_problem,
    match_fqdn,
    match_ip,
    missing_policies,
    parse_fully,
    purpose_problem,
    san_ip_names,
    san_problem,
    signature_floor,
    split_names,
    subject_of,
    validity_failure,
)
from spinepki.validation._model import (
    FailureCode,
    Profile,
    Purpose,
    ValidationFailure,
    ValidationResult,
)
from spinepki.validation._paths import Pools, TrustIndex, WorkBudget

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_CACHE_TTL",
    "DEFAULT_MAX_CHAIN_DEPTH",
    "MAX_CHAIN_DEPTH_LIMIT",
    "MAX_INTERMEDIATES",
    "PATH_BUDGET",
    "ClientCertValidator",
]

#: Spine paths are Root -> Sub CA -> endpoint (one intermediate; G2 Sub CAs say pathlen 1).
#: Three leaves room for a cross-certificate without letting a hostile chain run long.
#: The default of the spine and strict profiles; the general profile's is 8.
DEFAULT_MAX_CHAIN_DEPTH = 3
#: The most intermediate CAs ``max_chain_depth`` may allow.
MAX_CHAIN_DEPTH_LIMIT = 16
#: The most certificates a peer may send besides its leaf. More is refused
#: (CHAIN_TOO_LONG) before any of them is parsed: no path needs them, and each costs work.
MAX_INTERMEDIATES = 32
#: The bounded search that picks the path cryptography verifies when a chain is ambiguous,
#: and that explains a refusal (see :class:`~spinepki.validation._checks.WorkBudget`).
PATH_BUDGET = WorkBudget()
#: How long a validated result may be reused at most, whatever the evidence says.
DEFAULT_CACHE_TTL = dt.timedelta(minutes=5)
#: How many distinct leaves the cache remembers (the SSP presents very few).
DEFAULT_CACHE_SIZE = 1024
_DEFAULT_DEPTH = {Profile.SPINE: DEFAULT_MAX_CHAIN_DEPTH, Profile.STRICT: 3, Profile.GENERAL: 8}
#: How many anchor-reaching candidate paths of an ambiguous chain are given to the verifier.
_PATH_ATTEMPTS = 3
#: Leaf certificate objects whose static check verdicts are remembered (_LeafMemo).
_LEAF_MEMO = 256
#: Leaves given as bytes whose parsed object is remembered (by the exact bytes), and the
#: largest such input: a peer's certificate arrives as new DER on every connection.
_PARSED_MEMO = 256
_PARSED_MAX_BYTES = 8192
_TIME_CODES = frozenset({FailureCode.EXPIRED, FailureCode.NOT_YET_VALID})
_ALGORITHM_CODES = frozenset(
    {FailureCode.WEAK_KEY, FailureCode.WEAK_SIGNATURE, FailureCode.MALFORMED}
)
_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True, slots=True)
class _Rules:
    """What a profile and purpose mean in practice."""

    client_ca: ExtensionPolicy
    """CA extension policy for cryptography's client verifier (CLIENT and ANY, and SERVER
    when the server verifier cannot be used)."""
    client_ee: ExtensionPolicy
    """Leaf extension policy for the client verifier."""
    server_ca: ExtensionPolicy
    """CA extension policy for cryptography's server verifier (SERVER)."""
    server_ee: ExtensionPolicy
    """Leaf extension policy for the server verifier (it must require a subjectAltName)."""
    cn_fallback: bool
    """Read the FQDN from the (one) subject CN when the leaf has no subjectAltName."""
    require_eku: bool
    """An absent leaf extKeyUsage fails (spine, strict); absent means any (general)."""


def _ca_allows_server_auth(
    _policy: Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None
) -> None:
    """cryptography's CA extKeyUsage rule for serverAuth, for the client verifier.

    The server verifier applies it itself; this is its twin for a Spine server certificate,
    which has no subjectAltName and so cannot go through the server verifier (cryptography
    refuses a server policy that does not require one).

    Raises:
        ValueError: the CA's EKU allows neither serverAuth nor anyExtendedKeyUsage.
    """
    del cert
    if eku is None:
        return
    if ExtendedKeyUsageOID.SERVER_AUTH in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku:
        return
    raise ValueError("the CA's extended key usage does not allow serverAuth")


@functools.cache
def _rules(profile: Profile, purpose: Purpose) -> _Rules:
    ca = ExtensionPolicy.webpki_defaults_ca()
    if profile is Profile.SPINE:
        # Relaxation spine-ca-basic-constraints-noncritical (docs/validation.md): Spine CA
        # certificates (G1 roots and Sub CAs) mark basicConstraints non-critical.
        # cryptography still enforces cA=TRUE and pathLenConstraint itself.
        ca = ca.require_present(x509.BasicConstraints, Criticality.AGNOSTIC, None)
    # The leaf's extKeyUsage *content* is spinepki's check (purpose_problem), so a wrong one
    # gets its own code (WRONG_PURPOSE) and the general profile can accept an absent one;
    # its *criticality* stays cryptography's rule (CA/Browser Forum BR 7.1.2.7.6).
    server_ee = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    client_ee = server_ee
    if profile is Profile.SPINE:
        # Relaxation spine-ee-san-absent (docs/validation.md): real Spine endpoint
        # certificates have no subjectAltName; the FQDN is in the one subject CN. The
        # SAN's criticality rule still applies when one is present (san_problem).
        client_ee = client_ee.may_be_present(
            x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
        )
    client_ca = ca
    if purpose is Purpose.ANY:
        client_ca = ca.may_be_present(x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None)
    elif purpose is Purpose.SERVER:
        client_ca = ca.may_be_present(
            x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, _ca_allows_server_auth
        )
    return _Rules(
        client_ca=client_ca,
        client_ee=client_ee,
        server_ca=ca,
        server_ee=server_ee,
        cn_fallback=profile is Profile.SPINE,
        require_eku=profile is not Profile.GENERAL,
    )


class _PeerSocket(Protocol):
    def getpeercert(self, binary_form: bool = ...) -> Any: ...


class _LeafFacts(NamedTuple):
    failures: list[ValidationFailure]
    fqdn: str | None
    source: str | None
    server_name: x509.DNSName | x509.IPAddress | None
    """The name cryptography's server verifier is built for (SERVER with a SAN only)."""


class _LeafMemo:
    """What the leaf checks found that depends on the certificate alone, not on ``at``.

    A certificate object is immutable, so the purpose, key usage, name, SAN and policy
    verdicts and the key and signature floors of one object never change for one
    validator; they are applied on every validation, from here. Held by ``id()`` with the
    object kept alive, so the id cannot be reused while the entry exists.
    """

    __slots__ = ("_floors", "cert", "facts", "not_after", "not_before")

    def __init__(self, cert: x509.Certificate, facts: _LeafFacts) -> None:
        self.cert = cert
        self.facts = facts
        self._floors: tuple[ValidationFailure, ...] | None = None
        # cryptography builds a new datetime on every read of these.
        self.not_before = cert.not_valid_before_utc
        self.not_after = cert.not_valid_after_utc

    def floors(self) -> tuple[ValidationFailure, ...]:
        """The key floor's and the signature floor's failures (asked after path building)."""
        floors = self._floors
        if floors is None:
            found = (key_floor(self.cert), signature_floor(self.cert))
            floors = self._floors = tuple(f for f in found if f)
        return floors


class _TooMany(Exception):
    """More certificates than MAX_INTERMEDIATES (internal control flow)."""

    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.count = count


def _resolve_at(at: dt.datetime | None) -> dt.datetime:
    # In UTC from here on (to_utc says why); the verifier reused within one second must
    # not be reused across the hour repeated when clocks go back.
    return dt.datetime.now(dt.UTC) if at is None else to_utc(at)


def _load_bounded(value: CertificateSource, limit: int) -> list[x509.Certificate]:
    """``load_certificate_chain``, refusing (before parsing) more than ``limit`` certificates."""
    if isinstance(value, x509.Certificate):
        return [value]
    data, label = read_source(value, what="certificate")
    count = data.count(_PEM_CERTIFICATE)  # a PEM bundle is counted before it is parsed
    if count > limit:
        raise _TooMany(count)
    return load_certificates(data, source=label)


def _checker_failed(cert: x509.Certificate) -> ValidationFailure:
    return ValidationFailure(
        FailureCode.REVOCATION_UNKNOWN,
        "revocation status could not be determined (the checker failed)",
        subject_of(cert),
    )


class ClientCertValidator:
    """Validates a client (or server) certificate against Spine trust, time, name and revocation.

    One instance per configuration; it is immutable, thread-safe, and caches valid
    results (see :meth:`validate`). Path building, signatures, basic constraints, path
    length, CA key usage and the extension rules of the profile are cryptography's
    verifier (its server verifier for ``Purpose.SERVER``); spinepki adds the
    per-certificate validity, key/algorithm floor, purpose, name, policy and revocation
    checks, bounds the work a peer's chain can cause, and turns everything into stable
    :class:`FailureCode` values.

    Args:
        trust: the trust anchors (roots) and known intermediates (Sub CAs).
        ssp_fqdns: the name(s) the certificate must carry: FQDNs (case-insensitive, exact)
            or IP addresses (matched against subjectAltName iPAddress entries only).
        revocation: a :class:`~spinepki.revocation.RevocationChecker`; default hard-fail
            with network fetching from the certificate's CRL distribution point.
        purpose: ``Purpose.CLIENT`` (clientAuth, the default), ``Purpose.SERVER``
            (serverAuth, with cryptography's server verifier) or ``Purpose.ANY``.
        profile: ``Profile.SPINE`` (default), ``Profile.STRICT`` or ``Profile.GENERAL``.
        max_chain_depth: most intermediate CAs allowed between leaf and anchor, 0 to 16;
            default 3 (spine, strict) or 8 (general).
        required_policies: certificate policy OIDs that the leaf must all assert.
        required_key_usage: keyUsage bits the leaf must assert, by cryptography's names
            (``"digital_signature"``, ``"key_encipherment"``…).
        allow_wildcard: accept a wildcard (``*.example.nhs.uk``) in the certificate.
        check_ca_revocation: check every certificate on the path below the trust anchor
            (the leaf and each Sub CA), as RFC 5280 6.1.3(a)(3) does: a REVOKED Sub CA
            fails, and so does one whose status is UNKNOWN unless the mode is soft-fail.
            ``False`` checks the leaf only (a revoked Sub CA is then not seen).
        cache_ttl: longest reuse of a valid result (``timedelta`` or seconds; 0 disables).
        cache_size: most results kept (least recently used evicted).
        unsafe_skip_fqdn_check: do not compare names (for ``spinepki cert check`` without
            ``--fqdn``, and suites like PKITS). Never for the SSP connection.

    Raises:
        ConfigurationError: no FQDN configured, a depth, key usage or cache setting out
            of range, or a name the server verifier cannot take.
    """

    __slots__ = (
        "_allow_wildcard",
        "_at_hand",
        "_cache",
        "_check_ca_revocation",
        "_client_builder",
        "_dns_names",
        "_fqdns",
        "_ip_names",
        "_key_usage",
        "_last_verifier",
        "_leaf_memo",
        "_max_depth",
        "_parsed",
        "_purpose",
        "_required_policies",
        "_revocation",
        "_revocation_enabled",
        "_rules",
        "_server_builder",
        "_store",
        "_trust",
        "_trust_index",
        "_trusted_floors",
        "_ttl",
    )

    def __init__(
        self,
        trust: TrustStore,
        *,
        ssp_fqdns: Iterable[str] | str = (),
        revocation: RevocationChecker | None = None,
        purpose: Purpose = Purpose.CLIENT,
        profile: Profile = Profile.SPINE,
        max_chain_depth: int | None = None,
        required_policies: Iterable[x509.ObjectIdentifier | str] = (),
        required_key_usage: Iterable[str] = (),
        allow_wildcard: bool = False,
        check_ca_revocation: bool = True,
        cache_ttl: dt.timedelta | float = DEFAULT_CACHE_TTL,
        cache_size: int = DEFAULT_CACHE_SIZE,
        unsafe_skip_fqdn_check: bool = False,
    ) -> None:
        names = [ssp_fqdns] if isinstance(ssp_fqdns, str) else list(ssp_fqdns)
        dns_names, ip_names = split_names(names)
        if not (dns_names or ip_names) and not unsafe_skip_fqdn_check:
            raise ConfigurationError(
                "configure the SSP FQDN(s) to accept (ssp_fqdns=...), or pass "
                "unsafe_skip_fqdn_check=True where names genuinely do not matter",
                source="ssp_fqdns",
            )
        profile = Profile(profile)
        depth = _DEFAULT_DEPTH[profile] if max_chain_depth is None else max_chain_depth
        if not 0 <= depth <= MAX_CHAIN_DEPTH_LIMIT:
            raise ConfigurationError(
                f"max_chain_depth must be between 0 and {MAX_CHAIN_DEPTH_LIMIT}",
                source="max_chain_depth",
            )
        key_usage = tuple(dict.fromkeys(required_key_usage))
        unknown = [bit for bit in key_usage if bit not in KEY_USAGE_BITS]
        if unknown:
            raise ConfigurationError(
                f"unknown key usage {', '.join(unknown)}; expected some of "
                + ", ".join(KEY_USAGE_BITS),
                source="required_key_usage",
            )
        try:
            if isinstance(cache_ttl, bool):
                raise TypeError("a bool is not a number of seconds")
            ttl = (
                cache_ttl
                if isinstance(cache_ttl, dt.timedelta)
                else dt.timedelta(seconds=cache_ttl)
            )
        except (OverflowError, ValueError, TypeError):  # inf, nan, past timedelta.max
            raise ConfigurationError(
                f"cache_ttl must be a finite number of seconds, got {cache_ttl!r}",
                source="cache_ttl",
            ) from None
        if ttl < dt.timedelta(0) or cache_size < 0:
            raise ConfigurationError(
                "cache_ttl and cache_size must not be negative", source="cache_ttl"
            )
        self._purpose = Purpose(purpose)
        self._trust = trust
        self._store = Store(list(trust.anchors))
        if self._purpose is Purpose.SERVER and not unsafe_skip_fqdn_check:
            # A name the server verifier cannot be built for is a setting that cannot work:
            # say so now, not on every validation.
            for name in dns_names:
                try:
                    PolicyBuilder().store(self._store).time(
                        dt.datetime.now(dt.UTC)
                    ).build_server_verifier(x509.DNSName(name))
                except ValueError as exc:
                    raise ConfigurationError(
                        f"{name!r} is not a DNS name the server verifier accepts: {exc}",
                        source="ssp_fqdns",
                    ) from None
        # Trust-store certificates are fixed at construction, so their key and signature
        # floors are checked once here, not on every validation; chain members are matched
        # by identity (the verifier returns the very objects it was given).
        self._trusted_floors: dict[int, tuple[ValidationFailure, ...]] = {
            id(c): tuple(f for f in (key_floor(c),) if f) for c in trust.anchors
        }
        self._trusted_floors.update(
            (id(c), tuple(f for f in (key_floor(c), signature_floor(c)) if f))
            for c in trust.intermediates
        )
        # Path building matches encoded names; the trust store's are read once. A peer's
        # copy of a trusted certificate (DER) is replaced by the trusted object, so floors
        # and Sub CA verdicts are found by identity and nothing is parsed twice.
        self._trust_index = TrustIndex(trust)
        self._fqdns = None if unsafe_skip_fqdn_check else dns_names
        self._dns_names = dns_names
        self._ip_names = frozenset[IPName]() if unsafe_skip_fqdn_check else ip_names
        self._revocation = revocation if revocation is not None else RevocationChecker()
        self._revocation_enabled = self._revocation.mode is not RevocationMode.DISABLED
        self._at_hand = type(self._revocation).check is RevocationChecker.check
        self._rules = rules = _rules(profile, self._purpose)
        self._max_depth = depth
        # Everything but the time is fixed, so the builders are made once (a PolicyBuilder
        # returns a new builder from each setter; only .time() is added per validation).
        common = PolicyBuilder().store(self._store).max_chain_depth(depth)
        self._client_builder = common.extension_policies(
            ca_policy=rules.client_ca, ee_policy=rules.client_ee
        )
        self._server_builder = common.extension_policies(
            ca_policy=rules.server_ca, ee_policy=rules.server_ee
        )
        self._last_verifier: tuple[dt.datetime, ClientVerifier] | None = None
        self._required_policies = frozenset(
            p if isinstance(p, x509.ObjectIdentifier) else x509.ObjectIdentifier(p)
            for p in required_policies
        )
        self._key_usage = key_usage
        self._allow_wildcard = allow_wildcard
        self._check_ca_revocation = check_ca_revocation
        self._ttl = ttl
        self._cache = ResultCache(cache_size) if ttl and cache_size else None
        self._leaf_memo: dict[int, _LeafMemo] = {}
        self._parsed: dict[bytes, x509.Certificate] = {}

    # -- public API ------------------------------------------------------------------

    @property
    def trust(self) -> TrustStore:
        """The trust store validation is anchored in."""
        return self._trust

    @property
    def revocation(self) -> RevocationChecker:
        """The revocation checker in use."""
        return self._revocation

    @property
    def max_chain_depth(self) -> int:
        """The most intermediate CAs allowed (the profile's default unless configured)."""
        return self._max_depth

    def validate(
        self,
        leaf: CertificateSource,
        intermediates: Iterable[CertificateSource] | CertificateSource = (),
        *,
        at: dt.datetime | None = None,
    ) -> ValidationResult:
        """Validate ``leaf`` (with the chain the peer sent) at ``at`` (default: now).

        A PEM bundle given as ``leaf`` is read leaf first, the rest as intermediates.
        More than :data:`MAX_INTERMEDIATES` intermediates are refused (CHAIN_TOO_LONG)
        before they are parsed.
        A valid result is cached for the same leaf and intermediates until the earliest of
        the notAfter on the path, the revocation evidence's nextUpdate and the TTL; a call
        whose ``at`` falls in that window returns it (``from_cache=True``).

        Raises:
            CertificateLoadError: an input is not a certificate at all.
            ConfigurationError: ``at`` is not timezone-aware.
        """
        # (The common shapes are tested first: every step here is paid per connection.)
        when = at if at is not None and at.tzinfo is dt.UTC else _resolve_at(at)
        inter_key: Hashable = (
            tuple(intermediates)
            if isinstance(intermediates, list | tuple)
            or not isinstance(intermediates, x509.Certificate | bytes | str | Path)
            else intermediates
        )
        cache = self._cache
        # Read before validating: evidence that changes meanwhile makes the entry stale.
        generation = self._revocation.generation if cache is not None else 0
        key: Hashable | None = leaf if isinstance(leaf, bytes | x509.Certificate) else None
        if cache is not None and key is not None:
            hit = cache.get(key, inter_key, when, generation)
            if hit is not None:
                return hit
        bundled: Sequence[x509.Certificate] = ()
        if isinstance(leaf, x509.Certificate):
            leaf_cert = leaf
        else:
            try:
                certs = self._load_leaf(leaf)
            except _TooMany as too_many:
                return self._too_many(None, too_many.count - 1, when)
            leaf_cert, bundled = certs[0], certs[1:]
        try:
            inter_certs, trusted_only = self._peer_intermediates(
                bundled, inter_key if isinstance(inter_key, tuple) else (inter_key,)
            )
        except _TooMany as too_many:
            return self._too_many(leaf_cert, too_many.count, when)
        if cache is not None and key is None:
            key = leaf_cert
            hit = cache.get(key, inter_key, when, generation)
            if hit is not None:
                return hit
        result, ca_until = self._validate(leaf_cert, inter_certs, when, trusted_only=trusted_only)
        if cache is not None and key is not None and result.valid:
            self._remember(cache, key, inter_key, result, when, generation, ca_until)
        return result

    def cached(
        self,
        leaf: CertificateSource,
        intermediates: Iterable[CertificateSource] | CertificateSource = (),
        *,
        at: dt.datetime | None = None,
    ) -> ValidationResult | None:
        """The cached result :meth:`validate` would return for these arguments, or None.

        Never blocks and does no work beyond a cache lookup: no parsing, no path
        building, no revocation check, no I/O. An event-loop server asks this first and
        runs :meth:`validate` on a worker thread only when it answers None. Only a
        ``leaf`` given as DER bytes or a parsed certificate is looked up (a PEM text or a
        path would need loading: None). Only valid results are ever cached, and never a
        soft-failed revocation check, so those always answer None.

        Raises:
            ConfigurationError: ``at`` is not timezone-aware.
        """
        cache = self._cache
        if cache is None or not isinstance(leaf, bytes | x509.Certificate):
            return None
        inter_key: Hashable = (
            intermediates
            if isinstance(intermediates, x509.Certificate | bytes | str | Path)
            else tuple(intermediates)
        )
        return cache.get(leaf, inter_key, _resolve_at(at), self._revocation.generation)

    def validate_peer(
        self, sock: _PeerSocket, *, at: dt.datetime | None = None
    ) -> ValidationResult:
        """Validate the certificate the peer of an ``ssl.SSLSocket``/``SSLObject`` presented.

        Python 3.11 exposes only the peer's leaf certificate (``getpeercert(binary_form=
        True)``), not the chain it sent, so the path is built with the trust store's
        intermediates (the Spine Sub CAs ship in it). On Python 3.13 and later the chain
        the peer sent (``get_unverified_chain()``) is used as well.

        Raises:
            CertificateLoadError: the peer presented no certificate.
        """
        der = sock.getpeercert(binary_form=True)
        if not der:
            raise CertificateLoadError("the peer presented no certificate", source="peer")
        intermediates: tuple[bytes, ...] = ()
        get_chain = getattr(sock, "get_unverified_chain", None)
        if callable(get_chain):
            sent = get_chain() or []
            intermediates = tuple(
                c if isinstance(c, bytes) else bytes(c.public_bytes()) for c in sent[1:]
            )
        return self.validate(bytes(der), intermediates, at=at)

    def clear_cache(self) -> None:
        """Forget every cached result and leaf memo (e.g. after replacing CRLs)."""
        if self._cache is not None:
            self._cache.clear()
        self._leaf_memo.clear()
        self._parsed.clear()

    # -- loading what the peer sent --------------------------------------------------

    def _load_leaf(self, leaf: CertificateSource) -> list[x509.Certificate]:
        """``_load_bounded`` for the leaf, a repeat of the same bytes reusing one object.

        The SSP presents the same certificate as new DER bytes on every connection.
        Parsing it again is not the cost: cryptography reads its fields lazily, per
        object, so a new object pays for its names and extensions again, and the
        per-object memos (_LeafMemo) would never be found. Keyed by the exact bytes, so
        only the very same input can hit; bounded in entries and in input size.
        """
        if not isinstance(leaf, bytes):
            return _load_bounded(leaf, MAX_INTERMEDIATES + 1)
        known = self._parsed.get(leaf)
        if known is not None:
            return [known]
        certs = _load_bounded(leaf, MAX_INTERMEDIATES + 1)
        if len(certs) == 1 and len(leaf) <= _PARSED_MAX_BYTES:
            if len(self._parsed) >= _PARSED_MEMO:
                self._parsed.clear()
            self._parsed[leaf] = certs[0]
        return certs

    def _peer_intermediates(
        self, bundled: Sequence[x509.Certificate], sources: Sequence[Any]
    ) -> tuple[list[tuple[x509.Certificate, bytes | None]], bool]:
        """The peer's intermediates, trusted copies replaced by the trusted objects.

        Returns ``(certificate, der)`` pairs (``der`` when it came as DER bytes, for the
        path node), and whether every one is a trusted certificate (then there is no
        path to choose). Raises ``_TooMany`` past MAX_INTERMEDIATES, before parsing the
        rest.
        """
        if len(bundled) + len(sources) > MAX_INTERMEDIATES:
            raise _TooMany(len(bundled) + len(sources))
        trust = self._trust_index
        nodes = trust.nodes
        found: list[tuple[x509.Certificate, bytes | None]] = []
        trusted_only = True
        if bundled:
            found.extend((trust.canonical(c), None) for c in bundled)
            trusted_only = all(id(c) in nodes for c, _ in found)
        for source in sources:
            if isinstance(source, x509.Certificate):
                # One certificate; the count above leaves room for it.
                cert = trust.canonical(source)
                found.append((cert, None))
                trusted_only = trusted_only and id(cert) in nodes
                continue
            if isinstance(source, bytes) and (known := trust.by_der.get(source)):
                found.append((known, None))
                continue
            trusted_only = False  # a trusted copy is found by its DER above
            room = MAX_INTERMEDIATES - len(found)
            try:
                certs = _load_bounded(source, room)
            except _TooMany as too_many:
                raise _TooMany(len(found) + too_many.count) from None
            if len(certs) > room:
                raise _TooMany(len(found) + len(certs))
            der = source if isinstance(source, bytes) and b"-----BEGIN" not in source else None
            if der is not None:  # already looked up by its DER above
                found.extend((c, der) for c in certs)
            else:
                found.extend((trust.canonical(c), None) for c in certs)
        return found, trusted_only

    def _too_many(
        self, leaf: x509.Certificate | None, count: int, at: dt.datetime
    ) -> ValidationResult:
        failure = ValidationFailure(
            FailureCode.CHAIN_TOO_LONG,
            f"the peer sent {count} intermediate certificates; at most {MAX_INTERMEDIATES} "
            "are ever considered",
            subject_of(leaf) if leaf is not None else None,
        )
        chain = (leaf,) if leaf is not None else ()
        return ValidationResult(False, (failure,), chain, None, None, None, at)

    # -- the work --------------------------------------------------------------------

    def _verify(
        self,
        leaf: x509.Certificate,
        pool: list[x509.Certificate],
        at: dt.datetime,
        server_name: x509.DNSName | x509.IPAddress | None,
    ) -> tuple[x509.Certificate, ...]:
        """One call to cryptography's verifier.

        ``Purpose.SERVER`` uses the server verifier, with its name rules, whenever the leaf
        has a subjectAltName to match; a Spine server certificate has none, and then the
        client verifier runs with the server rule for CA extKeyUsage (_ca_allows_server_auth).

        Raises:
            VerificationError: no acceptable path.
        """
        if server_name is not None:
            server: ServerVerifier = self._server_builder.time(at).build_server_verifier(
                server_name
            )
            return tuple(server.verify(leaf, pool))
        return tuple(self._client_verifier(at).verify(leaf, pool).chain)

    def _client_verifier(self, at: dt.datetime) -> ClientVerifier:
        """The client verifier for ``at``, the last one reused within the same second.

        cryptography keeps a verifier's time in whole seconds (ASN.1 time has no finer
        resolution, RFC 5280 4.1.2.5), so every validation in one second is given the
        same verifier, built for that second; a verify with a verifier built just before
        was measurably slower than with one reused. Under load (many connections a
        second) most validations reuse one. Nothing else about a verifier changes.
        """
        second = at.replace(microsecond=0)
        last = self._last_verifier
        if last is not None and last[0] == second:
            return last[1]
        verifier: ClientVerifier = self._client_builder.time(second).build_client_verifier()
        self._last_verifier = (second, verifier)  # one tuple store: safe across threads
        return verifier

    def _validate(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[tuple[x509.Certificate, bytes | None]],
        at: dt.datetime,
        *,
        trusted_only: bool,
    ) -> tuple[ValidationResult, dt.datetime | None]:
        """The result, and until when the revocation answers about the path's CAs hold
        (for the result cache; None: no bound from them)."""
        try:
            memo = self._leaf_memo.get(id(leaf))
            if memo is None or memo.cert is not leaf:
                parse_fully(leaf)
                memo = _LeafMemo(leaf, self._leaf_checks(leaf))
                if len(self._leaf_memo) >= _LEAF_MEMO:
                    self._leaf_memo.clear()
                self._leaf_memo[id(leaf)] = memo
        except MALFORMED_INPUT as exc:
            # cryptography parses extensions lazily: a duplicate or undecodable extension
            # surfaces here, on a certificate that otherwise loaded.
            failure = ValidationFailure(
                FailureCode.MALFORMED, f"malformed certificate: {exc}", subject_of(leaf)
            )
            return ValidationResult(False, (failure,), (leaf,), None, None, None, at), None
        facts = memo.facts
        # The validity check comes first, as it always has; the rest are the leaf's.
        stale = None if memo.not_before <= at <= memo.not_after else validity_failure(leaf, at)
        failures = [stale, *facts.failures] if stale else list(facts.failures)
        trust = self._trust_index
        paths: Pools | None = None
        candidates: Iterable[list[x509.Certificate]]
        if trusted_only and trust.linear:
            # The common case (the peer sent the trusted Sub CA, or nothing): no choice to
            # make, so no search object is built unless the verifier refuses.
            candidates = (trust.pool,)
        else:
            paths = self._pools(leaf, intermediates)
            candidates = paths.pools()
        chain: tuple[x509.Certificate, ...] | None = None
        message = ""
        for pool in candidates:
            try:
                chain = self._verify(leaf, pool, at, facts.server_name)
                break
            except VerificationError as exc:
                message = message or str(exc)
        if chain is None:
            paths = paths or self._pools(leaf, intermediates)
            chain = self._explain(leaf, paths, at, message, facts.server_name, failures)
            result = ValidationResult(
                False, tuple(failures), chain, facts.fqdn, facts.source, None, at
            )
            return result, None
        # Defence in depth: cryptography already holds this floor, but spinepki's promise
        # should not depend on another library's defaults. The anchor's self-signature is
        # trusted by configuration (the SHA-1-signed G1 LIVE root), so it is not checked.
        last = len(chain) - 1
        trusted_floors = self._trusted_floors
        for index, cert in enumerate(chain):
            # The trust store keeps its certificates alive, so an id found here cannot
            # belong to any other live object: the id is the identity.
            known = trusted_floors.get(id(cert))
            if known is not None:
                if known:
                    failures.extend(known)
                continue
            if index == 0 and last:  # the leaf (the verifier's chain starts with it)
                if weak_leaf := memo.floors():
                    failures.extend(weak_leaf)
                continue
            if weak := key_floor(cert):
                failures.append(weak)
            if index != last and (weak := signature_floor(cert)):
                failures.append(weak)
        outcome, ca_until = self._check_revocation(chain, at, failures)
        result = ValidationResult(
            not failures, tuple(failures), chain, facts.fqdn, facts.source, outcome, at
        )
        return result, ca_until

    def _pools(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[tuple[x509.Certificate, bytes | None]],
    ) -> Pools:
        return Pools(
            self._trust_index,
            leaf,
            intermediates,
            max_depth=self._max_depth,
            budget=PATH_BUDGET,
            attempts=_PATH_ATTEMPTS,
        )

    def _leaf_checks(self, leaf: x509.Certificate) -> _LeafFacts:
        # The checks that depend on the leaf alone (validity, which depends on the time,
        # is _validate's). The rare ones are behind a cheap test (a configured option,
        # the SAN being present) rather than always called.
        failures: list[ValidationFailure] = []
        rules = self._rules
        exts = extensions_by_oid(leaf)
        has_san = ExtensionOID.SUBJECT_ALTERNATIVE_NAME in exts
        if wrong := purpose_problem(leaf, self._purpose, exts, require_eku=rules.require_eku):
            failures.append(wrong)
        if self._key_usage and (wrong := key_usage_problem(leaf, self._key_usage, exts)):
            failures.append(wrong)
        names, source = fqdn_names(leaf, cn_fallback=rules.cn_fallback, exts=exts)
        if (has_san or not names) and (broken := san_problem(leaf, exts)):
            failures.append(broken)
        addresses = san_ip_names(exts) if has_san else ()
        fqdn = names[0] if names else (str(addresses[0]) if addresses else None)
        wanted: str | IPName | None = None
        if self._fqdns is not None:
            matched_ip = match_ip(addresses, self._ip_names) if self._ip_names else None
            matched = match_fqdn(names, self._fqdns, allow_wildcard=self._allow_wildcard)
            if source == "cn" and len(names) > 1:
                # The CN is a fallback for certificates without a SAN; with two CNs it is
                # ambiguous which one the CA vouched for, so neither is accepted.
                failures.append(
                    ValidationFailure(
                        FailureCode.FQDN_MISMATCH,
                        f"the subject carries {len(names)} CNs ({', '.join(names)}); exactly "
                        "one is needed when the FQDN comes from the CN",
                        subject_of(leaf),
                    )
                )
            elif matched_ip is not None:
                fqdn, source, wanted = str(matched_ip), "san", matched_ip
            elif matched is not None:
                fqdn = wanted = matched
            else:
                failures.append(self._fqdn_failure(leaf, names, addresses, source))
        if self._required_policies:
            missing = missing_policies(leaf, self._required_policies, exts)
            if missing:
                listed = ", ".join(sorted(o.dotted_string for o in missing))
                failures.append(
                    ValidationFailure(
                        FailureCode.POLICY_MISSING,
                        f"the certificate does not assert the required policy {listed}",
                        subject_of(leaf),
                    )
                )
        server_name = None
        if self._purpose is Purpose.SERVER and has_san:
            server_name = self._server_name(wanted, names, addresses)
        return _LeafFacts(failures, fqdn, source, server_name)

    def _configured_for(self, presented: str) -> str:
        """The configured FQDN a presented name (perhaps a wildcard) was matched to."""
        norm = presented.strip().rstrip(".").lower()
        if norm in self._dns_names or not norm.startswith("*."):
            return norm
        suffix = norm[1:]
        return next((w for w in sorted(self._dns_names) if w.endswith(suffix)), norm)

    def _server_name(
        self, wanted: str | IPName | None, names: Sequence[str], addresses: Sequence[IPName]
    ) -> x509.DNSName | x509.IPAddress | None:
        """What the server verifier checks the SAN against.

        The configured name that matched; else the first configured one (the verifier
        then refuses, as spinepki's own name check did); without configured names
        (``unsafe_skip_fqdn_check``) the certificate's own first name, so the server
        verifier's other rules still apply.
        """
        if wanted is None and self._fqdns is not None:
            if self._dns_names:
                wanted = sorted(self._dns_names)[0]
            elif self._ip_names:
                wanted = sorted(self._ip_names, key=str)[0]
        if wanted is None:
            if names and not names[0].startswith("*"):
                wanted = names[0]
            elif addresses:
                wanted = addresses[0]
            else:
                return None
        if isinstance(wanted, str):
            # A matched wildcard stands for the configured name it matched.
            name = self._configured_for(wanted) if self._fqdns is not None else wanted
            try:
                return x509.DNSName(name.strip().rstrip(".").lower())
            except ValueError:
                return None
        return x509.IPAddress(wanted)

    def _fqdn_failure(
        self,
        leaf: x509.Certificate,
        names: Sequence[str],
        addresses: Sequence[IPName],
        source: str | None,
    ) -> ValidationFailure:
        expected = ", ".join(sorted([*(self._fqdns or ()), *map(str, self._ip_names)]))
        presented = [*names, *map(str, addresses)]
        if not presented:
            where = "no subjectAltName dNSName" + (
                " and no subject CN"
                if self._rules.cn_fallback
                else " (the strict and general profiles do not read the CN)"
            )
            message = f"the certificate carries {where}; expected {expected}"
        else:
            place = "subjectAltName" if source == "san" else "subject CN"
            message = f"{place} {', '.join(presented)} is not an accepted name ({expected})"
        return ValidationFailure(FailureCode.FQDN_MISMATCH, message, subject_of(leaf))

    def _explain(
        self,
        leaf: x509.Certificate,
        paths: Pools,
        at: dt.datetime,
        message: str,
        server_name: x509.DNSName | x509.IPAddress | None,
        failures: list[ValidationFailure],
    ) -> tuple[x509.Certificate, ...]:
        """Turn cryptography's one message into precise failures; return the path found."""
        candidate = paths.candidate()
        path = candidate.certificates
        last = len(path) - 1
        for index, cert in enumerate(path):
            if index and (stale := validity_failure(cert, at)):
                failures.append(stale)
            if weak := key_floor(cert):
                failures.append(weak)
            is_anchor = candidate.reached_anchor and index == last
            if not is_anchor and (weak := signature_floor(cert)):
                failures.append(weak)
        codes = {f.code for f in failures}
        if candidate.too_long or len(path) - 2 > self._max_depth:
            shown = "more than" if candidate.too_long else f"{len(path) - 2}"
            failures.append(
                ValidationFailure(
                    FailureCode.CHAIN_TOO_LONG,
                    f"the path has {shown} intermediate CAs; at most {self._max_depth} allowed",
                    subject_of(leaf),
                )
            )
            return path
        if not candidate.reached_anchor:
            failures.append(
                ValidationFailure(
                    FailureCode.UNTRUSTED,
                    f"no path to a trusted root: {candidate.problem}",
                    subject_of(path[-1]),
                )
            )
            return path
        if codes & _ALGORITHM_CODES:
            return path  # cryptography refuses these too; nothing more to learn
        if not message:
            # The verifier was never given this path (a parse failure dropped it).
            message = "no path the verifier accepts"
        if codes & _TIME_CODES:
            # Would the path hold at a time when every certificate on it is valid? Only a
            # failure *then* is a further problem (a CA that is not a CA, a bad key usage).
            start = max(c.not_valid_before_utc for c in path)
            end = min(c.not_valid_after_utc for c in path)
            if start > end:
                return path
            try:
                return self._verify(leaf, list(path[1:-1]), start, server_name)
            except VerificationError as exc:
                message = str(exc)
        code = classify_verifier_error(message)
        if code not in codes:
            failures.append(
                ValidationFailure(
                    code,
                    f"the certificate path is not valid: {clean_verifier_message(message)}",
                    subject_of(leaf),
                )
            )
        return path

    # (revocation and caching below)

    def _check_revocation(
        self,
        chain: tuple[x509.Certificate, ...],
        at: dt.datetime,
        failures: list[ValidationFailure],
    ) -> tuple[RevocationResult | None, dt.datetime | None]:
        """Revocation of the leaf and, unless leaf-only, of every Sub CA on the path, and
        the earliest ``valid_until`` of the Sub CAs' answers (a cached result must not
        outlive any evidence it rests on).

        One time budget (the checker's ``check_timeout``) covers the whole validation:
        the leaf is asked first and may use all of it; the Sub CA gets what is left, and
        with nothing left it is judged from cached or supplied evidence only. Its status
        is judged like the leaf's: UNKNOWN fails unless the mode is soft-fail, since
        blocking the root's CRL must not hide a revoked Sub CA.
        """
        if not self._revocation_enabled or len(chain) < 2:
            return None, None
        # The common case: every answer is already at hand and GOOD, so nothing is fetched
        # and there is no time budget to share (the path's Sub CAs are asked as below).
        # (Not for a checker whose check() is its own: a wrapper that forwards the rest to a
        # RevocationChecker; cached() itself refuses for a subclass, instance or patch.)
        cached = self._revocation.cached
        leaf_outcome = cached(chain[0], chain[1], at=at) if self._at_hand else None
        if leaf_outcome is not None and leaf_outcome.status is RevocationStatus.GOOD:
            if not self._check_ca_revocation:
                return leaf_outcome, None
            until: dt.datetime | None = None
            for index in range(1, len(chain) - 1):
                known = cached(chain[index], chain[index + 1], at=at)
                if known is None or known.status is not RevocationStatus.GOOD:
                    break
                bound = known.valid_until
                if bound is not None and (until is None or bound < until):
                    until = bound
            else:
                return leaf_outcome, until
        with self._revocation.budget():
            return self._check_revocation_within_budget(chain, at, failures)

    def _check_revocation_within_budget(
        self,
        chain: tuple[x509.Certificate, ...],
        at: dt.datetime,
        failures: list[ValidationFailure],
    ) -> tuple[RevocationResult | None, dt.datetime | None]:
        leaf_outcome = self._ask(chain[0], chain[1], at)
        if leaf_outcome is None:
            failures.append(_checker_failed(chain[0]))
            return None, None
        until: dt.datetime | None = None
        if leaf_outcome.status is not RevocationStatus.GOOD:
            self._judge(chain[0], leaf_outcome, failures, leaf=True)
        if self._check_ca_revocation:
            # Every certificate below the trust anchor (RFC 5280 6.1.3(a)(3)); the anchor
            # itself is trusted by configuration, not by evidence.
            softened: list[str] = []
            for index in range(1, len(chain) - 1):
                outcome = self._ask(chain[index], chain[index + 1], at)
                if outcome is None:
                    failures.append(_checker_failed(chain[index]))
                    continue
                if outcome.status is not RevocationStatus.GOOD:
                    self._judge(chain[index], outcome, failures, leaf=False)
                bound = outcome.valid_until
                if bound is not None and (until is None or bound < until):
                    until = bound
                if outcome.soft_failed:
                    whose = f"issuing CA {subject_of(chain[index])}: "
                    softened.extend(whose + p for p in outcome.problems or ("status unknown",))
            if softened:
                # An unknown Sub CA accepted by soft-fail is reported like an unknown leaf:
                # the result's revocation is marked soft-failed, with the CA's problems,
                # so the gate's soft-fail warning and audit see it and the result is not
                # cached (a GOOD leaf must not hide it). A REVOKED leaf stays as it is.
                leaf_outcome = replace(
                    leaf_outcome,
                    soft_failed=leaf_outcome.status is not RevocationStatus.REVOKED,
                    problems=leaf_outcome.problems + tuple(softened),
                )
        return leaf_outcome, until

    def _ask(
        self, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime
    ) -> RevocationResult | None:
        try:
            return self._revocation.check(cert, issuer, at=at)
        except RevocationError:
            # The checker promises not to raise for evidence problems; if one does, the
            # status is simply unknown, which fails the validation.
            return None

    def _judge(
        self,
        cert: x509.Certificate,
        outcome: RevocationResult,
        failures: list[ValidationFailure],
        *,
        leaf: bool,
    ) -> None:
        status = outcome.status
        if status is RevocationStatus.REVOKED:
            when = outcome.revoked_at.isoformat() if outcome.revoked_at else "an unknown time"
            reason = outcome.reason.name if outcome.reason is not None else "unspecified"
            failures.append(
                ValidationFailure(
                    FailureCode.REVOKED,
                    f"revoked at {when} (reason: {reason})",
                    subject_of(cert),
                )
            )
        elif status is not RevocationStatus.GOOD and not outcome.soft_failed:
            # One line an operator can act on: the mode that made "unknown" a failure,
            # then per source the URL and the short cause (the fetcher keeps it short).
            why = "; ".join(outcome.problems) or "no revocation evidence"
            whose = "" if leaf else "the issuing CA's "
            failures.append(
                ValidationFailure(
                    FailureCode.REVOCATION_UNKNOWN,
                    f"{whose}revocation status unknown ({self._revocation.mode.value}): {why}",
                    subject_of(cert),
                )
            )

    def _remember(
        self,
        cache: ResultCache,
        key: Hashable,
        inter_key: Hashable,
        result: ValidationResult,
        at: dt.datetime,
        generation: int,
        ca_until: dt.datetime | None,
    ) -> None:
        outcome = result.revocation
        if outcome is not None and outcome.soft_failed:
            # Accepted without evidence: do not let one soft failure stand for a TTL; the
            # next connection asks again (the revocation layer bounds the retries).
            return
        until = min(c.not_valid_after_utc for c in result.chain)
        until = min(until, shift(at, self._ttl))
        if outcome is not None and outcome.valid_until is not None:
            until = min(until, outcome.valid_until)
        if ca_until is not None:
            until = min(until, ca_until)  # the Sub CAs' evidence bounds it too
        cached = replace(result, from_cache=True)
        cache.put(key, inter_key, cached, valid_from=at, valid_until=until, generation=generation)
