"""The server helpers' failure paths: what a missing binary or a dead child reports."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spinepki.demo._edges import find_server, free_port, run_process, stop_process, wait_for_port
from spinepki.demo._shapes import Shape
from spinepki.errors import ConfigurationError


def test_missing_server_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that is not installed is a ConfigurationError naming the Debian package."""
    monkeypatch.setattr("spinepki.demo._edges._SBIN", ())
    monkeypatch.setattr("shutil.which", lambda _name: None)
    with pytest.raises(ConfigurationError, match=r"apt-get install haproxy"):
        find_server("haproxy")

    assert not Shape.HAPROXY.available
    assert Shape.MIDDLEWARE.available  # needs no server binary


def test_nothing_listens_is_a_timeout() -> None:
    """Polling a port nobody opens ends at the deadline."""
    with pytest.raises(TimeoutError, match="nothing listens"):
        wait_for_port(free_port(), deadline_s=0.1)


def test_child_that_exits_names_its_log(tmp_path: Path) -> None:
    """A child that exits before listening: RuntimeError with the end of its log."""
    argv = [sys.executable, "-c", "print('bind failed'); raise SystemExit(3)"]
    with (
        pytest.raises(RuntimeError, match=r"(?s)exited with 3.*bind failed"),
        run_process(argv, ports=[free_port()], log=tmp_path / "log"),
    ):
        pass


def test_stop_kills_a_child_that_ignores_the_signal(tmp_path: Path) -> None:
    """A child that ignores SIGTERM is killed after the timeout."""
    ready = tmp_path / "ready"
    code = (
        "import pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 15
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        stop_process(proc, signal.SIGTERM, timeout=0.2)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
