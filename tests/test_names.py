"""check_fqdn, check_http_url and check_file_name: what may go into certificates and paths."""

from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spinepki import ConfigurationError, check_fqdn, check_http_url
from spinepki._names import MAX_FQDN_LENGTH, check_file_name

LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


class TestFQDN:
    @pytest.mark.parametrize(
        "name",
        ["msg.dev.spine2.ncrs.nhs.uk", "localhost", "xn--bcher-kva.example", "a-1.B2", "127.0.0.1"],
    )
    def test_host_names_pass(self, name: str) -> None:
        """RFC 1123 host names are returned unchanged."""
        assert check_fqdn(name) == name

    @pytest.mark.parametrize(
        "name",
        ["", "bad fqdn!!", "a..b", ".a", "a.", "-a.b", "a-.b", "a_b.c", "é.uk", "a/b", "*.x.y"],
    )
    def test_others_are_refused(self, name: str) -> None:
        """Spaces, punctuation, empty labels, a trailing dot, Unicode: ConfigurationError."""
        with pytest.raises(ConfigurationError) as info:
            check_fqdn(name, what="--fqdn")
        assert info.value.code == "config"
        assert str(info.value).startswith("--fqdn: ")

    def test_wildcard_only_when_asked(self) -> None:
        """``*`` is accepted as the whole left-most label with wildcard=True."""
        assert check_fqdn("*.example.nhs.uk", wildcard=True) == "*.example.nhs.uk"
        for bad in ("*", "a.*.b", "*x.b", "*.*.b"):
            with pytest.raises(ConfigurationError):
                check_fqdn(bad, wildcard=True)

    def test_length_limits(self) -> None:
        """Labels up to 63 characters, names up to 253."""
        assert check_fqdn("a" * 63 + ".uk")
        with pytest.raises(ConfigurationError):
            check_fqdn("a" * 64 + ".uk")
        name = ".".join(["a" * 63] * 4)[:MAX_FQDN_LENGTH]
        assert check_fqdn(name.rstrip(".")) == name.rstrip(".")
        with pytest.raises(ConfigurationError):
            check_fqdn("a." * 200 + "uk")

    def test_huge_input_is_refused_quickly_and_quoted_short(self) -> None:
        """100x a long name: refused on its length, the message stays short."""
        with pytest.raises(ConfigurationError) as info:
            check_fqdn("a" * 25_300)
        assert len(str(info.value)) < 200

    @given(st.text(max_size=80))
    def test_general_rule(self, name: str) -> None:
        """Accepted exactly when every dot-separated label is an LDH label."""
        labels = name.split(".")
        expected = (
            bool(name)
            and len(name) <= MAX_FQDN_LENGTH
            and all(LABEL.fullmatch(label) for label in labels)
        )
        try:
            check_fqdn(name)
        except ConfigurationError:
            assert not expected
        else:
            assert expected


class TestHttpURL:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8089",
            "https://crl.nhs.uk/int/1c/crlc7.crl",
            "http://[::1]:8080/pki",
            "http://localhost",
        ],
    )
    def test_urls_pass(self, url: str) -> None:
        """http(s) URLs with a host (name or IP), optional port and path."""
        assert check_http_url(url) == url

    @pytest.mark.parametrize(
        "url",
        [
            "notaurl",
            "ftp://x.nhs.uk",
            "http://",
            "http://bad host/",
            "http://x.nhs.uk/a b",
            "http://user:pw@x.nhs.uk",
            "http://x.nhs.uk/?q=1",
            "http://x.nhs.uk/#f",
            "http://x.nhs.uk:99999",
            "http://x.nhs.uk:0",
            'http://x.nhs.uk/"quote',
            "http://x_y.nhs.uk",
            "http://x.nhs.uk/\n",
        ],
    )
    def test_others_are_refused(self, url: str) -> None:
        """Not a scheme we fetch, no host, credentials, query, spaces, bad port: refused."""
        with pytest.raises(ConfigurationError):
            check_http_url(url, what="base_url")

    @given(st.text(max_size=60))
    def test_never_crashes(self, text: str) -> None:
        """Any text: returned as is, or a ConfigurationError."""
        with contextlib.suppress(ConfigurationError):
            assert check_http_url(text) == text


class TestFileName:
    @pytest.mark.parametrize("name", ["ssp", "wrong-fqdn", "partner_2", "A1"])
    def test_names_pass(self, name: str) -> None:
        """Letters, digits, '-' and '_'."""
        assert check_file_name(name) == name

    @pytest.mark.parametrize(
        "name", ["", "../../escape", "/srv/abs", "a/b", "..", ".hidden", "-rf", "x.key", "a" * 65]
    )
    def test_paths_and_dots_are_refused(self, name: str) -> None:
        """Separators, '..', dots (x.key would land on x's key file), a leading '-'."""
        with pytest.raises(ConfigurationError):
            check_file_name(name)

    @given(st.text(max_size=70))
    def test_accepted_names_never_leave_the_directory(self, name: str) -> None:
        """Whatever is accepted has no separator and no dot."""
        try:
            check_file_name(name)
        except ConfigurationError:
            return
        assert "/" not in name
        assert "\\" not in name
        assert "." not in name
        assert name
