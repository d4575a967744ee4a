"""`spinepki tls config`: its inputs are opened and checked, its paths are absolute, and
the DH parameters live beside the configuration, not inside the installed package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spinepki.serverconfig import dhparam_pem
from spinepki.testpki import TestPKI, write_pki
from tests.cli._helpers import run
from tests.serverconfig import _helpers as h

PROVIDER = (
    "--cert", "pki/certs/provider.chain.pem", "--key", "pki/certs/provider.key.pem",
    "--fqdn", "msg.dev.spine2.ncrs.nhs.uk",
)  # fmt: skip
TRUST = ("--trust", "pki/ca/trust-bundle.pem")


@pytest.fixture(scope="module")
def pki(spine_pki: TestPKI) -> TestPKI:
    """The session PKI (EC P-256): these tests only read it."""
    return spine_pki


@pytest.fixture
def here(pki: TestPKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_pki(pki, tmp_path / "pki")
    (tmp_path / "out").mkdir()
    return tmp_path


def _paths(text: str) -> list[str]:
    """Every file path the nginx configuration names."""
    names = ("ssl_certificate", "ssl_certificate_key", "ssl_client_certificate", "ssl_crl",
             "ssl_dhparam")  # fmt: skip
    return re.findall(rf"^\s*(?:{'|'.join(names)})\s+(\S+);", text, flags=re.MULTILINE)


def test_relative_inputs_become_absolute(here: Path) -> None:
    """Relative --cert/--key/--trust/--crl are written as absolute paths."""
    ran = run("tls", "config", "nginx", *PROVIDER, *TRUST, "--crl", "pki/crl/crl-set.pem")
    assert ran.exit_code == 0, str(ran)
    paths = _paths(ran.stdout)
    assert len(paths) == 5
    assert all(Path(p).is_absolute() for p in paths), paths
    assert f"ssl_certificate     {here}/pki/certs/provider.chain.pem;" in ran.stdout


def test_dhparam_is_written_beside_the_output(here: Path) -> None:
    """-o out/x.conf: ffdhe2048.pem is written to out/ and named by absolute path."""
    ran = run("tls", "config", "nginx", *PROVIDER, *TRUST, "-o", "out/x.conf")
    assert ran.exit_code == 0, str(ran)
    dh = here / "out" / "ffdhe2048.pem"
    assert dh.read_bytes() == dhparam_pem()
    text = (here / "out" / "x.conf").read_text()
    assert f"ssl_dhparam {dh};" in text
    assert "site-packages" not in text
    assert f"wrote the RFC 7919 ffdhe2048 DH parameters to {dh}" in ran.stderr


def test_own_dhparam_is_checked_and_named(here: Path) -> None:
    """--dhparam FILE: checked, named, and nothing of spinepki's is written."""
    (here / "my-dh.pem").write_bytes(dhparam_pem())
    ran = run("tls", "config", "haproxy", *PROVIDER, *TRUST, "--dhparam", "my-dh.pem")
    assert ran.exit_code == 0, str(ran)
    assert f"ssl-dh-param-file {here}/my-dh.pem" in ran.stdout
    assert not (here / "ffdhe2048.pem").exists()
    bad = run("tls", "config", "haproxy", *PROVIDER, *TRUST, "--dhparam", "pki/certs/ssp.pem")
    assert bad.exit_code == 2
    assert bad.error_lines[0].startswith("Error: pki/certs/ssp.pem: not PEM DH parameters")


def test_tomcat_needs_no_dhparam_file(here: Path) -> None:
    """Tomcat's JSSE negotiates RFC 7919 groups itself: no file is written."""
    ran = run("tls", "config", "tomcat", *PROVIDER, *TRUST, "-o", "out/server.xml")
    assert ran.exit_code == 0, str(ran)
    assert not (here / "out" / "ffdhe2048.pem").exists()


def test_env_bundle_and_trust_bundle_alias(here: Path) -> None:
    """--env writes the Spine bundle beside -o; --trust-bundle still works (hidden)."""
    env = run("tls", "config", "apache", *PROVIDER, "--env", "int", "-o", "out/a.conf")
    assert env.exit_code == 0, str(env)
    bundle = here / "out" / "spine-int-ca.pem"
    assert f'SSLCACertificateFile "{bundle}"' in (here / "out" / "a.conf").read_text()
    old = run("tls", "config", "apache", *PROVIDER, "--trust-bundle", "pki/ca/trust-bundle.pem")
    assert old.exit_code == 0, str(old)


def test_nothing_is_written_when_a_check_fails(here: Path) -> None:
    """A bad key: exit 2, no configuration, no DH file, no bundle."""
    ran = run("tls", "config", "nginx", "--cert", "pki/certs/provider.chain.pem", "--key",
              "pki/certs/ssp.key.pem", "--env", "live", "-o", "out/x.conf")  # fmt: skip
    assert ran.exit_code == 2
    assert list((here / "out").iterdir()) == []


def test_no_check_files_for_another_machine(here: Path) -> None:
    """--no-check-files: absolute paths as given, unopened."""
    ran = run("tls", "config", "nginx", "--cert", "/etc/spine/p.pem", "--key", "/etc/spine/p.key",
              "--trust", "/etc/spine/int.pem", "--fqdn", "msg.int.spine2.ncrs.nhs.uk",
              "--no-check-files")  # fmt: skip
    assert ran.exit_code == 0, str(ran)
    assert "ssl_certificate     /etc/spine/p.pem;" in ran.stdout


@pytest.mark.network
def test_nginx_accepts_the_export_from_another_directory(here: Path) -> None:
    """nginx -t, run with its own prefix, finds every file the export names."""
    nginx = h.find_nginx()
    if nginx is None:  # pragma: no cover - make test installs nginx (make system-deps)
        pytest.skip("nginx is not installed (make system-deps installs it)")
    port = h.free_port()
    ran = run("tls", "config", "nginx", *PROVIDER, *TRUST, "--crl", "pki/crl/crl-set.pem",
              "--listen", f"127.0.0.1:{port}", "-o", "out/spinepki.conf")  # fmt: skip
    assert ran.exit_code == 0, str(ran)
    prefix = here / "nginx-prefix"
    conf = h.nginx_test_config(prefix, (here / "out" / "spinepki.conf").read_text())
    checked = h.nginx_check(nginx, conf)
    assert checked.returncode == 0, checked.stderr
