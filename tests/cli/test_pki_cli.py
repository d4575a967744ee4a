"""`spinepki pki …` and `spinepki tls show`, in-process with CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from spinepki_cli.main import cli

from tests.cli._helpers import run


def _init(runner: CliRunner, *extra: str) -> None:
    result = runner.invoke(cli, ["pki", "init", "pki", "--key-type", "ec-p256", *extra])
    assert result.exit_code == 0, result.output


class TestPki:
    def test_init_writes_a_pki_and_prints_a_table(self, runner: CliRunner) -> None:
        """init writes the layout and lists every certificate with its purpose."""
        result = runner.invoke(
            cli, ["pki", "init", "pki", "--key-type", "ec-p256", "--ssp-fqdn", "ssp.example.nhs.uk"]
        )
        assert result.exit_code == 0, result.output
        assert "ssp.example.nhs.uk" in result.output
        assert "REVOKED" in result.output
        assert Path("pki/manifest.json").is_file()

    def test_init_refuses_to_overwrite_with_exit_2(self, runner: CliRunner) -> None:
        """A second init fails fast with a one-line error and exit code 2; --force replaces."""
        _init(runner)
        result = runner.invoke(cli, ["pki", "init", "pki", "--key-type", "ec-p256"])
        assert result.exit_code == 2
        assert "already exists" in result.output
        assert "Traceback" not in result.output
        _init(runner, "--force")

    def test_init_json(self, runner: CliRunner) -> None:
        """--json prints the summary as JSON."""
        result = runner.invoke(
            cli, ["pki", "init", "pki", "--key-type", "ec-p256", "--json", "--no-ocsp"]
        )
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert {c["name"] for c in data["certificates"]} >= {"ssp", "provider", "revoked"}

    def test_issue_revoke_show(self, runner: CliRunner) -> None:
        """issue adds a certificate, revoke lists it on the CRL, show reports both."""
        _init(runner)
        result = runner.invoke(
            cli, ["pki", "issue", "pki", "extra", "--fqdn", "x.example.nhs.uk", "--san"]
        )
        assert result.exit_code == 0, result.output
        result = runner.invoke(
            cli, ["pki", "revoke", "pki", "extra", "--reason", "superseded", "--json"]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["reason"] == "superseded"
        result = runner.invoke(cli, ["pki", "show", "pki", "--json"])
        shown = {c["name"]: c for c in json.loads(result.output)["certificates"]}
        assert shown["extra"]["revoked"] is True
        text = runner.invoke(cli, ["pki", "show", "pki"]).output
        assert "extra" in text

    def test_issue_json_and_untrusted(self, runner: CliRunner) -> None:
        """issue --untrusted issues from the foreign CA; --json names the file."""
        _init(runner)
        result = runner.invoke(
            cli,
            [
                "pki",
                "issue",
                "pki",
                "evil",
                "--fqdn",
                "e.nhs.uk",
                "--untrusted",
                "--json",
                "--days",
                "2",
            ],
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["cert"].endswith("evil.pem")

    def test_issue_duplicate_is_exit_2(self, runner: CliRunner) -> None:
        """Re-issuing a name without --replace is a usage error."""
        _init(runner)
        result = runner.invoke(cli, ["pki", "issue", "pki", "ssp", "--fqdn", "x.nhs.uk"])
        assert result.exit_code == 2
        assert "already exists" in result.output

    def test_revoke_unknown_is_exit_2(self, runner: CliRunner) -> None:
        """Revoking a name that does not exist is a usage error naming it."""
        _init(runner)
        result = runner.invoke(cli, ["pki", "revoke", "pki", "nope"])
        assert result.exit_code == 2
        assert "nope" in result.output

    def test_show_on_non_pki_is_exit_2(self, runner: CliRunner) -> None:
        """show on a directory without a PKI is a usage error."""
        Path("empty").mkdir()
        result = runner.invoke(cli, ["pki", "show", "empty"])
        assert result.exit_code == 2
        assert "manifest.json is missing" in result.output

    def test_debug_shows_the_traceback(self, runner: CliRunner) -> None:
        """--debug lets the exception through instead of a one-line message."""
        Path("empty").mkdir()
        result = runner.invoke(cli, ["--debug", "pki", "show", "empty"])
        assert result.exit_code == 1
        assert result.exception is not None


class TestTlsShow:
    def test_show_lists_suites_in_server_order(self, runner: CliRunner) -> None:
        """tls show prints the 20 suites with DHE/ECDSA/CBC/SHA-1 notes."""
        result = runner.invoke(cli, ["tls", "show"])
        assert result.exit_code == 0, result.output
        assert "20 TLS 1.2 suites" in result.output
        assert "needs DH params" in result.output
        assert "SHA-1 MAC (weaker)" in result.output
        first = next(line for line in result.output.splitlines() if line.strip().startswith("1."))
        assert "ECDHE-ECDSA-AES256-GCM-SHA384" in first

    def test_show_json_strict(self, runner: CliRunner) -> None:
        """--profile spine-strict --json lists GCM suites only."""
        result = runner.invoke(cli, ["tls", "show", "--profile", "spine-strict", "--json"])
        data = json.loads(result.output)
        assert data["profile"] == "spine-strict"
        assert all(s["aead"] and not s["weaker"] for s in data["suites"])

    def test_version(self, runner: CliRunner) -> None:
        """--version prints the package version."""
        import spinepki

        result = runner.invoke(cli, ["--version"])
        assert spinepki.__version__ in result.output


class TestServe:
    def test_serve_answers_crl_requests_at_the_pki_urls(self, tmp_path: Path) -> None:
        """`pki serve` listens where the certificates point and serves a fresh, signed CRL."""
        import socket
        import subprocess
        import sys

        import requests
        from cryptography import x509

        from spinepki.testpki import load_pki

        with socket.socket() as probe_sock:  # a free port for the PKI's URLs
            probe_sock.bind(("127.0.0.1", 0))
            port = probe_sock.getsockname()[1]
        runner = CliRunner()
        result = runner.invoke(
            cli,
            [
                "pki",
                "init",
                str(tmp_path / "pki"),
                "--key-type",
                "ec-p256",
                "--base-url",
                f"http://127.0.0.1:{port}",
            ],
        )
        assert result.exit_code == 0, result.output
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "spinepki_cli",
                "pki",
                "serve",
                str(tmp_path / "pki"),
                "--duration",
                "30",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert f"127.0.0.1:{port}" in first
            response = requests.get(f"http://127.0.0.1:{port}/crl/sub-ca.crl", timeout=5)
            assert response.status_code == 200
            crl = x509.load_der_x509_crl(response.content)
            pki = load_pki(tmp_path / "pki")
            assert crl.is_signature_valid(pki.sub_ca.private_key.public_key())  # type: ignore[arg-type]
            assert (
                crl.get_revoked_certificate_by_serial_number(pki.leaf("revoked").serial) is not None
            )
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()

    def test_serve_on_non_pki_is_exit_2(self, runner: CliRunner) -> None:
        """Serving a directory that holds no PKI is a usage error."""
        Path("empty").mkdir()
        result = runner.invoke(cli, ["pki", "serve", "empty", "--duration", "0.1"])
        assert result.exit_code == 2
        assert "manifest.json is missing" in result.output

    def test_serve_runs_for_the_given_duration(self, runner: CliRunner) -> None:
        """With --duration the command returns by itself (exit 0), printing its URLs."""
        import socket

        with socket.socket() as probe_sock:
            probe_sock.bind(("127.0.0.1", 0))
            port = probe_sock.getsockname()[1]
        _init(runner, "--base-url", f"http://127.0.0.1:{port}")
        result = runner.invoke(cli, ["pki", "serve", "pki", "--duration", "0.2", "--delegated"])
        assert result.exit_code == 0, result.output
        assert f"http://127.0.0.1:{port}/crl/sub-ca.crl" in result.output

    def test_serve_on_a_port_the_certificates_do_not_name_is_exit_2(
        self, runner: CliRunner
    ) -> None:
        """A port that differs from the certificates' URLs is refused: nobody could fetch."""
        _init(runner)
        result = runner.invoke(cli, ["pki", "serve", "pki", "--port", "0", "--duration", "0.1"])
        assert result.exit_code == 2
        assert "point at" in result.output


class TestInputSafety:
    @pytest.mark.parametrize("name", ["../../escape", "/srv/abs", "sub/dir", "x.key"])
    def test_issue_never_writes_outside(self, runner: CliRunner, tmp_path: Path, name: str) -> None:
        """A path as NAME: exit 2 in one line, and no file appears anywhere new."""
        Path("a/b").mkdir(parents=True)
        runner.invoke(cli, ["pki", "init", "a/b/pki", "--key-type", "ec-p256"])
        before = set(tmp_path.rglob("*"))
        ran = run("pki", "issue", "a/b/pki", name, "--fqdn", "x.example.nhs.uk")
        assert ran.exit_code == 2
        assert len(ran.error_lines) == 1
        assert set(tmp_path.rglob("*")) == before
        assert not Path("/srv/abs.pem").exists()

    @pytest.mark.parametrize(
        "args",
        [
            ["--ssp-fqdn", "bad fqdn!!"],
            ["--provider-fqdn", "a..b"],
            ["--base-url", "notaurl"],
            ["--base-url", "http://x.nhs.uk/?q"],
        ],
    )
    def test_init_refuses_before_generating(self, runner: CliRunner, args: list[str]) -> None:
        """A malformed FQDN or URL: one line, nothing generated, no directory made."""
        ran = run("pki", "init", "new-pki", *args)
        assert ran.exit_code == 2
        assert len(ran.error_lines) == 1
        assert "Generating" not in ran.stderr
        assert not Path("new-pki").exists()
        ok = run("pki", "init", "new-pki", "--key-type", "ec-p256", "-q")
        assert ok.exit_code == 0  # a legitimate init still works

    def test_serve_json_prints_the_urls(self, runner: CliRunner) -> None:
        """pki serve --json: one JSON object with the URLs it serves."""
        import socket

        with socket.socket() as probe_sock:
            probe_sock.bind(("127.0.0.1", 0))
            port = probe_sock.getsockname()[1]
        _init(runner, "--base-url", f"http://127.0.0.1:{port}")
        ran = run("pki", "serve", "pki", "--duration", "0.1", "--json")
        assert ran.exit_code == 0, str(ran)
        urls = json.loads(ran.stdout)
        assert urls["crl"] == f"http://127.0.0.1:{port}/crl/sub-ca.crl"
        assert urls["ocsp"] == f"http://127.0.0.1:{port}/ocsp"
