"""`spinepki cert check` and `spinepki cert show`, in-process with CliRunner."""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from spinepki_cli.main import cli

from spinepki.policy import ClientAuth
from spinepki.testpki import KeyType, TestPKI
from spinepki.testpki._tlsserver import TLSTestServer
from spinepki.tls import server_context
from tests._helpers import shared
from tests.cli._helpers import Ran, run

AT = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
AT_TEXT = "2024-03-01T12:00:00"
SPINE_EXAMPLE = (
    Path(__file__).resolve().parents[2] / "testdata" / "spine" / "int.api.service.nhs.uk.pem"
)


@pytest.fixture(scope="module")
def pki() -> Iterator[TestPKI]:
    """An EC test PKI around AT."""
    with shared(TestPKI.create(key_type=KeyType.EC_P256, at=AT)) as pki:
        yield pki


@pytest.fixture
def files(pki: TestPKI, runner: CliRunner) -> dict[str, str]:
    """The PKI's certificates, trust and CRL written into the runner's working directory."""
    written = {}
    for name in ("ssp", "revoked", "expired", "foreign", "wrong-fqdn"):
        Path(f"{name}.pem").write_bytes(pki.leaf(name).chain_pem)
        written[name] = f"{name}.pem"
    Path("leaf-only.pem").write_bytes(pki.leaf("ssp").cert_pem)
    Path("sub.pem").write_bytes(pki.sub_ca.cert_pem)
    Path("root.pem").write_bytes(pki.root.cert_pem)
    Path("sub.crl").write_bytes(pki.crl().public_bytes(serialization.Encoding.DER))
    Path("root.crl").write_bytes(pki.root_crl().public_bytes(serialization.Encoding.PEM))
    Path("junk.pem").write_bytes(b"junk")
    return written


def _check(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        cli,
        [
            "cert",
            "check",
            *args,
            "--trust",
            "root.pem",
            "--crl",
            "sub.crl",
            "--crl",
            "root.crl",
            "--at",
            AT_TEXT,
        ],
    )
    return result.exit_code, result.output


class TestCheck:
    def test_valid_certificate_exits_0(
        self, runner: CliRunner, files: dict[str, str], pki: TestPKI
    ) -> None:
        """The SSP certificate passes every check, with ticks, and exits 0."""
        code, out = _check(runner, files["ssp"], "--fqdn", pki.ssp_fqdn)
        assert code == 0, out
        assert "✓ chain" in out
        assert "✓ FQDN" in out
        assert "✓ revocation" in out
        assert "good (CRL #" in out
        assert out.rstrip().endswith("VALID")

    def test_chain_option(self, runner: CliRunner, files: dict[str, str], pki: TestPKI) -> None:
        """--chain supplies the intermediates separately."""
        code, out = _check(runner, "leaf-only.pem", "--chain", "sub.pem", "--fqdn", pki.ssp_fqdn)
        assert code == 0, out

    @pytest.mark.parametrize(
        ("name", "code_text", "row"),
        [
            ("revoked", "revoked", "✗ revocation"),
            ("expired", "expired", "✗ validity"),
            ("foreign", "untrusted", "✗ chain"),
            ("wrong-fqdn", "fqdn_mismatch", "✗ FQDN"),
        ],
    )
    def test_invalid_certificates_exit_1(
        self,
        runner: CliRunner,
        files: dict[str, str],
        pki: TestPKI,
        name: str,
        code_text: str,
        row: str,
    ) -> None:
        """Each failure shows a cross on its row, the reason, and the code; exit 1."""
        code, out = _check(runner, files[name], "--fqdn", pki.ssp_fqdn)
        assert code == 1, out
        assert row in out
        assert f"INVALID: {code_text}" in out

    def test_json_output(self, runner: CliRunner, files: dict[str, str], pki: TestPKI) -> None:
        """--json prints the result with codes, the checks and the revocation evidence."""
        code, out = _check(runner, files["revoked"], "--fqdn", pki.ssp_fqdn, "--json")
        assert code == 1
        document = json.loads(out)
        assert document["summary"] == {"total": 1, "valid": 0, "invalid": 1}
        (data,) = document["certificates"]
        assert data["certificate"] == files["revoked"]
        assert data["valid"] is False
        assert [f["code"] for f in data["failures"]] == ["revoked"]
        assert data["revocation"]["evidence"]["source"] == "crl"
        assert {c["check"]: c["status"] for c in data["checks"]}["revocation"] == "fail"

    def test_without_fqdn_the_name_is_shown_not_compared(
        self, runner: CliRunner, files: dict[str, str]
    ) -> None:
        """No --fqdn: the FQDN row is skipped with the name found."""
        code, out = _check(runner, files["wrong-fqdn"])
        assert code == 0, out
        assert "- FQDN" in out
        assert "rogue.example.nhs.uk" in out
        assert "not compared" in out

    @pytest.mark.parametrize(
        ("options", "code", "says"),
        [
            (("--require-policy", "1.2.826.0.1275.101.0.3.1.1"), 0, "✓ policy"),
            (("--require-policy", "1.2.3.4"), 1, "✗ policy"),
            (("--purpose", "server"), 0, "serverAuth present"),
            (("--profile", "strict"), 1, "untrusted"),
        ],
    )
    def test_policy_and_purpose_and_profile(
        self,
        runner: CliRunner,
        files: dict[str, str],
        options: tuple[str, str],
        code: int,
        says: str,
    ) -> None:
        """--require-policy, --purpose server and --profile strict change the verdict."""
        exit_code, out = _check(runner, files["ssp"], *options)
        assert exit_code == code, out
        assert says in out

    def test_real_spine_certificate(self, runner: CliRunner) -> None:
        """The real INT endpoint certificate checks out against --env int in 2023, not live."""
        args = [
            "cert",
            "check",
            str(SPINE_EXAMPLE),
            "--fqdn",
            "int.api.service.nhs.uk",
            "--at",
            "2023-06-01",
        ]
        ok = runner.invoke(cli, [*args, "--env", "int", "--revocation", "disabled"])
        assert ok.exit_code == 0, ok.output
        assert "not checked (--revocation disabled)" in ok.output
        live = runner.invoke(cli, [*args, "--env", "live", "--revocation", "offline"])
        assert live.exit_code == 1
        assert "only done once the path is trusted" in live.output
        unknown = runner.invoke(cli, [*args, "--env", "int", "--revocation", "offline"])
        assert unknown.exit_code == 1
        assert "revocation_unknown" in unknown.output

    def test_soft_fail_is_reported(self, runner: CliRunner) -> None:
        """Soft-fail accepts a certificate without evidence and says so."""
        result = runner.invoke(
            cli,
            [
                "cert",
                "check",
                str(SPINE_EXAMPLE),
                "--env",
                "int",
                "--at",
                "2023-06-01",
                "--revocation",
                "soft-fail",
            ],
            env={"HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""},
        )
        assert result.exit_code == 0, result.output
        assert "accepted under soft-fail" in result.output

    @pytest.mark.parametrize(
        "args",
        [
            ["ssp.pem"],  # no trust
            ["ssp.pem", "--env", "int", "--trust", "root.pem"],  # both
            ["missing.pem", "--trust", "root.pem"],  # unreadable certificate
            ["junk.pem", "--trust", "root.pem"],  # not a certificate
            ["ssp.pem", "--trust", "root.pem", "--crl", "junk.pem"],  # not a CRL
            ["ssp.pem", "--trust", "root.pem", "--crl", "missing.crl"],  # no CRL file
            ["ssp.pem", "--trust", "root.pem", "--at", "yesterday"],  # bad time
            ["ssp.pem", "--trust", "root.pem", "--require-policy", "not-an-oid"],
            ["ssp.pem", "--trust", "ssp.pem"],  # trust file with a non-CA
        ],
    )
    def test_usage_and_input_errors_exit_2(
        self, runner: CliRunner, files: dict[str, str], args: list[str]
    ) -> None:
        """Usage and input errors exit 2 with a message, never a traceback."""
        result = runner.invoke(cli, ["cert", "check", *args])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output


class TestShow:
    def test_show_real_certificate(self, runner: CliRunner) -> None:
        """show prints subject, FQDN from the CN, days left, EKU, policy, CRL and fingerprints."""
        result = runner.invoke(cli, ["cert", "show", str(SPINE_EXAMPLE), "--at", "2024-10-12"])
        assert result.exit_code == 0, result.output
        for shown in (
            "int.api.service.nhs.uk (from the subject CN; no subjectAltName)",
            "(valid, 10 days left)",
            "serverAuth, clientAuth",
            "1.2.826.0.1275.101.0.3.1.1",
            "http://crl.nhs.uk/int/1c/crlc7.crl",
            "SHA-256:",
            "SHA-1:",
        ):
            assert shown in result.output

    def test_show_json_every_certificate(self, runner: CliRunner, files: dict[str, str]) -> None:
        """--json lists every certificate in the file with its URLs."""
        result = runner.invoke(cli, ["cert", "show", files["ssp"], "--json", "--at", AT_TEXT])
        assert result.exit_code == 0, result.output
        certs = json.loads(result.output)["certificates"]
        assert len(certs) == 2
        assert certs[0]["fqdn_source"] == "cn"
        assert certs[0]["ocsp_urls"]
        assert certs[0]["crl_urls"]
        assert certs[1]["is_ca"] is True
        human = runner.invoke(cli, ["cert", "show", files["ssp"]])
        assert human.exit_code == 0
        assert "Issuer:" in human.output

    def test_show_unreadable_exits_2(self, runner: CliRunner, files: dict[str, str]) -> None:
        """A file that is not a certificate exits 2."""
        assert runner.invoke(cli, ["cert", "show", "junk.pem"]).exit_code == 2

    def test_show_malformed_extension_exits_2(self, runner: CliRunner, pki: TestPKI) -> None:
        """A certificate with an undecodable extension exits 2 with a message."""
        from cryptography import x509
        from cryptography.x509.oid import ExtensionOID

        from tests.validation.conftest import make_cert

        bad = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x01")
        cert, _ = make_cert(pki.sub_ca, extra=(bad,))
        Path("bad.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        result = runner.invoke(cli, ["cert", "show", "bad.pem"])
        assert result.exit_code == 2
        assert "malformed" in result.output


# -- several inputs, stdin, quiet, the live chain (issue 14) ------------------------------


def _run(*args: str, stdin: bytes | None = None) -> Ran:
    return run(*args, input=stdin)


class TestSeveral:
    def test_summary_and_exit_1_when_any_is_invalid(
        self, runner: CliRunner, files: dict[str, str]
    ) -> None:
        """Three certificates, one revoked: each block, a summary line, exit 1."""
        ran = _run("cert", "check", files["ssp"], "leaf-only.pem", files["revoked"],
                   "--chain", "sub.pem", "--trust", "root.pem", "--crl", "sub.crl",
                   "--crl", "root.crl", "--at", AT_TEXT)  # fmt: skip
        assert ran.exit_code == 1, str(ran)
        assert ran.stdout.count("Certificate  ") == 3
        assert ran.stdout.rstrip().endswith("3 certificates: 2 valid, 1 invalid")
        assert "(revoked.pem)" in ran.stdout

    def test_all_valid_exit_0(self, runner: CliRunner, files: dict[str, str]) -> None:
        """Two valid certificates: exit 0 and '2 valid, 0 invalid'."""
        ran = _run("cert", "check", files["ssp"], "leaf-only.pem", "--chain", "sub.pem",
                   "--trust", "root.pem", "--crl", "sub.crl", "--crl", "root.crl",
                   "--at", AT_TEXT)  # fmt: skip
        assert ran.exit_code == 0, str(ran)
        assert "2 certificates: 2 valid, 0 invalid" in ran.stdout


class TestSubCAStatus:
    def test_without_the_root_crl_the_sub_ca_is_unknown(
        self, runner: CliRunner, files: dict[str, str]
    ) -> None:
        """Only the Sub CA's CRL: the Sub CA's status is unknown, which is refused."""
        ran = _run("cert", "check", files["ssp"], "--trust", "root.pem", "--crl", "sub.crl",
                   "--at", AT_TEXT)  # fmt: skip
        assert ran.exit_code == 1, str(ran)
        assert "the issuing CA's revocation status unknown (offline)" in ran.stdout
        assert "INVALID: revocation_unknown" in ran.stdout

    def test_leaf_only(self, runner: CliRunner, files: dict[str, str]) -> None:
        """--leaf-only: the certificate's own CRL is enough."""
        ran = _run("cert", "check", files["ssp"], "--trust", "root.pem", "--crl", "sub.crl",
                   "--leaf-only", "--at", AT_TEXT)  # fmt: skip
        assert ran.exit_code == 0, str(ran)

    def test_one_pem_file_with_both_crls(
        self, runner: CliRunner, files: dict[str, str], pki: TestPKI
    ) -> None:
        """A PEM file holding the Sub CA's and the root's CRLs (crl-set.pem) is both."""
        Path("set.pem").write_bytes(
            pki.crl().public_bytes(serialization.Encoding.PEM)
            + pki.root_crl().public_bytes(serialization.Encoding.PEM)
        )
        ran = _run("cert", "check", files["ssp"], "--trust", "root.pem", "--crl", "set.pem",
                   "--at", AT_TEXT)  # fmt: skip
        assert ran.exit_code == 0, str(ran)

    def test_newest_crl_wins_in_either_order(
        self, runner: CliRunner, files: dict[str, str], pki: TestPKI
    ) -> None:
        """--crl old --crl new and --crl new --crl old: the newer CRL's listing decides."""
        serial = pki.leaf("ssp").certificate.serial_number
        older = pki.crl(number=1)
        newer = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(older.issuer)
            .last_update(older.last_update_utc)
            .next_update(older.next_update_utc)  # type: ignore[arg-type]
            .add_extension(x509.CRLNumber(99), critical=False)
            .add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(older.last_update_utc)
                .build()
            )
            .sign(pki.sub_ca.private_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        Path("older.crl").write_bytes(older.public_bytes(serialization.Encoding.DER))
        Path("newer.crl").write_bytes(newer.public_bytes(serialization.Encoding.DER))
        for first, second in (("older.crl", "newer.crl"), ("newer.crl", "older.crl")):
            ran = _run("cert", "check", files["ssp"], "--trust", "root.pem", "--crl", first,
                       "--crl", second, "--crl", "root.crl", "--at", AT_TEXT)  # fmt: skip
            assert ran.exit_code == 1, str(ran)
            assert "INVALID: revoked" in ran.stdout

    def test_json_lists_each_with_a_summary(self, runner: CliRunner, files: dict[str, str]) -> None:
        """--json: one document, every result in order, and the counts."""
        ran = _run("cert", "check", files["ssp"], files["expired"], "--trust", "root.pem",
                   "--crl", "sub.crl", "--crl", "root.crl", "--at", AT_TEXT, "--json")  # fmt: skip
        document = json.loads(ran.stdout)
        assert [c["certificate"] for c in document["certificates"]] == ["ssp.pem", "expired.pem"]
        assert [c["valid"] for c in document["certificates"]] == [True, False]
        assert document["summary"] == {"total": 2, "valid": 1, "invalid": 1}
        assert ran.exit_code == 1

    def test_nothing_is_checked_until_every_input_loads(
        self, runner: CliRunner, files: dict[str, str]
    ) -> None:
        """A bad third input: no result for the first two, just the error."""
        ran = _run("cert", "check", files["ssp"], files["revoked"], "junk.pem",
                   "--trust", "root.pem", "--crl", "sub.crl", "--crl", "root.crl",
                   "--at", AT_TEXT)  # fmt: skip
        assert ran.exit_code == 2
        assert ran.stdout == ""
        assert ran.error_lines[0].startswith("Error: junk.pem: text without a PEM block")

    def test_show_several_with_sources(self, runner: CliRunner, files: dict[str, str]) -> None:
        """cert show A B: every certificate, its source, and a summary line."""
        ran = _run("cert", "show", files["ssp"], "root.pem", "--at", AT_TEXT)
        assert ran.exit_code == 0, str(ran)
        assert ran.stdout.count("Source:") == 3
        assert ran.stdout.rstrip().endswith("3 certificates from 2 inputs")


class TestRevocationUnknownLine:
    def test_cause_url_and_mode_once(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A dead CRL/OCSP responder: one failure line with mode, URLs and the short
        cause, printed once; no urllib3 text, no '...'."""
        monkeypatch.chdir(tmp_path)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        dead = TestPKI.create(key_type=KeyType.EC_P256, base_url=base)
        Path("ssp.pem").write_bytes(dead.leaf("ssp").chain_pem)
        Path("trust.pem").write_bytes(dead.trust_store().to_pem())
        ran = run("cert", "check", "ssp.pem", "--trust", "trust.pem",
                  env={"NO_PROXY": "*", "no_proxy": "*"})  # fmt: skip
        assert ran.exit_code == 1
        expected = (
            f"    revocation status unknown (hard-fail): {base}/crl/sub-ca.crl: request failed: "
            f"connection refused; {base}/ocsp: request failed: connection refused"
        )
        assert expected in ran.stdout.splitlines()
        # Once per source and certificate, not twice over: the leaf's two sources, then the
        # Sub CA's (the root's CRL, and the OCSP URL's remembered failure).
        assert ran.stdout.count("connection refused") == 4
        assert f"{base}/crl/root.crl: request failed: connection refused" in ran.stdout
        assert "HTTPConnection" not in ran.stdout
        assert "..." not in ran.stdout
        assert "✗ revocation unknown without evidence" in ran.stdout


class TestShowFields:
    def test_the_fields_openssl_users_look_for(
        self, runner: CliRunner, files: dict[str, str], pki: TestPKI
    ) -> None:
        """Key usage, EKU, SAN, SKI/AKI, public key type and size, two fingerprints."""
        ran = _run("cert", "show", "sub.pem", "--at", AT_TEXT)
        assert ran.exit_code == 0, str(ran)
        rows = dict(line.split(":", 1) for line in ran.stdout.splitlines() if ":" in line)
        rows = {k.strip(): v.strip() for k, v in rows.items()}
        assert rows["Key usage"] == "keyCertSign, cRLSign"
        assert rows["Public key"] == "EC secp256r1 (256 bits)"
        assert rows["SAN"] == "-"
        assert len(rows["SKI"].split(":")) == 20
        assert len(rows["AKI"].split(":")) == 20
        sha1, sha256 = rows["SHA-1"], rows["SHA-256"]
        assert len(sha1.split(":")) == 20
        assert len(sha256.split(":")) == 32
        assert sha1 == sha1.upper()  # one format for both

    def test_format_pem_round_trips(
        self, runner: CliRunner, files: dict[str, str], pki: TestPKI
    ) -> None:
        """--format pem prints the certificates themselves: DER in, PEM out, same certificate."""
        Path("ssp.der").write_bytes(
            pki.leaf("ssp").certificate.public_bytes(serialization.Encoding.DER)
        )
        ran = _run("cert", "show", "ssp.der", "--format", "pem")
        assert ran.exit_code == 0, str(ran)
        assert ran.stdout.encode() == pki.leaf("ssp").cert_pem

    def test_format_json_equals_json(self, runner: CliRunner, files: dict[str, str]) -> None:
        """--format json is --json."""
        a = _run("cert", "show", files["ssp"], "--format", "json", "--at", AT_TEXT).stdout
        b = _run("cert", "show", files["ssp"], "--json", "--at", AT_TEXT).stdout
        assert a == b
        assert json.loads(a)["certificates"][0]["key_usage"] == ["digitalSignature"]


@pytest.fixture
def provider_server(pki: TestPKI) -> Iterator[int]:
    """A mutual-TLS provider on 127.0.0.1 (server_context, require): yields its port."""
    provider = pki.leaf("provider")
    ctx = server_context(
        provider.chain_pem,
        provider.key_pem,
        pki.trust_store(),
        client_auth=ClientAuth.REQUIRE,
        at=AT,
    )
    with TLSTestServer(ctx) as server:
        yield int(server.address[1])


@pytest.mark.network
class TestLiveChain:
    def test_show_a_live_chain(self, runner: CliRunner, provider_server: int, pki: TestPKI) -> None:
        """cert show https://127.0.0.1:PORT shows the provider leaf and its Sub CA."""
        ran = _run("cert", "show", f"https://127.0.0.1:{provider_server}", "--json", "--at",
                   AT_TEXT)  # fmt: skip
        assert ran.exit_code == 0, str(ran)
        shown = json.loads(ran.stdout)["certificates"]
        assert [c["subject"] for c in shown] == [
            pki.leaf("provider").certificate.subject.rfc4514_string(),
            pki.sub_ca.certificate.subject.rfc4514_string(),
        ]
        pem = _run("cert", "show", f"https://127.0.0.1:{provider_server}", "--format", "pem")
        assert pem.stdout.encode() == pki.leaf("provider").cert_pem + pki.sub_ca.cert_pem

    def test_check_a_live_chain(
        self, runner: CliRunner, files: dict[str, str], provider_server: int, pki: TestPKI
    ) -> None:
        """cert check https://...: validated for serverAuth, against the URL's host by default."""
        url = f"https://127.0.0.1:{provider_server}"
        common = ("--trust", "root.pem", "--crl", "sub.crl", "--crl", "root.crl", "--at", AT_TEXT)
        named = _run("cert", "check", url, *common, "--fqdn", pki.provider_fqdn)
        assert named.exit_code == 0, str(named)
        assert "purpose server" in named.stdout
        assert "serverAuth present" in named.stdout
        by_host = _run("cert", "check", url, *common)
        assert by_host.exit_code == 1  # the certificate names the provider, not 127.0.0.1
        assert "fqdn_mismatch" in by_host.stdout


@pytest.fixture(scope="module")
def rfc_pki() -> TestPKI:
    """The module's PKI plus an RFC 5280 hierarchy (critical basicConstraints) and a leaf
    with no extKeyUsage under it, and a wildcard Spine leaf."""
    pki = TestPKI.create(key_type=KeyType.EC_P256, at=AT)
    critical = [
        x509.Extension(
            x509.BasicConstraints.oid, True, x509.BasicConstraints(ca=True, path_length=None)
        )
    ]
    pki.issue_ca("rfc-root", parent=None, extensions=critical)
    pki.issue_ca("rfc-sub", parent="rfc-root", extensions=critical)
    pki.issue(
        "no-eku", fqdn="app.example.org", issuer="rfc-sub", san=True, omit=[x509.ExtendedKeyUsage]
    )
    pki.issue("wild", fqdn="*.spine2.ncrs.nhs.uk")
    return pki


class TestGeneralProfileOptions:
    """`cert check --profile general --purpose any` and the other general-profile knobs."""

    @pytest.fixture
    def written(self, rfc_pki: TestPKI, runner: CliRunner) -> None:
        for name in ("rfc-root", "sub-ca", "root"):
            Path(f"{name}.pem").write_bytes(rfc_pki.get(name).cert_pem)
        for name in ("no-eku", "ssp", "wild"):
            Path(f"{name}.pem").write_bytes(rfc_pki.leaf(name).chain_pem)

    def _run(self, runner: CliRunner, *args: str) -> tuple[int, str]:
        result = runner.invoke(
            cli, ["cert", "check", *args, "--revocation", "disabled", "--at", AT_TEXT]
        )
        # stdout alone: the revocation-disabled warning goes to stderr.
        return result.exit_code, result.stdout

    @pytest.mark.usefixtures("written")
    def test_general_profile_and_any_purpose(self, runner: CliRunner) -> None:
        """A leaf with no EKU under an RFC 5280 root: valid with --profile general (any
        purpose, or clientAuth implied by absence), refused by the default spine profile."""
        base = ["no-eku.pem", "--trust", "rfc-root.pem"]
        code, out = self._run(runner, *base, "--profile", "general", "--purpose", "any")
        assert code == 0, out
        assert "- purpose    not checked (--purpose any)" in out
        assert "profile general, purpose any, depth 8" in out
        code, out = self._run(runner, *base, "--profile", "general")
        assert code == 0, out
        assert "no extKeyUsage: any purpose" in out
        code, out = self._run(runner, *base)
        assert code == 1
        assert "wrong_purpose" in out

    @pytest.mark.usefixtures("written")
    def test_depth_key_usage_and_wildcards(self, runner: CliRunner) -> None:
        """--max-depth, --require-key-usage and --allow-wildcard reach the validator."""
        base = ["ssp.pem", "--trust", "root.pem"]
        assert self._run(runner, *base)[0] == 0
        code, out = self._run(runner, *base, "--max-depth", "0")
        assert code == 1
        assert "chain_too_long" in out
        code, out = self._run(runner, *base, "--require-key-usage", "digital_signature")
        assert code == 0, out
        assert "keyUsage digital_signature asserted" in out
        code, out = self._run(runner, *base, "--require-key-usage", "key_encipherment")
        assert code == 1
        assert "wrong_purpose" in out
        assert self._run(runner, *base, "--max-depth", "17")[0] == 2
        wild = ["wild.pem", "--trust", "root.pem", "--fqdn", "msg.spine2.ncrs.nhs.uk"]
        assert self._run(runner, *wild)[0] == 1
        assert self._run(runner, *wild, "--allow-wildcard")[0] == 0

    @pytest.mark.usefixtures("written")
    def test_partial_chain(self, runner: CliRunner) -> None:
        """--partial-chain trusts the Sub CA alone; without it, or with --env, it is a
        usage or configuration error (exit 2)."""
        code, out = self._run(runner, "ssp.pem", "--trust", "sub-ca.pem", "--partial-chain")
        assert code == 0, out
        assert "chains to CN=spinepki Test Level 1C" in out
        refused = runner.invoke(cli, ["cert", "check", "ssp.pem", "--trust", "sub-ca.pem"])
        assert refused.exit_code == 2
        assert "partial_chain" in refused.output
        assert self._run(runner, "ssp.pem", "--env", "int", "--partial-chain")[0] == 2

    @pytest.mark.usefixtures("written")
    def test_json_reports_the_knobs(self, runner: CliRunner) -> None:
        """--json carries the profile, purpose, depth and key usage asked for."""
        code, out = self._run(
            runner,
            "no-eku.pem",
            "--trust",
            "rfc-root.pem",
            "--profile",
            "general",
            "--max-depth",
            "5",
            "--require-key-usage",
            "digital_signature",
            "--json",
        )
        assert code == 0, out
        (data,) = json.loads(out)["certificates"]
        knobs = (data["profile"], data["purpose"], data["max_chain_depth"])
        assert knobs == ("general", "client", 5)
        assert data["required_key_usage"] == ["digital_signature"]
