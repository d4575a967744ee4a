"""Helpers and fixtures for the gate tests: tokens, headers, a test PKI, real TLS servers."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from http import HTTPMethod
from typing import Any

import pytest
from cryptography import x509

from spinepki._tokens import example_claims
from spinepki.gate import (
    INTERACTIONS,
    BodyRule,
    ClientAuthMode,
    GateConfig,
    Generation,
    Interaction,
    RequestGate,
    RootKind,
)

ASID = "918999198738"
FROM_ASID = "200000000359"
TRACE = "09a01679-2564-0fb4-5129-aecc81ea2706"
FOUNDATIONS = "/A12345/STU3/1/gpconnect"
ROOTS: dict[RootKind, str] = {
    RootKind.FOUNDATIONS: FOUNDATIONS,
    RootKind.STRUCTURED: f"{FOUNDATIONS}/structured",
    RootKind.DOCUMENTS: f"{FOUNDATIONS}/documents",
    RootKind.ACCESS_RECORD_HTML: "/A12345/DSTU2/1",
}
PREFIX = "urn:nhs:names:services:gpconnect:"
READ_PATIENT = f"{PREFIX}fhir:rest:read:patient-1"
READ_METADATA = f"{PREFIX}fhir:rest:read:metadata-1"
NOW = 1_750_000_000  # a fixed decision time; every test passes it as `now`
NOW_DT = datetime.fromtimestamp(NOW, UTC)
NONE_HEADER = {"alg": "none", "typ": "JWT"}


def b64(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encode(claims: object, header: object = NONE_HEADER) -> str:
    """An unsecured JWT of ``claims`` (compact JSON), with the trailing dot."""
    raw = lambda o: json.dumps(o, separators=(",", ":")).encode()  # noqa: E731
    return f"{b64(raw(header))}.{b64(raw(claims))}."


def v1_claims(now: int = NOW, *, scope: str = "patient/*.read", **over: Any) -> dict[str, Any]:
    """Example token A of rules §3.7 with fresh times (iat = now - 2 s, as the test pack),
    including the practitioner's local user-guid identifier the specification shows."""
    claims = example_claims(now, scope=scope)
    claims["requesting_practitioner"]["identifier"].append(
        {
            "system": "https://consumersupplier.com/Id/user-guid",
            "value": "98ed4f78-814d-4266-8d5b-cde742f3093c",
        }
    )
    claims.update(over)
    return claims


def v07_claims(now: int = NOW, *, scope: str = "patient/*.read", **over: Any) -> dict[str, Any]:
    """Example token B of rules §3.7 with fresh times."""
    claims: dict[str, Any] = {
        "iss": "http://consumersupplier.thirdparty.nhs.uk/",
        "sub": "f7737bf5-cfe7-491c-af3a-6f7177d5aee1",
        "aud": "https://authorize.fhir.nhs.net/token",
        "exp": now - 2 + 300,
        "iat": now - 2,
        "reason_for_request": "directcare",
        "requested_scope": scope,
        "requested_record": {
            "resourceType": "Patient",
            "identifier": [{"system": "http://fhir.nhs.net/Id/nhs-number", "value": "9658218873"}],
        },
        "requesting_device": {
            "resourceType": "Device",
            "id": "c4c8d038-913a-490c-9682-47047f4155fb",
            "identifier": [
                {
                    "system": "http://consumersupplier.com/Id/device-identifier",
                    "value": "CONS-APP-4",
                }
            ],
            "model": "Consumer product name",
            "version": "5.3.0",
        },
        "requesting_organization": {
            "resourceType": "Organization",
            "id": "79600119-ebaf-4362-bb89-d473a33b1675",
            "identifier": [
                {"system": "http://fhir.nhs.net/Id/ods-organization-code", "value": "A1001"}
            ],
            "name": "Test Hospital",
        },
        "requesting_practitioner": {
            "resourceType": "Practitioner",
            "id": "f7737bf5-cfe7-491c-af3a-6f7177d5aee1",
            "identifier": [
                {"system": "http://fhir.nhs.net/sds-user-id", "value": "111222333444"},
                {
                    "system": "http://consumersupplier.com/Id/user-guid",
                    "value": "54b9d987-c2f1-4fdd-a449-e67cdf41dd2b",
                },
            ],
            "name": {"family": ["Jones"], "given": ["Claire"], "prefix": ["Dr"]},
            "practitionerRole": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://fhir.nhs.net/ValueSet/sds-job-role-name-1",
                                "code": "R8000",
                            }
                        ]
                    }
                }
            ],
        },
    }
    claims.update(over)
    return claims


def ssp_headers(
    interaction_id: str, token: str | None, **over: str | None
) -> list[tuple[str, str]]:
    """The five SSP headers; ``over`` replaces (or with None removes) one by key."""
    values: dict[str, str | None] = {
        "Ssp-TraceID": TRACE,
        "Ssp-From": FROM_ASID,
        "Ssp-To": ASID,
        "Ssp-InteractionID": interaction_id,
        "Authorization": None if token is None else f"Bearer {token}",
    }
    for key, value in over.items():
        values[key.replace("_", "-")] = value
    return [(k, v) for k, v in values.items() if v is not None]


SEARCH_VALUES = {
    "https://fhir.nhs.uk/Id/nhs-number": "9658218873",
    "https://fhir.nhs.uk/Id/sds-user-id": "G13579135",
    "https://fhir.nhs.uk/Id/ods-organization-code": "A12345",
}


@dataclass(frozen=True)
class Request:
    """A request that a catalogue entry allows, ready to send or to check."""

    interaction: Interaction
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes | None = None
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def url_path(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


def body_for(interaction: Interaction) -> bytes | None:
    """A minimal body for interactions that carry one."""
    if interaction.method in {HTTPMethod.GET}:
        return None
    if interaction.body_rule is BodyRule.CARE_RECORD_NHS_NUMBER:
        params = [
            {
                "name": "patientNHSNumber",
                "valueIdentifier": {
                    "system": "http://fhir.nhs.net/Id/nhs-number",
                    "value": "9658218873",
                },
            }
        ]
    elif interaction.body_rule is BodyRule.MIGRATE_SENSITIVITY:
        params = [
            {
                "name": "includeFullRecord",
                "part": [{"name": "includeSensitiveInformation", "valueBoolean": False}],
            }
        ]
    else:
        params = [{"name": "example", "valueString": "x"}]
    return json.dumps({"resourceType": "Parameters", "parameter": params}).encode()


def request_for(interaction: Interaction, now: int = NOW, **claim_over: Any) -> Request:
    """A valid request for ``interaction`` (ids filled with ``1``)."""
    path = ROOTS[interaction.root] + interaction.path.replace("{id}", "1")
    query = ""
    if interaction.identifier_systems:
        system = interaction.identifier_systems[0]
        query = f"identifier={system}|{SEARCH_VALUES[system]}"
    reason = "migration" if "migration" in interaction.reasons else "directcare"
    make = v07_claims if interaction.generation is Generation.V0_7 else v1_claims
    claims = make(now, scope=interaction.scope.value, reason_for_request=reason, **claim_over)
    return Request(
        interaction=interaction,
        method=interaction.method.value,
        path=path,
        query=query,
        headers=ssp_headers(interaction.interaction_id, encode(claims)),
        body=body_for(interaction),
        claims=claims,
    )


CURRENT = [i for i in INTERACTIONS if not i.legacy]
LEGACY = [i for i in INTERACTIONS if i.legacy]
BY_ID = {(i.interaction_id, i.root): i for i in INTERACTIONS}
PATIENT = BY_ID[(READ_PATIENT, RootKind.FOUNDATIONS)]
METADATA = BY_ID[(READ_METADATA, RootKind.FOUNDATIONS)]
#: The 0.7.x interactions (under the Access Record HTML root) the tests use most.
CARE_RECORD = BY_ID[
    (
        "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getcarerecord",
        RootKind.ACCESS_RECORD_HTML,
    )
]
V07_METADATA = BY_ID[
    ("urn:nhs:names:services:gpconnect:fhir:rest:read:metadata", RootKind.ACCESS_RECORD_HTML)
]
MIGRATE = next(i for i in CURRENT if i.body_rule is BodyRule.MIGRATE_SENSITIVITY)


def interaction_ids(interactions: Sequence[Interaction]) -> list[str]:
    """Readable pytest ids: the ID minus its common prefix, plus the root kind."""
    return [f"{i.interaction_id.removeprefix(PREFIX)}@{i.root.value}" for i in interactions]


# -- certificates ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    valid: bool
    failures: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Failure:
    code: str
    message: str = ""


class SerialDenyList:
    """A stand-in CertificateChecker: refuses certificates whose serial it lists."""

    def __init__(self, serials: Sequence[int] = ()) -> None:
        self.serials = frozenset(serials)
        self.calls: list[datetime | None] = []

    def validate(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate] = (),
        *,
        at: datetime | None = None,
    ) -> Outcome:
        self.calls.append(at)
        if leaf.serial_number in self.serials:
            return Outcome(False, (Failure("revoked", "listed"),))
        return Outcome(True)


@pytest.fixture(scope="session")
def pki(spine_pki: Any) -> Any:
    """The plugin's session PKI (EC P-256), under the name the gate tests use."""
    return spine_pki


@pytest.fixture(scope="session")
def ssp_cert(pki: Any) -> x509.Certificate:
    return pki.leaf("ssp").certificate


def make_config(**over: Any) -> GateConfig:
    """The test provider's configuration, both generations enabled."""
    values: dict[str, Any] = {
        "provider_asid": ASID,
        "service_roots": ROOTS,
        "generations": frozenset({Generation.V1, Generation.V0_7}),
        "client_auth": ClientAuthMode.HTTP_496,
    }
    values.update(over)
    return GateConfig(**values)


@pytest.fixture(scope="session")
def gate() -> RequestGate:
    return RequestGate(make_config())


def check(gate: RequestGate, req: Request, cert: x509.Certificate, **kw: Any) -> Any:
    """Run ``req`` through ``gate.check`` at :data:`NOW`."""
    kw.setdefault("now", NOW_DT)
    kw.setdefault("body", req.body)
    kw.setdefault("query", req.query)
    return gate.check(req.method, req.path, req.headers, peer_cert=cert, **kw)


class Fixed:
    """A certificate source that always answers the same thing."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def from_scope(self, scope: Any) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def from_environ(self, environ: Any) -> Any:
        return self.from_scope(environ)


# -- real servers ------------------------------------------------------------------------


@dataclass
class Server:
    """A running server and the clients that talk to it."""

    base_url: str
    ssp: Any  # httpx.Client presenting the SSP certificate
    anonymous: Any  # httpx.Client presenting no certificate
    revoked: Any  # httpx.Client presenting the revoked (but chain-valid) certificate

    def send(self, req: Request, client: Any = None, **kw: Any) -> Any:
        client = client or self.ssp
        return client.request(
            req.method,
            self.base_url + req.url_path,
            headers=kw.pop("headers", req.headers),
            content=kw.pop("content", req.body),
            **kw,
        )


def _clients(pki: Any, base_url: str) -> Iterator[tuple[Any, Any, Any]]:
    import httpx

    from spinepki.tls import client_context

    trust = pki.trust_store()
    made = []
    for name in ("ssp", None, "revoked"):
        if name is None:
            ctx = client_context(trust, check_hostname=False)
        else:
            leaf = pki.leaf(name)
            ctx = client_context(
                trust,
                cert=leaf.chain_pem,
                key=leaf.key_pem,
                check_hostname=False,
                unsafe_skip_credential_checks=True,
            )
        made.append(httpx.Client(verify=ctx, timeout=10))
    try:
        yield made[0], made[1], made[2]
    finally:
        for c in made:
            c.close()


def server_ssl_context(pki: Any) -> Any:
    from spinepki.policy import ClientAuth
    from spinepki.tls import server_context

    provider = pki.leaf("provider")
    return server_context(
        cert=provider.chain_pem,
        key=provider.key_pem,
        trust=pki.trust_store(),
        client_auth=ClientAuth.HTTP_496,
    )


def _revoked_checker(pki: Any) -> SerialDenyList:
    return SerialDenyList([pki.leaf("revoked").certificate.serial_number])


def echo_payload(method: str, path: str, body: bytes) -> bytes:
    return json.dumps({"method": method, "path": path, "body_length": len(body)}).encode()


@pytest.fixture(scope="session")
def asgi_server(pki: Any) -> Iterator[Server]:
    """anycorn (fills the ASGI TLS extension) serving a Starlette app behind the gate."""
    import anycorn
    import anyio
    import anyio.from_thread
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request as StarletteRequest
    from starlette.responses import Response
    from starlette.routing import Route

    from spinepki.gate import GateASGIMiddleware

    async def echo(request: StarletteRequest) -> Response:
        body = await request.body()
        return Response(
            echo_payload(request.method, request.url.path, body),
            media_type="application/fhir+json",
            headers={"Cache-Control": "max-age=600"},  # weaker: the middleware replaces it
        )

    gate = RequestGate(make_config(certificate_checker=_revoked_checker(pki)))
    app = Starlette(
        routes=[Route("/{rest:path}", echo, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])],
        middleware=[Middleware(GateASGIMiddleware, gate=gate)],
    )
    ctx = server_ssl_context(pki)

    class TLSConfig(anycorn.Config):
        # anycorn builds its own context from files; hand it spinepki's instead.
        def create_ssl_context(self) -> Any:
            return ctx

        @property
        def ssl_enabled(self) -> bool:
            return True

    config = TLSConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None  # an access log would record query strings (NHS numbers)
    with anyio.from_thread.start_blocking_portal() as portal:
        stop = portal.call(anyio.Event)
        future, binds = portal.start_task(
            partial(anycorn.serve, app, config, shutdown_trigger=stop.wait)
        )
        base = binds[0]
        for ssp, anonymous, revoked in _clients(pki, base):
            yield Server(base, ssp, anonymous, revoked)
        portal.call(stop.set)
        future.result(timeout=10)


@pytest.fixture(scope="session")
def wsgi_server(pki: Any) -> Iterator[Server]:
    """werkzeug's threaded server (sets SSL_CLIENT_CERT) serving Flask behind the gate."""
    import logging

    from flask import Flask, Response, request
    from werkzeug.serving import make_server

    from spinepki.gate import GateWSGIMiddleware

    flask_app = Flask("gate-test")

    @flask_app.route("/<path:rest>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def echo(rest: str) -> Response:
        payload = echo_payload(request.method, request.path, request.get_data())
        return Response(
            payload, content_type="application/fhir+json", headers={"Cache-Control": "no-cache"}
        )

    gate = RequestGate(make_config(certificate_checker=_revoked_checker(pki)))
    flask_app.wsgi_app = GateWSGIMiddleware(flask_app.wsgi_app, gate=gate)  # type: ignore[method-assign]
    # werkzeug's request log prints the query string; the audit tests use other servers.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    srv = make_server("127.0.0.1", 0, flask_app, threaded=True, ssl_context=server_ssl_context(pki))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    base = f"https://127.0.0.1:{srv.server_port}"
    try:
        for ssp, anonymous, revoked in _clients(pki, base):
            yield Server(base, ssp, anonymous, revoked)
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)


def fresh_request(interaction: Interaction, **claim_over: Any) -> Request:
    """A request with a token fresh against the real clock (servers read the clock)."""
    return request_for(interaction, int(time.time()), **claim_over)


def outcome_of(response: Any) -> Mapping[str, Any]:
    """The OperationOutcome of a rejection, with the checks the assurance pack makes."""
    assert "no-store" in response.headers["cache-control"]
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["meta"]["profile"]
    (issue,) = body["issue"]
    assert issue["severity"] == "error"
    (coding,) = issue["details"]["coding"]
    assert coding["code"]
    assert coding["display"]
    return {"code": coding["code"], "issue": issue["code"], "diagnostics": issue["diagnostics"]}
