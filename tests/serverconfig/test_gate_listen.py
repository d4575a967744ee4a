"""spinepki gate serve refuses a listen address in use at once, in one line."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from spinepki.errors import ConfigurationError
from spinepki.gate_service import GateSettings
from spinepki.gate_service._server import check_listen
from spinepki.serverconfig import Listen
from tests.serverconfig import _helpers as h


@pytest.fixture(scope="module")
def settings() -> GateSettings:
    """The least a gate service needs: nothing here is fetched or served."""
    return GateSettings(
        provider_asid=h.ASID,
        service_roots={"foundations": [h.FOUNDATIONS]},
        environment="int",
        ssp_fqdns=("msg.int.spine2.ncrs.nhs.uk",),
    )


def test_a_port_in_use_is_a_configuration_error(settings: GateSettings) -> None:
    """A listening socket on the port: ConfigurationError naming the address."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = replace(settings.build(), listen=Listen("127.0.0.1", port))
        with pytest.raises(ConfigurationError) as info:
            check_listen(config)
    assert str(info.value) == f"listen: cannot listen on 127.0.0.1:{port}: address already in use"
    check_listen(config)  # free again: accepted
