"""``spinepki serve --config provider.toml``: the reference provider from a config file."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

import click

from spinepki.audit import AuditLogger, JSONAuditFormatter
from spinepki.provider import ProviderServer, load_config
from spinepki.provider import serve as serve_provider

from ._common import is_debug, library_errors

#: Set by tests (or a signal handler) to stop a running ``serve``.
SERVE_STOP = threading.Event()


def _audit_to_stderr() -> AuditLogger:
    # One JSON object per gate decision on stderr, for the operator's log collector.
    logger = logging.getLogger("spinepki.audit.serve")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JSONAuditFormatter())
        logger.addHandler(handler)
    return AuditLogger(logger)


@click.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The provider configuration (TOML); see docs/provider.md.",
)
@click.option("--check", is_flag=True, help="Check the configuration and credentials, then exit.")
@click.pass_context
def serve(ctx: click.Context, config_path: Path, check: bool) -> None:
    """Run the reference provider: TLS with the Spine policy, the client-certificate
    validator and the request gate in front of an ASGI application.

    Stops on Ctrl-C or SIGTERM. Exit 2 with a one-line message for a configuration
    error (the message names the key).
    """
    with library_errors(is_debug(ctx)):
        config = load_config(config_path)
        if check:
            from spinepki.provider import create_server  # noqa: PLC0415

            create_server(config).stop()
            click.echo(f"{config_path}: configuration OK")
            return

        def ready(server: ProviderServer) -> None:
            click.echo(
                f"spinepki reference provider on {server.url} "
                f"(client auth {config.client_auth.value}, revocation {config.revocation.value})"
            )

        SERVE_STOP.clear()
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, lambda *_: SERVE_STOP.set()) if in_main else None
        try:
            serve_provider(config, stop=SERVE_STOP, ready=ready, audit=_audit_to_stderr())
        finally:
            if in_main:
                signal.signal(signal.SIGTERM, previous)
        click.echo("stopped")
