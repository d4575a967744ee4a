"""ClientCertValidator: cryptography's path validation plus the Spine checks around it."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.x509.verification import (
    ClientVerifier,
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from spinepki._loading import MALFORMED_INPUT, CertificateSource, load_certificate_chain
from spinepki._validation._cache import ResultCache
from spinepki._validation._checks import (
    build_candidate_path,
    classify_verifier_error,
    clean_verifier_message,
    extension_values,
    fqdn_names,
    key_floor,
    match_fqdn,
    missing_policies,
    normalise_fqdns,
    parse_fully,
    purpose_problem,
    signature_floor,
    subject_of,
    validity_failure,
)
from spinepki._validation._model import (
    FailureCode,
    Profile,
    Purpose,
    ValidationFailure,
    ValidationResult,
)
from spinepki.errors import CertificateLoadError, ConfigurationError, RevocationError
from spinepki.revocation import (
    RevocationChecker,
    RevocationMode,
    RevocationResult,
    RevocationStatus,
)
from spinepki.trust import TrustStore

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_CACHE_TTL",
    "DEFAULT_MAX_CHAIN_DEPTH",
    "ClientCertValidator",
]

#: Spine paths are Root -> Sub CA -> endpoint (one intermediate; G2 Sub CAs say pathlen 1).
#: Three leaves room for a cross-certificate without letting a hostile chain run long.
DEFAULT_MAX_CHAIN_DEPTH = 3
#: How long a validated result may be reused at most, whatever the evidence says.
DEFAULT_CACHE_TTL = dt.timedelta(minutes=5)
#: How many distinct leaves the cache remembers (the SSP presents very few).
DEFAULT_CACHE_SIZE = 1024
_MAX_DEPTH_LIMIT = 16
#: Intermediates whose revocation verdicts are remembered (Spine has two per environment).
_CA_VERDICTS = 64
_TIME_CODES = frozenset({FailureCode.EXPIRED, FailureCode.NOT_YET_VALID})
_ALGORITHM_CODES = frozenset(
    {FailureCode.WEAK_KEY, FailureCode.WEAK_SIGNATURE, FailureCode.MALFORMED}
)


@dataclass(frozen=True, slots=True)
class _Rules:
    """What a profile means in practice."""

    ca_policy: ExtensionPolicy
    """cryptography's extension policy for CA certificates."""
    ee_policy: ExtensionPolicy
    """cryptography's extension policy for the leaf."""
    cn_fallback: bool
    """Read the FQDN from the subject CN when the leaf has no subjectAltName."""
    require_eku: bool = True
    """Require the purpose's EKU on the leaf (off only for the PKITS suite, whose leaves
    carry no EKU)."""


def _ee_policy(*, san_optional: bool) -> ExtensionPolicy:
    policy = ExtensionPolicy.webpki_defaults_ee()
    if san_optional:
        # Real Spine endpoint certificates have no subjectAltName; the FQDN is in the CN.
        policy = policy.may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    # The EKU is checked by spinepki (purpose_problem) so a wrong EKU gets its own code
    # (WRONG_PURPOSE) and the server purpose can use the client verifier, which does not
    # insist on a SAN the way cryptography's server verifier does.
    return policy.may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)


_RULES = {
    Profile.SPINE: _Rules(
        # Spine CA certificates (G1 roots and Sub CAs) mark basicConstraints non-critical.
        # cryptography still enforces cA=TRUE and pathLenConstraint itself.
        ca_policy=ExtensionPolicy.webpki_defaults_ca().require_present(
            x509.BasicConstraints, Criticality.AGNOSTIC, None
        ),
        ee_policy=_ee_policy(san_optional=True),
        cn_fallback=True,
    ),
    Profile.STRICT: _Rules(
        ca_policy=ExtensionPolicy.webpki_defaults_ca(),
        ee_policy=_ee_policy(san_optional=False),
        cn_fallback=False,
    ),
}


class _PeerSocket(Protocol):
    def getpeercert(self, binary_form: bool = ...) -> Any: ...


def _resolve_at(at: dt.datetime | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    if at.tzinfo is None or at.utcoffset() is None:
        raise ConfigurationError(
            "the validation time must be timezone-aware (e.g. datetime.now(UTC))", source="at"
        )
    return at


def _load_intermediates(
    intermediates: Iterable[CertificateSource] | CertificateSource,
) -> list[x509.Certificate]:
    if isinstance(intermediates, x509.Certificate | bytes | str | Path):
        return load_certificate_chain(intermediates)
    loaded: list[x509.Certificate] = []
    for item in intermediates:
        loaded.extend(load_certificate_chain(item))
    return loaded


class ClientCertValidator:
    """Validates a client (or server) certificate against Spine trust, time, name and revocation.

    One instance per configuration; it is immutable, thread-safe, and caches valid
    results (see :meth:`validate`). Path building, signatures, basic constraints, path
    length and CA key usage are cryptography's verifier; spinepki adds the per-certificate
    validity, key/algorithm floor, purpose, FQDN, policy and revocation checks, and turns
    everything into stable :class:`FailureCode` values.

    Args:
        trust: the trust anchors (roots) and known intermediates (Sub CAs).
        ssp_fqdns: the FQDN(s) the certificate must carry (case-insensitive, exact).
        revocation: a :class:`~spinepki.revocation.RevocationChecker`; default hard-fail
            with network fetching from the certificate's CRL distribution point.
        purpose: ``Purpose.CLIENT`` (clientAuth EKU, the default) or ``Purpose.SERVER``.
        profile: ``Profile.SPINE`` (default) or ``Profile.STRICT``.
        max_chain_depth: most intermediate CAs allowed between leaf and root.
        required_policies: certificate policy OIDs that the leaf must all assert.
        allow_wildcard: accept a wildcard (``*.example.nhs.uk``) in the certificate.
        check_ca_revocation: also check intermediates against their issuer's evidence
            (a REVOKED Sub CA fails; UNKNOWN for a Sub CA is not a failure).
        cache_ttl: longest reuse of a valid result (``timedelta`` or seconds; 0 disables).
        cache_size: most results kept (least recently used evicted).
        unsafe_skip_fqdn_check: do not compare names (for ``spinepki cert check`` without
            ``--fqdn``, and suites like PKITS). Never for the SSP connection.

    Raises:
        ConfigurationError: no FQDN configured, a depth or cache setting out of range.
    """

    __slots__ = (
        "_allow_wildcard",
        "_ca_generation",
        "_ca_lock",
        "_ca_verdicts",
        "_cache",
        "_check_ca_revocation",
        "_fqdns",
        "_max_depth",
        "_purpose",
        "_required_policies",
        "_revocation",
        "_revocation_enabled",
        "_rules",
        "_store",
        "_trust",
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
        max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
        required_policies: Iterable[x509.ObjectIdentifier | str] = (),
        allow_wildcard: bool = False,
        check_ca_revocation: bool = True,
        cache_ttl: dt.timedelta | float = DEFAULT_CACHE_TTL,
        cache_size: int = DEFAULT_CACHE_SIZE,
        unsafe_skip_fqdn_check: bool = False,
    ) -> None:
        fqdns = normalise_fqdns([ssp_fqdns] if isinstance(ssp_fqdns, str) else ssp_fqdns)
        if not fqdns and not unsafe_skip_fqdn_check:
            raise ConfigurationError(
                "configure the SSP FQDN(s) to accept (ssp_fqdns=...), or pass "
                "unsafe_skip_fqdn_check=True where names genuinely do not matter",
                source="ssp_fqdns",
            )
        if not 0 <= max_chain_depth <= _MAX_DEPTH_LIMIT:
            raise ConfigurationError(
                f"max_chain_depth must be between 0 and {_MAX_DEPTH_LIMIT}",
                source="max_chain_depth",
            )
        ttl = cache_ttl if isinstance(cache_ttl, dt.timedelta) else dt.timedelta(seconds=cache_ttl)
        if ttl < dt.timedelta(0) or cache_size < 0:
            raise ConfigurationError(
                "cache_ttl and cache_size must not be negative", source="cache_ttl"
            )
        self._trust = trust
        self._store = Store(list(trust.anchors))
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
        self._fqdns = None if unsafe_skip_fqdn_check else fqdns
        self._revocation = revocation if revocation is not None else RevocationChecker()
        self._revocation_enabled = self._revocation.mode is not RevocationMode.DISABLED
        self._purpose = Purpose(purpose)
        self._rules = _RULES[Profile(profile)]
        self._max_depth = max_chain_depth
        self._required_policies = frozenset(
            p if isinstance(p, x509.ObjectIdentifier) else x509.ObjectIdentifier(p)
            for p in required_policies
        )
        self._allow_wildcard = allow_wildcard
        self._check_ca_revocation = check_ca_revocation
        self._ttl = ttl
        self._cache = ResultCache(cache_size) if ttl and cache_size else None
        self._ca_lock = threading.Lock()
        self._ca_generation = self._revocation.generation
        self._ca_verdicts: dict[
            tuple[int, int],
            tuple[x509.Certificate, x509.Certificate, RevocationResult, dt.datetime, dt.datetime],
        ] = {}

    # -- public API ------------------------------------------------------------------

    @property
    def trust(self) -> TrustStore:
        """The trust store validation is anchored in."""
        return self._trust

    @property
    def revocation(self) -> RevocationChecker:
        """The revocation checker in use."""
        return self._revocation

    def validate(
        self,
        leaf: CertificateSource,
        intermediates: Iterable[CertificateSource] | CertificateSource = (),
        *,
        at: dt.datetime | None = None,
    ) -> ValidationResult:
        """Validate ``leaf`` (with the chain the peer sent) at ``at`` (default: now).

        A PEM bundle given as ``leaf`` is read leaf first, the rest as intermediates.
        A valid result is cached for the same leaf and intermediates until the earliest of
        the notAfter on the path, the revocation evidence's nextUpdate and the TTL; a call
        whose ``at`` falls in that window returns it (``from_cache=True``).

        Raises:
            CertificateLoadError: an input is not a certificate at all.
            ConfigurationError: ``at`` is not timezone-aware.
        """
        when = _resolve_at(at)
        inter_key: Hashable = (
            intermediates
            if isinstance(intermediates, x509.Certificate | bytes | str | Path)
            else tuple(intermediates)
        )
        cache = self._cache
        # Read before validating: evidence that changes meanwhile makes the entry stale.
        generation = self._revocation.generation
        key: Hashable | None = leaf if isinstance(leaf, bytes | x509.Certificate) else None
        if cache is not None and key is not None:
            hit = cache.get(key, inter_key, when, generation)
            if hit is not None:
                return hit
        certs = load_certificate_chain(leaf)
        leaf_cert = certs[0]
        inter_certs = certs[1:] + _load_intermediates(
            inter_key if isinstance(inter_key, tuple) else intermediates
        )
        if cache is not None and key is None:
            key = leaf_cert
            hit = cache.get(key, inter_key, when, generation)
            if hit is not None:
                return hit
        result = self._validate(leaf_cert, inter_certs, when)
        if cache is not None and key is not None and result.valid:
            self._remember(cache, key, inter_key, result, when, generation)
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
        """Forget every cached result and Sub CA verdict (e.g. after replacing CRLs)."""
        if self._cache is not None:
            self._cache.clear()
        with self._ca_lock:
            self._ca_verdicts.clear()

    # -- the work --------------------------------------------------------------------

    def _with_rules(self, *, require_eku: bool) -> ClientCertValidator:
        """A copy with the leaf EKU requirement changed (PKITS leaves carry no EKU)."""
        clone = object.__new__(ClientCertValidator)
        for name in ClientCertValidator.__slots__:
            setattr(clone, name, getattr(self, name))
        clone._rules = replace(self._rules, require_eku=require_eku)
        clone._cache = ResultCache(self._cache._size) if self._cache is not None else None
        clone._ca_lock = threading.Lock()
        clone._ca_verdicts = {}
        return clone

    def _verifier(self, at: dt.datetime) -> ClientVerifier:
        # Building a verifier costs about a microsecond, so one is built per validation
        # time rather than shared across times.
        return (
            PolicyBuilder()
            .store(self._store)
            .time(at)
            .max_chain_depth(self._max_depth)
            .extension_policies(ca_policy=self._rules.ca_policy, ee_policy=self._rules.ee_policy)
            .build_client_verifier()
        )

    def _validate(
        self, leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], at: dt.datetime
    ) -> ValidationResult:
        try:
            parse_fully(leaf)
            failures, fqdn, source = self._leaf_checks(leaf, at)
        except MALFORMED_INPUT as exc:
            # cryptography parses extensions lazily: a duplicate or undecodable extension
            # surfaces here, on a certificate that otherwise loaded.
            failure = ValidationFailure(
                FailureCode.MALFORMED, f"malformed certificate: {exc}", subject_of(leaf)
            )
            return ValidationResult(False, (failure,), (leaf,), None, None, None, at)
        # The trust store's Sub CAs join the pool (Python 3.11 servers never see the chain
        # the peer sent); one the caller passed as the same object is not added twice,
        # since each duplicate costs the verifier a signature check.
        # A malformed intermediate cannot be on any path; drop it rather than let it
        # raise inside path building.
        pool = [c for c in intermediates if id(c) in self._trusted_floors or _parses(c)]
        pool.extend(c for c in self._trust.intermediates if not any(c is x for x in intermediates))
        try:
            chain = tuple(self._verifier(at).verify(leaf, pool).chain)
        except VerificationError as exc:
            chain = self._explain(leaf, pool, at, str(exc), failures)
            return ValidationResult(False, tuple(failures), chain, fqdn, source, None, at)
        # Defence in depth: cryptography already holds this floor, but spinepki's promise
        # should not depend on another library's defaults. The anchor's self-signature is
        # trusted by configuration (the SHA-1-signed G1 LIVE root), so it is not checked.
        last = len(chain) - 1
        for index, cert in enumerate(chain):
            # The trust store keeps its certificates alive, so an id found here cannot
            # belong to any other live object: the id is the identity.
            known = self._trusted_floors.get(id(cert))
            if known is not None:
                failures.extend(known)
                continue
            if weak := key_floor(cert):
                failures.append(weak)
            if index != last and (weak := signature_floor(cert)):
                failures.append(weak)
        outcome = self._check_revocation(chain, at, failures)
        return ValidationResult(not failures, tuple(failures), chain, fqdn, source, outcome, at)

    def _leaf_checks(
        self, leaf: x509.Certificate, at: dt.datetime
    ) -> tuple[list[ValidationFailure], str | None, str | None]:
        failures: list[ValidationFailure] = []
        exts = extension_values(leaf)
        if stale := validity_failure(leaf, at):
            failures.append(stale)
        if self._rules.require_eku and (wrong := purpose_problem(leaf, self._purpose, exts)):
            failures.append(wrong)
        names, source = fqdn_names(leaf, cn_fallback=self._rules.cn_fallback, exts=exts)
        fqdn = names[0] if names else None
        if self._fqdns is not None:
            matched = match_fqdn(names, self._fqdns, allow_wildcard=self._allow_wildcard)
            if matched is not None:
                fqdn = matched
            else:
                failures.append(self._fqdn_failure(leaf, names, source))
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
        return failures, fqdn, source

    def _fqdn_failure(
        self, leaf: x509.Certificate, names: Sequence[str], source: str | None
    ) -> ValidationFailure:
        expected = ", ".join(sorted(self._fqdns or ()))
        if not names:
            where = "no subjectAltName dNSName" + (
                " and no subject CN"
                if self._rules.cn_fallback
                else " (the strict profile does not read the CN)"
            )
            message = f"the certificate carries {where}; expected {expected}"
        else:
            place = "subjectAltName" if source == "san" else "subject CN"
            message = f"{place} {', '.join(names)} is not an accepted FQDN ({expected})"
        return ValidationFailure(FailureCode.FQDN_MISMATCH, message, subject_of(leaf))

    def _explain(
        self,
        leaf: x509.Certificate,
        pool: Sequence[x509.Certificate],
        at: dt.datetime,
        message: str,
        failures: list[ValidationFailure],
    ) -> tuple[x509.Certificate, ...]:
        """Turn cryptography's one message into precise failures; return the path found."""
        candidate = build_candidate_path(leaf, pool, self._trust.anchors)
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
        if not candidate.reached_anchor:
            failures.append(
                ValidationFailure(
                    FailureCode.UNTRUSTED,
                    f"no path to a trusted root: {candidate.problem}",
                    subject_of(path[-1]),
                )
            )
            return path
        if len(path) - 2 > self._max_depth:
            failures.append(
                ValidationFailure(
                    FailureCode.CHAIN_TOO_LONG,
                    f"the path has {len(path) - 2} intermediate CAs; at most "
                    f"{self._max_depth} allowed",
                    subject_of(leaf),
                )
            )
            return path
        if codes & _ALGORITHM_CODES:
            return path  # cryptography refuses these too; nothing more to learn
        if codes & _TIME_CODES:
            # Would the path hold at a time when every certificate on it is valid? Only a
            # failure *then* is a further problem (a CA that is not a CA, a bad key usage).
            start = max(c.not_valid_before_utc for c in path)
            end = min(c.not_valid_after_utc for c in path)
            if start > end:
                return path
            try:
                return tuple(self._verifier(start).verify(leaf, list(pool)).chain)
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

    def _check_revocation(
        self,
        chain: tuple[x509.Certificate, ...],
        at: dt.datetime,
        failures: list[ValidationFailure],
    ) -> RevocationResult | None:
        """Leaf revocation (and intermediates', when evidence for them is obtainable).

        One time budget (the checker's ``check_timeout``) covers the whole validation:
        the leaf is asked first and may use all of it; the Sub CA gets what is left, and
        with nothing left it is judged from cached or supplied evidence only (its UNKNOWN
        is not a failure, so hard-fail still rests on the leaf's evidence).
        """
        if not self._revocation_enabled or len(chain) < 2:
            return None
        generation = self._revocation.generation
        if generation != self._ca_generation:
            # Evidence changed (a refetch revoked something, or a reload): Sub CA
            # verdicts remembered from before are not to be trusted any more.
            with self._ca_lock:
                self._ca_verdicts.clear()
                self._ca_generation = generation
        with self._revocation.budget():
            return self._check_revocation_within_budget(chain, at, failures)

    def _check_revocation_within_budget(
        self,
        chain: tuple[x509.Certificate, ...],
        at: dt.datetime,
        failures: list[ValidationFailure],
    ) -> RevocationResult | None:
        leaf_outcome = self._ask(chain[0], chain[1], at)
        if leaf_outcome is None:
            failures.append(
                ValidationFailure(
                    FailureCode.REVOCATION_UNKNOWN,
                    "revocation status could not be determined (the checker failed)",
                    subject_of(chain[0]),
                )
            )
            return None
        self._judge(chain[0], leaf_outcome, failures, leaf=True)
        if self._check_ca_revocation:
            for index in range(1, len(chain) - 1):
                outcome = self._ask_about_ca(chain[index], chain[index + 1], at)
                if outcome is not None:
                    self._judge(chain[index], outcome, failures, leaf=False)
        return leaf_outcome

    def _ask_about_ca(
        self, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime
    ) -> RevocationResult | None:
        """An intermediate's status, remembered until its evidence's nextUpdate.

        Every leaf shares the same one or two Sub CAs, so their GOOD verdicts from the
        root's CRL are kept (bounded by nextUpdate and the TTL, like results) instead of
        asking the revocation layer again on each validation (at most DEFAULT_CACHE_TTL of
        validation time, whatever ``cache_ttl`` says).
        """
        # Keyed by identity: cryptography returns the very objects it was given, and the
        # Sub CA and root normally come from the (long-lived) trust store, so a lookup
        # costs no hashing of DER. The entry holds the objects, so an id is never reused.
        key = (id(cert), id(issuer))
        with self._ca_lock:
            known = self._ca_verdicts.get(key)
        if (
            known is not None
            and known[0] is cert
            and known[1] is issuer
            and known[3] <= at < known[4]
        ):
            return known[2]
        outcome = self._ask(cert, issuer, at)
        if (
            outcome is not None
            and outcome.status is RevocationStatus.GOOD
            and outcome.valid_until is not None
        ):
            until = min(outcome.valid_until, at + DEFAULT_CACHE_TTL)
            with self._ca_lock:
                if len(self._ca_verdicts) >= _CA_VERDICTS:
                    self._ca_verdicts.clear()
                self._ca_verdicts[key] = (cert, issuer, outcome, at, until)
        return outcome

    def _ask(
        self, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime
    ) -> RevocationResult | None:
        try:
            return self._revocation.check(cert, issuer, at=at)
        except RevocationError:
            # The checker promises not to raise for evidence problems; if one does, the
            # status is simply unknown (hard-fail for the leaf, ignored for a Sub CA).
            return None

    @staticmethod
    def _judge(
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
        elif status is not RevocationStatus.GOOD and leaf and not outcome.soft_failed:
            why = "; ".join(outcome.problems) or "no revocation evidence"
            failures.append(
                ValidationFailure(
                    FailureCode.REVOCATION_UNKNOWN,
                    f"revocation status unknown: {why}",
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
    ) -> None:
        outcome = result.revocation
        if outcome is not None and outcome.soft_failed:
            # Accepted without evidence: do not let one soft failure stand for a TTL; the
            # next connection asks again (the revocation layer bounds the retries).
            return
        until = min(c.not_valid_after_utc for c in result.chain)
        until = min(until, at + self._ttl)
        if outcome is not None and outcome.valid_until is not None:
            until = min(until, outcome.valid_until)
        cached = replace(result, from_cache=True)
        cache.put(key, inter_key, cached, valid_from=at, valid_until=until, generation=generation)


def _parses(cert: x509.Certificate) -> bool:
    try:
        parse_fully(cert)
    except MALFORMED_INPUT:
        return False
    return True
