"""The provider configuration file: every key checked once, every error names its key."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from spinepki._toml import Table
from spinepki.errors import ConfigurationError, SSPConfigError
from spinepki.gate import RootKind
from spinepki.policy import ClientAuth
from spinepki.provider import ProviderConfig, ProviderConfigError, ProviderLimits, load_config
from spinepki.revocation import RevocationMode
from spinepki.trust import SpineEnvironment

EXAMPLE = Path(__file__).parents[2] / "spinepki" / "provider" / "example.toml"


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text())


def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()


class TestExample:
    """The shipped example configuration."""

    def test_example_parses(self) -> None:
        """spinepki/provider/example.toml loads, with paths relative to its directory."""
        config = load_config(EXAMPLE)
        assert config.asid == "918999198738"
        assert config.client_auth is ClientAuth.REQUIRE
        assert config.trust is SpineEnvironment.INT
        assert config.revocation is RevocationMode.HARD_FAIL
        assert config.certificate == EXAMPLE.parent / "certs/provider.chain.pem"
        assert set(config.service_roots) == {RootKind.FOUNDATIONS, RootKind.STRUCTURED}
        assert config.limits == ProviderLimits()  # the example shows the defaults

    def test_minimal(self, tmp_path: Path) -> None:
        """Only asid, one root, certificate, key, trust and ssp_fqdns are required."""
        data = {
            "provider": {"asid": "1", "service_roots": {"foundations": "/A/STU3/1/gpconnect"}},
            "tls": {"certificate": "c.pem", "key": "k.pem", "trust_files": "ca.pem"},
            "validation": {"ssp_fqdns": "msg.int.spine2.ncrs.nhs.uk"},
        }
        config = ProviderConfig.from_mapping(data, base_dir=tmp_path)
        assert config.trust_files == (tmp_path / "ca.pem",)
        assert config.port == 8443
        assert config.app == "spinepki.provider:demo_app"


BAD: list[tuple[str, Any, str]] = [
    ("provider", _DELETE, "provider"),
    ("provider.asid", _DELETE, "provider.asid"),
    ("provider.asid", "918 999", "provider.asid"),
    ("provider.asid", 918999198738, "provider.asid"),
    ("provider.client_auth", "optional", "provider.client_auth"),
    ("provider.port", 70000, "provider.port"),
    ("provider.port", "8443", "provider.port"),
    ("provider.port", True, "provider.port"),
    ("provider.host", "", "provider.host"),
    ("provider.app", "no-colon", "provider.app"),
    ("provider.colour", "blue", "provider.colour"),
    ("provider.service_roots", {}, "provider.service_roots"),
    ("provider.service_roots", "x", "provider.service_roots"),
    ("provider.service_roots.unknown", ["/x"], "provider.service_roots.unknown"),
    ("provider.service_roots.foundations", [], "provider.service_roots.foundations"),
    ("provider.service_roots.foundations", [1], "provider.service_roots.foundations"),
    ("tls.certificate", _DELETE, "tls.certificate"),
    ("tls.key", "", "tls.key"),
    ("tls.trust", "staging", "tls.trust"),
    ("tls.trust_files", ["ca.pem"], "tls.trust"),  # both trust and trust_files
    ("tls.key_password_env", "not a name", "tls.key_password_env"),
    ("tls.key_pasword_env", "X", "tls.key_pasword_env"),
    ("validation.ssp_fqdns", [], "validation.ssp_fqdns"),
    ("validation.ssp_fqdns", _DELETE, "validation.ssp_fqdns"),
    ("validation.revocation", "sometimes", "validation.revocation"),
    ("validation.revocation", "disabled", "validation.revocation"),
    ("validation.revocation", "offline", "validation.revocation"),
    ("limits.max_connections", 0, "limits.max_connections"),
    ("limits.max_connections", 1.5, "limits.max_connections"),
    ("limits.handshake_timeout", -1, "limits.handshake_timeout"),
    ("limits.header_timeout", float("inf"), "limits.header_timeout"),
    ("limits.read_timeout", "30", "limits.read_timeout"),
    ("limits.max_header_bytes", 100, "limits.max_header_bytes"),
    ("limits.max_conections", 5, "limits.max_conections"),
    ("limits", 5, "limits"),
    ("extra", {"a": 1}, "extra"),
]


class TestErrors:
    """Each bad key raises ProviderConfigError (a ConfigurationError) naming that key."""

    @pytest.mark.parametrize(("key", "value", "named"), BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
    def test_bad_key(self, key: str, value: Any, named: str, tmp_path: Path) -> None:
        """The error's key (and message) names the offending key."""
        data = _set(example(), key, value)
        with pytest.raises(ProviderConfigError) as info:
            ProviderConfig.from_mapping(data, base_dir=tmp_path)
        assert info.value.key == named
        assert str(info.value).startswith(named + ":")
        assert isinstance(info.value, ConfigurationError)
        assert info.value.code == "config.provider"

    def test_unknown_root_kind_names_the_known_ones(self, tmp_path: Path) -> None:
        """A service root of no known kind says which kinds there are."""
        data = _set(example(), "provider.service_roots.fundations", ["/x"])
        with pytest.raises(
            ProviderConfigError, match="unknown root kind; expected one of: "
        ) as info:
            ProviderConfig.from_mapping(data, base_dir=tmp_path)
        assert all(kind.value in str(info.value) for kind in RootKind)

    def test_no_trust_at_all(self, tmp_path: Path) -> None:
        """Neither trust nor trust_files is an error naming tls.trust."""
        data = _set(example(), "tls.trust", _DELETE)
        with pytest.raises(ProviderConfigError) as info:
            ProviderConfig.from_mapping(data, base_dir=tmp_path)
        assert info.value.key == "tls.trust"

    def test_unreadable_file(self, tmp_path: Path) -> None:
        """A missing file is an error with key 'file'."""
        with pytest.raises(ProviderConfigError) as info:
            load_config(tmp_path / "missing.toml")
        assert info.value.key == "file"

    def test_not_toml(self, tmp_path: Path) -> None:
        """A file that is not TOML is an error with key 'file'."""
        path = tmp_path / "bad.toml"
        path.write_text("[provider\nasid = ")
        with pytest.raises(ProviderConfigError, match="not valid TOML"):
            load_config(path)

    def test_limits_direct(self) -> None:
        """ProviderLimits checks its own fields when built in code."""
        with pytest.raises(ProviderConfigError) as info:
            ProviderLimits(backlog=0)
        assert info.value.key == "limits.backlog"


class TestSourceKey:
    """What the per-source limit counts by."""

    @pytest.mark.parametrize(
        ("host", "key"),
        [
            ("127.0.0.2", "127.0.0.2"),
            ("::ffff:10.0.0.1", "10.0.0.1"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
            ("fe80::1%eth0", "fe80::/64"),
            ("/run/provider.sock", "/run/provider.sock"),
        ],
    )
    def test_keys(self, host: str, key: str) -> None:
        """IPv4 by address (mapped too), IPv6 by /64 (a host walking its own /64 is one
        source), anything else as it is."""
        from spinepki.provider._loop import source_key

        assert source_key(host) == key


@pytest.mark.parametrize("method", ["string", "integer", "number", "enum"])
def test_every_table_error_is_the_callers_class(method: str) -> None:
    """The SSP's directory passes SSPConfigError; no reader may fall back to the provider's."""
    table = Table({"key": [1]}, "ssp.", SSPConfigError)
    call = {
        "string": lambda: table.string("key"),
        "integer": lambda: table.integer("key", 0),
        "number": lambda: table.number("key", 0.0),
        "enum": lambda: table.enum("key", RevocationMode, RevocationMode.HARD_FAIL),
    }[method]
    with pytest.raises(SSPConfigError, match=r"ssp\.key"):
        call()
