"""`spinepki serve --config`: the reference provider from the shipped example config."""

from __future__ import annotations

import json
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from spinepki_cli.main import cli

from spinepki.testpki import KeyType, write_pki
from spinepki.testpki.responder import Responder

pytest.importorskip("anycorn")
pytestmark = pytest.mark.network

EXAMPLE = Path(__file__).parents[2] / "spinepki" / "provider" / "example.toml"


def _example_for(pki_dir: Path, ssp_fqdn: str) -> str:
    """The shipped example with its certificate, key and trust pointed at a test PKI."""
    text = EXAMPLE.read_text()
    replacements = {
        r'(?m)^certificate = ".*"$': f'certificate = "{pki_dir / "certs/provider.chain.pem"}"',
        r'(?m)^key = ".*"$': f'key = "{pki_dir / "certs/provider.key.pem"}"',
        r'(?m)^trust = ".*"$': f'trust_files = ["{pki_dir / "ca/trust-bundle.pem"}"]',
        r"(?m)^ssp_fqdns = \[.*\]$": f'ssp_fqdns = ["{ssp_fqdn}"]',
        r"(?m)^port = \d+$": "port = 0",
    }
    for pattern, value in replacements.items():
        text, count = re.subn(pattern, value, text)
        assert count == 1, pattern
    return text


@pytest.fixture(scope="module")
def served_pki(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("serve-pki")
    with Responder.with_new_pki(key_type=KeyType.EC_P256) as responder:
        write_pki(responder.pki, directory)
        config = directory / "provider.toml"
        config.write_text(_example_for(directory, responder.pki.ssp_fqdn))
        yield responder.pki, directory, config


def test_serve_answers_a_valid_ssp_request_over_tls(served_pki) -> None:  # type: ignore[no-untyped-def]
    """A real `spinepki serve` process, started from the shipped example configuration, serves
    the SSP's valid request with 200 and Cache-Control: no-store, audits it on stderr,
    and stops cleanly on SIGINT."""
    from tests.provider._helpers import Written, request

    pki, directory, config = served_pki
    proc = subprocess.Popen(
        [sys.executable, "-m", "spinepki_cli", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _first_line(proc, timeout=30)
        match = re.search(r"on https://127\.0\.0\.1:(\d+)", line)
        assert match, line
        response = request(Written(pki, directory), ("127.0.0.1", int(match.group(1))))
        assert response.status == 200
        assert response.headers["cache-control"] == "no-store"
        assert response.json()["resourceType"] == "CapabilityStatement"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped" in out
    audit = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    assert any(event.get("status") == 200 for event in audit), err


def test_serve_in_process_stops_on_the_event(served_pki, runner: CliRunner) -> None:  # type: ignore[no-untyped-def]
    """In process: serve runs until SERVE_STOP is set, then exits 0."""
    import spinepki_cli.serve as serve_mod

    _, _, config = served_pki
    results: list[object] = []
    thread = threading.Thread(
        target=lambda: results.append(runner.invoke(cli, ["serve", "--config", str(config)]))
    )
    thread.start()
    deadline = time.monotonic() + 20
    while thread.is_alive() and time.monotonic() < deadline:
        # Set repeatedly: the command clears the event when it starts serving.
        serve_mod.SERVE_STOP.set()
        thread.join(timeout=0.1)
    assert not thread.is_alive()
    result = results[0]
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "spinepki reference provider on https://127.0.0.1:" in result.output  # type: ignore[attr-defined]


def test_check(served_pki, runner: CliRunner) -> None:  # type: ignore[no-untyped-def]
    """--check loads the credentials and exits 0 without serving."""
    _, _, config = served_pki
    result = runner.invoke(cli, ["serve", "--config", str(config), "--check"])
    assert result.exit_code == 0, result.output
    assert "configuration OK" in result.output


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (("port = 0", "port = 99999"), "provider.port"),
        (('client_auth = "require"', 'client_auth = "maybe"'), "provider.client_auth"),
        (("max_connections = 512", "max_conections = 512"), "limits.max_conections"),
        (('revocation = "hard-fail"', 'revocation = "disabled"'), "validation.revocation"),
        (("[validation]", "[validation]\ncolour = 1"), "validation.colour"),
    ],
)
def test_config_errors_exit_2_with_one_line(
    served_pki, runner: CliRunner, edit: tuple[str, str], named: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A bad key exits 2 with one line that names it."""
    _, _, config = served_pki
    bad = tmp_path / "bad.toml"
    bad.write_text(config.read_text().replace(*edit, 1))
    result = runner.invoke(cli, ["serve", "--config", str(bad)])
    assert result.exit_code == 2
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"Error: {named}:")


def test_missing_credentials_exit_2(runner: CliRunner) -> None:
    """The example as shipped points at files that do not exist here: exit 2, one line."""
    result = runner.invoke(cli, ["serve", "--config", str(EXAMPLE), "--check"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: ")
    assert len(result.output.strip().splitlines()) == 1


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line, waiting at most ``timeout`` seconds."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not selector.select(timeout):
            raise AssertionError("serve printed nothing in time")
        return proc.stdout.readline()
    finally:
        selector.close()


def test_example_config_is_printed_and_loads(runner: CliRunner, tmp_path: Path) -> None:
    """`serve --example-config` prints the shipped example (installed with the package), and
    the printed text loads as the same configuration."""
    from spinepki.provider import example_config, load_config

    result = runner.invoke(cli, ["serve", "--example-config"])
    assert result.exit_code == 0, result.output
    assert result.output == example_config() == EXAMPLE.read_text()
    saved = tmp_path / "provider.toml"
    saved.write_text(result.output)
    loaded, shipped = load_config(saved), load_config(EXAMPLE)
    assert loaded.asid == shipped.asid
    assert loaded.limits == shipped.limits


def test_serve_without_config_says_how_to_get_one(runner: CliRunner) -> None:
    """`serve` with neither option is a usage error (exit 2) naming --example-config."""
    result = runner.invoke(cli, ["serve"])
    assert result.exit_code == 2
    assert "--example-config" in result.output


def test_help_texts_point_at_what_an_installed_user_has(runner: CliRunner) -> None:
    """No command's help sends the user to a docs/ file, which installed packages lack."""
    from click import Group

    def walk(group: Group, prefix: list[str]) -> list[list[str]]:
        paths = [prefix]
        for name, command in group.commands.items():
            if isinstance(command, Group):
                paths += walk(command, [*prefix, name])
            else:
                paths.append([*prefix, name])
        return paths

    for path in walk(cli, []):
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "docs/" not in result.output, (path, result.output)
