"""Fuzz target: whole connections to the reference provider (issue 11's invariant).

Hostile connections from ``tests/provider/connection_cases.py`` - every stage from
before the ClientHello to after a response; random bytes, TLS records of any type and
length, real records flipped, cut or replayed, alerts, half-closes, resets and
renegotiations; with and without a client certificate - against two providers on
127.0.0.1, one per client-auth mode. After every case the SSP's next request must be
served, the server must not have failed, and no exception may have escaped a
connection.

``make test`` runs the bounded slice in ``tests/provider/test_connection_fuzz.py`` (on
every Python); this module is the long campaign of ``make fuzz`` (hypothesis only: see
``HYPOTHESIS_ONLY`` in ``tests/fuzz/__main__.py``).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import strategies as st

from spinepki.policy import ClientAuth
from spinepki.provider import ProviderLimits, ProviderServer, run_provider
from spinepki.testpki import KeyType, write_pki
from spinepki.testpki.responder import Responder
from tests.fuzz._helpers import fuzz_test
from tests.provider import connection_cases as cc
from tests.provider._helpers import Written

#: A case is a handful of loopback round trips; a renegotiation starts openssl.
MAX_SECONDS = 10.0
_MODES = (ClientAuth.HTTP_496, ClientAuth.REQUIRE)


_STACK = contextlib.ExitStack()
atexit.register(_STACK.close)


@pytest.fixture(scope="module", autouse=True)
def _stop_targets() -> Iterator[None]:
    """Stop the providers when the module's tests end (their check threads too)."""
    yield
    _STACK.close()
    _targets.cache_clear()


@functools.cache
def _targets() -> tuple[Written, dict[ClientAuth, ProviderServer]]:
    """Two providers (one per mode) on one test PKI, started once per module run."""
    stack = _STACK
    responder = stack.enter_context(Responder.with_new_pki(key_type=KeyType.EC_P256))
    directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spinepki-fuzz-")))
    write_pki(responder.pki, directory)
    written = Written(responder.pki, directory)
    short = ProviderLimits(handshake_timeout=1.0, header_timeout=1.0, body_timeout=1.0)
    servers = {
        mode: stack.enter_context(run_provider(written.config(client_auth=mode, limits=short)))
        for mode in _MODES
    }
    return written, servers


@fuzz_test(st.sampled_from(_MODES), cc.cases(), ci_examples=5, max_seconds=MAX_SECONDS)
def test_no_connection_stops_the_server(mode: ClientAuth, case: cc.Case) -> None:
    """After any hostile connection, the SSP's next request is served."""
    if case.action is cc.Action.RENEGOTIATE and cc.OPENSSL is None:
        return
    written, servers = _targets()
    server = servers[mode]
    errors = server.stats.connection_errors
    cc.run_case(case, written, server)
    cc.check_still_serving(written, server, errors, (mode, case))
