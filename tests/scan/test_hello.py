"""The raw ClientHello builder and the ServerHello/Certificate/SSLv2 parsers."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spinepki.scan._hello import (
    SSL3,
    TLS1_0,
    TLS1_2,
    TLS1_3,
    Alert,
    FlightReader,
    HelloParseError,
    build_client_hello,
    build_sslv2_client_hello,
    parse_certificate_message,
    parse_server_hello,
    parse_sslv2_server_hello,
)

_HRR = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


def server_hello_body(
    version: int,
    suite: int,
    *,
    session_id: bytes = b"",
    extensions: list[tuple[int, bytes]] | None = None,
    random: bytes = b"\x11" * 32,
) -> bytes:
    body = struct.pack(">H", version) + random + bytes([len(session_id)]) + session_id
    body += struct.pack(">HB", suite, 0)
    if extensions is not None:
        ext = b"".join(struct.pack(">HH", t, len(d)) + d for t, d in extensions)
        body += struct.pack(">H", len(ext)) + ext
    return body


def handshake_msg(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def records(payload: bytes, *, content_type: int = 22, size: int = 16384) -> bytes:
    out = b""
    for i in range(0, len(payload), size):
        chunk = payload[i : i + size]
        out += struct.pack(">BHH", content_type, TLS1_2, len(chunk)) + chunk
    return out


def certificate_body(ders: list[bytes]) -> bytes:
    inner = b"".join(len(d).to_bytes(3, "big") + d for d in ders)
    return len(inner).to_bytes(3, "big") + inner


class TestServerHello:
    @given(
        version=st.sampled_from([SSL3, TLS1_0, 0x0302, TLS1_2]),
        suite=st.integers(0, 0xFFFF),
        session_id=st.binary(max_size=32),
        ext_types=st.lists(st.integers(0, 0xFFFF).filter(lambda t: t != 43), max_size=5),
    )
    def test_round_trip(
        self, version: int, suite: int, session_id: bytes, ext_types: list[int]
    ) -> None:
        """A well-formed ServerHello parses back to its version, suite and extensions."""
        body = server_hello_body(
            version, suite, session_id=session_id, extensions=[(t, b"x") for t in ext_types]
        )
        hello = parse_server_hello(body)
        assert (hello.version, hello.cipher_suite) == (version, suite)
        assert hello.extensions == tuple(ext_types)
        assert not hello.retry_request

    def test_tls13_version_comes_from_supported_versions(self) -> None:
        """A TLS 1.3 ServerHello says 0x0303 and carries 0x0304 in supported_versions."""
        body = server_hello_body(TLS1_2, 0x1301, extensions=[(43, b"\x03\x04")])
        assert parse_server_hello(body).version == TLS1_3

    def test_hello_retry_request_is_recognised(self) -> None:
        """The fixed HelloRetryRequest random marks a retry (RFC 8446 §4.1.3)."""
        body = server_hello_body(TLS1_2, 0x1301, extensions=[(43, b"\x03\x04")], random=_HRR)
        assert parse_server_hello(body).retry_request

    @given(st.binary(max_size=200))
    def test_garbage_raises_only_parse_errors(self, data: bytes) -> None:
        """Arbitrary bytes either parse or raise HelloParseError, never anything else."""
        with contextlib.suppress(HelloParseError):
            parse_server_hello(data)

    @given(st.data())
    def test_every_truncation_is_rejected(self, data: st.DataObject) -> None:
        """Cutting a ServerHello anywhere is a parse error, except right before the
        extensions (a ServerHello without extensions is well formed)."""
        bare = server_hello_body(TLS1_2, 0xC030, session_id=b"s" * 8)
        body = server_hello_body(TLS1_2, 0xC030, session_id=b"s" * 8, extensions=[(65281, b"\x00")])
        cut = data.draw(st.integers(0, len(body) - 1).filter(lambda n: n != len(bare)))
        with pytest.raises(HelloParseError):
            parse_server_hello(body[:cut])


class TestCertificateMessage:
    @given(st.lists(st.binary(min_size=1, max_size=300), max_size=4))
    def test_round_trip(self, ders: list[bytes]) -> None:
        """The certificate list comes back in order."""
        assert parse_certificate_message(certificate_body(ders)) == tuple(ders)

    @given(st.binary(max_size=300))
    def test_garbage_raises_only_parse_errors(self, data: bytes) -> None:
        """Arbitrary bytes either parse or raise HelloParseError."""
        with contextlib.suppress(HelloParseError):
            parse_certificate_message(data)


class TestFlightReader:
    @given(
        suite=st.integers(0, 0xFFFF),
        ders=st.lists(st.binary(min_size=1, max_size=500), min_size=1, max_size=3),
        record_size=st.integers(1, 600),
        chunks=st.lists(st.integers(1, 700), min_size=1, max_size=50),
    )
    def test_any_fragmentation_gives_the_same_answer(
        self, suite: int, ders: list[bytes], record_size: int, chunks: list[int]
    ) -> None:
        """Records split anywhere and bytes fed in any chunks reassemble to one answer."""
        flight = handshake_msg(2, server_hello_body(TLS1_2, suite)) + handshake_msg(
            11, certificate_body(ders)
        )
        wire = records(flight, size=record_size)
        reader = FlightReader(want_certificate=True)
        pos = 0
        for n in chunks * (len(wire) // sum(chunks) + 1):
            if reader.done or pos >= len(wire):
                break
            reader.feed(wire[pos : pos + n])
            pos += n
        assert reader.done
        assert reader.server_hello is not None
        assert reader.server_hello.cipher_suite == suite
        assert reader.certificates == tuple(ders)

    def test_alert_ends_reading(self) -> None:
        """An alert record is reported as such (e.g. handshake_failure)."""
        reader = FlightReader()
        reader.feed(records(b"\x02\x28", content_type=21))
        assert reader.done
        assert reader.alert == Alert(2, 40)
        assert reader.alert.name == "handshake_failure"

    def test_http_is_not_tls(self) -> None:
        """A plaintext HTTP answer is a parse error, not a hello."""
        with pytest.raises(HelloParseError):
            FlightReader().feed(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    def test_oversized_flight_is_cut_off(self) -> None:
        """A server cannot make the reader buffer more than max_bytes."""
        reader = FlightReader(max_bytes=1000)
        reader.feed(records(b"\x02\x00\x03\x80" + b"\x00" * 500))
        assert not reader.done
        reader.feed(b"\x16\x03\x03\x02\x00" + b"\x00" * 600)
        assert reader.done
        assert reader.stopped is not None
        with pytest.raises(HelloParseError, match="handshake message"):
            FlightReader(max_bytes=1000).feed(records(b"\x02\x00\x10\x00"))

    @given(st.lists(st.binary(max_size=64), max_size=20))
    def test_garbage_raises_only_parse_errors(self, parts: list[bytes]) -> None:
        """Any byte stream either reads or raises HelloParseError."""
        reader = FlightReader(want_certificate=True)
        try:
            for part in parts:
                reader.feed(part)
        except HelloParseError:
            pass


class TestClientHello:
    @given(
        version=st.sampled_from([SSL3, TLS1_0, TLS1_2, TLS1_3]),
        suites=st.lists(st.integers(0, 0xFFFE), min_size=1, max_size=200),
        name=st.none() | st.from_regex(r"[a-z]{1,20}(\.[a-z]{1,10}){0,3}", fullmatch=True),
    )
    def test_lengths_are_consistent(
        self, version: int, suites: list[int], name: str | None
    ) -> None:
        """The record, handshake and cipher-suite lengths agree, and the suites are in order."""
        hello = build_client_hello(version, suites, server_name=name, key_share=b"k" * 32)
        content_type, _rv, length = struct.unpack(">BHH", hello[:5])
        assert content_type == 22
        assert length == len(hello) - 5
        assert hello[5] == 1
        assert int.from_bytes(hello[6:9], "big") == len(hello) - 9
        body = hello[9:]
        sid_len = body[34]
        n = int.from_bytes(body[35 + sid_len : 37 + sid_len], "big")
        offered = body[37 + sid_len : 37 + sid_len + n]
        codes = [int.from_bytes(offered[i : i + 2], "big") for i in range(0, n, 2)]
        assert codes == [*suites, 0x00FF]

    def test_refuses_nonsense(self) -> None:
        """No suites, an unknown version or TLS 1.3 without a key share are refused."""
        with pytest.raises(ValueError, match="at least one"):
            build_client_hello(TLS1_2, [])
        with pytest.raises(ValueError, match="version"):
            build_client_hello(0x0305, [1])
        with pytest.raises(ValueError, match="key share"):
            build_client_hello(TLS1_3, [0x1301])


class TestSSLv2:
    def test_server_hello(self) -> None:
        """An SSLv2 SERVER-HELLO yields its version and cipher kinds."""
        specs = bytes.fromhex("010080") + bytes.fromhex("0700c0")
        msg = b"\x04\x00\x01\x00\x02" + struct.pack(">HHH", 0, len(specs), 16) + specs + b"c" * 16
        hello = parse_sslv2_server_hello(struct.pack(">H", 0x8000 | len(msg)) + msg)
        assert hello is not None
        assert hello.version == 2
        assert hello.cipher_specs == (0x010080, 0x0700C0)

    def test_tls_alert_is_not_sslv2(self) -> None:
        """A TLS alert is simply not an SSLv2 hello."""
        assert parse_sslv2_server_hello(b"\x15\x03\x01\x00\x02\x02\x28") is None

    @given(st.binary(max_size=100))
    def test_garbage_raises_only_parse_errors(self, data: bytes) -> None:
        """Arbitrary bytes give a hello, None, or HelloParseError."""
        with contextlib.suppress(HelloParseError):
            parse_sslv2_server_hello(b"\x80" + data)

    def test_client_hello_shape(self) -> None:
        """The SSLv2 CLIENT-HELLO has the 2-byte header, type 1 and version 2."""
        hello = build_sslv2_client_hello()
        assert hello[0] & 0x80
        assert (int.from_bytes(hello[:2], "big") & 0x7FFF) == len(hello) - 2
        assert hello[2:5] == b"\x01\x00\x02"
