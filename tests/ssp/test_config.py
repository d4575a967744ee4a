"""The simulator's configuration: every bad key is a typed error that names it, sizes
are bounded, and no input of any shape raises anything else."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spinepki.demo._environment import default_directory, directory_toml
from spinepki.errors import ConfigurationError
from spinepki.gate import RootKind
from spinepki.revocation import RevocationMode
from spinepki.ssp import (
    ConsumerSystem,
    Directory,
    ForwardingLimits,
    ProviderSystem,
    SSPConfig,
    SSPConfigError,
    load_config,
    load_directory,
)
from spinepki.ssp._config import MAX_CONFIG_BYTES, MAX_SYSTEMS, parse_address

GOOD = """
[ssp]
certificate = "certs/ssp.chain.pem"
key = "certs/ssp.key.pem"
trust_files = ["ca/trust-bundle.pem"]
port = 0

[forwarding]
response_timeout = 10
methods = ["get", "post"]

[limits]
max_connections = 64

[[directory.consumers]]
asid = "200000000359"
ods = "A1001"
fqdn = "consumer.example.nhs.uk"
interactions = [
  "foundations",
  "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1",
]
send_to = ["918999198738"]

[[directory.providers]]
asid = "918999198738"
ods = "A12345"
fqdn = "gp.example.nhs.uk"
address = "127.0.0.1:9443"
[directory.providers.service_roots]
foundations = "https://gp.example.nhs.uk/A12345/STU3/1/gpconnect"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "env.toml"
    path.write_text(text)
    return path


def test_good_config_loads(tmp_path: Path) -> None:
    """Every section read; paths resolved against the file; groups expanded."""
    config = load_config(write(tmp_path, GOOD))
    assert config.certificate == tmp_path / "certs/ssp.chain.pem"
    assert config.forwarding.methods == frozenset({"GET", "POST"})
    assert config.forwarding.response_timeout == 10
    assert config.limits.max_connections == 64
    assert config.revocation is RevocationMode.HARD_FAIL
    consumer = config.directory.consumer("200000000359")
    assert consumer is not None
    assert "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1" in consumer.interactions
    provider = config.directory.provider("918999198738")
    assert provider is not None
    assert provider.address == ("127.0.0.1", 9443)
    assert provider.cpa_id == "S918999198738"
    # A provider without its own list receives every released interaction of its roots.
    assert provider.interactions == config.directory.released_interactions([RootKind.FOUNDATIONS])


def test_directory_round_trips_through_toml(tmp_path: Path) -> None:
    """directory_toml writes what load_directory reads back, equal."""
    directory = default_directory()
    path = write(tmp_path, directory_toml(directory))
    again = load_directory(path)
    assert again.consumers == directory.consumers
    assert again.providers == directory.providers


BAD: list[tuple[str, str, str]] = [
    ('asid = "200000000359"', 'asid = "2000 0000"', "directory.consumers[0].asid"),
    ('ods = "A1001"', 'ods = ""', "directory.consumers[0].ods"),
    ('fqdn = "consumer.example.nhs.uk"', 'fqdn = "not a host"', "directory.consumers[0].fqdn"),
    (
        '"foundations",',
        '"foundation",',
        "directory.consumers[0].interactions[0]",
    ),
    ('send_to = ["918999198738"]', 'send_to = ["111"]', "directory.consumers[0].send_to"),
    ('send_to = ["918999198738"]', 'send_to = "x"\nextra = 1', "directory.consumers[0].extra"),
    ('address = "127.0.0.1:9443"', 'address = "127.0.0.1"', "directory.providers[0].address"),
    ('address = "127.0.0.1:9443"', 'address = "127.0.0.1:0"', "directory.providers[0].address"),
    (
        'foundations = "https://gp.example.nhs.uk/A12345',
        'foundations = "http://gp.example.nhs.uk/A12345',
        "directory.providers[0].service_roots.foundations",
    ),
    (
        'foundations = "https://gp.example.nhs.uk/A12345',
        'foundations = "https://other.nhs.uk/A12345',
        "directory.providers[0].service_roots.foundations",
    ),
    ('STU3/1/gpconnect"', 'STU3/1/gpconnect/"', "directory.providers[0].service_roots.foundations"),
    ("/A12345/STU3", "/B99999/STU3", "directory.providers[0].service_roots.foundations"),
    ("foundations = ", "fundations = ", "directory.providers[0].service_roots.fundations"),
    ("response_timeout = 10", "response_timeout = -1", "forwarding.response_timeout"),
    ("response_timeout = 10", "retries = 3", "forwarding.retries"),
    ('methods = ["get", "post"]', 'methods = ["BREW"]', "forwarding.methods"),
    ("max_connections = 64", "max_connections = 0", "limits.max_connections"),
    ("port = 0", "port = 70000", "ssp.port"),
    ("port = 0", "port = true", "ssp.port"),
    ("port = 0", 'port = 0\nhost = ""', "ssp.host"),
    ("port = 0", 'revocation = "disabled"', "ssp.revocation"),
    ("port = 0", "prot = 1", "ssp.prot"),
    ('trust_files = ["ca/trust-bundle.pem"]', "", "ssp.trust"),
    ("[ssp]", "[sp]", "ssp"),
]


@pytest.mark.parametrize(("old", "new", "key"), BAD, ids=[b[2] for b in BAD])
def test_bad_key_is_named(tmp_path: Path, old: str, new: str, key: str) -> None:
    """One mistake, one SSPConfigError whose key is where it is."""
    assert old in GOOD
    with pytest.raises(SSPConfigError) as info:
        load_config(write(tmp_path, GOOD.replace(old, new, 1)))
    assert info.value.key == key
    assert info.value.code == "config.ssp"
    assert isinstance(info.value, ConfigurationError)


def test_duplicate_asid(tmp_path: Path) -> None:
    twice = GOOD + GOOD[GOOD.index("[[directory.providers]]") :]
    with pytest.raises(SSPConfigError) as info:
        load_config(write(tmp_path, twice))
    assert info.value.key == "directory.providers[1].asid"


def test_interaction_without_a_root(tmp_path: Path) -> None:
    """A provider listing a Structured interaction but no structured root."""
    text = GOOD.replace(
        'address = "127.0.0.1:9443"',
        'address = "127.0.0.1:9443"\ninteractions = ["structured"]',
    )
    with pytest.raises(SSPConfigError, match="structured service root") as info:
        load_config(write(tmp_path, text))
    assert info.value.key == "directory.providers[0].interactions"


def test_empty_directory(tmp_path: Path) -> None:
    text = GOOD[: GOOD.index("[[directory.consumers]]")] + "[directory]\n"
    with pytest.raises(SSPConfigError) as info:
        load_config(write(tmp_path, text))
    assert info.value.key == "directory.consumers"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\xff\xfe", "not valid TOML"),
        (b"[ssp", "not valid TOML"),
        (b"a = " + b"[" * 5000, "TOML|deeply"),
    ],
)
def test_unreadable_file(tmp_path: Path, content: bytes, reason: str) -> None:
    """Bad bytes, bad TOML, pathological nesting: SSPConfigError with key ``file``."""
    path = tmp_path / "env.toml"
    path.write_bytes(content)
    with pytest.raises(SSPConfigError, match=reason) as info:
        load_config(path)
    assert info.value.key == "file"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SSPConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert info.value.key == "file"


def test_file_over_the_bound_is_refused_unread(tmp_path: Path) -> None:
    """A file over 4 MiB is refused before parsing (no memory spent on it)."""
    path = tmp_path / "env.toml"
    path.write_bytes(b"#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(SSPConfigError, match="larger than") as info:
        load_config(path)
    assert info.value.key == "file"


def test_directory_100_times_the_normal_size_is_fast_to_use() -> None:
    """1,000 consumers and providers (100 times a large environment): built once,
    looked up by ASID; one more than MAX_SYSTEMS is refused."""
    roots = {RootKind.FOUNDATIONS: ("https://gp.example.nhs.uk/A1/STU3/1/gpconnect",)}
    providers = tuple(
        ProviderSystem(f"9{i:011d}", "A1", "gp.example.nhs.uk", roots) for i in range(1000)
    )
    consumers = tuple(
        ConsumerSystem(
            f"2{i:011d}", "B1", f"c{i}.example.nhs.uk", frozenset(), frozenset({providers[i].asid})
        )
        for i in range(1000)
    )
    directory = Directory(consumers, providers)
    assert directory.consumer("200000000999") is consumers[999]
    assert len(directory.consumer_fqdns) == 1000
    too_many = consumers * (MAX_SYSTEMS // 1000 + 1)
    with pytest.raises(SSPConfigError) as info:
        Directory(too_many, providers)
    assert info.value.key == "consumers"


class TestValues:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("127.0.0.1:1", ("127.0.0.1", 1)),
            ("[::1]:443", ("::1", 443)),
            ("gp.nhs.uk:8443", ("gp.nhs.uk", 8443)),
        ],
    )
    def test_addresses(self, value: str, expected: tuple[str, int]) -> None:
        assert parse_address(value, "k") == expected

    @pytest.mark.parametrize("value", ["", ":1", "::1:443", "[nope]:1", "host:65536", "a b:1", 5])
    def test_bad_addresses(self, value: Any) -> None:
        with pytest.raises(SSPConfigError):
            parse_address(value, "k")

    def test_forwarding_limits(self) -> None:
        with pytest.raises(SSPConfigError) as info:
            ForwardingLimits(max_idle_connections=5000)
        assert info.value.key == "max_idle_connections"
        with pytest.raises(SSPConfigError):
            ForwardingLimits(connect_timeout=float("inf"))

    def test_config_needs_one_trust(self, tmp_path: Path) -> None:
        with pytest.raises(SSPConfigError):
            SSPConfig(default_directory(), tmp_path / "c", tmp_path / "k")


_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.floats(allow_nan=True)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(
    st.sampled_from(
        [
            "asid",
            "ods",
            "fqdn",
            "interactions",
            "send_to",
            "address",
            "cpa_id",
            "service_roots",
            "x",
        ]
    ),
    _VALUES,
    st.booleans(),
)
def test_any_value_anywhere_is_a_typed_error_or_accepted(
    key: str, value: Any, provider: bool
) -> None:
    """Replacing any directory key with any TOML-shaped value gives a Directory or an
    SSPConfigError, never another exception."""
    data = tomllib.loads(GOOD)["directory"]
    entry = data["providers" if provider else "consumers"][0]
    entry[key] = value
    try:
        Directory.from_mapping(data)
    except SSPConfigError as exc:
        key = exc.key
    else:
        return
    assert key.startswith("directory.")


class TestDirectConstruction:
    """The same checks when the objects are built in code (keys relative to the object)."""

    ROOT = "https://gp.example.nhs.uk/A1/STU3/1/gpconnect"

    def provider(self, **over: Any) -> ProviderSystem:
        values: dict[str, Any] = {
            "asid": "1",
            "ods": "A1",
            "fqdn": "gp.example.nhs.uk",
            "service_roots": {RootKind.FOUNDATIONS: (self.ROOT,)},
        }
        values.update(over)
        return ProviderSystem(**values)

    @pytest.mark.parametrize(
        ("over", "key"),
        [
            ({"service_roots": {}}, "service_roots"),
            ({"service_roots": {"foundations": (ROOT,)}}, "service_roots"),
            ({"service_roots": {RootKind.FOUNDATIONS: (ROOT,) * 17}}, "service_roots.foundations"),
            ({"service_roots": {RootKind.FOUNDATIONS: ("x" * 3000,)}}, "service_roots.foundations"),
            (
                {"service_roots": {RootKind.FOUNDATIONS: ("https://gp.example.nhs.uk/A1 x",)}},
                "service_roots.foundations",
            ),
            (
                {"service_roots": {RootKind.FOUNDATIONS: ("https://gp.example.nhs.uk:99999/A1",)}},
                "service_roots.foundations",
            ),
            (
                {"service_roots": {RootKind.FOUNDATIONS: ("https://u@gp.example.nhs.uk/A1",)}},
                "service_roots.foundations",
            ),
            (
                {"service_roots": {RootKind.FOUNDATIONS: (ROOT + "?x=1",)}},
                "service_roots.foundations",
            ),
            ({"cpa_id": "S-1"}, "cpa_id"),
            ({"address": ("not a host", 1)}, "address"),
        ],
    )
    def test_provider(self, over: dict[str, Any], key: str) -> None:
        with pytest.raises(SSPConfigError) as info:
            self.provider(**over)
        assert info.value.key == key

    def test_provider_connects_to_its_root_without_an_address(self) -> None:
        assert self.provider().connect_to == ("gp.example.nhs.uk", 443)
        with_port = self.provider(
            service_roots={RootKind.FOUNDATIONS: ("https://gp.example.nhs.uk:8443/A1/x",)}
        )
        assert with_port.connect_to == ("gp.example.nhs.uk", 8443)

    def test_directory(self) -> None:
        consumer = ConsumerSystem("2", "B1", "c.example.nhs.uk", frozenset({"urn:x"}), frozenset())
        with pytest.raises(SSPConfigError) as info:
            Directory((consumer,), (self.provider(),))
        assert info.value.key == "consumers[0].interactions"
        good = ConsumerSystem("2", "B1", "c.example.nhs.uk", frozenset(), frozenset())
        with pytest.raises(SSPConfigError) as info:
            Directory((good,), (self.provider(interactions=frozenset({"urn:y"})),))
        assert info.value.key == "providers[0].interactions"
        with pytest.raises(SSPConfigError) as info:
            Directory((), (self.provider(),))
        assert info.value.key == "consumers"
        with pytest.raises(SSPConfigError) as info:
            Directory((good, good), (self.provider(),))
        assert info.value.key == "consumers[1].asid"

    def test_config(self, tmp_path: Path) -> None:
        directory = default_directory()
        with pytest.raises(SSPConfigError) as info:
            SSPConfig(directory="x", certificate=tmp_path, key=tmp_path)  # type: ignore[arg-type]
        assert info.value.key == "directory"
        with pytest.raises(SSPConfigError) as info:
            SSPConfig(directory, tmp_path, tmp_path, trust_files=(tmp_path,), fqdn="not valid")
        assert info.value.key == "ssp.fqdn"


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("[[directory.consumers]]", "[directory.consumers]", "directory.consumers"),
        ('send_to = ["918999198738"]', "", "directory.consumers[0].send_to"),
        ("port = 0", 'key_password_env = "1BAD"', "ssp.key_password_env"),
        ('methods = ["get", "post"]', 'methods = "GET"', "forwarding.methods"),
        (
            '"foundations",\n',
            "".join(f'"urn:{i}",\n' for i in range(300)),
            "directory.consumers[0].interactions",
        ),
    ],
    ids=["not-array", "missing-send_to", "password-env", "methods-string", "300-interactions"],
)
def test_more_bad_keys(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert old in GOOD
    with pytest.raises(SSPConfigError) as info:
        load_config(write(tmp_path, GOOD.replace(old, new, 1)))
    assert info.value.key == key
