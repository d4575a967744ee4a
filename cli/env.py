"""``spinepki env up [DIR]``: a whole local integration environment in one command."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import click

from spinepki.audit import AuditLogger
from spinepki.demo import Environment, default_directory, directory_toml, run_environment
from spinepki.ssp import SSPAuditLogger, load_directory
from spinepki.testpki import KeyType

from ._common import (
    emit_json,
    group,
    json_option,
    key_type_option,
    note,
    stderr_audit_logger,
    stop_on_sigterm,
)

#: Set by tests (or SIGTERM) to stop a running ``env up``.
ENV_STOP = threading.Event()


@group()
def env() -> None:
    """Local integration environments: test PKI, CRL/OCSP, providers and the SSP."""


@env.command("up")
@click.argument(
    "folder",
    required=False,
    default="spinepki-env",
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option(
    "--config",
    "config_path",
    # Opened by the library, which names what is wrong (missing, a directory, too large,
    # not TOML, a bad key) with the `config.ssp` code.
    type=click.Path(path_type=Path),
    help="A TOML file with a [directory] of consumers and providers (default: one of each).",
)
@key_type_option()
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="The SSP's port (0: free).")
@json_option("Print the environment as JSON (errors too).")
@click.option(
    "--example-config",
    is_flag=True,
    help="Print the built-in directory as a --config file to start from, and exit.",
)
@click.option("--seconds", type=float, hidden=True, help="Stop after this long (tests).")
def up(
    folder: Path,
    config_path: Path | None,
    key_type: str,
    port: int,
    as_json: bool,
    example_config: bool,
    seconds: float | None,
) -> None:
    """Bring up a local GP Connect integration environment in FOLDER (default
    ./spinepki-env): a Spine-shaped test PKI, its CRL/OCSP responder, a reference
    provider per provider in the directory and the SSP simulator in front of them.

    Prints the URLs, ASIDs, certificate files and curl commands a consumer developer
    needs; audit events go to stderr. Stops cleanly on Ctrl-C or SIGTERM. FOLDER must be
    new, empty, or an earlier environment (which is replaced).
    """
    if example_config:
        click.echo(_EXAMPLE_HEAD + directory_toml(default_directory(), addresses=False), nl=False)
        return
    ENV_STOP.clear()
    # SIGTERM is handled from the start: one arriving while servers start must still
    # stop them cleanly (the with block below), not kill the process half-way. Ctrl-C
    # while starting also stops what had started (the with block), then exits 130 as
    # any interrupted command does; once running, Ctrl-C is the normal way to stop (0).
    with stop_on_sigterm(ENV_STOP):
        directory = load_directory(config_path) if config_path is not None else None
        with run_environment(
            folder,
            directory=directory,
            key_type=KeyType(key_type),
            ssp_port=port,
            say=note,
            audit=SSPAuditLogger(stderr_audit_logger("spinepki.audit.ssp.env")),
            provider_audit=AuditLogger(stderr_audit_logger("spinepki.audit.env")),
        ) as environment:
            try:
                if as_json:
                    emit_json(environment.summary())
                else:
                    _print(environment)
                _wait(seconds)
            except KeyboardInterrupt:  # Ctrl-C: the normal way to stop
                pass
            note("Stopping the environment.")


_EXAMPLE_HEAD = """\
# spinepki env up --config FILE: the systems of the environment. This is the built-in
# default; add [[directory.consumers]] and [[directory.providers]] tables for more.
# Interactions: IDs, or a group (foundations, structured, documents, access-record-html)
# for every released interaction of that kind. env up issues each system's certificate
# for its fqdn and starts a reference provider per provider (no `address` here).

"""


def _wait(seconds: float | None) -> None:
    deadline = None if seconds is None else time.monotonic() + seconds
    # Bounded waits, repeated, so Ctrl-C is handled promptly on every platform.
    while not ENV_STOP.wait(0.25):
        if deadline is not None and time.monotonic() >= deadline:
            break


def _print(environment: Environment) -> None:
    summary = environment.summary()
    ssp = summary["ssp"]
    click.echo(f"SSP simulator        {ssp['url']}  (listening on {ssp['address']})")
    click.echo(f"CRL/OCSP responder   {summary['responder']}")
    click.echo(f"trust bundle         {summary['trust_bundle']}")
    click.echo(f"SSP configuration    {ssp['config']}")
    click.echo("\nConsumers (present the certificate; send Ssp-From = the ASID):")
    for c in summary["consumers"]:
        click.echo(f"  ASID {c['asid']}  ODS {c['ods']}  {c['fqdn']}")
        click.echo(f"    certificate {c['certificate']}")
        click.echo(f"    key         {c['key']}")
        click.echo(f"    may send    {', '.join(c['interactions'])} to {', '.join(c['send_to'])}")
    click.echo("\nProviders (Ssp-To = the ASID; the URL is SSP URL + '/' + a service root):")
    for p in summary["providers"]:
        click.echo(f"  ASID {p['asid']}  ODS {p['ods']}  {p['fqdn']}  (on {p['listening']})")
        for kind, roots in p["service_roots"].items():
            click.echo(f"    {kind:12} {', '.join(roots)}")
    click.echo("\nTry it (tokens are valid for five minutes):")
    for what, command in environment.curl_commands():
        click.echo(f"\n# {what}\n{command}")
    click.echo("\nCtrl-C stops everything.")
