"""The scripted callers of ``spinepki demo``: who gets through the security edge, and why.

:func:`demo_environment` generates a Spine-shaped test PKI, serves its CRLs and OCSP
with the :class:`~spinepki.testpki.responder.Responder`, and starts the deployment
shapes asked for (:class:`~spinepki.demo._parity.Shape`; by default ``serve``: two
reference providers (:mod:`spinepki.provider`) from configurations written next to the
PKI):

* ``require`` mode (the handshake needs a client certificate), checking revocation with
  CRLs only;
* ``http-496`` mode (a missing certificate is answered 496 by the gate), checking
  revocation with OCSP only — so the ``revoked`` certificate is caught once through
  each kind of evidence.

The other shapes (the middleware under anycorn, the nginx, Apache and HAProxy exports)
serve the same two modes the same way; :mod:`spinepki.demo._parity` says where each may
answer differently, and why.

Each :class:`Caller` is one connection and (when the handshake succeeds) one HTTP
request, with the outcome the GP Connect rules require: a TLS refusal, or an HTTP status
with the Spine error code. :func:`run_demo` plays them and returns one
:class:`DemoOutcome` each; the demo passes only when every caller got what was required.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shlex
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from spinepki._extras import require_anycorn
from spinepki._probe import ProbeResult, probe
from spinepki.audit import AuditLogger
from spinepki.demo._callers import (
    DEMO_ASID,
    DEMO_ROOT,
    DEMO_STRUCTURED_ROOT,
    READ_PATIENT,
    Caller,
    Evidence,
    SSPRequest,
    default_callers,
    ssp_headers,
    ssp_token,
)
from spinepki.demo._parity import DemoOutcome, ParityMatrix, expectation_for
from spinepki.demo._shapes import Shape, ShapeContext, start_shape
from spinepki.gate import RootKind
from spinepki.policy import ClientAuth
from spinepki.provider import ProviderLimits, ProviderServer, create_server, load_config
from spinepki.revocation import RevocationChecker, RevocationMode
from spinepki.testpki import KeyType, TestPKI, write_pki
from spinepki.testpki.responder import Endpoint, Responder
from spinepki.tls import client_context

__all__ = ["DemoEnvironment", "demo_environment", "run_demo"]

_TIMEOUT = 5.0


def _silent_logger(name: str) -> logging.Logger:
    # Rejections are audited at WARNING; without a handler Python's last-resort handler
    # would print every one of them in the middle of the demo's table.
    logger = logging.getLogger(name)
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


def _quiet_audit() -> AuditLogger:
    return AuditLogger(_silent_logger("spinepki.demo.audit"))


def _audiences(pki: TestPKI) -> tuple[str, ...]:
    """The demo provider's service root URLs: the JWT ``aud`` values it accepts."""
    return tuple(f"https://{pki.provider_fqdn}{root}" for root in (DEMO_ROOT, DEMO_STRUCTURED_ROOT))


def _config_toml(pki: TestPKI, mode: ClientAuth, revocation: RevocationMode) -> str:
    audiences = ", ".join(f'"{aud}"' for aud in _audiences(pki))
    return (
        "# Written by `spinepki demo`: a reference provider for the demo's test PKI.\n"
        "[provider]\n"
        f'asid = "{DEMO_ASID}"\n'
        f'client_auth = "{mode.value}"\n'
        'host = "127.0.0.1"\n'
        "port = 0\n"
        f"expected_aud = [{audiences}]\n\n"
        "[provider.service_roots]\n"
        f'foundations = ["{DEMO_ROOT}"]\n'
        f'structured = ["{DEMO_STRUCTURED_ROOT}"]\n\n'
        "[tls]\n"
        'certificate = "certs/provider.chain.pem"\n'
        'key = "certs/provider.key.pem"\n'
        'trust_files = ["ca/trust-bundle.pem"]\n\n'
        "[validation]\n"
        f'ssp_fqdns = ["{pki.ssp_fqdn}"]\n'
        f'revocation = "{revocation.value}"\n'
    )


@dataclass
class DemoEnvironment:
    """A running demo: the PKI on disk, the responder and the shapes started."""

    pki: TestPKI
    """The test PKI."""
    directory: Path
    """Where the PKI (and the providers' configuration files) were written."""
    responder: Responder
    """The CRL/OCSP responder."""
    providers: dict[ClientAuth, ProviderServer]
    """The reference providers (``serve``) by client-auth mode; empty without ``serve``."""
    endpoints: dict[Shape, dict[ClientAuth, tuple[str, int]]] = field(default_factory=dict)
    """Every shape started: its (host, port) per client-auth mode."""

    @property
    def rsa(self) -> bool:
        """True when the provider's key is RSA (DHE suites usable)."""
        return isinstance(self.pki.leaf("provider").private_key, rsa.RSAPrivateKey)

    @property
    def shapes(self) -> tuple[Shape, ...]:
        """The shapes running, in :class:`Shape` order."""
        return tuple(s for s in Shape if s in self.endpoints)

    def play(
        self,
        callers: tuple[Caller, ...] | None = None,
        *,
        shape: Shape = Shape.SERVE,
        progress: Callable[[DemoOutcome], None] | None = None,
    ) -> list[DemoOutcome]:
        """Play ``callers`` (default: :func:`default_callers`) in order against ``shape``.

        Raises:
            KeyError: ``shape`` was not started.
        """
        endpoints = self.endpoints[shape]
        outcomes: list[DemoOutcome] = []
        for caller in callers or default_callers(rsa_provider=self.rsa):
            outcome = self._play_one(caller, shape, endpoints[caller.client_auth])
            outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
        return outcomes

    def play_matrix(
        self,
        callers: tuple[Caller, ...] | None = None,
        *,
        shapes: tuple[Shape, ...] | None = None,
        progress: Callable[[DemoOutcome], None] | None = None,
    ) -> ParityMatrix:
        """Play every caller against every shape (default: all started)."""
        chosen = shapes or self.shapes
        rows: tuple[Caller, ...] = ()
        outcomes: dict[tuple[int, Shape], DemoOutcome] = {}
        for shape in chosen:
            played = self.play(callers, shape=shape, progress=progress)
            rows = tuple(o.caller for o in played)
            for i, outcome in enumerate(played):
                outcomes[(i, shape)] = outcome
        return ParityMatrix(tuple(chosen), rows, outcomes)

    def _play_one(self, caller: Caller, shape: Shape, address: tuple[str, int]) -> DemoOutcome:
        host = f"{self.pki.provider_fqdn}:{address[1]}"
        request = caller.request.render(host, int(time.time()))
        ocsp_before = self.responder.hits[Endpoint.OCSP]
        if caller.plaintext:
            result = probe(address, None, request=request, timeout=_TIMEOUT)
        else:
            leaf = self.pki.leaf(caller.certificate) if caller.certificate else None
            ctx = client_context(
                self.pki.trust_store(),
                cert=leaf.chain_pem if leaf else None,
                key=leaf.key_pem if leaf else None,
                unsafe_skip_credential_checks=True,
            )
            if caller.tune is not None:
                caller.tune(ctx)
            result = probe(
                address,
                ctx,
                server_hostname=self.pki.provider_fqdn,
                request=request,
                timeout=_TIMEOUT,
            )
        ocsp_asked = self.responder.hits[Endpoint.OCSP] > ocsp_before
        # The endpoint a CRL caller calls checks CRLs only (a file, or fetched): its refusal
        # rests on a CRL exactly when no OCSP responder was asked during the call.
        evidence_ok = ocsp_asked if caller.evidence is Evidence.OCSP else not ocsp_asked
        if caller.evidence is None:
            evidence_ok = True
        return _outcome(caller, result, evidence_ok, shape)

    def curl_commands(self, now: int | None = None) -> list[tuple[str, str]]:
        """``(what it shows, command)`` pairs to try by hand (tokens valid 5 minutes)."""
        now = int(time.time()) if now is None else now
        fqdn = self.pki.provider_fqdn
        d = self.directory
        commands: list[tuple[str, str]] = []

        def curl(mode: ClientAuth, cert: str | None, extra: list[str], request: SSPRequest) -> str:
            port = self.providers[mode].address[1]
            args = ["curl", "-sS", "-i", "--cacert", str(d / "ca/trust-bundle.pem")]
            args += ["--resolve", f"{fqdn}:{port}:127.0.0.1"]
            if cert is not None:
                args += ["--cert", str(d / f"certs/{cert}.chain.pem")]
                args += ["--key", str(d / f"certs/{cert}.key.pem")]
            args += extra
            token = ssp_token(now, request.scope, aud=f"https://{fqdn}{request.root}")
            for name, value in ssp_headers(request.interaction, token).items():
                args += ["-H", f"{name}: {value}"]
            args.append(f"https://{fqdn}:{port}{DEMO_ROOT}{request.path}")
            return " ".join(shlex.quote(a) for a in args)

        metadata = SSPRequest()
        commands.append(
            ("the SSP reads /metadata (200)", curl(ClientAuth.REQUIRE, "ssp", [], metadata))
        )
        commands.append(
            (
                "the SSP reads Patient/1 (200)",
                curl(
                    ClientAuth.REQUIRE,
                    "ssp",
                    [],
                    SSPRequest(path="/Patient/1", interaction=READ_PATIENT, scope="patient/*.read"),
                ),
            )
        )
        commands.append(
            (
                "no client certificate, http-496 mode (496)",
                curl(ClientAuth.HTTP_496, None, [], metadata),
            )
        )
        commands.append(
            ("the revoked certificate (495)", curl(ClientAuth.REQUIRE, "revoked", [], metadata))
        )
        commands.append(
            (
                "TLS 1.1 (refused in the handshake)",
                curl(ClientAuth.REQUIRE, "ssp", ["--tlsv1.1", "--tls-max", "1.1"], metadata),
            )
        )
        return commands


def _parse_http(raw: bytes) -> tuple[int | None, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None, {}, b""
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return int(parts[1]), headers, body


def _outcome(
    caller: Caller, result: ProbeResult, evidence_ok: bool, shape: Shape = Shape.SERVE
) -> DemoOutcome:
    status, headers, body = _parse_http(result.response) if result.accepted else (None, {}, b"")
    spine_code = diagnostics = None
    if status is not None and status >= 400:
        with contextlib.suppress(ValueError, KeyError, IndexError, TypeError, AttributeError):
            issue = json.loads(body)["issue"][0]
            spine_code = str(issue["details"]["coding"][0]["code"])
            diagnostics = str(issue.get("diagnostics", ""))
    return DemoOutcome(
        caller,
        result,
        status,
        headers,
        spine_code,
        diagnostics,
        evidence_ok,
        shape,
        expectation_for(shape, caller),
    )


@contextlib.contextmanager
def demo_environment(
    *,
    key_type: KeyType = KeyType.RSA_2048,
    directory: str | Path | None = None,
    say: Callable[[str], None] | None = None,
    limits: ProviderLimits | None = None,
    shapes: Sequence[Shape] = (Shape.SERVE,),
) -> Iterator[DemoEnvironment]:
    """Generate the PKI, start the responder and the ``shapes``; stop them all on exit.

    Args:
        key_type: key algorithm of the test PKI (RSA-2048, as Spine uses, by default).
        directory: where to write the PKI and the providers' configuration files
            (default: a temporary directory, removed on exit).
        say: progress messages (e.g. to stderr).
        limits: the reference providers' connection limits.
        shapes: the deployment shapes to start (``serve``: two reference providers);
            nginx, Apache and HAProxy must be installed for theirs.

    Raises:
        ConfigurationError: anycorn (the ``provider`` extra) is not installed, raised
            before anything is generated or started; or a shape's server is not installed.
    """
    note = say or (lambda _message: None)
    # The providers need the `provider` extra: refuse before generating keys and starting
    # a responder, not after.
    require_anycorn()
    with contextlib.ExitStack() as stack:
        if directory is None:
            target = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spinepki-demo-")))
        else:
            target = Path(directory)
        responder = stack.enter_context(Responder())
        note(f"Generating a Spine-shaped test PKI ({key_type.value}) in {target} ...")
        started = time.perf_counter()
        pki = TestPKI.create(key_type=key_type, base_url=responder.base_url, reuse_keys=False)
        responder.attach(pki)
        write_pki(pki, target, overwrite=True)
        count = len(pki.cas) + len(pki.leaves)
        note(f"  {count} certificates in {time.perf_counter() - started:.1f} s")
        note(f"CRL/OCSP responder on {responder.base_url}")
        audit = _quiet_audit()
        env = DemoEnvironment(pki, target, responder, {})
        if Shape.SERVE in shapes:
            for mode, revocation in (
                (ClientAuth.REQUIRE, RevocationMode.CRL_ONLY),
                (ClientAuth.HTTP_496, RevocationMode.OCSP_ONLY),
            ):
                config_file = target / f"provider-{mode.value}.toml"
                config_file.write_text(_config_toml(pki, mode, revocation))
                config = load_config(config_file)
                if limits is not None:
                    config = replace(config, limits=limits)
                server = create_server(config, audit=audit)
                env.providers[mode] = stack.enter_context(server)
                note(
                    f"Reference provider ({mode.value}, revocation {revocation.value}) "
                    f"on {server.url}"
                )
            env.endpoints[Shape.SERVE] = {m: p.address for m, p in env.providers.items()}
        others = [s for s in Shape if s in shapes and s is not Shape.SERVE]
        if others:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="spinepki-shapes-"))
            )
            ctx = ShapeContext(
                pki=pki,
                directory=target,
                workdir=workdir,
                audit=audit,
                asid=DEMO_ASID,
                roots={
                    RootKind.FOUNDATIONS: (DEMO_ROOT,),
                    RootKind.STRUCTURED: (DEMO_STRUCTURED_ROOT,),
                },
                audiences=_audiences(pki),
            )
            stack.callback(_close_all, ctx.checkers)
            for shape in others:
                env.endpoints[shape] = start_shape(shape, ctx, stack)
                ports = ", ".join(f"{m.value} {a[1]}" for m, a in env.endpoints[shape].items())
                note(f"{shape.value} on 127.0.0.1 ({ports})")
        yield env


def _close_all(checkers: list[RevocationChecker]) -> None:
    for checker in checkers:
        checker.close()


def run_demo(
    callers: tuple[Caller, ...] | None = None,
    *,
    key_type: KeyType = KeyType.RSA_2048,
    directory: str | Path | None = None,
    progress: Callable[[DemoOutcome], None] | None = None,
    say: Callable[[str], None] | None = None,
    shape: Shape = Shape.SERVE,
) -> list[DemoOutcome]:
    """Set up :func:`demo_environment` with ``shape``, play ``callers``, tear it down.

    Returns:
        One outcome per caller, in order.
    """
    with demo_environment(key_type=key_type, directory=directory, say=say, shapes=(shape,)) as env:
        return env.play(callers, shape=shape, progress=progress)
