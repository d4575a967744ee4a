"""``spinepki serve --config provider.toml``: the reference provider from a config file."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from spinepki.audit import AuditLogger
from spinepki.provider import ProviderServer, load_config
from spinepki.provider import example_config as provider_example_config
from spinepki.provider import serve as serve_provider

from ._common import command, stderr_audit_logger

#: Set by tests (or a signal handler) to stop a running ``serve``.
SERVE_STOP = threading.Event()


def reload_trust(server: ProviderServer) -> bool:
    """What SIGHUP does: re-read the trust bundle, certificate and key named in the
    config. A failure is reported on stderr and the server keeps its current ones."""
    try:
        server.reload_trust()
    except Exception as exc:  # a failed reload must not end the server
        click.echo(f"trust reload failed, keeping the current trust: {exc}", err=True)
        return False
    click.echo("trust bundle reloaded", err=True)
    return True


def _provider_log_to_stderr() -> None:
    # The server's own warnings (a connection that failed, a TLS context that could not
    # be renewed) and its fatal error (``provider.failed``) go to stderr for the
    # operator's log collector, next to the audit stream.
    logger = logging.getLogger("spinepki.provider")
    logger.setLevel(logging.WARNING)
    if not any(getattr(h, "spinepki_serve", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handler.spinepki_serve = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def _audit_to_stderr() -> AuditLogger:
    # One JSON object per gate decision on stderr, for the operator's log collector.
    return AuditLogger(stderr_audit_logger("spinepki.audit.serve"))


@command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="The provider configuration (TOML); --example-config prints a commented one.",
)
@click.option("--check", is_flag=True, help="Check the configuration and credentials, then exit.")
@click.option(
    "--example-config",
    is_flag=True,
    help="Print the example configuration (every key, with its default) and exit.",
)
def serve(config_path: Path | None, check: bool, example_config: bool) -> None:
    """Run the reference provider: TLS with the Spine policy, the client-certificate
    validator and the request gate in front of an ASGI application.

    Stops on Ctrl-C or SIGTERM (exit 0); SIGHUP re-reads the trust bundle, certificate and
    key and refetches revocation evidence. Exit 2 with a one-line message for a
    configuration error (the message names the key), and when the server stops serving by
    itself ([provider.failed], also logged), so a supervisor restarts it.
    """
    if example_config:
        click.echo(provider_example_config(), nl=False)
        return
    if config_path is None:
        raise click.UsageError("--config is required (--example-config prints an example)")
    config = load_config(config_path)
    if check:
        from spinepki.provider import create_server  # noqa: PLC0415

        create_server(config).stop()
        click.echo(f"{config_path}: configuration OK")
        return

    in_main = threading.current_thread() is threading.main_thread()
    hangup = getattr(signal, "SIGHUP", None)  # not on Windows
    previous_hup: Any = None

    def ready(server: ProviderServer) -> None:
        nonlocal previous_hup
        click.echo(
            f"spinepki reference provider on {server.url} "
            f"(client auth {config.client_auth.value}, revocation {config.revocation.value})"
        )
        if in_main and hangup is not None:
            # The reload runs in a thread of its own: a second SIGHUP arriving
            # during a reload would otherwise run inside it, in the main thread.
            previous_hup = signal.signal(
                hangup,
                lambda *_: threading.Thread(
                    target=reload_trust, args=(server,), name="spinepki-reload", daemon=True
                ).start(),
            )

    _provider_log_to_stderr()
    SERVE_STOP.clear()
    previous = signal.signal(signal.SIGTERM, lambda *_: SERVE_STOP.set()) if in_main else None
    try:
        serve_provider(config, stop=SERVE_STOP, ready=ready, audit=_audit_to_stderr())
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
            if hangup is not None and previous_hup is not None:
                signal.signal(hangup, previous_hup)
    click.echo("stopped")
