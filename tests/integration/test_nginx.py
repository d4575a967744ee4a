"""The exported nginx configuration, run for real: nginx, `spinepki gate serve`, a tiny app.

nginx runs as a non-daemon child with its own prefix under tmp_path, listening on free
127.0.0.1 ports, with the RSA-2048 test PKI. Three servers are exported from the same
policy: require mode, http-496 mode without the gate, and http-496 mode with the gate
(auth_request to `spinepki gate serve`).
"""

from __future__ import annotations

import socket
import ssl
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from spinepki.policy import SPINE_POLICY, ClientAuth
from spinepki.testpki import TestPKI
from tests._helpers import client_for
from tests.serverconfig import _helpers as h

NGINX = h.find_nginx()
pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(
        NGINX is None,
        reason="nginx is not installed (`make test` installs Debian's nginx; run it as root)",
    ),
]


@dataclass
class Server:
    """One running nginx with the exported configuration."""

    port: int
    upstream: h._UpstreamServer
    pki: TestPKI
    prefix: Path

    def client(self, name: str | None, **kw: str) -> h.Client:
        return h.Client(self.port, client_for(self.pki, name, **kw), self.pki.provider_fqdn)

    def get(self, name: str | None, headers: dict[str, str] | None = None) -> h.Response:
        client = self.client(name)
        try:
            return client.request("GET", h.METADATA_PATH, headers or h.ssp_headers())
        finally:
            client.close()


@pytest.fixture(scope="module")
def files(spine_pki_rsa: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> h.PKIFiles:
    return h.write_pki_files(spine_pki_rsa, tmp_path_factory.mktemp("nginx-pki"))


@pytest.fixture(scope="module")
def upstream() -> Iterator[h._UpstreamServer]:
    with h.upstream_thread() as server:
        yield server


@pytest.fixture(scope="module")
def gate_port(files: h.PKIFiles, spine_pki_rsa: TestPKI) -> Iterator[int]:
    with h.gate_serve(files, ssp_fqdn=spine_pki_rsa.ssp_fqdn, client_auth="http-496") as port:
        yield port


StartNginx = Callable[[str, ClientAuth, "str | None"], Server]


@pytest.fixture(scope="module")
def start_nginx(
    spine_pki_rsa: TestPKI,
    files: h.PKIFiles,
    upstream: h._UpstreamServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StartNginx]:
    """Start an nginx with the exported configuration (stopped when the module ends)."""
    assert NGINX is not None
    nginx = NGINX
    pki = spine_pki_rsa

    with ExitStack() as stack:

        def start(label: str, client_auth: ClientAuth, gate_url: str | None) -> Server:
            prefix = tmp_path_factory.mktemp(label)
            port = h.free_port()
            block = h.nginx_block(
                files,
                port=port,
                upstream_port=upstream.server_address[1],
                client_auth=client_auth,
                gate_url=gate_url,
                ssp_fqdn=pki.ssp_fqdn,
                server_name=pki.provider_fqdn,
            )
            conf = h.nginx_test_config(prefix, block)
            stack.enter_context(h.nginx_running(nginx, conf, port))
            return Server(port, upstream, pki, prefix)

        yield start


@pytest.fixture(scope="module")
def require_server(start_nginx: StartNginx) -> Server:
    return start_nginx("nginx-require", ClientAuth.REQUIRE, None)


@pytest.fixture(scope="module")
def plain_496_server(start_nginx: StartNginx) -> Server:
    return start_nginx("nginx-496", ClientAuth.HTTP_496, None)


@pytest.fixture(scope="module")
def gated_server(start_nginx: StartNginx, gate_port: int) -> Server:
    return start_nginx("nginx-gate", ClientAuth.HTTP_496, f"http://127.0.0.1:{gate_port}")


@pytest.fixture(params=["require", "http-496", "gate"])
def server(request: pytest.FixtureRequest) -> Server:
    name = {"require": "require_server", "http-496": "plain_496_server", "gate": "gated_server"}
    return request.getfixturevalue(name[request.param])  # type: ignore[no-any-return]


def _outcome(resp: h.Response, status: int, code: str) -> dict[str, object]:
    """Assert an OperationOutcome answer with ``status`` and Spine ``code``; return its issue."""
    assert resp.status == status, resp.body
    assert resp.header("Cache-Control") == ["no-store"]
    assert resp.header("Content-Type") == ["application/fhir+json"]
    body = resp.json()
    assert body["resourceType"] == "OperationOutcome"
    (issue,) = body["issue"]
    assert issue["severity"] == "error"
    (coding,) = issue["details"]["coding"]
    assert coding["code"] == code
    assert coding["display"]
    return issue  # type: ignore[no-any-return]


def _refused_at_handshake(server: Server, ctx: ssl.SSLContext) -> bool:
    client = h.Client(server.port, ctx, server.pki.provider_fqdn)
    try:
        client.request("GET", h.METADATA_PATH, h.ssp_headers())
    except (ssl.SSLError, ConnectionError):
        return True
    finally:
        client.close()
    return False


class TestExportedConfigLoads:
    @pytest.mark.parametrize("client_auth", list(ClientAuth), ids=lambda m: m.value)
    @pytest.mark.parametrize("gate", [False, True], ids=["no-gate", "gate"])
    @pytest.mark.parametrize("ocsp", [False, True], ids=["crl", "crl+ocsp"])
    def test_nginx_t_accepts_every_variant(
        self, files: h.PKIFiles, tmp_path: Path, client_auth: ClientAuth, gate: bool, ocsp: bool
    ) -> None:
        """`nginx -t` accepts the export in every mode, including `ssl_ocsp on` (nginx 1.22)."""
        assert NGINX is not None
        block = h.nginx_block(
            files,
            port=h.free_port(),
            upstream_port=8,
            client_auth=client_auth,
            gate_url="http://127.0.0.1:9" if gate else None,
            ssp_fqdn="msg.dev.spine2.ncrs.nhs.uk",
            ocsp=ocsp,
        )
        result = h.nginx_check(NGINX, h.nginx_test_config(tmp_path, block))
        assert result.returncode == 0, result.stderr


class TestSSP:
    def test_ssp_gets_200_with_no_store(self, server: Server) -> None:
        """The SSP gets the app's answer over TLS 1.2 with an approved suite; the app's
        weaker Cache-Control is replaced by exactly one `no-store`."""
        resp = server.get("ssp")
        assert resp.status == 200, resp.body
        assert resp.header("Cache-Control") == ["no-store"]
        assert resp.version == "TLSv1.2"
        assert SPINE_POLICY.allows_suite(str(resp.cipher))
        assert resp.json()["resourceType"] == "CapabilityStatement"

    def test_app_receives_the_verified_certificate(self, gated_server: Server) -> None:
        """The app is handed the SSP certificate nginx verified ($ssl_client_escaped_cert)."""
        assert gated_server.get("ssp").status == 200
        _, _, headers = gated_server.upstream.seen[-1]
        sent = {k.lower(): v for k, v in headers.items()}["x-ssl-client-cert"]
        assert "BEGIN%20CERTIFICATE" in sent

    def test_dhe_only_ssp_is_accepted(self, require_server: Server) -> None:
        """An SSP offering only DHE-RSA-AES256-GCM-SHA384 is served (ffdhe2048 loaded)."""
        client = require_server.client("ssp", ciphers="DHE-RSA-AES256-GCM-SHA384")
        try:
            resp = client.request("GET", h.METADATA_PATH, h.ssp_headers())
        finally:
            client.close()
        assert resp.status == 200
        assert resp.cipher == "DHE-RSA-AES256-GCM-SHA384"


class TestRefusedAtTLS:
    @pytest.mark.parametrize(
        ("low", "high"),
        [
            (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1),
            (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3),
        ],
        ids=["tls1.0-1.1", "tls1.3"],
    )
    def test_other_protocols_are_refused(
        self, require_server: Server, low: ssl.TLSVersion, high: ssl.TLSVersion
    ) -> None:
        """TLS 1.0/1.1 and TLS 1.3 clients cannot complete a handshake."""
        ctx = client_for(require_server.pki, "ssp", ciphers="ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version, ctx.maximum_version = low, high
        assert _refused_at_handshake(require_server, ctx)

    def test_non_approved_cipher_is_refused(self, require_server: Server) -> None:
        """A client offering only AES128-SHA256/AES128-SHA (no forward secrecy) is refused."""
        ctx = client_for(require_server.pki, "ssp", ciphers="AES128-SHA256:AES128-SHA")
        assert _refused_at_handshake(require_server, ctx)

    def test_plaintext_http_is_dropped(self, require_server: Server) -> None:
        """Plain HTTP on the TLS port gets no response at all (error_page 497 -> 444)."""
        with socket.create_connection(("127.0.0.1", require_server.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        assert data == b""


class TestClientCertificates:
    def test_require_mode_without_certificate_gets_496(self, require_server: Server) -> None:
        """require: nginx cannot fail the handshake, so it answers 496 with an
        OperationOutcome and the app is never reached."""
        before = len(require_server.upstream.seen)
        issue = _outcome(require_server.get(None), 496, "ACCESS_DENIED_SSL")
        assert issue["code"] == "security"
        assert len(require_server.upstream.seen) == before

    @pytest.mark.parametrize("fixture", ["plain_496_server", "gated_server"])
    def test_http_496_mode_without_certificate_gets_496(
        self, request: pytest.FixtureRequest, fixture: str
    ) -> None:
        """http-496: the handshake completes and the answer is 496 with an OperationOutcome."""
        server: Server = request.getfixturevalue(fixture)
        _outcome(server.get(None), 496, "ACCESS_DENIED_SSL")

    @pytest.mark.parametrize("name", ["expired", "not-yet-valid", "foreign", "revoked"])
    def test_invalid_certificates_get_495(self, server: Server, name: str) -> None:
        """Expired, not-yet-valid, foreign and revoked (CRL) certificates are refused with
        495 in every mode; the app is never reached."""
        before = len(server.upstream.seen)
        _outcome(server.get(name), 495, "ACCESS_DENIED_SSL")
        assert len(server.upstream.seen) == before

    def test_valid_chain_with_the_wrong_fqdn_is_495(self, server: Server) -> None:
        """nginx verifies the chain of `wrong-fqdn`, and its FQDN map refuses the name: 495
        in every mode, with or without the gate; the app is never reached."""
        before = len(server.upstream.seen)
        issue = _outcome(server.get("wrong-fqdn"), 495, "ACCESS_DENIED_SSL")
        assert "FQDN" in str(issue["diagnostics"])
        assert len(server.upstream.seen) == before

    def test_forged_certificate_header_is_ignored(
        self, gated_server: Server, spine_pki_rsa: TestPKI
    ) -> None:
        """A certificate-less client sending its own X-SSL-Client-Cert still gets 496."""
        from urllib.parse import quote

        forged = quote(spine_pki_rsa.leaf("ssp").cert_pem.decode(), safe="")
        headers = {**h.ssp_headers(), "X-SSL-Client-Cert": forged}
        _outcome(gated_server.get(None, headers), 496, "ACCESS_DENIED_SSL")


class TestGate:
    @pytest.mark.parametrize(
        ("headers", "words"),
        [
            (h.ssp_headers(to="123456789123"), "Ssp-To"),
            (h.ssp_headers(h.READ_PATIENT), "does not match"),
            ({k: v for k, v in h.ssp_headers().items() if k != "Ssp-TraceID"}, "Ssp-TraceID"),
            (h.ssp_headers(bearer="not.a.token"), ""),
            (h.ssp_headers(bearer="e30.e30"), ""),
        ],
        ids=["wrong-ssp-to", "interaction-mismatch", "missing-trace-id", "garbage", "2-parts"],
    )
    def test_gate_rejections_carry_its_status_and_outcome(
        self, gated_server: Server, headers: dict[str, str], words: str
    ) -> None:
        """A refusal by the gate reaches the client with the gate's status (400) and its
        OperationOutcome (the explain round trip), with no-store; the app is not called."""
        if "Ssp-TraceID" not in headers:
            headers = dict(headers)  # parametrize values are shared between runs
        before = len(gated_server.upstream.seen)
        issue = _outcome(gated_server.get("ssp", headers), 400, "BAD_REQUEST")
        assert words in str(issue["diagnostics"])
        assert len(gated_server.upstream.seen) == before

    def test_fresh_token_each_time(self, gated_server: Server) -> None:
        """Allowed and refused requests alternate correctly on one kept-alive connection."""
        client = gated_server.client("ssp")
        try:
            statuses = [
                client.request(
                    "GET", h.METADATA_PATH, h.ssp_headers(to="1" if i % 2 else h.ASID)
                ).status
                for i in range(6)
            ]
        finally:
            client.close()
        assert statuses == [200, 400] * 3


def test_tls_scan_reports_nginx_compliant(require_server: Server, spine_pki_rsa: TestPKI) -> None:
    """`spinepki tls scan` (spinepki.scan) finds the exported nginx compliant."""
    scan = pytest.importorskip(
        "spinepki.scan", reason="spinepki.scan (the TLS scanner) is not present yet"
    )
    ssp = spine_pki_rsa.leaf("ssp")
    report = scan.scan_endpoint(
        "127.0.0.1",
        require_server.port,
        trust=spine_pki_rsa.trust_store(),
        client_cert=ssp.chain_pem,
        client_key=ssp.key_pem,
        server_name=spine_pki_rsa.provider_fqdn,
        metadata_path=h.METADATA_PATH,
        timeout=5.0,
    )
    assert report.compliant, [(c.id, getattr(c, "detail", "")) for c in report.failed]
