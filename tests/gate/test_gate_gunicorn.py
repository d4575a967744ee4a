"""The gate behind a real gunicorn over TLS built by ``spinepki.tls.server_context``.

gunicorn runs as a subprocess (``python -m gunicorn``, one sync worker, 127.0.0.1 on a
free port) with ``gunicorn_conf.py`` (its ``ssl_context`` hook returns spinepki's provider
context) serving ``gunicorn_app.py`` (Flask behind ``GateWSGIMiddleware`` reading the
peer certificate with ``GunicornSocketSource``). Both client-certificate modes:
http-496 (the handshake completes without a certificate, the gate answers 496) and
require (the handshake itself refuses a client without one).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spinepki.gate import INTERACTIONS, RootKind
from spinepki.testpki import write_pki
from tests.gate._helpers import (
    READ_METADATA,
    READ_PATIENT,
    Server,
    _clients,
    fresh_request,
    outcome_of,
)

pytest.importorskip("gunicorn")
pytest.importorskip("flask")

pytestmark = pytest.mark.network

HERE = Path(__file__).resolve().parent
BY_ID = {(i.interaction_id, i.root): i for i in INTERACTIONS}
METADATA = BY_ID[(READ_METADATA, RootKind.FOUNDATIONS)]
PATIENT = BY_ID[(READ_PATIENT, RootKind.FOUNDATIONS)]
STARTUP_DEADLINE = 30.0  # seconds; gunicorn + Flask + spinepki import in ~1-2 s


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Poll the port until gunicorn accepts, the process dies, or the deadline passes."""
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"gunicorn not listening after {STARTUP_DEADLINE} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (graceful), then SIGKILL of gunicorn's own process group (arbiter + worker)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group start_new_session made for it
            proc.wait(timeout=10)


@pytest.fixture(scope="module", params=["http-496", "require"])
def gunicorn_server(
    request: pytest.FixtureRequest, pki: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Server]]:
    """gunicorn serving the gated Flask app; yields (client auth mode, clients)."""
    mode: str = request.param
    work = tmp_path_factory.mktemp(f"gunicorn-{mode}")
    pki_dir = work / "pki"
    write_pki(pki, pki_dir)
    port = _free_port()
    env = {
        **os.environ,
        "SPINEPKI_GATE_PKI_DIR": str(pki_dir),
        "SPINEPKI_GATE_BIND": f"127.0.0.1:{port}",
        "SPINEPKI_GATE_CLIENT_AUTH": mode,
        "SPINEPKI_GATE_DENY_SERIALS": str(pki.leaf("revoked").certificate.serial_number),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    log = work / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                str(HERE / "gunicorn_conf.py"),
                # The repository root, so the app imports tests.gate._helpers as tests do.
                "--chdir",
                str(HERE.parents[1]),
                "tests.gate.gunicorn_app:app",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_listening(proc, port, log)
        base = f"https://127.0.0.1:{port}"
        for ssp, anonymous, revoked in _clients(pki, base):
            yield mode, Server(base, ssp, anonymous, revoked)
    finally:
        _stop(proc)


def test_ssp_certificate_allowed(gunicorn_server: tuple[str, Server]) -> None:
    """The SSP's certificate, read from gunicorn's TLS socket, passes: 200 + no-store."""
    _, server = gunicorn_server
    resp = server.send(fresh_request(PATIENT))
    assert resp.status_code == 200, resp.text
    assert resp.headers.get_list("cache-control") == ["no-store"]  # max-age=60 replaced
    echoed = resp.json()
    assert echoed["path"] == fresh_request(PATIENT).path
    assert echoed["server_software"].startswith("gunicorn")
    # gunicorn sets no SSL_CLIENT_CERT: the certificate came from environ["gunicorn.socket"].
    assert echoed["ssl_client_cert_in_environ"] is False


def test_bad_interaction_id_400(gunicorn_server: tuple[str, Server]) -> None:
    """A known-good request with a wrong interaction ID -> 400 BAD_REQUEST outcome."""
    _, server = gunicorn_server
    req = fresh_request(METADATA)
    headers = [(k, v if k != "Ssp-InteractionID" else v + "x") for k, v in req.headers]
    resp = server.send(req, headers=headers)
    assert resp.status_code == 400
    assert resp.headers["content-type"] == "application/fhir+json"
    got = outcome_of(resp)
    assert (got["code"], got["issue"]) == ("BAD_REQUEST", "invalid")
    assert "Ssp-InteractionID" in str(got["diagnostics"])


def test_no_client_certificate(gunicorn_server: tuple[str, Server]) -> None:
    """http-496: the gate answers 496. require: the handshake refuses the client."""
    mode, server = gunicorn_server
    if mode == "require":
        import httpx

        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            server.send(fresh_request(METADATA), client=server.anonymous)
        return
    resp = server.send(fresh_request(METADATA), client=server.anonymous)
    assert resp.status_code == 496
    got = outcome_of(resp)
    assert (got["code"], got["issue"]) == ("ACCESS_DENIED_SSL", "security")


def test_refused_certificate_495(gunicorn_server: tuple[str, Server]) -> None:
    """A chain-valid certificate the configured checker refuses (revoked) -> 495."""
    _, server = gunicorn_server
    resp = server.send(fresh_request(METADATA), client=server.revoked)
    assert resp.status_code == 495
    got = outcome_of(resp)
    assert got["code"] == "ACCESS_DENIED_SSL"
    assert "revoked" in str(got["diagnostics"])
