"""Real TLS handshakes on 127.0.0.1 against servers built with server_context."""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Iterator

import pytest

from spinepki._probe import probe
from spinepki.policy import SPINE_POLICY, ClientAuth
from spinepki.testpki import TestPKI
from spinepki.testpki._tlsserver import TLSTestServer
from spinepki.tls import server_context
from tests._helpers import client_for


def _server(
    pki: TestPKI, mode: ClientAuth = ClientAuth.REQUIRE, *, crl: bool = False
) -> TLSTestServer:
    p = pki.leaf("provider")
    ctx = server_context(
        p.chain_pem, p.key_pem, pki.trust_store(), client_auth=mode, crls=[pki.crl()] if crl else ()
    )
    return TLSTestServer(ctx)


@pytest.fixture(scope="module")
def require_server(spine_pki_rsa: TestPKI) -> Iterator[TLSTestServer]:
    with _server(spine_pki_rsa) as server:
        yield server


def _connect(pki: TestPKI, server: TLSTestServer, ctx: ssl.SSLContext):  # type: ignore[no-untyped-def]
    return probe(server.address, ctx, server_hostname=pki.provider_fqdn)


class TestProtocolAndCiphers:
    def test_ssp_connects_with_tls12_and_an_approved_suite(
        self, spine_pki_rsa: TestPKI, require_server: TLSTestServer
    ) -> None:
        """The SSP certificate gets TLS 1.2, an approved suite, and the server sees its cert."""
        result = _connect(spine_pki_rsa, require_server, client_for(spine_pki_rsa, "ssp"))
        assert result.accepted, result.error
        assert result.version == "TLSv1.2"
        assert SPINE_POLICY.allows_suite(str(result.cipher))
        assert b"client-certificate: present" in result.response

    @pytest.mark.parametrize(
        ("low", "high"),
        [
            (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1),
            (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1),
            (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3),
        ],
        ids=["tls1.0", "tls1.1", "tls1.3"],
    )
    def test_other_protocol_versions_are_refused(
        self,
        spine_pki_rsa: TestPKI,
        require_server: TLSTestServer,
        low: ssl.TLSVersion,
        high: ssl.TLSVersion,
    ) -> None:
        """TLS 1.0, 1.1 and 1.3 clients cannot complete a handshake."""
        ctx = client_for(spine_pki_rsa, "ssp", "ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version, ctx.maximum_version = low, high
        result = _connect(spine_pki_rsa, require_server, ctx)
        assert not result.accepted
        assert "VERSION" in str(result.error) or "PROTOCOL" in str(result.error)

    @pytest.mark.parametrize(
        "suite", ["AES128-SHA256", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA256"]
    )
    def test_non_approved_suites_are_refused(
        self, spine_pki_rsa: TestPKI, require_server: TLSTestServer, suite: str
    ) -> None:
        """A client offering only suites outside the policy is refused (no shared cipher)."""
        assert not SPINE_POLICY.allows_suite(suite)
        result = _connect(spine_pki_rsa, require_server, client_for(spine_pki_rsa, "ssp", suite))
        assert not result.accepted
        assert "HANDSHAKE_FAILURE" in str(result.error)

    def test_dhe_only_client_succeeds(
        self, spine_pki_rsa: TestPKI, require_server: TLSTestServer
    ) -> None:
        """AESGCM+EDH works because server_context loads ffdhe2048 parameters."""
        result = _connect(
            spine_pki_rsa,
            require_server,
            client_for(spine_pki_rsa, "ssp", "DHE-RSA-AES256-GCM-SHA384"),
        )
        assert result.accepted, result.error
        assert result.cipher == "DHE-RSA-AES256-GCM-SHA384"

    def test_server_order_wins(self, spine_pki_rsa: TestPKI, require_server: TLSTestServer) -> None:
        """When the client prefers another approved suite, the server's first choice is used."""
        ctx = client_for(
            spine_pki_rsa, "ssp", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"
        )
        result = _connect(spine_pki_rsa, require_server, ctx)
        assert result.cipher == "ECDHE-RSA-AES256-GCM-SHA384"

    def test_plaintext_is_not_served(self, require_server: TLSTestServer) -> None:
        """Plain HTTP on the TLS port gets no HTTP answer."""
        result = probe(require_server.address, None)
        assert not result.accepted
        assert not result.response.startswith(b"HTTP/")


class TestClientCertificates:
    def test_missing_certificate_is_refused_in_require_mode(self, spine_pki_rsa: TestPKI) -> None:
        """Require mode: the handshake fails without a client certificate."""
        with _server(spine_pki_rsa) as server:
            result = _connect(spine_pki_rsa, server, client_for(spine_pki_rsa, None))
            assert not result.accepted
            (record,) = server.wait_for_records(1)
        assert record.error == "PEER_DID_NOT_RETURN_A_CERTIFICATE"

    def test_missing_certificate_reaches_the_app_in_496_mode(self, spine_pki_rsa: TestPKI) -> None:
        """http-496 mode: the handshake completes and the app sees "no certificate"."""
        with _server(spine_pki_rsa, ClientAuth.HTTP_496) as server:
            result = _connect(spine_pki_rsa, server, client_for(spine_pki_rsa, None))
            assert result.accepted, result.error
            assert b"client-certificate: none" in result.response
            assert server.wait_for_records(1)[-1].peer_certificate is None

    @pytest.mark.parametrize("mode", list(ClientAuth), ids=lambda m: m.value)
    @pytest.mark.parametrize(
        ("name", "alert"),
        [
            ("foreign", "UNKNOWN_CA"),
            ("expired", "CERTIFICATE_EXPIRED"),
            ("not-yet-valid", "BAD_CERTIFICATE"),
        ],
    )
    def test_invalid_certificates_are_refused_in_both_modes(
        self, spine_pki_rsa: TestPKI, mode: ClientAuth, name: str, alert: str
    ) -> None:
        """A presented but invalid certificate is refused by the handshake in both modes."""
        with _server(spine_pki_rsa, mode) as server:
            result = _connect(spine_pki_rsa, server, client_for(spine_pki_rsa, name))
        assert not result.accepted
        assert alert in str(result.error)

    def test_revoked_certificate_is_refused_with_the_crl_loaded(
        self, spine_pki_rsa: TestPKI
    ) -> None:
        """With the Sub CA's CRL loaded into OpenSSL, the revoked certificate is refused."""
        with _server(spine_pki_rsa, crl=True) as server:
            revoked = _connect(spine_pki_rsa, server, client_for(spine_pki_rsa, "revoked"))
            ssp = _connect(spine_pki_rsa, server, client_for(spine_pki_rsa, "ssp"))
        assert not revoked.accepted
        assert "REVOKED" in str(revoked.error)
        assert ssp.accepted, ssp.error

    def test_revoked_certificate_passes_tls_without_a_crl(
        self, spine_pki_rsa: TestPKI, require_server: TLSTestServer
    ) -> None:
        """Without a CRL the handshake cannot know; revocation is the validator's job."""
        result = _connect(spine_pki_rsa, require_server, client_for(spine_pki_rsa, "revoked"))
        assert result.accepted


class TestTrustedSubCAOnly:
    def test_a_partial_chain_store_accepts_the_ssp_and_nothing_else(
        self, spine_pki_rsa: TestPKI
    ) -> None:
        """server_context with only the Sub CA trusted (partial_chain): the SSP's handshake
        completes, a foreign certificate is refused, and the SSP is served after it."""
        from spinepki.trust import TrustStore

        pki = spine_pki_rsa
        provider = pki.leaf("provider")
        store = TrustStore([pki.sub_ca.certificate], partial_chain=True)
        ctx = server_context(provider.chain_pem, provider.key_pem, store)
        with TLSTestServer(ctx) as server:
            assert _connect(pki, server, client_for(pki, "ssp")).accepted
            assert not _connect(pki, server, client_for(pki, "foreign")).accepted
            assert _connect(pki, server, client_for(pki, "ssp")).accepted
