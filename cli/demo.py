"""``spinepki demo``: the whole security layer on a built-in default, in one command."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from spinepki.testpki import KeyType, TestPKI, write_pki
from spinepki.testpki.demo import DemoOutcome, run_demo

from ._common import EXIT_INVALID, emit_json, is_debug, library_errors


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the test PKI here (default: a temporary directory, removed afterwards).",
)
@click.option(
    "--key-type",
    type=click.Choice([k.value for k in KeyType]),
    default=KeyType.RSA_2048.value,
    show_default=True,
    help="RSA-2048 is what Spine uses; ec-p256 is faster.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcomes as JSON.")
@click.pass_context
def demo(ctx: click.Context, directory: Path | None, key_type: str, as_json: bool) -> None:
    """Generate a test PKI, start providers built with server_context, and play the SSP
    and rogue callers against them. Exit 0 only when every caller got the outcome the
    policy requires.
    """

    def say(message: str) -> None:
        if not as_json:
            click.echo(message, err=True)

    with library_errors(is_debug(ctx)), tempfile.TemporaryDirectory(prefix="spinepki-demo-") as tmp:
        target = directory or Path(tmp)
        say(f"Generating a Spine-shaped test PKI ({key_type}) in {target} ...")
        pki = TestPKI.create(key_type=KeyType(key_type), reuse_keys=False)
        write_pki(pki, target, overwrite=True)
        say("Starting providers on 127.0.0.1 (require mode and http-496 mode, CRL loaded) ...")

        def progress(outcome: DemoOutcome) -> None:
            mark = "." if outcome.as_required else "!"
            if not as_json:
                click.echo(mark, nl=False, err=True)

        outcomes = run_demo(pki, progress=progress)
        say("")
    good = sum(o.as_required for o in outcomes)
    if as_json:
        emit_json(
            {
                "outcomes": [o.as_dict() for o in outcomes],
                "as_required": good,
                "total": len(outcomes),
            }
        )
    else:
        _table(outcomes)
        click.echo(f"\n{good} of {len(outcomes)} behaved as the policy requires.")
    if good != len(outcomes):
        ctx.exit(EXIT_INVALID)


def _table(outcomes: list[DemoOutcome]) -> None:
    rows = [("caller", "tried", "expected", "outcome", "rule")]
    for o in outcomes:
        rows.append(
            (
                ("  " if o.as_required else "✗ ") + o.caller.name,
                o.caller.tried,
                "accepted" if o.caller.expect_accepted else "refused",
                o.outcome,
                o.caller.rule,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        )
