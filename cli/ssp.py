"""``spinepki ssp serve --config env.toml``: the Spine Secure Proxy simulator."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from spinepki.ssp import SSPAuditLogger, SSPServer, create_ssp, load_config
from spinepki.ssp import serve as serve_ssp

from ._common import group, stderr_audit_logger, stop_on_sigterm

#: Set by tests (or SIGTERM) to stop a running ``ssp serve``.
SSP_STOP = threading.Event()


@group()
def ssp() -> None:
    """The Spine Secure Proxy simulator (consumer -> SSP -> provider)."""


@ssp.command("serve")
@click.option(
    "--config",
    "config_path",
    required=True,
    # Opened by the library, which names what is wrong (missing, a directory, too large,
    # not TOML, a bad key) with the `config.ssp` code.
    type=click.Path(path_type=Path),
    help="The simulator's configuration (TOML): its TLS identity and the directory.",
)
@click.option("--check", is_flag=True, help="Check the configuration and credentials, then exit.")
def serve_cmd(config_path: Path, check: bool) -> None:
    """Run the SSP simulator: mutual TLS from consumers, the directory's checks (ASIDs,
    interactions, data sharing, service roots), forwarding to providers over mutual TLS.

    One JSON audit event per hop goes to stderr. Stops on Ctrl-C or SIGTERM. Exit 2 with
    a one-line message for a configuration error (the message names the key).
    """
    config = load_config(config_path)
    if check:
        create_ssp(config).server.stop()
        click.echo(f"{config_path}: configuration OK")
        return

    def ready(server: SSPServer) -> None:
        directory = server.config.directory
        click.echo(
            f"spinepki SSP simulator on {server.url} (listening on "
            f"{server.address[0]}:{server.address[1]}; {len(directory.consumers)} "
            f"consumers, {len(directory.providers)} providers)"
        )

    SSP_STOP.clear()
    audit = SSPAuditLogger(stderr_audit_logger("spinepki.audit.ssp.serve"))
    with stop_on_sigterm(SSP_STOP):
        serve_ssp(config, stop=SSP_STOP, ready=ready, audit=audit)
    click.echo("stopped")
