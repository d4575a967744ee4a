"""The SSP simulator over real TLS on every hop: consumer -> SSP -> provider.

The providers are :class:`Recorder` applications on the reference provider's server
(so "never forwarded" is checked where it matters: on the provider), and raw servers
that misbehave. After every refusal a legitimate request is served again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinepki._probe import probe
from spinepki.gate import RootKind
from spinepki.provider import ProviderLimits, ProviderServer
from spinepki.ssp import (
    Directory,
    ForwardingLimits,
    SSPAuditLogger,
    SSPServer,
    run_ssp,
)
from spinepki.testpki._tlsserver import LoopbackServer, TLSTestServer
from tests.serverconfig._helpers import Response
from tests.ssp._helpers import (
    CONSUMER,
    CREATE_APPOINTMENT,
    DOCUMENTS,
    OTHER_CONSUMER,
    PROVIDER,
    READ_METADATA,
    STRUCTURED,
    Bench,
    Consumer,
    Recorder,
    consumer_entry,
    display,
    provider_entry,
    recorder_server,
    root_of,
    ssp_headers,
)
from tests.ssp.conftest import CONSUMER_B_FQDN

pytestmark = pytest.mark.network

ROOT = root_of("A12345")
METADATA = f"{ROOT}/metadata"
#: Providers with something wrong, by ASID.
REVOKED, EXPIRED, FOREIGN, WRONG_NAME = (
    "918999198701",
    "918999198702",
    "918999198703",
    "918999198704",
)
DOWN, GARBAGE, HUGE_HEAD, PLAINTEXT = "918999198705", "918999198706", "918999198707", "918999198708"
NO_AGREEMENT = "918999198709"


class _Plaintext(LoopbackServer):
    """Answers HTTP without TLS (a provider that forgot TLS)."""

    def handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class World:
    bench: Bench
    ssp: SSPServer
    good: ProviderServer
    recorder: Recorder
    bad: dict[str, Recorder]
    audit: list[logging.LogRecord]
    roots: dict[str, str]
    """Each provider's Foundations root, by ASID."""

    def consumer(self, leaf: str | None = "consumer") -> Consumer:
        return Consumer(self.bench, self.ssp.address, leaf)

    def call(self, url: str, *args: Any, leaf: str | None = "consumer", **kw: Any) -> Response:
        """One request on a new consumer connection (closed afterwards)."""
        consumer = self.consumer(leaf)
        try:
            return consumer.get(url, *args, **kw)
        finally:
            consumer.close()

    def events_of(self, trace_id: str, count: int) -> list[Any]:
        """The audit records of one trace ID, once there are ``count`` of them (an earlier
        request's consumer hop, recorded after its response, may land in between)."""
        deadline = time.monotonic() + 5
        while True:
            found = [r for r in self.audit if r.spinepki_audit["trace_id"] == trace_id]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.01)

    def last_event(self, hop: str) -> dict[str, Any]:
        """The latest audit event of ``hop``."""
        events = [r.spinepki_audit for r in self.audit]  # type: ignore[attr-defined]
        return [e for e in events if e["hop"] == hop][-1]

    def served(self) -> None:
        """A legitimate request is (still) served end to end."""
        consumer = self.consumer()
        try:
            response = consumer.get(METADATA)
        finally:
            consumer.close()
        assert response.status == 200, response.body
        assert response.header("x-provider") == ["recorder"]


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def world(bench: Bench) -> Iterator[World]:
    """The simulator with one good provider and one provider per failure."""
    ref = bench.pki.reference_time
    with ExitStack() as stack:
        good, recorder = recorder_server(bench)
        stack.enter_context(good)
        bad: dict[str, Recorder] = {}
        addresses = {}
        for asid, leaf, at in (
            (REVOKED, "provider-revoked", None),
            (EXPIRED, "provider-expired", ref - dt.timedelta(days=100)),
            (FOREIGN, "provider-foreign", None),
            (WRONG_NAME, "consumer", None),
        ):
            server, app = recorder_server(bench, leaf, at=at)
            addresses[asid] = stack.enter_context(server).address
            bad[asid] = app
        garbage = TLSTestServer(bench.provider_context("provider"), respond=lambda _: b"NOT HTTP")
        addresses[GARBAGE] = stack.enter_context(garbage).address
        head = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"
        huge = TLSTestServer(bench.provider_context("provider"), respond=lambda _: head)
        addresses[HUGE_HEAD] = stack.enter_context(huge).address
        addresses[PLAINTEXT] = stack.enter_context(_Plaintext()).address
        addresses[DOWN] = ("127.0.0.1", _closed_port())
        addresses[NO_AGREEMENT] = addresses[DOWN]
        providers = [provider_entry(PROVIDER, "A12345", good.address, structured=False)]
        providers += [
            provider_entry(asid, f"B{i}", address)
            for i, (asid, address) in enumerate(sorted(addresses.items()))
        ]
        send_to = {p.asid for p in providers} - {NO_AGREEMENT}
        consumers = [
            consumer_entry(CONSUMER, bench.pki.consumer_fqdn, send_to),
            consumer_entry(OTHER_CONSUMER, CONSUMER_B_FQDN, {PROVIDER}, ("foundations",)),
        ]
        records: list[logging.LogRecord] = []
        logger = logging.getLogger("tests.ssp.audit")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.handlers = [_Collect(records)]
        config = bench.config(Directory(tuple(consumers), tuple(providers)))
        ssp = stack.enter_context(run_ssp(config, audit=SSPAuditLogger(logger)))
        roots = {p.asid: p.service_roots[RootKind.FOUNDATIONS][0] for p in providers}
        yield World(bench, ssp, good, recorder, bad, records, roots)


def test_request_reaches_the_provider_with_the_ssp_prefix_stripped(world: World) -> None:
    """The provider gets /<root path>/<FHIR request>?<query> with every consumer header,
    Host set to the provider, and an RFC 7239 Forwarded element naming the consumer's
    address and the Host it sent."""
    consumer = world.consumer()
    headers = {**ssp_headers(), "X-Extra": "kept", "Accept": "application/fhir+json"}
    query = "identifier=https://fhir.nhs.uk/Id/nhs-number|9658218873&_format=json"
    before = len(world.recorder.seen)
    response = consumer.get(f"{ROOT}/Patient?{query}", headers)
    consumer.close()
    assert response.status == 200
    assert response.header("cache-control") == ["no-store"]
    seen = world.recorder.seen[before]
    assert seen.target == f"/A12345/STU3/1/gpconnect/Patient?{query}"
    for name, value in headers.items():
        assert seen.header(name) == [value], name
    assert seen.header("host") == ["provider.spinepki.test.nhs.uk"]
    assert seen.header("forwarded") == [
        f'for=127.0.0.1;host="127.0.0.1:{world.ssp.address[1]}";proto=https'
    ]
    assert json.loads(response.body)["target"] == seen.target


def test_post_body_is_forwarded_unmodified(world: World) -> None:
    """A POST body reaches the provider byte for byte, with its Content-Length."""
    body = json.dumps({"resourceType": "Appointment", "note": "é" * 50}).encode()
    consumer = world.consumer()
    before = len(world.recorder.seen)
    response = consumer.get(
        f"{ROOT}/Appointment",
        {**ssp_headers(interaction=CREATE_APPOINTMENT), "Content-Type": "application/fhir+json"},
        method="POST",
        body=body,
    )
    consumer.close()
    assert response.status == 200
    seen = world.recorder.seen[before]
    assert (seen.method, seen.body) == ("POST", body)
    assert seen.header("content-length") == [str(len(body))]
    assert seen.header("content-type") == ["application/fhir+json"]


def test_keep_alive_on_both_hops(world: World) -> None:
    """Ten requests on one consumer connection use one provider connection."""
    consumer = world.consumer()
    accepted = world.good.stats.accepted
    for _ in range(10):
        assert consumer.get(METADATA).status == 200
    consumer.close()
    assert world.good.stats.accepted - accepted <= 1


def test_large_response_streams_through(world: World) -> None:
    """A 4 MiB response (about 100 times a structured record) arrives whole."""
    consumer = world.consumer()
    response = consumer.get(f"{ROOT}/Binary/big?bytes={4 << 20}")
    consumer.close()
    assert response.status == 200
    assert response.body == b"x" * (4 << 20)


class TestConsumerCertificate:
    """The consumer side: mutual TLS 1.2, the certificate valid and the registered one."""

    def test_no_certificate_is_496(self, world: World) -> None:
        """Without a client certificate the handshake completes and the SSP answers 496."""
        before = len(world.recorder.seen)
        response = world.call(leaf=None, url=METADATA)
        assert (response.status, display(response)) == (496, "SSL_CERTIFICATE_REQUIRED")
        assert len(world.recorder.seen) == before
        world.served()

    @pytest.mark.parametrize(
        ("leaf", "why"),
        [("consumer-revoked", "revoked"), ("wrong-fqdn", "fqdn_mismatch")],
    )
    def test_invalid_certificate_is_495(self, world: World, leaf: str, why: str) -> None:
        """A revoked certificate, or one with a name no consumer is registered with: 495."""
        before = len(world.recorder.seen)
        response = world.call(leaf=leaf, url=METADATA)
        assert (response.status, display(response)) == (495, "SSL_CERTIFICATE_ERROR")
        assert len(world.recorder.seen) == before
        assert why in world.last_event("consumer")["detail"]
        world.served()

    def test_untrusted_certificate_fails_the_handshake(self, world: World) -> None:
        """A certificate from a CA outside the trust is refused by TLS itself."""
        request = f"GET /{METADATA} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        result = probe(
            world.ssp.address,
            world.bench.consumer_context("foreign"),
            server_hostname=world.bench.pki.ssp_fqdn,
            request=request,
        )
        assert not result.response.startswith(b"HTTP/")
        world.served()

    def test_tls_1_1_is_refused(self, world: World) -> None:
        """The consumer side speaks only TLS 1.2 (server_context's policy)."""
        import ssl
        import warnings

        ctx = world.bench.consumer_context()
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        result = probe(world.ssp.address, ctx, server_hostname=world.bench.pki.ssp_fqdn)
        assert not result.accepted
        world.served()

    def test_certificate_of_another_consumer_is_403(self, world: World) -> None:
        """Consumer B's valid certificate with consumer A's ASID: the ASID check fails."""
        response = world.call(leaf="consumer-b", url=METADATA, sender=CONSUMER)
        assert response.status == 403
        assert display(response) == f"ASID_CHECK_FAILED_MESSAGESENDER_{CONSUMER}"
        world.served()

    def test_clock_is_an_input(self, world: World, bench: Bench) -> None:
        """At a time after the certificates expire, the validator refuses the consumer."""
        later = bench.pki.reference_time + dt.timedelta(days=800)
        with run_ssp(world.ssp.config, clock=lambda: later) as ssp:
            consumer = Consumer(bench, ssp.address)
            response = consumer.get(METADATA)
            consumer.close()
        assert response.status == 495
        world.served()


class TestDirectory:
    """The checks SDS feeds, case by case, each answered in the SSP's shape."""

    @pytest.mark.parametrize(
        ("over", "status", "expected"),
        [
            ({"sender": "123456789012"}, 403, "ASID_CHECK_FAILED_MESSAGESENDER_123456789012"),
            ({"sender": OTHER_CONSUMER}, 403, f"ASID_CHECK_FAILED_MESSAGESENDER_{OTHER_CONSUMER}"),
            (
                {"interaction": DOCUMENTS},
                403,
                f"ASID_CHECK_FAILED_MESSAGESENDER_{CONSUMER}",
            ),
            (
                {"interaction": "urn:nhs:names:services:gpconnect:fhir:rest:read:nothing-1"},
                403,
                f"ASID_CHECK_FAILED_MESSAGESENDER_{CONSUMER}",
            ),
            (
                {"receiver": "999999999999"},
                403,
                "PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_999999999999",
            ),
            (
                {"interaction": STRUCTURED},
                403,
                f"PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_{PROVIDER}",
            ),
            (
                {"receiver": NO_AGREEMENT},
                403,
                f"FOT_CHECK_FAILED_MESSAGESENDER_{CONSUMER}_MESSAGERECEIVER_{NO_AGREEMENT}",
            ),
        ],
        ids=[
            "unknown-sender",
            "sender-not-this-certificate",
            "sender-not-allowed-interaction",
            "unknown-interaction",
            "unknown-receiver",
            "receiver-lacks-interaction",
            "no-sharing-agreement",
        ],
    )
    def test_refusal(self, world: World, over: dict[str, str], status: int, expected: str) -> None:
        """Each failed check is refused with its display, never forwarded."""
        before = len(world.recorder.seen) + sum(len(a.seen) for a in world.bad.values())
        response = world.call(METADATA, **over)
        assert response.status == status
        body = json.loads(response.body)
        issue = body["issue"][0]
        assert issue["details"]["coding"][0] == {
            "system": "http://fhir.nhs.net/ValueSet/gpconnect-schedule-response-code-1-0",
            "code": str(status),
            "display": expected,
        }
        assert issue["diagnostics"] == expected
        assert issue["code"] == "forbidden"
        assert response.header("cache-control") == ["no-store"]
        after = len(world.recorder.seen) + sum(len(a.seen) for a in world.bad.values())
        assert after == before
        world.served()

    @pytest.mark.parametrize(
        "url",
        [
            METADATA.replace("provider.spinepki.test.nhs.uk", "127.0.0.1"),
            METADATA.replace("nhs.uk/", "nhs.uk:443/"),
            METADATA.replace("https://", "http://"),
            METADATA.replace("PROVIDER", "provider").replace("/A12345/", "/a12345/"),
            f"{ROOT}/../B0/STU3/1/gpconnect/metadata",
            f"{ROOT}/%2e%2e/B0/metadata",
            f"{ROOT}/..%5cB0/metadata",
            "metadata",
        ],
        ids=["ip", "port-443", "http", "case", "dot-dot", "encoded-dot-dot", "backslash", "none"],
    )
    def test_service_root_must_be_the_registered_one(self, world: World, url: str) -> None:
        """400 ENDPOINT_<root>_CPAID_<id>_VARIES_FROM_TARGETURL_<url> for any other URL; an
        encoded delimiter is refused earlier, by the server's strict framing (also 400)."""
        before = len(world.recorder.seen)
        response = world.call(url)
        assert response.status == 400
        if "%" in url:
            assert "encoded delimiter" in json.loads(response.body)["issue"][0]["diagnostics"]
        else:
            assert display(response).startswith(
                f"ENDPOINT_{ROOT}_CPAID_S{PROVIDER}_VARIES_FROM_TARGETURL_"
            )
        assert json.loads(response.body)["issue"][0]["code"] == "invalid"
        assert len(world.recorder.seen) == before
        world.served()

    @pytest.mark.parametrize("missing", ["Ssp-TraceID", "Ssp-From", "Ssp-To", "Ssp-InteractionID"])
    def test_missing_header_is_400(self, world: World, missing: str) -> None:
        """Every SSP header is needed (400 MISSING_OR_INVALID_HEADER_<name>)."""
        headers = ssp_headers()
        del headers[missing]
        response = world.call(METADATA, headers)
        assert (response.status, display(response)) == (
            400,
            f"MISSING_OR_INVALID_HEADER_{missing}",
        )
        world.served()

    def test_method_not_forwarded_is_405(self, world: World) -> None:
        """DELETE is not a method the SSP forwards."""
        response = world.call(METADATA, method="DELETE")
        assert (response.status, display(response)) == (405, "METHOD_NOT_ALLOWED")
        world.served()


class TestProviderCertificate:
    """The provider hop: the provider's server certificate, seen from the SSP's side."""

    @pytest.mark.parametrize(
        ("asid", "why"),
        [
            (REVOKED, "revoked"),
            (EXPIRED, "CERTIFICATE_VERIFY_FAILED"),
            (FOREIGN, "CERTIFICATE_VERIFY_FAILED"),
            (WRONG_NAME, "CERTIFICATE_VERIFY_FAILED"),
        ],
    )
    def test_bad_certificate_is_502_and_nothing_is_sent(
        self, world: World, asid: str, why: str
    ) -> None:
        """Revoked (found by the validator after the handshake), expired, untrusted or
        wrongly named (refused in the handshake): 502, and the provider receives nothing."""
        url = world.roots[asid] + "/metadata"
        response = world.call(url, receiver=asid)
        assert response.status == 502
        assert display(response) == f"ERROR_COMMUNICATING_TO_ENDPOINT_URL_{url}"
        assert json.loads(response.body)["issue"][0]["code"] == "transient"
        assert world.bad[asid].seen == []
        provider_hop = world.last_event("provider")
        assert why in provider_hop["detail"]
        assert provider_hop["forwarded"] is False
        world.served()

    @pytest.mark.parametrize(
        ("asid", "why"),
        [
            (DOWN, "cannot connect"),
            (PLAINTEXT, "TLS handshake with the provider failed"),
            (GARBAGE, "not a valid HTTP response"),
            (HUGE_HEAD, "not a valid HTTP response"),
        ],
    )
    def test_unreachable_or_broken_provider_is_502(self, world: World, asid: str, why: str) -> None:
        """Nothing listening, no TLS, not HTTP, a response head 3 times the bound: 502."""
        url = world.roots[asid] + "/metadata"
        response = world.call(url, receiver=asid)
        assert response.status == 502
        assert display(response) == f"ERROR_COMMUNICATING_TO_ENDPOINT_URL_{url}"
        assert why in world.last_event("provider")["detail"]
        world.served()


class TestProviderHop:
    """Timeouts, cut responses and kept-alive connections the provider closed."""

    def test_slow_provider_is_504(self, world: World) -> None:
        """No response head within forwarding.response_timeout: 504 in the SSP's shape."""
        config = replace(world.ssp.config, forwarding=ForwardingLimits(response_timeout=0.3))
        with run_ssp(config) as ssp:
            consumer = Consumer(world.bench, ssp.address)
            started = time.monotonic()
            response = consumer.get(f"{ROOT}/Binary/slow?seconds=2")
            elapsed = time.monotonic() - started
            consumer.close()
        assert response.status == 504
        assert display(response) == f"TIMEOUT_COMMUNICATING_TO_ENDPOINT_URL_{ROOT}/Binary/slow"
        assert json.loads(response.body)["issue"][0]["code"] == "transient"
        assert elapsed < 1.5
        world.served()

    def test_response_cut_short_is_never_passed_off_as_whole(self, world: World) -> None:
        """A provider that promises 1000 bytes and sends 10: the consumer's connection is
        cut after the 10 bytes, so it cannot take the body for complete."""
        host = world.bench.pki.ssp_fqdn
        request = (
            f"GET /{ROOT}/Binary/cut HTTP/1.1\r\nHost: {host}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in ssp_headers().items())
            + "\r\n"
        ).encode()
        result = probe(
            world.ssp.address,
            world.bench.consumer_context(),
            server_hostname=host,
            request=request,
        )
        head, _, body = result.response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"content-length: 1000" in head.lower()
        assert body == b"0123456789"  # then the connection closed
        world.served()

    def test_kept_alive_connection_closed_by_the_provider_is_retried(
        self, world: World, bench: Bench
    ) -> None:
        """The provider closes its idle keep-alive connection; the next request notices
        nothing came back on it and is sent once more on a new connection: 200."""
        app = Recorder()
        server = ProviderServer(
            app, bench.provider_context("provider"), limits=ProviderLimits(header_timeout=0.2)
        )
        directory = Directory(
            (consumer_entry(CONSUMER, bench.pki.consumer_fqdn, {PROVIDER}),),
            (provider_entry(PROVIDER, "A12345", server.address),),
        )
        config = bench.config(directory, forwarding=ForwardingLimits(idle_timeout=60))
        with server, run_ssp(config) as ssp:
            consumer = Consumer(bench, ssp.address)
            assert consumer.get(METADATA).status == 200
            deadline = time.monotonic() + 5
            while server.stats.active and time.monotonic() < deadline:
                time.sleep(0.02)  # the provider's keep-alive limit closes it
            assert server.stats.active == 0
            assert consumer.get(METADATA).status == 200
            consumer.close()
        assert len(app.seen) == 2
        assert server.stats.accepted == 2

    def test_idle_connections_expire(self, world: World, bench: Bench) -> None:
        """A pooled connection idle longer than idle_timeout is closed, not reused."""
        config = replace(world.ssp.config, forwarding=ForwardingLimits(idle_timeout=0.05))
        with run_ssp(config) as ssp:
            consumer = Consumer(bench, ssp.address)
            accepted = world.good.stats.accepted
            assert consumer.get(METADATA).status == 200
            time.sleep(0.1)
            assert consumer.get(METADATA).status == 200
            consumer.close()
        assert world.good.stats.accepted - accepted == 2

    def test_pool_is_bounded(self, world: World, bench: Bench) -> None:
        """With max_idle_connections=0 nothing is kept: each request opens a connection."""
        config = replace(world.ssp.config, forwarding=ForwardingLimits(max_idle_connections=0))
        with run_ssp(config) as ssp:
            consumer = Consumer(bench, ssp.address)
            accepted = world.good.stats.accepted
            for _ in range(3):
                assert consumer.get(METADATA).status == 200
            consumer.close()
            assert ssp.app.idle_provider_connections == 0
        assert world.good.stats.accepted - accepted == 3


def _booking_head(host: str, booking: dict[str, str], length: int) -> bytes:
    """The head of a booking POST declaring a ``length``-byte body."""
    return (
        f"POST /{ROOT}/Appointment HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in booking.items())
        + "\r\n"
    ).encode()


class TestBadInput:
    """A client's mistake is a 4xx, never a 5xx, and a refused request is never forwarded."""

    @staticmethod
    def _response(world: World, host: str, request: bytes) -> bytes:
        """What the SSP answers the consumer's raw ``request``."""
        return probe(
            world.ssp.address, world.bench.consumer_context(), server_hostname=host, request=request
        ).response

    def test_declared_body_over_the_bound_is_413(self, world: World) -> None:
        """Content-Length of 1 MiB + 1 (limits.max_body_bytes + 1): 413 before the body is
        read, not forwarded. (An undeclared, chunked body is test_app's.)"""
        host = world.bench.pki.ssp_fqdn
        booking = ssp_headers(interaction=CREATE_APPOINTMENT)
        before = len(world.recorder.seen)
        response = self._response(world, host, _booking_head(host, booking, (1 << 20) + 1) + b"{")
        assert response.startswith(b"HTTP/1.1 413")
        assert b"PAYLOAD_TOO_LARGE" in response
        assert len(world.recorder.seen) == before
        world.served()

    def test_truncated_body_is_never_forwarded(self, world: World) -> None:
        """A consumer that promises 1000 bytes, sends 10 and leaves: nothing reaches the
        provider (a truncated booking must not be), and the audit trail says 499."""
        host = world.bench.pki.ssp_fqdn
        booking = ssp_headers(interaction=CREATE_APPOINTMENT)
        before_seen = len(world.recorder.seen)
        head = _booking_head(host, booking, 1000)
        raw = socket.create_connection(world.ssp.address, timeout=5)
        with world.bench.consumer_context().wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(head + b"0123456789")
        (record,) = world.events_of(booking["Ssp-TraceID"], 1)  # once the SSP notices
        event = record.spinepki_audit
        assert (event["status"], event["code"], event["forwarded"]) == (
            499,
            "CLIENT_CLOSED_REQUEST",
            False,
        )
        assert len(world.recorder.seen) == before_seen
        world.served()

    def test_absurd_declared_length_is_413_before_reading(self, world: World) -> None:
        """Content-Length: 10^15 is refused at once, without waiting for the body."""
        host = world.bench.pki.ssp_fqdn
        booking = ssp_headers(interaction=CREATE_APPOINTMENT)
        response = self._response(world, host, _booking_head(host, booking, 10**15))
        assert response.startswith(b"HTTP/1.1 413")
        world.served()

    def test_head_100_times_normal_is_refused(self, world: World) -> None:
        """A 200 KB request head (100 times a real one with its token) is refused by the
        server (431, or the connection cut while the client is still sending it) and
        never reaches the simulator or a provider."""
        host = world.bench.pki.ssp_fqdn
        request = (
            f"GET /{METADATA} HTTP/1.1\r\nHost: {host}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in ssp_headers().items())
            + f"X-Padding: {'a' * 200_000}\r\n\r\n"
        ).encode()
        before = (len(world.recorder.seen), world.ssp.stats.requests)
        raw = socket.create_connection(world.ssp.address, timeout=5)
        with world.bench.consumer_context().wrap_socket(raw, server_hostname=host) as tls:
            with contextlib.suppress(OSError):  # ssl.SSLError is an OSError
                tls.sendall(request)
            answer = b""
            with contextlib.suppress(OSError):
                while chunk := tls.recv(65536):
                    answer += chunk
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:100]
        assert (len(world.recorder.seen), world.ssp.stats.requests) == before
        world.served()

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("Ssp-From", "2000 00000359"),
            ("Ssp-From", "2" * 33),
            ("Ssp-To", "9189991987é8"),
            ("Ssp-TraceID", "x" * 257),
            ("Ssp-InteractionID", READ_METADATA.replace(":", " ", 1)),
        ],
        ids=["space", "asid-33", "non-ascii", "trace-257", "inner-space"],
    )
    def test_unusable_header_is_400(self, world: World, name: str, value: str) -> None:
        """A header value that is not identifier-shaped: 400, not forwarded."""
        before = len(world.recorder.seen)
        headers = {**ssp_headers(), name: value}
        response = world.call(
            METADATA, {k: v.encode().decode("latin-1") for k, v in headers.items()}
        )
        assert response.status == 400
        assert display(response) == f"MISSING_OR_INVALID_HEADER_{name}"
        assert len(world.recorder.seen) == before
        world.served()

    @settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
        sender=st.sampled_from([CONSUMER, OTHER_CONSUMER, "1", "0" * 32]),
        receiver=st.sampled_from([PROVIDER, NO_AGREEMENT, "2", "abc"]),
        interaction=st.sampled_from([READ_METADATA, STRUCTURED, DOCUMENTS, "urn:x", "-"]),
        tail=st.text(alphabet=st.sampled_from("abcXYZ019/.%-_~?&=:"), max_size=40),
        prefix=st.sampled_from([ROOT, ROOT.replace("https", "http"), "", "https://x", ROOT + ":1"]),
        drop=st.sampled_from([None, "Ssp-TraceID", "Ssp-From", "Ssp-To", "Ssp-InteractionID"]),
    )
    def test_generated_requests_get_4xx_or_reach_the_provider(
        self,
        world: World,
        method: str,
        sender: str,
        receiver: str,
        interaction: str,
        tail: str,
        prefix: str,
        drop: str | None,
    ) -> None:
        """Any mix of methods, ASIDs, interactions, URLs and missing headers: the answer is
        the provider's, or a 400/403/405 of the SSP's, and only the former reached it."""
        headers = ssp_headers(sender=sender, receiver=receiver, interaction=interaction)
        if drop:
            del headers[drop]
        before = len(world.recorder.seen)
        url = (prefix + "/" + tail).lstrip("/") if prefix else tail
        body = b"{}" if method in ("POST", "PUT", "PATCH") else None
        response = world.call(url, headers, method=method, body=body)
        reached = len(world.recorder.seen) - before
        if response.header("x-provider"):
            assert reached == 1
        else:
            assert response.status in (400, 403, 405), response.body
            assert reached == 0
            assert response.header("cache-control") == ["no-store"]


class TestAudit:
    """Both hops are recorded with the trace ID, and nothing that identifies a patient."""

    def test_both_hops_recorded_without_pii(self, world: World) -> None:
        """The NHS number in the query, the patient id in the path and the token appear
        in no audit event; the trace ID, ASIDs, ODS codes and interaction do."""
        trace = "5f2b9c1e-0000-4000-8000-000000000001"
        headers = ssp_headers(trace_id=trace)
        response = world.call(f"{ROOT}/Patient/9658218873?identifier=9658218873", headers)
        assert response.status == 200
        events = [r.spinepki_audit for r in world.events_of(trace, 2)]
        assert [e["hop"] for e in events] == ["provider", "consumer"]
        text = json.dumps(events)
        for secret in ("9658218873", headers["Authorization"][7:], "Patient"):
            assert secret not in text
        for event in events:
            assert event["trace_id"] == trace
            assert (event["from_asid"], event["to_asid"]) == (CONSUMER, PROVIDER)
            assert (event["consumer_ods"], event["provider_ods"]) == ("A1001", "A12345")
            assert event["interaction_id"] == READ_METADATA
            assert event["status"] == 200
        assert events[0]["elapsed_ms"] > 0

    def test_refusal_recorded_with_its_code(self, world: World) -> None:
        """A refusal is one consumer-hop event at WARNING with the SSP's error code."""
        headers = ssp_headers(receiver=NO_AGREEMENT)
        world.call(METADATA, headers)
        (record,) = world.events_of(headers["Ssp-TraceID"], 1)
        assert record.levelno == logging.WARNING
        event = record.spinepki_audit  # type: ignore[attr-defined]
        assert (event["hop"], event["code"], event["forwarded"]) == (
            "consumer",
            "FOT_CHECK_FAILED",
            False,
        )


class TestProviderAnswers:
    """Providers that answer oddly, each behind its own simulator (raw TLS servers)."""

    def _through(self, world: World, respond: Any, **forwarding: Any) -> Response:
        bench = world.bench
        with ExitStack() as stack:
            server = stack.enter_context(
                TLSTestServer(bench.provider_context("provider"), respond=respond)
            )
            directory = Directory(
                (consumer_entry(CONSUMER, bench.pki.consumer_fqdn, {PROVIDER}),),
                (provider_entry(PROVIDER, "A12345", server.address),),
            )
            config = bench.config(directory, forwarding=ForwardingLimits(**forwarding))
            ssp = stack.enter_context(run_ssp(config))
            consumer = Consumer(bench, ssp.address)
            try:
                return consumer.get(METADATA)
            finally:
                consumer.close()

    def test_informational_responses_are_not_relayed(self, world: World) -> None:
        """A 100 Continue before the answer is the hop's business: the consumer gets the
        final response only."""
        answer = (
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        )
        response = self._through(world, lambda _: answer)
        assert (response.status, response.body) == (200, b"ok")

    def test_provider_closing_without_an_answer_is_502(self, world: World) -> None:
        """A new connection that reads the request and closes: 502 (not retried)."""
        response = self._through(world, lambda _: b"")
        assert response.status == 502
        assert display(response) == f"ERROR_COMMUNICATING_TO_ENDPOINT_URL_{METADATA}"

    def test_provider_that_never_completes_tls_is_504(self, world: World, bench: Bench) -> None:
        """A provider that accepts TCP and never answers the TLS handshake: 504 after
        connect_timeout."""
        with socket.create_server(("127.0.0.1", 0)) as silent:  # never accepts
            directory = Directory(
                (consumer_entry(CONSUMER, bench.pki.consumer_fqdn, {PROVIDER}),),
                (provider_entry(PROVIDER, "A12345", silent.getsockname()[:2]),),
            )
            config = bench.config(directory, forwarding=ForwardingLimits(connect_timeout=0.3))
            with run_ssp(config) as ssp:
                consumer = Consumer(bench, ssp.address)
                response = consumer.get(METADATA)
                consumer.close()
        assert response.status == 504
        assert display(response) == f"TIMEOUT_COMMUNICATING_TO_ENDPOINT_URL_{METADATA}"
        world.served()
