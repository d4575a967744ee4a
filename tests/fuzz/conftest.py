"""Collect the ``fuzz_*.py`` target modules and report how many inputs each test ran."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fuzz._helpers import COUNTS, FAILURES, FUZZ_MODE, FUZZ_SECONDS

#: Where ``make fuzz`` reads the hypothesis counts from (python -m tests.fuzz).
REPORT_ENV = "SPINEPKI_FUZZ_REPORT"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Fuzz targets are named ``fuzz_<target>.py`` (they are also atheris entry points)."""
    # A module named on the command line is already collected by pytest itself.
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("fuzz_")
        and not parent.session.isinitpath(file_path)
    ):
        module: pytest.Module = pytest.Module.from_parent(parent, path=file_path)
        return module
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per fuzz test: inputs run (under ``make fuzz``; quiet under ``make test``)."""
    if not FUZZ_MODE:
        return
    terminalreporter.section(f"fuzz inputs (hypothesis, {FUZZ_SECONDS:g} s per target)")
    for name, count in sorted(COUNTS.items()):
        terminalreporter.write_line(f"{count:>10}  {name}")
    report = os.environ.get(REPORT_ENV)
    if report:
        Path(report).parent.mkdir(parents=True, exist_ok=True)
        Path(report).write_text(
            json.dumps({"counts": dict(COUNTS), "failures": FAILURES}, indent=2) + "\n"
        )
