"""RevocationChecker: which evidence to look for, in what order, and what it means."""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from spinepki._time import shift, to_utc
from spinepki.errors import ConfigurationError, FetchError, SpinePKIError
from spinepki.revocation._answers import Answer, Answers
from spinepki.revocation._crl import VerifiedCRL, is_permanent, load_crl, verify_crl
from spinepki.revocation._limits import RevocationLimits
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
from spinepki.revocation.fetchers import DEFAULT_TIMEOUT, Fetcher, RequestsFetcher

__all__ = ["RevocationChecker"]

_LOG = logging.getLogger("spinepki.revocation")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_DISABLED_PROBLEM = "revocation checking is disabled (unsafe_allow_disabled)"
#: The fetcher methods that may take a ``timeout=`` keyword argument.
_METHODS = ("fetch_crl", "post_ocsp")
#: Source orders, by mode.
_CRL = ("crl",)
_OCSP = ("ocsp",)
_CRL_OCSP = ("crl", "ocsp")
_OCSP_CRL = ("ocsp", "crl")
#: The modes that ask a CRL first.
_CRL_FIRST = frozenset(
    {
        RevocationMode.HARD_FAIL,
        RevocationMode.SOFT_FAIL,
        RevocationMode.CRL_ONLY,
        RevocationMode.OFFLINE,
    }
)
#: A fetch is not started with less than this share of ``check_timeout`` left: it could
#: hardly complete, and its timeout would back the responder off for nothing.
_MIN_FETCH_SHARE = 0.1
#: The resolution of datetime: an inclusive bound plus this is the exclusive one.
_MICROSECOND = timedelta(microseconds=1)


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

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._weight = 0

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
#: Issuer name objects whose supplied CRLs are remembered per checker.
_SUPPLIED_BY_NAME_MAX = 256


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


def _listing(crl: VerifiedCRL) -> bytes:
    """A digest of the serials a CRL lists (BLAKE2b: a chance or contrived collision must
    not hide a revocation; computed once per stored CRL)."""
    digest = hashlib.blake2b(digest_size=32)
    for serial in sorted(crl.index):
        digest.update(serial.to_bytes((serial.bit_length() + 8) // 8 + 1, "big", signed=True))
    return digest.digest()


#: Distribution points whose last listing is remembered after the CRL has left the cache.
_SEEN_MAX = 4096


def _older(fresh: VerifiedCRL, cached: VerifiedCRL) -> bool:
    """True when ``fresh`` is older than the cached CRL (a rollback).

    With a CRL number on both, the numbers decide (RFC 5280 5.2.3): an equal number is
    the same CRL, possibly signed again, and a clock that went back must not make it look
    older. When either lacks a number, an earlier thisUpdate is a rollback: otherwise an
    older in-date CRL without a number would replace the cached one and could un-revoke.
    """
    if fresh.number is not None and cached.number is not None:
        return fresh.number < cached.number
    return fresh.this_update < cached.this_update


def _rollback(url: str, fresh: VerifiedCRL, cached: VerifiedCRL) -> str:
    return (
        f"{url}: the responder served an older CRL (number {fresh.number}, thisUpdate "
        f"{fresh.this_update.isoformat()}) than the one in hand (number {cached.number}, "
        f"thisUpdate {cached.this_update.isoformat()}); the newer one is kept"
    )


def _prune(windows: dict[K, tuple[datetime, datetime]], cache: _LRU[K, V]) -> None:
    """Keep only the windows of what the cache still holds."""
    kept = set(cache.snapshot())
    for key in [k for k in windows if k not in kept]:
        windows.pop(key, None)


def _about(response: ocsp.OCSPResponse, cert_id: CertID) -> bool:
    """True when a supplied response is successful and answers for ``cert_id``."""
    return response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL and any(
        cert_id.matches(
            s.issuer_name_hash, s.issuer_key_hash, s.serial_number, s.hash_algorithm.name
        )
        for s in response.responses
    )


def _accepts_timeout(method: object) -> bool:
    """True when ``method`` can be called with a ``timeout=`` keyword argument."""
    if not callable(method):
        return False
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind is p.VAR_KEYWORD
        or (p.name == "timeout" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        for p in parameters
    )


def _fetcher_timeout(fetcher: object) -> float:
    """The default check_timeout: the fetcher's total ``timeout`` when it states one."""
    value = getattr(fetcher, "timeout", None)
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    ):
        return float(value)
    return DEFAULT_TIMEOUT


def _call(
    method: Callable[..., bytes], url: str, *args: bytes, timeout: float | None = None
) -> bytes:
    """Call a fetcher method; anything but a SpinePKIError becomes a FetchError.

    ``timeout`` is passed on only when given (the method is known to accept it). A
    third-party fetcher that raises something unexpected must not break ``check()``.
    """
    try:
        if timeout is None:
            return method(url, *args)
        return method(url, *args, timeout=timeout)
    except SpinePKIError:
        raise
    except Exception as exc:
        raise FetchError(f"the fetcher failed: {type(exc).__name__}: {exc}", source=url) from exc


_PEM_CRL = b"-----BEGIN X509 CRL-----"


def _load_supplied(
    item: x509.CertificateRevocationList | bytes,
) -> list[x509.CertificateRevocationList]:
    """One supplied CRL, or each of the CRLs of a PEM bundle (a root's and a Sub CA's
    CRLs often come as one file, as the test PKI's ``crl/crl-set.pem`` does)."""
    if isinstance(item, bytes) and item.count(_PEM_CRL) > 1:
        return [load_crl(_PEM_CRL + block) for block in item.split(_PEM_CRL)[1:]]
    return [load_crl(item)]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Budget:
    """The time one ``check()`` may still spend fetching, and who else needs a share.

    ``deadline`` is on the checker's monotonic clock; ``later`` names the sources still
    to come after the current one, so a fetch leaves them their share.
    """

    __slots__ = ("deadline", "later")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.later: tuple[str, ...] = ()


class _BudgetBlock:
    """The context manager behind :meth:`RevocationChecker.budget`.

    A plain class, not ``contextlib.contextmanager``: every validation enters one, and
    the generator machinery cost more than the rest of a cached-CRL check."""

    __slots__ = ("_checker", "_outer", "_seconds")

    def __init__(self, checker: RevocationChecker, seconds: float) -> None:
        self._checker = checker
        self._seconds = seconds
        self._outer: float | None = None

    def __enter__(self) -> None:
        budgets = self._checker._budgets
        outer: float | None = getattr(budgets, "deadline", None)
        deadline = self._checker._monotonic() + self._seconds
        budgets.deadline = deadline if outer is None else min(deadline, outer)
        self._outer = outer

    def __exit__(self, *exc: object) -> None:
        self._checker._budgets.deadline = self._outer


class RevocationChecker:
    """Decides whether a certificate is revoked, from CRLs and OCSP, under a mode.

    Sources, by mode: ``HARD_FAIL`` / ``SOFT_FAIL`` try the CRL, then OCSP (Spine's G1
    hierarchy publishes CRLs and no OCSP); ``PREFER_OCSP`` the reverse; ``CRL_ONLY`` /
    ``OCSP_ONLY`` one source; ``OFFLINE`` only what the caller supplied; ``DISABLED``
    nothing (unsafe). Within a source, supplied evidence comes first, then a cached
    answer, then a fetch. The first source with verified, fresh evidence decides; when
    none does the status is UNKNOWN and ``problems`` says why, per source.

    What counts as evidence and what supersedes what (the newest supplied CRL of an
    issuer, OCSP freshness without a nonce, critical extensions, stale listings) is the
    table "Evidence rules" of ``docs/revocation.md``; caching, backoff, the time budget
    and the freshness bound are set by :class:`RevocationLimits` and explained there.
    Instances are thread-safe; concurrent checks needing the same CRL wait for a single
    fetch. :meth:`budget` shares one time bound among several checks (the validator uses
    it for a whole path).

    Args:
        mode: the enforcement mode (hard-fail by default).
        fetcher: how to fetch; default a :class:`RequestsFetcher` made on first use.
            Not allowed with ``OFFLINE``.
        crls: caller-supplied CRLs (objects, or DER/PEM bytes; a PEM item may hold
            several), matched by issuer name. Authoritative in every mode: when one of
            an issuer's supplied CRLs is usable (verified, in date, in scope), its
            distribution point is not fetched, so keep them current.
        ocsp_responses: caller-supplied DER OCSP responses, matched by certificate ID.
        ocsp_url: an OCSP responder to use instead of the certificates' AIA URLs.
        clock_tolerance: allowed clock skew when comparing thisUpdate/nextUpdate with
            the validation time.
        limits: cache sizes, backoff, time budget and age bounds (default
            ``RevocationLimits()``).
        unsafe_allow_disabled: required to use ``DISABLED``.
        monotonic: the wall clock the time budget is measured on (for tests; default
            :func:`time.monotonic`).

    Raises:
        ConfigurationError: DISABLED without the unsafe flag, OFFLINE with a fetcher, a
            negative clock tolerance, or ``limits`` that is not a :class:`RevocationLimits`.
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
        limits: RevocationLimits | None = None,
        unsafe_allow_disabled: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
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
        if clock_tolerance < timedelta(0):
            raise ConfigurationError("must not be negative", source="clock_tolerance")
        if limits is None:
            limits = RevocationLimits()
        elif not isinstance(limits, RevocationLimits):
            raise ConfigurationError(
                f"must be a RevocationLimits, got {type(limits).__name__}", source="limits"
            )
        self._limits = limits
        self._max_staleness = limits.max_staleness
        self._ocsp_max_age = limits.ocsp_max_age
        self._generation = 0
        check_timeout = limits.check_timeout
        if check_timeout is None:
            check_timeout = _fetcher_timeout(fetcher)
        self._check_timeout = float(check_timeout)
        self._monotonic = monotonic
        self._budgets = threading.local()
        # Which fetcher methods take a timeout= keyword (the default fetcher's both do).
        self._timeout_kw = (
            {name: _accepts_timeout(getattr(fetcher, name, None)) for name in _METHODS}
            if fetcher is not None
            else dict.fromkeys(_METHODS, True)
        )
        self._mode = mode
        self._fetcher = fetcher
        self._own_fetcher: RequestsFetcher | None = None
        self._ocsp_url = ocsp_url
        self._tolerance = clock_tolerance
        self._refresh_before = limits.refresh_before
        self._failure_backoff = limits.failure_backoff
        self._lock = threading.Lock()
        # Striped locks give single-flight fetches per URL without an unbounded lock map.
        self._fetch_locks = tuple(threading.Lock() for _ in range(32))
        self._supplied_crls: dict[x509.Name, list[x509.CertificateRevocationList]] = {}
        for item in crls:
            for crl in _load_supplied(item):
                self._supplied_crls.setdefault(crl.issuer, []).append(crl)
        self._supplied_ocsp = [
            parse_ocsp_response(item, source=f"supplied OCSP response {i + 1}")
            for i, item in enumerate(ocsp_responses)
        ]
        self._supplied_by_name: dict[
            int, tuple[x509.Name, list[x509.CertificateRevocationList]]
        ] = {}
        self._verified_supplied = _LRU[tuple[int, bytes], VerifiedCRL | str](256)
        self._crl_cache = _LRU[tuple[str, bytes], VerifiedCRL](
            limits.crl_cache_size, limits.crl_cache_bytes
        )
        self._ocsp_cache = _LRU[tuple[bytes, int], OCSPVerdict](limits.ocsp_cache_size)
        # The window in which each cached CRL / OCSP answer may be relied on: (fetched,
        # fetched + max_staleness), in validation time. Keyed like the caches. Plain dicts,
        # read on every check without a lock (one dict get, no arithmetic); pruned to the
        # caches' keys when they grow past twice the caches' size.
        self._crl_fetched: dict[tuple[str, bytes], tuple[datetime, datetime]] = {}
        # The last CRL stored per distribution point (URL, issuer key), kept after the
        # CRL leaves the cache: a refetch's listing is compared with it.
        self._seen: dict[tuple[str, bytes], bytes] = {}
        # Issuers (by fingerprint) about whose certificates a GOOD answer has been given.
        self._good_issuers: set[bytes] = set()
        self._good_forgotten = False
        self._ocsp_fetched: dict[tuple[bytes, int], tuple[datetime, datetime]] = {}
        # Certificates an OCSP answer has said REVOKED (until one says GOOD): with no
        # answer cached to compare with, only the first REVOKED is news (_from_ocsp).
        self._ocsp_revoked: dict[tuple[bytes, int], None] = {}
        self._crl_cache_size = limits.crl_cache_size
        self._ocsp_cache_size = limits.ocsp_cache_size
        self._failures = _LRU[tuple[str, str], _Failure](1024)
        # Unusable OCSP answers, per (responder URL, CertID): the responder answered, so
        # the URL is not backed off for every certificate, only for this one.
        self._ocsp_failures = _LRU[tuple[str, CertID], _Failure](limits.ocsp_cache_size)
        self._refresher: threading.Thread | None = None
        self._stop = threading.Event()
        # A repeat check answers from the CRL that answered last time, without the walk
        # (_answers.py). Only where a CRL is the first source and no supplied OCSP answer
        # can overrule a GOOD: there the first CRL found decides, as the walk would.
        self._answers = Answers()
        self._answers_usable = mode in _CRL_FIRST and not self._supplied_ocsp

    @property
    def mode(self) -> RevocationMode:
        """The enforcement mode."""
        return self._mode

    @property
    def limits(self) -> RevocationLimits:
        """The cache, backoff, time and age bounds in force."""
        return self._limits

    @property
    def max_staleness(self) -> timedelta:
        """The longest a fetched CRL or OCSP answer is relied on before asking again."""
        return self._max_staleness

    @property
    def generation(self) -> int:
        """A counter that moves on whenever fetched evidence may have revoked or reinstated
        a certificate: a stored CRL listing other serials than the last CRL from the same
        distribution point (URL and issuer; also after that one left the cache), the
        first CRL from a distribution point listing anything after GOOD answers about
        its issuer came from elsewhere (OCSP, another URL), an OCSP answer changing, or
        first saying REVOKED; and on :meth:`reload`. A cache of results built on this
        checker's answers keeps the generation it saw and drops an entry when it
        differs."""
        return self._generation

    def _evidence_changed(self) -> None:
        with self._lock:
            self._generation += 1

    @property
    def check_timeout(self) -> float:
        """Seconds (wall clock) one check, or one :meth:`budget` block, may spend fetching."""
        return self._check_timeout

    def budget(self, seconds: float | None = None) -> _BudgetBlock:
        """Share one time budget among the checks this thread makes inside the block.

        Without it every :meth:`check` has its own ``check_timeout``; inside it, all
        checks together spend at most ``seconds`` (default ``check_timeout``) fetching,
        and a check that finds the budget spent answers from cached and supplied evidence
        only. Blocks nest; an inner block cannot outlast the outer one.

            >>> with checker.budget():                              # doctest: +SKIP
            ...     leaf_result = checker.check(leaf, sub_ca, at=now)
            ...     sub_ca_result = checker.check(sub_ca, root, at=now)   # what is left

        Raises:
            ConfigurationError: ``seconds`` is not a positive, finite number.
        """
        if seconds is None:
            seconds = self._check_timeout
        elif not (math.isfinite(seconds) and seconds > 0):
            raise ConfigurationError(
                "must be a positive, finite number of seconds", source="seconds"
            )
        return _BudgetBlock(self, seconds)

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
        at = to_utc(at)
        if self._mode is RevocationMode.DISABLED:
            return RevocationResult(RevocationStatus.GOOD, None, problems=(_DISABLED_PROBLEM,))
        if self._answers_usable:
            known = self._answers.answer(cert, issuer, at)
            if known is not None:
                return known
        problems: list[str] = []
        if not _same_name(cert.issuer, issuer.subject):
            problems.append("the issuer certificate given is not the certificate's issuer")
        else:
            shared: float | None = getattr(self._budgets, "deadline", None)
            budget = _Budget(
                shared if shared is not None else self._monotonic() + self._check_timeout
            )
            kinds = self._source_kinds()
            for index, kind in enumerate(kinds):
                budget.later = later = kinds[index + 1 :]
                source = self._from_crl if kind == "crl" else self._from_ocsp
                try:
                    outcome = source(cert, issuer, at, problems, budget)
                except SpinePKIError as exc:  # pragma: no cover - sources catch their own
                    problems.append(str(exc))
                    outcome = None
                if (
                    outcome is not None
                    and outcome.status is RevocationStatus.GOOD
                    # Only supplied evidence of a later source can overrule.
                    and (
                        (self._supplied_ocsp and "ocsp" in later)
                        or (self._supplied_crls and "crl" in later)
                    )
                ):
                    overruled = self._supplied_permanent_revocation(cert, issuer, at, later)
                    if overruled is not None:
                        outcome = overruled
                if outcome is not None:
                    if outcome.status is RevocationStatus.GOOD:
                        self._note_good(issuer)
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

    def cached(
        self, cert: x509.Certificate, issuer: x509.Certificate, *, at: datetime
    ) -> RevocationResult | None:
        """The result :meth:`check` would give, when it is at hand without looking: or None.

        At hand means a CRL already verified answered for this very certificate object
        before, with no problem on the way, and at ``at`` it still would (in date and,
        if fetched, not yet due for a refresh); its serial index is read again, so a
        listing is always found. Never fetches or waits on the network (it takes the
        CRL cache's lock for a dict lookup), never raises for evidence. None for
        everything else (first sight of a certificate, OCSP, a problem met last time,
        DISABLED, and a checker whose :meth:`check` is replaced by a subclass, an
        instance attribute or a patch, which must see every question): ask
        :meth:`check`.

        Raises:
            ConfigurationError: ``at`` is naive.
        """
        at = to_utc(at)
        if not self._answers_usable or not self._plain_check():
            return None
        return self._answers.answer(cert, issuer, at)

    def _plain_check(self) -> bool:
        """Whether :meth:`check` is this class's own. A subclass, an instance attribute or
        a patch that replaces it (a deny-list, an audit hook, a spy) must be asked every
        time, so nothing is answered in its place."""
        return type(self).check is _PLAIN_CHECK and "check" not in vars(self)

    def _supplied_for(self, name: x509.Name) -> list[x509.CertificateRevocationList]:
        # The supplied CRLs are fixed at construction and the names asked about are the
        # same objects again and again (a certificate's cached issuer), so the answer is
        # kept by identity, with the name held so its id cannot be reused meanwhile.
        hit = self._supplied_by_name.get(id(name))
        if hit is not None and hit[0] is name:
            return hit[1]
        found: list[x509.CertificateRevocationList] = []
        for issuer_name, crls in self._supplied_crls.items():
            if _same_name(name, issuer_name):
                found = crls
                break
        if len(self._supplied_by_name) >= _SUPPLIED_BY_NAME_MAX:
            self._supplied_by_name.clear()
        self._supplied_by_name[id(name)] = (name, found)
        return found

    def _source_kinds(self) -> tuple[str, ...]:
        mode = self._mode
        if mode is RevocationMode.CRL_ONLY:
            return _CRL
        if mode is RevocationMode.OCSP_ONLY:
            return _OCSP
        if mode is RevocationMode.PREFER_OCSP:
            return _OCSP_CRL
        return _CRL_OCSP

    def _fetch_urls(self, kind: str, cert: x509.Certificate) -> list[str]:
        if kind == "crl":
            return _crl_urls(cert)[0]
        return [self._ocsp_url] if self._ocsp_url else _ocsp_urls(cert)

    def _allowance(
        self, budget: _Budget, cert: x509.Certificate, more_here: int, url: str
    ) -> float | str:
        """Seconds the next fetch may take, or why it is not started.

        An equal share of what is left of the budget among this fetch, the ``more_here``
        URLs after it in the same source and every URL of the sources still to come
        (only worked out when a fetch is due, so a cached answer costs nothing).
        """
        remaining = budget.deadline - self._monotonic()
        others = more_here + sum(len(self._fetch_urls(k, cert)) for k in budget.later)
        share = remaining / (1 + others)
        if share < self._check_timeout * _MIN_FETCH_SHARE:
            return (
                f"{url}: not fetched: the {self._check_timeout:g} s time budget for "
                "revocation checking is spent"
            )
        return share

    def _timeout_for(self, method: str, allowance: float | None) -> float | None:
        """The timeout= argument for a fetcher method (None: do not pass one)."""
        if allowance is None or not self._timeout_kw[method]:
            return None
        return allowance

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
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        at: datetime,
        problems: list[str],
        budget: _Budget,
    ) -> RevocationResult | None:
        state = self._answers.state  # before anything is fetched and stored
        # An answer is remembered only when the first place looked gave it, with no
        # problem met: then, at any time its CRL still answers for, so would the walk.
        remember = self._answers_usable and not problems
        supplied = self._supplied_for(cert.issuer)
        if len(supplied) == 1:
            verified = self._verify_supplied(supplied[0], issuer, problems)
            result = None if verified is None else self._use_crl(verified, cert, at, problems)
            if result is not None:
                if remember and verified is not None and not problems:
                    self._remember(cert, issuer, verified, None, state)
                return result
        elif supplied:
            result = self._from_supplied_crls(supplied, cert, issuer, at, problems)
            if result is not None:
                return result
        if not self._online:
            return None
        urls, has_cdp = _crl_urls(cert)
        if has_cdp and not urls:
            problems.append("the certificate's CRL distribution points have no http(s) URL")
        for index, url in enumerate(urls):
            allowance = functools.partial(self._allowance, budget, cert, len(urls) - index - 1, url)
            verified = self._cached_or_fetched_crl(url, issuer, at, problems, allowance)
            if verified is not None:
                key = (url, _fingerprint(issuer))
                window = self._crl_fetched.get(key)
                result = self._use_crl(
                    verified, cert, at, problems, window[1] if window is not None else None
                )
                if result is not None:
                    if remember and not supplied and index == 0 and window and not problems:
                        self._remember(cert, issuer, verified, window, state, key)
                    return result
        return None

    def _remember(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        verified: VerifiedCRL,
        window: tuple[datetime, datetime] | None,
        state: int,
        key: tuple[str, bytes] | None = None,
    ) -> None:
        """Remember ``verified`` as the answer for ``cert`` over the times at which the
        walk would pick it again: in date (``check_fresh``, with the clock tolerance)
        and, for a fetched CRL, inside its fetch window and before its refresh point
        (``_due``)."""
        tolerance = self._tolerance
        start = shift(verified.this_update, -tolerance)
        # check_fresh accepts at <= nextUpdate + tolerance: the first time it does not.
        end = shift(verified.next_update, tolerance + _MICROSECOND)
        touch = None
        if window is not None:
            start = max(start, window[0])
            end = min(end, window[1], self._refresh_point(verified))
        if key is not None:
            touch = functools.partial(self._crl_cache.get, key)
        self._answers.remember(
            Answer(
                cert,
                issuer,
                verified,
                start=start,
                end=end,
                good=verified.good(window[1] if window is not None else None),
                state=state,
                touch=touch,
            )
        )

    def _from_supplied_crls(
        self,
        crls: list[x509.CertificateRevocationList],
        cert: x509.Certificate,
        issuer: x509.Certificate,
        at: datetime,
        problems: list[str],
    ) -> RevocationResult | None:
        """The answer of the supplied CRLs of one issuer, whatever order they came in.

        Every usable CRL is asked. A permanent listing (any reason but certificateHold)
        in any of them wins: revocation cannot be undone. Otherwise, among the CRLs of
        one scope (the same issuingDistributionPoint), the highest CRL number (then the
        latest thisUpdate) decides, as RFC 5280 5.2.3 has a higher number supersede a
        lower one, so an older CRL supplied first (or sorted first by file name) cannot
        hide a newer listing. CRL numbers are only comparable within a scope, so across
        scopes the newest CRL of each speaks, and any listing among them (a hold
        included) wins over GOOD.
        """
        if len(crls) == 1:  # the common case: nothing to compare with
            verified = self._verify_supplied(crls[0], issuer, problems)
            return None if verified is None else self._use_crl(verified, cert, at, problems)
        best: dict[object, tuple[tuple[bool, tuple[int, datetime], bool], RevocationResult]] = {}
        for crl in crls:
            verified = self._verify_supplied(crl, issuer, problems)
            if verified is None:
                continue
            result = self._use_crl(verified, cert, at, problems)
            if result is None:
                continue
            revoked = result.status is RevocationStatus.REVOKED
            rank = (revoked and is_permanent(result.reason), verified.recency, revoked)
            scope = (verified.only_user_certs, verified.only_ca_certs, verified.idp_urls)
            known = best.get(scope)
            if known is None or rank > known[0]:
                best[scope] = (rank, result)
        if not best:
            return None
        # Across scopes: a permanent listing, then any listing, then the newest.
        return max(best.values(), key=lambda item: (item[0][0], item[0][2], item[0][1]))[1]

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
        self,
        verified: VerifiedCRL,
        cert: x509.Certificate,
        at: datetime,
        problems: list[str],
        reuse_until: datetime | None = None,
    ) -> RevocationResult | None:
        try:
            verified.check_fresh(at, self._tolerance)
        except SpinePKIError as exc:
            problems.append(str(exc))
            return self._stale_listing(verified, cert, at)
        scope = verified.scope_problem(cert)
        if scope is not None:
            problems.append(scope)
            return None
        entry = verified.lookup(cert.serial_number)
        if entry is None:
            return verified.good(reuse_until)
        return verified.revoked(entry, reuse_until)

    def _stale_listing(
        self, verified: VerifiedCRL, cert: x509.Certificate, at: datetime
    ) -> RevocationResult | None:
        """REVOKED when a genuine CRL past its nextUpdate lists ``cert`` permanently.

        A stale CRL is no evidence that a certificate is good, but a listing in it is
        still the CA's signed word, and every reason but certificateHold is final (RFC
        5280 5.3.1): softening it to UNKNOWN would let soft-fail accept a certificate
        the CA revoked for key compromise. A CRL issued after ``at`` proves nothing.
        """
        if not verified.is_stale(at, self._tolerance) or verified.scope_problem(cert):
            return None
        entry = verified.lookup(cert.serial_number)
        if entry is None or not is_permanent(entry[1]):
            return None
        return verified.revoked(entry)

    def _cached_or_fetched_crl(
        self,
        url: str,
        issuer: x509.Certificate,
        at: datetime,
        problems: list[str],
        allowance: Callable[[], float | str],
    ) -> VerifiedCRL | None:
        key = (url, _fingerprint(issuer))
        cached = self._crl_cache.get(key)
        if cached is not None and not self._due(key, cached, at):
            return cached
        failure = self._failures.get(("crl", url))
        if failure is not None and at < failure.retry_after:
            problem = f"{failure.problem} (not retried before {failure.retry_after.isoformat()})"
            return self._fallback(cached, at, problem, problems)
        wait = allowance()
        if isinstance(wait, str):
            return self._fallback(cached, at, wait, problems)
        lock = self._fetch_locks[hash(key) % len(self._fetch_locks)]
        # Waiting for another thread's fetch of the same CRL spends this check's budget.
        if not lock.acquire(timeout=wait):
            problem = f"{url}: another check's fetch of this CRL did not end within {wait:.2g} s"
            return self._fallback(cached, at, problem, problems)
        try:
            # Another thread may have fetched it while this one waited.
            cached = self._crl_cache.get(key)
            if cached is not None and not self._due(key, cached, at):
                return cached
            failure = self._failures.get(("crl", url))
            if failure is not None and at < failure.retry_after:
                problem = (
                    f"{failure.problem} (not retried before {failure.retry_after.isoformat()})"
                )
                return self._fallback(cached, at, problem, problems)
            wait = allowance()
            if isinstance(wait, str):
                return self._fallback(cached, at, wait, problems)
            try:
                fresh = self._fetch_crl(url, issuer, wait)
            except SpinePKIError as exc:
                self._failures.put(
                    ("crl", url), _Failure(str(exc), shift(at, self._failure_backoff))
                )
                return self._fallback(cached, at, str(exc), problems)
            self._failures.pop(("crl", url))
            # Older than the one in hand: a replay, not evidence. (Not checked against a
            # CRL since evicted: a CA that restarts its numbering would be locked out.)
            if cached is not None and _older(fresh, cached):
                problems.append(_rollback(url, fresh, cached))
                return cached
            self._store_crl(key, cached, fresh, at)
            return fresh
        finally:
            lock.release()

    def _fallback(
        self, cached: VerifiedCRL | None, at: datetime, problem: str, problems: list[str]
    ) -> VerifiedCRL | None:
        """The cached CRL, when there is one, after a refresh that failed.

        Still fresh, a failed early refresh is harmless and not reported. Stale, it is
        returned all the same, with the problem: :meth:`_use_crl` finds it stale, so it
        proves nothing GOOD, but its permanent listings still refuse (the stale-listing
        rule) — otherwise making the CDP fail would soften a cached key-compromise
        listing to UNKNOWN, which soft-fail accepts.
        """
        if cached is not None:
            try:
                cached.check_fresh(at, self._tolerance)
            except SpinePKIError:
                pass
            else:
                return cached
        problems.append(problem)
        return cached

    def _due(self, key: tuple[str, bytes], cached: VerifiedCRL, at: datetime) -> bool:
        """Whether a cached CRL is to be fetched again: near its nextUpdate, or fetched
        ``max_staleness`` ago (or at an unknown time, or in the future of a clock that
        went back)."""
        window = self._crl_fetched.get(key)
        return (
            window is None or not window[0] <= at < window[1] or at >= self._refresh_point(cached)
        )

    def _store_crl(
        self, key: tuple[str, bytes], cached: VerifiedCRL | None, fresh: VerifiedCRL, at: datetime
    ) -> None:
        self._crl_fetched[key] = (at, shift(at, self._max_staleness))
        self._crl_cache.put(key, fresh, fresh.size)
        # After the store: a check that read the state before it cannot leave behind an
        # answer that the store made wrong (_answers.py).
        self._answers.changed()
        if len(self._crl_fetched) > 2 * self._crl_cache_size:
            _prune(self._crl_fetched, self._crl_cache)
        # Did this CRL revoke or reinstate anything? Compared with the last CRL stored
        # for the same distribution point, even if that one has since been evicted. With
        # nothing to compare with (the first fetch, or forgotten), any listing counts as
        # news: results cached meanwhile may rest on other evidence (OCSP while the
        # distribution point was down, another URL) that did not list it.
        listing = _listing(fresh)
        with self._lock:
            previous = self._seen.pop(key, None)
            if len(self._seen) >= _SEEN_MAX:
                self._seen.clear()
            self._seen[key] = listing
        if previous is None and cached is not None:
            previous = _listing(cached)
        if previous is None:
            # The first CRL from here: news only if it lists something and GOOD answers
            # about this issuer's certificates were given before (from OCSP, or another
            # URL), which cached results may rest on. Not at start-up, so the first
            # validation's result is still cached.
            changed = bool(fresh.index) and self._answered_before(key[1])
        else:
            changed = previous != listing
        if changed:
            self._evidence_changed()

    def _note_good(self, issuer: x509.Certificate) -> None:
        """Remember that a GOOD answer was given about a certificate ``issuer`` issued."""
        fingerprint = _fingerprint(issuer)
        if fingerprint in self._good_issuers:
            return
        with self._lock:
            if len(self._good_issuers) >= _SEEN_MAX:
                self._good_issuers.clear()
                self._good_forgotten = True  # from now on, assume answers were given
            self._good_issuers.add(fingerprint)

    def _answered_before(self, issuer_fingerprint: bytes) -> bool:
        with self._lock:
            return self._good_forgotten or issuer_fingerprint in self._good_issuers

    def _refresh_point(self, cached: VerifiedCRL) -> datetime:
        # Never more than half the CRL's lifetime early, or a short-lived CRL would be
        # refetched on every check.
        lifetime = cached.next_update - cached.this_update
        return cached.next_update - min(self._refresh_before, lifetime / 2)

    def _fetch_crl(
        self, url: str, issuer: x509.Certificate, allowance: float | None = None
    ) -> VerifiedCRL:
        data = _call(
            self._get_fetcher().fetch_crl, url, timeout=self._timeout_for("fetch_crl", allowance)
        )
        crl = load_crl(data, source=url)
        return verify_crl(crl, issuer, der=None if b"-----BEGIN" in data else data, url=url)

    # -- OCSP ---------------------------------------------------------------------

    def _from_ocsp(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        at: datetime,
        problems: list[str],
        budget: _Budget,
    ) -> RevocationResult | None:
        cert_id = CertID.of(cert, issuer)
        supplied = self._from_supplied_ocsp(cert_id, issuer, at, problems)
        if supplied is not None:
            return supplied
        if not self._online:
            return None
        key = (cert_id.issuer_key, cert_id.serial)
        cached = self._ocsp_cache.get(key)
        window = self._ocsp_fetched.get(key)
        if cached is not None:
            try:
                cached.check_fresh(at, self._tolerance)
            except SpinePKIError:
                self._ocsp_cache.pop(key)
                cached = None
            else:
                if window is not None and window[0] <= at < window[1]:
                    return self._ocsp_result(cached, window[1])
        urls = self._fetch_urls("ocsp", cert)
        for index, url in enumerate(urls):
            allowance = functools.partial(self._allowance, budget, cert, len(urls) - index - 1, url)
            verdict = self._query_ocsp(
                url,
                cert=cert,
                issuer=issuer,
                cert_id=cert_id,
                at=at,
                problems=problems,
                allowance=allowance,
            )
            if verdict is None:
                continue
            if verdict.status is RevocationStatus.UNKNOWN:
                problems.append(f"{url}: the OCSP responder does not know the certificate")
                continue
            if verdict.next_update is not None:
                self._ocsp_fetched[key] = (at, shift(at, self._max_staleness))
                self._ocsp_cache.put(key, verdict)
                if len(self._ocsp_fetched) > 2 * self._ocsp_cache_size:
                    _prune(self._ocsp_fetched, self._ocsp_cache)
            if (cached is not None and cached.status is not verdict.status) or (
                cached is None and self._ocsp_revoked_news(key, verdict.status)
            ):
                self._evidence_changed()
            return self._ocsp_result(verdict, shift(at, self._max_staleness))
        if cached is not None:
            # Asking again failed: the answer in hand is still within its nextUpdate.
            return self._ocsp_result(cached, window[1] if window is not None else None)
        return None

    def _ocsp_revoked_news(self, key: tuple[bytes, int], status: RevocationStatus) -> bool:
        """Whether a fetched answer with nothing cached to compare with (no nextUpdate, or
        evicted) changes what results cached meanwhile may rest on: a first REVOKED does;
        the same REVOKED again (a revoked client reconnecting) does not, or every such
        connection would empty the validator's result cache."""
        with self._lock:
            if status is not RevocationStatus.REVOKED:
                self._ocsp_revoked.pop(key, None)
                return False
            if key in self._ocsp_revoked:
                return False
            if len(self._ocsp_revoked) >= self._ocsp_cache_size:
                self._ocsp_revoked.clear()
            self._ocsp_revoked[key] = None
            return True

    def _from_supplied_ocsp(
        self, cert_id: CertID, issuer: x509.Certificate, at: datetime, problems: list[str]
    ) -> RevocationResult | None:
        """The answer of the supplied OCSP responses about ``cert_id``, whatever their
        order: a permanent REVOKED wins (revocation cannot be undone), then the latest
        thisUpdate (REVOKED before GOOD on a tie). OCSP "unknown" is no evidence."""
        best: tuple[tuple[bool, datetime, bool], OCSPVerdict] | None = None
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
            if verdict is None or verdict.status is RevocationStatus.UNKNOWN:
                continue
            revoked = verdict.status is RevocationStatus.REVOKED
            rank = (revoked and is_permanent(verdict.reason), verdict.this_update, revoked)
            if best is None or rank > best[0]:
                best = (rank, verdict)
        return None if best is None else self._ocsp_result(best[1], None)

    def _supplied_permanent_revocation(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        at: datetime,
        kinds: tuple[str, ...],
    ) -> RevocationResult | None:
        """A permanent REVOKED in the supplied evidence of the sources ``kinds``, if any.

        Asked when an earlier source answered GOOD: the mode's order decides between
        sources, but a permanent listing the caller supplied (a key-compromise OCSP
        answer beside an in-date CRL that does not list the certificate yet) is the
        CA's signed word that cannot be undone. Only supplied evidence is read: no fetch.
        """
        scratch: list[str] = []
        for kind in kinds:
            if kind == "crl":
                supplied = self._supplied_for(cert.issuer)
                result = (
                    self._from_supplied_crls(supplied, cert, issuer, at, scratch)
                    if supplied
                    else None
                )
            elif self._supplied_ocsp:
                result = self._from_supplied_ocsp(CertID.of(cert, issuer), issuer, at, scratch)
            else:
                result = None
            if (
                result is not None
                and result.status is RevocationStatus.REVOKED
                and is_permanent(result.reason)
            ):
                return result
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
        allowance: Callable[[], float | str],
    ) -> OCSPVerdict | None:
        # The responder unreachable (for every certificate), or its last answer about
        # this certificate unusable: either way, not asked again before retry_after.
        for failure in (
            self._failures.get(("ocsp", url)),
            self._ocsp_failures.get((url, cert_id)),
        ):
            if failure is not None and at < failure.retry_after:
                problems.append(
                    f"{failure.problem} (not retried before {failure.retry_after.isoformat()})"
                )
                return None
        wait = allowance()
        if isinstance(wait, str):
            problems.append(wait)
            return None
        request, nonce = build_ocsp_request(cert, issuer)
        try:
            data = _call(
                self._get_fetcher().post_ocsp,
                url,
                request,
                timeout=self._timeout_for("post_ocsp", wait),
            )
        except SpinePKIError as exc:
            self._failures.put(("ocsp", url), _Failure(str(exc), shift(at, self._failure_backoff)))
            problems.append(str(exc))
            return None
        self._failures.pop(("ocsp", url))
        try:
            response = parse_ocsp_response(data, source=url)
        except SpinePKIError as exc:
            problems.append(str(exc))
            verdict = None
        else:
            verdict = self._verify_ocsp(
                response,
                cert_id=cert_id,
                issuer=issuer,
                at=at,
                nonce=nonce,
                url=url,
                problems=problems,
            )
        if verdict is None:
            # An answer arrived but is no evidence (garbage, bad signature, wrong nonce,
            # tryLater, stale...): remembered like a failed fetch, per certificate.
            self._ocsp_failures.put(
                (url, cert_id), _Failure(problems[-1], shift(at, self._failure_backoff))
            )
            return None
        self._ocsp_failures.pop((url, cert_id))
        return verdict

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
        # The one place the checker's bounds are applied, so fetched and supplied answers
        # are held to the same clock tolerance and maximum age.
        try:
            return verify_ocsp_response(
                response,
                cert_id,
                issuer,
                at=at,
                tolerance=self._tolerance,
                nonce=nonce,
                url=url,
                max_age=self._ocsp_max_age,
            )
        except SpinePKIError as exc:
            problems.append(str(exc))
            return None

    @staticmethod
    def _ocsp_result(verdict: OCSPVerdict, reuse_until: datetime | None) -> RevocationResult:
        return RevocationResult(
            verdict.status,
            verdict.evidence(),
            revoked_at=verdict.revoked_at,
            reason=verdict.reason,
            reuse_until=reuse_until,
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
        at = to_utc(at)
        for key in self._crl_cache.snapshot():
            cached = self._crl_cache.get(key)
            if cached is None or cached.url is None:  # pragma: no cover - evicted meanwhile
                continue
            url = key[0]
            with self._fetch_locks[hash(key) % len(self._fetch_locks)]:
                try:
                    fresh = self._fetch_crl(url, cached.issuer)
                except SpinePKIError as exc:
                    self._failures.put(
                        ("crl", url), _Failure(str(exc), shift(at, self._failure_backoff))
                    )
                    problems.append(str(exc))
                    continue
                if _older(fresh, cached):
                    problems.append(_rollback(url, fresh, cached))
                    continue
                self._store_crl(key, cached, fresh, at)
        return tuple(problems)

    def reload(self, *, at: datetime) -> tuple[str, ...]:
        """Act on the CA's current word at once: refetch every cached CRL, forget cached
        OCSP answers and remembered failures (so the next check asks again), and move
        :attr:`generation` on (so caches of results built on the old evidence drop them).

        What the reference provider's trust reload (SIGHUP, ``reload_trust``) does. A
        CRL that cannot be refetched stays as it is, like in :meth:`refresh`.

        Returns:
            Problems met refetching, in plain words.
        """
        self._ocsp_cache.clear()
        self._ocsp_fetched.clear()
        self._ocsp_failures.clear()
        self._failures.clear()
        problems = self.refresh(at=at)
        self._evidence_changed()
        return problems

    def start_background_refresh(
        self, interval: float = 300.0, *, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        """Call :meth:`refresh` every ``interval`` seconds in a daemon thread.

        Optional: without it, CRLs are refetched on demand by the first check that finds
        them within ``refresh_before`` of their nextUpdate. Stop with :meth:`close`.

        Raises:
            ConfigurationError: a non-positive interval, already started, or a
                ``clock`` that does not give timezone-aware times (tried once here).
        """
        if interval <= 0:
            raise ConfigurationError("the refresh interval must be positive", source="interval")
        to_utc(clock())  # a clock that gives naive times is refused now, not in the thread
        with self._lock:
            if self._refresher is not None:
                raise ConfigurationError("background refresh is already running", source="interval")
            self._stop.clear()

            def loop() -> None:
                while not self._stop.wait(interval):
                    try:
                        self.refresh(at=clock())
                    except Exception:  # the thread must outlive one bad round
                        _LOG.exception("background CRL refresh failed; trying again later")

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


#: RevocationChecker's own check(), to tell when it has been replaced (_plain_check).
_PLAIN_CHECK = RevocationChecker.check
