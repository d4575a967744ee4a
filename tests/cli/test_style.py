"""The one style every command shares: errors, JSON errors, -q, --debug anywhere, -, aliases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from cryptography.hazmat.primitives import serialization
from spinepki_cli._common import SpineCommand, SpineGroup
from spinepki_cli.main import cli

from spinepki.testpki import KeyType, TestPKI, write_pki
from tests.cli._helpers import command_at, leaf_commands, run


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create(key_type=KeyType.EC_P256, base_url="http://127.0.0.1:9")


@pytest.fixture
def here(pki: TestPKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding ./pki."""
    monkeypatch.chdir(tmp_path)
    write_pki(pki, tmp_path / "pki")
    return tmp_path


CHECK = ("cert", "check", "--trust", "pki/ca/trust-bundle.pem", "--crl", "pki/crl/crl-set.pem")


class TestEveryCommand:
    def test_every_command_is_built_for_the_style(self) -> None:
        """Every group and command comes from _common's classes (so gets -q, --debug)."""
        seen = []

        def walk(command: click.Command) -> None:
            seen.append(command)
            if isinstance(command, click.Group):
                for sub in command.commands.values():
                    walk(sub)

        walk(cli)
        wrong = [c.name for c in seen if not isinstance(c, SpineGroup | SpineCommand)]
        assert wrong == []

    @pytest.mark.parametrize("path", leaf_commands(), ids=" ".join)
    def test_quiet_and_debug_are_accepted_after_the_command(self, path: tuple[str, ...]) -> None:
        """`-q` is in every command's help; `--debug` is accepted there but not shown."""
        command = command_at(path)
        assert isinstance(command, click.Command)
        names = {opt for p in command.params for opt in getattr(p, "opts", [])}
        assert {"-q", "--quiet", "--debug"} <= names
        shown = run(*path, "--help").stdout
        assert "-q, --quiet" in shown
        assert "--debug" not in shown


class TestErrors:
    def test_usage_error_is_one_line(self, here: Path) -> None:
        """A bad option value: one line, not click's usage block."""
        ran = run(*CHECK, "pki/certs/ssp.pem", "--env", "prod")
        assert ran.exit_code == 2
        assert ran.error_lines == [
            "Error: Invalid value for '--env': 'prod' is not one of 'live', 'int', 'dep'. [usage]"
        ]
        assert "Usage:" not in ran.stderr

    @pytest.mark.parametrize("flag", [["--json"], ["--format", "json"], ["--format=json"]])
    def test_json_errors(self, here: Path, flag: list[str]) -> None:
        """Under --json (or --format json) the error is JSON on stdout; stderr stays empty."""
        ran = run("cert", "show", "pki/certs/ssp.key.pem", *flag)
        assert ran.exit_code == 2
        assert ran.stderr == ""
        error = json.loads(ran.stdout)["error"]
        assert error["code"] == "input.certificate"
        assert error["message"].startswith("pki/certs/ssp.key.pem: a PEM PRIVATE KEY, not a")

    def test_json_usage_error_before_parsing(self, here: Path) -> None:
        """An unknown option, found before the command runs, is JSON too."""
        ran = run("pki", "show", "pki", "--jsn", "--json")
        assert json.loads(ran.stdout)["error"]["code"] == "usage"
        assert ran.exit_code == 2

    @pytest.mark.parametrize("where", ["before", "after", "group"])
    def test_debug_anywhere_shows_the_traceback(self, here: Path, where: str) -> None:
        """--debug before the command, after it, or after the group: the exception escapes."""
        args = {
            "before": ("--debug", "pki", "show", "missing"),
            "after": ("pki", "show", "missing", "--debug"),
            "group": ("pki", "--debug", "show", "missing"),
        }[where]
        ran = run(*args)
        assert ran.exit_code == 1
        assert type(ran.exception).__name__ == "TestPKIError"

    def test_output_write_error_is_one_line(self, here: Path) -> None:
        """-o into a directory that does not exist: one line, exit 2, no traceback."""
        ran = run(
            "tls",
            "config",
            "nginx",
            "--cert",
            "pki/certs/provider.chain.pem",
            "--key",
            "pki/certs/provider.key.pem",
            "--trust",
            "pki/ca/trust-bundle.pem",
            "-o",
            "/nonexistent/x.conf",
        )
        assert ran.exit_code == 2
        assert ran.error_lines == [
            "Error: /nonexistent/x.conf: cannot write: /nonexistent is not a directory [io]"
        ]
        assert not Path("ffdhe2048.pem").exists()

    def test_unwritable_pki_directory(self, here: Path) -> None:
        """pki init where no directory can be made: one line, before any key is made."""
        (here / "blocker").write_text("a file where a directory would go\n")
        ran = run("pki", "init", "blocker/pki", "--key-type", "ec-p256")
        assert ran.exit_code == 2
        assert ran.error_lines == ["Error: blocker/pki: cannot create: Not a directory [io]"]
        assert "Generating" not in ran.stderr


class TestQuiet:
    def test_valid_prints_nothing(self, here: Path) -> None:
        """-q: a valid certificate prints nothing and exits 0."""
        ran = run(*CHECK, "pki/certs/ssp.pem", "-q")
        assert (ran.exit_code, ran.stdout, ran.stderr) == (0, "", "")

    def test_invalid_prints_nothing(self, here: Path) -> None:
        """-q: a revoked certificate prints nothing and exits 1."""
        ran = run(*CHECK, "pki/certs/revoked.pem", "--quiet")
        assert (ran.exit_code, ran.stdout, ran.stderr) == (1, "", "")

    def test_errors_still_print(self, here: Path) -> None:
        """-q: an input error is still its one line, exit 2."""
        ran = run(*CHECK, "missing.pem", "-q")
        assert ran.exit_code == 2
        assert len(ran.error_lines) == 1

    def test_safety_warnings_still_print(self, here: Path) -> None:
        """-q does not hide that revocation checking was switched off."""
        ran = run("cert", "check", "pki/certs/ssp.pem", "--trust", "pki/ca/trust-bundle.pem",
                  "--revocation", "disabled", "-q")  # fmt: skip
        assert ran.exit_code == 0
        assert ran.stdout == ""
        assert "Warning: revocation checking is disabled" in ran.stderr

    def test_quiet_on_a_command_with_progress(self, here: Path) -> None:
        """-q on pki init: no 'Generating...' and no table; the PKI is made."""
        ran = run("pki", "init", "quiet-pki", "--key-type", "ec-p256", "-q")
        assert (ran.exit_code, ran.stdout, ran.stderr) == (0, "", "")
        assert (here / "quiet-pki" / "manifest.json").is_file()


class TestStdin:
    def test_cert_show_reads_stdin(self, here: Path, pki: TestPKI) -> None:
        """`-` reads the certificate from standard input (PEM)."""
        ran = run("cert", "show", "-", "--json", input=pki.leaf("ssp").chain_pem)
        assert ran.exit_code == 0, str(ran)
        shown = json.loads(ran.stdout)["certificates"]
        assert [c["source"] for c in shown] == ["<stdin>", "<stdin>"]

    def test_cert_check_reads_der_from_stdin(self, here: Path, pki: TestPKI) -> None:
        """`-` takes DER too; the leaf is checked against the trust and CRL given."""
        der = pki.leaf("ssp").certificate.public_bytes(serialization.Encoding.DER)
        ran = run(*CHECK, "-", "--chain", "pki/ca/sub-ca.pem", input=der)
        assert ran.exit_code == 0, str(ran)
        assert "(<stdin>)" in ran.stdout

    def test_trust_from_stdin(self, here: Path, pki: TestPKI) -> None:
        """--trust - reads the CA bundle from standard input."""
        ran = run("cert", "check", "pki/certs/ssp.pem", "--trust", "-", "--crl",
                  "pki/crl/crl-set.pem", "-q", input=pki.trust_store().to_pem())  # fmt: skip
        assert ran.exit_code == 0, str(ran)

    def test_stdin_is_bounded(self, here: Path) -> None:
        """More than the 10 MB input limit on stdin is refused after reading just past it."""
        ran = run("cert", "show", "-", input=b"A" * (10 * 1024 * 1024 + 2))
        assert ran.exit_code == 2
        assert ran.error_lines == ["Error: <stdin>: more than the 10485760 byte limit [input]"]


class TestAliases:
    def test_old_names_work_but_are_not_shown(self, here: Path) -> None:
        """--trust-bundle (cert check, tls config) still works; help shows only --trust."""
        ran = run("cert", "check", "pki/certs/ssp.pem", "--trust-bundle",
                  "pki/ca/trust-bundle.pem", "--crl", "pki/crl/crl-set.pem", "-q")  # fmt: skip
        assert ran.exit_code == 0, str(ran)
        for path in (("cert", "check"), ("tls", "config"), ("gate", "serve"), ("tls", "scan")):
            shown = run(*path, "--help").stdout
            assert "--trust " in shown or "--trust\n" in shown or "--trust FILE" in shown, path
            assert "--trust-bundle" not in shown, path

    def test_gate_serve_ssp_fqdn_alias(self) -> None:
        """gate serve: --fqdn is the name, --ssp-fqdn still works and is hidden."""
        shown = run("gate", "serve", "--help").stdout
        assert "--fqdn" in shown
        assert "--ssp-fqdn" not in shown
        # The old spelling still parses (the failure is the missing ASID, not the option).
        ran = run("gate", "serve", "--env", "int", "--ssp-fqdn", "x.nhs.uk")
        assert ran.exit_code == 2
        assert "ASID" in ran.stderr

    def test_error_names_the_current_spelling(self, here: Path) -> None:
        """A bad value given with the old spelling is reported under the new name."""
        ran = run("gate", "serve", "--ssp-fqdn", "bad fqdn!!")
        assert "'--fqdn'" in ran.stderr
        assert "--ssp-fqdn" not in ran.stderr


def test_subprocess_entry_point(tmp_path: Path) -> None:
    """The installed entry point: JSON error on stdout, nothing on stderr, exit 2; and
    --debug after the command shows a traceback on stderr."""
    command = [sys.executable, "-m", "spinepki_cli", "cert", "show", "missing.pem"]
    proc = subprocess.run(
        [*command, "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr == ""
    assert json.loads(proc.stdout)["error"]["code"] == "input.certificate"
    debug = subprocess.run(
        [*command, "--debug"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    assert "CertificateLoadError" in debug.stderr


class TestHelpersForCommands:
    """What _common offers commands written before the group mapped errors (kept working)."""

    def test_fail_and_library_errors(self) -> None:
        """fail() is the one style with exit 2 (or 1); library_errors lets errors through."""
        from spinepki_cli._common import CommandError, classify, fail, library_errors

        from spinepki.errors import TestPKIError

        with pytest.raises(CommandError) as usage:
            fail("bad thing")
        assert classify(usage.value) == ("usage", "bad thing", 2)
        with pytest.raises(CommandError) as invalid:
            fail("checked: invalid", 1, error_code="check")
        assert classify(invalid.value) == ("check", "checked: invalid", 1)
        with pytest.raises(TestPKIError), library_errors(debug=False):
            raise TestPKIError("gone", source="pki")

    def test_parse_time(self) -> None:
        """parse_time: ISO 8601, naive is UTC, None stays None, garbage is a usage error."""
        import datetime as dt

        from spinepki_cli._common import parse_time

        assert parse_time(None) is None
        assert parse_time("2024-03-01T12:00") == dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)
        with pytest.raises(click.BadParameter):
            parse_time("yesterday")

    def test_an_os_error_is_one_line(self) -> None:
        """classify: an OSError from anywhere is one `io` line naming the file."""
        from spinepki_cli._common import classify

        err = PermissionError(13, "Permission denied", "/srv/x")
        assert classify(err) == ("io", "/srv/x: Permission denied", 2)
        assert classify(ValueError("a bug")) is None  # keeps its traceback
