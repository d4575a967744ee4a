"""Request bodies (issue 11 item 4): everything that needs no body is decided before the
body is read, and an accepted body must arrive within ``body_timeout``.

The finding: a client whose certificate is already refused (revoked, wrong FQDN) held a
connection 14 s with a slow body, because the middleware read the body before judging
the certificate.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest

from spinepki.audit import AuditLogger
from spinepki.demo._callers import CREATE_APPOINTMENT, SSPRequest
from spinepki.policy import ClientAuth
from spinepki.provider import ProviderServer, run_provider
from tests.provider._helpers import Written, limits, parse, request, tls_connect, wait_for

pytestmark = pytest.mark.network

APPOINTMENT = {"resourceType": "Appointment", "status": "booked", "start": "a", "end": "b"}


def _create(written: Written, server: ProviderServer, **over: Any) -> bytes:
    values: dict[str, Any] = {
        "method": "POST",
        "path": "/Appointment",
        "interaction": CREATE_APPOINTMENT,
        "scope": "patient/*.write",
        "body": APPOINTMENT,
    }
    values.update(over)
    host = f"{written.pki.provider_fqdn}:{server.address[1]}"
    return SSPRequest(**values).render(host, int(time.time()))


def _head_only(raw: bytes) -> bytes:
    head, _, _ = raw.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n"


def _answer_without_body(
    written: Written, server: ProviderServer, cert: str | None, raw: bytes
) -> tuple[int, float, bool]:
    """Send only the head of ``raw`` (its body never comes): (status, seconds to the
    answer, whether the server then closed the connection)."""
    with tls_connect(server.address, written.client(cert), written.pki.provider_fqdn) as tls:
        started = time.perf_counter()
        tls.sendall(_head_only(raw))
        tls.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = tls.recv(65536)
            assert chunk, "closed without an answer"
            data += chunk
        waited = time.perf_counter() - started
        response = parse(data)
        length = int(response.headers["content-length"])
        while len(response.body) < length:
            response.body += tls.recv(65536)
        closed = tls.recv(65536) == b""
    return response.status, waited, closed


class TestDecidedBeforeTheBody:
    @pytest.mark.parametrize(("cert", "status"), [("revoked", 495), ("wrong-fqdn", 495)])
    def test_refused_certificate_is_answered_at_once(
        self, written: Written, provider: ProviderServer, cert: str, status: int
    ) -> None:
        """A refused certificate gets its 495 without sending a byte of the body, and the
        connection is closed (it held the connection for as long as the body took)."""
        got, waited, closed = _answer_without_body(
            written, provider, cert, _create(written, provider)
        )
        assert got == status
        assert waited < 1.0
        assert closed
        assert request(written, provider.address).status == 200

    def test_no_certificate_496_at_once(self, written: Written) -> None:
        with run_provider(written.config(client_auth=ClientAuth.HTTP_496)) as server:
            got, waited, closed = _answer_without_body(
                written, server, None, _create(written, server)
            )
            assert (got, closed) == (496, True)
            assert waited < 1.0
            assert request(written, server.address).status == 200

    @pytest.mark.parametrize(
        "over",
        [{"token": "not-a-token"}, {"headers": {"Ssp-To": "999999999999"}}, {"token_age": 600}],
        ids=["bad-token", "wrong-ssp-to", "expired-token"],
    )
    def test_refused_headers_or_token_answered_at_once(
        self, written: Written, provider: ProviderServer, over: dict[str, Any]
    ) -> None:
        got, waited, closed = _answer_without_body(
            written, provider, "ssp", _create(written, provider, **over)
        )
        assert (got, closed) == (400, True)
        assert waited < 1.0

    def test_accepted_request_reads_its_body(
        self, written: Written, provider: ProviderServer
    ) -> None:
        """The SSP's create is still served: the body is read once the rest is allowed."""
        with tls_connect(provider.address, written.client(), written.pki.provider_fqdn) as tls:
            tls.sendall(_create(written, provider))
            response = parse(_read_all(tls))
        assert response.status == 201

    def test_body_rules_still_apply(self, written: Written, provider: ProviderServer) -> None:
        """A body the application refuses is still refused (422), after the gate."""
        raw = _create(written, provider, body={"resourceType": "Appointment"})
        with tls_connect(provider.address, written.client(), written.pki.provider_fqdn) as tls:
            tls.sendall(raw)
            response = parse(_read_all(tls))
        assert response.status == 422

    def test_hostile_body_is_a_422_through_the_server(
        self, written: Written, provider: ProviderServer
    ) -> None:
        """The report's 100,000 nested arrays, posted through the whole provider: a 422
        OperationOutcome (it was a 500 with an empty body and a traceback in the log)."""
        raw = _create(written, provider, body=None)
        head, _, _ = raw.partition(b"\r\n\r\n")
        body = b"[" * 100_000 + b"]" * 100_000
        data = head + b"\r\nContent-Type: application/fhir+json\r\n"
        data += f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        with tls_connect(provider.address, written.client(), written.pki.provider_fqdn) as tls:
            tls.sendall(data)
            response = parse(_read_all(tls))
        assert response.status == 422
        assert response.json()["resourceType"] == "OperationOutcome"
        assert request(written, provider.address).status == 200


class TestBodyDeadline:
    def test_slow_body_is_cut_and_audited(
        self, written: Written, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An accepted request whose body does not arrive within body_timeout: the
        connection is closed, the server counts it, and the audit records a 400
        (the body is incomplete) for the request."""
        logger = logging.getLogger("spinepki.audit.test_body")
        config = written.config(limits=limits(body_timeout=0.5))
        with (
            caplog.at_level(logging.INFO, logger="spinepki.audit.test_body"),
            run_provider(config, audit=AuditLogger(logger)) as server,
        ):
            raw = _create(written, server)
            head, _, body = raw.partition(b"\r\n\r\n")
            with tls_connect(server.address, written.client(), written.pki.provider_fqdn) as tls:
                started = time.perf_counter()
                tls.sendall(head + b"\r\n\r\n" + body[:5])
                tls.settimeout(5)
                closed_after = None
                for byte in body[5:]:
                    try:
                        tls.sendall(bytes([byte]))
                        time.sleep(0.1)  # pacing the trickle, not waiting for a deadline
                    except OSError:
                        closed_after = time.perf_counter() - started
                        break
                    if time.perf_counter() - started > 3:
                        break
                if closed_after is None:
                    assert _read_all(tls) == b""
                    closed_after = time.perf_counter() - started
            assert 0.4 <= closed_after < 2.5, closed_after
            wait_for(lambda: server.stats.body_timeouts == 1)
            assert request(written, server.address).status == 200
        statuses = [
            r.spinepki_audit["status"] for r in caplog.records if hasattr(r, "spinepki_audit")
        ]
        assert 400 in statuses


def _read_all(tls: socket.socket) -> bytes:
    data = b""
    tls.settimeout(5)
    while True:
        try:
            chunk = tls.recv(65536)
        except OSError:
            return data
        if not chunk:
            return data
        data += chunk
