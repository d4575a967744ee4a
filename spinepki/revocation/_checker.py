"""RevocationChecker: which evidence to look for, in what order, and what it means."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from spinepki.errors import ConfigurationError, FetchError, SpinePKIError
from spinepki.revocation._crl import VerifiedCRL, load_crl, verify_crl
from spinepki.revocation._ocsp import (
    CertID,
    OCSPVerdict,
    build_ocsp_request,
    parse_ocsp_response,
    verify_ocsp_response,
)
from spinepki.revocation._types import (
    RevocationMode,
    RevocationResult,
    RevocationStatus,
)
from spinepki.revocation.fetchers import Fetcher, RequestsFetcher

__all__ = ["RevocationChecker"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_DISABLED_PROBLEM = "revocation checking is disabled (unsafe_allow_disabled)"


class _LRU(Generic[K, V]):
    """A small thread-safe LRU map bounded by entry count and total weight."""

    def __init__(self, max_entries: int, max_weight: int | None = None) -> None:
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._max_entries = max_entries
        self._max_weight = max_weight
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            self._data.move_to_end(key)
            return item[0]

    def put(self, key: K, value: V, weight: int = 1) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._weight -= old[1]
            self._data[key] = (value, weight)
            self._weight += weight
            while len(self._data) > self._max_entries or (
                self._max_weight is not None
                and self._weight > self._max_weight
                and len(self._data) > 1
            ):
                _, (_, dropped) = self._data.popitem(last=False)
                self._weight -= dropped

    def pop(self, key: K) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._weight -= old[1]

    def snapshot(self) -> list[K]:
        with self._lock:
            return list(self._data)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


@dataclass(frozen=True, slots=True)
class _Failure:
    """A remembered fetch failure, so a dead responder is not retried on every check."""

    problem: str
    retry_after: datetime


def _http_urls(names: Iterable[x509.GeneralName]) -> list[str]:
    return [
        n.value
        for n in names
        if isinstance(n, x509.UniformResourceIdentifier)
        and n.value.lower().startswith(("http://", "https://"))
    ]


def _crl_urls(cert: x509.Certificate) -> tuple[list[str], bool]:
    """HTTP(S) CRL URLs of ``cert``, and whether it names any distribution point at all."""
    try:
        cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return [], False
    urls: list[str] = []
    for point in cdp:
        # A point naming a separate cRLIssuer is an indirect CRL, which is not supported.
        if point.crl_issuer is None:
            urls.extend(u for u in _http_urls(point.full_name or ()) if u not in urls)
    return urls, True


def _ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return _http_urls(
        d.access_location for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP
    )


# The same issuer object (the Sub CA) is passed on every check; hashing it each time was a
# measurable share of a cached-CRL lookup. Keyed by id() with the object kept alive, so an
# id cannot be reused while its entry exists; bounded, cleared when full.
_FINGERPRINTS: dict[int, tuple[x509.Certificate, bytes]] = {}
_FINGERPRINTS_MAX = 256


def _fingerprint(cert: x509.Certificate) -> bytes:
    hit = _FINGERPRINTS.get(id(cert))
    if hit is not None and hit[0] is cert:
        return hit[1]
    fp = cert.fingerprint(hashes.SHA256())
    if len(_FINGERPRINTS) >= _FINGERPRINTS_MAX:
        _FINGERPRINTS.clear()
    _FINGERPRINTS[id(cert)] = (cert, fp)
    return fp


# x509.Name equality is a Python-level walk over every attribute, and on a cached-CRL
# check it was the largest cost after the signature work. The names compared are the same
# objects again and again (cryptography caches a certificate's names, and the verifier
# returns the caller's certificate objects), so the answer is memoised by identity, with
# the objects kept alive so an id cannot be reused while its entry exists.
_NAME_MATCHES: dict[tuple[int, int], tuple[x509.Name, x509.Name, bool]] = {}
_NAME_MATCHES_MAX = 1024


def _same_name(a: x509.Name, b: x509.Name) -> bool:
    key = (id(a), id(b))
    hit = _NAME_MATCHES.get(key)
    if hit is not None and hit[0] is a and hit[1] is b:
        return hit[2]
    same = a == b
    if len(_NAME_MATCHES) >= _NAME_MATCHES_MAX:
        _NAME_MATCHES.clear()
    _NAME_MATCHES[key] = (a, b, same)
    return same


def _older(fresh: VerifiedCRL, cached: VerifiedCRL | None) -> bool:
    """True when ``fresh`` carries a lower CRL number than the cached CRL (a rollback)."""
    return (
        cached is not None
        and cached.number is not None
        and fresh.number is not None
        and fresh.number < cached.number
    )


def _about(response: ocsp.OCSPResponse, cert_id: CertID) -> bool:
    """True when a supplied response is successful and answers for ``cert_id``."""
    return response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL and any(
        cert_id.matches(
            s.issuer_name_hash, s.issuer_key_hash, s.serial_number, s.hash_algorithm.name
        )
        for s in response.responses
    )


def _call(method: Callable[..., bytes], url: str, *args: bytes) -> bytes:
    """Call a fetcher method; anything but a SpinePKIError becomes a FetchError.

    A third-party fetcher that raises something unexpected must not break ``check()``.
    """
    try:
        return method(url, *args)
    except SpinePKIError:
        raise
    except Exception as exc:
        raise FetchError(f"the fetcher failed: {type(exc).__name__}: {exc}", source=url) from exc


def _utc_now() -> datetime:
    return datetime.now(UTC)


_Source = Callable[
    [x509.Certificate, x509.Certificate, datetime, list[str]], RevocationResult | None
]


class RevocationChecker:
    """Decides whether a certificate is revoked, from CRLs and OCSP, under a mode.

    Order of sources, by mode:

    * ``HARD_FAIL`` / ``SOFT_FAIL``: CRL first, then OCSP. Spine's G1 hierarchy publishes
      CRLs and no OCSP, and one CRL fetch answers for every certificate of the CA, so the
      CRL is the cheap and dependable source; OCSP is the fallback when the CRL gives no
      usable answer (unreachable, stale, bad signature).
    * ``PREFER_OCSP``: OCSP first, then the CRL.
    * ``CRL_ONLY`` / ``OCSP_ONLY``: that source alone.
    * ``OFFLINE``: caller-supplied CRLs, then caller-supplied OCSP responses; nothing is
      fetched.
    * ``DISABLED``: nothing; every check is GOOD without evidence (unsafe).

    Within a source, caller-supplied evidence is used before anything is fetched, and a
    cached answer before a new fetch. The first source that yields verified, fresh
    evidence decides; an OCSP "unknown" answer is not evidence, and the next source is
    tried. When none does, the status is UNKNOWN and ``problems`` says why for each
    source tried.

    CRLs are cached per (distribution point URL, issuer) until their nextUpdate, verified
    once per fetch; OCSP answers per certificate until their nextUpdate. Both caches are
    bounded. A failed fetch is not retried for ``failure_backoff`` (of validation time) so
    a dead responder does not cost a timeout per connection. Instances are thread-safe;
    concurrent checks needing the same CRL wait for a single fetch.

    Args:
        mode: the enforcement mode (hard-fail by default).
        fetcher: how to fetch; default a :class:`RequestsFetcher` made on first use.
            Not allowed with ``OFFLINE``.
        crls: caller-supplied CRLs (objects or DER/PEM bytes), matched by issuer name.
        ocsp_responses: caller-supplied DER OCSP responses, matched by certificate ID.
        ocsp_url: an OCSP responder to use instead of the certificates' AIA URLs.
        clock_tolerance: allowed clock skew when comparing thisUpdate/nextUpdate with
            the validation time.
        unsafe_allow_disabled: required to use ``DISABLED``.
        refresh_before: refetch a cached CRL this long before its nextUpdate (on the
            next check, or by :meth:`refresh`); the cached CRL is used meanwhile.
        failure_backoff: how long (of validation time) a failed fetch is remembered.
        crl_cache_size: most CRLs cached.
        crl_cache_bytes: most CRL bytes cached (the newest CRL is always kept).
        ocsp_cache_size: most OCSP answers cached.

    Raises:
        ConfigurationError: DISABLED without the unsafe flag, OFFLINE with a fetcher,
            or a negative duration or cache size.
        CRLParseError / OCSPParseError: supplied evidence that does not parse.
    """

    def __init__(
        self,
        mode: RevocationMode = RevocationMode.HARD_FAIL,
        *,
        fetcher: Fetcher | None = None,
        crls: Iterable[x509.CertificateRevocationList | bytes] = (),
        ocsp_responses: Iterable[bytes] = (),
        ocsp_url: str | None = None,
        clock_tolerance: timedelta = timedelta(minutes=5),
        unsafe_allow_disabled: bool = False,
        refresh_before: timedelta = timedelta(hours=1),
        failure_backoff: timedelta = timedelta(seconds=30),
        crl_cache_size: int = 64,
        crl_cache_bytes: int = 128 * 1024 * 1024,
        ocsp_cache_size: int = 4096,
    ) -> None:
        if not isinstance(mode, RevocationMode):
            raise ConfigurationError(f"unknown revocation mode {mode!r}", source="mode")
        if mode is RevocationMode.DISABLED and not unsafe_allow_disabled:
            raise ConfigurationError(
                "revocation mode DISABLED needs unsafe_allow_disabled=True", source="mode"
            )
        if mode is RevocationMode.OFFLINE and fetcher is not None:
            raise ConfigurationError(
                "OFFLINE mode uses only supplied evidence; do not pass a fetcher",
                source="fetcher",
            )
        for name, value in (
            ("clock_tolerance", clock_tolerance),
            ("refresh_before", refresh_before),
            ("failure_backoff", failure_backoff),
        ):
            if value < timedelta(0):
                raise ConfigurationError("must not be negative", source=name)
        if min(crl_cache_size, crl_cache_bytes, ocsp_cache_size) < 1:
            raise ConfigurationError("cache sizes must be positive", source="crl_cache_size")
        self._mode = mode
        self._fetcher = fetcher
        self._own_fetcher: RequestsFetcher | None = None
        self._ocsp_url = ocsp_url
        self._tolerance = clock_tolerance
        self._refresh_before = refresh_before
        self._failure_backoff = failure_backoff
        self._lock = threading.Lock()
        # Striped locks give single-flight fetches per URL without an unbounded lock map.
        self._fetch_locks = tuple(threading.Lock() for _ in range(32))
        self._supplied_crls: dict[x509.Name, list[x509.CertificateRevocationList]] = {}
        for item in crls:
            crl = load_crl(item)
            self._supplied_crls.setdefault(crl.issuer, []).append(crl)
        self._supplied_ocsp = [
            parse_ocsp_response(item, source=f"supplied OCSP response {i + 1}")
            for i, item in enumerate(ocsp_responses)
        ]
        self._verified_supplied = _LRU[tuple[int, bytes], VerifiedCRL | str](256)
        self._crl_cache = _LRU[tuple[str, bytes], VerifiedCRL](crl_cache_size, crl_cache_bytes)
        self._ocsp_cache = _LRU[tuple[bytes, int], OCSPVerdict](ocsp_cache_size)
        self._failures = _LRU[tuple[str, str], _Failure](1024)
        self._refresher: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def mode(self) -> RevocationMode:
        """The enforcement mode."""
        return self._mode

    # -- the one entry point ------------------------------------------------------

    def check(
        self, cert: x509.Certificate, issuer: x509.Certificate, *, at: datetime
    ) -> RevocationResult:
        """The revocation status of ``cert`` (issued by ``issuer``) at time ``at``.

        Never raises for network or evidence problems: those come back as UNKNOWN with
        ``problems`` (and ``soft_failed`` under SOFT_FAIL). Call it after the chain is
        validated, so the URLs it follows come from CA-signed certificates.

        Raises:
            ConfigurationError: ``at`` is naive (time zones are not guessed).
        """
        if at.tzinfo is None:
            raise ConfigurationError("the validation time must be timezone-aware", source="at")
        if self._mode is RevocationMode.DISABLED:
            return RevocationResult(RevocationStatus.GOOD, None, problems=(_DISABLED_PROBLEM,))
        problems: list[str] = []
        if not _same_name(cert.issuer, issuer.subject):
            problems.append("the issuer certificate given is not the certificate's issuer")
        else:
            for source in self._sources():
                try:
                    outcome = source(cert, issuer, at, problems)
                except SpinePKIError as exc:  # pragma: no cover - sources catch their own
                    problems.append(str(exc))
                    outcome = None
                if outcome is not None:
                    # Earlier sources' problems travel with the answer; the common case
                    # (first source answers) skips the copy.
                    return replace(outcome, problems=tuple(problems)) if problems else outcome
            if not problems:
                problems.append(
                    "no CRL distribution point or OCSP responder is known for the certificate"
                    if self._mode is not RevocationMode.OFFLINE
                    else "no supplied CRL or OCSP response covers the certificate"
                )
        return RevocationResult(
            RevocationStatus.UNKNOWN,
            None,
            problems=tuple(problems),
            soft_failed=self._mode is RevocationMode.SOFT_FAIL,
        )

    def _supplied_for(self, name: x509.Name) -> list[x509.CertificateRevocationList]:
        for issuer_name, crls in self._supplied_crls.items():
            if _same_name(name, issuer_name):
                return crls
        return []

    def _sources(self) -> tuple[_Source, ...]:
        mode = self._mode
        if mode is RevocationMode.CRL_ONLY:
            return (self._from_crl,)
        if mode is RevocationMode.OCSP_ONLY:
            return (self._from_ocsp,)
        if mode is RevocationMode.PREFER_OCSP:
            return (self._from_ocsp, self._from_crl)
        return (self._from_crl, self._from_ocsp)

    @property
    def _online(self) -> bool:
        return self._mode is not RevocationMode.OFFLINE

    def _get_fetcher(self) -> Fetcher:
        if self._fetcher is not None:
            return self._fetcher
        with self._lock:
            if self._own_fetcher is None:
                self._own_fetcher = RequestsFetcher()
            return self._own_fetcher

    # -- CRLs ---------------------------------------------------------------------

    def _from_crl(
        self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime, problems: list[str]
    ) -> RevocationResult | None:
        for crl in self._supplied_for(cert.issuer):
            verified = self._verify_supplied(crl, issuer, problems)
            if verified is not None:
                result = self._use_crl(verified, cert, at, problems)
                if result is not None:
                    return result
        if not self._online:
            return None
        urls, has_cdp = _crl_urls(cert)
        if has_cdp and not urls:
            problems.append("the certificate's CRL distribution points have no http(s) URL")
        for url in urls:
            verified = self._cached_or_fetched_crl(url, issuer, at, problems)
            if verified is not None:
                result = self._use_crl(verified, cert, at, problems)
                if result is not None:
                    return result
        return None

    def _verify_supplied(
        self, crl: x509.CertificateRevocationList, issuer: x509.Certificate, problems: list[str]
    ) -> VerifiedCRL | None:
        key = (id(crl), _fingerprint(issuer))
        cached = self._verified_supplied.get(key)
        if cached is None:
            try:
                cached = verify_crl(crl, issuer)
            except SpinePKIError as exc:
                cached = str(exc)
            self._verified_supplied.put(key, cached)
        if isinstance(cached, str):
            problems.append(cached)
            return None
        return cached

    def _use_crl(
        self, verified: VerifiedCRL, cert: x509.Certificate, at: datetime, problems: list[str]
    ) -> RevocationResult | None:
        try:
            verified.check_fresh(at, self._tolerance)
        except SpinePKIError as exc:
            problems.append(str(exc))
            return None
        scope = verified.scope_problem(cert)
        if scope is not None:
            problems.append(scope)
            return None
        entry = verified.lookup(cert.serial_number)
        if entry is None:
            return RevocationResult(RevocationStatus.GOOD, verified.evidence())
        revoked_at, reason = entry
        return RevocationResult(
            RevocationStatus.REVOKED, verified.evidence(), revoked_at=revoked_at, reason=reason
        )

    def _cached_or_fetched_crl(
        self, url: str, issuer: x509.Certificate, at: datetime, problems: list[str]
    ) -> VerifiedCRL | None:
        key = (url, _fingerprint(issuer))
        cached = self._crl_cache.get(key)
        if cached is not None and at < self._refresh_point(cached):
            return cached
        with self._fetch_locks[hash(key) % len(self._fetch_locks)]:
            # Another thread may have fetched it while this one waited.
            cached = self._crl_cache.get(key)
            if cached is not None and at < self._refresh_point(cached):
                return cached
            failure = self._failures.get(("crl", url))
            if failure is not None and at < failure.retry_after:
                problem = (
                    f"{failure.problem} (not retried before {failure.retry_after.isoformat()})"
                )
                return self._fallback(cached, at, problem, problems)
            try:
                fresh = self._fetch_crl(url, issuer)
            except SpinePKIError as exc:
                self._failures.put(("crl", url), _Failure(str(exc), at + self._failure_backoff))
                return self._fallback(cached, at, str(exc), problems)
            self._failures.pop(("crl", url))
            if _older(fresh, cached):
                problems.append(f"{url}: the responder served an older CRL (number {fresh.number})")
                return cached
            self._crl_cache.put(key, fresh, fresh.size)
            return fresh

    def _fallback(
        self, cached: VerifiedCRL | None, at: datetime, problem: str, problems: list[str]
    ) -> VerifiedCRL | None:
        """The cached CRL when it is still fresh (a failed early refresh is harmless)."""
        if cached is not None:
            try:
                cached.check_fresh(at, self._tolerance)
            except SpinePKIError:
                pass
            else:
                return cached
        problems.append(problem)
        return None

    def _refresh_point(self, cached: VerifiedCRL) -> datetime:
        # Never more than half the CRL's lifetime early, or a short-lived CRL would be
        # refetched on every check.
        lifetime = cached.next_update - cached.this_update
        return cached.next_update - min(self._refresh_before, lifetime / 2)

    def _fetch_crl(self, url: str, issuer: x509.Certificate) -> VerifiedCRL:
        data = _call(self._get_fetcher().fetch_crl, url)
        crl = load_crl(data, source=url)
        return verify_crl(crl, issuer, der=None if b"-----BEGIN" in data else data, url=url)

    # -- OCSP ---------------------------------------------------------------------

    def _from_ocsp(
        self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime, problems: list[str]
    ) -> RevocationResult | None:
        cert_id = CertID.of(cert, issuer)
        for response in self._supplied_ocsp:
            if not _about(response, cert_id):
                continue
            verdict = self._verify_ocsp(
                response,
                cert_id=cert_id,
                issuer=issuer,
                at=at,
                nonce=None,
                url=None,
                problems=problems,
            )
            if verdict is not None and verdict.status is not RevocationStatus.UNKNOWN:
                return self._ocsp_result(verdict)
        if not self._online:
            return None
        key = (cert_id.issuer_key, cert_id.serial)
        cached = self._ocsp_cache.get(key)
        if cached is not None:
            try:
                cached.check_fresh(at, self._tolerance)
            except SpinePKIError:
                self._ocsp_cache.pop(key)
            else:
                return self._ocsp_result(cached)
        urls = [self._ocsp_url] if self._ocsp_url else _ocsp_urls(cert)
        for url in urls:
            verdict = self._query_ocsp(
                url, cert=cert, issuer=issuer, cert_id=cert_id, at=at, problems=problems
            )
            if verdict is None:
                continue
            if verdict.status is RevocationStatus.UNKNOWN:
                problems.append(f"{url}: the OCSP responder does not know the certificate")
                continue
            if verdict.next_update is not None:
                self._ocsp_cache.put(key, verdict)
            return self._ocsp_result(verdict)
        return None

    def _query_ocsp(
        self,
        url: str,
        *,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        cert_id: CertID,
        at: datetime,
        problems: list[str],
    ) -> OCSPVerdict | None:
        failure = self._failures.get(("ocsp", url))
        if failure is not None and at < failure.retry_after:
            problems.append(
                f"{failure.problem} (not retried before {failure.retry_after.isoformat()})"
            )
            return None
        request, nonce = build_ocsp_request(cert, issuer)
        try:
            data = _call(self._get_fetcher().post_ocsp, url, request)
        except SpinePKIError as exc:
            self._failures.put(("ocsp", url), _Failure(str(exc), at + self._failure_backoff))
            problems.append(str(exc))
            return None
        self._failures.pop(("ocsp", url))
        try:
            response = parse_ocsp_response(data, source=url)
        except SpinePKIError as exc:
            problems.append(str(exc))
            return None
        return self._verify_ocsp(
            response, cert_id=cert_id, issuer=issuer, at=at, nonce=nonce, url=url, problems=problems
        )

    def _verify_ocsp(
        self,
        response: ocsp.OCSPResponse,
        *,
        cert_id: CertID,
        issuer: x509.Certificate,
        at: datetime,
        nonce: bytes | None,
        url: str | None,
        problems: list[str],
    ) -> OCSPVerdict | None:
        try:
            return verify_ocsp_response(
                response, cert_id, issuer, at=at, tolerance=self._tolerance, nonce=nonce, url=url
            )
        except SpinePKIError as exc:
            problems.append(str(exc))
            return None

    @staticmethod
    def _ocsp_result(verdict: OCSPVerdict) -> RevocationResult:
        return RevocationResult(
            verdict.status, verdict.evidence(), revoked_at=verdict.revoked_at, reason=verdict.reason
        )

    # -- refreshing and lifetime ----------------------------------------------------

    def refresh(self, *, at: datetime) -> tuple[str, ...]:
        """Refetch every cached CRL now, whatever its nextUpdate.

        A CRL that fails to refetch, or that is older than the cached one, leaves the
        cached one in place.

        Args:
            at: the current time (used to remember failures).

        Returns:
            Problems met, in plain words (empty when every CRL was refreshed).
        """
        problems: list[str] = []
        if not self._online:
            return ()
        for key in self._crl_cache.snapshot():
            cached = self._crl_cache.get(key)
            if cached is None or cached.url is None:  # pragma: no cover - evicted meanwhile
                continue
            url = key[0]
            with self._fetch_locks[hash(key) % len(self._fetch_locks)]:
                try:
                    fresh = self._fetch_crl(url, cached.issuer)
                except SpinePKIError as exc:
                    self._failures.put(("crl", url), _Failure(str(exc), at + self._failure_backoff))
                    problems.append(str(exc))
                    continue
                if _older(fresh, cached):
                    problems.append(
                        f"{url}: the responder served an older CRL (number {fresh.number})"
                    )
                    continue
                self._crl_cache.put(key, fresh, fresh.size)
        return tuple(problems)

    def start_background_refresh(
        self, interval: float = 300.0, *, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        """Call :meth:`refresh` every ``interval`` seconds in a daemon thread.

        Optional: without it, CRLs are refetched on demand by the first check that finds
        them within ``refresh_before`` of their nextUpdate. Stop with :meth:`close`.

        Raises:
            ConfigurationError: a non-positive interval, or already started.
        """
        if interval <= 0:
            raise ConfigurationError("the refresh interval must be positive", source="interval")
        with self._lock:
            if self._refresher is not None:
                raise ConfigurationError("background refresh is already running", source="interval")
            self._stop.clear()

            def loop() -> None:
                while not self._stop.wait(interval):
                    self.refresh(at=clock())

            self._refresher = threading.Thread(
                target=loop, name="spinepki-crl-refresh", daemon=True
            )
            self._refresher.start()

    def close(self) -> None:
        """Stop background refresh and close the default fetcher's connections."""
        self._stop.set()
        with self._lock:
            thread, self._refresher = self._refresher, None
            own, self._own_fetcher = self._own_fetcher, None
        if thread is not None:
            thread.join(timeout=5)
        if own is not None:
            own.close()

    def __enter__(self) -> RevocationChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
