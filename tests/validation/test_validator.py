"""The validator beyond failure codes: real Spine certificates, caching, peers, options."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from spinepki.errors import CertificateLoadError, ConfigurationError
from spinepki.revocation import RevocationChecker, RevocationMode
from spinepki.testpki import TestPKI
from spinepki.trust import TrustStore
from spinepki.validation import ClientCertValidator, FailureCode, Profile, _validator
from tests.validation.conftest import AT, IN_2023, SPINE_EXAMPLE, SPINE_EXAMPLE_FQDN


@pytest.fixture(scope="module")
def pem() -> bytes:
    """The real NHS INT endpoint certificate (testdata/spine, see its README)."""
    return SPINE_EXAMPLE.read_bytes()


@pytest.fixture(scope="module")
def now_pki(spine_pki: TestPKI) -> TestPKI:
    """A test PKI around the real current time (for real TLS handshakes, which use the clock):
    the session one."""
    return spine_pki


class TestRealSpineCertificate:
    """The public NHS INT endpoint certificate against the shipped Spine bundles."""

    def _validator(
        self, env: str, disabled: RevocationChecker, **kw: object
    ) -> ClientCertValidator:
        return ClientCertValidator(
            TrustStore.spine(env),
            ssp_fqdns=SPINE_EXAMPLE_FQDN,
            revocation=disabled,
            **kw,  # type: ignore[arg-type]
        )

    def test_valid_in_2023_against_int(self, pem: bytes, disabled: RevocationChecker) -> None:
        """Valid in 2023 against the INT bundle, via NHS INT Level 1C, FQDN from the CN."""
        result = self._validator("int", disabled).validate(pem, at=IN_2023)
        assert result.valid, result.failures
        assert result.fqdn == SPINE_EXAMPLE_FQDN
        assert result.fqdn_source == "cn"
        assert [c.subject.rfc4514_string() for c in result.chain[1:]] == [
            "CN=NHS INT Level 1C,OU=CA,O=nhs",
            "CN=NHS PTL Root Authority,OU=CA,O=nhs",
        ]

    def test_expired_after_2024(self, pem: bytes, disabled: RevocationChecker) -> None:
        """After 2024-10-22 it is EXPIRED (and only that)."""
        result = self._validator("int", disabled).validate(
            pem, at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        )
        assert result.codes == (FailureCode.EXPIRED,)

    def test_wrong_environment(self, pem: bytes, disabled: RevocationChecker) -> None:
        """Against the LIVE bundle it is UNTRUSTED."""
        assert self._validator("live", disabled).validate(pem, at=IN_2023).codes == (
            FailureCode.UNTRUSTED,
        )

    def test_wrong_fqdn(self, pem: bytes, disabled: RevocationChecker) -> None:
        """With another SSP FQDN configured it is FQDN_MISMATCH."""
        validator = ClientCertValidator(
            TrustStore.spine("int"), ssp_fqdns="msg.int.spine2.ncrs.nhs.uk", revocation=disabled
        )
        assert validator.validate(pem, at=IN_2023).codes == (FailureCode.FQDN_MISMATCH,)

    def test_strict_profile_refuses_it(self, pem: bytes, disabled: RevocationChecker) -> None:
        """The strict profile wants a SAN and critical basicConstraints: UNTRUSTED + name."""
        result = self._validator("int", disabled, profile=Profile.STRICT).validate(pem, at=IN_2023)
        assert set(result.codes) == {FailureCode.UNTRUSTED, FailureCode.FQDN_MISMATCH}
        assert "subjectAltName" in " ".join(f.message for f in result.failures)

    def test_no_crl_is_revocation_unknown(self, pem: bytes) -> None:
        """Offline without its CRL, the real certificate is REVOCATION_UNKNOWN (hard-fail)."""
        validator = ClientCertValidator(
            TrustStore.spine("int"),
            ssp_fqdns=SPINE_EXAMPLE_FQDN,
            revocation=RevocationChecker(RevocationMode.OFFLINE),
        )
        assert validator.validate(pem, at=IN_2023).codes == (FailureCode.REVOCATION_UNKNOWN,)


class TestCache:
    def test_repeat_is_served_from_cache(self, pki: TestPKI, offline: RevocationChecker) -> None:
        """The second validation of the same leaf and chain is the cached result."""
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=offline
        )
        leaf = pki.leaf("ssp")
        first = validator.validate(leaf.certificate, leaf.chain, at=AT)
        again = validator.validate(leaf.certificate, leaf.chain, at=AT + dt.timedelta(seconds=10))
        assert not first.from_cache
        assert again.from_cache
        assert again.validated_at == AT
        der = leaf.certificate.public_bytes(serialization.Encoding.DER)
        assert not validator.validate(der, leaf.chain, at=AT).from_cache  # keyed by the input
        assert validator.validate(der, leaf.chain, at=AT).from_cache

    def test_window_ends_at_ttl_and_next_update(
        self, pki: TestPKI, offline: RevocationChecker
    ) -> None:
        """Past the TTL or before the validation time the cache is not used."""
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=offline, cache_ttl=60
        )
        leaf = pki.leaf("ssp")
        validator.validate(leaf.certificate, leaf.chain, at=AT)
        assert validator.validate(
            leaf.certificate, leaf.chain, at=AT + dt.timedelta(seconds=59)
        ).from_cache
        assert not validator.validate(
            leaf.certificate, leaf.chain, at=AT - dt.timedelta(seconds=1)
        ).from_cache
        late = validator.validate(leaf.certificate, leaf.chain, at=AT + dt.timedelta(seconds=61))
        assert not late.from_cache
        assert late.valid

    def test_next_update_bounds_the_window(self, pki: TestPKI) -> None:
        """A CRL's nextUpdate ends the window even when the TTL is longer."""
        crl = pki.crl(at=AT - dt.timedelta(hours=1), next_update=dt.timedelta(hours=2))
        checker = RevocationChecker(RevocationMode.OFFLINE, crls=[crl, pki.root_crl()])
        validator = ClientCertValidator(
            pki.trust_store(),
            ssp_fqdns=pki.ssp_fqdn,
            revocation=checker,
            cache_ttl=dt.timedelta(days=1),
        )
        leaf = pki.leaf("ssp")
        validator.validate(leaf.certificate, leaf.chain, at=AT)
        assert validator.validate(
            leaf.certificate, leaf.chain, at=AT + dt.timedelta(minutes=59)
        ).from_cache
        after = validator.validate(leaf.certificate, leaf.chain, at=AT + dt.timedelta(hours=2))
        assert not after.from_cache

    def test_other_intermediates_miss(self, pki: TestPKI, offline: RevocationChecker) -> None:
        """A different chain sent with the same leaf is validated afresh."""
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=offline
        )
        leaf = pki.leaf("ssp")
        validator.validate(leaf.certificate, leaf.chain, at=AT)
        assert not validator.validate(leaf.certificate, (), at=AT).from_cache

    def test_invalid_results_are_not_cached(
        self, validator: ClientCertValidator, pki: TestPKI
    ) -> None:
        """A rejected certificate is checked again every time."""
        leaf = pki.leaf("wrong-fqdn")
        validator.validate(leaf.certificate, leaf.chain, at=AT)
        assert not validator.validate(leaf.certificate, leaf.chain, at=AT).from_cache

    def test_lru_bound_and_clear(self, pki: TestPKI, offline: RevocationChecker) -> None:
        """With cache_size=1 the older leaf is evicted; clear_cache forgets everything."""
        validator = ClientCertValidator(
            pki.trust_store(),
            ssp_fqdns=[pki.ssp_fqdn, pki.provider_fqdn],
            revocation=offline,
            cache_size=1,
        )
        ssp, provider = pki.leaf("ssp"), pki.leaf("provider")
        validator.validate(ssp.certificate, ssp.chain, at=AT)
        validator.validate(provider.certificate, provider.chain, at=AT)
        assert validator.validate(provider.certificate, provider.chain, at=AT).from_cache
        assert not validator.validate(ssp.certificate, ssp.chain, at=AT).from_cache
        validator.clear_cache()
        assert not validator.validate(ssp.certificate, ssp.chain, at=AT).from_cache

    def test_disabled_cache(self, pki: TestPKI, offline: RevocationChecker) -> None:
        """cache_ttl=0 turns caching off."""
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=offline, cache_ttl=0
        )
        leaf = pki.leaf("ssp")
        validator.validate(leaf.certificate, leaf.chain, at=AT)
        assert not validator.validate(leaf.certificate, leaf.chain, at=AT).from_cache
        validator.clear_cache()

    def test_threads_share_one_cache_safely(self, pki: TestPKI, offline: RevocationChecker) -> None:
        """Sixteen threads validating concurrently all get valid results, and the cache is used."""
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=offline
        )
        leaf = pki.leaf("ssp")
        results = []

        def work() -> None:
            for _ in range(50):
                results.append(validator.validate(leaf.certificate, leaf.chain, at=AT))

        threads = [threading.Thread(target=work) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 800
        assert all(r.valid for r in results)
        assert sum(r.from_cache for r in results) >= 700


class TestLeafMemos:
    """A leaf's time-independent verdicts are kept per object, and its parsed object per
    DER input: only the same object or the very same bytes can hit, within a bound."""

    def test_time_is_checked_on_every_validation(
        self, pki: TestPKI, offline: RevocationChecker
    ) -> None:
        """The same leaf object validated after its notAfter is EXPIRED (validity is per call)."""
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=offline, cache_ttl=0
        )
        leaf = pki.leaf("ssp")
        assert validator.validate(leaf.certificate, leaf.chain, at=AT).valid
        later = leaf.certificate.not_valid_after_utc + dt.timedelta(days=1)
        assert (
            FailureCode.EXPIRED in validator.validate(leaf.certificate, leaf.chain, at=later).codes
        )
        assert validator.validate(leaf.certificate, leaf.chain, at=AT).valid

    def test_other_certificates_get_their_own_verdicts(
        self, pki: TestPKI, offline: RevocationChecker
    ) -> None:
        """Alternating two leaves (objects or DER) gives each its own verdict every time."""
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=offline, cache_ttl=0
        )
        good, rogue = pki.leaf("ssp"), pki.leaf("wrong-fqdn")
        as_der = serialization.Encoding.DER
        for _ in range(2):
            for inputs in (
                (good.certificate, rogue.certificate),
                (
                    good.certificate.public_bytes(as_der),
                    rogue.certificate.public_bytes(as_der),
                ),
            ):
                assert validator.validate(inputs[0], good.chain, at=AT).valid
                assert validator.validate(inputs[1], rogue.chain, at=AT).codes == (
                    FailureCode.FQDN_MISMATCH,
                )

    def test_repeated_der_reuses_one_parsed_object(
        self, pki: TestPKI, offline: RevocationChecker
    ) -> None:
        """The same DER presented again is validated with the object parsed the first time."""
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=offline, cache_ttl=0
        )
        leaf = pki.leaf("ssp")
        der = leaf.certificate.public_bytes(serialization.Encoding.DER)
        first = validator.validate(der, leaf.chain, at=AT)
        again = validator.validate(bytes(bytearray(der)), leaf.chain, at=AT)
        assert first.valid
        assert again.valid
        assert again.chain[0] is first.chain[0]
        validator.clear_cache()
        assert validator.validate(der, leaf.chain, at=AT).chain[0] is not first.chain[0]

    def test_memos_are_bounded(
        self, pki: TestPKI, offline: RevocationChecker, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past their bounds the memos start again; large inputs are not kept at all."""
        monkeypatch.setattr(_validator, "_LEAF_MEMO", 2)
        monkeypatch.setattr(_validator, "_PARSED_MEMO", 2)
        validator = ClientCertValidator(
            pki.trust_store(),
            ssp_fqdns=[pki.ssp_fqdn, pki.provider_fqdn],
            revocation=offline,
            cache_ttl=0,
        )
        leaves = [pki.leaf(name) for name in ("ssp", "provider", "wrong-fqdn")]
        for leaf in leaves:
            der = leaf.certificate.public_bytes(serialization.Encoding.DER)
            validator.validate(der, leaf.chain, at=AT)
            assert len(validator._leaf_memo) <= 2
            assert len(validator._parsed) <= 2
        monkeypatch.setattr(_validator, "_PARSED_MAX_BYTES", 10)
        validator.clear_cache()
        ssp = leaves[0]
        assert validator.validate(
            ssp.certificate.public_bytes(serialization.Encoding.DER), ssp.chain, at=AT
        ).valid
        assert validator._parsed == {}


class TestInputs:
    def test_pem_bundle_as_leaf_and_file_path(
        self, validator: ClientCertValidator, pki: TestPKI, tmp_path: Path
    ) -> None:
        """A PEM bundle (leaf first) and a file name are accepted like objects."""
        leaf = pki.leaf("ssp")
        assert validator.validate(leaf.chain_pem, at=AT).valid
        path = tmp_path / "leaf.pem"
        path.write_bytes(leaf.cert_pem)
        assert validator.validate(path, pki.sub_ca.cert_pem, at=AT).valid
        assert validator.validate(str(path), [pki.sub_ca.certificate], at=AT).valid
        assert validator.validate(str(path), [pki.sub_ca.certificate], at=AT).from_cache

    def test_garbage_is_a_load_error(self, validator: ClientCertValidator) -> None:
        """Bytes that are not a certificate raise CertificateLoadError."""
        with pytest.raises(CertificateLoadError):
            validator.validate(b"not a certificate", at=AT)

    def test_naive_time_is_refused(self, validator: ClientCertValidator, pki: TestPKI) -> None:
        """A naive datetime is a ConfigurationError (time zones are not guessed)."""
        with pytest.raises(ConfigurationError):
            validator.validate(pki.leaf("ssp").certificate, at=dt.datetime(2024, 3, 1))

    def test_default_time_is_now(self, now_pki: TestPKI, disabled: RevocationChecker) -> None:
        """Without at=, the clock is read once at the edge (this PKI is valid around now)."""
        validator = ClientCertValidator(
            now_pki.trust_store(), ssp_fqdns=now_pki.ssp_fqdn, revocation=disabled
        )
        result = validator.validate(now_pki.leaf("ssp").certificate)
        assert result.valid
        assert abs(result.validated_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)

    @pytest.mark.parametrize(
        ("kwargs", "source"),
        [
            ({"ssp_fqdns": ()}, "ssp_fqdns"),
            ({"max_chain_depth": 17}, "max_chain_depth"),
            ({"cache_ttl": -1}, "cache_ttl"),
        ],
    )
    def test_configuration_errors(
        self, pki: TestPKI, disabled: RevocationChecker, kwargs: dict[str, object], source: str
    ) -> None:
        """Unworkable settings raise ConfigurationError naming the setting."""
        options: dict[str, object] = {"ssp_fqdns": "a.nhs.uk", "revocation": disabled, **kwargs}
        with pytest.raises(ConfigurationError) as caught:
            ClientCertValidator(pki.trust_store(), **options)  # type: ignore[arg-type]
        assert caught.value.source == source

    def test_default_revocation_is_hard_fail(self, pki: TestPKI) -> None:
        """Without revocation=, the validator uses a hard-fail RevocationChecker."""
        validator = ClientCertValidator(pki.trust_store(), ssp_fqdns="a.nhs.uk")
        assert validator.revocation.mode is RevocationMode.HARD_FAIL


def _handshake(pki: TestPKI, tmp_path: Path) -> ssl.SSLObject:
    """A real TLS handshake in memory; returns the server side, which saw the SSP's cert."""
    provider, ssp = pki.leaf("provider"), pki.leaf("ssp")
    files = {}
    for name, data in {
        "server.pem": provider.chain_pem,
        "server.key": provider.key_pem,
        "client.pem": ssp.chain_pem,
        "client.key": ssp.key_pem,
        "ca.pem": pki.root.cert_pem,
    }.items():
        files[name] = tmp_path / name
        files[name].write_bytes(data)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(files["server.pem"], files["server.key"])
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(files["ca.pem"])
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_cert_chain(files["client.pem"], files["client.key"])
    client_ctx.load_verify_locations(files["ca.pem"])
    client_ctx.check_hostname = False
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=pki.provider_fqdn)
    for _ in range(20):
        done = 0
        for side in (client, server):
            try:
                side.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if done == 2:
            break
    return server


class TestPeer:
    def test_validate_peer_after_a_real_handshake(self, now_pki: TestPKI, tmp_path: Path) -> None:
        """validate_peer reads the SSP's certificate from a completed TLS handshake."""
        checker = RevocationChecker(
            RevocationMode.OFFLINE, crls=[now_pki.crl(), now_pki.root_crl()]
        )
        validator = ClientCertValidator(
            now_pki.trust_store(), ssp_fqdns=now_pki.ssp_fqdn, revocation=checker
        )
        server = _handshake(now_pki, tmp_path)
        result = validator.validate_peer(server)
        assert result.valid, result.failures
        assert result.fqdn == now_pki.ssp_fqdn

    def test_peer_chain_is_used_when_python_offers_it(
        self, pki: TestPKI, offline: RevocationChecker
    ) -> None:
        """Where get_unverified_chain exists (3.13+), the intermediates it returns are used."""
        from spinepki.trust import TrustStore

        only_root = ClientCertValidator(
            TrustStore([pki.root.certificate]), ssp_fqdns=pki.ssp_fqdn, revocation=offline
        )
        leaf = pki.leaf("ssp")

        class Peer:
            def getpeercert(self, binary_form: bool = False) -> bytes:
                return leaf.certificate.public_bytes(serialization.Encoding.DER)

            def get_unverified_chain(self) -> list[bytes]:
                return [
                    self.getpeercert(True),
                    pki.sub_ca.certificate.public_bytes(serialization.Encoding.DER),
                ]

        assert only_root.validate_peer(Peer(), at=AT).valid

    def test_no_peer_certificate(self, validator: ClientCertValidator) -> None:
        """A peer that sent no certificate is a CertificateLoadError, not a result."""

        class Anonymous:
            def getpeercert(self, binary_form: bool = False) -> None:
                return None

        with pytest.raises(CertificateLoadError):
            validator.validate_peer(Anonymous())


class TestResultForms:
    def test_as_dict_is_json_ready(self, validator: ClientCertValidator, pki: TestPKI) -> None:
        """as_dict gives codes, chain subjects and the CRL evidence."""
        import json

        leaf = pki.leaf("revoked")
        data = validator.validate(leaf.certificate, leaf.chain, at=AT).as_dict()
        text = json.dumps(data)
        assert data["failures"][0]["code"] == "revoked"
        assert data["revocation"]["status"] == "REVOKED"
        assert data["revocation"]["evidence"]["source"] == "crl"
        assert "spinepki Test Level 1C" in text
        ok = pki.leaf("ssp")
        assert validator.validate(ok.certificate, ok.chain, at=AT).has(FailureCode.REVOKED) is False


class TestTrustedIntermediates:
    """A path may end at a trusted Sub CA when the store says so (issue 12, finding 7)."""

    def test_trusting_only_the_sub_ca(self, pki: TestPKI, offline: RevocationChecker) -> None:
        """Sub CA only, partial_chain: the SSP leaf is valid with a two-certificate path and
        its revocation is still checked against the Sub CA's CRL."""
        store = TrustStore([pki.sub_ca.certificate], partial_chain=True)
        validator = ClientCertValidator(store, ssp_fqdns=pki.ssp_fqdn, revocation=offline)
        ssp = pki.leaf("ssp")
        result = validator.validate(ssp.certificate, at=AT)
        assert result.valid, result.failures
        assert result.chain == (ssp.certificate, pki.sub_ca.certificate)
        assert result.revocation is not None
        assert result.revocation.status.name == "GOOD"
        revoked = pki.leaf("revoked")
        assert validator.validate(revoked.certificate, at=AT).codes == (FailureCode.REVOKED,)
        assert validator.validate(pki.leaf("foreign").certificate, at=AT).codes == (
            FailureCode.UNTRUSTED,
        )

    def test_the_path_ends_at_the_trusted_intermediate(
        self, pki: TestPKI, disabled: RevocationChecker
    ) -> None:
        """CVE-2024-0567 class: the peer sends its Sub CA and a copy of it cross-signed by a
        root nobody trusts; with only the Sub CA trusted the path stops there, valid."""
        from cryptography.hazmat.primitives.asymmetric import ec

        from tests.validation.conftest import as_issued, make_cert

        stranger, stranger_key = make_cert(None, cn="Stranger Root", ca=True)
        cross, _ = make_cert(
            as_issued(stranger, stranger_key),
            key=pki.sub_ca.private_key,  # type: ignore[arg-type]
            cn="spinepki Test Level 1C",
            ca=True,
        )
        assert isinstance(stranger_key, ec.EllipticCurvePrivateKey)
        store = TrustStore([pki.sub_ca.certificate], partial_chain=True)
        validator = ClientCertValidator(store, ssp_fqdns=pki.ssp_fqdn, revocation=disabled)
        ssp = pki.leaf("ssp")
        result = validator.validate(ssp.certificate, [cross, stranger], at=AT)
        assert result.valid, result.failures
        assert result.chain[-1] is pki.sub_ca.certificate
        without = ClientCertValidator(
            TrustStore([pki.root.certificate]), ssp_fqdns=pki.ssp_fqdn, revocation=disabled
        )
        refused = without.validate(ssp.certificate, [cross, stranger], at=AT)
        assert refused.codes == (FailureCode.UNTRUSTED,)
