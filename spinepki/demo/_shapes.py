"""The deployment shapes the demo and the parity matrix run for real on 127.0.0.1.

Each shape serves the same policy two ways, one endpoint per client-auth mode:

* ``require`` checks revocation with the CRL set (a file for the servers, fetched from
  the responder by spinepki), so a revoked certificate is caught by a CRL;
* ``http-496`` checks it with OCSP (where the shape can), so it is caught by OCSP.

Every endpoint answers for the same ASID and service roots, with the same FHIR demo
application (:class:`spinepki.provider.FHIRDemoApp`) behind it, so the shapes can only
differ in what their edge does.
"""

from __future__ import annotations

import contextlib
import enum
import json
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spinepki.audit import AuditLogger
from spinepki.demo._edges import (
    AsgiHost,
    find_server,
    free_port,
    run_apache,
    run_haproxy,
    run_nginx,
    run_process,
)
from spinepki.errors import ConfigurationError
from spinepki.gate import (
    GateASGIMiddleware,
    GateConfig,
    ProxyCertFormat,
    ProxyHeaderSource,
    RequestGate,
    RootKind,
)
from spinepki.policy import ClientAuth
from spinepki.revocation import RevocationChecker, RevocationMode
from spinepki.serverconfig import GATE_CERT_HEADER, render_config
from spinepki.testpki import CRL_SET, TestPKI
from spinepki.tls import server_context
from spinepki.trust import TrustStore
from spinepki.validation import ClientCertValidator

__all__ = ["Shape", "ShapeContext", "start_shape"]

MODES = (ClientAuth.REQUIRE, ClientAuth.HTTP_496)


class Shape(enum.Enum):
    """A way to deploy spinepki's policy in front of a GP Connect application."""

    MIDDLEWARE = "middleware"
    """``GateASGIMiddleware`` in the application, under anycorn with
    ``spinepki.tls.server_context`` (the library, in process)."""
    SERVE = "serve"
    """``spinepki serve``: the reference provider (TLS, validator, gate, hardened loop)."""
    NGINX_GATE = "nginx+gate"
    """The nginx export with ``auth_request`` to ``spinepki gate serve``."""
    NGINX = "nginx"
    """The nginx export alone, in front of the application."""
    APACHE = "apache"
    """The Apache httpd export, with the gate in the application (``ProxyHeaderSource``,
    ``APACHE`` format), as ``docs/serverconfig.md`` says to deploy it."""
    HAPROXY = "haproxy"
    """The HAProxy export, with the gate in the application (``ProxyHeaderSource``,
    ``HAPROXY_BASE64`` format)."""

    @property
    def needs(self) -> tuple[str, ...]:
        """The server binaries this shape runs (``nginx``, ``apache2``, ``haproxy``)."""
        return _NEEDS.get(self, ())

    @property
    def available(self) -> bool:
        """Whether every binary it needs is installed here."""
        try:
            for name in self.needs:
                find_server(name)
        except ConfigurationError:  # not installed
            return False
        return True


_NEEDS = {
    Shape.NGINX_GATE: ("nginx",),
    Shape.NGINX: ("nginx",),
    Shape.APACHE: ("apache2",),
    Shape.HAPROXY: ("haproxy",),
}


@dataclass
class ShapeContext:
    """What every shape shares: one PKI on disk, one responder, one audit logger."""

    pki: TestPKI
    """The test PKI (RSA, so the DHE suites are usable)."""
    directory: Path
    """Where it is written (``spinepki pki init`` layout)."""
    workdir: Path
    """Where the servers' files go, one folder per shape."""
    audit: AuditLogger
    """Where every gate decision is recorded."""
    asid: str
    """The provider's ASID."""
    roots: Mapping[RootKind, tuple[str, ...]]
    """The service roots."""
    audiences: tuple[str, ...]
    """The JWT ``aud`` values accepted."""
    checkers: list[RevocationChecker] = field(default_factory=list)
    """Revocation checkers built for the shapes (closed when the environment stops)."""

    @property
    def trust(self) -> TrustStore:
        """The CAs a provider trusts (root and Sub CA)."""
        return self.pki.trust_store()

    @property
    def crl_set(self) -> Path:
        """The root's and the Sub CA's CRLs in one PEM file."""
        return self.directory / CRL_SET

    def checker(self, mode: RevocationMode) -> RevocationChecker:
        """A revocation checker; OFFLINE ones are handed the CRL set."""
        crls = [self.pki.crl("sub-ca"), self.pki.crl("root")]
        checker = (
            RevocationChecker(mode, crls=crls)
            if mode is RevocationMode.OFFLINE
            else RevocationChecker(mode)
        )
        self.checkers.append(checker)
        return checker

    def gate(self, mode: ClientAuth, revocation: RevocationMode) -> RequestGate:
        """The gate every shape runs: ASID, roots, aud, ClientCertValidator."""
        validator = ClientCertValidator(
            self.trust, ssp_fqdns=[self.pki.ssp_fqdn], revocation=self.checker(revocation)
        )
        return RequestGate(
            GateConfig(
                provider_asid=self.asid,
                service_roots=dict(self.roots),
                client_auth=mode,
                certificate_checker=validator,
                expected_aud=self.audiences,
            )
        )

    def app(self) -> Any:
        """A fresh FHIR demo application."""
        from spinepki.provider import FHIRDemoApp  # noqa: PLC0415 - a provider extra

        return FHIRDemoApp()

    def export(self, server: str, mode: ClientAuth, port: int, **kw: Any) -> str:
        """``render_config`` for ``server`` on ``port``, with the PKI's files."""
        provider = self.directory / "certs"
        return render_config(
            server,
            cert=kw.pop("cert", provider / "provider.chain.pem"),
            key=kw.pop("key", provider / "provider.key.pem"),
            trust_bundle=self.directory / "ca/trust-bundle.pem",
            client_auth=mode,
            listen=f"127.0.0.1:{port}",
            server_name=self.pki.provider_fqdn,
            ssp_fqdns=[self.pki.ssp_fqdn],
            **kw,
        )


Endpoints = dict[ClientAuth, tuple[str, int]]


def start_shape(shape: Shape, ctx: ShapeContext, stack: contextlib.ExitStack) -> Endpoints:
    """Start ``shape``'s servers, registering their shutdown on ``stack``; its endpoints.

    SERVE is not started here: the demo builds it from provider.toml files, as a user
    would.

    Raises:
        ConfigurationError: a server the shape needs is not installed.
    """
    for name in shape.needs:
        find_server(name)
    folder = ctx.workdir / shape.value.replace("+", "-")
    folder.mkdir(parents=True, exist_ok=True)
    return _STARTERS[shape](ctx, folder, stack)


def _middleware(ctx: ShapeContext, folder: Path, stack: contextlib.ExitStack) -> Endpoints:
    host = stack.enter_context(AsgiHost())
    provider = ctx.pki.leaf("provider")
    endpoints: Endpoints = {}
    for mode, revocation in _REVOCATION.items():
        tls = server_context(provider.chain_pem, provider.key_pem, ctx.trust, client_auth=mode)
        app = GateASGIMiddleware(ctx.app(), gate=ctx.gate(mode, revocation), audit=ctx.audit)
        stack.callback(app.close)
        endpoints[mode] = host.serve(app, tls)
    return endpoints


_REVOCATION = {
    ClientAuth.REQUIRE: RevocationMode.CRL_ONLY,
    ClientAuth.HTTP_496: RevocationMode.OCSP_ONLY,
}


def _gate_service(ctx: ShapeContext, folder: Path, stack: contextlib.ExitStack) -> int:
    """``spinepki gate serve`` (gunicorn) as a child, from a TOML file; its port."""
    port = free_port()
    settings = {
        "provider_asid": ctx.asid,
        "ssp_fqdns": [ctx.pki.ssp_fqdn],
        "expected_aud": list(ctx.audiences),
        "trust_bundle": [str(ctx.directory / "ca/trust-bundle.pem")],
        # The CRL set, handed in: nginx checks revocation before the gate is asked.
        "revocation": RevocationMode.OFFLINE.value,
        "crls": [str(ctx.directory / "crl/sub-ca.crl"), str(ctx.directory / "crl/root.crl")],
        "client_auth": ClientAuth.HTTP_496.value,
        "listen": f"127.0.0.1:{port}",
        "trusted_proxies": ["127.0.0.1"],
        "workers": 1,
        "threads": 4,
    }
    lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    lines.append("[service_roots]")
    lines += [f"{kind.value} = {json.dumps(list(paths))}" for kind, paths in ctx.roots.items()]
    toml = folder / "gate.toml"
    toml.write_text("\n".join([*lines, ""]))
    # What `spinepki gate serve -c gate.toml` runs, without going through the CLI.
    code = (
        "import sys; from spinepki.gate_service import load_settings, serve; "
        "serve(load_settings(sys.argv[1]).build())"
    )
    stack.enter_context(
        run_process([sys.executable, "-c", code, str(toml)], ports=[port], log=folder / "gate.log")
    )
    return port


def _nginx(
    ctx: ShapeContext, folder: Path, stack: contextlib.ExitStack, *, gated: bool
) -> Endpoints:
    host = stack.enter_context(AsgiHost())
    upstream = host.serve(ctx.app())
    gate = _gate_service(ctx, folder, stack) if gated else None
    binary = find_server("nginx")
    endpoints: Endpoints = {}
    for mode in MODES:
        port = free_port()
        require = mode is ClientAuth.REQUIRE
        block = ctx.export(
            "nginx",
            mode,
            port,
            crl=ctx.crl_set if require else None,
            ocsp=not require,
            gate_url=f"http://127.0.0.1:{gate}" if gate else None,
            upstream=f"http://{upstream[0]}:{upstream[1]}",
        )
        stack.enter_context(run_nginx(binary, folder / mode.value, block, port))
        endpoints[mode] = ("127.0.0.1", port)
    return endpoints


def _gated_app(
    ctx: ShapeContext,
    host: AsgiHost,
    mode: ClientAuth,
    revocation: RevocationMode,
    fmt: ProxyCertFormat,
    stack: contextlib.ExitStack,
) -> tuple[str, int]:
    source = ProxyHeaderSource(GATE_CERT_HEADER, ("127.0.0.1",), fmt)
    app = GateASGIMiddleware(
        ctx.app(), gate=ctx.gate(mode, revocation), cert_source=source, audit=ctx.audit
    )
    stack.callback(app.close)
    return host.serve(app)


def _apache(ctx: ShapeContext, folder: Path, stack: contextlib.ExitStack) -> Endpoints:
    host = stack.enter_context(AsgiHost())
    exports: list[str] = []
    endpoints: Endpoints = {}
    for mode in MODES:
        require = mode is ClientAuth.REQUIRE
        # httpd checks revocation itself (the CRL set, or OCSP); the gate behind it is
        # handed the CRL set and never asks OCSP, so the evidence is httpd's.
        app = _gated_app(ctx, host, mode, RevocationMode.OFFLINE, ProxyCertFormat.APACHE, stack)
        port = free_port()
        exports.append(
            ctx.export(
                "apache",
                mode,
                port,
                crl=ctx.crl_set if require else None,
                ocsp=not require,
                upstream=f"http://{app[0]}:{app[1]}",
            )
        )
        endpoints[mode] = ("127.0.0.1", port)
    stack.enter_context(
        run_apache(find_server("apache2"), folder, exports, [p for _, p in endpoints.values()])
    )
    return endpoints


def _haproxy(ctx: ShapeContext, folder: Path, stack: contextlib.ExitStack) -> Endpoints:
    host = stack.enter_context(AsgiHost())
    binary = find_server("haproxy")
    endpoints: Endpoints = {}
    for mode in MODES:
        require = mode is ClientAuth.REQUIRE
        # HAProxy checks CRLs (crl-file) but cannot ask OCSP about a client certificate:
        # in http-496 mode the gate behind it does, as the export says.
        revocation = RevocationMode.OFFLINE if require else RevocationMode.OCSP_ONLY
        app = _gated_app(ctx, host, mode, revocation, ProxyCertFormat.HAPROXY_BASE64, stack)
        prefix = folder / mode.value
        prefix.mkdir(parents=True, exist_ok=True)
        # HAProxy reads the key from the crt file or from "<crt>.key".
        crt = prefix / "provider.pem"
        shutil.copyfile(ctx.directory / "certs/provider.chain.pem", crt)
        shutil.copyfile(ctx.directory / "certs/provider.key.pem", f"{crt}.key")
        port = free_port()
        config = ctx.export(
            "haproxy",
            mode,
            port,
            cert=crt,
            key=f"{crt}.key",
            crl=ctx.crl_set if require else None,
            upstream=f"http://{app[0]}:{app[1]}",
        )
        stack.enter_context(run_haproxy(binary, prefix, config, port))
        endpoints[mode] = ("127.0.0.1", port)
    return endpoints


def _nginx_gate(ctx: ShapeContext, folder: Path, stack: contextlib.ExitStack) -> Endpoints:
    return _nginx(ctx, folder, stack, gated=True)


def _nginx_alone(ctx: ShapeContext, folder: Path, stack: contextlib.ExitStack) -> Endpoints:
    return _nginx(ctx, folder, stack, gated=False)


_STARTERS = {
    Shape.MIDDLEWARE: _middleware,
    Shape.NGINX_GATE: _nginx_gate,
    Shape.NGINX: _nginx_alone,
    Shape.APACHE: _apache,
    Shape.HAPROXY: _haproxy,
}
