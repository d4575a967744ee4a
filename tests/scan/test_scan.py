"""scan_endpoint against real loopback servers: compliant, 496 mode, misconfigured, absent."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from spinepki.errors import ConfigurationError, ServerCredentialError
from spinepki.scan import (
    SCAN_STEPS,
    SCHEMA,
    ClientCertOutcome,
    ScanError,
    ScanReport,
    parse_target,
    scan_endpoint,
)
from spinepki.testpki import TestPKI
from spinepki.trust import TrustStore
from tests.scan.conftest import compliant_context, leaf_files
from tests.scan.servers import METADATA_PATH, ScanTestServer

CHECK_IDS = [
    "protocol.sslv2",
    "protocol.sslv3",
    "protocol.tls1_0",
    "protocol.tls1_1",
    "protocol.tls1_2",
    "protocol.tls1_3",
    "ciphers.approved",
    "ciphers.server_order",
    "client_cert.required",
    "plaintext.dropped",
    "certificate.expiry",
    "certificate.fqdn",
    "certificate.chain",
    "http.cache_control",
    "http.error_cache_control",
]


def scan(
    server: ScanTestServer,
    pki: TestPKI,
    fqdn: str,
    ssp_files: tuple[Path, Path] | None,
    **kw: object,
) -> ScanReport:
    host, port = server.address
    cert, key = ssp_files if ssp_files else (None, None)
    return scan_endpoint(
        host,
        port,
        trust=pki.trust_store(),
        server_name=fqdn,
        client_cert=cert,
        client_key=key,
        **{"metadata_path": METADATA_PATH, **kw},  # type: ignore[arg-type]
    )


def failing(report: ScanReport) -> set[str]:
    return {c.id for c in report.failed}


class TestCompliantRequireMode:
    def test_compliant_with_client_certificate(
        self,
        require_server: ScanTestServer,
        scan_pki: TestPKI,
        provider_fqdn: str,
        ssp_files: tuple[Path, Path],
    ) -> None:
        """server_context in require mode passes every check, in well under 5 s."""
        started = time.monotonic()
        report = scan(require_server, scan_pki, provider_fqdn, ssp_files)
        assert time.monotonic() - started < 5
        assert report.compliant, [c for c in report.checks if c.passed is not True]
        assert [c.id for c in report.checks] == CHECK_IDS
        assert report.client_certificate.without_certificate is ClientCertOutcome.HANDSHAKE_FAILURE
        assert report.metadata is not None
        assert report.metadata.status == 200  # the real gate accepted the scanner's request
        assert report.metadata.cache_control == "no-store"

    def test_policy_suites_in_server_order(
        self,
        require_server: ScanTestServer,
        scan_pki: TestPKI,
        provider_fqdn: str,
    ) -> None:
        """Without a client certificate the suites and their order are still seen (ServerHello)."""
        report = scan(require_server, scan_pki, provider_fqdn, None)
        assert report.ciphers is not None
        rsa_suites = [s.name for s in scan_pki_policy_suites() if s.authentication == "RSA"]
        assert list(report.ciphers.accepted) == rsa_suites
        assert report.ciphers.server_order is True
        assert report.ciphers.complete
        assert report.ciphers.probes <= 100
        tls12 = next(p for p in report.protocols if p.name == "TLSv1.2")
        assert tls12.accepted
        assert tls12.method == "hello"  # the full handshake failed for want of a certificate
        # Nothing failed; only the HTTP checks could not be made without a certificate.
        assert not report.failed
        assert [c.id for c in report.undetermined] == [
            "http.cache_control",
            "http.error_cache_control",
        ]
        assert not report.compliant

    def test_presented_chain(
        self, require_server: ScanTestServer, scan_pki: TestPKI, provider_fqdn: str
    ) -> None:
        """The chain the server sends is read from its Certificate message and validated."""
        report = scan(require_server, scan_pki, provider_fqdn, None)
        assert report.certificate is not None
        assert report.certificate.chain[0].fqdn == provider_fqdn
        assert len(report.certificate.chain) == 2
        assert report.certificate.validation == ()
        assert report.check("certificate.chain").passed

    def test_wrong_name_and_foreign_trust_fail(
        self, require_server: ScanTestServer, scan_pki: TestPKI
    ) -> None:
        """A name the certificate does not carry, and an unrelated trust store, both fail."""
        host, port = require_server.address
        other = TrustStore.spine("int")
        report = scan_endpoint(host, port, trust=other, server_name="other.example.nhs.uk")
        assert {"certificate.fqdn", "certificate.chain"} <= failing(report)

    def test_ip_without_name_is_undetermined(self, require_server: ScanTestServer) -> None:
        """By IP address with no --server-name, the FQDN and chain checks cannot be made."""
        report = scan_endpoint(*require_server.address)
        assert report.check("certificate.fqdn").passed is None
        assert report.check("certificate.chain").passed is None
        assert report.server_name is None


@pytest.fixture(scope="module")
def scan_with_ssp(
    scan_pki: TestPKI, provider_fqdn: str, ssp_files: tuple[Path, Path]
) -> Callable[[ScanTestServer], ScanReport]:
    """Scan a server as the SSP would (its credential, the PKI's trust, the provider's
    name), once per server: the reports are read by several tests."""
    reports: dict[int, ScanReport] = {}

    def scanned(server: ScanTestServer) -> ScanReport:
        if id(server) not in reports:
            reports[id(server)] = scan(server, scan_pki, provider_fqdn, ssp_files)
        return reports[id(server)]

    return scanned


class TestHttp496Mode:
    def test_compliant(
        self, http496_server: ScanTestServer, scan_with_ssp: Callable[[ScanTestServer], ScanReport]
    ) -> None:
        """Handshake completes without a certificate and the gate answers 496: compliant."""
        report = scan_with_ssp(http496_server)
        assert report.compliant, [c for c in report.checks if c.passed is not True]
        cc = report.client_certificate
        assert cc.without_certificate is ClientCertOutcome.HTTP_496
        assert cc.status == 496
        assert cc.cache_control == "no-store"
        # The scanner's GP Connect request got through the real gate with the certificate.
        assert report.metadata is not None
        assert report.metadata.status == 200
        assert any(b"Ssp-InteractionID" in r for r in http496_server.requests)


@pytest.fixture(scope="module")
def misconfigured_report(
    misconfigured_server: ScanTestServer, scan_with_ssp: Callable[[ScanTestServer], ScanReport]
) -> ScanReport:
    """A server wrong in every way the scan looks for, scanned once."""
    return scan_with_ssp(misconfigured_server)


class TestMisconfigured:
    def test_each_misconfiguration_fails_its_check(self, misconfigured_report: ScanReport) -> None:
        """TLS 1.0/1.1/1.3 on, a non-PFS CBC suite, client order, no mTLS, plaintext, cache."""
        assert failing(misconfigured_report) == {
            "protocol.tls1_0",
            "protocol.tls1_1",
            "protocol.tls1_3",
            "ciphers.approved",
            "ciphers.server_order",
            "client_cert.required",
            "plaintext.dropped",
            "http.cache_control",
            "http.error_cache_control",
        }
        assert not misconfigured_report.compliant

    def test_findings(self, misconfigured_report: ScanReport) -> None:
        """The raw findings name what was wrong."""
        assert misconfigured_report.ciphers is not None
        assert misconfigured_report.ciphers.outside_policy == ("AES128-SHA256",)
        assert misconfigured_report.ciphers.server_order is False
        assert (
            misconfigured_report.client_certificate.without_certificate is ClientCertOutcome.SERVED
        )
        assert misconfigured_report.plaintext.answered_http
        assert "redirect" in misconfigured_report.check("plaintext.dropped").detail
        assert misconfigured_report.metadata is not None
        assert misconfigured_report.metadata.cache_control is None
        assert "AES128-SHA256" in misconfigured_report.check("ciphers.approved").detail


class TestErrorAnswers:
    """An error answer must carry no-store too: the unparsable request's, and the 496."""

    def test_errors_with_no_store_pass(
        self, http496_server: ScanTestServer, scan_with_ssp: Callable[[ScanTestServer], ScanReport]
    ) -> None:
        """The 496 without a certificate and the 400 to an unparsable request both carry
        no-store: the check passes and names both."""
        report = scan_with_ssp(http496_server)
        check = report.check("http.error_cache_control")
        assert check.passed, check.detail
        assert "496" in check.detail
        assert "400" in check.detail
        assert report.error_answer is not None
        assert report.error_answer.status == 400

    def test_an_error_without_no_store_fails(
        self, scan_pki: TestPKI, provider_fqdn: str, ssp_files: tuple[Path, Path]
    ) -> None:
        """A server whose error answers lack no-store (HAProxy's own 400 said no-cache)
        fails the check, though its metadata answer carries no-store."""
        from tests.scan.servers import gate_responder

        ctx = compliant_context(scan_pki)
        good = gate_responder()

        def respond(peer: bytes | None, head: bytes) -> bytes:
            answer = good(peer, head)
            if answer.startswith(b"HTTP/1.1 400"):
                return answer.replace(b"no-store", b"no-cache")
            return answer

        with ScanTestServer(ctx, respond) as server:
            report = scan(server, scan_pki, provider_fqdn, ssp_files)
        assert report.check("http.cache_control").passed
        check = report.check("http.error_cache_control")
        assert check.passed is False
        assert "no-cache" in check.detail

    def test_no_answer_passes(
        self, scan_pki: TestPKI, provider_fqdn: str, ssp_files: tuple[Path, Path]
    ) -> None:
        """A server that closes on an unparsable request leaves nothing to cache: passes."""
        from tests.scan.servers import gate_responder

        ctx = compliant_context(scan_pki)
        good = gate_responder()

        def respond(peer: bytes | None, head: bytes) -> bytes:
            return b"" if b"not a header" in head else good(peer, head)

        with ScanTestServer(ctx, respond) as server:
            report = scan(server, scan_pki, provider_fqdn, ssp_files)
        check = report.check("http.error_cache_control")
        assert check.passed is True
        assert "nothing to cache" in check.detail


@pytest.fixture(scope="module")
def wrong_files(scan_pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The `wrong-fqdn` certificate (valid chain, another host's name) and key as files."""
    return leaf_files(scan_pki, "wrong-fqdn", tmp_path_factory.mktemp("wrong-fqdn"))


WrongFqdnScan = Callable[..., ScanReport]


@pytest.fixture
def scan_wrong_fqdn(
    scan_pki: TestPKI,
    provider_fqdn: str,
    ssp_files: tuple[Path, Path],
    wrong_files: tuple[Path, Path],
) -> WrongFqdnScan:
    """``scan(server, wrong=files, **kw)`` with the SSP and a wrong-FQDN credential
    (the `wrong-fqdn` leaf unless ``wrong`` names others)."""

    def run(
        server: ScanTestServer, wrong: tuple[Path, Path] = wrong_files, **kw: object
    ) -> ScanReport:
        cert, key = wrong
        return scan(
            server,
            scan_pki,
            provider_fqdn,
            ssp_files,
            wrong_fqdn_cert=cert,
            wrong_fqdn_key=key,
            **kw,
        )

    return run


class TestWrongFqdn:
    """With a wrong-FQDN certificate, the scanner checks the endpoint refuses it."""

    def _server(self, pki: TestPKI, fqdn_check: bool) -> ScanTestServer:
        from spinepki.gate import ClientAuthMode
        from spinepki.validation import ClientCertValidator
        from tests.scan.servers import gate_responder

        ctx = compliant_context(pki)
        checker = (
            ClientCertValidator(pki.trust_store(), ssp_fqdns=[pki.ssp_fqdn], revocation=None)
            if fqdn_check
            else None
        )
        return ScanTestServer(
            ctx, gate_responder(checker=checker, client_auth=ClientAuthMode.REQUIRE)
        )

    def test_refused_passes(self, scan_pki: TestPKI, scan_wrong_fqdn: WrongFqdnScan) -> None:
        """A gate with the FQDN check answers 495: client_cert.fqdn passes; compliant."""
        with self._server(scan_pki, fqdn_check=True) as server:
            report = scan_wrong_fqdn(server)
        check = report.check("client_cert.fqdn")
        assert check.passed, check.detail
        assert report.wrong_fqdn is not None
        assert report.wrong_fqdn.status == 495
        assert report.compliant, [c for c in report.checks if c.passed is not True]
        assert report.as_dict()["findings"]["wrong_fqdn"]["status"] == 495

    def test_served_fails(self, scan_pki: TestPKI, scan_wrong_fqdn: WrongFqdnScan) -> None:
        """Without the check (what every export did) the certificate is served: fails."""
        with self._server(scan_pki, fqdn_check=False) as server:
            report = scan_wrong_fqdn(server)
        check = report.check("client_cert.fqdn")
        assert check.passed is False
        assert "served" in check.detail

    def test_refused_in_the_handshake_passes(
        self,
        require_server: ScanTestServer,
        scan_pki: TestPKI,
        scan_wrong_fqdn: WrongFqdnScan,
        tmp_path: Path,
    ) -> None:
        """A certificate the handshake refuses is refused: the foreign one, here."""
        foreign = leaf_files(scan_pki, "foreign", tmp_path)
        report = scan_wrong_fqdn(require_server, foreign)
        check = report.check("client_cert.fqdn")
        assert check.passed is True
        assert "handshake" in check.detail

    def test_other_refusal_is_undetermined(
        self, http496_server: ScanTestServer, scan_wrong_fqdn: WrongFqdnScan
    ) -> None:
        """A 400 the SSP's own request would also get proves nothing about the FQDN."""
        report = scan_wrong_fqdn(http496_server, metadata_path="/A12345/STU3/1/gpconnect/nothing")
        check = report.check("client_cert.fqdn")
        assert check.passed is None
        assert "not attributable" in check.detail

    def test_half_a_credential(self, require_server: ScanTestServer, scan_pki: TestPKI) -> None:
        """A wrong-FQDN certificate without its key is a credential error."""
        with pytest.raises(ServerCredentialError):
            scan_endpoint(*require_server.address, wrong_fqdn_cert="x.pem")


class TestTargets:
    def test_connection_refused(self, closed_port: int) -> None:
        """Nothing listening: ScanError (exit 2 on the command line), no report."""
        with pytest.raises(ScanError) as info:
            scan_endpoint("127.0.0.1", closed_port, timeout=2)
        assert info.value.code == "scan.unreachable"

    @pytest.mark.parametrize(
        "target",
        ["10.0.0.0/24", "127.0.0.1-5:443", "a:1,b:2", "*.nhs.uk:443", "host", "host:0", "h:99999"],
    )
    def test_ranges_and_junk_are_refused(self, target: str) -> None:
        """Only one HOST:PORT: CIDRs, ranges, lists, wildcards and bad ports are refused."""
        with pytest.raises(ConfigurationError):
            parse_target(target)

    @pytest.mark.parametrize(
        ("target", "expected"),
        [
            ("127.0.0.1:8443", ("127.0.0.1", 8443)),
            ("[::1]:443", ("::1", 443)),
            ("gp-provider.example.nhs.uk:443", ("gp-provider.example.nhs.uk", 443)),
        ],
    )
    def test_good_targets(self, target: str, expected: tuple[str, int]) -> None:
        """Host names (with dashes), IPv4 and bracketed IPv6 are accepted."""
        assert parse_target(target) == expected

    def test_bad_options(
        self, require_server: ScanTestServer, ssp_files: tuple[Path, Path]
    ) -> None:
        """A half credential, a silly timeout or path are refused before any probe."""
        host, port = require_server.address
        with pytest.raises(ServerCredentialError):
            scan_endpoint(host, port, client_cert=ssp_files[0])
        with pytest.raises(ConfigurationError):
            scan_endpoint(host, port, timeout=0)
        with pytest.raises(ConfigurationError):
            scan_endpoint(host, port, metadata_path="metadata")


class TestReport:
    def test_progress_and_json_schema(
        self, require_server: ScanTestServer, scan_pki: TestPKI, provider_fqdn: str
    ) -> None:
        """progress is called once per step; the JSON layout is stable."""
        seen: list[tuple[str, int, int]] = []
        report = scan(
            require_server,
            scan_pki,
            provider_fqdn,
            None,
            progress=lambda step, done, total: seen.append((step, done, total)),
        )
        assert seen == [(s, i, len(SCAN_STEPS)) for i, s in enumerate(SCAN_STEPS, start=1)]
        data = report.as_dict()
        assert data["schema"] == SCHEMA
        assert list(data) == [
            "schema",
            "target",
            "policy",
            "started_at",
            "duration_seconds",
            "compliant",
            "summary",
            "checks",
            "findings",
        ]
        assert list(data["findings"]) == [
            "protocols",
            "ciphers",
            "client_certificate",
            "plaintext",
            "certificate",
            "metadata",
            "error_answer",
            "wrong_fqdn",
        ]
        assert [c["id"] for c in data["checks"]] == CHECK_IDS
        assert all(set(c) == {"id", "passed", "requirement", "detail"} for c in data["checks"])
        assert data["summary"] == {"passed": 13, "failed": 0, "undetermined": 2}


def scan_pki_policy_suites() -> tuple:  # type: ignore[type-arg]
    from spinepki.policy import SPINE_POLICY

    return SPINE_POLICY.suites()
