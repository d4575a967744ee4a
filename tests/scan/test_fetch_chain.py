"""fetch_chain: the chain a live endpoint presents, read without a client certificate."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from spinepki.errors import ConfigurationError
from spinepki.scan import MAX_PRESENTED_CERTIFICATES, ScanError, fetch_chain, parse_https_url
from spinepki.testpki import TestPKI
from tests.scan.servers import ScanTestServer, always

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def tls13_server(
    scan_pki: TestPKI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScanTestServer]:
    """A server that speaks TLS 1.3 only (its Certificate message is encrypted)."""
    tmp: Path = tmp_path_factory.mktemp("tls13")
    p = scan_pki.leaf("provider")
    (tmp / "p.pem").write_bytes(p.chain_pem)
    (tmp / "p.key").write_bytes(p.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(tmp / "p.pem", tmp / "p.key")
    with ScanTestServer(ctx, always(200)) as srv:
        yield srv


def _port(server: ScanTestServer) -> int:
    return int(server.address[1])


def test_mutual_tls_server_shows_its_chain(
    require_server: ScanTestServer, scan_pki: TestPKI
) -> None:
    """A provider that requires a client certificate still shows leaf and Sub CA."""
    chain = fetch_chain("127.0.0.1", _port(require_server), timeout=5)
    provider = scan_pki.leaf("provider")
    assert list(chain) == [provider.certificate, scan_pki.sub_ca.certificate]


def test_tls13_only_server_shows_its_leaf(tls13_server: ScanTestServer, scan_pki: TestPKI) -> None:
    """Without TLS 1.2 the leaf comes from a TLS 1.3 handshake."""
    chain = fetch_chain("127.0.0.1", _port(tls13_server), timeout=5)
    assert chain[0] == scan_pki.leaf("provider").certificate


def test_refused_port(closed_port: int) -> None:
    """Nothing listening: ScanError (scan.unreachable)."""
    with pytest.raises(ScanError) as info:
        fetch_chain("127.0.0.1", closed_port, timeout=2)
    assert info.value.code == "scan.unreachable"


def test_a_server_that_never_finishes_a_handshake(
    require_server: ScanTestServer, scan_pki: TestPKI
) -> None:
    """A server with no certificate to send: ScanError; a good server is still read."""
    # A client context cannot serve a handshake: the hello gets an alert, no certificate.
    with (
        ScanTestServer(ssl.create_default_context(), always(200)) as broken,
        pytest.raises(ScanError, match="no certificate presented"),
    ):
        fetch_chain("127.0.0.1", _port(broken), timeout=2)
    chain = fetch_chain("127.0.0.1", _port(require_server), timeout=5)
    assert chain[0] == scan_pki.leaf("provider").certificate


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"port": 0}, "port"), ({"port": 70000}, "port"), ({"timeout": 0}, "timeout")],
)
def test_bad_arguments(kwargs: dict[str, float], message: str) -> None:
    """A port or timeout out of range: ConfigurationError before any connection."""
    args = {"port": 443, "timeout": 5.0, **kwargs}
    with pytest.raises(ConfigurationError, match=message):
        fetch_chain("127.0.0.1", int(args["port"]), timeout=args["timeout"])


class TestParseHttpsUrl:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("https://127.0.0.1:8443", ("127.0.0.1", 8443)),
            ("https://gp.example.nhs.uk", ("gp.example.nhs.uk", 443)),
            ("https://gp.example.nhs.uk/", ("gp.example.nhs.uk", 443)),
            ("HTTPS://[::1]:9443", ("::1", 9443)),
        ],
    )
    def test_host_and_port(self, url: str, expected: tuple[str, int]) -> None:
        """Host and port (443 by default)."""
        assert parse_https_url(url) == expected

    @pytest.mark.parametrize(
        "url",
        [
            "http://x.nhs.uk",
            "https://",
            "https://x.nhs.uk/metadata",
            "https://u:p@x.nhs.uk",
            "https://x.nhs.uk:0",
            "https://x.nhs.uk:99999",
            "https://x.nhs.uk/?a=1",
        ],
    )
    def test_refused(self, url: str) -> None:
        """Another scheme, a path, credentials, a query or a bad port: ConfigurationError."""
        with pytest.raises(ConfigurationError):
            parse_https_url(url)


@pytest.mark.parametrize("extra", [30, 1000])
def test_a_hostile_chain_is_bounded(
    scan_pki: TestPKI,
    tmp_path: Path,
    require_server: ScanTestServer,
    extra: int,
) -> None:
    """A chain of 31 or 1,001 certificates (100x Spine's 2): at most
    MAX_PRESENTED_CERTIFICATES decoded, or a ScanError once the reader's byte cap is
    reached; a normal server is still read afterwards."""
    p = scan_pki.leaf("provider")
    (tmp_path / "long.pem").write_bytes(p.cert_pem + scan_pki.sub_ca.cert_pem * extra)
    (tmp_path / "p.key").write_bytes(p.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "long.pem", tmp_path / "p.key")
    with ScanTestServer(ctx, always(200)) as hostile:
        if extra > 100:
            # Over the raw reader's 256 kB cap, and over OpenSSL's 100 kB certificate-list
            # limit on the TLS 1.3 handshake: refused, not read.
            with pytest.raises(ScanError, match="no certificate presented"):
                fetch_chain("127.0.0.1", _port(hostile), timeout=5)
        else:
            chain = fetch_chain("127.0.0.1", _port(hostile), timeout=5)
            assert len(chain) == MAX_PRESENTED_CERTIFICATES
            assert chain[0] == p.certificate
    assert fetch_chain("127.0.0.1", _port(require_server), timeout=5)[0] == p.certificate
