"""check_server_files: what an exported configuration names is opened and checked first."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from spinepki.errors import (
    CertificateLoadError,
    ConfigurationError,
    CRLParseError,
    InputError,
    KeyLoadError,
    ServerCredentialError,
    SpinePKIError,
    TrustStoreError,
)
from spinepki.serverconfig import (
    DHPARAM_SERVERS,
    ServerKind,
    check_server_files,
    dhparam_pem,
    render_config,
)
from spinepki.serverconfig._files import dh_prime_bits
from spinepki.testpki import TestPKI

#: RFC 7919 appendix A.1, ffdhe2048: the first 128 bits of the prime.
FFDHE2048_HEAD = "0xffffffffffffffffadf85458a2bb4a9a"


def _dh_pem(prime: int, base: int = 2) -> bytes:
    """PEM DH PARAMETERS (PKCS #3) built by hand: cryptography's FFDH API is deprecated."""

    def integer(n: int) -> bytes:
        body = n.to_bytes(n.bit_length() // 8 + 1, "big")
        return b"\x02" + _length(len(body)) + body

    seq = integer(prime) + integer(base)
    der = b"\x30" + _length(len(seq)) + seq
    lines = [base64.b64encode(der)[i : i + 64] for i in range(0, len(base64.b64encode(der)), 64)]
    return (
        b"-----BEGIN DH PARAMETERS-----\n" + b"\n".join(lines) + b"\n-----END DH PARAMETERS-----\n"
    )


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


@pytest.fixture(scope="module")
def pki(spine_pki: TestPKI) -> TestPKI:
    """The session PKI (EC P-256): these tests only read it."""
    return spine_pki


@pytest.fixture
def files(pki: TestPKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The provider's files, relative to the working directory (as an operator types them)."""
    monkeypatch.chdir(tmp_path)
    p = pki.leaf("provider")
    written = {
        "cert": p.chain_pem,
        "key": p.key_pem,
        "trust": pki.trust_store().to_pem(),
        "crl": pki.crl().public_bytes(serialization.Encoding.PEM)
        + pki.root_crl().public_bytes(serialization.Encoding.PEM),
        "dh": dhparam_pem(),
        "ssp": pki.leaf("ssp").chain_pem,
        "ssp-key": pki.leaf("ssp").key_pem,
        "expired": pki.leaf("expired").chain_pem,
        "expired-key": pki.leaf("expired").key_pem,
        "junk": b"junk\n",
    }
    for name, data in written.items():
        Path(f"{name}.pem").write_bytes(data)
    Path("cert.der").write_bytes(p.certificate.public_bytes(serialization.Encoding.DER))
    Path("root.der").write_bytes(pki.root.certificate.public_bytes(serialization.Encoding.DER))
    Path("dir").mkdir()
    return {name: f"{name}.pem" for name in written}


def _check(files: dict[str, str], **over: str | None) -> object:
    args: dict[str, str | None] = {
        "cert": files["cert"],
        "key": files["key"],
        "trust_bundle": files["trust"],
        "crl": files["crl"],
        "dhparam": files["dh"],
    }
    args.update(over)
    return check_server_files(**args)  # type: ignore[arg-type]


def test_good_files_come_back_absolute(files: dict[str, str], pki: TestPKI) -> None:
    """Every path is made absolute against the working directory; the leaf is returned."""
    checked = _check(files)
    for name in ("cert", "key", "trust_bundle", "crl", "dhparam"):
        path = getattr(checked, name)
        assert path.is_absolute()
        assert path == Path.cwd() / Path(path).name
    assert checked.certificate == pki.leaf("provider").certificate  # type: ignore[attr-defined]


def test_a_symlink_is_kept(files: dict[str, str]) -> None:
    """A certificate manager's 'live' symlink stays a symlink (renewals behind it apply)."""
    os.symlink(files["cert"], "live.pem")
    assert _check(files, cert="live.pem").cert.name == "live.pem"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("over", "error", "says"),
    [
        ({"cert": "missing.pem"}, CertificateLoadError, "cannot read"),
        ({"cert": "dir"}, CertificateLoadError, "cannot read"),
        ({"cert": "junk.pem"}, CertificateLoadError, "text without a PEM block"),
        ({"cert": "key.pem"}, CertificateLoadError, "a PEM PRIVATE KEY, not a certificate"),
        ({"cert": "cert.der"}, ConfigurationError, "the server reads PEM"),
        ({"key": "missing.pem"}, KeyLoadError, "cannot read"),
        ({"key": "cert.pem"}, KeyLoadError, "a PEM CERTIFICATE, not a private key"),
        ({"key": "ssp-key.pem"}, ServerCredentialError, "does not match"),
        ({"cert": "expired.pem", "key": "expired-key.pem"}, ServerCredentialError, "expired"),
        ({"trust_bundle": "missing.pem"}, TrustStoreError, "cannot read"),
        ({"trust_bundle": "ssp.pem"}, TrustStoreError, "not a CA certificate"),
        ({"trust_bundle": "junk.pem"}, CertificateLoadError, "text without a PEM block"),
        ({"trust_bundle": "root.der"}, ConfigurationError, "the server reads PEM"),
        ({"crl": "cert.pem"}, CRLParseError, "a PEM CERTIFICATE, not a CRL"),
        ({"crl": "missing.pem"}, CRLParseError, "cannot read"),
        ({"dhparam": "cert.pem"}, InputError, "not PEM DH parameters"),
        ({"dhparam": "dir"}, InputError, "cannot read"),
    ],
)
def test_each_bad_file_is_named(
    files: dict[str, str], over: dict[str, str], error: type[SpinePKIError], says: str
) -> None:
    """Missing, a directory, garbage, the wrong kind, DER, a mismatch: a typed error
    that names the file as given and says what is wrong."""
    with pytest.raises(error) as info:
        _check(files, **over)
    assert says in str(info.value)
    named = next(iter(over.values()))
    assert str(info.value).startswith(named) or named in str(info.value)
    assert _check(files).cert.is_file()  # type: ignore[attr-defined]


def test_a_small_dh_group_is_refused(files: dict[str, str]) -> None:
    """DH parameters below 2048 bits are refused (Logjam)."""
    Path("small.pem").write_bytes(_dh_pem((1 << 1023) + 1155))
    with pytest.raises(InputError, match="a 1024-bit DH group is below the 2048-bit floor"):
        _check(files, dhparam="small.pem")


@given(st.binary(max_size=300))
def test_dh_reader_never_crashes(data: bytes) -> None:
    """Any bytes inside a DH PARAMETERS block: a size, or ValueError."""
    pem = (
        b"-----BEGIN DH PARAMETERS-----\n"
        + base64.b64encode(data)
        + b"\n-----END DH PARAMETERS-----\n"
    )
    with contextlib.suppress(ValueError):
        assert dh_prime_bits(pem) > 0


@pytest.mark.parametrize("name", ["cert", "trust_bundle", "dhparam"])
def test_huge_files_are_not_read(files: dict[str, str], name: str) -> None:
    """A wrong path to a 1 GB file costs a stat, not a read (sparse file: no disk)."""
    with open("huge.pem", "wb") as f:
        f.truncate(1024**3)
    with pytest.raises(SpinePKIError, match="over the"):
        _check(files, **{name: "huge.pem"})


def test_an_encrypted_key_needs_its_password(files: dict[str, str], pki: TestPKI) -> None:
    """The exports name no password file: an encrypted key is refused without one."""
    key = pki.leaf("provider").private_key
    Path("enc.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    with pytest.raises(KeyLoadError):
        _check(files, key="enc.pem")
    assert _check(files, key="enc.pem", password="pw")  # type: ignore[arg-type]


def test_time_is_an_input(files: dict[str, str], pki: TestPKI) -> None:
    """`at` decides validity: the provider certificate is expired ten years on."""
    later = pki.reference_time + dt.timedelta(days=3650)
    with pytest.raises(ServerCredentialError, match="expired"):
        check_server_files(
            cert=files["cert"], key=files["key"], trust_bundle=files["trust"], at=later
        )


@pytest.mark.parametrize("kind", list(ServerKind))
def test_dhparam_servers_are_the_ones_that_name_the_file(kind: ServerKind) -> None:
    """DHPARAM_SERVERS lists exactly the exports that reference a DH parameters file."""
    text = render_config(
        kind,
        cert="/etc/p.pem",
        key="/etc/p.key",
        trust_bundle="/etc/b.pem",
        dhparam="/etc/spinepki-dh.pem",
        ssp_fqdns=["msg.int.spine2.ncrs.nhs.uk"],
    )
    assert ("/etc/spinepki-dh.pem" in text) is (kind in DHPARAM_SERVERS)


def test_dhparam_pem_is_ffdhe2048() -> None:
    """The bundled group is RFC 7919's ffdhe2048 (2048-bit prime, generator 2)."""
    pem = dhparam_pem()
    assert dh_prime_bits(pem) == 2048
    der = base64.b64decode(b"".join(pem.split(b"-----")[2].split()))
    assert "0x" + der[9 : 9 + 16].hex() == FFDHE2048_HEAD
