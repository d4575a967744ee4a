"""The SSP simulator's test bench: a test PKI, fake providers on real TLS, requests.

Every hop is real: consumers connect to the simulator with mutual TLS on 127.0.0.1, and
the simulator connects to providers with mutual TLS. The providers here are
:class:`Recorder` applications on the reference provider's server (they record what
arrived and answer by path), plus raw TLS and TCP servers that misbehave.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from spinepki._tokens import gp_connect_token
from spinepki.gate import Catalogue, RootKind
from spinepki.provider import ProviderServer
from spinepki.ssp import ConsumerSystem, Directory, ForwardingLimits, ProviderSystem, SSPConfig
from spinepki.ssp._config import expand_interactions
from spinepki.testpki import TestPKI
from spinepki.tls import server_context
from tests._helpers import client_for, receive_body
from tests.serverconfig._helpers import Client, Response

CONSUMER = "200000000359"
OTHER_CONSUMER = "200000000115"
PROVIDER = "918999198738"
READ_METADATA = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1"
READ_PATIENT = "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1"
CREATE_APPOINTMENT = "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1"
STRUCTURED = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1"
DOCUMENTS = "urn:nhs:names:services:gpconnect:documents:fhir:rest:search:patient-1"


@dataclass
class Seen:
    """One request as a provider received it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]


@dataclass
class Recorder:
    """An ASGI provider application that records each request and answers by the last
    path segment: ``slow`` waits ``?seconds``, ``big`` sends ``?bytes`` in 64 KiB
    pieces, ``cut`` promises 1000 bytes and sends 10, anything else echoes as JSON."""

    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].removeprefix("lifespan.")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        body = await receive_body(receive)
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        self.seen.append(Seen(scope["method"], target, headers, body))
        last = scope["path"].rsplit("/", 1)[-1]
        query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p)
        if last == "slow":
            await anyio.sleep(float(query.get("seconds", "5")))
        if last == "big":
            size = int(query["bytes"])
            start = {"type": "http.response.start", "status": 200}
            start["headers"] = [(b"content-type", b"application/octet-stream")]
            await send(start)
            piece = b"x" * 65536
            while size > 0:
                chunk = piece[: min(size, len(piece))]
                size -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": size > 0})
            return
        if last == "cut":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"1000")],
                }
            )
            await send({"type": "http.response.body", "body": b"0123456789", "more_body": True})
            return
        payload = json.dumps({"target": target, "bytes": len(body)}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/fhir+json"),
                    (b"x-provider", b"recorder"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


@dataclass(frozen=True)
class Bench:
    """A test PKI on disk (its CRL/OCSP served by a live responder)."""

    pki: TestPKI
    folder: Path

    def path(self, relative: str) -> Path:
        return self.folder / relative

    def provider_context(self, leaf: str, *, at: dt.datetime | None = None) -> ssl.SSLContext:
        issued = self.pki.leaf(leaf)
        return server_context(issued.chain_pem, issued.key_pem, self.pki.trust_store(), at=at)

    def consumer_context(self, leaf: str | None = "consumer") -> ssl.SSLContext:
        return client_for(self.pki, leaf)

    def config(self, directory: Directory, **over: Any) -> SSPConfig:
        values: dict[str, Any] = {
            "directory": directory,
            "certificate": self.path("certs/ssp.chain.pem"),
            "key": self.path("certs/ssp.key.pem"),
            "trust_files": (self.path("ca/trust-bundle.pem"),),
            "port": 0,
            "forwarding": ForwardingLimits(response_timeout=2.0, connect_timeout=2.0),
        }
        values.update(over)
        return SSPConfig(**values)


def root_of(ods: str, fqdn: str = "provider.spinepki.test.nhs.uk") -> str:
    return f"https://{fqdn}/{ods}/STU3/1/gpconnect"


def provider_entry(
    asid: str,
    ods: str,
    address: tuple[str, int] | None,
    *,
    fqdn: str = "provider.spinepki.test.nhs.uk",
    structured: bool = False,
) -> ProviderSystem:
    roots = {RootKind.FOUNDATIONS: (root_of(ods, fqdn),)}
    if structured:
        roots[RootKind.STRUCTURED] = (root_of(ods, fqdn) + "/structured",)
    return ProviderSystem(asid, ods, fqdn, roots, address=address)


def consumer_entry(
    asid: str,
    fqdn: str,
    send_to: set[str],
    groups: tuple[str, ...] = ("foundations", "structured"),
) -> ConsumerSystem:
    interactions = expand_interactions(groups, Catalogue.default(), "interactions")
    return ConsumerSystem(asid, "A1001", fqdn, interactions, frozenset(send_to))


def ssp_headers(
    *,
    sender: str = CONSUMER,
    receiver: str = PROVIDER,
    interaction: str = READ_METADATA,
    scope: str = "organization/*.read",
    trace_id: str | None = None,
    audience: str | None = None,
) -> dict[str, str]:
    claims: dict[str, Any] = {} if audience is None else {"audience": audience}
    return {
        "Ssp-TraceID": trace_id or str(uuid.uuid4()),
        "Ssp-From": sender,
        "Ssp-To": receiver,
        "Ssp-InteractionID": interaction,
        "Authorization": f"Bearer {gp_connect_token(int(time.time()), scope=scope, **claims)}",
    }


class Consumer:
    """A keep-alive consumer of the simulator (one TLS connection, reopened if closed)."""

    def __init__(self, bench: Bench, address: tuple[str, int], leaf: str | None = "consumer"):
        self.client = Client(address[1], bench.consumer_context(leaf), bench.pki.ssp_fqdn)

    def get(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        method: str = "GET",
        body: bytes | None = None,
        **over: Any,
    ) -> Response:
        sent = ssp_headers(**over) if headers is None else dict(headers)
        return self.client.request(method, "/" + url, sent, body)

    def close(self) -> None:
        self.client.close()


def display(response: Response) -> str:
    """The SSP OperationOutcome's display."""
    return str(json.loads(response.body)["issue"][0]["details"]["coding"][0]["display"])


def recorder_server(
    bench: Bench, leaf: str = "provider", **kw: Any
) -> tuple[ProviderServer, Recorder]:
    app = Recorder()
    return ProviderServer(app, bench.provider_context(leaf, **kw)), app
