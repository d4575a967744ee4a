"""Hostile connections, generated: what one client can do to the provider at each stage.

One :class:`Case` is one connection that misbehaves at one :class:`Stage` (before its
ClientHello, in the middle of the handshake, after it, in the middle of a request head
or body, after a response) in one way (:class:`Action`): random bytes, a TLS record of
any content type and length, a real record of the connection with bytes flipped or cut,
an alert, a half-close, a reset, a renegotiation. :func:`run_case` plays it against a
running provider; :func:`check_still_serving` then asserts the invariant of issue 11:
the SSP's next request is served, the server has not failed, and nothing escaped a
connection (``connection_errors`` unchanged: a contained exception is still a bug).

Used by ``tests/provider/test_connection_fuzz.py`` (a bounded, deterministic run in
``make test``, on every Python) and ``tests/fuzz/fuzz_connection.py`` (``make fuzz``).
Loopback only; every socket operation has a timeout and every loop a bound.
"""

from __future__ import annotations

import contextlib
import enum
import select
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from spinepki.demo._callers import CREATE_APPOINTMENT, SSPRequest
from spinepki.provider import ProviderServer
from spinepki.securitytest._tls import OPENSSL, _s_client
from tests.provider._helpers import Written, request

__all__ = [
    "Action",
    "Case",
    "Stage",
    "cases",
    "check_still_serving",
    "renegotiate",
    "run_case",
]

#: Seconds any one socket operation of a case may wait.
IO_TIMEOUT = 2.0
#: Most handshake steps a case drives (a TLS 1.2 handshake takes three or four).
MAX_STEPS = 16
#: The largest payload a case sends: about 100 times a normal request head.
MAX_PAYLOAD = 256 * 1024


class Stage(enum.Enum):
    """Where in the connection's life the case misbehaves."""

    BEFORE_HELLO = "before the ClientHello"
    MID_HANDSHAKE = "mid-handshake"
    AFTER_HANDSHAKE = "after the handshake"
    MID_HEADERS = "mid-headers"
    MID_BODY = "mid-body"
    AFTER_RESPONSE = "after a response"


class Action(enum.Enum):
    """What the case does there."""

    RANDOM_BYTES = "random bytes"
    TLS_RECORD = "a TLS record of any type and length"
    MUTATED_RECORD = "a real record with bytes flipped or cut"
    ALERT = "an alert"
    HALF_CLOSE = "a half-close"
    RESET = "a TCP reset"
    RENEGOTIATE = "a renegotiation"


@dataclass(frozen=True)
class Case:
    """One hostile connection."""

    stage: Stage
    action: Action
    data: bytes
    """The payload (random bytes, a record's fragment, or where and how to mutate)."""
    cert: str | None
    """The client certificate presented (None: none)."""
    repeat: int = 1
    """How many times ``data`` is repeated (up to :data:`MAX_PAYLOAD` bytes in all)."""

    @property
    def payload(self) -> bytes:
        return (self.data * self.repeat)[:MAX_PAYLOAD]


def cases(*, certs: tuple[str | None, ...] = ("ssp", None, "revoked")) -> st.SearchStrategy[Case]:
    """Every stage with every action; payloads from empty to about 100x a request head."""
    return st.builds(
        Case,
        stage=st.sampled_from(Stage),
        action=st.sampled_from(Action),
        data=st.binary(max_size=2048),
        cert=st.sampled_from(certs),
        repeat=st.one_of(st.just(1), st.integers(min_value=1, max_value=128)),
    )


# -- a TLS client whose every byte passes through our hands ------------------------------


class _Client:
    """A TLS 1.2 client over MemoryBIO: the records it would send can be sent, held back,
    mutated, or replaced by anything else."""

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext, server_name: str) -> None:
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=server_name)

    def pending(self) -> bytes:
        return self.outgoing.read()

    def send(self, data: bytes) -> None:
        if data:
            self.sock.sendall(data)

    def receive(self) -> bool:
        """Feed what the server sent (waiting up to IO_TIMEOUT); False at EOF."""
        data = self.sock.recv(65536)
        if not data:
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    def step(self) -> bool:
        """One handshake step; True when the handshake is complete."""
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            return False
        return True

    def handshake(self) -> bool:
        """Drive the handshake to its end; False if the server ended it first."""
        for _ in range(MAX_STEPS):
            done = self.step()
            self.send(self.pending())
            if done:
                return True
            if not self.receive():
                return False
        return False

    def encrypt(self, data: bytes) -> bytes:
        self.tls.write(data)
        return self.pending()

    def read_response(self) -> bytes:
        """Decrypted bytes until a response head and its Content-Length body arrived."""
        got = b""
        for _ in range(MAX_STEPS * 4):
            try:
                got += self.tls.read(65536)
            except ssl.SSLWantReadError:
                if not self.receive():
                    return got
                continue
            head, sep, body = got.partition(b"\r\n\r\n")
            if sep:
                length = _content_length(head)
                if length is not None and len(body) >= length:
                    return got
        return got


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return None


def _record(content_type: int, payload: bytes, *, length: int | None = None) -> bytes:
    """A TLS record header (version TLS 1.2) and ``payload``; ``length`` may lie."""
    size = len(payload) if length is None else length
    return struct.pack("!BHH", content_type, 0x0303, size & 0xFFFF) + payload


def _mutate(record: bytes, recipe: bytes) -> bytes:
    """``record`` with bytes flipped, cut or repeated, as ``recipe`` says."""
    if not record:
        return recipe
    if not recipe:
        return record[:-1]
    out = bytearray(record)
    kind = recipe[0] % 4
    spots = recipe[1:] or b"\x00"
    if kind == 0:  # flip bytes (header or ciphertext)
        for i, b in enumerate(spots[:16]):
            out[(b * 7919 + i) % len(out)] ^= b or 0xFF
        return bytes(out)
    if kind == 1:  # cut short
        return bytes(out[: spots[0] % len(out)])
    if kind == 2:  # send it twice (a replayed record: the sequence number is wrong)
        return bytes(out) * 2
    return bytes(out) + recipe  # trailing garbage


# -- one case -----------------------------------------------------------------------------


def run_case(
    case: Case, written: Written, server: ProviderServer, *, source: str | None = None
) -> None:
    """Play ``case`` against ``server`` (whatever the server answers is fine; the
    invariant is checked by :func:`check_still_serving`), from the loopback address
    ``source`` when given (not for a renegotiation, which openssl makes)."""
    if case.action is Action.RENEGOTIATE:
        renegotiate(written, server, case.cert, mid_headers=case.stage is Stage.MID_HEADERS)
        return
    ctx = written.client(case.cert)
    bind = (source, 0) if source is not None else None
    raw = socket.create_connection(server.address, timeout=IO_TIMEOUT, source_address=bind)
    with contextlib.closing(raw) as sock:
        # The server refusing or closing is a fine answer to a hostile client.
        with contextlib.suppress(OSError, ssl.SSLError):
            _play(case, _Client(sock, ctx, written.pki.provider_fqdn), written, server)
        _finish(sock, case.action)


def _play(case: Case, client: _Client, written: Written, server: ProviderServer) -> None:
    stage = case.stage
    if stage is Stage.BEFORE_HELLO:
        _act(case, client, held=b"")
        return
    if stage is Stage.MID_HANDSHAKE:
        client.step()
        hello = client.pending()
        if case.action is Action.MUTATED_RECORD:
            _act(case, client, held=hello)
            return
        client.send(hello)
        client.receive()  # the server's first flight
        client.step()
        _act(case, client, held=client.pending())
        return
    if not client.handshake():
        return
    if stage is Stage.AFTER_HANDSHAKE:
        _act(case, client, held=client.encrypt(_request(written, server)))
        return
    if stage is Stage.MID_HEADERS:
        head = _request(written, server)
        client.send(client.encrypt(head[: len(head) // 2]))
        _act(case, client, held=client.encrypt(head[len(head) // 2 :]))
        return
    if stage is Stage.MID_BODY:
        request = _request(written, server, body=True)
        cut = request.index(b"\r\n\r\n") + 4 + 10  # the head and ten bytes of the body
        client.send(client.encrypt(request[:cut]))
        _act(case, client, held=client.encrypt(request[cut:]))
        return
    # AFTER_RESPONSE: a keep-alive request answered, then the misbehaviour.
    client.send(client.encrypt(_request(written, server)))
    client.read_response()
    _act(case, client, held=client.encrypt(_request(written, server)))


_APPOINTMENT = {"resourceType": "Appointment", "status": "booked", "start": "a", "end": "b"}


def _request(written: Written, server: ProviderServer, *, body: bool = False) -> bytes:
    """A valid SSP request (keep-alive): a metadata read, or an appointment create."""
    host = f"{written.pki.provider_fqdn}:{server.address[1]}"
    req = SSPRequest()
    if body:
        req = SSPRequest(
            method="POST",
            path="/Appointment",
            interaction=CREATE_APPOINTMENT,
            scope="patient/*.write",
            body=_APPOINTMENT,
        )
    return req.render(host, int(time.time())).replace(b"Connection: close\r\n", b"")


def _act(case: Case, client: _Client, *, held: bytes) -> None:
    """The misbehaviour itself; ``held`` is the next legitimate bytes, not yet sent."""
    action, data = case.action, case.payload
    if action is Action.RANDOM_BYTES:
        client.send(data)
    elif action is Action.TLS_RECORD:
        content_type = data[0] if data else 23
        lie = int.from_bytes(data[1:3], "big") if len(data) >= 3 and data[0] & 1 else None
        client.send(_record(content_type, data[3:], length=lie))
    elif action is Action.MUTATED_RECORD:
        client.send(_mutate(held, data))
    elif action is Action.ALERT:
        level = 1 + (data[0] % 2 if data else 1)  # warning or fatal
        description = data[1] if len(data) > 1 else 0  # 0: close_notify
        if data[2:3] == b"\x01" and client.tls.version() is not None:
            with contextlib.suppress(ssl.SSLError):
                client.tls.unwrap()  # an encrypted close_notify
            client.send(client.pending())
        else:
            client.send(_record(21, bytes([level, description])))
    elif action is Action.HALF_CLOSE:
        client.send(held[: len(held) // 2])
        client.sock.shutdown(socket.SHUT_WR)
    # RESET: nothing to send; _finish closes with SO_LINGER 0


def _finish(sock: socket.socket, action: Action) -> None:
    """Close the case's connection (a reset for RESET); after a half-close, wait
    (bounded) for the server to close its side."""
    with contextlib.suppress(OSError):
        if action is Action.RESET:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif action is Action.HALF_CLOSE:
            end = time.monotonic() + IO_TIMEOUT
            while time.monotonic() < end:
                ready, _, _ = select.select([sock], [], [], max(0.0, end - time.monotonic()))
                if not ready or not sock.recv(65536):
                    break


def renegotiate(
    written: Written, server: ProviderServer, cert: str | None, *, mid_headers: bool = False
) -> str:
    """A client-initiated renegotiation after the handshake (``openssl s_client
    -tls1_2``, then ``R``), the way the issue's report did it; returns s_client's output.

    Python's ssl module cannot start a renegotiation, so this needs the ``openssl``
    command (the caller skips without it); the security test's own runner is used.
    """
    if OPENSSL is None:  # pragma: no cover - the test skips first
        raise RuntimeError("openssl command not found")
    args = [
        OPENSSL, "s_client", "-connect", f"127.0.0.1:{server.address[1]}", "-tls1_2",
        "-servername", written.pki.provider_fqdn,
    ]  # fmt: skip
    if cert is not None:
        d = written.directory / "certs"
        args += ["-cert", str(d / f"{cert}.chain.pem"), "-key", str(d / f"{cert}.key.pem")]
    before = b"GET /A12345/STU3/1/gpconnect/metadata HTTP/1.1\n" if mid_headers else b""
    return _s_client(args, IO_TIMEOUT, before=before)


# -- the invariant ------------------------------------------------------------------------


def check_still_serving(
    written: Written, server: ProviderServer, errors_before: int, what: Any = None
) -> None:
    """The SSP's next request is served (200), the server has not failed, and no
    exception escaped a connection since ``errors_before`` was read."""
    response = request(written, server.address, timeout=IO_TIMEOUT * 2)
    assert response.status == 200, (what, response.status, response.body[:200])
    assert server.failure is None, (what, server.failure)
    stats = server.stats
    assert stats.connection_errors == errors_before, (what, stats)
