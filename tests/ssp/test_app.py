"""The simulator's ASGI application driven in-process (the consumer side faked, the
provider real over TLS): orderings that a socket-level test can only catch by luck."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from spinepki.provider import ProviderServer
from spinepki.ssp import Directory, SSPServer, create_ssp
from tests.ssp._helpers import (
    CONSUMER,
    PROVIDER,
    Bench,
    Recorder,
    consumer_entry,
    provider_entry,
    recorder_server,
    root_of,
    ssp_headers,
)

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def parts(bench: Bench) -> Iterator[tuple[SSPServer, ProviderServer, Recorder]]:
    server, recorder = recorder_server(bench)
    with server:
        directory = Directory(
            (consumer_entry(CONSUMER, bench.pki.consumer_fqdn, {PROVIDER}),),
            (provider_entry(PROVIDER, "A12345", server.address),),
        )
        ssp = create_ssp(bench.config(directory))  # the app only: no consumer-side server
        try:
            yield ssp, server, recorder
        finally:
            ssp.stop()


def _scope(bench: Bench, url: str) -> dict[str, Any]:
    headers = [(k.lower().encode(), v.encode()) for k, v in ssp_headers().items()]
    return {
        "type": "http",
        "method": "GET",
        "path": "/" + url,
        "raw_path": ("/" + url).encode(),
        "query_string": b"",
        "headers": [(b"host", b"ssp"), *headers],
        "client": ("127.0.0.1", 50000),
        "extensions": {
            "tls": {"client_cert_chain": [bench.pki.leaf("consumer").chain_pem.decode()]}
        },
    }


async def _lifespan(app: Any) -> None:
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return next(messages)

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert app.idle_provider_connections == 0


def test_connection_is_back_in_the_pool_before_the_answer_ends(
    bench: Bench, parts: tuple[SSPServer, ProviderServer, Recorder]
) -> None:
    """When the last body message goes to the consumer, the provider connection is
    already idle in the pool: the consumer's next request (sent as soon as it has the
    answer) finds it instead of opening another."""
    ssp, _, _ = parts
    app = ssp.app
    seen: list[tuple[str, bool, int]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        seen.append(
            (message["type"], message.get("more_body", False), app.idle_provider_connections)
        )

    async def main() -> None:
        for _ in range(2):
            await app(_scope(bench, f"{root_of('A12345')}/metadata"), receive, send)
        await _lifespan(app)  # closes the pool's connections, in this loop

    anyio.run(main)
    finals = [idle for kind, more, idle in seen if kind == "http.response.body" and not more]
    assert finals == [1, 1]
    assert seen[0][0] == "http.response.start"


def _drive(app: Any, scope: dict[str, Any], inbound: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    messages = iter(inbound)

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    return sent


def test_websocket_is_refused(parts: tuple[SSPServer, ProviderServer, Recorder]) -> None:
    """GP Connect has no websockets: the connection is closed with 1008 (policy)."""
    sent = _drive(parts[0].app, {"type": "websocket"}, [{"type": "websocket.connect"}])
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_unreadable_client_certificate_is_495(
    bench: Bench, parts: tuple[SSPServer, ProviderServer, Recorder]
) -> None:
    """A client certificate chain the server hands over but that does not parse: 495."""
    scope = _scope(bench, f"{root_of('A12345')}/metadata")
    scope["extensions"] = {"tls": {"client_cert_chain": ["-----BEGIN CERTIFICATE-----\nAA==\n"]}}
    sent = _drive(parts[0].app, scope, [])
    assert sent[0]["status"] == 495
    assert b"SSL_CERTIFICATE_ERROR" in sent[1]["body"]


def test_undeclared_body_over_the_bound_is_413_and_not_forwarded(
    bench: Bench, parts: tuple[SSPServer, ProviderServer, Recorder]
) -> None:
    """A body without Content-Length, sent in 64 KiB pieces past limits.max_body_bytes
    (1 MiB): read up to the bound and no further, answered 413, never forwarded."""
    ssp, _, recorder = parts
    scope = _scope(bench, f"{root_of('A12345')}/Appointment")
    scope["method"] = "POST"
    piece = {"type": "http.request", "body": b"x" * 65536, "more_body": True}
    before = len(recorder.seen)
    sent = _drive(ssp.app, scope, [piece] * 17)  # the 17th piece passes the bound
    assert sent[0]["status"] == 413
    assert b"PAYLOAD_TOO_LARGE" in sent[1]["body"]
    assert len(recorder.seen) == before
