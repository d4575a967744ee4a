"""Odd server behaviours, one per branch of the judgement: each is named in a detail."""

from __future__ import annotations

import ssl

import pytest

from spinepki.securitytest import ProbeLimits, SecurityReport, run_security_test
from spinepki.securitytest._dos import idle_connections, slow_headers
from spinepki.securitytest._http import Client
from tests.securitytest.conftest import Written
from tests.securitytest.servers import RawTLSServer, fixed_handler, gp_response, read_head

pytestmark = pytest.mark.network

LIMITS = ProbeLimits(max_connections=2, max_seconds=1.0, trickle_interval=0.1, response_seconds=0.3)
CAPABILITY = {"resourceType": "CapabilityStatement"}


def mixed_handler(tls: ssl.SSLSocket) -> None:
    """A server that is wrong in a different way for each probe variant."""
    head = read_head(tls)
    first = head.split(b"\r\n", 1)[0]
    if b"-1\nX-Spinepki-Injected" in head:
        # splits the response (two responses on one connection)
        tls.sendall(gp_response(200, CAPABILITY).replace(b"Connection: close\r\n", b"") * 2)
    elif b"-1\rX-Spinepki-Injected" in head:
        tls.sendall(gp_response(200, CAPABILITY, "X-Spinepki-Injected: 1\r\n"))
    elif b"\x00x" in head:
        trace = head.split(b"Ssp-TraceID: ", 1)[1].split(b"\x00", 1)[0].decode()
        tls.sendall(gp_response(400, {"resourceType": "OperationOutcome"}, f"X-Echo: {trace}\r\n"))
    elif b"_format" in first:
        return  # close without answering
    elif b"%0d%0a" in first:
        tls.sendall(gp_response(502))
    elif b"X-HTTP-Method-Override: DELETE" in head:
        return
    elif b"X-HTTP-Method: DELETE" in head:
        tls.sendall(gp_response(405))
    elif first.startswith(b"OPTIONS *"):
        tls.sendall(gp_response(204, None, "Allow: GET\r\n"))
    elif first.startswith(b"OPTIONS") and b"Ssp-From" in head:
        tls.sendall(gp_response(503))
    elif first.startswith(b"OPTIONS"):
        origin = head.split(b"Origin: ", 1)[1].split(b"\r\n", 1)[0].decode()
        tls.sendall(gp_response(200, {"echo": origin}))
    elif first.startswith(b"TRACE"):
        tls.sendall(gp_response(405))
    elif b"Ssp-InteractionID" in head and b"Authorization" in head:
        tls.sendall(gp_response(200, CAPABILITY))
    else:
        tls.sendall(gp_response(400, {"resourceType": "OperationOutcome"}))


@pytest.fixture(scope="module")
def mixed(written: Written) -> SecurityReport:
    with RawTLSServer(written.server_context(), mixed_handler) as srv:
        return run_security_test(
            srv.url, client_cert=written.cert, client_key=written.key, timeout=1.0, limits=LIMITS
        )


class TestMixed:
    def test_baseline(self, mixed: SecurityReport) -> None:
        assert mixed.testable

    def test_crlf_details(self, mixed: SecurityReport) -> None:
        detail = mixed.check("headers.crlf_injection").detail
        assert "carries the injected X-Spinepki-Injected header" in detail
        assert "echoed into the response head" in detail
        assert "502 (a server error)" in detail
        assert "%0d%0a in the query: connection closed" not in detail  # closed is not a failure

    def test_split_response(self, mixed: SecurityReport) -> None:
        assert "response splitting" in mixed.check("headers.bare_lf").detail

    @pytest.mark.parametrize(
        ("check_id", "says"),
        [
            ("method.override", ["answered 405"]),
            ("http.options", ["503 (a server error)", "echoing the request"]),
        ],
        ids=["method_override", "options"],
    )
    def test_fails(self, mixed: SecurityReport, check_id: str, says: list[str]) -> None:
        check = mixed.check(check_id)
        assert check.passed is False
        for text in says:
            assert text in check.detail

    def test_trace_refused(self, mixed: SecurityReport) -> None:
        assert mixed.check("http.trace").passed is True


def _client(written: Written, url: str, timeout: float = 1.0) -> Client:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    host, port = url.removeprefix("https://").split(":")
    return Client((host, int(port)), ctx, server_name=None, timeout=timeout)


class TestDosProbes:
    def test_slow_headers_answered(self, written: Written) -> None:
        """A server that answers 408 to a partial head passes, naming the answer."""

        def handler(tls: ssl.SSLSocket) -> None:
            tls.settimeout(0.3)
            try:
                tls.recv(10)
            finally:
                tls.sendall(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")

        with RawTLSServer(written.server_context(), handler) as srv:
            ok, detail = slow_headers(_client(written, srv.url), b"GET / HTTP/1.1\r\n\r\n", LIMITS)
        assert ok is True
        assert "answered (HTTP/1.1 408 Request Timeout)" in detail

    def test_slow_headers_unreachable(self, written: Written) -> None:
        client = _client(written, "https://127.0.0.1:1")
        ok, detail = slow_headers(client, b"GET / HTTP/1.1\r\n\r\n", LIMITS)
        assert ok is None
        assert "could not open" in detail

    def test_idle_nothing_opens(self, written: Written) -> None:
        ok, detail, response = idle_connections(
            _client(written, "https://127.0.0.1:1"), b"GET / HTTP/1.1\r\n\r\n", LIMITS
        )
        assert ok is None
        assert response is None
        assert "could not open any" in detail

    def test_idle_answered_wrong(self, written: Written) -> None:
        with RawTLSServer(written.server_context(), fixed_handler(gp_response(503))) as srv:
            ok, detail, _response = idle_connections(
                _client(written, srv.url), b"GET / HTTP/1.1\r\n\r\n", LIMITS
            )
        assert ok is False
        assert "answered 503" in detail

    def test_idle_closed(self, written: Written) -> None:
        with RawTLSServer(written.server_context(), fixed_handler(b"")) as srv:
            ok, detail, _ = idle_connections(
                _client(written, srv.url), b"GET / HTTP/1.1\r\n\r\n", LIMITS
            )
        assert ok is False
        assert "not answered (" in detail
