"""Building the simulator: credentials, the port, and the blocking ``serve``."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from spinepki.demo._environment import default_directory
from spinepki.errors import ConfigurationError
from spinepki.ssp import SSPConfigError, create_ssp, serve
from tests.ssp._helpers import Bench


def test_missing_password_variable_is_named(bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPINEPKI_TEST_SSP_PASSWORD", raising=False)
    config = bench.config(default_directory(), key_password_env="SPINEPKI_TEST_SSP_PASSWORD")
    with pytest.raises(SSPConfigError) as info:
        create_ssp(config)
    assert info.value.key == "ssp.key_password_env"


def test_encrypted_key_with_its_password(bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key may be encrypted; the password comes from the named variable."""
    key = bench.folder / "ssp-encrypted.key.pem"
    key.write_bytes(bench.pki.leaf("ssp").encrypted_key_pem(b"s3cret"))
    monkeypatch.setenv("SPINEPKI_TEST_SSP_PASSWORD", "s3cret")
    config = bench.config(
        default_directory(), key=key, key_password_env="SPINEPKI_TEST_SSP_PASSWORD"
    )
    server = create_ssp(config)
    server.stop()
    assert server.fqdn == bench.pki.ssp_fqdn  # from the certificate, no ssp.fqdn given


def test_port_in_use_is_a_configuration_error(bench: Bench) -> None:
    """A port already taken: ConfigurationError naming it."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        config = bench.config(default_directory(), port=taken.getsockname()[1])
        with pytest.raises(ConfigurationError, match="cannot listen"):
            create_ssp(config)


def test_ssp_fqdn_overrides_the_certificate(bench: Bench) -> None:
    server = create_ssp(bench.config(default_directory(), fqdn="proxy.int.spine2.ncrs.nhs.uk"))
    server.stop()
    assert server.url.startswith("https://proxy.int.spine2.ncrs.nhs.uk:")


def test_serve_stops_when_ready_fails(bench: Bench) -> None:
    """An error in the ready callback stops the server and propagates."""

    def ready(_: object) -> None:
        raise RuntimeError("caller failed")

    with pytest.raises(RuntimeError, match="caller failed"):
        serve(bench.config(default_directory()), ready=ready)


def test_config_is_replaceable(bench: Bench) -> None:
    """SSPConfig is a frozen value: replace() re-validates."""
    config = bench.config(default_directory())
    with pytest.raises(SSPConfigError) as info:
        replace(config, host="")
    assert info.value.key == "ssp.host"
