"""The reference provider over real TLS on 127.0.0.1: what it serves and what it survives.

Deadlines are real timers (a socket cannot be fooled about time), so the tests that
watch one use sub-second limits and bounded waits; nothing sleeps to wait for expiry.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spinepki.demo._callers import READ_PATIENT, SSPRequest
from spinepki.errors import ConfigurationError
from spinepki.policy import ClientAuth
from spinepki.provider import (
    FHIRDemoApp,
    ProviderConfigError,
    ProviderServer,
    load_app,
    run_provider,
)
from spinepki.provider._server import ProviderServer as _Server
from spinepki.revocation import RevocationMode
from tests.provider._helpers import (
    Written,
    answers,
    limits,
    parse,
    read_response,
    request,
    tls_connect,
    wait_for,
)

pytestmark = pytest.mark.network

IDLE_CONNECTIONS = 200
TRICKLERS = 20


class TestServing:
    """A valid SSP request is served; the gate and the validator are in front."""

    def test_ssp_metadata(self, written: Written, provider: ProviderServer) -> None:
        """The SSP's valid request gets 200, FHIR JSON and Cache-Control: no-store."""
        response = request(written, provider.address)
        assert response.status == 200
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-type"] == "application/fhir+json"
        assert response.json()["resourceType"] == "CapabilityStatement"
        assert "server" not in response.headers  # no product banner

    def test_patient_read(self, written: Written, provider: ProviderServer) -> None:
        """A Patient read with patient/*.read reaches the app."""
        req = SSPRequest(path="/Patient/1", interaction=READ_PATIENT, scope="patient/*.read")
        response = request(written, provider.address, req)
        assert response.status == 200
        assert response.json()["resourceType"] == "Patient"

    def test_revoked_is_495(self, written: Written, provider: ProviderServer) -> None:
        """The revoked certificate passes TLS (no CRL in the context) and the validator
        refuses it with 495 from the CRL."""
        response = request(written, provider.address, cert="revoked")
        assert response.status == 495
        assert "revoked" in response.json()["issue"][0]["diagnostics"]
        assert "no-store" in response.headers["cache-control"]

    def test_no_certificate_refused_in_require_mode(
        self, written: Written, provider: ProviderServer
    ) -> None:
        """Without a client certificate the handshake fails with an alert."""
        with pytest.raises(ssl.SSLError, match=r"HANDSHAKE_FAILURE|CERTIFICATE_REQUIRED"):
            request(written, provider.address, cert=None)

    def test_496_mode(self, written: Written) -> None:
        """In http-496 mode the handshake completes and the gate answers 496 (OCSP mode)."""
        config = written.config(
            client_auth=ClientAuth.HTTP_496, revocation=RevocationMode.OCSP_ONLY
        )
        with run_provider(config) as server:
            assert request(written, server.address, cert=None).status == 496
            assert request(written, server.address).status == 200

    def test_oversized_headers_431(self, written: Written, provider: ProviderServer) -> None:
        """A request head that is still incomplete past max_header_bytes is answered 431
        (h11 checks its buffer between reads; one read is at most 64 KiB)."""
        req = SSPRequest(headers={"X-Padding": "a" * 100_000})
        response = request(written, provider.address, req)
        assert response.status == 431

    def test_large_complete_header_meets_the_gate(
        self, written: Written, provider: ProviderServer
    ) -> None:
        """A complete head within one read but with a header over the gate's limit is a
        400 OperationOutcome with no-store."""
        req = SSPRequest(headers={"X-Padding": "a" * 20_000})
        response = request(written, provider.address, req)
        assert response.status == 400
        assert "too large" in response.json()["issue"][0]["diagnostics"]

    def test_keep_alive_serves_several_requests(
        self, written: Written, provider: ProviderServer
    ) -> None:
        """One connection can carry several requests (the SSP uses keep-alive)."""
        host = f"{written.pki.provider_fqdn}:{provider.address[1]}"
        with tls_connect(provider.address, written.client(), written.pki.provider_fqdn) as tls:
            for _ in range(3):
                raw = (
                    SSPRequest()
                    .render(host, int(time.time()))
                    .replace(b"Connection: close\r\n", b"")
                )
                tls.sendall(raw)
                head = b""
                while b"\r\n\r\n" not in head:
                    head += tls.recv(65536)
                response = parse(head)
                length = int(response.headers["content-length"])
                body = response.body
                while len(body) < length:
                    body += tls.recv(65536)
                assert response.status == 200


class TestHardening:
    """Silent, slow and greedy clients cannot stop the SSP being served."""

    def test_idle_and_trickling_clients_do_not_block_the_ssp(self, written: Written) -> None:
        """200 idle TCP connections (from two addresses: one may hold at most 128) and 20
        header tricklers are held open while the SSP still gets its 200 within a second,
        on every one of five tries."""
        with run_provider(written.config()) as server:
            idle: list[socket.socket] = []
            stop = threading.Event()
            trickling: list[threading.Thread] = []
            try:
                for source in ("127.0.0.2", "127.0.0.3"):
                    idle += _from(source, server.address, IDLE_CONNECTIONS // 2)
                for _ in range(TRICKLERS):
                    thread = threading.Thread(
                        target=_trickle, args=(written, server, stop), daemon=True
                    )
                    thread.start()
                    trickling.append(thread)
                wait_for(lambda: server.stats.active >= IDLE_CONNECTIONS + TRICKLERS)
                latencies = [request(written, server.address).elapsed for _ in range(5)]
                for latency in latencies:
                    assert latency < 1.0, latencies
                statuses = {request(written, server.address).status for _ in range(2)}
                assert statuses == {200}
                assert server.stats.active >= IDLE_CONNECTIONS + TRICKLERS
            finally:
                stop.set()
                for sock in idle:
                    sock.close()
                for thread in trickling:
                    thread.join(timeout=5)

    def test_stalled_handshake_is_cut_at_the_deadline(self, written: Written) -> None:
        """A client that connects and sends nothing is closed at handshake_timeout."""
        config = written.config(limits=limits(handshake_timeout=0.3))
        with run_provider(config) as server:
            started = time.perf_counter()
            with socket.create_connection(server.address, timeout=5) as sock:
                assert _read_until_closed(sock) == b""
            waited = time.perf_counter() - started
            assert 0.25 <= waited < 2.0, waited
            wait_for(lambda: server.stats.handshake_timeouts == 1)
            assert request(written, server.address).status == 200

    def test_trickled_headers_are_cut_at_the_header_deadline(self, written: Written) -> None:
        """A TLS client that sends a header byte every 50 ms is closed at header_timeout,
        although it never stops sending."""
        config = written.config(limits=limits(header_timeout=0.5))
        with run_provider(config) as server:
            with tls_connect(
                server.address, written.client("consumer"), written.pki.provider_fqdn
            ) as tls:
                started = time.perf_counter()
                closed_after = None
                for byte in b"GET /A12345/STU3/1/gpconnect/metadata HTTP/1.1\r\nX-Slow: " * 4:
                    try:
                        tls.sendall(bytes([byte]))
                    except OSError:
                        closed_after = time.perf_counter() - started
                        break
                    if time.perf_counter() - started > 3:
                        break
                    time.sleep(0.05)  # pacing the trickle, not waiting for a deadline
                if closed_after is None:
                    tls.settimeout(3)
                    assert read_response(tls) == b""
                    closed_after = time.perf_counter() - started
            assert 0.4 <= closed_after < 2.5, closed_after

    def test_idle_after_handshake_is_cut(self, written: Written) -> None:
        """A client that completes TLS and sends nothing is closed at header_timeout."""
        config = written.config(limits=limits(header_timeout=0.3))
        with (
            run_provider(config) as server,
            tls_connect(server.address, written.client(), written.pki.provider_fqdn) as tls,
        ):
            started = time.perf_counter()
            tls.settimeout(3)
            assert read_response(tls) == b""
            assert time.perf_counter() - started < 2.5

    def test_connection_cap(self, written: Written) -> None:
        """Over max_connections a new connection is closed at once; freed slots are reused."""
        with run_provider(written.config(limits=limits(max_connections=5))) as server:
            held = [socket.create_connection(server.address, timeout=5) for _ in range(5)]
            try:
                wait_for(lambda: server.stats.active == 5)
                with socket.create_connection(server.address, timeout=5) as extra:
                    assert _read_until_closed(extra) == b""
                assert server.stats.refused_over_cap >= 1
            finally:
                for sock in held:
                    sock.close()
            wait_for(lambda: server.stats.active == 0)
            assert request(written, server.address).status == 200

    def test_failed_handshake_sends_an_alert(self, written: Written) -> None:
        """A TLS 1.1 client learns why: the alert is sent, not just a dropped connection."""
        with run_provider(written.config()) as server:
            ctx = written.client()
            ctx.set_ciphers("ALL:@SECLEVEL=0")
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers("AES128-SHA")
            with pytest.raises(ssl.SSLError, match="ALERT_HANDSHAKE_FAILURE"):
                tls_connect(server.address, ctx, written.pki.provider_fqdn)
            wait_for(lambda: server.stats.handshake_failures == 1)


class TestLifetime:
    """Start, stop and errors."""

    def test_stop_releases_the_port(self, written: Written) -> None:
        """After stop the port can be bound again; stop twice is harmless."""
        with run_provider(written.config()) as server:
            port = server.address[1]
        server.stop()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))

    def test_busy_port(self, written: Written) -> None:
        """A port in use is a ConfigurationError naming provider.port."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            with pytest.raises(ConfigurationError) as info:
                _Server(FHIRDemoApp(), written.client(), port=sock.getsockname()[1])
            assert info.value.source == "provider.port"

    def test_serve_forever_stops_on_event(self, written: Written) -> None:
        """serve_forever returns when its stop event is set."""
        from spinepki.provider import create_server

        server = create_server(written.config())
        stop = threading.Event()
        thread = threading.Thread(target=server.serve_forever, args=(stop,))
        thread.start()
        wait_for(lambda: answers(written, server))
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()

    def test_key_password_from_environment(
        self, written: Written, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An encrypted key is opened with the password in the named variable."""
        key = tmp_path / "provider.key.pem"
        key.write_bytes(written.pki.leaf("provider").encrypted_key_pem(b"s3cret"))
        config = written.config(key=key, key_password_env="SPINEPKI_TEST_KEY_PASSWORD")
        monkeypatch.setenv("SPINEPKI_TEST_KEY_PASSWORD", "s3cret")
        with run_provider(config) as server:
            assert request(written, server.address).status == 200
        monkeypatch.delenv("SPINEPKI_TEST_KEY_PASSWORD")
        with pytest.raises(ProviderConfigError) as info:
            run_provider(config).__enter__()
        assert info.value.key == "tls.key_password_env"

    def test_serve_calls_ready_and_stops(self, written: Written) -> None:
        """serve() reports the running server to ``ready`` and returns when stopped."""
        from spinepki.provider import serve

        stop = threading.Event()
        seen: list[str] = []

        def ready(server: ProviderServer) -> None:
            seen.append(server.url)
            assert request(written, server.address).status == 200
            stop.set()

        serve(written.config(), stop=stop, ready=ready)
        assert seen

    def test_serve_stops_when_ready_fails(self, written: Written) -> None:
        """An exception in ``ready`` stops the server and propagates."""
        from spinepki.provider import serve

        def ready(server: ProviderServer) -> None:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            serve(written.config(), stop=threading.Event(), ready=ready)


class TestLoadApp:
    """provider.app import strings."""

    def test_default_is_a_fresh_demo_app(self) -> None:
        """The default spec gives a new FHIRDemoApp each time."""
        first = load_app("spinepki.provider:demo_app")
        assert isinstance(first, FHIRDemoApp)
        assert first is not load_app("spinepki.provider:demo_app")

    def test_other_app(self) -> None:
        """Any importable callable is accepted (dotted attributes too)."""
        assert load_app("spinepki.provider._app:FHIRDemoApp.handle") is FHIRDemoApp.handle

    @pytest.mark.parametrize(
        "spec",
        ["no_such_module_xyz:app", "spinepki.provider:nothing", "spinepki.provider:DEFAULT_APP"],
    )
    def test_bad(self, spec: str) -> None:
        """A missing module, attribute or a non-callable is an error naming provider.app."""
        with pytest.raises(ProviderConfigError) as info:
            load_app(spec)
        assert info.value.key == "provider.app"


# -- helpers -----------------------------------------------------------------------------


def _trickle(written: Written, server: ProviderServer, stop: threading.Event) -> None:
    """A client with a valid chain that sends one header byte every 100 ms."""
    try:
        tls = tls_connect(server.address, written.client("consumer"), written.pki.provider_fqdn)
    except OSError:
        return
    with tls:
        for byte in _cycle(b"GET /A12345/STU3/1/gpconnect/metadata HTTP/1.1\r\nX-Slow: "):
            if stop.wait(0.1):
                return
            try:
                tls.sendall(bytes([byte]))
            except OSError:
                return


def _cycle(data: bytes) -> Iterator[int]:
    for _ in range(100):  # bounded: at most 100 passes
        yield from data


def _read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(3)
    try:
        return sock.recv(1024)
    except ConnectionResetError:
        return b""


class TestPerSource:
    """One source address cannot take the slots the SSP needs (issue 11 item 2). The
    attacker is 127.0.0.2, the SSP 127.0.0.1: distinct sources on loopback."""

    def test_one_source_is_capped(self, written: Written) -> None:
        """Past max_connections_per_source a source's new connections are closed at
        once; other sources, the SSP among them, are served."""
        config = written.config(limits=limits(max_connections=20, max_connections_per_source=5))
        with run_provider(config) as server:
            held = _from("127.0.0.2", server.address, 20)
            try:
                wait_for(lambda: server.stats.refused_per_source == 15)
                assert server.stats.active == 5
                assert request(written, server.address).status == 200
            finally:
                for sock in held:
                    sock.close()
            wait_for(lambda: server.stats.active == 0)
            # Freed slots are the source's again.
            again = _from("127.0.0.2", server.address, 5)
            try:
                wait_for(lambda: server.stats.active == 5)
                assert server.stats.refused_per_source == 15
            finally:
                for sock in again:
                    sock.close()

    def test_default_keeps_the_ssp_served_while_one_address_floods(self, written: Written) -> None:
        """With the default limits, one address opening 300 connections (the report
        filled the 512 cap from one address in 3.5 s) holds 128; the SSP is served."""
        with run_provider(written.config()) as server:
            held = _from("127.0.0.2", server.address, 300)
            try:
                wait_for(lambda: server.stats.refused_per_source == 300 - 128)
                assert server.stats.active == 128
                for _ in range(3):
                    assert request(written, server.address).status == 200
            finally:
                for sock in held:
                    sock.close()


def _from(source: str, address: tuple[str, int], n: int) -> list[socket.socket]:
    """``n`` TCP connections to ``address`` from the loopback address ``source``."""
    socks = []
    for _ in range(n):
        socks.append(socket.create_connection(address, timeout=5, source_address=(source, 0)))
    return socks
