"""How revocation evidence reaches spinepki: a two-method interface and two backends.

:class:`Fetcher` is the extension point. :class:`RequestsFetcher` fetches over HTTP(S)
with a pooled :class:`requests.Session`, bounded in time and size; :class:`StaticFetcher`
answers from memory for offline use and tests.

    >>> fetcher = StaticFetcher(crls={"http://crl.example/ca.crl": b"..."})
    >>> fetcher.fetch_crl("http://crl.example/ca.crl")
    b'...'
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from spinepki.errors import ConfigurationError, FetchError

__all__ = [
    "DEFAULT_MAX_CRL_BYTES",
    "DEFAULT_MAX_OCSP_BYTES",
    "DEFAULT_TIMEOUT",
    "Fetcher",
    "RequestsFetcher",
    "StaticFetcher",
]

#: Total time one fetch may take (connect, headers and body together), in seconds.
DEFAULT_TIMEOUT = 5.0
#: Largest CRL accepted. Real Spine Level 1C CRLs are well under 1 MB; 100,000 entries
#: come to about 4.6 MB. Anything near this limit is broken or hostile.
DEFAULT_MAX_CRL_BYTES = 20 * 1024 * 1024
#: Largest OCSP response accepted (a response with a delegated responder certificate is
#: a few kB).
DEFAULT_MAX_OCSP_BYTES = 256 * 1024

_CHUNK = 64 * 1024
#: A timeout this close to the total deadline is reported as the deadline (seconds).
_DEADLINE_SLACK = 0.05
_SCHEMES = ("http", "https")


@runtime_checkable
class Fetcher(Protocol):
    """**Protocol**: fetches CRLs and posts OCSP requests.

    Implementations raise :class:`~spinepki.errors.FetchError` for every failure
    (unreachable, timeout, HTTP error, oversized answer) and must return within their
    own time limit: the revocation checker calls them while a TLS peer waits.

    Optional: a method that also accepts a keyword argument ``timeout`` (seconds, a
    float > 0) is given what is left of the check's time budget
    (``RevocationLimits(check_timeout=...)``) and must end within it. The checker looks
    at each method's signature once and passes ``timeout`` only to methods that accept
    it (by name or ``**kwargs``), so fetchers written for the two-argument protocol keep
    working; their fetches are then bounded only by their own limit, and the budget
    only stops the checker from starting another fetch.
    """

    def fetch_crl(self, url: str) -> bytes:
        """The DER (or PEM) bytes of the CRL at ``url``."""
        ...

    def post_ocsp(self, url: str, request_der: bytes) -> bytes:
        """The DER OCSP response to ``request_der``, POSTed to ``url`` (RFC 6960 A.1)."""
        ...


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise FetchError(f"not a usable URL: {exc}", source=url) from exc
    if parts.scheme.lower() not in _SCHEMES or not parts.hostname:
        raise FetchError("only http and https URLs are fetched", source=url)


class _Attempt:
    """State shared between the caller and the worker thread of one fetch."""

    __slots__ = ("abandoned", "body", "done", "error", "response")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.abandoned = False
        self.body: bytes | None = None
        self.error: FetchError | None = None
        self.response: requests.Response | None = None

    def abandon(self) -> None:
        self.abandoned = True
        # Never close the response from this thread: the buffered reader's lock is held
        # by the worker's read, so close() would wait for that read to finish. Shutting the
        # socket down needs no lock and ends the read at once (best effort: the socket is
        # reached through urllib3 internals; without it the worker ends at its next read).
        response = self.response
        connection = getattr(getattr(response, "raw", None), "_connection", None)
        sock = getattr(connection, "sock", None)
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class RequestsFetcher:
    """Fetches over HTTP(S) with a pooled :class:`requests.Session`.

    Every fetch is bounded three ways: a connect timeout, a read timeout per socket read,
    and a total deadline (``timeout``) for the whole exchange, so a responder that drips a
    byte at a time cannot hold a check longer than ``timeout``. The body is read in chunks
    and abandoned as soon as it passes the size limit, so a 100 MB answer costs at most the
    limit in memory. Only http and https URLs are fetched, and at most three redirects
    are followed.

    The fetch runs in a short-lived daemon thread so the caller regains control at the
    deadline even when the peer stops sending mid-read; the thread then ends at its next
    read (at the latest after ``read_timeout``). Instances are thread-safe.

    Args:
        timeout: total seconds for one fetch.
        connect_timeout: seconds to establish the connection (capped at ``timeout``).
        read_timeout: seconds any single socket read may wait (capped at ``timeout``).
        max_crl_bytes: largest CRL body accepted.
        max_ocsp_bytes: largest OCSP response body accepted.
        trust_env: honour proxy settings from the environment, as requests does.
        session: a session to use instead of a new pooled one (it is not closed by
            :meth:`close`).

    Raises:
        ConfigurationError: a non-positive timeout or size limit.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = 3.0,
        read_timeout: float | None = None,
        max_crl_bytes: int = DEFAULT_MAX_CRL_BYTES,
        max_ocsp_bytes: int = DEFAULT_MAX_OCSP_BYTES,
        trust_env: bool = True,
        session: requests.Session | None = None,
    ) -> None:
        if timeout <= 0 or connect_timeout <= 0 or (read_timeout is not None and read_timeout <= 0):
            raise ConfigurationError("timeouts must be positive", source="timeout")
        if max_crl_bytes <= 0 or max_ocsp_bytes <= 0:
            raise ConfigurationError("size limits must be positive", source="max_crl_bytes")
        self.timeout = timeout
        """Total seconds one fetch may take."""
        self._connect_timeout = min(connect_timeout, timeout)
        self._read_timeout = min(read_timeout or timeout, timeout)
        self.max_crl_bytes = max_crl_bytes
        """Largest CRL body accepted."""
        self.max_ocsp_bytes = max_ocsp_bytes
        """Largest OCSP response body accepted."""
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=8, pool_maxsize=16, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.trust_env = trust_env
            session.headers["User-Agent"] = "spinepki-revocation"
        session.max_redirects = 3
        self._session = session

    def fetch_crl(self, url: str, *, timeout: float | None = None) -> bytes:
        """GET the CRL at ``url``.

        Args:
            url: the CRL's http(s) URL.
            timeout: total seconds for this fetch, when less than :attr:`timeout` (the
                revocation checker passes what is left of its budget).

        Raises:
            FetchError: bad URL, unreachable, timeout, HTTP status other than 200, or a
                body over ``max_crl_bytes``.
        """
        return self._fetch(
            "GET",
            url,
            None,
            {"Accept": "application/pkix-crl, */*"},
            self.max_crl_bytes,
            timeout,
        )

    def post_ocsp(self, url: str, request_der: bytes, *, timeout: float | None = None) -> bytes:
        """POST a DER OCSP request to ``url`` and return the response body.

        Args:
            url: the responder's http(s) URL.
            request_der: the DER OCSP request.
            timeout: as for :meth:`fetch_crl`.

        Raises:
            FetchError: as :meth:`fetch_crl`, with the ``max_ocsp_bytes`` limit.
        """
        headers = {
            "Content-Type": "application/ocsp-request",
            "Accept": "application/ocsp-response",
        }
        return self._fetch("POST", url, request_der, headers, self.max_ocsp_bytes, timeout)

    def close(self) -> None:
        """Close pooled connections (when the session is ours)."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> RequestsFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fetch(
        self,
        method: str,
        url: str,
        data: bytes | None,
        headers: dict[str, str],
        limit: int,
        timeout: float | None,
    ) -> bytes:
        _check_url(url)
        total = self.timeout if timeout is None else min(self.timeout, timeout)
        if total <= 0:
            raise FetchError("no time left to fetch", source=url)
        attempt = _Attempt()
        deadline = time.monotonic() + total
        worker = threading.Thread(
            target=self._work,
            args=(attempt,),
            kwargs={
                "method": method,
                "url": url,
                "data": data,
                "headers": headers,
                "limit": limit,
                "deadline": deadline,
                "total": total,
            },
            name="spinepki-fetch",
            daemon=True,
        )
        worker.start()
        if not attempt.done.wait(total):
            attempt.abandon()
            raise FetchError(f"no complete answer within {total:g} s", source=url)
        if attempt.error is not None:
            raise attempt.error
        if attempt.body is None:  # pragma: no cover - the worker always sets one of the two
            raise FetchError("the fetch ended without an answer", source=url)
        return attempt.body

    def _work(
        self,
        attempt: _Attempt,
        *,
        method: str,
        url: str,
        data: bytes | None,
        headers: dict[str, str],
        limit: int,
        deadline: float,
        total: float,
    ) -> None:
        try:
            attempt.body = self._exchange(
                attempt,
                method=method,
                url=url,
                data=data,
                headers=headers,
                limit=limit,
                deadline=deadline,
                total=total,
            )
        except FetchError as exc:
            attempt.error = exc
        except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
            # When the per-read timeout equals what is left of the total, the socket's
            # timeout and the caller's deadline fire together; either way the cause is the
            # total deadline, and it gets one message whichever thread notices first.
            if time.monotonic() >= deadline - _DEADLINE_SLACK:
                attempt.error = FetchError(f"no complete answer within {total:g} s", source=url)
            else:
                attempt.error = FetchError(f"timed out ({type(exc).__name__})", source=url)
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
            ValueError,
        ) as exc:
            # ValueError: urllib3/http.client reject malformed status lines or headers.
            attempt.error = FetchError(f"request failed: {_describe(exc)}", source=url)
        finally:
            attempt.done.set()

    def _exchange(
        self,
        attempt: _Attempt,
        *,
        method: str,
        url: str,
        data: bytes | None,
        headers: dict[str, str],
        limit: int,
        deadline: float,
        total: float,
    ) -> bytes:
        response = self._session.request(
            method,
            url,
            data=data,
            headers=headers,
            timeout=(min(self._connect_timeout, total), min(self._read_timeout, total)),
            stream=True,
            allow_redirects=True,
        )
        attempt.response = response
        with response:
            _check_url(response.url)
            if response.status_code != 200:
                raise FetchError(f"HTTP status {response.status_code}", source=url)
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise FetchError(
                    f"the answer is {int(declared)} bytes, over the {limit} byte limit",
                    source=url,
                )
            body = bytearray()
            # read1 returns whatever has arrived (up to a chunk), so the deadline and the
            # size limit are checked after every read, even against a byte-a-second drip.
            while chunk := response.raw.read1(_CHUNK, decode_content=True):
                if attempt.abandoned:
                    raise FetchError("abandoned at the deadline", source=url)
                body += chunk
                if len(body) > limit:
                    raise FetchError(f"the answer is over the {limit} byte limit", source=url)
                if time.monotonic() > deadline:
                    raise FetchError(f"no complete answer within {total:g} s", source=url)
            return bytes(body)


#: Causes worth naming, most specific first: what an operator needs to fix (is the
#: responder down, the name wrong, the TLS set-up refused?) in a few words.
_CAUSES: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (socket.gaierror, "host name not resolved"),
    (ConnectionResetError, "connection reset"),
    (ConnectionAbortedError, "connection aborted"),
    (TimeoutError, "timed out"),
    (ssl.SSLCertVerificationError, "TLS certificate not accepted"),
    (ssl.SSLError, "TLS failed"),
)
#: How many nested exceptions are looked at to find the cause.
_MAX_CAUSE_DEPTH = 16


def _describe(exc: BaseException) -> str:
    """The short cause of a failed request: ``connection refused``, ``host name not
    resolved``, ``TLS failed (WRONG_VERSION_NUMBER)``...

    requests nests the useful part a few levels down (ConnectionError -> MaxRetryError ->
    NewConnectionError -> ConnectionRefusedError), each level repeating the URL; the
    innermost operating-system error says what happened.
    """
    queue: list[BaseException] = [exc]
    seen = 0
    while queue and seen < _MAX_CAUSE_DEPTH:
        current = queue.pop(0)
        seen += 1
        for kind, words in _CAUSES:
            if isinstance(current, kind) and type(current).__module__ in _OS_MODULES:
                detail = getattr(current, "verify_message", None) or getattr(
                    current, "reason", None
                )
                return f"{words} ({detail})" if isinstance(detail, str) and detail else words
        if isinstance(current, OSError) and type(current).__module__ in _OS_MODULES:
            strerror = current.strerror
            if strerror:
                return str(strerror).lower()
        nested = [getattr(current, "reason", None), current.__cause__, current.__context__]
        nested += list(getattr(current, "args", ()))
        queue.extend(n for n in nested if isinstance(n, BaseException))
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


#: Where the exceptions that carry the cause itself are defined (not the wrappers).
_OS_MODULES = frozenset({"builtins", "socket", "ssl", "http.client"})


OCSPAnswer = bytes | Exception | Callable[[bytes], bytes]


class StaticFetcher:
    """Answers from memory: URL → bytes, an exception to raise, or (OCSP) a function of
    the request. Every call is recorded in :attr:`calls` for tests.

    Args:
        crls: CRL answers by URL.
        ocsp: OCSP answers by URL; a callable receives the DER request (so it can echo
            the nonce).
    """

    def __init__(
        self,
        crls: Mapping[str, bytes | Exception] | None = None,
        ocsp: Mapping[str, OCSPAnswer] | None = None,
    ) -> None:
        self.crls: dict[str, bytes | Exception] = dict(crls or {})
        """CRL answers by URL (mutable, so tests can change them)."""
        self.ocsp: dict[str, OCSPAnswer] = dict(ocsp or {})
        """OCSP answers by URL (mutable)."""
        self.calls: list[tuple[str, str]] = []
        """``("crl" | "ocsp", url)`` for every call, in order."""
        self._lock = threading.Lock()

    def fetch_crl(self, url: str, *, timeout: float | None = None) -> bytes:
        """The configured answer for ``url`` (``timeout`` is accepted and ignored: the
        answer is in memory).

        Raises:
            FetchError: nothing configured for ``url``, or the configured exception.
        """
        with self._lock:
            self.calls.append(("crl", url))
        answer = self.crls.get(url)
        if answer is None:
            raise FetchError("no CRL configured for this URL", source=url)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def post_ocsp(self, url: str, request_der: bytes, *, timeout: float | None = None) -> bytes:
        """The configured answer for ``url`` (a callable is given the request;
        ``timeout`` is accepted and ignored).

        Raises:
            FetchError: nothing configured for ``url``, or the configured exception.
        """
        with self._lock:
            self.calls.append(("ocsp", url))
        answer = self.ocsp.get(url)
        if answer is None:
            raise FetchError("no OCSP responder configured for this URL", source=url)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, bytes):
            return answer
        return answer(request_der)
