"""The pure parts: target parsing, limits, response parsing, judgements, request building."""

from __future__ import annotations

import pytest

from spinepki.errors import ConfigurationError
from spinepki.securitytest import (
    InteractionPaths,
    ProbeLimits,
    ProbeTarget,
    SecurityTestError,
    parse_url,
)
from spinepki.securitytest._http import Response, parse_response
from spinepki.securitytest._judge import banner, combine, expect_refusal, leaks, resource_type


class TestParseUrl:
    @pytest.mark.parametrize(
        ("url", "host", "port", "root"),
        [
            (
                "https://127.0.0.1:8443/A12345/STU3/1/gpconnect",
                "127.0.0.1",
                8443,
                "/A12345/STU3/1/gpconnect",
            ),
            ("https://provider.example.nhs.uk/", "provider.example.nhs.uk", 443, ""),
            ("https://provider.example.nhs.uk", "provider.example.nhs.uk", 443, ""),
            ("HTTPS://[::1]:9443/root/", "::1", 9443, "/root"),
        ],
    )
    def test_accepted(self, url: str, host: str, port: int, root: str) -> None:
        t = parse_url(url)
        assert (t.host, t.port, t.root) == (host, port, root)

    def test_host_header(self) -> None:
        assert parse_url("https://[::1]:9443/").host_header == "[::1]:9443"
        assert parse_url("https://a.example/").host_header == "a.example"

    @pytest.mark.parametrize(
        ("url", "match"),
        [
            ("https://10.0.0.0/24", "ranges"),
            ("https://[::1]/64", "ranges"),
            ("https://10.0.0.1-20/", "ranges"),
            ("https://a.example,b.example/", "ranges"),
            ("https://*.nhs.uk/", "ranges"),
            ("https://a.example /x", "ranges"),
            ("", "ranges"),
            ("https://ünï.example/", "ranges"),
            ("http://a.example/", "https"),
            ("a.example:443", "https"),
            ("https://user:pw@a.example/", "user information"),
            ("https://a.example/x?y=1", "query"),
            ("https://a.example/x#f", "query"),
            ("https:///x", "no host"),
            ("https://a.example:99999/", "port"),
            ("https://a.example:0/", "port"),
            ("https://a.example/a%2Fb", "plain segments"),
            ("https://a.example/a//b", "plain segments"),
            ("https://a.example/a/../b", ". or .."),
            ("https://[zz::1]/", "URL"),
        ],
    )
    def test_refused(self, url: str, match: str) -> None:
        with pytest.raises(ConfigurationError, match=match):
            parse_url(url)


class TestLimits:
    @pytest.mark.parametrize(
        "kw",
        [
            {"max_connections": 0},
            {"max_connections": 501},
            {"max_connections": True},
            {"max_seconds": 0},
            {"max_seconds": 121},
            {"max_seconds": float("nan")},
            {"response_seconds": "1"},
            {"trickle_interval": 5, "max_seconds": 2},
        ],
    )
    def test_refused(self, kw: dict[str, object]) -> None:
        with pytest.raises(ConfigurationError):
            ProbeLimits(**kw)  # type: ignore[arg-type]

    def test_ceilings_allowed(self) -> None:
        limits = ProbeLimits(max_connections=500, max_seconds=120)
        assert limits.as_dict()["max_connections"] == 500

    def test_error_names_target(self) -> None:
        err = SecurityTestError("gone", host="h", port=1)
        assert err.code == "security_test.unreachable"
        assert "h:1" in str(err)


class TestProbeTargets:
    @pytest.mark.parametrize(
        "kw",
        [
            {"method": "POST"},
            {"interaction": ""},
            {"path": "metadata"},
            {"path": "/meta data"},
            {"path": "/m?x=1"},
            {"path": "/m%20"},
            {"scope": "patient/*.read\n"},
        ],
    )
    def test_refused(self, kw: dict[str, str]) -> None:
        values = {"interaction": "urn:x", "path": "/metadata", "scope": "organization/*.read"}
        values.update(kw)
        with pytest.raises(ConfigurationError):
            ProbeTarget(**values)

    def test_paths_must_differ(self) -> None:
        p = ProbeTarget("urn:x", "/metadata", "organization/*.read")
        with pytest.raises(ConfigurationError, match="differ"):
            InteractionPaths(valid=p, other=p)


def _ok(status: int, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response("answered", status=status, headers=headers, body=body)


class TestParseResponse:
    def test_incomplete_and_garbage(self) -> None:
        assert parse_response(b"", eof=False) is None
        assert parse_response(b"HTT", eof=False) is None
        garbage = parse_response(b"\x15\x03\x03\x00\x02", eof=False)
        assert garbage is not None
        assert garbage.outcome == "error"
        cut = parse_response(b"HTTP/1.1 200 OK\r\nA: b", eof=True)
        assert cut is not None
        assert cut.outcome == "error"
        assert parse_response(b"HTTP/1.1 200 OK\r\nA: b", eof=False) is None

    def test_content_length(self) -> None:
        data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"
        assert parse_response(data, eof=False) is None
        r = parse_response(data + b"loHTTP/1.1 200 OK\r\n\r\n", eof=False)
        assert r is not None
        assert r.body == b"hello"
        assert r.split

    def test_chunked(self) -> None:
        data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\n\r\n"
        assert parse_response(data[:-10], eof=False) is None
        assert parse_response(data[:-2], eof=False) is None
        r = parse_response(data, eof=False)
        assert r is not None
        assert r.body == b"hello"
        assert r.trailing == b""
        cut = parse_response(data[:-10], eof=True)
        assert cut is not None
        assert cut.status == 200
        bad = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", eof=False
        )
        assert bad is not None
        assert bad.body == b""

    def test_no_length_and_no_body(self) -> None:
        data = b"HTTP/1.1 200 OK\r\n\r\nall of it"
        assert parse_response(data, eof=False) is None
        r = parse_response(data, eof=True)
        assert r is not None
        assert r.body == b"all of it"
        r204 = parse_response(b"HTTP/1.1 204 No Content\r\n\r\n", eof=False)
        assert r204 is not None
        assert r204.body == b""
        head = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", eof=False, head_request=True
        )
        assert head is not None
        assert head.status == 200
        odd = parse_response(b"HTTP/1.1 abc\r\n\r\n", eof=False)
        assert odd is not None
        assert odd.status is None


class TestJudge:
    def test_expect_refusal(self) -> None:
        assert expect_refusal(Response("closed")) == (True, "connection closed")
        assert expect_refusal(Response("closed"), gp_connect_400=True)[0] is False
        assert expect_refusal(Response("timeout", error="t"))[0] is None
        assert expect_refusal(_ok(500))[0] is False
        assert expect_refusal(_ok(404)) == (True, "404")
        assert expect_refusal(_ok(404), gp_connect_400=True)[0] is False
        oo = b'{"resourceType":"OperationOutcome"}'
        assert expect_refusal(_ok(400, oo), gp_connect_400=True) == (True, "400")
        assert expect_refusal(_ok(400, b"{}"), gp_connect_400=True)[0] is False
        assert expect_refusal(_ok(301))[0] is True
        assert expect_refusal(_ok(301), gp_connect_400=True)[0] is False
        assert expect_refusal(_ok(200)) == (False, "served 200")

    def test_combine(self) -> None:
        assert combine([("a", (True, "400"))]) == (True, "400")
        ok, note = combine([("a", (True, "400")), ("b", (True, "400"))])
        assert ok is True
        assert "400 x2" in note
        assert combine([("a", (True, "x")), ("b", (None, "t"))])[0] is None
        assert combine([("a", (None, "x")), ("b", (False, "t"))])[0] is False

    def test_leaks(self) -> None:
        assert leaks(_ok(500, b'  File "/srv/app.py", line 3, in f')) == [
            "a Python stack frame",
            "a file path",
        ]
        java = b"at org.example.Foo.bar(Foo.java:12)"
        assert "a Java stack frame" in leaks(_ok(500, java))
        dotnet = b"at App.Controllers.Get() in C:\\\\src\\\\App.cs:line 42"
        assert "a .NET stack frame" in leaks(_ok(500, dotnet))
        assert leaks(_ok(500, b"NullPointerException")) == ["an exception class name"]
        assert leaks(_ok(500, b"handler.go:12 failed")) == ["a source file and line"]
        clean = b'{"resourceType":"OperationOutcome","issue":[{"code":"INTERNAL_SERVER_ERROR"}]}'
        assert leaks(_ok(500, clean)) == []

    def test_banner(self) -> None:
        assert banner(_ok(200, headers=(("Server", "nginx"),))) == []
        assert banner(_ok(200, headers=(("Server", "nginx/1.25.3"),))) == ["Server: nginx/1.25.3"]
        assert banner(_ok(200, headers=(("X-AspNet-Version", "4.0"),))) == ["X-AspNet-Version: 4.0"]
        page = b"<hr>Apache/2.4.41 (Ubuntu) Server at x Port 443"
        assert banner(_ok(404, page)) == ["error page names 'Apache/2.4.41'"]
        assert banner(_ok(200, page)) == []

    def test_resource_type(self) -> None:
        assert resource_type(_ok(200, b"[]")) is None
        assert resource_type(_ok(200, b"not json")) is None
        assert resource_type(_ok(200, b'{"resourceType":"Patient"}')) == "Patient"
        assert Response("answered", head=b"H", body=b"B").text == "H\r\n\r\nB"
