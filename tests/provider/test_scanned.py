"""The reference provider, scanned with `spinepki tls scan`, is compliant in both modes.

Issue 6 asks for the scanner to be tested against the reference provider; this is that
test, with the provider serving for real on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from spinepki_cli.main import cli

from spinepki.policy import ClientAuth
from spinepki.provider import ProviderServer, run_provider
from spinepki.scan import scan_endpoint
from tests.provider._helpers import DEMO_ROOT, Written


@pytest.fixture(scope="module", params=list(ClientAuth), ids=lambda m: m.value)
def scanned_provider(request: pytest.FixtureRequest, written: Written) -> Iterator[ProviderServer]:
    with run_provider(written.config(client_auth=request.param)) as server:
        yield server


def test_reference_provider_is_compliant(
    written: Written, scanned_provider: ProviderServer
) -> None:
    """Every check passes: TLS 1.2 only, approved suites in server order, mutual
    authentication (handshake failure or 496), plaintext dropped, the certificate, and
    Cache-Control: no-store on the metadata answer."""
    host, port = scanned_provider.address[:2]
    ssp = written.directory / "certs"
    report = scan_endpoint(
        host,
        port,
        trust=written.pki.trust_store(),
        client_cert=ssp / "ssp.chain.pem",
        client_key=ssp / "ssp.key.pem",
        server_name=written.pki.provider_fqdn,
        metadata_path=DEMO_ROOT + "/metadata",
    )
    assert report.compliant, [(c.id, c.detail) for c in report.checks if c.passed is not True]
    assert report.ciphers.accepted
    assert all(s.startswith("ECDHE-ECDSA-") for s in report.ciphers.accepted)  # EC key


def test_scan_cli_exit_0(written: Written, scanned_provider: ProviderServer) -> None:
    """`spinepki tls scan` on the provider exits 0 and prints COMPLIANT."""
    host, port = scanned_provider.address[:2]
    ssp = written.directory / "certs"
    result = CliRunner().invoke(
        cli,
        [
            "tls",
            "scan",
            f"{host}:{port}",
            "--cert",
            str(ssp / "ssp.chain.pem"),
            "--key",
            str(ssp / "ssp.key.pem"),
            "--trust",
            str(written.directory / "ca/trust-bundle.pem"),
            "--server-name",
            written.pki.provider_fqdn,
            "--path",
            DEMO_ROOT + "/metadata",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "COMPLIANT" in result.output


# -- acceptable CA names in the CertificateRequest (issue 11 item 7) ------------------------

_needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
#: SSL_OP_PRIORITIZE_CHACHA (bit 21): an option the provider never sets, to see whether an
#: OPENSSL_CONF section was applied at all.
PRIORITIZE_CHACHA = 1 << 21

_SERVER = """
import socket, ssl, sys
from spinepki.provider._build import _Credential
from spinepki.provider import load_config
ctx = _Credential(load_config(sys.argv[1])).context()
print("options", int(ctx.options), flush=True)
listener = socket.create_server(("127.0.0.1", 0))
print("port", listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
try:
    ctx.wrap_socket(conn, server_side=True).recv(1)
except (OSError, ssl.SSLError):
    pass
"""


def _ca_names(written: Written, tmp_path: Path, openssl_conf: str | None) -> tuple[str, int]:
    """What ``openssl s_client -tls1_2`` says about the CA names of the provider's
    CertificateRequest, and the context's options, the provider's context built in a
    process with ``OPENSSL_CONF``."""
    config = tmp_path / "provider.toml"
    d = written.directory
    config.write_text(
        f'[provider]\nasid = "918999198738"\n[provider.service_roots]\n'
        f'foundations = ["/A12345/STU3/1/gpconnect"]\n[tls]\n'
        f'certificate = "{d / "certs/provider.chain.pem"}"\n'
        f'key = "{d / "certs/provider.key.pem"}"\n'
        f'trust_files = ["{d / "ca/trust-bundle.pem"}"]\n[validation]\n'
        f'ssp_fqdns = ["{written.pki.ssp_fqdn}"]\n'
    )
    env = dict(os.environ)
    env.pop("OPENSSL_CONF", None)
    if openssl_conf is not None:
        conf = tmp_path / "openssl.cnf"
        conf.write_text(openssl_conf)
        env["OPENSSL_CONF"] = str(conf)
    with subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(config)], stdout=subprocess.PIPE, text=True, env=env
    ) as server:
        assert server.stdout is not None
        options = int(server.stdout.readline().split()[1])
        port = server.stdout.readline().split()[1]
        client = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2"],
            input="",
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        server.wait(timeout=30)
    return client.stdout, options


@_needs_openssl
def test_no_acceptable_ca_names_are_sent(written: Written, tmp_path: Path) -> None:
    """The documented limit, measured: Python's ssl module cannot set the CA list, so the
    CertificateRequest names none (docs/provider.md)."""
    assert "No client certificate CA names sent" in _ca_names(written, tmp_path, None)[0]


@_needs_openssl
def test_openssl_conf_system_default_cannot_send_them(written: Written, tmp_path: Path) -> None:
    """The candidate workaround, measured: an OPENSSL_CONF system_default section is
    applied to Python's contexts (its Options line takes effect) but its
    ClientCAFile/RequestCAFile commands are not (certificate commands, which OpenSSL does
    not run from the system default), so still no names are sent. If OpenSSL ever
    changes that, this test says so."""
    bundle = written.directory / "ca/trust-bundle.pem"
    conf = (
        "openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n"
        "[ssl_sect]\nsystem_default = system_default_sect\n[system_default_sect]\n"
        f"Options = PrioritizeChaCha\nClientCAFile = {bundle}\nRequestCAFile = {bundle}\n"
    )
    output, options = _ca_names(written, tmp_path, conf)
    assert options & PRIORITIZE_CHACHA  # the section was applied...
    assert not _ca_names(written, tmp_path, None)[1] & PRIORITIZE_CHACHA
    assert "No client certificate CA names sent" in output  # ...but not its CA names
