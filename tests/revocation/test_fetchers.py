"""RequestsFetcher against the real responder, and the in-memory StaticFetcher."""

from __future__ import annotations

import socket
import time
import tracemalloc

import pytest
import requests

from spinepki.errors import ConfigurationError, FetchError
from spinepki.revocation import (
    Fetcher,
    RequestsFetcher,
    StaticFetcher,
    build_ocsp_request,
    load_crl,
)
from spinepki.testpki.responder import Endpoint, Fault, Responder

from ._helpers import SLACK, TIMEOUT


@pytest.fixture
def fetcher() -> RequestsFetcher:
    with RequestsFetcher(timeout=TIMEOUT, trust_env=False) as f:
        yield f  # type: ignore[misc]


def timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    try:
        fn(*args)
    except FetchError as exc:
        return exc, time.monotonic() - start
    raise AssertionError("no FetchError")


@pytest.mark.network
class TestRequestsFetcher:
    def test_fetch_crl(self, spinepki_responder: Responder, fetcher: RequestsFetcher) -> None:
        """A CRL is fetched as served."""
        data = fetcher.fetch_crl(spinepki_responder.url(Endpoint.CRL))
        assert load_crl(data).issuer == spinepki_responder.pki.sub_ca.certificate.subject

    def test_post_ocsp(self, spinepki_responder: Responder, fetcher: RequestsFetcher) -> None:
        """An OCSP request is POSTed and the DER answer returned."""
        pki = spinepki_responder.pki
        request, _ = build_ocsp_request(pki.leaf("ssp").certificate, pki.sub_ca.certificate)
        assert fetcher.post_ocsp(spinepki_responder.url(Endpoint.OCSP), request)[:1] == b"\x30"

    def test_http_error(self, spinepki_responder: Responder, fetcher: RequestsFetcher) -> None:
        """HTTP statuses other than 200 are FetchErrors naming the status."""
        exc, _ = timed(fetcher.fetch_crl, f"{spinepki_responder.base_url}/crl/nope.crl")
        assert "HTTP status 404" in str(exc)

    @pytest.mark.parametrize("declare", [True, False])
    def test_oversized_is_not_read_into_memory(
        self, spinepki_responder: Responder, declare: bool
    ) -> None:
        """A 100 MB answer is refused at the limit, with or without Content-Length,
        and memory stays near the limit."""
        spinepki_responder.set_fault(Fault.OVERSIZED, declare_length=declare)
        limit = 1024 * 1024
        with RequestsFetcher(timeout=5, max_crl_bytes=limit, trust_env=False) as small:
            tracemalloc.start()
            try:
                exc, elapsed = timed(small.fetch_crl, spinepki_responder.url(Endpoint.CRL))
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        assert "byte limit" in str(exc)
        assert peak < 8 * limit
        assert elapsed < 5

    @pytest.mark.parametrize("fault", [Fault.SLOW, Fault.DRIP])
    def test_total_deadline(
        self, spinepki_responder: Responder, fetcher: RequestsFetcher, fault: Fault
    ) -> None:
        """A slow or dripping responder is abandoned at the deadline (+10%)."""
        spinepki_responder.set_fault(fault, delay=5.0 if fault is Fault.SLOW else 0.05)
        exc, elapsed = timed(fetcher.fetch_crl, spinepki_responder.url(Endpoint.CRL))
        assert "within" in str(exc)
        assert TIMEOUT * 0.9 <= elapsed <= TIMEOUT * 1.1 + SLACK

    def test_read_timeout(self, spinepki_responder: Responder) -> None:
        """A per-read timeout shorter than the deadline ends the fetch first."""
        spinepki_responder.set_fault(Fault.SLOW, delay=5.0)
        with RequestsFetcher(timeout=2, read_timeout=0.2, trust_env=False) as quick:
            exc, elapsed = timed(quick.fetch_crl, spinepki_responder.url(Endpoint.CRL))
        assert "timed out" in str(exc)
        assert elapsed < 1

    def test_down(self, spinepki_responder: Responder, fetcher: RequestsFetcher) -> None:
        """A reset connection is a FetchError at once."""
        spinepki_responder.set_fault(Fault.DOWN)
        exc, elapsed = timed(fetcher.fetch_crl, spinepki_responder.url(Endpoint.CRL))
        assert "request failed" in str(exc)
        assert elapsed < TIMEOUT

    def test_refused(self, fetcher: RequestsFetcher) -> None:
        """Nothing listening: connection refused, quickly."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        exc, elapsed = timed(fetcher.fetch_crl, f"http://127.0.0.1:{port}/x.crl")
        assert exc.source == f"http://127.0.0.1:{port}/x.crl"
        assert elapsed < TIMEOUT

    @pytest.mark.parametrize(
        "url", ["file:///etc/passwd", "ldap://dir/cn=x", "ftp://h/x", "http://", "http://[::1/x"]
    )
    def test_only_http_urls(self, fetcher: RequestsFetcher, url: str) -> None:
        """Only http(s) URLs with a host are fetched."""
        with pytest.raises(FetchError):
            fetcher.fetch_crl(url)

    def test_configuration_errors(self) -> None:
        """Non-positive timeouts and limits are refused."""
        for kwargs in ({"timeout": 0}, {"read_timeout": -1}, {"max_crl_bytes": 0}):
            with pytest.raises(ConfigurationError):
                RequestsFetcher(**kwargs)  # type: ignore[arg-type]

    def test_given_session_is_not_closed(self, spinepki_responder: Responder) -> None:
        """A caller's session is used and left open by close()."""
        session = requests.Session()
        session.trust_env = False
        fetcher = RequestsFetcher(session=session)
        assert fetcher.fetch_crl(spinepki_responder.url(Endpoint.CRL))
        fetcher.close()
        assert session.get(spinepki_responder.url(Endpoint.CA, "root")).status_code == 200
        session.close()


class TestStaticFetcher:
    def test_answers_and_records(self) -> None:
        """Configured answers come back; every call is recorded."""
        fetcher = StaticFetcher(crls={"u": b"crl"}, ocsp={"o": b"resp", "e": lambda req: req[::-1]})
        assert isinstance(fetcher, Fetcher)
        assert fetcher.fetch_crl("u") == b"crl"
        assert fetcher.post_ocsp("o", b"req") == b"resp"
        assert fetcher.post_ocsp("e", b"ab") == b"ba"
        assert fetcher.calls == [("crl", "u"), ("ocsp", "o"), ("ocsp", "e")]

    def test_missing_and_exceptions(self) -> None:
        """Unknown URLs and configured exceptions raise."""
        fetcher = StaticFetcher(crls={"x": FetchError("down")}, ocsp={"x": FetchError("down")})
        for call in (lambda: fetcher.fetch_crl("nope"), lambda: fetcher.post_ocsp("nope", b"")):
            with pytest.raises(FetchError, match="configured"):
                call()
        for call in (lambda: fetcher.fetch_crl("x"), lambda: fetcher.post_ocsp("x", b"")):
            with pytest.raises(FetchError, match="down"):
                call()
