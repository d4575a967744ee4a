"""Turning a :class:`ProviderConfig` into a running reference provider.

The composition is the pattern the docs recommend, in code: ``server_context`` for TLS,
a :class:`ClientCertValidator` (SSP FQDNs, revocation mode) as the gate's certificate
checker, :class:`GateASGIMiddleware` in front of the application, and the hardened
:class:`ProviderServer` underneath.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from spinepki.audit import AuditLogger
from spinepki.gate import GateASGIMiddleware, GateConfig, GateLimits, RequestGate
from spinepki.provider._app import FHIRDemoApp
from spinepki.provider._config import DEFAULT_APP, ProviderConfig, ProviderConfigError
from spinepki.provider._server import ASGIApp, ProviderServer
from spinepki.revocation import RevocationChecker
from spinepki.tls import server_context
from spinepki.trust import TrustStore
from spinepki.validation import ClientCertValidator

__all__ = ["create_server", "load_app", "run_provider", "serve"]


def load_app(spec: str) -> ASGIApp:
    """Import the ASGI application named ``module:attribute`` (dots allowed in both).

    The default (:data:`DEFAULT_APP`) gives a fresh :class:`FHIRDemoApp`, so two
    providers in one process do not share appointments.

    Raises:
        ProviderConfigError: (key ``provider.app``) the module or attribute is missing or
            the object is not callable.
    """
    if spec == DEFAULT_APP:
        return FHIRDemoApp()
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ProviderConfigError("provider.app", "must be 'module:attribute'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ProviderConfigError(
            "provider.app", f"cannot import module {module_name!r}: {exc}"
        ) from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ProviderConfigError(
                "provider.app", f"{module_name!r} has no attribute {attribute!r}"
            ) from None
    if not callable(target):
        raise ProviderConfigError("provider.app", f"{spec!r} is not an ASGI application")
    app: ASGIApp = target
    return app


def _trust(config: ProviderConfig) -> TrustStore:
    if config.trust is not None:
        return TrustStore.spine(config.trust)
    return TrustStore.from_paths(*config.trust_files)


def _password(config: ProviderConfig) -> str | None:
    name = config.key_password_env
    if name is None:
        return None
    value = os.environ.get(name)
    if value is None:
        raise ProviderConfigError(
            "tls.key_password_env", f"the environment variable {name} is not set"
        )
    return value


def create_server(
    config: ProviderConfig,
    *,
    app: ASGIApp | None = None,
    revocation: RevocationChecker | None = None,
    audit: AuditLogger | None = None,
) -> ProviderServer:
    """Build (but do not start) the reference provider described by ``config``.

    Args:
        config: the provider configuration.
        app: the upstream ASGI application; default: :func:`load_app` of ``config.app``.
        revocation: a revocation checker to use instead of one built from
            ``config.revocation`` (e.g. with an in-memory fetcher in tests).
        audit: where gate decisions are audited (default: the ``spinepki.audit`` logger).

    Raises:
        ProviderConfigError: the application or key password cannot be found.
        CertificateLoadError / KeyLoadError / ServerCredentialError / TrustStoreError:
            the TLS credential or the trust files are unusable.
        ConfigurationError: anycorn is missing, or the port cannot be bound.
    """
    trust = _trust(config)
    ctx = server_context(
        config.certificate,
        config.key,
        trust,
        password=_password(config),
        client_auth=config.client_auth,
    )
    upstream = app if app is not None else load_app(config.app)
    own_checker = revocation is None
    checker = revocation or RevocationChecker(config.revocation)
    validator = ClientCertValidator(trust, ssp_fqdns=config.ssp_fqdns, revocation=checker)
    gate = RequestGate(
        GateConfig(
            provider_asid=config.asid,
            service_roots=dict(config.service_roots),
            client_auth=config.client_auth,
            certificate_checker=validator,
            limits=GateLimits(max_body_bytes=config.limits.max_body_bytes),
        )
    )
    guarded = GateASGIMiddleware(upstream, gate=gate, audit=audit)
    if own_checker:
        # Refresh cached CRLs off the request path, so a request rarely waits for a
        # fetch (the gate calls the validator synchronously).
        checker.start_background_refresh()
    try:
        return ProviderServer(
            guarded,
            ctx,
            host=config.host,
            port=config.port,
            limits=config.limits,
            on_stop=checker.close if own_checker else None,
        )
    except BaseException:
        if own_checker:
            checker.close()
        raise


@contextlib.contextmanager
def run_provider(
    config: ProviderConfig,
    *,
    app: ASGIApp | None = None,
    revocation: RevocationChecker | None = None,
    audit: AuditLogger | None = None,
) -> Iterator[ProviderServer]:
    """Run the reference provider in a background thread for the ``with`` block.

    Example::

        with run_provider(load_config("provider.toml")) as provider:
            print(provider.url)

    Arguments and errors as for :func:`create_server`.
    """
    server = create_server(config, app=app, revocation=revocation, audit=audit)
    with server:
        yield server


def serve(
    config: ProviderConfig,
    *,
    stop: threading.Event | None = None,
    ready: Callable[[ProviderServer], None] | None = None,
    audit: AuditLogger | None = None,
) -> None:
    """Run the reference provider until ``stop`` is set or Ctrl-C (blocking).

    Args:
        config: the provider configuration.
        stop: set it (from another thread or a signal handler) to stop.
        ready: called with the running server once it accepts connections.
        audit: where gate decisions are audited.
    """
    server = create_server(config, audit=audit)
    stop = stop or threading.Event()
    server.start()
    try:
        if ready is not None:
            ready(server)
    except BaseException:
        server.stop()
        raise
    server.serve_forever(stop)
