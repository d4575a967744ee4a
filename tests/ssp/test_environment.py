"""``run_environment`` (``spinepki env up``): everything up, usable, and stopped."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from spinepki.demo._environment import (
    DEFAULT_CONSUMER_ASID,
    DEFAULT_PROVIDER_ASID,
    ENV_FILE,
    Environment,
    default_directory,
    run_environment,
)
from spinepki.errors import ConfigurationError
from spinepki.gate import RootKind
from spinepki.provider import load_config as load_provider_config
from spinepki.ssp import Directory, SSPConfigError, load_config
from spinepki.testpki import KeyType
from tests.ssp._helpers import (
    READ_PATIENT,
    Bench,
    Consumer,
    consumer_entry,
    display,
    provider_entry,
)

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    folder = tmp_path_factory.mktemp("env") / "up"
    with run_environment(folder, key_type=KeyType.EC_P256) as environment:
        yield environment


def _consumer(env: Environment, leaf: str = "consumer") -> Consumer:
    return Consumer(Bench(env.pki, env.folder), env.ssp.address, leaf)


def test_default_environment_serves_through_the_ssp(env: Environment) -> None:
    """The default consumer reads metadata and a patient from the reference provider,
    through the SSP, with its gate (JWT, headers) and validator (the SSP's certificate)."""
    root = env.directory.providers[0].service_roots[RootKind.FOUNDATIONS][0]
    consumer = _consumer(env)
    metadata = consumer.get(f"{root}/metadata", audience=root)
    patient = consumer.get(
        f"{root}/Patient/1", interaction=READ_PATIENT, scope="patient/*.read", audience=root
    )
    consumer.close()
    assert metadata.status == 200, metadata.body
    assert json.loads(metadata.body)["resourceType"] == "CapabilityStatement"
    assert patient.status == 200
    assert env.providers[DEFAULT_PROVIDER_ASID].stats.accepted >= 1


def test_a_token_for_another_provider_is_refused(env: Environment) -> None:
    """The providers env up starts check the JWT's aud against their own service roots,
    so a token addressed to another provider is refused (and the right one still served)."""
    root = env.directory.providers[0].service_roots[RootKind.FOUNDATIONS][0]
    consumer = _consumer(env)
    elsewhere = consumer.get(f"{root}/metadata", audience="https://other.example.nhs.uk/B1/STU3/1")
    served = consumer.get(f"{root}/metadata", audience=root)
    consumer.close()
    assert elsewhere.status == 400, elsewhere.body
    assert "aud" in elsewhere.body.decode()
    assert served.status == 200, served.body
    config = load_provider_config(env.folder / f"provider-{DEFAULT_PROVIDER_ASID}.toml")
    roots = env.directory.providers[0].service_roots.values()
    assert set(config.expected_aud) == {url for urls in roots for url in urls}


def test_files_are_written_and_reusable(env: Environment) -> None:
    """env.toml and provider-<ASID>.toml load as they are (ssp serve / serve --config)."""
    config = load_config(env.folder / ENV_FILE)
    assert config.directory.consumers == env.directory.consumers
    provider = load_provider_config(env.folder / f"provider-{DEFAULT_PROVIDER_ASID}.toml")
    assert provider.asid == DEFAULT_PROVIDER_ASID
    assert (env.folder / "certs/consumer.chain.pem").exists()


def test_summary_names_what_a_consumer_needs(env: Environment) -> None:
    summary = env.summary()
    assert summary["ssp"]["url"] == env.ssp.url
    (consumer,) = summary["consumers"]
    assert consumer["asid"] == DEFAULT_CONSUMER_ASID
    assert Path(consumer["certificate"]).exists()
    (provider,) = summary["providers"]
    assert provider["service_roots"]["foundations"][0].endswith("/A12345/STU3/1/gpconnect")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_printed_curl_commands_work(env: Environment) -> None:
    """Each printed command, run by curl as printed, gets the status its label says."""
    commands = env.curl_commands()
    assert len(commands) == 3
    for what, command in commands:
        done = subprocess.run(
            [*shlex.split(command), "-o", "/dev/null", "-w", "%{http_code}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.stdout.strip()[-3:] == what.split("(")[-1][:3], (what, done.stderr)


def test_more_consumers_and_providers(tmp_path: Path) -> None:
    """A directory of two consumers and two providers: certificates issued for the new
    FQDNs, a provider started for each, and each consumer reaches only its own."""
    second = "918999198700"
    directory = Directory(
        (
            consumer_entry(
                DEFAULT_CONSUMER_ASID, "consumer.spinepki.test.nhs.uk", {DEFAULT_PROVIDER_ASID}
            ),
            consumer_entry("200000000777", "second-consumer.example.nhs.uk", {second}),
        ),
        (
            default_directory().providers[0],
            provider_entry(second, "B12345", None, fqdn="second-gp.example.nhs.uk"),
        ),
    )
    with run_environment(tmp_path / "two", directory=directory, key_type=KeyType.EC_P256) as env:
        assert set(env.providers) == {DEFAULT_PROVIDER_ASID, second}
        assert env.certificates["200000000777"] == "consumer-200000000777"
        root = "https://second-gp.example.nhs.uk/B12345/STU3/1/gpconnect"
        consumer = _consumer(env, "consumer-200000000777")
        allowed = consumer.get(
            f"{root}/metadata", sender="200000000777", receiver=second, audience=root
        )
        first_root = env.directory.provider(DEFAULT_PROVIDER_ASID).service_roots[
            RootKind.FOUNDATIONS
        ][0]  # type: ignore[union-attr]
        refused = consumer.get(
            f"{first_root}/metadata", sender="200000000777", receiver=DEFAULT_PROVIDER_ASID
        )
        consumer.close()
    assert allowed.status == 200, allowed.body
    assert refused.status == 403
    assert display(refused).startswith("FOT_CHECK_FAILED")


def test_address_in_the_directory_is_refused(tmp_path: Path) -> None:
    directory = Directory(
        default_directory().consumers,
        (
            provider_entry(
                DEFAULT_PROVIDER_ASID,
                "A12345",
                ("127.0.0.1", 1),
                fqdn="provider.spinepki.test.nhs.uk",
            ),
        ),
    )
    with pytest.raises(SSPConfigError) as info, run_environment(tmp_path, directory=directory):
        pass
    assert info.value.key == "directory.providers[0].address"


def test_folder_with_other_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigurationError, match="not empty"), run_environment(tmp_path):
        pass
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_earlier_environment_is_replaced(tmp_path: Path) -> None:
    """Running again in an environment's folder writes a fresh PKI there."""
    with run_environment(tmp_path, key_type=KeyType.EC_P256) as first:
        serial = first.pki.leaf("consumer").serial
    with run_environment(tmp_path, key_type=KeyType.EC_P256) as second:
        assert second.pki.leaf("consumer").serial != serial


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Making a key or starting a responder fails the test: nothing may have begun."""
    from spinepki.demo import _environment as environment
    from spinepki.testpki import _builder

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started before the inputs were checked")

    monkeypatch.setattr(_builder, "_key_for", forbidden)
    monkeypatch.setattr(environment, "Responder", forbidden)


@pytest.mark.usefixtures("no_work", "without_anycorn")
def test_without_anycorn_nothing_is_generated_or_started(tmp_path: Path) -> None:
    """anycorn missing: ConfigurationError naming the extra, before any key or server."""
    with (
        pytest.raises(ConfigurationError, match=r"pip install 'spinepki\[provider\]'"),
        run_environment(tmp_path / "e"),
    ):
        pass
    assert not (tmp_path / "e").exists()


@pytest.mark.usefixtures("no_work")
def test_a_taken_ssp_port_is_refused_before_any_work(tmp_path: Path) -> None:
    """ssp_port held by another listener: one ConfigurationError naming the address,
    before any key or server (not after the PKI and the providers are up)."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(ConfigurationError, match=f"cannot listen on 127.0.0.1:{port}"),
            run_environment(tmp_path / "e", ssp_port=port),
        ):
            pass
    assert not (tmp_path / "e").exists()


def test_a_free_fixed_ssp_port_is_used(tmp_path: Path) -> None:
    """The early check leaves a free port free: the simulator listens on it."""
    from tests.serverconfig._helpers import free_port

    port = free_port()
    with run_environment(tmp_path, key_type=KeyType.EC_P256, ssp_port=port) as environment:
        assert environment.ssp.address == ("127.0.0.1", port)
