"""Turning a :class:`ProviderConfig` into a running reference provider.

The composition is the pattern the docs recommend, in code: ``server_context`` for TLS,
a :class:`ClientCertValidator` (SSP FQDNs, revocation mode) as the gate's certificate
checker, :class:`GateASGIMiddleware` in front of the application, and the hardened
:class:`ProviderServer` underneath.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from spinepki._loading import load_certificate_chain, load_private_key
from spinepki.audit import AuditLogger
from spinepki.gate import CheckOutcome, GateASGIMiddleware, GateConfig, GateLimits, RequestGate
from spinepki.provider._app import FHIRDemoApp
from spinepki.provider._config import DEFAULT_APP, ProviderConfig, ProviderConfigError
from spinepki.provider._server import ASGIApp, ProviderServer
from spinepki.revocation import RevocationChecker, RevocationLimits
from spinepki.tls import server_context
from spinepki.trust import TrustStore
from spinepki.validation import ClientCertValidator

__all__ = ["create_server", "load_app", "run_provider", "serve"]

_log = logging.getLogger("spinepki.provider")


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


class _Credential:
    """The files a server context is built from, read once (at start and at each reload).

    :meth:`context` builds a fresh context from what was read, with no file access: the
    server renews its context every ``max_staleness`` to bound TLS session lifetime, and a
    renewal must not pick up files changed on disk (that is what a reload is for). The
    first context is built at once by whoever reads the files (start, reload), so every
    check ``server_context`` makes fails there, not at a renewal.
    """

    __slots__ = ("_chain", "_client_auth", "_key", "trust")

    def __init__(self, config: ProviderConfig) -> None:
        self.trust = _trust(config)
        self._chain = b"".join(
            c.public_bytes(serialization.Encoding.PEM)
            for c in load_certificate_chain(config.certificate)
        )
        self._key = load_private_key(config.key, password=_password(config))
        self._client_auth = config.client_auth

    def context(self) -> ssl.SSLContext:
        """A new server context for this credential and trust, issuing no session
        tickets: a ticket announces OpenSSL's 7200 s lifetime, which Python cannot
        change, while session IDs live in the context and end with it (renewed every
        ``max_staleness``)."""
        ctx = server_context(self._chain, self._key, self.trust, client_auth=self._client_auth)
        ctx.options |= ssl.OP_NO_TICKET
        return ctx


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


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _CurrentValidator:
    """The gate's certificate checker: the validator of the trust bundle in force.

    :meth:`ProviderServer.reload_trust` swaps :attr:`validator` (one attribute
    assignment); each check reads it once.
    """

    __slots__ = ("validator",)

    def __init__(self, validator: ClientCertValidator) -> None:
        self.validator = validator

    def validate(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate] = (),
        *,
        at: datetime | None = None,
    ) -> CheckOutcome:
        """Check ``leaf`` with the current validator."""
        return self.validator.validate(leaf, intermediates, at=at)


def create_server(
    config: ProviderConfig,
    *,
    app: ASGIApp | None = None,
    revocation: RevocationChecker | None = None,
    audit: AuditLogger | None = None,
    clock: Callable[[], datetime] | None = None,
) -> ProviderServer:
    """Build (but do not start) the reference provider described by ``config``.

    Args:
        config: the provider configuration.
        app: the upstream ASGI application; default: :func:`load_app` of ``config.app``.
        revocation: a revocation checker to use instead of one built from
            ``config.revocation`` (e.g. with an in-memory fetcher in tests).
        audit: where gate decisions are audited (default: the ``spinepki.audit`` logger).
        clock: returns the current time (timezone-aware) for each request's decision:
            the gate's ``now``, the certificate validator's ``at`` (revocation
            included) and the audit timestamp; also the time of the background CRL
            refresh of a checker built here. Default: the system clock. For tests and
            fault injection. The TLS layer is not driven by it: OpenSSL verifies in
            the handshake at the real time, and the server credential is checked at
            the real time (here and on reload).

    The server's :meth:`~ProviderServer.reload_trust` re-reads ``config``'s trust files,
    certificate and key, and refetches the revocation evidence (so a revocation already
    published is acted on at once). ``config.max_staleness`` bounds how long revocation
    evidence is relied on (for a checker built here; pass your own ``revocation`` with
    the same ``max_staleness``), and how long a TLS session can be resumed: the server
    renews its context that often, from the credential read at start (or reload).

    Raises:
        ProviderConfigError: the application or key password cannot be found.
        CertificateLoadError / KeyLoadError / ServerCredentialError / TrustStoreError:
            the TLS credential or the trust files are unusable.
        ConfigurationError: anycorn is missing, or the port cannot be bound.
    """
    credential = _Credential(config)
    ctx = credential.context()
    upstream = app if app is not None else load_app(config.app)
    own_checker = revocation is None
    checker = revocation or RevocationChecker(
        config.revocation,
        limits=RevocationLimits(max_staleness=timedelta(seconds=config.max_staleness)),
    )
    now = clock or _utc_now
    current = _CurrentValidator(
        ClientCertValidator(credential.trust, ssp_fqdns=config.ssp_fqdns, revocation=checker)
    )
    gate = RequestGate(
        GateConfig(
            provider_asid=config.asid,
            service_roots=dict(config.service_roots),
            client_auth=config.client_auth,
            certificate_checker=current,
            limits=GateLimits(max_body_bytes=config.limits.max_body_bytes),
            expected_aud=config.expected_aud or None,
        )
    )
    guarded = GateASGIMiddleware(upstream, gate=gate, audit=audit, clock=clock)

    def reload(server: ProviderServer) -> None:
        nonlocal credential
        # Build everything first: a bad file raises here and nothing is swapped.
        new_credential = _Credential(config)
        new_ctx = new_credential.context()
        new_validator = ClientCertValidator(
            new_credential.trust, ssp_fqdns=config.ssp_fqdns, revocation=checker
        )
        # Ask the CAs again now: a revocation published since the last fetch counts from
        # this reload on, not from the next refresh (a failed refetch keeps what it had).
        for problem in checker.reload(at=now()):
            _log.warning("revocation evidence not refetched on reload: %s", problem)
        # The validator first: a connection handshaken with the old context and checked
        # by the new validator must satisfy the new bundle at the gate.
        current.validator = new_validator
        credential = new_credential
        server.set_ssl_context(new_ctx)

    def renew() -> ssl.SSLContext:
        # Late-bound: after a reload, renewals use the credential the reload read.
        return credential.context()

    if own_checker:
        # Refresh cached CRLs off the request path, so a request rarely waits for a
        # fetch (the gate calls the validator synchronously). Twice per max_staleness:
        # a CRL is then rarely old enough for a check to have to refetch it itself.
        checker.start_background_refresh(config.max_staleness / 2, clock=now)
    try:
        return ProviderServer(
            guarded,
            ctx,
            host=config.host,
            port=config.port,
            limits=config.limits,
            on_stop=checker.close if own_checker else None,
            reload=reload,
            renew_context=renew,
            session_lifetime=config.max_staleness,
            clock=now,
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
    clock: Callable[[], datetime] | None = None,
) -> Iterator[ProviderServer]:
    """Run the reference provider in a background thread for the ``with`` block.

    Example::

        with run_provider(load_config("provider.toml")) as provider:
            print(provider.url)

    Arguments and errors as for :func:`create_server`.
    """
    server = create_server(config, app=app, revocation=revocation, audit=audit, clock=clock)
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
