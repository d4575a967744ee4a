"""The pytest plugin cannot break a user's test run: it loads in any project, under -W error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

STRICT_CONFIG = """\
[tool.pytest.ini_options]
filterwarnings = ["error"]
addopts = ["-p", "no:cacheprovider"]
"""


def _user_project(tmp_path: Path, test_source: str) -> Path:
    project = tmp_path / "user-project"
    project.mkdir()
    (project / "pyproject.toml").write_text(STRICT_CONFIG)
    (project / "test_user.py").write_text(textwrap.dedent(test_source))
    return project


def _pytest(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--trace-config", "-q"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_a_plain_user_project_passes_with_warnings_as_errors(tmp_path: Path) -> None:
    """A project that never uses spinepki still runs green with spinepki's plugin loaded."""
    project = _user_project(tmp_path, "def test_plain():\n    assert 1 + 1 == 2\n")
    run = _pytest(project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "spinepki_pytest" in run.stdout  # the plugin really was loaded
    assert "1 passed" in run.stdout


@pytest.mark.slow
def test_a_user_project_can_use_the_fixtures_with_warnings_as_errors(tmp_path: Path) -> None:
    """The fixtures work under -W error too: the library's own imports do not warn."""
    project = _user_project(
        tmp_path,
        """
        def test_ssp_certificate(spine_pki):
            assert spine_pki.leaf("ssp").fqdn == "msg.dev.spine2.ncrs.nhs.uk"
        """,
    )
    run = _pytest(project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_importing_the_plugin_imports_nothing_of_the_library() -> None:
    """Loading the entry-point module imports pytest only: spinepki comes when a fixture runs."""
    probe = (
        "import sys, spinepki_pytest;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('spinepki', 'cryptography')))"
    )
    run = subprocess.run(
        [sys.executable, "-W", "error", "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert run.stdout.strip() == "[]", run.stdout
    assert run.stderr == ""


def test_every_package_imports_silently_under_warnings_as_errors() -> None:
    """No deprecated API at import: the library, the plugin and the CLI import with -W error."""
    run = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-c",
            "import spinepki, spinepki.testpki.pytest_plugin, spinepki_cli.main, spinepki_pytest",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
