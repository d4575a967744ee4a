"""render_config: the same policy data in four servers' syntax, checked against their
documented directives (golden files + assertions) and, where installed, their own parsers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from spinepki.demo._edges import APACHE_MODULES_DIR, apache_main_conf
from spinepki.errors import ConfigurationError
from spinepki.policy import SPINE_POLICY, SPINE_STRICT_POLICY, ClientAuth
from spinepki.serverconfig import (
    Listen,
    ServerKind,
    crl_set_gaps,
    jsse_cipher_suites,
    render_config,
    static_outcome,
)
from spinepki.testpki import TestPKI
from tests.serverconfig import _helpers as h

GOLDEN = Path(__file__).parent / "golden"
PATHS = {
    "cert": "/etc/spinepki/provider.chain.pem",
    "key": "/etc/spinepki/provider.key.pem",
    "trust_bundle": "/etc/spinepki/spine-int-ca.pem",
    "dhparam": "/etc/spinepki/ffdhe2048.pem",
}
CASES = {
    "nginx-gate-496.conf": {
        "server": "nginx", "client_auth": ClientAuth.HTTP_496, "gate_url": "http://127.0.0.1:9000",
        "crl": "/etc/spinepki/crls.pem", "ocsp": True,
    },
    "nginx-require.conf": {"server": "nginx", "crl": "/etc/spinepki/crls.pem"},
    "apache-496.conf": {
        "server": "apache",
        "client_auth": ClientAuth.HTTP_496,
        "crl": "/etc/spinepki/crls.pem",
        "ocsp": True,
    },
    "haproxy-require.cfg": {"server": "haproxy", "crl": "/etc/spinepki/crls.pem"},
    "tomcat-require.xml": {"server": "tomcat", "crl": "/etc/spinepki/crls.pem", "ocsp": True},
}  # fmt: skip


SSP = "msg.int.spine2.ncrs.nhs.uk"


def _render(**kw: object) -> str:
    args = {
        **PATHS,
        "listen": "443",
        "upstream": "http://127.0.0.1:8080",
        "ssp_fqdns": [SSP],
        **kw,
    }
    server = args.pop("server")
    return render_config(server, **args)  # type: ignore[arg-type]


def _mask(text: str) -> str:
    # The OpenSSL version line is the only machine-dependent text.
    return re.sub(r"expands on OpenSSL [^ ]+( \d+ \w+ \d+)?", "expands on OpenSSL X", text)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    """The export is byte-for-byte the reviewed golden file (SPINEPKI_REGEN_GOLDEN=1 rewrites)."""
    text = _mask(_render(**CASES[name]))
    path = GOLDEN / name
    if os.environ.get("SPINEPKI_REGEN_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


class TestSamePolicyEverywhere:
    @pytest.mark.parametrize("policy", [SPINE_POLICY, SPINE_STRICT_POLICY], ids=lambda p: p.name)
    def test_openssl_servers_use_the_policy_string(self, policy) -> None:  # type: ignore[no-untyped-def]
        """nginx, Apache and HAProxy get the policy's OpenSSL string, protocol and order."""
        nginx = _render(server="nginx", policy=policy)
        assert f"ssl_ciphers '{policy.cipher_string}';" in nginx
        assert "ssl_protocols TLSv1.2;" in nginx
        assert "ssl_prefer_server_ciphers on;" in nginx
        apache = _render(server="apache", policy=policy)
        assert f"SSLCipherSuite {policy.cipher_string}" in apache
        assert "SSLProtocol -all +TLSv1.2" in apache
        assert "SSLHonorCipherOrder on" in apache
        haproxy = _render(server="haproxy", policy=policy)
        assert f"ciphers {policy.cipher_string}" in haproxy
        assert "ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2" in haproxy
        directives = [ln for ln in haproxy.splitlines() if not ln.lstrip().startswith("#")]
        assert not any("prefer-client-ciphers" in ln for ln in directives)

    def test_tomcat_gets_jsse_names_without_ccm(self) -> None:
        """Tomcat gets every policy suite JSSE implements, by IANA name, in policy order; the
        four AES-CCM suites are dropped and the output says so."""
        jsse = jsse_cipher_suites(SPINE_POLICY)
        assert len(jsse.names) + len(jsse.dropped) == len(SPINE_POLICY.suites())
        assert jsse.names[:2] == (
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        )
        assert all("CCM" in name for name, _ in jsse.dropped)
        assert "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384" in jsse.names  # JSSE 17 has DSS suites
        text = _render(server="tomcat", crl="/c.pem")
        connector = ET.fromstring(text[text.index("<Connector") :])
        host = connector.find("SSLHostConfig")
        assert host is not None
        assert host.get("ciphers", "").split(",") == list(jsse.names)
        assert host.get("protocols") == "TLSv1.2"
        assert host.get("honorCipherOrder") == "true"
        assert host.get("certificateVerification") == "required"
        assert host.get("certificateRevocationListFile") == "/c.pem"
        assert "ECDHE-ECDSA-AES256-CCM" in text
        assert "JSSE has no AES-CCM" in text

    def test_strict_policy_has_no_jsse_drops(self) -> None:
        """The GCM-only profile maps completely."""
        assert jsse_cipher_suites(SPINE_STRICT_POLICY).dropped == ()


class TestModes:
    def test_nginx_require_vs_496(self) -> None:
        """require -> ssl_verify_client on; http-496 -> optional plus a 496 answer."""
        require = _render(server="nginx")
        assert "ssl_verify_client on;" in require
        assert "return 496" in require
        assert "if ($ssl_client_verify" not in require
        loose = _render(server="nginx", client_auth=ClientAuth.HTTP_496)
        assert "ssl_verify_client optional;" in loose
        assert "if ($ssl_client_verify != SUCCESS)" in loose

    def test_nginx_gate_wiring(self) -> None:
        """--gate adds auth_request, the explain round trip, and the forwarded headers."""
        text = _render(server="nginx", gate_url="http://127.0.0.1:9000")
        for line in (
            "auth_request /.spinepki/gate/check;",
            "error_page 403 = @spinepki_gate_explain;",
            "proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;",
            "proxy_set_header X-Original-URI $request_uri;",
            "proxy_set_header X-Original-Method $request_method;",
            "proxy_set_header X-Spinepki-Decision-Time $spinepki_decision_time;",
            "server 127.0.0.1:9000;",
        ):
            assert line in text
        assert "auth_request" not in _render(server="nginx")

    def test_no_store_everywhere(self) -> None:
        """Every server's export forces Cache-Control: no-store, errors included."""
        assert 'add_header Cache-Control "no-store" always;' in _render(server="nginx")
        apache = _render(server="apache")
        assert 'Header always set Cache-Control "no-store"' in apache
        assert "Header unset Cache-Control" in apache
        assert "http-after-response set-header Cache-Control no-store" in _render(server="haproxy")
        assert "no-store" in _render(server="tomcat")  # the filter note

    def test_crl_and_ocsp_directives(self) -> None:
        """CRL and OCSP land in each server's own directive, where it has one."""
        kw = {"crl": "/c.pem", "ocsp": True}
        nginx = _render(server="nginx", **kw)
        assert "ssl_crl /c.pem;" in nginx
        assert "ssl_ocsp leaf;" in nginx
        apache = _render(server="apache", **kw)
        assert 'SSLCARevocationFile "/c.pem"' in apache
        assert "SSLOCSPEnable leaf" in apache
        assert 'SSLOCSPResponderCertificateFile "/etc/spinepki/spine-int-ca.pem"' in apache
        assert "crl-file /c.pem" in _render(server="haproxy", crl="/c.pem")
        assert "ocsp.enable=true" in _render(server="tomcat", **kw)
        assert "ssl_crl /" not in _render(server="nginx")

    def test_static_outcomes_are_operation_outcomes(self) -> None:
        """The bodies servers return themselves are OperationOutcomes: 495/496
        ACCESS_DENIED_SSL, other 4xx BAD_REQUEST, 5xx INTERNAL_SERVER_ERROR."""
        import json

        for status, code in (
            (495, "ACCESS_DENIED_SSL"),
            (496, "ACCESS_DENIED_SSL"),
            (400, "BAD_REQUEST"),
            (408, "BAD_REQUEST"),
            (500, "INTERNAL_SERVER_ERROR"),
            (503, "INTERNAL_SERVER_ERROR"),
        ):
            body = json.loads(static_outcome(status))
            assert body["resourceType"] == "OperationOutcome"
            assert body["issue"][0]["details"]["coding"][0]["code"] == code
            assert "'" not in static_outcome(status)
        assert "fqdn" in static_outcome(495, "no SSP fqdn")
        for status in (200, 399, 600):
            with pytest.raises(ConfigurationError):
                static_outcome(status)

    def test_servers_own_errors_carry_no_store(self) -> None:
        """HAProxy's http-error pages and Apache's ErrorDocuments are OperationOutcomes with
        no-store; nginx hides its version; Apache too (ServerTokens/ServerSignature)."""
        haproxy = _render(server="haproxy")
        for status in (400, 408, 500, 502, 503, 504):
            line = next(ln for ln in haproxy.splitlines() if f"http-error status {status} " in ln)
            assert "content-type application/fhir+json" in line
            assert line.endswith("hdr Cache-Control no-store")
        apache = _render(server="apache")
        assert "ServerTokens Prod" in apache
        assert "ServerSignature Off" in apache
        assert "ErrorDocument 400 " in apache
        assert "server_tokens off;" in _render(server="nginx")


class TestFqdnCheck:
    """Every export refuses a verified certificate that names another host."""

    def test_each_server_checks_the_subject_cn(self) -> None:
        """nginx: a map on $ssl_client_verify:$ssl_client_s_dn; Apache: Require expr on
        SSL_CLIENT_S_DN_CN; HAProxy: ssl_c_s_dn(cn); Tomcat: a note (it has no setting)."""
        names = [SSP, "Msg.Other.nhs.uk."]
        nginx = _render(server="nginx", ssp_fqdns=names)
        assert 'map "$ssl_client_verify:$ssl_client_s_dn" $spinepki_wrong_ssp_fqdn {' in nginx
        assert r'"~*^SUCCESS:CN=msg\.int\.spine2\.ncrs\.nhs\.uk(,|$)" 0;' in nginx
        assert r'"~*^SUCCESS:CN=msg\.other\.nhs\.uk(,|$)" 0;' in nginx
        assert "if ($spinepki_wrong_ssp_fqdn) {" in nginx
        apache = _render(server="apache", ssp_fqdns=names)
        assert (
            "tolower(%{SSL_CLIENT_S_DN_CN}) in { 'msg.int.spine2.ncrs.nhs.uk', "
            "'msg.other.nhs.uk' }" in apache
        )
        haproxy = _render(server="haproxy", ssp_fqdns=names)
        assert f"acl spinepki_ssp_fqdn ssl_c_s_dn(cn) -i {SSP} msg.other.nhs.uk" in haproxy
        assert "!spinepki_ssp_fqdn" in haproxy
        assert "subject CN is not msg.int.spine2.ncrs.nhs.uk or msg.other" in _render(
            server="tomcat", ssp_fqdns=names
        )

    @pytest.mark.parametrize("server", [k.value for k in ServerKind])
    def test_required_unless_unsafe(self, server: str) -> None:
        """No FQDN: refused, unless unsafe_skip_fqdn_check (a gate behind checks it)."""
        with pytest.raises(ConfigurationError, match="FQDN"):
            _render(server=server, ssp_fqdns=[])
        text = _render(server=server, ssp_fqdns=[], unsafe_skip_fqdn_check=True)
        assert "spinepki_wrong_ssp_fqdn" not in text
        assert "SSL_CLIENT_S_DN_CN" not in text

    @pytest.mark.parametrize(
        "name", ["*.nhs.uk", "a b", "x'y", "a.(b).c", "-x.nhs.uk", "a..b", "ä.nhs.uk", "x" * 64, ""]
    )
    def test_only_dns_names(self, name: str) -> None:
        """A name that is not a plain DNS name (wildcards, quotes, regex syntax) is refused:
        it goes into a regex, an expression and an ACL."""
        with pytest.raises(ConfigurationError):
            _render(server="nginx", ssp_fqdns=[name])


class TestSessionLifetime:
    """Resumption skips the certificate checks: sessions live no longer than the bound."""

    @pytest.mark.parametrize("lifetime", [None, 120])
    def test_each_server(self, lifetime: int | None) -> None:
        """300 s by default (the revocation freshness bound), or what is given."""
        kw = {} if lifetime is None else {"session_lifetime": lifetime}
        n = lifetime or 300
        assert f"ssl_session_timeout {n}s;" in _render(server="nginx", **kw)
        assert f"SSLSessionCacheTimeout {n}" in _render(server="apache", **kw)
        assert f"tune.ssl.lifetime {n}" in _render(server="haproxy", **kw)
        assert f'sessionTimeout="{n}"' in _render(server="tomcat", **kw)

    @pytest.mark.parametrize("lifetime", [0, -1, 86401, True, 1.5])
    def test_out_of_range(self, lifetime: object) -> None:
        """Zero, negative, more than a day or not a whole number: refused."""
        with pytest.raises(ConfigurationError, match="seconds"):
            _render(server="nginx", session_lifetime=lifetime)


class TestCrlSet:
    """The exports' CRL file must hold the CRL of every CA in the trust bundle."""

    def test_complete_set(self, disk_pki: h.PKIFiles) -> None:
        """Root + Sub CA CRLs: no gap; the export renders."""
        assert crl_set_gaps(disk_pki.crl_bundle, disk_pki.bundle) == ()
        assert "ssl_crl" in _render(
            server="nginx", crl=disk_pki.crl_bundle, trust_bundle=disk_pki.bundle
        )

    def test_sub_ca_only_is_refused(self, disk_pki: h.PKIFiles, spine_pki_rsa: TestPKI) -> None:
        """The old documentation's Sub-CA-only file locks every client out ("unable to get
        certificate CRL" for the Sub CA): it is named and refused when rendering."""
        sub_only = disk_pki.crls[0]
        root_name = spine_pki_rsa.root.certificate.subject.rfc4514_string()
        assert crl_set_gaps(sub_only, disk_pki.bundle) == (root_name,)
        for server in ("nginx", "apache", "haproxy", "tomcat"):
            with pytest.raises(ConfigurationError, match="lacks the CRL of"):
                _render(server=server, crl=sub_only, trust_bundle=disk_pki.bundle)

    def test_crl_from_the_wrong_key(
        self, disk_pki: h.PKIFiles, spine_pki_rsa: TestPKI, tmp_path: Path
    ) -> None:
        """A CRL naming the Sub CA as issuer but signed by another key does not count."""
        import datetime as dt

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization

        now = dt.datetime.now(dt.UTC)
        forged = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(spine_pki_rsa.sub_ca.certificate.subject)
            .last_update(now)
            .next_update(now + dt.timedelta(days=1))
            .sign(spine_pki_rsa.leaf("foreign").private_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        path = tmp_path / "forged.pem"
        path.write_bytes(
            forged.public_bytes(serialization.Encoding.PEM) + disk_pki.crls[1].read_bytes()
        )
        assert crl_set_gaps(path, disk_pki.bundle) == (
            spine_pki_rsa.sub_ca.certificate.subject.rfc4514_string(),
        )

    def test_not_a_crl_file(self, disk_pki: h.PKIFiles, tmp_path: Path) -> None:
        """A file without a PEM CRL, or one that does not parse, is a ConfigurationError."""
        empty = tmp_path / "empty.pem"
        empty.write_text("nothing here")
        with pytest.raises(ConfigurationError, match="no PEM CRL"):
            crl_set_gaps(empty, disk_pki.bundle)
        broken = tmp_path / "broken.pem"
        broken.write_text("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")
        with pytest.raises(ConfigurationError):
            crl_set_gaps(broken, disk_pki.bundle)
        with pytest.raises(ConfigurationError, match="cannot read"):
            crl_set_gaps(tmp_path / "missing.pem", disk_pki.bundle)

    def test_paths_elsewhere_are_not_read(self) -> None:
        """Paths that do not exist here (a config written for another host): no check."""
        assert "ssl_crl /etc/nowhere/crls.pem;" in _render(
            server="nginx", crl="/etc/nowhere/crls.pem"
        )

    def test_pki_init_writes_the_set(self, spine_pki_rsa: TestPKI, tmp_path: Path) -> None:
        """spinepki pki init's crl/crl-set.pem is the complete set for its trust bundle."""
        from spinepki.testpki import CRL_SET, write_pki

        write_pki(spine_pki_rsa, tmp_path)
        assert crl_set_gaps(tmp_path / CRL_SET, tmp_path / "ca/trust-bundle.pem") == ()


class TestRefusals:
    @pytest.mark.parametrize("server", ["apache", "tomcat", "haproxy"])
    def test_gate_is_nginx_only(self, server: str) -> None:
        """Servers without auth_request refuse --gate with a ConfigurationError."""
        with pytest.raises(ConfigurationError, match="auth_request"):
            _render(server=server, gate_url="http://127.0.0.1:9000")

    def test_haproxy_refuses_ocsp(self) -> None:
        """HAProxy cannot check client certificates with OCSP: said, not silently dropped."""
        with pytest.raises(ConfigurationError, match="OCSP"):
            _render(server="haproxy", ocsp=True)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("cert", "/etc/x;y"),
            ("key", "/etc/'k"),
            ("trust_bundle", "/b\n.pem"),
            ("crl", "/c$x"),
            ("upstream", "ftp://x:1"),
            ("upstream", "http://127.0.0.1:8080/path"),
            ("gate_url", "https://127.0.0.1:9000"),
            ("listen", "example.com:443"),
            ("listen", "127.0.0.1:70000"),
            ("server", "iis"),
            ("server_name", "a b"),
        ],
    )
    def test_unsafe_or_unusable_inputs(self, field: str, value: str) -> None:
        """Values that would break out of the file's syntax or cannot work are refused."""
        with pytest.raises(ConfigurationError):
            _render(**{"server": "nginx", field: value})

    def test_listen_forms(self) -> None:
        """ADDR:PORT, [V6]:PORT and PORT parse; the joined forms round-trip."""
        assert Listen.parse("127.0.0.1:8443").joined() == "127.0.0.1:8443"
        assert Listen.parse("[::1]:8443").joined() == "[::1]:8443"
        assert Listen.parse("443").joined() == "443"
        with pytest.raises(ConfigurationError):
            Listen.parse("[::1]8443")

    def test_server_kinds(self) -> None:
        """Every ServerKind renders."""
        for kind in ServerKind:
            assert _render(server=kind)


# -- the servers' own parsers ----------------------------------------------------------

APACHE = shutil.which("apache2") or shutil.which("httpd")
HAPROXY = shutil.which("haproxy")


@pytest.fixture(scope="module")
def disk_pki(spine_pki_rsa: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> h.PKIFiles:
    return h.write_pki_files(spine_pki_rsa, tmp_path_factory.mktemp("servers-pki"))


@pytest.mark.skipif(
    APACHE is None or not Path(APACHE_MODULES_DIR).is_dir(),
    reason="Apache httpd is not installed (optional: apt-get install apache2)",
)
@pytest.mark.parametrize("client_auth", list(ClientAuth), ids=lambda m: m.value)
def test_apache_configtest(disk_pki: h.PKIFiles, tmp_path: Path, client_auth: ClientAuth) -> None:
    """`apache2 -t -f` accepts the export (mod_ssl, headers, proxy, rewrite loaded)."""
    vhost = render_config(
        "apache", cert=disk_pki.provider_chain, key=disk_pki.provider_key,
        trust_bundle=disk_pki.bundle, crl=disk_pki.crl_bundle, ocsp=True,
        client_auth=client_auth, listen=f"127.0.0.1:{h.free_port()}", ssp_fqdns=[SSP],
    )  # fmt: skip
    conf = apache_main_conf(tmp_path, [vhost])
    _accepted_by(APACHE, "-t", "-f", conf)


@pytest.mark.skipif(
    HAPROXY is None, reason="HAProxy is not installed (optional: apt-get install haproxy)"
)
@pytest.mark.parametrize("client_auth", list(ClientAuth), ids=lambda m: m.value)
def test_haproxy_check(disk_pki: h.PKIFiles, tmp_path: Path, client_auth: ClientAuth) -> None:
    """`haproxy -c -f` accepts the export (key beside the crt as `<crt>.key`)."""
    crt = tmp_path / "provider.pem"
    crt.write_bytes(disk_pki.provider_chain.read_bytes())
    Path(f"{crt}.key").write_bytes(disk_pki.provider_key.read_bytes())
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        render_config(
            "haproxy", cert=crt, key=f"{crt}.key", trust_bundle=disk_pki.bundle,
            crl=disk_pki.crl_bundle, client_auth=client_auth,
            listen=f"127.0.0.1:{h.free_port()}", ssp_fqdns=[SSP],
        )
    )  # fmt: skip
    _accepted_by(HAPROXY, "-c", "-f", cfg)


def _accepted_by(server: object, *args: object) -> None:
    """The server's own configuration check exits 0 (its output is the failure message)."""
    result = subprocess.run(
        [str(server), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
