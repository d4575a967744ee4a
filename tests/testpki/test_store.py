"""Writing a test PKI to disk and reading it back."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from spinepki.errors import TestPKIError
from spinepki.testpki import TestPKI, load_pki, write_pki
from spinepki.trust import TrustStore


@pytest.fixture
def written(spine_pki: TestPKI, tmp_path: Path) -> tuple[TestPKI, Path]:
    write_pki(spine_pki, tmp_path)
    return spine_pki, tmp_path


def test_layout_and_manifest(written: tuple[TestPKI, Path]) -> None:
    """Every file the manifest names exists; keys are private; the README warns."""
    pki, root = written
    manifest = json.loads((root / "manifest.json").read_text())
    for entry in manifest["certificates"].values():
        for key in ("cert", "key"):
            assert (root / entry[key]).is_file()
        assert stat.S_IMODE((root / entry["key"]).stat().st_mode) == 0o600
    for crl in manifest["crls"].values():
        assert (root / crl["der"]).is_file()
        assert (root / crl["pem"]).is_file()
    assert "THROWAWAY" in (root / "README.md").read_text()
    assert manifest["certificates"]["revoked"]["revoked"] is True
    assert (
        TrustStore.from_paths(root / manifest["trust_bundle"]).fingerprint()
        == pki.trust_store().fingerprint()
    )


def test_round_trip(written: tuple[TestPKI, Path]) -> None:
    """load_pki gives back the same certificates, chains, revocations and CRL numbers."""
    pki, root = written
    loaded = load_pki(root)
    assert {c.name: c.certificate for c in loaded} == {c.name: c.certificate for c in pki}
    assert loaded.leaf("ssp").chain == (pki.sub_ca.certificate,)
    assert loaded.leaf("foreign").chain == (pki.cas["foreign-sub-ca"].certificate,)
    assert loaded.is_revoked("revoked")
    assert not loaded.is_revoked("ssp")
    assert loaded.crl_numbers == pki.crl_numbers
    assert loaded.reference_time == pki.reference_time


def test_refuses_to_overwrite(written: tuple[TestPKI, Path]) -> None:
    """An existing PKI is not replaced unless asked."""
    pki, root = written
    with pytest.raises(TestPKIError, match="already exists"):
        write_pki(pki, root)
    write_pki(pki, root, overwrite=True)


def test_missing_manifest(tmp_path: Path) -> None:
    """A directory without a manifest is not a test PKI."""
    with pytest.raises(TestPKIError, match=r"manifest\.json is missing"):
        load_pki(tmp_path)


@pytest.mark.parametrize("content", ["{not json", "[]", '{"spinepki_test_pki": 99}'])
def test_bad_manifest(tmp_path: Path, content: str) -> None:
    """Unreadable or foreign manifests are typed errors."""
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(TestPKIError):
        load_pki(tmp_path)


def test_missing_file_is_reported(written: tuple[TestPKI, Path]) -> None:
    """A deleted key file makes the PKI incomplete, and the error says so."""
    _, root = written
    (root / "certs" / "ssp.key.pem").unlink()
    with pytest.raises(TestPKIError, match="incomplete"):
        load_pki(root)


def test_inconsistent_manifest_is_reported(written: tuple[TestPKI, Path]) -> None:
    """A manifest missing a field is a typed error, not a KeyError."""
    _, root = written
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["crl_numbers"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(TestPKIError, match="inconsistent"):
        load_pki(root)


def test_a_file_is_not_a_pki(tmp_path: Path) -> None:
    """A file given as the PKI directory: 'not a directory', not an errno message."""
    file = tmp_path / "notes.txt"
    file.write_text("not a PKI\n")
    with pytest.raises(TestPKIError) as info:
        load_pki(file)
    assert str(info.value) == f"{file}: not a directory (a test PKI is a directory)"
