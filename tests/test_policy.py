"""The Spine TLS policy as data."""

from __future__ import annotations

import ssl

import pytest

from spinepki.errors import PolicyError
from spinepki.policy import (
    SPINE_POLICY,
    SPINE_STRICT_POLICY,
    TLSPolicy,
    expand_ciphers,
    normalise_cipher_string,
)

SEED = "AESGCM+EECDH:AESGCM+EDH:AES256+EECDH:AES256+EDH"


class TestDefaults:
    def test_spine_policy_is_the_gp_connect_rule(self) -> None:
        """TLS 1.2 only, the seed's cipher string, server order, client certificate."""
        assert SPINE_POLICY.minimum_version is ssl.TLSVersion.TLSv1_2
        assert SPINE_POLICY.maximum_version is ssl.TLSVersion.TLSv1_2
        assert SPINE_POLICY.cipher_string == SEED
        assert SPINE_POLICY.honour_server_order
        assert SPINE_POLICY.client_certificate_required

    def test_seed_string_expands_to_the_documented_suites(self) -> None:
        """On OpenSSL 3 the seed string selects 20 suites, all ECDHE/DHE with AES-256 or GCM."""
        suites = SPINE_POLICY.suites()
        names = [s.name for s in suites]
        assert len(suites) == 20
        assert names[:2] == ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"]
        assert all(s.key_exchange in {"ECDHE", "DHE"} for s in suites)
        assert "AES128-SHA256" not in names
        assert "NULL-MD5" not in names
        rsa_usable = [s for s in suites if s.authentication == "RSA"]
        assert len(rsa_usable) == 10
        assert sum(not s.aead for s in rsa_usable) == 4
        assert sum(s.sha1_mac for s in rsa_usable) == 2

    def test_strict_profile_is_gcm_only(self) -> None:
        """The stricter named profile keeps only AES-GCM with forward secrecy."""
        suites = SPINE_STRICT_POLICY.suites()
        assert suites
        assert all("GCM" in s.name and not s.weaker for s in suites)
        assert SPINE_STRICT_POLICY is not SPINE_POLICY

    def test_dhe_suites_are_marked_as_needing_dh_params(self) -> None:
        """The policy knows which suites only work once DH parameters are loaded."""
        dhe = [s for s in SPINE_POLICY.suites() if s.needs_dh_params]
        assert dhe
        assert all(s.name.startswith("DHE-") for s in dhe)


class TestCipherStrings:
    def test_comma_form_is_accepted(self) -> None:
        """The seed's comma-separated form normalises to the colon form."""
        policy = TLSPolicy(
            name="x", cipher_string="AESGCM+EECDH, AESGCM+EDH,AES256+EECDH,AES256+EDH"
        )
        assert policy.cipher_string == SEED

    @pytest.mark.parametrize("value", ["", " , ", ":"])
    def test_empty_string_is_a_policy_error(self, value: str) -> None:
        """An empty cipher string is refused with a typed error."""
        with pytest.raises(PolicyError):
            normalise_cipher_string(value)

    def test_string_selecting_nothing_is_a_policy_error(self) -> None:
        """A cipher string OpenSSL cannot use is refused when expanded."""
        with pytest.raises(PolicyError, match="selects no cipher"):
            expand_ciphers("NOSUCHCIPHER")

    def test_allows_suite(self) -> None:
        """allows_suite answers by OpenSSL name."""
        assert SPINE_POLICY.allows_suite("ECDHE-RSA-AES256-GCM-SHA384")
        assert not SPINE_POLICY.allows_suite("AES128-SHA256")

    def test_inverted_protocol_range_is_refused(self) -> None:
        """A policy whose minimum is above its maximum cannot be built."""
        with pytest.raises(PolicyError):
            TLSPolicy(
                name="bad",
                minimum_version=ssl.TLSVersion.TLSv1_3,
                maximum_version=ssl.TLSVersion.TLSv1_2,
            )
