"""`spinepki tls scan`, in-process with CliRunner, plus one real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from spinepki_cli.main import cli

from spinepki.testpki import TestPKI
from tests.scan.conftest import leaf_files
from tests.scan.servers import METADATA_PATH, ScanTestServer


def _trust_file(pki: TestPKI, tmp: Path) -> str:
    path = tmp / "trust.pem"
    path.write_bytes(pki.root.cert_pem + pki.sub_ca.cert_pem)
    return str(path)


def _ssp_scan(
    server: ScanTestServer,
    ssp_files: tuple[Path, Path],
    trust: str,
    server_name: str,
    *extra: str,
) -> list[str]:
    """`tls scan` of ``server`` with the SSP's credential, ``trust`` and the metadata path."""
    cert, key = ssp_files
    return ["tls", "scan", server.target, "--cert", str(cert), "--key", str(key),
            "--trust", trust, "--server-name", server_name, "--path", METADATA_PATH,
            *extra]  # fmt: skip


@pytest.fixture
def trust(scan_pki: TestPKI, tmp_path: Path) -> str:
    """The PKI's root and Sub CA, in a file."""
    return _trust_file(scan_pki, tmp_path)


class TestScanCommand:
    def test_compliant_exit_0_with_table(
        self,
        runner: CliRunner,
        require_server: ScanTestServer,
        provider_fqdn: str,
        ssp_files: tuple[Path, Path],
        trust: str,
    ) -> None:
        """A compliant endpoint exits 0 and prints a ✓ row per requirement."""
        result = runner.invoke(cli, _ssp_scan(require_server, ssp_files, trust, provider_fqdn))
        assert result.exit_code == 0, result.output
        assert "COMPLIANT" in result.output
        assert "✓ TLS 1.2 only" in result.output
        assert "✓ Cache-Control: no-store" in result.output
        assert "✗" not in result.output

    def test_misconfigured_exit_1(
        self,
        runner: CliRunner,
        misconfigured_server: ScanTestServer,
        provider_fqdn: str,
    ) -> None:
        """A misconfigured endpoint exits 1 and marks the failures ✗."""
        result = runner.invoke(
            cli, ["tls", "scan", misconfigured_server.target, "--server-name", provider_fqdn]
        )
        assert result.exit_code == 1, result.output
        assert "✗ plaintext dropped" in result.output
        assert "AES128-SHA256  outside the policy" in result.output
        assert "NOT COMPLIANT" in result.output

    def test_json(
        self,
        runner: CliRunner,
        http496_server: ScanTestServer,
        provider_fqdn: str,
        ssp_files: tuple[Path, Path],
    ) -> None:
        """--json prints only the report (no progress bar) with the stable schema."""
        result = runner.invoke(
            cli,
            [
                "tls",
                "scan",
                http496_server.target,
                "--json",
                "--cert",
                str(ssp_files[0]),
                "--key",
                str(ssp_files[1]),
                "--server-name",
                provider_fqdn,
                "--path",
                METADATA_PATH,
            ],
        )
        # No trust store given: the chain check is undetermined, so not (proven) compliant.
        assert result.exit_code == 1, result.output
        data = json.loads(result.stdout)
        assert data["schema"] == "spinepki.tls-scan/1"
        assert data["summary"] == {"passed": 14, "failed": 0, "undetermined": 1}
        assert data["findings"]["client_certificate"]["without_certificate"] == "http-496"

    def test_wrong_fqdn_served_exit_1(
        self,
        runner: CliRunner,
        require_server: ScanTestServer,
        scan_pki: TestPKI,
        provider_fqdn: str,
        ssp_files: tuple[Path, Path],
        tmp_path: Path,
        trust: str,
    ) -> None:
        """--wrong-fqdn-cert/--wrong-fqdn-key (the key from standard input): an endpoint
        that serves a certificate naming another host fails the FQDN check, exit 1."""
        wrong_cert, wrong_key = leaf_files(scan_pki, "wrong-fqdn", tmp_path)
        wrong = ("--wrong-fqdn-cert", str(wrong_cert), "--wrong-fqdn-key", "-")
        result = runner.invoke(
            cli,
            _ssp_scan(require_server, ssp_files, trust, provider_fqdn, *wrong),
            input=wrong_key.read_bytes(),
        )
        assert result.exit_code == 1, result.output
        assert "✗ only the SSP's FQDN" in result.output
        assert "a certificate naming another host was served" in result.output

    def test_refused_exit_2(self, runner: CliRunner, closed_port: int) -> None:
        """Nothing listening: exit 2 with a one-line error."""
        result = runner.invoke(cli, ["tls", "scan", f"127.0.0.1:{closed_port}", "--timeout", "2"])
        assert result.exit_code == 2, result.output
        assert "scan.unreachable" in result.output

    def test_usage_errors_exit_2(
        self, runner: CliRunner, require_server: ScanTestServer, ssp_files: tuple[Path, Path]
    ) -> None:
        """A CIDR, a half credential, or --env with --trust are usage errors (exit 2)."""
        for args in (
            ["10.0.0.0/8:443"],
            [require_server.target, "--cert", str(ssp_files[0])],
            [require_server.target, "--wrong-fqdn-cert", str(ssp_files[0])],
            [require_server.target, "--env", "int", "--trust", str(ssp_files[0])],
            [require_server.target, "--password-env", "SPINEPKI_SCAN_UNSET_VARIABLE"],
        ):
            result = runner.invoke(cli, ["tls", "scan", *args])
            assert result.exit_code == 2, (args, result.output)


def test_subprocess_scan(require_server: ScanTestServer) -> None:
    """`python -m spinepki_cli tls scan` runs for real and exits 1 (no cert, by IP)."""
    proc = subprocess.run(
        [sys.executable, "-m", "spinepki_cli", "tls", "scan", require_server.target, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["findings"]["ciphers"]["server_order"] is True
