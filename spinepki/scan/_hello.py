"""Just enough of the TLS wire format to ask "which version and suite would you pick?".

The scanner offers a server one ClientHello and reads its answer: a ServerHello (the
version and cipher suite it chose), the Certificate message that follows it in TLS 1.2
and earlier (the chain it presents), or an alert. Nothing is encrypted or verified here;
the connection is dropped as soon as the answer is known. This is how the scanner sees

* the suite a server chooses even when it then requires a client certificate the
  scanner does not have (the ServerHello is sent before the certificate check; Python's
  ``ssl`` module exposes nothing of a failed handshake), and
* whether it would speak SSLv3 or SSLv2, which the system OpenSSL cannot even offer.

The parsers are pure functions over bytes and never raise anything but
:class:`HelloParseError` on malformed input (the hypothesis tests hold them to that).
Wire formats: RFC 5246 §6.2 (records), §7.4.1 (hellos), §7.4.2 (Certificate), §7.2
(alerts); RFC 8446 §4.1.3 (TLS 1.3 ServerHello, supported_versions, HelloRetryRequest);
SSLv2 from the 1995 Netscape draft (draft-hickman-netscape-ssl-00 §2.6, "SERVER-HELLO").
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "SSL2",
    "SSL3",
    "TLS1_0",
    "TLS1_1",
    "TLS1_2",
    "TLS1_3",
    "Alert",
    "FlightReader",
    "HelloParseError",
    "SSLv2ServerHello",
    "ServerHello",
    "build_client_hello",
    "build_sslv2_client_hello",
    "parse_certificate_message",
    "parse_server_hello",
    "parse_sslv2_server_hello",
]

SSL2 = 0x0002
SSL3 = 0x0300
TLS1_0 = 0x0301
TLS1_1 = 0x0302
TLS1_2 = 0x0303
TLS1_3 = 0x0304

_HANDSHAKE = 22
_ALERT = 21
_CLIENT_HELLO = 1
_SERVER_HELLO = 2
_CERTIFICATE = 11
#: RFC 5246 §6.2.1: a plaintext record fragment is at most 2^14 bytes (+2048 allowed
#: for compressed/encrypted records, which a ServerHello flight never needs).
_MAX_RECORD = 2**14 + 2048
#: RFC 8446 §4.1.3: a HelloRetryRequest is a ServerHello with this fixed random.
_HRR_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()
_EXT_SUPPORTED_VERSIONS = 43
_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF


class HelloParseError(ValueError):
    """The peer's bytes are not a well-formed TLS/SSL message of the kind expected."""


@dataclass(frozen=True, slots=True)
class ServerHello:
    """The parts of a ServerHello the scanner reads."""

    version: int
    """The negotiated version: ``supported_versions`` (TLS 1.3) if present, else
    ``server_version`` (e.g. ``0x0303`` for TLS 1.2)."""
    cipher_suite: int
    """The IANA code point of the chosen suite."""
    compression: int
    """The chosen compression method (0 = none)."""
    retry_request: bool
    """True for a TLS 1.3 HelloRetryRequest (the server accepts 1.3 but wants another
    key share)."""
    extensions: tuple[int, ...]
    """Extension types the server sent, in order."""


@dataclass(frozen=True, slots=True)
class Alert:
    """A TLS alert (RFC 5246 §7.2)."""

    level: int
    """1 warning, 2 fatal."""
    description: int
    """e.g. 40 handshake_failure, 70 protocol_version."""

    @property
    def name(self) -> str:
        """The RFC name of the description, or its number."""
        return _ALERT_NAMES.get(self.description, f"alert {self.description}")


_ALERT_NAMES = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    22: "record_overflow",
    40: "handshake_failure",
    42: "bad_certificate",
    47: "illegal_parameter",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    109: "missing_extension",
    110: "unsupported_extension",
    112: "unrecognized_name",
    116: "certificate_required",
    120: "no_application_protocol",
}


@dataclass(frozen=True, slots=True)
class SSLv2ServerHello:
    """An SSLv2 SERVER-HELLO: the server speaks SSLv2."""

    version: int
    """The server's SSL version field (2 for SSLv2)."""
    cipher_specs: tuple[int, ...]
    """The 3-byte SSLv2 cipher kinds the server offers."""


class _Reader:
    """Bounds-checked cursor over bytes; every overrun is a HelloParseError."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise HelloParseError(f"truncated: wanted {n} bytes at offset {self._pos}")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")

    def vector(self, length_bytes: int) -> bytes:
        return self.take(int.from_bytes(self.take(length_bytes), "big"))

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos


def parse_server_hello(body: bytes) -> ServerHello:
    """Parse the body of a ServerHello handshake message (without its 4-byte header).

    Raises:
        HelloParseError: the body is malformed.
    """
    r = _Reader(body)
    server_version = r.u16()
    if server_version >> 8 != 3:
        raise HelloParseError(f"not an SSLv3/TLS version: 0x{server_version:04x}")
    random = r.take(32)
    session_id = r.vector(1)
    if len(session_id) > 32:
        raise HelloParseError("session id longer than 32 bytes")
    suite = r.u16()
    compression = r.u8()
    version = server_version
    types: list[int] = []
    if r.remaining:
        ext = _Reader(r.vector(2))
        if r.remaining:
            raise HelloParseError("bytes after the extensions")
        while ext.remaining:
            ext_type = ext.u16()
            data = ext.vector(2)
            types.append(ext_type)
            if ext_type == _EXT_SUPPORTED_VERSIONS:
                if len(data) != 2:
                    raise HelloParseError("supported_versions in a ServerHello is 2 bytes")
                version = int.from_bytes(data, "big")
    return ServerHello(
        version=version,
        cipher_suite=suite,
        compression=compression,
        retry_request=random == _HRR_RANDOM,
        extensions=tuple(types),
    )


def parse_certificate_message(body: bytes) -> tuple[bytes, ...]:
    """The DER certificates of a TLS 1.2-and-earlier Certificate message body.

    Raises:
        HelloParseError: the body is malformed.
    """
    r = _Reader(body)
    certs = _Reader(r.vector(3))
    if r.remaining:
        raise HelloParseError("bytes after the certificate list")
    out: list[bytes] = []
    while certs.remaining:
        der = certs.vector(3)
        if not der:
            raise HelloParseError("empty certificate in the list")
        out.append(der)
    return tuple(out)


def parse_sslv2_server_hello(data: bytes) -> SSLv2ServerHello | None:
    """Parse an SSLv2 SERVER-HELLO record; None when ``data`` is not one (e.g. a TLS alert).

    Raises:
        HelloParseError: it starts like an SSLv2 record but is malformed or truncated.
    """
    if len(data) < 3 or not data[0] & 0x80 or data[2] != 4:
        return None
    r = _Reader(data)
    length = r.u16() & 0x7FFF
    msg = _Reader(r.take(length))
    msg.u8()  # message type SERVER-HELLO (4)
    msg.u8()  # session id hit
    msg.u8()  # certificate type
    version = msg.u16()
    cert_len, specs_len, conn_id_len = msg.u16(), msg.u16(), msg.u16()
    msg.take(cert_len)
    specs = msg.take(specs_len)
    msg.take(conn_id_len)
    if specs_len % 3:
        raise HelloParseError("SSLv2 cipher specs are 3 bytes each")
    kinds = tuple(int.from_bytes(specs[i : i + 3], "big") for i in range(0, specs_len, 3))
    return SSLv2ServerHello(version=version, cipher_specs=kinds)


class FlightReader:
    """Feed it the server's bytes; it says when the ServerHello (and Certificate) arrived.

    Handshake messages may span records and records may hold several messages
    (RFC 5246 §6.2.1), so handshake bytes are reassembled. Reading stops at the first
    alert, at anything that is not a plaintext handshake record, or once ``max_bytes``
    have been fed (a hostile server cannot make the scanner buffer without limit).
    """

    __slots__ = (
        "_buffer",
        "_fed",
        "_handshake",
        "_max_bytes",
        "_want_certificate",
        "alert",
        "certificates",
        "server_hello",
        "stopped",
    )

    def __init__(self, *, want_certificate: bool = False, max_bytes: int = 256 * 1024) -> None:
        self._buffer = b""
        self._handshake = b""
        self._fed = 0
        self._max_bytes = max_bytes
        self._want_certificate = want_certificate
        self.server_hello: ServerHello | None = None
        self.certificates: tuple[bytes, ...] | None = None
        self.alert: Alert | None = None
        self.stopped: str | None = None
        """Why reading ended before the answer was complete (None while still reading)."""

    @property
    def done(self) -> bool:
        """True when nothing more needs to be (or can usefully be) read."""
        if self.stopped is not None or self.alert is not None:
            return True
        if self.server_hello is None:
            return False
        if not self._want_certificate or self.server_hello.version >= TLS1_3:
            return True
        return self.certificates is not None

    def feed(self, data: bytes) -> None:
        """Add bytes received from the server.

        Raises:
            HelloParseError: the server's bytes are malformed.
        """
        if self.done:
            return
        self._fed += len(data)
        if self._fed > self._max_bytes:
            self.stopped = f"more than {self._max_bytes} bytes before the answer"
            return
        self._buffer += data
        while len(self._buffer) >= 5 and not self.done:
            content_type = self._buffer[0]
            version, length = struct.unpack(">HH", self._buffer[1:5])
            if content_type not in (_HANDSHAKE, _ALERT) or version >> 8 != 3:
                if self.server_hello is not None:
                    # e.g. ChangeCipherSpec and encrypted records after a TLS 1.3
                    # ServerHello: nothing more to read in the clear.
                    self.stopped = "no further plaintext handshake"
                    return
                raise HelloParseError(
                    f"not a TLS record (type {content_type}, version 0x{version:04x})"
                )
            if length > _MAX_RECORD:
                raise HelloParseError(f"record of {length} bytes exceeds the TLS maximum")
            if len(self._buffer) < 5 + length:
                return
            fragment = self._buffer[5 : 5 + length]
            self._buffer = self._buffer[5 + length :]
            if content_type == _ALERT:
                if len(fragment) < 2:
                    raise HelloParseError("alert shorter than 2 bytes")
                self.alert = Alert(fragment[0], fragment[1])
                return
            self._handshake += fragment
            self._drain_handshake()

    def _drain_handshake(self) -> None:
        while len(self._handshake) >= 4 and not self.done:
            msg_type = self._handshake[0]
            length = int.from_bytes(self._handshake[1:4], "big")
            if length > self._max_bytes:
                raise HelloParseError(f"handshake message of {length} bytes")
            if len(self._handshake) < 4 + length:
                return
            body = self._handshake[4 : 4 + length]
            self._handshake = self._handshake[4 + length :]
            if self.server_hello is None:
                if msg_type != _SERVER_HELLO:
                    raise HelloParseError(f"first handshake message is type {msg_type}")
                self.server_hello = parse_server_hello(body)
            elif msg_type == _CERTIFICATE:
                self.certificates = parse_certificate_message(body)
            else:
                # ServerKeyExchange / ServerHelloDone without a Certificate (anonymous
                # suites): the server presents no certificate.
                self.certificates = ()


# -- ClientHello ----------------------------------------------------------------------

#: Groups offered for ECDHE: x25519, secp256r1, x448, secp521r1, secp384r1, and the
#: RFC 7919 ffdhe groups (RFC 8446 §4.2.7 code points).
_GROUPS = (0x001D, 0x0017, 0x001E, 0x0019, 0x0018, 0x0100, 0x0101, 0x0102)
#: Signature schemes: PSS, PKCS#1, ECDSA, EdDSA, plus the SHA-1/SHA-224 legacy ones so a
#: server with an old certificate still answers (RFC 8446 §4.2.3, RFC 5246 §7.4.1.4.1).
_SIGALGS = (
    0x0804, 0x0805, 0x0806, 0x0809, 0x080A, 0x080B, 0x0403, 0x0503, 0x0603, 0x0807,
    0x0808, 0x0401, 0x0501, 0x0601, 0x0301, 0x0303, 0x0402, 0x0502, 0x0602, 0x0201,
    0x0203, 0x0202,
)  # fmt: skip


def _ext(ext_type: int, data: bytes) -> bytes:
    return struct.pack(">HH", ext_type, len(data)) + data


def _vec(data: bytes, length_bytes: int) -> bytes:
    return len(data).to_bytes(length_bytes, "big") + data


def _u16s(values: Sequence[int]) -> bytes:
    return b"".join(v.to_bytes(2, "big") for v in values)


def _server_name(name: str) -> bytes:
    host = name.encode("idna")
    entry = b"\x00" + _vec(host, 2)  # name_type host_name
    return _ext(0, _vec(entry, 2))


def build_client_hello(
    version: int,
    suites: Sequence[int],
    *,
    server_name: str | None = None,
    key_share: bytes | None = None,
) -> bytes:
    """A complete ClientHello record offering ``suites`` (in that order) at ``version``.

    Args:
        version: ``SSL3`` … ``TLS1_3``. For TLS 1.3 the legacy version is TLS 1.2 and
            ``supported_versions`` offers 1.3 only (RFC 8446 §4.1.2).
        suites: IANA code points; ``TLS_EMPTY_RENEGOTIATION_INFO_SCSV`` is appended.
        server_name: sent as SNI (RFC 6066 §3); omit for IP literals.
        key_share: an X25519 public key (32 bytes), required for TLS 1.3.

    Raises:
        ValueError: an unknown version, no suites, or TLS 1.3 without a key share.
    """
    if version not in (SSL3, TLS1_0, TLS1_1, TLS1_2, TLS1_3):
        raise ValueError(f"cannot build a ClientHello for version 0x{version:04x}")
    if not suites:
        raise ValueError("offer at least one cipher suite")
    legacy_version = min(version, TLS1_2)
    extensions = b""
    if version >= TLS1_0:
        if server_name:
            extensions += _server_name(server_name)
        extensions += _ext(10, _vec(_u16s(_GROUPS), 2))  # supported_groups
        extensions += _ext(11, b"\x01\x00")  # ec_point_formats: uncompressed
        extensions += _ext(13, _vec(_u16s(_SIGALGS), 2))  # signature_algorithms
        extensions += _ext(23, b"")  # extended_master_secret
        if version == TLS1_3:
            if key_share is None or len(key_share) != 32:
                raise ValueError("TLS 1.3 needs a 32-byte X25519 key share")
            extensions += _ext(43, _vec(_u16s([TLS1_3]), 1))  # supported_versions
            extensions += _ext(51, _vec(_u16s([0x001D]) + _vec(key_share, 2), 2))
            extensions += _ext(45, b"\x01\x01")  # psk_key_exchange_modes: psk_dhe_ke
    body = (
        legacy_version.to_bytes(2, "big")
        + os.urandom(32)
        + _vec(os.urandom(32) if version == TLS1_3 else b"", 1)  # legacy_session_id
        + _vec(_u16s([*suites, _EMPTY_RENEGOTIATION_INFO_SCSV]), 2)
        + b"\x01\x00"  # compression: null only
        + (_vec(extensions, 2) if extensions else b"")
    )
    handshake = bytes([_CLIENT_HELLO]) + len(body).to_bytes(3, "big") + body
    # Record version: TLS 1.0 for every TLS hello (RFC 8446 §5.1 allows it and old
    # servers choke on higher record versions); SSL 3.0 for the SSLv3 probe.
    record_version = SSL3 if version == SSL3 else TLS1_0
    return struct.pack(">BHH", _HANDSHAKE, record_version, len(handshake)) + handshake


#: SSLv2 cipher kinds (draft-hickman-netscape-ssl-00 Appendix A).
SSL2_CIPHER_KINDS = (0x010080, 0x020080, 0x030080, 0x040080, 0x050080, 0x060040, 0x0700C0)


def build_sslv2_client_hello() -> bytes:
    """An SSLv2 CLIENT-HELLO offering the seven SSLv2 cipher kinds."""
    specs = b"".join(k.to_bytes(3, "big") for k in SSL2_CIPHER_KINDS)
    challenge = os.urandom(16)
    msg = (
        b"\x01"  # CLIENT-HELLO
        + SSL2.to_bytes(2, "big")
        + struct.pack(">HHH", len(specs), 0, len(challenge))
        + specs
        + challenge
    )
    return struct.pack(">H", 0x8000 | len(msg)) + msg
