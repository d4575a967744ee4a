"""The reference provider, scanned with `spinepki tls scan`, is compliant in both modes.

Issue 6 asks for the scanner to be tested against the reference provider; this is that
test, with the provider serving for real on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from spinepki_cli.main import cli

from spinepki.policy import ClientAuth
from spinepki.provider import ProviderServer, run_provider
from spinepki.scan import scan_endpoint

from ._helpers import DEMO_ROOT, Written


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
