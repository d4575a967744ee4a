"""Fixtures: one EC test PKI served by the responder, a reference provider, a weak server."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from spinepki.demo._callers import DEMO_ASID, DEMO_ROOT
from spinepki.gate import RootKind
from spinepki.provider import ProviderConfig, ProviderLimits, ProviderServer, run_provider
from spinepki.revocation import RevocationMode
from spinepki.securitytest import ProbeLimits, SecurityReport, run_security_test
from spinepki.testpki import KeyType, TestPKI, write_pki
from spinepki.testpki.responder import Responder
from tests._helpers import shared
from tests.securitytest.servers import RawTLSServer, weak_handler

pytest.importorskip("anycorn")


@dataclass(frozen=True)
class Written:
    pki: TestPKI
    directory: Path

    @property
    def cert(self) -> Path:
        return self.directory / "ssp.pem"

    @property
    def key(self) -> Path:
        return self.directory / "ssp.key"

    @property
    def trust(self) -> Path:
        return self.directory / "ca/trust-bundle.pem"

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(
            self.directory / "certs/provider.chain.pem", self.directory / "certs/provider.key.pem"
        )
        return ctx


@pytest.fixture(scope="session")
def written(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Written]:
    """An EC P-256 test PKI on disk whose CRLs are served by a live responder."""
    directory: Path = tmp_path_factory.mktemp("securitytest-pki")
    with Responder.with_new_pki(key_type=KeyType.EC_P256) as responder:
        write_pki(responder.pki, directory)
        ssp = responder.pki.leaf("ssp")
        (directory / "ssp.pem").write_bytes(ssp.chain_pem)
        (directory / "ssp.key").write_bytes(ssp.key_pem)
        with shared(responder.pki, "securitytest written.pki"):
            yield Written(responder.pki, directory)


@pytest.fixture(scope="module")
def provider(written: Written) -> Iterator[ProviderServer]:
    """The reference provider (require mode, CRL revocation) with short deadlines."""
    config = ProviderConfig(
        asid=DEMO_ASID,
        service_roots={RootKind.FOUNDATIONS: (DEMO_ROOT,)},
        certificate=written.directory / "certs/provider.chain.pem",
        key=written.directory / "certs/provider.key.pem",
        ssp_fqdns=(written.pki.ssp_fqdn,),
        trust_files=(written.trust,),
        revocation=RevocationMode.CRL_ONLY,
        port=0,
        limits=ProviderLimits(handshake_timeout=1.0, header_timeout=1.0),
    )
    with run_provider(config) as server:
        yield server


@pytest.fixture
def provider_url(provider: ProviderServer) -> str:
    return provider.url + DEMO_ROOT


@pytest.fixture(scope="module")
def weak(written: Written) -> Iterator[RawTLSServer]:
    """A sequential server that does everything wrong."""
    with RawTLSServer(written.server_context(), weak_handler, sequential=True) as server:
        yield server


@pytest.fixture(scope="module")
def weak_report(written: Written, weak: RawTLSServer) -> SecurityReport:
    """The whole suite against the weak server (each test module runs it once)."""
    return run_security_test(
        weak.url + "/A12345/STU3/1/gpconnect/",
        client_cert=written.cert,
        client_key=written.key,
        timeout=2.0,
        limits=ProbeLimits(
            max_connections=4, max_seconds=1.5, trickle_interval=0.2, response_seconds=0.5
        ),
    )
