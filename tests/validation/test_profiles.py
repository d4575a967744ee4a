"""Profiles, purposes and names: the rules issue 12 found dropped or missing.

Each class is one finding: the server verifier for ``Purpose.SERVER`` (2), the leaf's
extKeyUsage criticality (4), the subjectAltName criticality rules the spine profile must
keep (5), one CN when the FQDN comes from the CN (6), and the general profile (8).
Chains are built with the test-PKI builder.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinepki.errors import ConfigurationError
from spinepki.revocation import RevocationChecker
from spinepki.testpki import KeyType, TestPKI
from spinepki.validation import (
    KEY_USAGE_BITS,
    ClientCertValidator,
    FailureCode,
    Profile,
    Purpose,
    ValidationResult,
)
from tests._helpers import fresh, shared
from tests.validation.conftest import AT, ext, rfc_ca_extensions

CLIENT, SERVER = ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH
GP = "gp.example.nhs.uk"


@pytest.fixture(scope="module")
def _tpki_base() -> Iterator[TestPKI]:
    """This module's PKI, with an RFC 5280 hierarchy and EKU-restricted CAs."""
    pki = TestPKI.create(key_type=KeyType.EC_P256, at=AT)
    pki.issue_ca("rfc-root", parent=None, extensions=rfc_ca_extensions())
    pki.issue_ca("rfc-sub", parent="rfc-root", extensions=rfc_ca_extensions())
    for label, ekus in (("client-only", [CLIENT]), ("server-only", [SERVER])):
        # Under the Spine root (spine profile) and under the RFC root (strict, general).
        pki.issue_ca(f"{label}-ca", parent="root", extensions=[ext(x509.ExtendedKeyUsage(ekus))])
        pki.issue_ca(
            f"rfc-{label}-ca",
            parent="rfc-root",
            extensions=[*rfc_ca_extensions(), ext(x509.ExtendedKeyUsage(ekus))],
        )
    with shared(pki, "test_profiles' PKI") as pki:
        yield pki


@pytest.fixture
def tpki(_tpki_base: TestPKI) -> TestPKI:
    """A test's own copy (tests issue leaves and CAs into it)."""
    return fresh(_tpki_base)


def _v(
    pki: TestPKI,
    disabled: RevocationChecker,
    *,
    names: str | list[str] = GP,
    trust: tuple[str, ...] = (),
    **options: object,
) -> ClientCertValidator:
    return ClientCertValidator(
        pki.trust_store(*trust),
        ssp_fqdns=names,
        revocation=disabled,
        cache_ttl=0,
        **options,  # type: ignore[arg-type]
    )


def _leaf(
    pki: TestPKI,
    name: str,
    *,
    issuer: str,
    eku: tuple[x509.ObjectIdentifier, ...] = (SERVER, CLIENT),
    fqdn: str = GP,
    san: list[x509.GeneralName] | None = None,
    san_critical: bool = False,
    subject: x509.Name | None = None,
    omit: tuple[type[x509.ExtensionType], ...] = (),
    extensions: tuple[x509.Extension[x509.ExtensionType], ...] = (),
) -> x509.Certificate:
    more = list(extensions)
    if san is not None:
        more.append(ext(x509.SubjectAlternativeName(san), critical=san_critical))
    issued = pki.issue(
        name,
        fqdn=fqdn,
        issuer=issuer,
        eku=eku,
        subject=subject,
        extensions=more,
        omit=omit,
        replace_existing=True,
    )
    return issued.certificate


def _codes(result: ValidationResult) -> tuple[FailureCode, ...]:
    return result.codes


class TestServerPurposeUsesTheServerVerifier:
    """Finding 2: Purpose.SERVER used the client verifier (and its CA EKU rule)."""

    @pytest.mark.parametrize("with_san", [True, False], ids=["san", "spine-no-san"])
    def test_a_ca_restricted_to_client_auth_cannot_vouch_for_a_server(
        self, tpki: TestPKI, disabled: RevocationChecker, with_san: bool
    ) -> None:
        """A clientAuth-only CA issuing a serverAuth leaf: refused for SERVER, with or
        without a SAN (the Spine shape goes through the same CA rule)."""
        san = [x509.DNSName(GP)] if with_san else None
        leaf = _leaf(tpki, "srv-under-client-ca", issuer="client-only-ca", eku=(SERVER,), san=san)
        chain = [tpki.cas["client-only-ca"].certificate]
        result = _v(tpki, disabled, purpose=Purpose.SERVER).validate(leaf, chain, at=AT)
        assert _codes(result) == (FailureCode.UNTRUSTED,)
        assert "EKU" in result.failures[0].message or "serverAuth" in result.failures[0].message

    @pytest.mark.parametrize("with_san", [True, False], ids=["san", "spine-no-san"])
    def test_a_ca_restricted_to_server_auth_vouches_for_servers_only(
        self, tpki: TestPKI, disabled: RevocationChecker, with_san: bool
    ) -> None:
        """A serverAuth-only CA: its server leaf is valid for SERVER, refused for CLIENT."""
        san = [x509.DNSName(GP)] if with_san else None
        leaf = _leaf(tpki, "srv-under-server-ca", issuer="server-only-ca", san=san)
        chain = [tpki.cas["server-only-ca"].certificate]
        server = _v(tpki, disabled, purpose=Purpose.SERVER).validate(leaf, chain, at=AT)
        assert server.valid, server.failures
        client = _v(tpki, disabled, purpose=Purpose.CLIENT).validate(leaf, chain, at=AT)
        assert _codes(client) == (FailureCode.UNTRUSTED,)

    def test_a_public_style_server_chain_is_accepted(
        self, tpki: TestPKI, disabled: RevocationChecker
    ) -> None:
        """RFC 5280 root -> serverAuth-only intermediate -> serverAuth leaf with a SAN: valid
        for SERVER under the strict and general profiles (it was UNTRUSTED)."""
        leaf = _leaf(
            tpki, "public-style", issuer="rfc-server-only-ca", eku=(SERVER,), san=[x509.DNSName(GP)]
        )
        chain = [tpki.cas["rfc-server-only-ca"].certificate]
        for profile in (Profile.STRICT, Profile.GENERAL):
            validator = _v(
                tpki, disabled, trust=("rfc-root",), purpose=Purpose.SERVER, profile=profile
            )
            result = validator.validate(leaf, chain, at=AT)
            assert result.valid, (profile, result.failures)

    def test_dns_names_follow_the_server_verifier(
        self, tpki: TestPKI, disabled: RevocationChecker
    ) -> None:
        """The SAN must name the peer; a wildcard covers one label, and only when allowed."""
        chain = [tpki.sub_ca.certificate]
        exact = _leaf(tpki, "exact", issuer="sub-ca", san=[x509.DNSName(GP)])
        assert _v(tpki, disabled, purpose=Purpose.SERVER).validate(exact, chain, at=AT).valid
        other = _v(tpki, disabled, names="other.example.nhs.uk", purpose=Purpose.SERVER)
        assert FailureCode.FQDN_MISMATCH in other.validate(exact, chain, at=AT).codes
        wild = _leaf(tpki, "wild", issuer="sub-ca", san=[x509.DNSName("*.example.nhs.uk")])
        assert not _v(tpki, disabled, purpose=Purpose.SERVER).validate(wild, chain, at=AT).valid
        allowed = _v(tpki, disabled, purpose=Purpose.SERVER, allow_wildcard=True)
        assert allowed.validate(wild, chain, at=AT).valid
        deeper = _v(
            tpki,
            disabled,
            names="a.gp.example.nhs.uk",
            purpose=Purpose.SERVER,
            allow_wildcard=True,
        )
        assert not deeper.validate(wild, chain, at=AT).valid

    def test_an_ip_peer_is_matched_against_ip_address_sans(
        self, tpki: TestPKI, disabled: RevocationChecker
    ) -> None:
        """Connecting to 127.0.0.1: an iPAddress SAN 127.0.0.1 matches; a DNS SAN or CN
        spelling the address does not."""
        chain = [tpki.sub_ca.certificate]
        loopback = ipaddress.ip_address("127.0.0.1")
        by_ip = _leaf(tpki, "by-ip", issuer="sub-ca", san=[x509.IPAddress(loopback)])
        validator = _v(tpki, disabled, names="127.0.0.1", purpose=Purpose.SERVER)
        result = validator.validate(by_ip, chain, at=AT)
        assert result.valid, result.failures
        assert result.fqdn == "127.0.0.1"
        assert result.fqdn_source == "san"
        other = _v(tpki, disabled, names="127.0.0.2", purpose=Purpose.SERVER)
        assert FailureCode.FQDN_MISMATCH in other.validate(by_ip, chain, at=AT).codes
        spelled = _leaf(tpki, "spelled", issuer="sub-ca", subject=_subject("127.0.0.1"))
        assert FailureCode.FQDN_MISMATCH in validator.validate(spelled, chain, at=AT).codes

    def test_the_server_verifier_is_built_for_the_peer_name(
        self, tpki: TestPKI, disabled: RevocationChecker, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With a SAN, SERVER builds cryptography's server verifier for the configured name
        (a DNSName, or an IPAddress for an IP); a Spine leaf (no SAN) the client verifier."""
        from cryptography.x509.verification import PolicyBuilder

        from spinepki.validation import _validator

        built: list[object] = []

        class Spy:
            def __init__(self, inner: PolicyBuilder | None = None) -> None:
                self._inner = inner or PolicyBuilder()

            def __getattr__(self, name: str) -> object:
                method = getattr(self._inner, name)

                def call(*args: object, **kwargs: object) -> object:
                    if name.startswith("build_"):
                        built.append((name, *args))
                        return method(*args, **kwargs)
                    return Spy(method(*args, **kwargs))

                return call

        monkeypatch.setattr(_validator, "PolicyBuilder", Spy)
        chain = [tpki.sub_ca.certificate]
        validator = _v(tpki, disabled, purpose=Purpose.SERVER)
        ip_validator = _v(tpki, disabled, names="127.0.0.1", purpose=Purpose.SERVER)
        built.clear()  # construction checks the configured names with a throwaway verifier
        with_san = _leaf(tpki, "spy-san", issuer="sub-ca", san=[x509.DNSName(GP)])
        assert validator.validate(with_san, chain, at=AT).valid
        assert built == [("build_server_verifier", x509.DNSName(GP))]
        built.clear()
        loopback = ipaddress.ip_address("127.0.0.1")
        by_ip = _leaf(tpki, "spy-ip", issuer="sub-ca", san=[x509.IPAddress(loopback)])
        assert ip_validator.validate(by_ip, chain, at=AT).valid
        assert built == [("build_server_verifier", x509.IPAddress(loopback))]
        built.clear()
        spine = _leaf(tpki, "spy-spine", issuer="sub-ca")
        assert validator.validate(spine, chain, at=AT).valid
        assert built == [("build_client_verifier",)]
        # Without configured names the server verifier is built for the leaf's own name.
        skip = _v(tpki, disabled, names=[], purpose=Purpose.SERVER, unsafe_skip_fqdn_check=True)
        built.clear()
        assert skip.validate(with_san, chain, at=AT).valid
        assert skip.validate(by_ip, chain, at=AT).valid
        wild = _leaf(tpki, "spy-wild", issuer="sub-ca", san=[x509.DNSName("*.example.nhs.uk")])
        assert skip.validate(wild, chain, at=AT).valid
        assert built == [
            ("build_server_verifier", x509.DNSName(GP)),
            ("build_server_verifier", x509.IPAddress(loopback)),
            ("build_client_verifier",),  # a wildcard names no one host to check against
        ]

    def test_names_the_server_verifier_cannot_take_are_a_configuration_error(
        self, tpki: TestPKI, disabled: RevocationChecker
    ) -> None:
        """A configured name that is no DNS name is refused when the validator is built."""
        with pytest.raises(ConfigurationError) as caught:
            _v(tpki, disabled, names="not a host name", purpose=Purpose.SERVER)
        assert caught.value.source == "ssp_fqdns"


class TestLeafExtendedKeyUsageCriticality:
    """Finding 4: spinepki's own EKU rule replaced the verifier's and dropped criticality."""

    @pytest.mark.parametrize("profile", list(Profile), ids=lambda p: p.value)
    @pytest.mark.parametrize("purpose", list(Purpose), ids=lambda p: p.value)
    def test_a_critical_eku_on_the_leaf_is_refused(
        self, tpki: TestPKI, disabled: RevocationChecker, profile: Profile, purpose: Purpose
    ) -> None:
        """CA/Browser Forum BR 7.1.2.7.6: extKeyUsage MUST NOT be critical, in any profile."""
        issuer, trust = ("sub-ca", ()) if profile is Profile.SPINE else ("rfc-sub", ("rfc-root",))
        critical = _leaf(
            tpki,
            "critical-eku",
            issuer=issuer,
            san=[x509.DNSName(GP)],
            extensions=(ext(x509.ExtendedKeyUsage([SERVER, CLIENT]), critical=True),),
        )
        chain = [tpki.cas[issuer].certificate]
        validator = _v(tpki, disabled, trust=trust, profile=profile, purpose=purpose)
        result = validator.validate(critical, chain, at=AT)
        assert _codes(result) == (FailureCode.UNTRUSTED,)
        assert "criticality" in result.failures[0].message
        plain = _leaf(tpki, "plain-eku", issuer=issuer, san=[x509.DNSName(GP)])
        assert validator.validate(plain, chain, at=AT).valid


def _subject(cn: str | None) -> x509.Name:
    if cn is None:
        return x509.Name([])
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nhs"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Devices"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


class TestSubjectAltNameRules:
    """Finding 5: the spine profile also dropped the SAN criticality rules."""

    def test_spine_relaxes_only_the_absent_san(
        self, tpki: TestPKI, disabled: RevocationChecker
    ) -> None:
        """No SAN and the FQDN in the CN: valid (the relaxation real Spine certificates need)."""
        leaf = _leaf(tpki, "spine-shape", issuer="sub-ca")
        result = _v(tpki, disabled).validate(leaf, [tpki.sub_ca.certificate], at=AT)
        assert result.valid, result.failures
        assert result.fqdn_source == "cn"

    @pytest.mark.parametrize(
        ("cn", "critical", "valid"),
        [
            (None, False, False),  # empty subject: the SAN MUST be critical
            (GP, True, False),  # subject present: the SAN must not be critical
            (None, True, True),
            (GP, False, True),
        ],
        ids=["empty-noncritical", "subject-critical", "empty-critical", "subject-noncritical"],
    )
    def test_rfc_5280_4_2_1_6_holds_in_the_spine_profile(
        self,
        tpki: TestPKI,
        disabled: RevocationChecker,
        cn: str | None,
        critical: bool,
        valid: bool,
    ) -> None:
        """With a SAN, its criticality must match the subject's emptiness."""
        leaf = _leaf(
            tpki,
            "san-rule",
            issuer="sub-ca",
            subject=_subject(cn),
            san=[x509.DNSName(GP)],
            san_critical=critical,
        )
        result = _v(tpki, disabled).validate(leaf, [tpki.sub_ca.certificate], at=AT)
        assert result.valid is valid, result.failures
        if not valid:
            assert _codes(result) == (FailureCode.UNTRUSTED,)
            assert "4.2.1.6" in result.failures[0].message

    def test_an_empty_subject_needs_a_san(self, tpki: TestPKI, disabled: RevocationChecker) -> None:
        """No subject and no SAN names nothing: refused even when names are not compared."""
        leaf = _leaf(tpki, "nameless", issuer="sub-ca", subject=_subject(None))
        skip = _v(tpki, disabled, names=[], unsafe_skip_fqdn_check=True)
        result = skip.validate(leaf, [tpki.sub_ca.certificate], at=AT)
        assert FailureCode.UNTRUSTED in result.codes


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    has_subject=st.booleans(),
    has_san=st.booleans(),
    critical=st.booleans(),
    profile=st.sampled_from(list(Profile)),
)
def test_the_san_rule_for_every_shape(
    tpki: TestPKI,
    disabled: RevocationChecker,
    has_subject: bool,
    has_san: bool,
    critical: bool,
    profile: Profile,
) -> None:
    """Every subject/SAN/criticality combination in every profile: valid exactly when RFC
    5280 4.2.1.6 holds and the profile finds the name (spine: the one CN without a SAN)."""
    issuer, trust = ("sub-ca", ()) if profile is Profile.SPINE else ("rfc-sub", ("rfc-root",))
    leaf = _leaf(
        tpki,
        "shape",
        issuer=issuer,
        subject=_subject(GP if has_subject else None),
        san=[x509.DNSName(GP)] if has_san else None,
        san_critical=critical,
    )
    result = _v(tpki, disabled, trust=trust, profile=profile).validate(
        leaf, [tpki.cas[issuer].certificate], at=AT
    )
    rule_holds = has_san and critical != has_subject
    spine_cn = profile is Profile.SPINE and has_subject and not has_san
    assert result.valid is (rule_holds or spine_cn), result.failures


class TestOneCommonName:
    """Finding 6: any of two CNs matched the SSP FQDN."""

    @pytest.mark.parametrize("rogue_first", [True, False])
    def test_two_cns_are_refused_when_the_fqdn_comes_from_the_cn(
        self, tpki: TestPKI, disabled: RevocationChecker, rogue_first: bool
    ) -> None:
        """CN=rogue.example.nhs.uk plus CN=<the SSP FQDN> under the Sub CA: FQDN_MISMATCH."""
        cns = ["rogue.example.nhs.uk", tpki.ssp_fqdn]
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, n)
                for n in (cns if rogue_first else cns[::-1])
            ]
        )
        leaf = _leaf(tpki, "two-cns", issuer="sub-ca", subject=subject)
        validator = _v(tpki, disabled, names=tpki.ssp_fqdn)
        result = validator.validate(leaf, [tpki.sub_ca.certificate], at=AT)
        assert _codes(result) == (FailureCode.FQDN_MISMATCH,)
        assert "2 CNs" in result.failures[0].message

    def test_two_cns_in_one_rdn_are_refused_too(
        self, tpki: TestPKI, disabled: RevocationChecker
    ) -> None:
        """A multi-valued RDN carrying both CNs is the same ambiguity."""
        rdn = x509.RelativeDistinguishedName(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, "rogue.example.nhs.uk"),
                x509.NameAttribute(NameOID.COMMON_NAME, tpki.ssp_fqdn),
            ]
        )
        leaf = _leaf(tpki, "two-cns-rdn", issuer="sub-ca", subject=x509.Name([rdn]))
        result = _v(tpki, disabled, names=tpki.ssp_fqdn).validate(
            leaf, [tpki.sub_ca.certificate], at=AT
        )
        assert _codes(result) == (FailureCode.FQDN_MISMATCH,)

    def test_with_a_san_the_cns_do_not_matter(
        self, tpki: TestPKI, disabled: RevocationChecker
    ) -> None:
        """The SAN names the certificate; CNs are then ignored, however many."""
        subject = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, n) for n in ("a.nhs.uk", "b.nhs.uk")]
        )
        leaf = _leaf(tpki, "cns-and-san", issuer="sub-ca", subject=subject, san=[x509.DNSName(GP)])
        assert _v(tpki, disabled).validate(leaf, [tpki.sub_ca.certificate], at=AT).valid


class TestGeneralProfile:
    """Finding 8: the Spine defaults could not be changed through the public API."""

    def _rfc(
        self, tpki: TestPKI, disabled: RevocationChecker, **options: object
    ) -> ClientCertValidator:
        return _v(tpki, disabled, trust=("rfc-root",), profile=Profile.GENERAL, **options)

    def test_an_absent_eku_means_any_purpose(
        self, tpki: TestPKI, disabled: RevocationChecker
    ) -> None:
        """RFC 5280 4.2.1.12: no extKeyUsage, no restriction (general); Spine wants one."""
        leaf = _leaf(
            tpki, "no-eku", issuer="rfc-sub", san=[x509.DNSName(GP)], omit=(x509.ExtendedKeyUsage,)
        )
        chain = [tpki.cas["rfc-sub"].certificate]
        for purpose in (Purpose.CLIENT, Purpose.SERVER):
            result = self._rfc(tpki, disabled, purpose=purpose).validate(leaf, chain, at=AT)
            assert result.valid, (purpose, result.failures)
        strict = _v(tpki, disabled, trust=("rfc-root",), profile=Profile.STRICT)
        assert strict.validate(leaf, chain, at=AT).codes == (FailureCode.WRONG_PURPOSE,)

    def test_a_present_eku_still_restricts(
        self, tpki: TestPKI, disabled: RevocationChecker
    ) -> None:
        """With an extKeyUsage, the purpose must be in it; anyExtendedKeyUsage does not count."""
        chain = [tpki.cas["rfc-sub"].certificate]
        for eku in (
            (ExtendedKeyUsageOID.EMAIL_PROTECTION,),
            (ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,),
        ):
            leaf = _leaf(tpki, "other-eku", issuer="rfc-sub", eku=eku, san=[x509.DNSName(GP)])
            result = self._rfc(tpki, disabled).validate(leaf, chain, at=AT)
            assert result.codes == (FailureCode.WRONG_PURPOSE,), eku

    def test_purpose_any_checks_no_eku(self, tpki: TestPKI, disabled: RevocationChecker) -> None:
        """Purpose.ANY: neither the leaf's nor the CAs' extKeyUsage is a condition."""
        leaf = _leaf(
            tpki,
            "email-only",
            issuer="rfc-client-only-ca",
            eku=(ExtendedKeyUsageOID.EMAIL_PROTECTION,),
            san=[x509.DNSName(GP)],
        )
        chain = [tpki.cas["rfc-client-only-ca"].certificate]
        result = self._rfc(tpki, disabled, purpose=Purpose.ANY).validate(leaf, chain, at=AT)
        assert result.valid, result.failures

    def test_depth_is_configurable_up_to_16(
        self, tpki: TestPKI, disabled: RevocationChecker
    ) -> None:
        """Ten intermediates: too deep for the default 8, valid with max_chain_depth=10."""
        parent = "rfc-root"
        chain = []
        for index in range(10):
            name = f"rfc-deep-{index}"
            if name not in tpki.cas:
                tpki.issue_ca(name, parent=parent, extensions=rfc_ca_extensions())
            chain.insert(0, tpki.cas[name].certificate)
            parent = name
        leaf = _leaf(tpki, "deep", issuer=parent, san=[x509.DNSName(GP)])
        default = self._rfc(tpki, disabled)
        assert default.max_chain_depth == 8
        assert default.validate(leaf, chain, at=AT).codes == (FailureCode.CHAIN_TOO_LONG,)
        deep = self._rfc(tpki, disabled, max_chain_depth=10)
        assert deep.validate(leaf, chain, at=AT).valid
        assert self._rfc(tpki, disabled, max_chain_depth=16).max_chain_depth == 16
        with pytest.raises(ConfigurationError):
            self._rfc(tpki, disabled, max_chain_depth=17)

    def test_required_key_usage(self, tpki: TestPKI, disabled: RevocationChecker) -> None:
        """required_key_usage: every bit asserted, else WRONG_PURPOSE; unknown names refused."""
        chain = [tpki.cas["rfc-sub"].certificate]
        leaf = _leaf(tpki, "ku", issuer="rfc-sub", san=[x509.DNSName(GP)])  # EC: digitalSignature
        assert (
            self._rfc(tpki, disabled, required_key_usage=["digital_signature"])
            .validate(leaf, chain, at=AT)
            .valid
        )
        result = self._rfc(tpki, disabled, required_key_usage=["key_encipherment"]).validate(
            leaf, chain, at=AT
        )
        assert result.codes == (FailureCode.WRONG_PURPOSE,)
        assert "key_encipherment" in result.failures[0].message
        bare = _leaf(tpki, "no-ku", issuer="rfc-sub", san=[x509.DNSName(GP)], omit=(x509.KeyUsage,))
        assert self._rfc(tpki, disabled, required_key_usage=["digital_signature"]).validate(
            bare, chain, at=AT
        ).codes == (FailureCode.WRONG_PURPOSE,)
        assert self._rfc(tpki, disabled).validate(bare, chain, at=AT).valid
        with pytest.raises(ConfigurationError) as caught:
            self._rfc(tpki, disabled, required_key_usage=["sign_everything"])
        assert caught.value.source == "required_key_usage"

    @pytest.mark.parametrize("bit", ["encipher_only", "decipher_only"])
    def test_encipher_and_decipher_only_need_key_agreement(
        self, tpki: TestPKI, disabled: RevocationChecker, bit: str
    ) -> None:
        """RFC 5280 4.2.1.3: encipherOnly/decipherOnly mean something only with keyAgreement."""
        flags = dict.fromkeys(KEY_USAGE_BITS, False)
        flags.update(digital_signature=True, key_agreement=True, **{bit: True})
        usage = ext(x509.KeyUsage(**flags))
        leaf = _leaf(
            tpki, f"ku-{bit}", issuer="rfc-sub", san=[x509.DNSName(GP)], extensions=(usage,)
        )
        chain = [tpki.cas["rfc-sub"].certificate]
        assert (
            self._rfc(tpki, disabled, required_key_usage=[bit]).validate(leaf, chain, at=AT).valid
        )
        plain = _leaf(tpki, "ku-plain", issuer="rfc-sub", san=[x509.DNSName(GP)])
        result = self._rfc(tpki, disabled, required_key_usage=[bit]).validate(plain, chain, at=AT)
        assert result.codes == (FailureCode.WRONG_PURPOSE,)

    def test_ip_address_names_for_clients(self, tpki: TestPKI, disabled: RevocationChecker) -> None:
        """An IP configured for a client certificate is matched against iPAddress SANs."""
        address = ipaddress.ip_address("10.0.0.7")
        leaf = _leaf(tpki, "client-ip", issuer="rfc-sub", san=[x509.IPAddress(address)])
        chain = [tpki.cas["rfc-sub"].certificate]
        result = self._rfc(tpki, disabled, names=["10.0.0.7"]).validate(leaf, chain, at=AT)
        assert result.valid, result.failures
        assert result.fqdn == "10.0.0.7"
        v6 = self._rfc(tpki, disabled, names=["[::1]"]).validate(leaf, chain, at=AT)
        assert v6.codes == (FailureCode.FQDN_MISMATCH,)

    def test_the_spine_profile_stays_the_default(
        self, tpki: TestPKI, disabled: RevocationChecker
    ) -> None:
        """Without a profile, a validator is the spine one: the real Spine shape passes, the
        general profile's relaxations (no EKU, depth 8) do not apply."""
        validator = ClientCertValidator(tpki.trust_store(), ssp_fqdns=GP, revocation=disabled)
        assert validator.max_chain_depth == 3
        chain = [tpki.sub_ca.certificate]
        assert validator.validate(_leaf(tpki, "spine-default", issuer="sub-ca"), chain, at=AT).valid
        no_eku = _leaf(tpki, "spine-no-eku", issuer="sub-ca", omit=(x509.ExtendedKeyUsage,))
        assert validator.validate(no_eku, chain, at=AT).codes == (FailureCode.WRONG_PURPOSE,)
