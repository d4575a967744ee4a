"""Shared fixtures. The test-PKI fixtures (spine_pki, spine_pki_rsa, spine_server_context,
spine_client_context) come from spinepki's own pytest plugin (spinepki.testpki.pytest_plugin).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import settings

# `make test` runs a short, deterministic slice of every property test (the same examples
# on every run and machine); `make fuzz` runs long randomised campaigns.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile("ci")


#: Suites that `make test` runs on the default interpreter only (they are long, and what
#: they measure - load, fault injection, fuzz campaigns, doc pages, the real servers of
#: the parity matrix - does not vary by interpreter); tools/other_pythons.py runs
#: everything else on 3.12 and 3.13.
_SLOW_PATHS = ("resilience/", "securitytest/", "fuzz/", "test_docs.py", "parity/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the long suites ``slow`` (see ``_SLOW_PATHS``)."""
    root = Path(__file__).parent
    for item in items:
        relative = item.path.relative_to(root).as_posix()
        if relative.startswith(_SLOW_PATHS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A CliRunner whose working directory is a fresh temporary directory."""
    monkeypatch.chdir(tmp_path)
    return CliRunner()
