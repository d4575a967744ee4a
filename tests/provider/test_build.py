"""``create_server``'s ``clock=`` and ``ProviderServer.reload_trust`` (SIGHUP in ``serve``)."""

from __future__ import annotations

import datetime as dt
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from spinepki.demo._callers import SSPRequest
from spinepki.errors import CertificateLoadError, ConfigurationError
from spinepki.provider import ProviderServer, create_server, run_provider
from spinepki.testpki import KeyType, TestPKI
from tests.provider._helpers import (
    Response,
    Written,
    parse,
    read_one_response,
    request,
    tls_connect,
)

pytestmark = pytest.mark.network


def _fixed(at: dt.datetime) -> tuple[list[dt.datetime], Callable[[], dt.datetime]]:
    reads: list[dt.datetime] = []

    def clock() -> dt.datetime:
        reads.append(at)
        return at

    return reads, clock


class TestClock:
    """The clock is the decision time: the gate's ``now`` and the validator's ``at``."""

    def test_token_is_judged_at_the_clock(self, written: Written) -> None:
        """A token minted now is expired an hour later (exp is iat + 300 s)."""
        reads, clock = _fixed(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
        with run_provider(written.config(), clock=clock) as server:
            response = request(written, server.address)
        assert response.status == 400
        assert "expired" in response.json()["issue"][0]["diagnostics"].lower()
        assert reads  # read once per request, by the gate

    def test_token_minted_at_the_clock_is_served(self, written: Written) -> None:
        at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        _, clock = _fixed(at)
        server = create_server(written.config(), clock=clock)
        with server:
            host = f"{written.pki.provider_fqdn}:{server.address[1]}"
            with tls_connect(server.address, written.client(), written.pki.provider_fqdn) as tls:
                tls.sendall(SSPRequest().render(host, int(at.timestamp())))
                response = parse(_read_all(tls))
        assert response.status == 200

    def test_certificate_is_validated_at_the_clock(self, written: Written) -> None:
        """Past the client certificate's notAfter (the TLS handshake, at the real time,
        still accepts it) the validator refuses it: 495."""
        at = dt.datetime.now(dt.UTC) + dt.timedelta(days=800)
        _, clock = _fixed(at)
        with run_provider(written.config(), clock=clock) as server:
            host = f"{written.pki.provider_fqdn}:{server.address[1]}"
            with tls_connect(server.address, written.client(), written.pki.provider_fqdn) as tls:
                tls.sendall(SSPRequest().render(host, int(at.timestamp())))
                response = parse(_read_all(tls))
        assert response.status == 495


class TestReloadTrust:
    def test_reload_swaps_the_bundle_for_new_connections_and_the_gate(
        self, written: Written, tmp_path: Path
    ) -> None:
        original = (written.directory / "ca/trust-bundle.pem").read_bytes()
        bundle = tmp_path / "trust-bundle.pem"
        bundle.write_bytes(original)
        # Another key type: test PKIs of one key type share cached keys (and names).
        other = TestPKI.create(key_type=KeyType.EC_P384)
        with run_provider(written.config(trust_files=(bundle,))) as server:
            assert request(written, server.address).status == 200
            before = server.ssl_context
            host = f"{written.pki.provider_fqdn}:{server.address[1]}"
            with tls_connect(server.address, written.client(), written.pki.provider_fqdn) as kept:
                assert _keep_alive(kept, host).status == 200
                bundle.write_bytes(other.root.cert_pem)  # the SSP's CA is gone
                server.reload_trust()
                assert server.ssl_context is not before
                # An open connection keeps its TLS session, but its next request meets
                # the new validator at the gate.
                assert _keep_alive(kept, host).status == 495
            # A new connection's handshake refuses the certificate.
            with pytest.raises((ssl.SSLError, ConnectionError)):
                request(written, server.address)

            # A bundle that does not load: the error is raised, nothing is swapped.
            bundle.write_bytes(b"not a certificate\n")
            current = server.ssl_context
            with pytest.raises(CertificateLoadError):
                server.reload_trust()
            assert server.ssl_context is current

            bundle.write_bytes(original)
            server.reload_trust()
            assert request(written, server.address).status == 200

    def test_server_built_directly_cannot_reload(self, written: Written) -> None:
        ctx = written.client()  # any SSLContext will do: the server is never started
        server = ProviderServer(_never_called, ctx)
        try:
            with pytest.raises(ConfigurationError, match="create_server"):
                server.reload_trust()
        finally:
            server.stop()

    def test_set_ssl_context_wants_a_context(self, written: Written) -> None:
        server = ProviderServer(_never_called, written.client())
        try:
            with pytest.raises(TypeError):
                server.set_ssl_context("context")  # type: ignore[arg-type]
        finally:
            server.stop()

    def test_sighup_handler_reports_and_keeps_serving(
        self, written: Written, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``spinepki serve`` runs this on SIGHUP: a failure is a line on stderr."""
        serve_cli = pytest.importorskip("spinepki_cli.serve")
        bundle = tmp_path / "trust-bundle.pem"
        bundle.write_bytes((written.directory / "ca/trust-bundle.pem").read_bytes())
        with run_provider(written.config(trust_files=(bundle,))) as server:
            assert serve_cli.reload_trust(server) is True
            bundle.write_bytes(b"")
            assert serve_cli.reload_trust(server) is False
            assert request(written, server.address).status == 200
        err = capsys.readouterr().err
        assert "trust bundle reloaded" in err
        assert "trust reload failed, keeping the current trust" in err


async def _never_called(scope: object, receive: object, send: object) -> None:
    raise AssertionError("not served")


def _read_all(tls: ssl.SSLSocket) -> bytes:
    chunks = []
    while chunk := tls.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _keep_alive(tls: ssl.SSLSocket, host: str) -> Response:
    raw = SSPRequest().render(host, int(time.time())).replace(b"Connection: close\r\n", b"")
    tls.sendall(raw)
    return read_one_response(tls)
