"""The demo's callers through the SSP simulator: ``spinepki demo --via-ssp``.

:func:`ssp_demo` extends a running :class:`~spinepki.demo._demo.DemoEnvironment`
with the party in the middle: an SSP simulator (:mod:`spinepki.ssp`) whose directory
registers two consumers and four providers, one more reference provider that presents a
*revoked* server certificate, and consumer callers that go consumer -> SSP -> provider.

The directory (ASIDs are examples):

============  ==============================  =================================================
system        registered as                    used to show
============  ==============================  =================================================
consumer A    ``200000000359``, the PKI's      sends Foundations and Structured to P, R and U
              ``consumer`` certificate
consumer B    ``200000000115``, another FQDN   its ASID with A's certificate: ASID check fails
provider P    ``918999198738``, the demo's     receives Foundations only (Structured: PARTYKEY)
              ``require``-mode provider
provider Q    ``918999198740``                 A has no data sharing agreement with it (FOT)
provider R    ``918999198742``, revoked cert   502: its certificate fails; nothing is sent
provider U    ``918999198744``, nothing there  502: unreachable
============  ==============================  =================================================

Each :class:`SSPCaller` sends one request with ``Connection: close``; its outcome must
have the status and the display the SSP answers with, ``Cache-Control: no-store``, and
the request must have reached a provider exactly when the caller expects it to (the
simulator's ``forwarded`` counter).
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spinepki._probe import ProbeResult, probe
from spinepki.demo._callers import (
    _APPOINTMENT,
    CREATE_APPOINTMENT,
    DEMO_ASID,
    DEMO_FROM_ASID,
    DEMO_ROOT,
    READ_METADATA,
    ssp_token,
)
from spinepki.demo._demo import DemoEnvironment, _parse_http, _quiet_audit, _silent_logger
from spinepki.demo._environment import _ssp_toml
from spinepki.demo._parity import Shape
from spinepki.errors import ConfigurationError
from spinepki.gate import Catalogue, RootKind
from spinepki.policy import ClientAuth
from spinepki.provider import ProviderConfig, ProviderServer, create_server
from spinepki.revocation import RevocationMode
from spinepki.ssp import (
    ConsumerSystem,
    Directory,
    ProviderSystem,
    SSPAuditLogger,
    SSPError,
    SSPServer,
    create_ssp,
    load_config,
)
from spinepki.ssp._config import expand_interactions
from spinepki.testpki import write_pki
from spinepki.tls import client_context

__all__ = ["SSPCaller", "SSPDemo", "SSPOutcome", "ssp_callers", "ssp_demo"]

CONSUMER_B = "200000000115"
OTHER_PROVIDER = "918999198740"
REVOKED_PROVIDER = "918999198742"
DOWN_PROVIDER = "918999198744"
_STRUCTURED_METADATA = "urn:nhs:names:services:gpconnect:structured:fhir:rest:read:metadata-1"
_DOCUMENTS_SEARCH = "urn:nhs:names:services:gpconnect:documents:fhir:rest:search:patient-1"
_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class SSPCaller:
    """One request through the SSP simulator and the outcome the SSP must give."""

    name: str
    """Who is calling."""
    tried: str
    """What it tried, in plain words."""
    rule: str
    """The SSP behaviour the outcome proves."""
    expect: int
    """The HTTP status required."""
    expect_display: str | None = None
    """The beginning of the OperationOutcome display required (SSP errors only)."""
    forwarded: bool = False
    """Whether the request must reach a provider."""
    certificate: str | None = "consumer"
    """Test-PKI certificate presented, or None for none."""
    sender: str = DEMO_FROM_ASID
    """``Ssp-From``."""
    receiver: str = DEMO_ASID
    """``Ssp-To`` (and whose service root the URL names)."""
    interaction: str = READ_METADATA
    """``Ssp-InteractionID``."""
    kind: RootKind = RootKind.FOUNDATIONS
    """Which of the receiver's service roots the URL uses."""
    path: str = "/metadata"
    """The FHIR request after the service root."""
    scope: str = "organization/*.read"
    """The token's ``requested_scope``."""
    body: Any = None
    """A JSON body, or None."""
    root: Callable[[str], str] | None = field(default=None, compare=False)
    """Changes the registered service root before it is put in the URL."""

    @property
    def expected(self) -> str:
        """``HTTP 200`` or ``HTTP 403 ASID_CHECK_FAILED_MESSAGESENDER``."""
        return f"HTTP {self.expect}" + (
            f" {_short(self.expect_display)}" if self.expect_display else ""
        )

    def render(self, directory: Directory, ssp_host: str, now: int) -> bytes:
        """The request bytes (HTTP/1.1, ``Connection: close``)."""
        provider = directory.provider(self.receiver)
        roots = provider.service_roots if provider is not None else {}
        root = roots.get(self.kind, (f"https://unknown.example.nhs.uk{DEMO_ROOT}",))[0]
        if self.root is not None:
            root = self.root(root)
        url = root + self.path
        headers = {
            "Host": ssp_host,
            "Ssp-TraceID": str(uuid.uuid4()),
            "Ssp-From": self.sender,
            "Ssp-To": self.receiver,
            "Ssp-InteractionID": self.interaction,
            # aud: the provider's service root as the consumer addresses it, which the
            # demo's providers check (GP Connect's JWT guidance: aud is the service root).
            "Authorization": f"Bearer {ssp_token(now, self.scope, aud=root)}",
        }
        payload = b"" if self.body is None else json.dumps(self.body).encode()
        method = "GET"
        if self.body is not None:
            method = "POST"
            headers["Content-Type"] = "application/fhir+json"
            headers["Content-Length"] = str(len(payload))
        headers["Connection"] = "close"
        lines = [f"{method} /{url} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


@dataclass(frozen=True, slots=True)
class SSPOutcome:
    """How one caller through the SSP fared."""

    caller: SSPCaller
    """The caller."""
    result: ProbeResult
    """What the connection saw."""
    status: int | None = None
    """The HTTP status, None when no HTTP answer came."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Response headers (lower-case names)."""
    display: str | None = None
    """The OperationOutcome's display, when the answer is one."""
    reached_provider: bool = False
    """Whether the simulator wrote the request to a provider."""

    @property
    def no_store(self) -> bool:
        """``Cache-Control`` says ``no-store``."""
        return "no-store" in self.headers.get("cache-control", "").lower()

    @property
    def as_required(self) -> bool:
        """True when status, display, no-store and forwarding are as required."""
        expect = self.caller.expect_display
        return (
            self.status == self.caller.expect
            and self.no_store
            and (expect is None or (self.display or "").startswith(expect))
            and self.reached_provider == self.caller.forwarded
        )

    @property
    def outcome(self) -> str:
        """``HTTP 200`` or ``HTTP 403 FOT_CHECK_FAILED…``."""
        if self.status is None:
            return "no HTTP answer"
        if not self.display:
            return f"HTTP {self.status}"
        return f"HTTP {self.status} {_short(self.display)}"

    @property
    def signal(self) -> str:
        """The status line (and whether the provider got the request)."""
        if self.status is None:
            return self.result.error or "connection closed"
        reached = "reached the provider" if self.reached_provider else "not forwarded"
        extra = "" if self.no_store else ", no Cache-Control: no-store!"
        return f"{self.status} ({reached}{extra})"

    @property
    def reason(self) -> str:
        """The SSP's display, or what answered."""
        if self.display:
            return self.display
        if self.status is not None and self.status < 300:
            return "served by the provider through the SSP"
        return self.caller.rule

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form (the keys of the direct callers' outcomes, and more)."""
        return {
            "caller": self.caller.name,
            "tried": self.caller.tried,
            # Through the SSP to the serve shape's reference provider; never one of a
            # shape's documented differences.
            "shape": Shape.SERVE.value,
            "provider": "via-ssp",
            "expected": self.caller.expected,
            "difference": None,
            "outcome": self.outcome,
            "status": self.status,
            "alert": None if self.status is not None else self.result.error,
            "spine_code": None,
            "display": self.display,
            "reached_provider": self.reached_provider,
            "cache_control": self.headers.get("cache-control"),
            "version": self.result.version,
            "cipher": self.result.cipher,
            "reason": self.reason,
            "rule": self.caller.rule,
            "as_required": self.as_required,
        }


def ssp_callers(directory: Directory) -> tuple[SSPCaller, ...]:
    """The callers through the SSP, in the order they are played."""
    p = directory.provider(DEMO_ASID)
    root = p.service_roots[RootKind.FOUNDATIONS][0] if p is not None else ""
    cpa = p.cpa_id if p is not None else ""
    host = root.split("/")[2] if root else ""
    return (
        SSPCaller(
            "consumer via SSP",
            "GET /metadata through the SSP",
            "a registered consumer reaches the provider; headers and query unmodified",
            200,
            forwarded=True,
        ),
        SSPCaller(
            "consumer via SSP",
            "POST /Appointment (book) through the SSP",
            "the body is forwarded unmodified",
            201,
            forwarded=True,
            interaction=CREATE_APPOINTMENT,
            path="/Appointment",
            scope="patient/*.write",
            body=_APPOINTMENT,
        ),
        SSPCaller(
            "via SSP: certificate not its ASID",
            f"consumer A's certificate with Ssp-From {CONSUMER_B}",
            "the certificate's FQDN must be the one registered for Ssp-From",
            403,
            f"ASID_CHECK_FAILED_MESSAGESENDER_{CONSUMER_B}",
            sender=CONSUMER_B,
        ),
        SSPCaller(
            "via SSP: unauthorised interaction",
            "a Documents search consumer A may not send",
            "the sender must be allowed to send the interaction",
            403,
            f"ASID_CHECK_FAILED_MESSAGESENDER_{DEMO_FROM_ASID}",
            interaction=_DOCUMENTS_SEARCH,
            path="/Patient",
            scope="patient/*.read",
        ),
        SSPCaller(
            "via SSP: receiver lacks it",
            "Structured metadata to a Foundations-only provider",
            "the receiver must receive the interaction",
            403,
            f"PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_{DEMO_ASID}",
            interaction=_STRUCTURED_METADATA,
            root=lambda r: r + "/structured",
        ),
        SSPCaller(
            "via SSP: no sharing agreement",
            f"GET /metadata to provider {OTHER_PROVIDER}",
            "the sender must be allowed to send to the receiver",
            403,
            f"FOT_CHECK_FAILED_MESSAGESENDER_{DEMO_FROM_ASID}_MESSAGERECEIVER_{OTHER_PROVIDER}",
            receiver=OTHER_PROVIDER,
        ),
        SSPCaller(
            "via SSP: wrong service root (IP)",
            "the service root with 127.0.0.1 for the host name",
            "the URL must hold the service root registered in SDS",
            400,
            f"ENDPOINT_{root}_CPAID_{cpa}_VARIES_FROM_TARGETURL_https://127.0.0.1/",
            root=lambda r: r.replace(host, "127.0.0.1", 1),
        ),
        SSPCaller(
            "via SSP: wrong service root (:443)",
            "the service root with ':443' added",
            "the URL must hold the service root registered in SDS",
            400,
            f"ENDPOINT_{root}_CPAID_{cpa}_VARIES_FROM_TARGETURL_https://{host}:443/",
            root=lambda r: r.replace(host, f"{host}:443", 1),
        ),
        SSPCaller(
            "via SSP: provider's cert revoked",
            f"GET /metadata to provider {REVOKED_PROVIDER}",
            "the SSP validates the provider's certificate (revocation) before sending",
            502,
            "ERROR_COMMUNICATING_TO_ENDPOINT_URL_",
            receiver=REVOKED_PROVIDER,
        ),
        SSPCaller(
            "via SSP: provider unreachable",
            f"GET /metadata to provider {DOWN_PROVIDER} (nothing listens)",
            "an unreachable provider is a 502 in the SSP's shape",
            502,
            "ERROR_COMMUNICATING_TO_ENDPOINT_URL_",
            receiver=DOWN_PROVIDER,
        ),
        SSPCaller(
            "via SSP: no certificate",
            "no client certificate to the SSP",
            "mutual TLS to the SSP: 496 without a certificate",
            496,
            "SSL_CERTIFICATE_REQUIRED",
            certificate=None,
        ),
    )


@dataclass
class SSPDemo:
    """The SSP part of a running demo."""

    env: DemoEnvironment
    """The demo it extends."""
    ssp: SSPServer
    """The SSP simulator."""
    revoked_provider: ProviderServer
    """The reference provider presenting a revoked certificate."""

    @property
    def directory(self) -> Directory:
        """The simulator's directory."""
        return self.ssp.config.directory

    def play(
        self,
        callers: tuple[SSPCaller, ...] | None = None,
        *,
        progress: Callable[[SSPOutcome], None] | None = None,
    ) -> list[SSPOutcome]:
        """Play ``callers`` (default: :func:`ssp_callers`) in order."""
        outcomes: list[SSPOutcome] = []
        for caller in callers or ssp_callers(self.directory):
            outcome = self._play_one(caller)
            outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
        return outcomes

    def _play_one(self, caller: SSPCaller) -> SSPOutcome:
        pki = self.env.pki
        leaf = pki.leaf(caller.certificate) if caller.certificate else None
        ctx = client_context(
            pki.trust_store(),
            cert=leaf.chain_pem if leaf else None,
            key=leaf.key_pem if leaf else None,
        )
        host = f"{self.ssp.fqdn}:{self.ssp.address[1]}"
        before = self.ssp.stats.forwarded
        result = probe(
            self.ssp.address,
            ctx,
            server_hostname=self.ssp.fqdn,
            request=caller.render(self.directory, host, int(time.time())),
            timeout=_TIMEOUT,
        )
        reached = self.ssp.stats.forwarded > before
        status, headers, body = _parse_http(result.response) if result.accepted else (None, {}, b"")
        display = None
        if status is not None and status >= 400:
            with contextlib.suppress(ValueError, KeyError, IndexError, TypeError, AttributeError):
                display = str(json.loads(body)["issue"][0]["details"]["coding"][0]["display"])
        return SSPOutcome(caller, result, status, headers, display, reached)


def _short(display: str) -> str:
    """The fixed part of an SSP display: its error code (values left out)."""
    if display.startswith("ENDPOINT_"):
        return SSPError.ENDPOINT_VARIES.value
    for error in SSPError:
        if display.startswith(error.value):
            return error.value
    return display


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _directory(consumer_fqdn: str, provider_fqdn: str, addresses: dict[str, Any]) -> Directory:
    catalogue = Catalogue.default()

    def provider(asid: str, ods: str, fqdn: str) -> ProviderSystem:
        root = f"https://{fqdn}/{ods}/STU3/1/gpconnect"
        return ProviderSystem(
            asid, ods, fqdn, {RootKind.FOUNDATIONS: (root,)}, address=addresses[asid]
        )

    consumers = (
        ConsumerSystem(
            DEMO_FROM_ASID,
            "A1001",
            consumer_fqdn,
            expand_interactions(["foundations", "structured"], catalogue, "interactions"),
            frozenset({DEMO_ASID, REVOKED_PROVIDER, DOWN_PROVIDER}),
        ),
        ConsumerSystem(
            CONSUMER_B,
            "B1002",
            "consumer-b.spinepki.test.nhs.uk",
            expand_interactions(["foundations"], catalogue, "interactions"),
            frozenset({DEMO_ASID}),
        ),
    )
    providers = (
        provider(DEMO_ASID, "A12345", provider_fqdn),
        provider(OTHER_PROVIDER, "Q12345", "other-provider.spinepki.test.nhs.uk"),
        provider(REVOKED_PROVIDER, "R12345", "revoked-provider.spinepki.test.nhs.uk"),
        provider(DOWN_PROVIDER, "U12345", "down-provider.spinepki.test.nhs.uk"),
    )
    return Directory(consumers, providers, catalogue)


def _quiet_ssp_audit() -> SSPAuditLogger:
    return SSPAuditLogger(_silent_logger("spinepki.demo.audit.ssp"))


@contextlib.contextmanager
def ssp_demo(
    env: DemoEnvironment, *, say: Callable[[str], None] | None = None
) -> Iterator[SSPDemo]:
    """Start the SSP simulator and the revoked-certificate provider next to ``env``.

    Writes ``ssp-demo.toml`` (the simulator's configuration) in the demo's folder; stops
    both servers on exit.

    Raises:
        ConfigurationError: ``env`` does not run the ``serve`` shape (the simulator's
            registered provider is its require-mode reference provider).
    """
    if ClientAuth.REQUIRE not in env.providers:
        raise ConfigurationError(
            "the SSP demo forwards to the serve shape's require-mode reference provider: "
            "start the demo environment with Shape.SERVE",
            source="shapes",
        )
    note = say or (lambda _message: None)
    pki, folder = env.pki, env.directory
    fqdn = "revoked-provider.spinepki.test.nhs.uk"
    if "provider-revoked" not in pki.leaves:
        pki.issue(
            "provider-revoked",
            fqdn=fqdn,
            purpose="a provider's server certificate, listed on the Sub CA's CRL",
        )
        pki.revoke("provider-revoked")
        write_pki(pki, folder, overwrite=True)
    with contextlib.ExitStack() as stack:
        revoked = stack.enter_context(
            create_server(
                ProviderConfig(
                    asid=REVOKED_PROVIDER,
                    service_roots={RootKind.FOUNDATIONS: ("/R12345/STU3/1/gpconnect",)},
                    certificate=folder / "certs/provider-revoked.chain.pem",
                    key=folder / "certs/provider-revoked.key.pem",
                    ssp_fqdns=(pki.ssp_fqdn,),
                    trust_files=(folder / "ca/trust-bundle.pem",),
                    revocation=RevocationMode.CRL_ONLY,
                    port=0,
                ),
                audit=_quiet_audit(),
            )
        )
        note(f"Reference provider with a revoked certificate on {revoked.url}")
        closed = ("127.0.0.1", _closed_port())
        addresses = {
            DEMO_ASID: env.providers[ClientAuth.REQUIRE].address,
            OTHER_PROVIDER: closed,
            REVOKED_PROVIDER: revoked.address,
            DOWN_PROVIDER: closed,
        }
        directory = _directory(pki.consumer_fqdn, pki.provider_fqdn, addresses)
        config_file = Path(folder) / "ssp-demo.toml"
        config_file.write_text(_ssp_toml(directory, 0))
        ssp = stack.enter_context(create_ssp(load_config(config_file), audit=_quiet_ssp_audit()))
        note(f"SSP simulator on {ssp.url} ({ssp.address[0]}:{ssp.address[1]})")
        yield SSPDemo(env, ssp, revoked)
