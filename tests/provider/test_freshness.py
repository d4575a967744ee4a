"""Revocation takes effect within ``max_staleness`` on every path into the provider
(issue 11 item 5): fresh handshakes, ticket- and ID-resumed TLS sessions, established
keep-alive connections, and at once after a reload or a background refresh.

The finding: after ``spinepki pki revoke`` and a re-served CRL listing the serial, the
revoked certificate was still served 200 on fresh handshakes, on resumed sessions and
after a SIGHUP reload. Time is the provider's injected clock, which the responder shares;
nothing sleeps.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from spinepki.demo._callers import SSPRequest
from spinepki.provider import ProviderServer, create_server
from spinepki.revocation import DEFAULT_MAX_STALENESS, RevocationChecker, RevocationMode
from spinepki.testpki import KeyType, write_pki
from spinepki.testpki.responder import Responder
from tests.provider._helpers import Written, parse, read_one_response, read_response, tls_connect
from tests.resilience._helpers import Clock

pytestmark = pytest.mark.network

S = DEFAULT_MAX_STALENESS


@pytest.fixture
def revocable(tmp_path: Path) -> Iterator[tuple[Written, Responder, Clock]]:
    """A PKI of its own (the test revokes the SSP's certificate), served by a responder
    whose clock is the test's."""
    with Responder.with_new_pki(key_type=KeyType.EC_P256) as responder:
        write_pki(responder.pki, tmp_path)
        clock = Clock(dt.datetime.now(dt.UTC).replace(microsecond=0))
        responder.clock = clock
        yield Written(responder.pki, tmp_path), responder, clock


def _session_client(written: Written, *, tickets: bool) -> ssl.SSLContext:
    ctx = written.client("ssp")
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET  # session-ID resumption only
    return ctx


def _get(
    written: Written,
    server: ProviderServer,
    clock: Clock,
    ctx: ssl.SSLContext,
    session: ssl.SSLSession | None = None,
) -> tuple[int, ssl.SSLSession | None, bool]:
    """One request on a new connection: (status, its TLS session, whether it resumed)."""
    raw = socket.create_connection(server.address, timeout=5)
    with ctx.wrap_socket(raw, server_hostname=written.pki.provider_fqdn, session=session) as tls:
        reused = tls.session_reused
        tls.sendall(_request(written, server, clock))
        response = parse(read_response(tls))
        return response.status, tls.session, reused


def _request(
    written: Written, server: ProviderServer, clock: Clock, *, close: bool = True
) -> bytes:
    raw = SSPRequest().render(
        f"{written.pki.provider_fqdn}:{server.address[1]}", int(clock().timestamp())
    )
    return raw if close else raw.replace(b"Connection: close\r\n", b"")


def _keep_alive_status(
    tls: ssl.SSLSocket, written: Written, server: ProviderServer, clock: Clock
) -> int:
    tls.sendall(_request(written, server, clock, close=False))
    return read_one_response(tls).status


class TestWithinMaxStaleness:
    def test_every_path_refuses_a_revoked_certificate_within_the_bound(
        self, revocable: tuple[Written, Responder, Clock]
    ) -> None:
        """Revoked and re-published at t: still served until t + max_staleness (the
        stated bound, not earlier without a refresh or reload), refused from then on -
        on a fresh handshake, a ticket-resumed and an ID-resumed session, and an open
        keep-alive connection."""
        written, _, clock = revocable
        config = written.config(revocation=RevocationMode.CRL_ONLY)
        with create_server(config, clock=clock) as server:
            tickets, ids = (
                _session_client(written, tickets=True),
                _session_client(written, tickets=False),
            )
            status, ticket_session, _ = _get(written, server, clock, tickets)
            assert status == 200
            status, id_session, _ = _get(written, server, clock, ids)
            assert status == 200
            with tls_connect(
                server.address, written.client("ssp"), written.pki.provider_fqdn
            ) as kept:
                assert _keep_alive_status(kept, written, server, clock) == 200

                written.pki.revoke("ssp")  # the responder serves the new CRL from now on
                clock.advance(S - dt.timedelta(seconds=1))
                status, _, resumed = _get(written, server, clock, tickets, ticket_session)
                assert (status, resumed) == (200, True)  # within the bound: cached evidence

                clock.advance(dt.timedelta(seconds=1))
                assert _get(written, server, clock, written.client("ssp"))[0] == 495
                status, _, resumed = _get(written, server, clock, tickets, ticket_session)
                assert status == 495
                assert not resumed  # the TLS context was renewed: no session outlives S
                status, _, resumed = _get(written, server, clock, ids, id_session)
                assert (status, resumed) == (495, False)
                assert _keep_alive_status(kept, written, server, clock) == 495
            assert server.stats.context_renewals == 1

    def test_a_reload_acts_on_a_revocation_at_once(
        self, revocable: tuple[Written, Responder, Clock]
    ) -> None:
        """What SIGHUP does (``reload_trust``): the revocation evidence is fetched again,
        so a revocation already published is refused at once (the reload used to build a
        new validator but keep the cached CRL)."""
        written, _, clock = revocable
        with create_server(
            written.config(revocation=RevocationMode.CRL_ONLY), clock=clock
        ) as server:
            assert _get(written, server, clock, written.client("ssp"))[0] == 200
            written.pki.revoke("ssp")
            assert _get(written, server, clock, written.client("ssp"))[0] == 200  # cached
            server.reload_trust()
            assert _get(written, server, clock, written.client("ssp"))[0] == 495

    def test_a_background_refresh_acts_at_once(
        self, revocable: tuple[Written, Responder, Clock]
    ) -> None:
        """The refresh that fetches the CRL listing the certificate drops every cached
        result: the next request is refused, not the one after the cache expires."""
        written, _, clock = revocable
        checker = RevocationChecker(RevocationMode.CRL_ONLY)
        config = written.config(revocation=RevocationMode.CRL_ONLY)
        try:
            with create_server(config, clock=clock, revocation=checker) as server:
                assert _get(written, server, clock, written.client("ssp"))[0] == 200
                written.pki.revoke("ssp")
                clock.advance(dt.timedelta(seconds=10))
                checker.refresh(at=clock())
                assert _get(written, server, clock, written.client("ssp"))[0] == 495
        finally:
            checker.close()

    def test_sessions_resume_within_the_lifetime(
        self, revocable: tuple[Written, Responder, Clock]
    ) -> None:
        """Resumption works (it is a real TLS feature, kept) until the context's
        lifetime, max_staleness, passes; then the context is renewed once."""
        written, _, clock = revocable
        config = written.config(revocation=RevocationMode.CRL_ONLY, max_staleness=60)
        with create_server(config, clock=clock) as server:
            ctx = _session_client(written, tickets=False)
            _, session, resumed = _get(written, server, clock, ctx)
            assert not resumed
            clock.advance(dt.timedelta(seconds=59))
            assert _get(written, server, clock, ctx, session)[2]
            clock.advance(dt.timedelta(seconds=1))
            assert not _get(written, server, clock, ctx, session)[2]
            assert server.stats.context_renewals == 1
