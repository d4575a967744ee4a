"""Entry point: ``spinepki …``. Sub-command groups live in their own modules."""

from __future__ import annotations

import click

import spinepki

from ._common import group
from .cert import cert
from .demo import demo
from .gate_cmd import gate
from .pki import pki
from .security_test import security_test
from .serve import serve
from .tls import tls


@group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(spinepki.__version__, prog_name="spinepki")
@click.option(
    "--debug",
    is_flag=True,
    help="Show tracebacks instead of one-line errors (also after a command).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """spinepki: the security edge of a GP Connect provider.

    Spine TLS policy, client-certificate validation, the SSP request gate, and a
    Spine-shaped test PKI. Exit codes: 0 ok, 1 invalid / non-compliant, 2 usage or
    input error. Errors are one line (`Error: ... [code]`), or JSON with --json.
    """
    ctx.obj = {**(ctx.obj or {}), "debug": debug or bool((ctx.obj or {}).get("debug"))}


cli.add_command(cert)
cli.add_command(demo)
cli.add_command(gate)
cli.add_command(pki)
cli.add_command(security_test)
cli.add_command(serve)
cli.add_command(tls)


def main(argv: list[str] | None = None) -> None:
    """Run the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    cli.main(args=argv, prog_name="spinepki")
