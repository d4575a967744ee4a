"""`spinepki tls config` and `spinepki gate serve` on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from spinepki_cli.main import cli

from spinepki.trust import TrustStore

# Files of the target server, not of this machine: not opened (tests/cli covers the checks).
BASE = [
    "tls", "config", "--no-check-files", "--cert", "/etc/p.pem", "--key", "/etc/p.key",
    "--fqdn", "msg.int.spine2.ncrs.nhs.uk",
]  # fmt: skip


class TestTlsConfig:
    def test_prints_nginx(self, runner: CliRunner) -> None:
        """The nginx export goes to stdout."""
        result = runner.invoke(
            cli, [*BASE, "nginx", "--trust-bundle", "/etc/b.pem", "--listen", "127.0.0.1:8443"]
        )
        assert result.exit_code == 0, result.output
        assert "listen 127.0.0.1:8443 ssl;" in result.output

    def test_env_writes_the_spine_bundle(self, runner: CliRunner, tmp_path: Path) -> None:
        """--env writes the bundled Spine CA set beside -o and points the config at it."""
        out = tmp_path / "conf" / "spine.conf"
        out.parent.mkdir()
        result = runner.invoke(
            cli, [*BASE, "apache", "--env", "int", "-o", str(out), "--client-auth", "http-496"]
        )
        assert result.exit_code == 0, result.output
        bundle = out.parent / "spine-int-ca.pem"
        assert len(TrustStore.from_paths(bundle)) == len(TrustStore.spine("int"))
        assert f'SSLCACertificateFile "{bundle.absolute()}"' in out.read_text()
        assert "SSLVerifyClient optional" in out.read_text()

    @pytest.mark.parametrize("trust", [[], ["--trust-bundle", "/b.pem", "--env", "live"]])
    def test_exactly_one_trust_source(self, runner: CliRunner, trust: list[str]) -> None:
        """Neither or both of --trust-bundle/--env: exit 2."""
        result = runner.invoke(cli, [*BASE, "nginx", *trust])
        assert result.exit_code == 2
        assert "exactly one" in result.output

    def test_library_refusal_is_exit_2(self, runner: CliRunner) -> None:
        """A gate for Apache is a configuration error: one line, exit 2."""
        result = runner.invoke(
            cli, [*BASE, "apache", "--trust-bundle", "/b.pem", "--gate", "http://127.0.0.1:9000"]
        )
        assert result.exit_code == 2
        assert "auth_request" in result.output

    def test_tomcat_strict_profile(self, runner: CliRunner) -> None:
        """--profile spine-strict exports the GCM-only suites."""
        result = runner.invoke(
            cli, [*BASE, "tomcat", "--trust-bundle", "/b.pem", "--profile", "spine-strict"]
        )
        assert result.exit_code == 0, result.output
        assert "CBC" not in result.output.split("<Connector")[1]


class TestGateServe:
    def test_missing_settings_exit_2(self, runner: CliRunner) -> None:
        """Without an ASID the service refuses to start: one line, exit 2."""
        result = runner.invoke(cli, ["gate", "serve", "--env", "int", "--ssp-fqdn", "x.nhs.uk"])
        assert result.exit_code == 2
        assert "ASID" in result.output

    def test_bad_root(self, runner: CliRunner) -> None:
        """--root must be KIND=URL."""
        result = runner.invoke(cli, ["gate", "serve", "--root", "nowhere"])
        assert result.exit_code == 2

    def test_config_file_errors(self, runner: CliRunner, tmp_path: Path) -> None:
        """A bad TOML file: exit 2 naming the key."""
        path = tmp_path / "gate.toml"
        path.write_text("colour = 'blue'\n")
        result = runner.invoke(cli, ["gate", "serve", "-c", str(path)])
        assert result.exit_code == 2
        assert "colour" in result.output
