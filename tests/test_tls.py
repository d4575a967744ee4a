"""Building contexts: every bad input is a typed error at build time; check_context audits."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from spinepki.errors import (
    CertificateLoadError,
    CRLParseError,
    KeyLoadError,
    PolicyError,
    ServerCredentialError,
)
from spinepki.policy import SPINE_POLICY, SPINE_STRICT_POLICY, ClientAuth, TLSPolicy
from spinepki.testpki import KeyType, TestPKI
from spinepki.tls import FindingCode, check_context, client_context, server_context

DSA = Path(__file__).resolve().parent.parent / "testdata" / "dsa"


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    p = TestPKI.create(key_type=KeyType.EC_P256)
    p.issue("client-only", fqdn="c.example.nhs.uk", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    return p


class TestServerContext:
    def test_settings_follow_the_policy(self, pki: TestPKI) -> None:
        """TLS 1.2 only, server order, no compression, no renegotiation, cert required."""
        p = pki.leaf("provider")
        ctx = server_context(p.chain_pem, p.key_pem, pki.trust_store())
        assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
        assert ctx.maximum_version is ssl.TLSVersion.TLSv1_2
        assert ctx.options & ssl.OP_CIPHER_SERVER_PREFERENCE
        assert ctx.options & ssl.OP_NO_COMPRESSION
        assert ctx.options & ssl.OP_NO_RENEGOTIATION
        assert ctx.verify_mode == ssl.CERT_REQUIRED
        assert check_context(ctx) == ()

    def test_http_496_mode_makes_the_certificate_optional(self, pki: TestPKI) -> None:
        """http-496 mode asks for a certificate but completes without one."""
        p = pki.leaf("provider")
        ctx = server_context(
            p.chain_pem, p.key_pem, pki.trust_store(), client_auth=ClientAuth.HTTP_496
        )
        assert ctx.verify_mode == ssl.CERT_OPTIONAL
        assert [f.code for f in check_context(ctx)] == [FindingCode.CLIENT_CERT_OPTIONAL]

    def test_inputs_from_files_objects_and_encrypted_keys(
        self, pki: TestPKI, tmp_path: Path
    ) -> None:
        """Certificate and key come from files, objects, or an encrypted PEM with a password."""
        p = pki.leaf("provider")
        (tmp_path / "cert.pem").write_bytes(p.chain_pem)
        (tmp_path / "key.pem").write_bytes(p.encrypted_key_pem(b"s3cret"))
        server_context(
            tmp_path / "cert.pem", tmp_path / "key.pem", pki.trust_store(), password="s3cret"
        )
        server_context(str(tmp_path / "cert.pem"), p.private_key, pki.trust_store())
        server_context(p.certificate, p.key_pem.decode(), pki.trust_store())

    def test_wrong_password_is_a_key_error(self, pki: TestPKI) -> None:
        """An encrypted key with the wrong password fails at build time."""
        p = pki.leaf("provider")
        with pytest.raises(KeyLoadError):
            server_context(
                p.cert_pem, p.encrypted_key_pem(b"right"), pki.trust_store(), password="wrong"
            )

    def test_missing_password_is_a_key_error(self, pki: TestPKI) -> None:
        """An encrypted key without a password fails at build time."""
        p = pki.leaf("provider")
        with pytest.raises(KeyLoadError):
            server_context(p.cert_pem, p.encrypted_key_pem(b"right"), pki.trust_store())

    def test_mismatched_key_is_refused(self, pki: TestPKI) -> None:
        """A key that is not the certificate's is named as such."""
        with pytest.raises(ServerCredentialError, match="does not match"):
            server_context(
                pki.leaf("provider").cert_pem, pki.leaf("ssp").key_pem, pki.trust_store()
            )

    def test_client_only_certificate_is_not_a_server_certificate(self, pki: TestPKI) -> None:
        """A certificate without serverAuth cannot serve TLS."""
        c = pki.leaf("client-only")
        with pytest.raises(ServerCredentialError, match="serverAuth"):
            server_context(c.cert_pem, c.key_pem, pki.trust_store())

    def test_expired_server_certificate_is_refused(self, pki: TestPKI) -> None:
        """An expired provider certificate fails at build time, not at the first handshake."""
        e = pki.leaf("expired")
        with pytest.raises(ServerCredentialError, match="expired"):
            server_context(e.cert_pem, e.key_pem, pki.trust_store())

    def test_not_yet_valid_server_certificate_is_refused(self, pki: TestPKI) -> None:
        """A certificate from the future is refused (time is an input)."""
        p = pki.leaf("provider")
        with pytest.raises(ServerCredentialError, match="not valid before"):
            server_context(
                p.cert_pem,
                p.key_pem,
                pki.trust_store(),
                at=pki.reference_time - dt.timedelta(days=30),
            )

    def test_naive_time_is_a_typed_error(self, pki: TestPKI) -> None:
        """Time zones are not guessed: a naive `at` is refused with a typed error."""
        p = pki.leaf("provider")
        with pytest.raises(ServerCredentialError, match="timezone-aware"):
            server_context(p.cert_pem, p.key_pem, pki.trust_store(), at=dt.datetime(2026, 1, 1))

    def test_ca_certificate_cannot_be_a_server_certificate(self, pki: TestPKI) -> None:
        """A CA certificate as the endpoint certificate is refused."""
        with pytest.raises(ServerCredentialError, match="CA certificate"):
            server_context(pki.sub_ca.cert_pem, pki.sub_ca.key_pem, pki.trust_store())

    def test_ec_key_with_rsa_only_policy_is_refused(self, pki: TestPKI) -> None:
        """A key type that no suite of the policy can use is refused at build time."""
        rsa_only = TLSPolicy(name="rsa-only", cipher_string="ECDHE-RSA-AES256-GCM-SHA384")
        p = pki.leaf("provider")
        with pytest.raises(ServerCredentialError, match="no suite"):
            server_context(p.cert_pem, p.key_pem, pki.trust_store(), policy=rsa_only)

    def test_unreadable_certificate_file_names_the_file(self, pki: TestPKI, tmp_path: Path) -> None:
        """A missing file is a CertificateLoadError naming the path."""
        with pytest.raises(CertificateLoadError, match=r"nope\.pem"):
            server_context(tmp_path / "nope.pem", pki.leaf("provider").key_pem, pki.trust_store())

    def test_garbage_key_is_a_key_error(self, pki: TestPKI) -> None:
        """Bytes that are not a key raise KeyLoadError."""
        with pytest.raises(KeyLoadError):
            server_context(pki.leaf("provider").cert_pem, b"garbage", pki.trust_store())

    @pytest.mark.parametrize(
        "name", ["dsa.pkcs8.pem", "dsa.pkcs8.der", "dsa.traditional.pem", "dsa.traditional.der"]
    )
    def test_dsa_key_is_refused_without_a_warning(self, pki: TestPKI, name: str) -> None:
        """A DSA key is a KeyLoadError, recognised before cryptography builds (and warns on) it."""
        with pytest.raises(KeyLoadError, match="DSA keys are not supported"):
            server_context(pki.leaf("provider").cert_pem, DSA / name, pki.trust_store())

    @pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
    def test_encrypted_dsa_key_is_refused(self, pki: TestPKI) -> None:
        """An encrypted DSA key shows its type only once decrypted: still a KeyLoadError."""
        key = DSA / "dsa.encrypted.pem"
        # cryptography 51+ itself warns while decrypting a DSA key; spinepki then refuses it.
        with pytest.raises(KeyLoadError, match="DSA"):
            server_context(
                pki.leaf("provider").cert_pem, key, pki.trust_store(), password="throwaway"
            )

    def test_dsa_certificate_is_refused(self, pki: TestPKI) -> None:
        """A DSA certificate is a ServerCredentialError, with no deprecation warning."""
        with pytest.raises(ServerCredentialError, match="DSA"):
            server_context(DSA / "dsa.cert.pem", pki.leaf("provider").key_pem, pki.trust_store())

    def test_policy_that_selects_nothing_is_a_policy_error(self, pki: TestPKI) -> None:
        """An unusable cipher string is refused when the context is built."""
        p = pki.leaf("provider")
        with pytest.raises(PolicyError):
            server_context(
                p.cert_pem,
                p.key_pem,
                pki.trust_store(),
                policy=TLSPolicy(name="x", cipher_string="NOPE"),
            )

    def test_crls_are_loaded_with_leaf_only_checking(self, pki: TestPKI) -> None:
        """Supplied CRLs turn on VERIFY_CRL_CHECK_LEAF, never CHECK_CHAIN."""
        p = pki.leaf("provider")
        from cryptography.hazmat.primitives import serialization

        der = pki.crl().public_bytes(serialization.Encoding.DER)
        ctx = server_context(p.cert_pem, p.key_pem, pki.trust_store(), crls=[pki.crl(), der])
        # CHECK_CHAIN's bits include CHECK_LEAF's; only the leaf bit may be set.
        assert ctx.verify_flags & ssl.VERIFY_CRL_CHECK_CHAIN == ssl.VERIFY_CRL_CHECK_LEAF

    def test_garbage_crl_is_a_typed_error(self, pki: TestPKI) -> None:
        """A CRL that does not parse is refused at build time."""
        p = pki.leaf("provider")
        with pytest.raises(CRLParseError):
            server_context(
                p.cert_pem, p.key_pem, pki.trust_store(), crls=[b"-----BEGIN X509 CRL-----\nxx"]
            )


class TestPeerChainWithoutCertificate:
    """A server connection whose client sent no certificate reports an empty chain on
    every supported Python (3.13.0's own getters raise AttributeError there)."""

    @pytest.mark.parametrize("kind", ["sslobject", "sslsocket"])
    def test_chain_getters_answer_empty(self, pki: TestPKI, kind: str) -> None:
        """A real loopback handshake in http-496 mode without a client certificate."""
        provider = pki.leaf("provider")
        server = server_context(
            provider.chain_pem, provider.key_pem, pki.trust_store(), client_auth=ClientAuth.HTTP_496
        )
        client = client_context(pki.trust_store())
        client.check_hostname = False
        left, right = socket.socketpair()
        with left, right, ThreadPoolExecutor(1) as pool:
            handshake = pool.submit(client.wrap_socket, left, server_hostname=provider.fqdn)
            if kind == "sslsocket":
                conn: Any = server.wrap_socket(right, server_side=True)
            else:
                conn = _bio_handshake(server, right)
            handshake.result(timeout=10).close()
            assert conn.getpeercert(binary_form=True) is None
            chains = {
                name: getter() if (getter := getattr(conn, name, None)) else None
                for name in ("get_verified_chain", "get_unverified_chain")
            }
            if kind == "sslsocket":
                conn.close()
        expected = [] if sys.version_info >= (3, 13) else None  # no public getters before 3.13
        assert chains == {"get_verified_chain": expected, "get_unverified_chain": expected}


def _bio_handshake(ctx: ssl.SSLContext, sock: socket.socket) -> ssl.SSLObject:
    """The server side of a handshake through memory BIOs, as asyncio servers do it."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            sock.sendall(outgoing.read())
            incoming.write(sock.recv(65536))
        else:
            sock.sendall(outgoing.read())
            return obj


class TestClientContext:
    def test_client_context_checks_hostname_against_cn(self, pki: TestPKI) -> None:
        """Spine certificates carry the FQDN only in the CN, so CN matching is on."""
        ssp = pki.leaf("ssp")
        ctx = client_context(pki.trust_store(), cert=ssp.chain_pem, key=ssp.key_pem)
        assert ctx.check_hostname
        assert ctx.hostname_checks_common_name
        assert ctx.maximum_version is ssl.TLSVersion.TLSv1_2

    def test_cert_without_key_is_refused(self, pki: TestPKI) -> None:
        """Half a credential is a usage error."""
        with pytest.raises(ServerCredentialError, match="both"):
            client_context(pki.trust_store(), cert=pki.leaf("ssp").cert_pem)

    def test_expired_client_certificate_needs_the_unsafe_flag(self, pki: TestPKI) -> None:
        """Presenting an expired certificate takes an unsafe_-named option."""
        e = pki.leaf("expired")
        with pytest.raises(ServerCredentialError):
            client_context(pki.trust_store(), cert=e.cert_pem, key=e.key_pem)
        client_context(
            pki.trust_store(), cert=e.cert_pem, key=e.key_pem, unsafe_skip_credential_checks=True
        )


class TestCheckContext:
    def test_default_context_breaks_the_policy_in_every_way(self) -> None:
        """A permissive server context is reported on protocol, ciphers, order and client auth."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # deliberately old
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.options &= ~ssl.OP_NO_COMPRESSION
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
        codes = {f.code for f in check_context(ctx)}
        assert {
            FindingCode.PROTOCOL_BELOW_POLICY,
            FindingCode.PROTOCOL_ABOVE_POLICY,
            FindingCode.CIPHER_OUTSIDE_POLICY,
            FindingCode.ORDER_NOT_HONOURED,
            FindingCode.CLIENT_CERT_NOT_REQUIRED,
            FindingCode.COMPRESSION_ENABLED,
            FindingCode.RENEGOTIATION_ENABLED,
        } <= codes

    def test_reordered_policy_suites_are_a_warning(self, pki: TestPKI) -> None:
        """The policy's suites in another order are flagged, as a warning."""
        p = pki.leaf("provider")
        ctx = server_context(p.cert_pem, p.key_pem, pki.trust_store())
        ctx.set_ciphers(":".join(reversed([s.name for s in SPINE_POLICY.suites()])))
        (finding,) = check_context(ctx)
        assert finding.code is FindingCode.CIPHER_ORDER_DIFFERS
        assert finding.severity == "warning"

    def test_strict_context_passes_the_default_policy_check(self, pki: TestPKI) -> None:
        """A strict-profile context uses a subset of the policy's suites: compliant."""
        p = pki.leaf("provider")
        ctx = server_context(p.cert_pem, p.key_pem, pki.trust_store(), policy=SPINE_STRICT_POLICY)
        assert check_context(ctx, SPINE_STRICT_POLICY) == ()

    def test_client_side_check_skips_server_only_rules(self, pki: TestPKI) -> None:
        """With server=False, order and client-auth findings are not reported."""
        ctx = client_context(pki.trust_store())
        assert check_context(ctx, server=False) == ()
