"""Turning an :class:`SSPConfig` into a running simulator, on the reference provider's
hardened server (:class:`~spinepki.provider.ProviderServer`: its accept loop, handshake
and header deadlines, connection cap and ``Cache-Control: no-store``)."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from spinepki._extras import require_anycorn
from spinepki._loading import load_certificate_chain
from spinepki.policy import ClientAuth
from spinepki.provider import ProviderServer
from spinepki.revocation import RevocationChecker
from spinepki.ssp._app import SSPApp, SSPStats
from spinepki.ssp._audit import SSPAuditLogger
from spinepki.ssp._config import SSPConfig, SSPConfigError
from spinepki.tls import client_context, server_context
from spinepki.trust import TrustStore
from spinepki.validation import ClientCertValidator, Purpose, summarize_certificate

__all__ = ["SSPServer", "create_ssp", "run_ssp", "serve"]


class SSPServer:
    """A running (or ready) simulator: the server and the application it serves.

    Built by :func:`create_ssp`; serves between :meth:`start` and :meth:`stop` or inside a
    ``with`` block, from a background thread.
    """

    def __init__(self, server: ProviderServer, app: SSPApp, config: SSPConfig, fqdn: str):
        self.server = server
        """The underlying hardened server."""
        self.app = app
        """The simulator's ASGI application."""
        self.config = config
        """The configuration it runs."""
        self.fqdn = fqdn
        """The SSP's host name (``ssp.fqdn``, or its certificate's)."""

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port)."""
        return self.server.address

    @property
    def url(self) -> str:
        """``https://FQDN:PORT``: the base consumers put provider URLs after."""
        return f"https://{self.fqdn}:{self.address[1]}"

    @property
    def stats(self) -> SSPStats:
        """The simulator's counters."""
        return self.app.stats

    def start(self) -> SSPServer:
        """Serve in a background thread; returns once connections are accepted."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop, closing kept-alive provider connections; release the port."""
        self.server.stop()

    def serve_forever(self, stop: threading.Event | None = None) -> None:
        """Serve until ``stop`` is set or Ctrl-C, then stop cleanly."""
        self.server.serve_forever(stop)

    def __enter__(self) -> SSPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _password(config: SSPConfig) -> str | None:
    name = config.key_password_env
    if name is None:
        return None
    value = os.environ.get(name)
    if value is None:
        raise SSPConfigError("ssp.key_password_env", f"the environment variable {name} is not set")
    return value


def create_ssp(
    config: SSPConfig,
    *,
    revocation: RevocationChecker | None = None,
    audit: SSPAuditLogger | None = None,
    clock: Callable[[], datetime] | None = None,
) -> SSPServer:
    """Build (but do not start) the simulator described by ``config``.

    Args:
        config: the configuration.
        revocation: a checker to use instead of one built from ``config.revocation``.
        audit: where hop events go (default: the ``spinepki.audit.ssp`` logger).
        clock: the time of each decision (certificate validation on both hops, audit).
            The TLS layer itself checks at the real time.

    Raises:
        SSPConfigError: the key password's environment variable is not set.
        CertificateLoadError / KeyLoadError / ServerCredentialError / TrustStoreError:
            the SSP's certificate, key or trust files are unusable.
        ConfigurationError: anycorn is missing, or the port cannot be bound.
    """
    require_anycorn()  # the provider hop needs anyio and h11, which come with anycorn
    from spinepki.ssp._upstream import ProviderHop  # noqa: PLC0415

    trust = (
        TrustStore.spine(config.trust)
        if config.trust is not None
        else TrustStore.from_paths(*config.trust_files)
    )
    password = _password(config)
    # One identity for both hops, as the real SSP presents: a server certificate to
    # consumers and a client certificate to providers (Spine issues both EKUs).
    server_ctx = server_context(
        config.certificate, config.key, trust, password=password, client_auth=ClientAuth.HTTP_496
    )
    client_ctx = client_context(trust, cert=config.certificate, key=config.key, password=password)
    fqdn = config.fqdn or _certificate_fqdn(config)
    own_checker = revocation is None
    checker = revocation or RevocationChecker(config.revocation)
    directory = config.directory
    now = clock or functools.partial(datetime.now, UTC)
    hop = ProviderHop(
        client_ctx,
        {
            p.asid: ClientCertValidator(
                trust, ssp_fqdns=[p.fqdn], purpose=Purpose.SERVER, revocation=checker
            )
            for p in directory.providers
        },
        config.forwarding,
        now,
    )
    app = SSPApp(
        directory,
        consumer_validator=ClientCertValidator(
            trust, ssp_fqdns=directory.consumer_fqdns, revocation=checker
        ),
        provider_hop=hop,
        forwarding=config.forwarding,
        max_body_bytes=config.limits.max_body_bytes,
        audit=audit,
        clock=now,
    )
    if own_checker:
        checker.start_background_refresh(clock=now)
    try:
        server = ProviderServer(
            app,
            server_ctx,
            host=config.host,
            port=config.port,
            limits=config.limits,
            on_stop=checker.close if own_checker else None,
        )
    except BaseException:
        if own_checker:
            checker.close()
        raise
    return SSPServer(server, app, config, fqdn)


def _certificate_fqdn(config: SSPConfig) -> str:
    leaf = load_certificate_chain(config.certificate)[0]
    return summarize_certificate(leaf, at=datetime.now(UTC)).fqdn or "localhost"


@contextlib.contextmanager
def run_ssp(
    config: SSPConfig,
    *,
    revocation: RevocationChecker | None = None,
    audit: SSPAuditLogger | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Iterator[SSPServer]:
    """Run the simulator in a background thread for the ``with`` block.

    Arguments and errors as for :func:`create_ssp`.
    """
    with create_ssp(config, revocation=revocation, audit=audit, clock=clock) as server:
        yield server


def serve(
    config: SSPConfig,
    *,
    stop: threading.Event | None = None,
    ready: Callable[[SSPServer], None] | None = None,
    audit: SSPAuditLogger | None = None,
) -> None:
    """Run the simulator until ``stop`` is set or Ctrl-C (blocking)."""
    server = create_ssp(config, audit=audit)
    server.start()
    try:
        if ready is not None:
            ready(server)
    except BaseException:
        server.stop()
        raise
    server.serve_forever(stop)
