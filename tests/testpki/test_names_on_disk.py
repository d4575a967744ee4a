"""Names and URLs that go into the test PKI's files and certificates are checked first.

``spinepki pki issue ./pki ../../escape`` wrote a key two directories up; a malformed
FQDN or base URL ended up in every certificate. Both are refused where they enter.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinepki.errors import ConfigurationError, TestPKIError
from spinepki.testpki import KeyType, TestPKI, _builder, load_pki, write_pki
from tests._helpers import fresh


@pytest.fixture(scope="module")
def pki(spine_pki: TestPKI) -> TestPKI:
    """The session PKI (EC P-256): a test that issues takes a fresh() copy."""
    return spine_pki


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


class TestIssue:
    @pytest.mark.parametrize("name", ["../../escape", "/srv/abs", "a/b", "x.key", "..", ""])
    def test_a_path_is_not_a_name(self, pki: TestPKI, name: str) -> None:
        """A name with a separator, dot or nothing: ConfigurationError, nothing issued."""
        before = set(pki.leaves)
        with pytest.raises(ConfigurationError):
            pki.issue(name, fqdn="x.example.nhs.uk")
        assert set(pki.leaves) == before

    @pytest.mark.parametrize("fqdn", ["bad fqdn!!", "a..b", "", "x.nhs.uk."])
    def test_a_malformed_fqdn_is_refused(self, pki: TestPKI, fqdn: str) -> None:
        """The FQDN goes into the subject CN: it must be a host name."""
        with pytest.raises(ConfigurationError):
            pki.issue("fine", fqdn=fqdn)

    def test_a_wildcard_fqdn_is_allowed(self, pki: TestPKI) -> None:
        """Wildcard certificates can be made (to test that a validator refuses them)."""
        issued = fresh(pki).issue("wild", fqdn="*.example.nhs.uk", san=True)
        assert issued.fqdn == "*.example.nhs.uk"

    @settings(
        max_examples=60,
        deadline=None,  # writes a PKI per example; the CPU is shared
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=24))
    def test_whatever_is_accepted_stays_inside(self, tmp_path: Path, name: str) -> None:
        """Any name: refused, or written under certs/ of the PKI directory and nowhere else."""
        root = tmp_path / "outer" / "pki"
        local = TestPKI.create(key_type=KeyType.EC_P256, standard_set=False)
        write_pki(local, root, overwrite=True)
        try:
            local.issue(name, fqdn="x.example.nhs.uk", replace_existing=True)
        except (ConfigurationError, TestPKIError):
            return
        write_pki(local, root, overwrite=True)
        outside = {p for p in _files(tmp_path) if root not in p.parents}
        assert outside == set()
        assert (root / "certs" / f"{name}.pem").is_file()


class TestCreate:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"ssp_fqdn": "bad fqdn!!"},
            {"provider_fqdn": "a..b"},
            {"consumer_fqdn": ""},
            {"base_url": "notaurl"},
            {"base_url": "http://x.nhs.uk/?q=1"},
        ],
    )
    def test_refused_before_any_key_is_made(
        self, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, str]
    ) -> None:
        """A bad FQDN or base URL is refused before a single key is generated."""

        def no_keys(*args: object, **kw: object) -> None:
            raise AssertionError("a key was generated before the settings were checked")

        monkeypatch.setattr(_builder, "_key_for", no_keys)
        with pytest.raises(ConfigurationError):
            TestPKI.create(key_type=KeyType.EC_P256, **kwargs)  # type: ignore[arg-type]


class TestLoad:
    def test_a_tampered_manifest_cannot_lead_outside(self, tmp_path: Path, pki: TestPKI) -> None:
        """A name or file path edited into manifest.json is refused on load."""
        root = tmp_path / "pki"
        write_pki(pki, root)
        manifest = json.loads((root / "manifest.json").read_text())
        entry = manifest["certificates"].pop("ssp")
        manifest["certificates"]["../evil"] = entry
        (root / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(TestPKIError, match="evil"):
            load_pki(root)
        manifest["certificates"].pop("../evil")
        manifest["certificates"]["ssp"] = {**entry, "cert": "../../etc/passwd"}
        (root / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(TestPKIError, match="outside the test PKI"):
            load_pki(root)
        # The untampered PKI still loads.
        write_pki(pki, root, overwrite=True)
        assert load_pki(root).leaf("ssp").certificate == pki.leaf("ssp").certificate
