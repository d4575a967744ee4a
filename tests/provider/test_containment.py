"""Issue 11 item 1, the findings by name: one connection cannot stop the provider, and a
fatal error of the accept loop ends the process loudly.

The critical finding: a client-initiated renegotiation, or one garbage TLS record after
a completed handshake, raised ``ssl.SSLError`` out of anycorn's reader; it escaped the
connection's task group, cancelled every connection, and ``serve()`` returned while the
process stayed up with its port bound, serving nobody and logging nothing. The generated
cases of the same class are in ``test_connection_fuzz.py``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spinepki.policy import ClientAuth
from spinepki.provider import ProviderServer, run_provider
from spinepki.provider._loop import CONNECTION_FAILED, _TCPServer
from spinepki.provider._server import PROVIDER_FAILED, ProviderFailedError
from tests.provider._helpers import Written, answers, request, tls_connect, wait_for
from tests.provider.connection_cases import OPENSSL, _record, check_still_serving, renegotiate

pytestmark = pytest.mark.network

needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")


@pytest.fixture(scope="module", params=[ClientAuth.HTTP_496, ClientAuth.REQUIRE], ids=str)
def target(request: pytest.FixtureRequest, written: Written) -> Iterator[ProviderServer]:
    with run_provider(written.config(client_auth=request.param)) as server:
        yield server


def _certs(server: ProviderServer) -> list[str | None]:
    """Who can complete a handshake: in http-496 mode anyone, certificate or not; in
    require mode any certificate that chains, revoked or for the wrong FQDN included."""
    certs: list[str | None] = ["ssp", "revoked", "wrong-fqdn"]
    if server.ssl_context.verify_mode is not __import__("ssl").CERT_REQUIRED:
        certs.append(None)
    return certs


class TestOneConnection:
    """What the report found, for every client that can complete a handshake."""

    def test_garbage_record_after_the_handshake(
        self, target: ProviderServer, written: Written
    ) -> None:
        """One application-data record of random bytes ends only its own connection."""
        for cert in _certs(target):
            errors, tls_errors = target.stats.connection_errors, target.stats.tls_errors
            with tls_connect(
                target.address, written.client(cert), written.pki.provider_fqdn
            ) as tls:
                raw = socket.socket(fileno=os.dup(tls.fileno()))
                with raw:
                    raw.sendall(_record(23, os.urandom(32)))
                    raw.settimeout(5)
                    assert raw.recv(65536) is not None  # the server's alert, or EOF
            check_still_serving(written, target, errors, cert)
            assert target.stats.tls_errors == tls_errors + 1

    @needs_openssl
    def test_renegotiation_is_refused_and_the_server_serves_on(
        self, target: ProviderServer, written: Written
    ) -> None:
        """``openssl s_client -tls1_2`` then ``R``: the server refuses (no_renegotiation)
        and serves on. testssl.sh and sslyze reported "not vulnerable" without noticing
        the server had stopped."""
        for cert in _certs(target):
            errors = target.stats.connection_errors
            output = renegotiate(written, target, cert)
            assert "RENEGOTIATING" in output, output[-500:]
            assert "no renegotiation" in output, output[-500:]
            check_still_serving(written, target, errors, cert)


class TestContainment:
    """Whatever escapes a connection is contained, logged with a stable code."""

    @pytest.mark.parametrize(
        "exc",
        [RuntimeError("boom"), ExceptionGroup("group", [ValueError("a"), KeyError("b")])],
        ids=["exception", "exception-group"],
    )
    def test_unexpected_exception_is_logged_and_contained(
        self,
        written: Written,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        exc: Exception,
    ) -> None:
        """An exception anycorn's per-connection server raises (a bug, in anycorn or
        ours) closes that connection and is logged as ``provider.connection_failed``;
        the next connection is served."""
        real_run = _TCPServer.run
        calls: list[int] = []

        async def failing_once(self: _TCPServer) -> None:
            calls.append(1)
            if len(calls) == 1:
                raise exc
            await real_run(self)

        monkeypatch.setattr(_TCPServer, "run", failing_once)
        with (
            caplog.at_level(logging.WARNING, logger="spinepki.provider"),
            run_provider(written.config()) as server,
        ):
            with pytest.raises((OSError, ValueError, IndexError)):
                request(written, server.address)  # closed without an answer
            assert request(written, server.address).status == 200
            assert server.stats.connection_errors == 1
            assert server.failure is None
        logged = [r for r in caplog.records if getattr(r, "spinepki_code", "") == CONNECTION_FAILED]
        assert len(logged) == 1
        assert logged[0].levelno == logging.WARNING
        assert "boom" not in logged[0].getMessage()  # types only, never messages


class TestFatal:
    """A broken accept loop ends the server loudly instead of leaving it bound and deaf."""

    def test_broken_listening_socket_ends_serve_forever(
        self, written: Written, caplog: pytest.LogCaptureFixture
    ) -> None:
        """With the listening socket shut down, accept() fails with EINVAL: no retry can
        mend that, so serve_forever raises ProviderFailedError and ``provider.failed``
        is logged at CRITICAL."""
        from spinepki.provider import create_server

        server = create_server(written.config())
        failure: list[BaseException] = []

        def serve() -> None:
            try:
                server.serve_forever(threading.Event())
            except ProviderFailedError as exc:
                failure.append(exc)

        with caplog.at_level(logging.CRITICAL, logger="spinepki.provider"):
            thread = threading.Thread(target=serve)
            thread.start()
            wait_for(lambda: answers(written, server))
            server._sock.shutdown(socket.SHUT_RDWR)
            thread.join(timeout=10)
        assert not thread.is_alive()
        assert len(failure) == 1
        assert failure[0].code == PROVIDER_FAILED  # type: ignore[attr-defined]
        assert "OSError" in str(failure[0])
        assert any(getattr(r, "spinepki_code", "") == PROVIDER_FAILED for r in caplog.records)
        assert server.failure is not None

    def test_a_requested_stop_is_not_a_failure(self, written: Written) -> None:
        """stop() ends the loop without a failure being recorded or raised."""
        with run_provider(written.config()) as server:
            assert request(written, server.address).status == 200
        assert server.failure is None

    def test_spinepki_serve_exits_non_zero(self, written: Written, tmp_path: Path) -> None:
        """``spinepki serve`` (a real process) exits with a non-zero status and a log
        line naming ``provider.failed`` when its accept loop fails, so systemd's
        ``Restart=on-failure`` or a Kubernetes pod restarts it."""
        config = _config_file(written, tmp_path)
        script = textwrap.dedent(
            f"""
            import socket, threading
            from spinepki.provider import _server

            start = _server.ProviderServer.start

            def start_then_break(self):
                started = start(self)
                # The fault: the listening socket breaks under the running server.
                threading.Timer(0.5, self._sock.shutdown, [socket.SHUT_RDWR]).start()
                return started

            _server.ProviderServer.start = start_then_break
            from spinepki_cli.main import main
            main(["serve", "--config", {str(config)!r}])
            """
        )
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
        assert proc.returncode != 0, proc.stdout + proc.stderr
        assert PROVIDER_FAILED in proc.stderr, proc.stderr
        assert "spinepki reference provider on" in proc.stdout

    def test_sigterm_still_exits_zero(self, written: Written, tmp_path: Path) -> None:
        """A requested stop (SIGTERM) is not a failure: exit status 0."""
        config = _config_file(written, tmp_path)
        with subprocess.Popen(
            [sys.executable, "-m", "spinepki_cli", "serve", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            try:
                assert proc.stdout is not None
                line = proc.stdout.readline()
                assert "spinepki reference provider on" in line
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=30)
                assert proc.returncode == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()


# -- helpers -----------------------------------------------------------------------------


def _config_file(written: Written, tmp_path: Path) -> Path:
    d = written.directory
    path = tmp_path / "provider.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [provider]
            asid = "918999198738"
            port = 0
            [provider.service_roots]
            foundations = ["/A12345/STU3/1/gpconnect"]
            [tls]
            certificate = "{d / "certs/provider.chain.pem"}"
            key = "{d / "certs/provider.key.pem"}"
            trust_files = ["{d / "ca/trust-bundle.pem"}"]
            [validation]
            ssp_fqdns = ["{written.pki.ssp_fqdn}"]
            revocation = "crl-only"
            """
        )
    )
    return path


class TestAcceptErrors:
    def test_a_transient_accept_error_is_survived(
        self, written: Written, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """EMFILE (out of descriptors) is not fatal: the loop pauses, logs, serves on."""
        import errno

        import anyio.abc

        real = anyio.abc.SocketListener.from_socket
        failures = [OSError(errno.EMFILE, "Too many open files")]

        class Flaky:
            def __init__(self, inner: Any) -> None:
                self.inner = inner

            async def accept(self) -> Any:
                if failures:
                    raise failures.pop()
                return await self.inner.accept()

            async def aclose(self) -> None:
                await self.inner.aclose()

        async def from_socket(sock: Any) -> Any:
            return Flaky(await real(sock))

        monkeypatch.setattr(anyio.abc.SocketListener, "from_socket", from_socket)
        with (
            caplog.at_level(logging.WARNING, logger="spinepki.provider"),
            run_provider(written.config()) as server,
        ):
            wait_for(lambda: answers(written, server))
            assert server.failure is None
        assert any("accept failed" in r.getMessage() for r in caplog.records)


class TestContextRenewal:
    def test_a_failed_renewal_keeps_the_context_and_says_so(
        self, written: Written, caplog: pytest.LogCaptureFixture
    ) -> None:
        """When the context cannot be renewed (say the certificate expired meanwhile),
        the current one is kept, the failure logged once per lifetime, and connections
        are served."""
        import datetime as dt

        from spinepki.provider import FHIRDemoApp, ProviderServer
        from tests.resilience._helpers import Clock

        clock = Clock(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
        calls: list[int] = []

        def renew() -> Any:
            calls.append(1)
            raise RuntimeError("the certificate expired")

        ctx = written.client()  # any context: only its renewal is under test
        server = ProviderServer(
            FHIRDemoApp(), ctx, renew_context=renew, session_lifetime=60, clock=clock
        )
        try:
            assert server._current_context() is ctx
            clock.advance(dt.timedelta(seconds=61))
            with caplog.at_level(logging.ERROR, logger="spinepki.provider"):
                assert server._current_context() is ctx
                assert server._current_context() is ctx  # not retried per connection
            assert calls == [1]
            assert any(
                getattr(r, "spinepki_code", "") == "provider.context_renewal_failed"
                for r in caplog.records
            )
            assert server.stats.context_renewals == 0
        finally:
            server.stop()

    @pytest.mark.parametrize("bad", [0, -1, True, "60"])
    def test_bad_session_lifetime(self, written: Written, bad: Any) -> None:
        from spinepki.errors import ConfigurationError
        from spinepki.provider import FHIRDemoApp, ProviderServer

        with pytest.raises(ConfigurationError) as info:
            ProviderServer(FHIRDemoApp(), written.client(), session_lifetime=bad)
        assert info.value.source == "session_lifetime"
