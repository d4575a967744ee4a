"""The provider's HTTP/1.1 layer: anycorn's own answers, bare LFs, HTTP/2 attempts.

Regression tests for the security suite's ``http.no_store`` (anycorn's 400/431 carried
no ``Cache-Control: no-store``) and ``headers.bare_lf`` (h11 took a bare LF in a header
value as a line break). The unit tests drive ``_StrictConnection`` with bytes, no
sockets; the others go over TLS on 127.0.0.1 to the module's provider.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinepki.demo._callers import SSPRequest
from spinepki.provider import ProviderServer
from spinepki.provider._loop import REFUSED_PATH, _HeadScan, _StrictConnection, _target_problem
from tests.provider._helpers import Response, Written, parse, read_response, request, tls_connect

MAX = 16384
HEAD = b"GET /x HTTP/1.1\r\nHost: h\r\n"


# -- the head scan, without sockets ------------------------------------------------------


def _events(conn: h11.Connection) -> list[object]:
    out: list[object] = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA or event is h11.PAUSED:
            return out
        out.append(event)
        if isinstance(event, h11.EndOfMessage):
            return out


def _answer(conn: h11.Connection) -> None:
    conn.send(h11.Response(status_code=200, headers=[(b"content-length", b"0")]))
    conn.send(h11.EndOfMessage())
    conn.start_next_cycle()


def _status_of_refusal(conn: h11.Connection) -> int:
    with pytest.raises(h11.RemoteProtocolError) as caught:
        _events(conn)
    return caught.value.error_status_hint


def _fed(data: bytes) -> _StrictConnection:
    """A strict connection that has received ``data``."""
    conn = _StrictConnection(MAX)
    conn.receive_data(data)
    return conn


class TestStrictConnection:
    def test_crlf_head_is_parsed(self) -> None:
        events = _events(_fed(HEAD + b"X-A: 1\r\n\r\n"))
        assert isinstance(events[0], h11.Request)
        assert (b"x-a", b"1") in list(events[0].headers)

    @pytest.mark.parametrize(
        ("data", "status"),
        [
            pytest.param(HEAD + b"X-A: 1\nX-Injected: 2\r\n\r\n", 400, id="bare_lf_in_a_header"),
            pytest.param(b"GET /x HTTP/1.1\nHost: h\r\n\r\n", 400, id="bare_lf_after_request_line"),
            pytest.param(HEAD + b"\n", 400, id="bare_lf_blank_line"),
            *(
                pytest.param(line + b"\r\nHost: h\r\n\r\n", 505, id=line.decode())
                for line in [b"PRI * HTTP/2.0", b"GET /x HTTP/2.0", b"GET /x HTTP/3.0"]
            ),
        ],
    )
    def test_is_refused(self, data: bytes, status: int) -> None:
        """A bare LF anywhere in the head is a 400; another HTTP version a 505."""
        assert _status_of_refusal(_fed(data)) == status

    def test_byte_at_a_time(self) -> None:
        """Split anywhere (CR and LF in different reads), a CRLF head parses and a bare
        LF is still found."""
        good, bad = _StrictConnection(MAX), _StrictConnection(MAX)
        for i in range(len(HEAD)):
            good.receive_data(HEAD[i : i + 1])
            assert _events(good) == []
        good.receive_data(b"\r")
        good.receive_data(b"\n")
        assert isinstance(_events(good)[0], h11.Request)
        data = HEAD + b"X-A: 1\nX: 2\r\n\r\n"
        for i in range(len(data)):
            bad.receive_data(data[i : i + 1])
            if data[i : i + 1] == b"\n" and data[i - 1 : i] != b"\r":
                break
            assert _events(bad) == []
        assert _status_of_refusal(bad) == 400

    def test_body_is_not_scanned(self) -> None:
        """A body may contain LFs (pretty-printed JSON), in the head's read or later."""
        body = b'{\n  "a": 1\n}\n'
        conn = _StrictConnection(MAX)
        head = HEAD + b"Content-Length: %d\r\n\r\n" % len(body)
        conn.receive_data(head + body[:5])
        conn.receive_data(body[5:])
        events = _events(conn)
        assert isinstance(events[0], h11.Request)
        assert b"".join(bytes(e.data) for e in events if isinstance(e, h11.Data)) == body

    def test_pipelined_heads_are_each_scanned(self) -> None:
        """The next request's head, already buffered when the cycle restarts, is
        scanned from its start; the body in between is not."""
        body = b"a\nb"
        first = HEAD + b"Content-Length: 3\r\n\r\n" + body
        conn = _StrictConnection(MAX)
        conn.receive_data(first + HEAD + b"\r\n" + HEAD + b"X: 1\n\r\n")
        assert isinstance(_events(conn)[0], h11.Request)
        _answer(conn)
        assert isinstance(_events(conn)[0], h11.Request)
        _answer(conn)
        assert _status_of_refusal(conn) == 400

    def test_pipelined_head_split_over_the_cycle(self) -> None:
        conn = _StrictConnection(MAX)
        conn.receive_data(HEAD + b"\r\nGET /y HTTP/1.1\r")
        assert isinstance(_events(conn)[0], h11.Request)
        _answer(conn)
        conn.receive_data(b"\nHost: h\n\r\n")
        assert _status_of_refusal(conn) == 400

    def test_http_1_0_is_parsed(self) -> None:
        assert isinstance(_events(_fed(b"GET /x HTTP/1.0\r\n\r\n"))[0], h11.Request)

    def test_scan_is_linear_and_stops_at_the_blank_line(self) -> None:
        scan = _HeadScan()
        assert scan.feed(b"GET / HTTP/1.1\r\nA: b\r")
        assert scan.feed(b"\n\r")
        assert scan.active
        assert scan.feed(b"\n\n\n")  # the blank line ends the head; the rest is body
        assert not scan.active


# -- over TLS ----------------------------------------------------------------------------


def _host(written: Written, provider: ProviderServer) -> str:
    return f"{written.pki.provider_fqdn}:{provider.address[1]}"


def _valid(written: Written, provider: ProviderServer) -> bytes:
    return SSPRequest().render(_host(written, provider), int(time.time()))


def _inject(raw: bytes, header: bytes) -> bytes:
    """``raw`` with ``header`` (its own line ending included) after the request line."""
    line, _, rest = raw.partition(b"\r\n")
    return line + b"\r\n" + header + rest


def _exchange(written: Written, provider: ProviderServer, *pieces: bytes) -> tuple[bytes, Response]:
    with tls_connect(provider.address, written.client(), written.pki.provider_fqdn) as tls:
        for piece in pieces:
            tls.sendall(piece)
        raw = read_response(tls)
    return raw, parse(raw)


def _assert_server_refusal(raw: bytes, response: Response, status: int) -> None:
    """anycorn's own answer, as this server sends it: no-store and an OperationOutcome."""
    assert response.status == status
    assert response.headers["cache-control"] == "no-store"
    assert raw.lower().count(b"\r\ncache-control:") == 1
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.headers["connection"] == "close"
    assert int(response.headers["content-length"]) == len(response.body)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "BAD_REQUEST"
    assert issue["code"] == "invalid"
    assert b"server:" not in raw.lower()


class TestServerAnswers:
    """Every answer carries ``Cache-Control: no-store`` (GP Connect), errors included."""

    @pytest.mark.parametrize(
        ("header", "status", "diagnostics"),
        [
            pytest.param(b"X-Bad: a\rb\r\n", 400, "not well-formed", id="bare_cr_400"),
            pytest.param(b"X-Bad: a\x00b\r\n", 400, "", id="nul_byte_400"),
            pytest.param(
                b"X-Padding: " + b"a" * 65536 + b"\r\n", 431, "larger than", id="oversized_head_431"
            ),
        ],
    )
    def test_a_bad_head_is_refused_with_no_store_and_outcome(
        self,
        written: Written,
        provider: ProviderServer,
        header: bytes,
        status: int,
        diagnostics: str,
    ) -> None:
        data = _inject(_valid(written, provider), header)
        raw, response = _exchange(written, provider, data)
        _assert_server_refusal(raw, response, status)
        assert diagnostics in response.json()["issue"][0]["diagnostics"]

    def test_undecodable_path_is_400_with_no_store(
        self, written: Written, provider: ProviderServer
    ) -> None:
        """anycorn's HTTP stream refuses a path that is not UTF-8 once decoded; its
        bare 400 gets no-store on the way out."""
        valid = _valid(written, provider)
        line, _, rest = valid.partition(b"\r\n")
        method, target, version = line.split(b" ")
        raw, response = _exchange(
            written, provider, b" ".join([method, target + b"%FF", version]) + b"\r\n" + rest
        )
        assert response.status == 400
        assert response.headers["cache-control"] == "no-store"
        assert raw.lower().count(b"\r\ncache-control:") == 1

    def test_served_response_has_exactly_one_no_store(
        self, written: Written, provider: ProviderServer
    ) -> None:
        raw, response = _exchange(written, provider, _valid(written, provider))
        assert response.status == 200
        assert response.headers["cache-control"] == "no-store"
        assert raw.lower().count(b"\r\ncache-control:") == 1


class TestBareLF:
    """A bare LF in the head is refused before h11 reads it as a line break."""

    def test_bare_lf_in_a_header_value_is_refused(
        self, written: Written, provider: ProviderServer
    ) -> None:
        data = _valid(written, provider).replace(
            b"Connection: close\r\n", b"Connection: close\nX-Injected: 1\r\n"
        )
        raw, response = _exchange(written, provider, data)
        _assert_server_refusal(raw, response, 400)

    def test_bare_lf_split_across_records_is_refused(
        self, written: Written, provider: ProviderServer
    ) -> None:
        data = _inject(_valid(written, provider), b"X-A: 1\nX-B: 2\r\n")
        cut = data.index(b"1\n") + 1
        raw, response = _exchange(written, provider, data[:cut], data[cut:])
        _assert_server_refusal(raw, response, 400)

    def test_crlf_split_between_records_is_served(
        self, written: Written, provider: ProviderServer
    ) -> None:
        data = _inject(_valid(written, provider), b"X-A: 1\r\n")
        cut = data.index(b"1\r\n") + 2  # CR in one record, LF in the next
        _, response = _exchange(written, provider, data[:cut], data[cut:])
        assert response.status == 200

    def test_second_pipelined_request_with_bare_lf_is_refused(
        self, written: Written, provider: ProviderServer
    ) -> None:
        first = _valid(written, provider).replace(b"Connection: close\r\n", b"")
        second = _inject(_valid(written, provider), b"X-A: 1\nX-B: 2\r\n")
        raw, _ = _exchange(written, provider, first + second)
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        length = int(parse(head + b"\r\n\r\n").headers["content-length"])
        second_raw = rest[length:]
        _assert_server_refusal(second_raw, parse(second_raw), 400)


class TestHTTP1Only:
    """No ALPN is offered, and no in-band switch to HTTP/2 either."""

    def test_http2_preface_is_505(self, written: Written, provider: ProviderServer) -> None:
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        _, response = _exchange(written, provider, preface)
        assert response.status == 505
        assert response.headers["cache-control"] == "no-store"
        assert "HTTP/1.1" in response.json()["issue"][0]["diagnostics"]

    @pytest.mark.parametrize(
        "upgrade",
        [
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n",
            b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            b"Upgrade: TLS/1.2\r\n",
        ],
        ids=["h2c", "websocket", "tls"],
    )
    def test_upgrade_is_refused_and_closed(
        self, written: Written, provider: ProviderServer, upgrade: bytes
    ) -> None:
        """Any ``Upgrade`` is refused with a 400 OperationOutcome (no-store) and the
        connection closed: no switch, and nothing a proxy in front could take for an
        upgraded tunnel. anycorn answered websocket with an empty 403 (issue 11)."""
        raw, response = _exchange(written, provider, _inject(_valid(written, provider), upgrade))
        _assert_server_refusal(raw, response, 400)
        assert "upgrades are refused" in response.json()["issue"][0]["diagnostics"]
        assert "upgrade" not in response.headers


# -- one reading of every request (issue 11 item 3) -------------------------------------

ROOT = b"/A12345/STU3/1/gpconnect"


def _with_line(raw: bytes, method: bytes | None = None, target: bytes | None = None) -> bytes:
    """``raw`` with its request line's method and/or target replaced."""
    line, _, rest = raw.partition(b"\r\n")
    old_method, old_target, version = line.split(b" ")
    return b" ".join([method or old_method, target or old_target, version]) + b"\r\n" + rest


def _line(written: Written, provider: ProviderServer, **change: bytes) -> bytes:
    """The valid request with its method or target changed."""
    return _with_line(_valid(written, provider), **change)


def _responses(raw: bytes) -> int:
    return raw.count(b"HTTP/1.1 ")


class TestStrictFraming:
    """Requests the provider and anything in front of it could read differently are
    refused (400, OperationOutcome, no-store) before the gate, and the connection closed.
    After each, the SSP is served (the autouse fixture)."""

    @pytest.fixture(autouse=True)
    def _ssp_still_served(self, written: Written, provider: ProviderServer) -> Iterator[None]:
        yield
        assert request(written, provider.address).status == 200

    @pytest.mark.parametrize(
        "te",
        [
            b"Transfer-Encoding: chunked\r\n",
            b"Transfer-Encoding: ChUnKeD\r\n",
            b"Transfer-Encoding:\tchunked\r\n",
            b"Transfer-Encoding:\r\n chunked\r\n",  # obs-fold
        ],
        ids=["chunked", "mixed-case", "tab", "obs-fold"],
    )
    def test_content_length_with_transfer_encoding(
        self, written: Written, provider: ProviderServer, te: bytes
    ) -> None:
        """CL + TE (RFC 9112 §6.1): one 400, the connection closed, and the request
        hidden in the body never served. It was framed by TE and the hidden request
        answered 200 on the same connection."""
        hidden = _valid(written, provider)
        body = b"0\r\n\r\n" + hidden
        smuggler = _with_line(_valid(written, provider), method=b"POST").replace(
            b"Connection: close\r\n", b""
        )
        head, _, _ = smuggler.partition(b"\r\n\r\n")
        data = head + b"\r\nContent-Length: 5\r\n" + te + b"\r\n" + body
        raw, response = _exchange(written, provider, data)
        _assert_server_refusal(raw, response, 400)
        assert "Transfer-Encoding" in response.json()["issue"][0]["diagnostics"]
        assert _responses(raw) == 1

    def test_conflicting_content_lengths(self, written: Written, provider: ProviderServer) -> None:
        """Two different Content-Lengths: h11's 400, with the server's OperationOutcome.
        (Identical repeats are merged by h11 into one, which every reader agrees on.)"""
        head, _, _ = _valid(written, provider).partition(b"\r\n\r\n")
        data = head + b"\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello"
        raw, response = _exchange(written, provider, data)
        _assert_server_refusal(raw, response, 400)

    @pytest.mark.parametrize(
        ("target", "why"),
        [
            *(
                (target, "encoded delimiter")
                for target in (
                    ROOT + b"%2Fmetadata",
                    ROOT.replace(b"/gpconnect", b"%2Fgpconnect") + b"/metadata",
                    b"%2FA12345%2FSTU3%2F1%2Fgpconnect%2Fmetadata",
                    ROOT + b"/Patient%2F1",
                    ROOT + b"/metadata%5C..%5CPatient%5C1",
                    ROOT + b"/metadata%00",
                    ROOT + b"/%2e%2e/gpconnect/metadata",
                    ROOT + b"/metadata%252F",
                    ROOT + b"/metadata%3Bx=1",
                    ROOT + b"/metadata%3F",
                    ROOT + b"/metadata%23",
                    ROOT + b"/%C0%AE%C0%AE/metadata",
                    ROOT + b"/metadata%FF",
                    ROOT + b"/metadata%0d%0a",
                )
            ),
            *(
                (target, "malformed")
                for target in (
                    ROOT + b"/metadata%ZZ",
                    ROOT + b"/metadata%",
                    ROOT + b"/metadata%2",
                    ROOT + b"%/x",
                )
            ),
            (ROOT + b"\\metadata", "backslash"),
            (ROOT + b"/metadata#x", "fragment"),
        ],
    )
    def test_paths_a_proxy_could_read_otherwise_are_refused(
        self, written: Written, provider: ProviderServer, target: bytes, why: str
    ) -> None:
        """An encoded delimiter, dot, percent, control or non-ASCII byte in the path is
        refused before the gate: `…/gpconnect%2Fmetadata`, `…/Patient%2F1` and a fully
        encoded root were served 200 (decoded before the gate). Malformed escapes get an
        OperationOutcome (they got an empty 400)."""
        raw, response = _exchange(written, provider, _line(written, provider, target=target))
        _assert_server_refusal(raw, response, 400)
        assert why in response.json()["issue"][0]["diagnostics"]

    @pytest.mark.parametrize("method", [b"get", b"Get", b"gET"])
    def test_method_names_are_case_sensitive(
        self, written: Written, provider: ProviderServer, method: bytes
    ) -> None:
        """A lower-case ``get`` is not GET (RFC 9110 §9.1): refused, where anycorn's
        upper-casing had it served 200."""
        raw, response = _exchange(
            written, provider, _with_line(_valid(written, provider), method=method)
        )
        _assert_server_refusal(raw, response, 400)
        assert "case-sensitive" in response.json()["issue"][0]["diagnostics"]

    def test_an_app_that_answers_nothing_gets_an_outcome(self, written: Written) -> None:
        """anycorn's own 500 (the app returned without a response) carries an
        OperationOutcome and no-store, like every answer the server gives itself."""
        from spinepki.provider import run_provider

        async def silent(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                message = await receive()
                await send({"type": f"{message['type']}.complete"})
                await receive()
                await send({"type": "lifespan.shutdown.complete"})

        with run_provider(written.config(), app=silent) as server:
            _, response = _exchange(written, server, _valid(written, server))
        assert response.status == 500
        assert response.headers["cache-control"] == "no-store"
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "exception"


# -- the path rule, for every path (the general rule, not the probes) ---------------------

_UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
_SEGMENT_CHARS = st.sampled_from([*_UNRESERVED, "$", ":", "@", "!", "'", "(", ")", "*", "+", ","])


@st.composite
def _paths(draw: st.DrawFn) -> bytes:
    """Paths of segments mixing plain characters and percent-escapes of any byte."""
    segments = []
    for _ in range(draw(st.integers(1, 6))):
        parts = []
        for _ in range(draw(st.integers(0, 6))):
            if draw(st.booleans()):
                parts.append(draw(_SEGMENT_CHARS))
            else:
                byte = draw(st.integers(0, 255))
                parts.append(f"%{byte:02{'X' if draw(st.booleans()) else 'x'}}")
        segments.append("".join(parts))
    return ("/" + "/".join(segments)).encode("ascii")


class TestPathRule:
    @given(_paths())
    @settings(max_examples=300)
    def test_an_accepted_path_decodes_to_the_same_segments(self, path: bytes) -> None:
        """For any path the provider accepts, decoding changes no segment boundary, makes
        no dot segment and leaves no backslash, percent, control or non-ASCII character:
        the gate (which sees the decoded path) and a proxy that matches the raw path see
        the same segments. Every path it refuses has an escape that would break this."""
        from urllib.parse import unquote_to_bytes

        problem = _target_problem(path)
        decoded = unquote_to_bytes(path)
        raw_segments = path.split(b"/")
        breaks = (
            len(decoded.split(b"/")) != len(raw_segments)
            or any(
                d in (b".", b"..") and r != d
                for d, r in zip(decoded.split(b"/"), raw_segments, strict=False)
            )
            or any(c in decoded for c in b"\\%?#;")
            or any(c < 0x20 or c >= 0x7F for c in decoded)
        )
        if problem is None:
            assert not breaks, path
        # Refused paths: only for an escape in the refused class (not for plain ones).
        elif b"%" in path and problem[1] == REFUSED_PATH:
            assert breaks or any(c in decoded for c in b".")

    @given(st.binary(max_size=64))
    @settings(max_examples=300)
    def test_malformed_escapes_are_found(self, tail: bytes) -> None:
        """A % not followed by two hex digits in the path is always refused (the query
        is the application's: it is not decoded into the path)."""
        path = b"/x/" + tail.replace(b"%", b"").replace(b"?", b"") + b"%"
        problem = _target_problem(path)
        assert problem is not None

    def test_plain_paths_pass(self) -> None:
        for path in (ROOT + b"/metadata", ROOT + b"/Patient/1?x=%2F", b"*", ROOT + b"/$gpc.x"):
            assert _target_problem(path) is None, path
