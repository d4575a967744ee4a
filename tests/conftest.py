"""Shared fixtures. The test-PKI fixtures (spine_pki, spine_pki_rsa, spine_server_context,
spine_client_context) come from spinepki's own pytest plugin (``spinepki_pytest``); the two
PKIs are wrapped here so the run fails if a test changes them (``tests._helpers.shared``).
Tests that need a standard PKI take these; a test that issues or revokes takes a
``tests._helpers.fresh`` copy, and one that needs another shape builds its own.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import settings

from spinepki.testpki import TestPKI
from tests._helpers import shared

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


@pytest.fixture(scope="session")
def spine_pki(spine_pki: TestPKI) -> Iterator[TestPKI]:
    """The plugin's session PKI, which no test may change (see ``tests._helpers.shared``)."""
    with shared(spine_pki, "spine_pki") as pki:
        yield pki


@pytest.fixture(scope="session")
def spine_pki_rsa(spine_pki_rsa: TestPKI) -> Iterator[TestPKI]:
    """The plugin's RSA session PKI, which no test may change."""
    with shared(spine_pki_rsa, "spine_pki_rsa") as pki:
        yield pki


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A CliRunner whose working directory is a fresh temporary directory."""
    monkeypatch.chdir(tmp_path)
    return CliRunner()


@pytest.fixture
def without_anycorn(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the ``provider`` extra (anycorn) were not installed."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a, **k: None if name == "anycorn" else real(name, *a, **k),
    )
