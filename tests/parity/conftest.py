"""The parity matrix: every shape started once, every caller played once, for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spinepki.demo._demo import DemoEnvironment, demo_environment
from spinepki.demo._parity import ParityMatrix, Shape

_PLAYED: list[ParityMatrix] = []


@pytest.fixture(scope="session")
def parity_env() -> Iterator[DemoEnvironment]:
    """Every shape on 127.0.0.1, sharing one RSA test PKI and one CRL/OCSP responder."""
    pytest.importorskip("anycorn")
    pytest.importorskip("gunicorn")
    missing = [s.value for s in Shape if not s.available]
    if missing:
        pytest.skip(
            f"servers for {', '.join(missing)} are not installed "
            "(`make system-deps` installs nginx, apache2 and haproxy; run it as root)"
        )
    with demo_environment(shapes=list(Shape)) as env:
        yield env


@pytest.fixture(scope="session")
def matrix(parity_env: DemoEnvironment) -> ParityMatrix:
    """Every default caller against every shape, played once."""
    played = parity_env.play_matrix()
    _PLAYED.append(played)
    return played


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the matrix at the end of the run (callers as rows, shapes as columns)."""
    for played in _PLAYED:
        terminalreporter.section("parity matrix: the same policy in every deployment shape")
        terminalreporter.write_line(played.table())
