"""The public API: __all__ matches what is exported, and the library never imports click."""

from __future__ import annotations

import subprocess
import sys

import spinepki


def test_all_is_sorted_and_complete() -> None:
    """__all__ lists exactly the public names of the package, sorted."""
    public = {
        name
        for name in dir(spinepki)
        if not name.startswith("_")
        and name != "annotations"  # the __future__ import, not an export
        and not isinstance(getattr(spinepki, name), type(spinepki))
    }
    assert set(spinepki.__all__) - {"__version__"} == public

    # isort-style order (as ruff's RUF022): CONSTANTS, then Classes, then functions.
    def key(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert spinepki.__all__ == sorted(spinepki.__all__, key=key)


def test_every_name_in_all_resolves() -> None:
    """No stale names in __all__."""
    for name in spinepki.__all__:
        assert getattr(spinepki, name) is not None


def test_library_does_not_import_click() -> None:
    """Importing spinepki (and its public submodules) never loads click."""
    code = (
        "import sys, spinepki, spinepki.testpki, spinepki.demo;"
        "bad = [m for m in sys.modules if m == 'click' or m.startswith('click.')];"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_python_dash_m_runs_the_cli() -> None:
    """`python -m spinepki_cli --version` works (packaging of the CLI)."""
    proc = subprocess.run(
        [sys.executable, "-m", "spinepki_cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert spinepki.__version__ in proc.stdout
