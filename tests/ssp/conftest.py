"""Fixtures: one EC test PKI, served by the responder, with the extra certificates the
simulator's tests need (a revoked consumer, providers with bad server certificates)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from spinepki.testpki import KeyType, write_pki
from spinepki.testpki.responder import Responder
from tests.ssp._helpers import Bench

pytest.importorskip("anycorn")

CONSUMER_B_FQDN = "consumer-b.spinepki.test.nhs.uk"


@pytest.fixture(scope="session")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """The test PKI on disk; its CRL and OCSP answered by a live responder."""
    folder: Path = tmp_path_factory.mktemp("ssp-pki")
    with Responder.with_new_pki(key_type=KeyType.EC_P256) as responder:
        pki = responder.pki
        ref = pki.reference_time
        consumer, provider = pki.consumer_fqdn, pki.provider_fqdn
        pki.issue("consumer-revoked", fqdn=consumer, purpose="consumer FQDN, revoked")
        pki.revoke("consumer-revoked")
        pki.issue("consumer-b", fqdn=CONSUMER_B_FQDN, purpose="the second consumer")
        pki.issue("provider-revoked", fqdn=provider, purpose="provider FQDN, revoked")
        pki.revoke("provider-revoked")
        pki.issue(
            "provider-expired",
            fqdn=provider,
            not_before=ref - dt.timedelta(days=400),
            not_after=ref - dt.timedelta(days=35),
            purpose="provider FQDN, expired",
        )
        pki.issue(
            "provider-foreign", fqdn=provider, issuer="foreign-sub-ca", purpose="untrusted CA"
        )
        write_pki(pki, folder)
        yield Bench(pki, folder)
