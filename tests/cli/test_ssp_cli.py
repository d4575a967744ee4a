"""`spinepki ssp serve`, `spinepki env up` and `spinepki demo --via-ssp`."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from spinepki_cli import ssp as ssp_cmd
from spinepki_cli.main import cli

from spinepki.demo._environment import default_directory, run_environment
from spinepki.ssp import load_directory
from spinepki.testpki import KeyType
from tests.serverconfig._helpers import free_port, wait_for_port
from tests.ssp._helpers import Bench, Consumer

pytest.importorskip("anycorn")
pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with run_environment(tmp_path_factory.mktemp("cli-env"), key_type=KeyType.EC_P256) as env:
        yield env


def test_ssp_serve_check(runner: CliRunner, environment) -> None:  # type: ignore[no-untyped-def]
    """--check loads the configuration, the credentials and binds, then exits 0."""
    config = environment.folder / "env.toml"
    result = runner.invoke(cli, ["ssp", "serve", "--config", str(config), "--check"])
    assert result.exit_code == 0, result.output
    assert "configuration OK" in result.output


def test_ssp_serve_bad_config_names_the_key(runner: CliRunner, environment) -> None:  # type: ignore[no-untyped-def]
    """A configuration mistake is one line naming the key, exit 2."""
    text = (environment.folder / "env.toml").read_text().replace('ods = "A1001"', 'ods = "A 1"')
    Path("bad.toml").write_text(text)
    result = runner.invoke(cli, ["ssp", "serve", "--config", "bad.toml"])
    assert result.exit_code == 2
    assert "directory.consumers[0].ods" in result.output
    assert "[config.ssp]" in result.output


def test_ssp_serve_serves_until_stopped(runner: CliRunner, environment, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`ssp serve` forwards a consumer's request, audits both hops on stderr, stops."""
    port = free_port()
    config = environment.folder / "served.toml"
    text = (environment.folder / "env.toml").read_text()
    config.write_text(text.replace("port = 0", f"port = {port}", 1))
    outcome: dict[str, object] = {}

    def run() -> None:
        outcome["result"] = runner.invoke(cli, ["ssp", "serve", "--config", str(config)])

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_for_port(port)
        root = environment.directory.providers[0].service_roots
        service_root = next(iter(root.values()))[0]
        consumer = Consumer(Bench(environment.pki, environment.folder), ("127.0.0.1", port))
        response = consumer.get(service_root + "/metadata", audience=service_root)
        consumer.close()
    finally:
        ssp_cmd.SSP_STOP.set()
        thread.join(timeout=30)
    result = outcome["result"]
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert response.status == 200
    assert f"spinepki SSP simulator on https://msg.dev.spine2.ncrs.nhs.uk:{port}" in result.output  # type: ignore[attr-defined]
    assert '"hop":"provider"' in result.output  # type: ignore[attr-defined]
    assert result.output.rstrip().endswith("stopped")  # type: ignore[attr-defined]


def test_env_up_example_config_is_a_loadable_directory(runner: CliRunner) -> None:
    """--example-config prints the built-in directory as a --config file."""
    result = runner.invoke(cli, ["env", "up", "--example-config"])
    assert result.exit_code == 0, result.output
    Path("example.toml").write_text(result.output)
    assert load_directory("example.toml").providers == default_directory().providers


def test_env_up_json_then_stop(runner: CliRunner) -> None:
    """`env up --json` prints the environment as data, serves, and stops cleanly."""
    result = runner.invoke(
        cli, ["env", "up", "here", "--key-type", "ec-p256", "--json", "--seconds", "0.2"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ssp"]["url"].startswith("https://msg.dev.spine2.ncrs.nhs.uk:")
    assert summary["consumers"][0]["asid"] == "200000000359"
    assert Path("here/env.toml").exists()
    assert "Stopping the environment." in result.output


def test_env_up_with_config(runner: CliRunner) -> None:
    """--config reads a [directory]; an address in it is refused with the key named."""
    Path("dir.toml").write_text(
        runner.invoke(cli, ["env", "up", "--example-config"]).output.replace(
            'fqdn = "provider.spinepki.test.nhs.uk"',
            'fqdn = "provider.spinepki.test.nhs.uk"\naddress = "127.0.0.1:1"',
        )
    )
    result = runner.invoke(cli, ["env", "up", "x", "--config", "dir.toml"])
    assert result.exit_code == 2
    assert "directory.providers[0].address" in result.output


def test_env_up_refuses_a_folder_with_other_files(runner: CliRunner) -> None:
    Path("full").mkdir()
    Path("full/mine.txt").write_text("keep")
    result = runner.invoke(cli, ["env", "up", "full", "--key-type", "ec-p256"])
    assert result.exit_code == 2
    assert "not empty" in result.output
    assert Path("full/mine.txt").read_text() == "keep"


def test_env_up_interrupted_while_starting(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the servers start: what had started is stopped (its port closed),
    then the one interrupted line and exit 130, as for any interrupted command."""
    from spinepki_cli import env as env_cmd

    from tests.cli._helpers import run

    started: list[str] = []

    def note(message: str) -> None:
        started.append(message)
        if message.startswith("Reference provider"):
            raise KeyboardInterrupt

    monkeypatch.setattr(env_cmd, "note", note)
    ran = run("env", "up", "e", "--key-type", "ec-p256")
    assert ran.exit_code == 130, str(ran)
    assert ran.error_lines == ["Error: interrupted [interrupted]"]
    assert ran.stdout == ""
    port = int(started[-1].rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_env_up_process_stops_cleanly(tmp_path: Path, stop: signal.Signals) -> None:
    """A real `spinepki env up` process prints the URLs and curl commands, and Ctrl-C
    (or SIGTERM) stops every server: exit 0, the ports released."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spinepki_cli",
            "env",
            "up",
            str(tmp_path / "e"),
            "--key-type",
            "ec-p256",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out = _read_until(proc, "Ctrl-C stops everything.")
        os.kill(proc.pid, stop)
        proc.wait(timeout=30)
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == 0, err
    assert "SSP simulator        https://msg.dev.spine2.ncrs.nhs.uk:" in out
    assert "curl -sS -i" in out
    assert "Stopping the environment." in err
    port = int(out.split("listening on 127.0.0.1:", 1)[1].split(")", 1)[0])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 60) -> str:
    """stdout up to the line holding ``marker`` (read on a thread, so a hung process
    fails the test at the deadline instead of blocking it)."""
    assert proc.stdout is not None
    stdout = proc.stdout
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        with contextlib.suppress(ValueError, OSError):  # closed once the test is done
            for line in stdout:
                lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"no {marker!r} in: {''.join(seen)}")


def test_demo_via_ssp_plays_the_whole_path(runner: CliRunner) -> None:
    """`demo --via-ssp`: the direct callers and the callers through the SSP, N of N."""
    result = runner.invoke(cli, ["demo", "--key-type", "ec-p256", "--via-ssp", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["as_required"] == data["total"] == len(data["outcomes"])
    via = {o["caller"]: o for o in data["outcomes"] if o["provider"] == "via-ssp"}
    assert len([o for o in data["outcomes"] if o["provider"] == "via-ssp"]) == 11
    for name in (
        "via SSP: certificate not its ASID",
        "via SSP: unauthorised interaction",
        "via SSP: wrong service root (IP)",
        "via SSP: provider's cert revoked",
    ):
        assert name in via
    assert via["via SSP: provider's cert revoked"]["reached_provider"] is False
    assert data["ssp"].startswith("https://msg.dev.spine2.ncrs.nhs.uk:")


def test_demo_via_ssp_table(runner: CliRunner) -> None:
    """The table shows the SSP callers with their displays; the verdict counts them."""
    result = runner.invoke(cli, ["demo", "--key-type", "ec-p256", "--via-ssp"])
    assert result.exit_code == 0, result.output
    assert "41 of 41 behaved as the policy requires." in result.output
    assert "HTTP 403 FOT_CHECK_FAILED" in result.output
    assert (
        "FOT_CHECK_FAILED_MESSAGESENDER_200000000359_MESSAGERECEIVER_918999198740" in result.output
    )


def test_env_up_prints_what_a_consumer_needs(runner: CliRunner) -> None:
    """Without --json: the SSP URL, the ASIDs, certificate files, roots and curl lines."""
    result = runner.invoke(cli, ["env", "up", "e", "--key-type", "ec-p256", "--seconds", "0.1"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "SSP simulator        https://msg.dev.spine2.ncrs.nhs.uk:" in out
    assert "ASID 200000000359  ODS A1001  consumer.spinepki.test.nhs.uk" in out
    assert "may send    foundations, structured to 918999198738" in out
    assert "foundations  https://provider.spinepki.test.nhs.uk/A12345/STU3/1/gpconnect" in out
    assert out.count("\ncurl -sS -i ") == 3


def test_demo_via_ssp_with_several_shapes(runner: CliRunner) -> None:
    """With the parity matrix, the callers through the SSP get their own table after it,
    and the verdict counts both."""
    result = runner.invoke(
        cli,
        ["demo", "--key-type", "ec-p256", "--via-ssp", "--shape", "serve", "--shape", "middleware"],
    )
    assert result.exit_code == 0, result.output
    after = result.output.split("Through the SSP simulator, to the serve shape's provider:")[1]
    assert "via SSP: no sharing agreement" in after
    assert "71 of 71 cells and callers through the SSP behaved" in result.output


def test_demo_via_ssp_needs_the_serve_shape() -> None:
    """--via-ssp without the serve shape: one usage line, before anything is generated."""
    from tests.cli._helpers import run

    ran = run("demo", "--via-ssp", "--shape", "middleware", "--key-type", "ec-p256")
    assert ran.exit_code == 2
    assert ran.error_lines == [
        "Error: --via-ssp forwards to the serve shape's reference provider: "
        "add --shape serve [usage]"
    ]


def test_demo_via_ssp_keep_prints_the_ssp(runner: CliRunner) -> None:
    """--keep with --via-ssp lists the simulator among the running servers."""
    result = runner.invoke(
        cli, ["demo", "--key-type", "ec-p256", "--via-ssp", "--keep", "--keep-seconds", "0.1"]
    )
    assert result.exit_code == 0, result.output
    assert "SSP simulator          https://msg.dev.spine2.ncrs.nhs.uk:" in result.output
