"""pytest fixtures for the test PKI's CRL/OCSP/AIA responder.

Register with ``pytest_plugins = ["spinepki.testpki.pytest_responder"]`` (the spinepki
pytest plugin does), or import the fixtures into a ``conftest.py``.

Fixtures:
    spinepki_responder: a running :class:`~spinepki.testpki.responder.Responder` on
        127.0.0.1 with a fresh EC P-256 :class:`~spinepki.testpki.TestPKI` whose
        certificates point at it. Faults are cleared and the port released afterwards.
    spinepki_responder_pki: that responder's PKI.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spinepki.testpki._builder import KeyType, TestPKI
from spinepki.testpki.responder import Responder

__all__ = ["spinepki_responder", "spinepki_responder_pki"]


@pytest.fixture
def spinepki_responder() -> Iterator[Responder]:
    """A running responder serving a fresh EC P-256 test PKI that points at it."""
    with Responder.with_new_pki(key_type=KeyType.EC_P256) as responder:
        yield responder


@pytest.fixture
def spinepki_responder_pki(spinepki_responder: Responder) -> TestPKI:
    """The test PKI served by :func:`spinepki_responder`."""
    return spinepki_responder.pki
