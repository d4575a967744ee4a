"""Trust stores and the bundled public Spine CA sets."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from spinepki.errors import CertificateLoadError, TrustStoreError
from spinepki.testpki import TestPKI
from spinepki.trust import SpineEnvironment, TrustStore

README = resources.files("spinepki.data.trust").joinpath("README.md").read_text()

# SHA-1 thumbprints NHS Digital publishes (gpconnect-rules §6.1: NHSD-PKI, BaRS table).
PUBLISHED_SHA1 = {
    "live": {
        "7e05fa629b5e66dbb80e97417d2473cbcf5a3106",  # NHS Root Authority G2
        "1f301fca684d9e13ad4dba7c8f2ba126f9c4c015",  # NHS Authentication G2
        "ec7a3b3cb795ece956c5a7bec4204a298feb236c",  # NHS Root Authority (G1)
        "da3cf9d13a705704f2cba274c79794963c36ff94",  # NHS Level 1C (G1)
    },
    "int": {
        "18d214878954d1e0706f68f33ebf2bb45c7c8aa2",  # NHS PTL Root Authority G2
        "58351bdd2aecc355f5cf7ec7d77bd1f08e51b5dd",  # NHS INT Authentication G2
        "6287fa6e10a7dd90e62556f7c2814a6abf04590c",  # NHS PTL Root Authority (G1)
        "5007daf3aeea1c1360ec0d1e9e5bedccc7182b79",  # NHS INT Level 1C (G1)
    },
    "dep": {"05470af70284b5bb8a9c9d25f658916212e6af10"},  # NHS DEP Level 1C (G1)
}


class TestBundledSpineSets:
    @pytest.mark.parametrize("env", [e.value for e in SpineEnvironment])
    def test_bundle_matches_readme_fingerprints(self, env: str) -> None:
        """Every certificate in a bundle is listed in the README with its SHA-256."""
        listed = set(
            re.findall(rf"\| {env}\.pem \| [^|]+ \| [^|]+ \| [^|]+ \| `([0-9a-f]{{64}})`", README)
        )
        store = TrustStore.spine(env)
        assert {t.sha256 for t in store} == listed
        assert len(store) == 4

    @pytest.mark.parametrize("env", [e.value for e in SpineEnvironment])
    def test_bundle_matches_published_sha1_thumbprints(self, env: str) -> None:
        """The bundles hold the certificates NHS Digital publishes thumbprints for."""
        sha1 = {c.fingerprint(hashes.SHA1()).hex() for c in TrustStore.spine(env).certificates()}
        assert PUBLISHED_SHA1[env] <= sha1

    @pytest.mark.parametrize("env", [e.value for e in SpineEnvironment])
    def test_each_sub_ca_chains_to_its_root(self, env: str) -> None:
        """Each Sub CA's signature verifies under a root in the same bundle."""
        store = TrustStore.spine(env)
        assert len(store.anchors) == 2
        assert len(store.intermediates) == 2
        for sub in store.intermediates:
            roots = [r for r in store.anchors if r.subject == sub.issuer]
            assert len(roots) == 1
            sub.verify_directly_issued_by(roots[0])

    def test_unknown_environment_is_a_typed_error(self) -> None:
        """A typo in the environment name names the valid choices."""
        with pytest.raises(TrustStoreError, match="live, int, dep"):
            TrustStore.spine("prod")

    def test_describe_is_json_friendly(self) -> None:
        """describe() gives subject, role, fingerprint and validity for each certificate."""
        first = TrustStore.spine("live").describe()[0]
        assert first["role"] == "anchor"
        assert set(first) == {"subject", "issuer", "role", "sha256", "not_before", "not_after"}


class TestLoading:
    def test_from_paths_reads_files_and_directories_and_dedupes(
        self, spine_pki: TestPKI, tmp_path: Path
    ) -> None:
        """A directory and a bundle holding the same certificates give one copy of each."""
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "root.pem").write_bytes(spine_pki.root.cert_pem)
        (tmp_path / "d" / "sub.der").write_bytes(
            spine_pki.sub_ca.certificate.public_bytes(serialization.Encoding.DER)
        )
        (tmp_path / "d" / "notes.txt").write_text("ignored")
        (tmp_path / "bundle.pem").write_bytes(spine_pki.trust_store().to_pem())
        store = TrustStore.from_paths(tmp_path / "d", tmp_path / "bundle.pem")
        assert len(store) == 2
        assert store.fingerprint() == spine_pki.trust_store().fingerprint()
        assert "anchors=1" in repr(store)

    def test_missing_path_is_a_typed_error(self, tmp_path: Path) -> None:
        """A path that does not exist is named in the error."""
        with pytest.raises(TrustStoreError, match="no such file"):
            TrustStore.from_paths(tmp_path / "missing.pem")

    def test_empty_directory_is_a_typed_error(self, tmp_path: Path) -> None:
        """A directory with no certificate files is refused."""
        with pytest.raises(TrustStoreError, match="holds no"):
            TrustStore.from_paths(tmp_path)

    def test_garbage_file_in_directory_is_a_typed_error(self, tmp_path: Path) -> None:
        """A certificate file in a trust directory that does not parse names the file."""
        odd = tmp_path / "x.pem"
        odd.mkdir()
        (odd / "inner.pem").write_text("junk")
        with pytest.raises(CertificateLoadError, match=r"inner\.pem"):
            TrustStore.from_paths(odd)

    def test_garbage_is_a_certificate_load_error(self) -> None:
        """Bytes that are not certificates raise CertificateLoadError naming the source."""
        with pytest.raises(CertificateLoadError, match="bundle"):
            TrustStore.from_pem(b"not a certificate", name="bundle")

    def test_non_ca_certificate_is_refused(self, spine_pki: TestPKI) -> None:
        """An endpoint certificate cannot be a trust anchor."""
        with pytest.raises(TrustStoreError, match="not a CA"):
            TrustStore([spine_pki.root.certificate, spine_pki.leaf("ssp").certificate])

    def test_store_needs_an_anchor(self, spine_pki: TestPKI) -> None:
        """Intermediates alone are not a trust store."""
        with pytest.raises(TrustStoreError, match="no self-signed root"):
            TrustStore([spine_pki.sub_ca.certificate])

    def test_empty_store_is_refused(self) -> None:
        """An empty iterable is refused."""
        with pytest.raises(TrustStoreError, match="no certificates"):
            TrustStore([])

    def test_store_without_basic_constraints_cert_is_refused(self, spine_pki: TestPKI) -> None:
        """A certificate with no basicConstraints is not a CA."""
        cert = x509.load_pem_x509_certificate(spine_pki.root.cert_pem)
        builder = (
            x509.CertificateBuilder()
            .subject_name(cert.subject)
            .issuer_name(cert.subject)
            .public_key(spine_pki.root.private_key.public_key())
            .serial_number(1)
            .not_valid_before(cert.not_valid_before_utc)
            .not_valid_after(cert.not_valid_after_utc)
        )
        bare = builder.sign(spine_pki.root.private_key, hashes.SHA256())  # type: ignore[arg-type]
        with pytest.raises(TrustStoreError, match="not a CA"):
            TrustStore([bare])

    def test_a_huge_file_is_refused_unread(self, spine_pki: TestPKI, tmp_path: Path) -> None:
        """A wrong path to a 1 GB file (sparse: no disk used) costs a stat, not a read."""
        huge = tmp_path / "huge.pem"
        with huge.open("wb") as f:
            f.truncate(1024**3)
        with pytest.raises(TrustStoreError, match="over the 10485760 byte limit"):
            TrustStore.from_paths(huge)
        good = tmp_path / "good.pem"
        good.write_bytes(spine_pki.trust_store().to_pem())
        assert len(TrustStore.from_paths(good)) == 2


class TestPartialChain:
    """Non-self-signed anchors, on request (issue 12, finding 7)."""

    def test_every_certificate_becomes_an_anchor(self, spine_pki: TestPKI, tmp_path: Path) -> None:
        """partial_chain=True: a store of one Sub CA is valid, and everything is an anchor."""
        store = TrustStore([spine_pki.sub_ca.certificate], partial_chain=True)
        assert store.partial_chain
        assert store.anchors == (spine_pki.sub_ca.certificate,)
        assert store.intermediates == ()
        assert [t.is_anchor for t in store] == [True]
        assert store.describe()[0]["role"] == "anchor"
        assert "partial_chain=True" in repr(store)
        both = TrustStore(
            [spine_pki.root.certificate, spine_pki.sub_ca.certificate], partial_chain=True
        )
        assert len(both.anchors) == 2
        path = tmp_path / "sub.pem"
        path.write_bytes(spine_pki.sub_ca.cert_pem)
        assert TrustStore.from_paths(path, partial_chain=True).partial_chain
        assert TrustStore.from_pem(spine_pki.sub_ca.cert_pem, partial_chain=True).partial_chain

    def test_off_by_default_and_the_error_says_how(self, spine_pki: TestPKI) -> None:
        """Without the option only self-issued roots are anchors; the error names the option."""
        assert not spine_pki.trust_store().partial_chain
        with pytest.raises(TrustStoreError, match="partial_chain=True"):
            TrustStore([spine_pki.sub_ca.certificate])

    def test_partial_chain_still_needs_ca_certificates(self, spine_pki: TestPKI) -> None:
        """An end-entity certificate is refused as an anchor even with partial_chain."""
        with pytest.raises(TrustStoreError, match="not a CA"):
            TrustStore([spine_pki.leaf("ssp").certificate], partial_chain=True)
