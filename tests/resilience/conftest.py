"""Fixtures: one EC test PKI on disk, served by a live responder whose clock the test owns."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spinepki.testpki import KeyType, write_pki
from spinepki.testpki.responder import Responder
from tests.resilience._helpers import Clock, Env

pytest.importorskip("anycorn")

#: Where the measured numbers go when set (docs/resilience.md is written from them).
REPORT_ENV = "SPINEPKI_RESILIENCE_REPORT"


@pytest.fixture(scope="session")
def responder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Responder]:
    """A live CRL/OCSP responder serving a fresh EC P-256 test PKI."""
    with Responder.with_new_pki(key_type=KeyType.EC_P256) as live:
        yield live


@pytest.fixture(scope="session")
def env(responder: Responder, tmp_path_factory: pytest.TempPathFactory) -> Env:
    """The responder's PKI written to disk (certificates, keys, trust bundle)."""
    directory: Path = tmp_path_factory.mktemp("resilience-pki")
    write_pki(responder.pki, directory)
    return Env(responder.pki, directory)


@pytest.fixture
def clock(responder: Responder) -> Iterator[Clock]:
    """The validation time, shared by the gate and the responder; starts at the real now
    (OCSP producedAt is real time) and only moves when the test moves it."""
    now = Clock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    responder.clock = now
    responder.clear_faults()
    try:
        yield now
    finally:
        responder.clear_faults()
        responder.clock = None


@pytest.fixture(scope="session")
def report() -> Iterator[dict[str, Any]]:
    """Measured numbers, written as JSON to $SPINEPKI_RESILIENCE_REPORT when it is set."""
    numbers: dict[str, Any] = {}
    yield numbers
    target = os.environ.get(REPORT_ENV)
    if target:
        Path(target).write_text(json.dumps(numbers, indent=2, sort_keys=True, default=str))
