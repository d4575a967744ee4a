"""Fixtures: one EC test PKI served by the responder, written to disk, and a provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spinepki.provider import ProviderServer, run_provider
from spinepki.testpki import KeyType, write_pki
from spinepki.testpki.responder import Responder
from tests._helpers import shared
from tests.provider._helpers import Written

pytest.importorskip("anycorn")


@pytest.fixture(scope="session")
def written(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Written]:
    """An EC P-256 test PKI on disk whose CRL/OCSP URLs are answered by a live responder."""
    directory: Path = tmp_path_factory.mktemp("provider-pki")
    with Responder.with_new_pki(key_type=KeyType.EC_P256) as responder:
        write_pki(responder.pki, directory)
        with shared(responder.pki, "provider written.pki"):
            yield Written(responder.pki, directory)


@pytest.fixture(scope="module")
def provider(written: Written) -> Iterator[ProviderServer]:
    """A reference provider in require mode (CRL revocation) with default limits."""
    with run_provider(written.config()) as server:
        yield server
