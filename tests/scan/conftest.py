"""Fixtures for the scanner tests: one test PKI, compliant and misconfigured servers."""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spinepki.policy import ClientAuth
from spinepki.testpki import TestPKI
from spinepki.tls import server_context
from tests.scan.servers import ScanTestServer, always, gate_responder, http_response


@pytest.fixture(scope="session")
def scan_pki(spine_pki_rsa: TestPKI) -> TestPKI:
    """The session RSA PKI (what ``TestPKI.create()`` gives), which scans only read."""
    return spine_pki_rsa


def leaf_files(pki: TestPKI, name: str, directory: Path) -> tuple[Path, Path]:
    """Leaf ``name``'s certificate chain and key as files (what --cert/--key take)."""
    leaf = pki.leaf(name)
    (directory / f"{name}.pem").write_bytes(leaf.chain_pem)
    (directory / f"{name}.key").write_bytes(leaf.key_pem)
    return directory / f"{name}.pem", directory / f"{name}.key"


@pytest.fixture(scope="session")
def ssp_files(scan_pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The SSP's certificate chain and key as files (what --cert/--key take)."""
    d = tmp_path_factory.mktemp("ssp")
    (d / "trust.pem").write_bytes(scan_pki.root.cert_pem)
    return leaf_files(scan_pki, "ssp", d)


@pytest.fixture(scope="session")
def provider_fqdn(scan_pki: TestPKI) -> str:
    fqdn = scan_pki.leaf("provider").fqdn
    assert fqdn is not None
    return fqdn


def compliant_context(pki: TestPKI, mode: ClientAuth = ClientAuth.REQUIRE) -> ssl.SSLContext:
    """The provider's ``server_context`` in ``mode``."""
    p = pki.leaf("provider")
    return server_context(p.chain_pem, p.key_pem, pki.trust_store(), client_auth=mode)


@pytest.fixture(scope="module")
def require_server(scan_pki: TestPKI) -> Iterator[ScanTestServer]:
    """server_context in require mode, answering through the gate."""
    with ScanTestServer(compliant_context(scan_pki, ClientAuth.REQUIRE), gate_responder()) as srv:
        yield srv


@pytest.fixture(scope="module")
def http496_server(scan_pki: TestPKI) -> Iterator[ScanTestServer]:
    """server_context in http-496 mode, the gate answering 496 without a certificate."""
    with ScanTestServer(compliant_context(scan_pki, ClientAuth.HTTP_496), gate_responder()) as srv:
        yield srv


def misconfigured_context(pki: TestPKI, tmp: Path) -> ssl.SSLContext:
    """TLS 1.0 on (with ECDHE-RSA-AES256-SHA), AES128-SHA256 (CBC, no forward secrecy)
    allowed, client order, no client certificates."""
    p = pki.leaf("provider")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("ECDHE-RSA-AES256-GCM-SHA384:AES128-SHA256:ECDHE-RSA-AES256-SHA:@SECLEVEL=0")
    # Python sets OP_CIPHER_SERVER_PREFERENCE on server contexts; clear it: client order.
    ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    (tmp / "p.pem").write_bytes(p.chain_pem)
    (tmp / "p.key").write_bytes(p.key_pem)
    ctx.load_cert_chain(tmp / "p.pem", tmp / "p.key")
    return ctx


@pytest.fixture(scope="module")
def misconfigured_server(
    scan_pki: TestPKI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScanTestServer]:
    """Serves anything to anyone, without Cache-Control, and redirects plaintext."""
    ctx = misconfigured_context(scan_pki, tmp_path_factory.mktemp("bad"))
    redirect = http_response(
        301, cache_control=None, extra="Location: https://provider.example/\r\n"
    )
    with ScanTestServer(ctx, always(200), plaintext_answer=redirect) as srv:
        yield srv


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening (bound, then closed)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: Any = s.getsockname()[1]
    return int(port)
