"""``spinepki demo``: the whole security layer on a built-in default, in one command."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import click

from spinepki.demo import (
    DemoEnvironment,
    DemoOutcome,
    Shape,
    SSPDemo,
    SSPOutcome,
    demo_environment,
    ssp_demo,
)
from spinepki.testpki import KeyType

from ._common import EXIT_INVALID, command, emit_json, is_quiet, json_option, key_type_option

#: Set by tests to stop a ``--keep`` demo without a signal.
KEEP_STOP = threading.Event()


class _Progress:
    """Progress on stderr: messages, plus a dot every half second while work runs."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._dotted = False
        self._lock = threading.Lock()

    def say(self, message: str) -> None:
        if self.enabled:
            with self._lock:
                if self._dotted:
                    click.echo("", err=True)
                    self._dotted = False
                click.echo(message, err=True)

    def dot(self, mark: str = ".") -> None:
        if self.enabled:
            with self._lock:
                click.echo(mark, nl=False, err=True)
                self._dotted = True

    @contextmanager
    def ticking(self) -> Iterator[None]:
        """Dots while the block runs (generating RSA keys is the slow part)."""
        done = threading.Event()

        def tick() -> None:
            while not done.wait(0.5):
                self.dot()

        thread = threading.Thread(target=tick, daemon=True)
        if self.enabled:
            thread.start()
        try:
            yield
        finally:
            done.set()
            if self.enabled:
                thread.join(timeout=2)


@command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the test PKI here (default: a temporary directory, removed afterwards).",
)
@key_type_option()
@json_option("Print the outcomes as JSON.")
@click.option(
    "--keep",
    is_flag=True,
    help="Leave the servers running afterwards, print their URLs and curl commands; "
    "stop with Ctrl-C.",
)
@click.option("--keep-seconds", type=float, hidden=True, help="Stop --keep after this long.")
@click.option(
    "--shape",
    "shapes",
    multiple=True,
    type=click.Choice([*(s.value for s in Shape), "all"]),
    help="Deployment shape to play the callers against (repeat; `all`: the parity matrix). "
    "Default: serve. nginx, apache and haproxy need those servers installed.",
)
@click.option(
    "--via-ssp",
    is_flag=True,
    help="Also play consumers going through the SSP simulator (consumer -> SSP -> provider) "
    "to the serve shape's provider.",
)
@click.pass_context
def demo(
    ctx: click.Context,
    directory: Path | None,
    key_type: str,
    as_json: bool,
    keep: bool,
    keep_seconds: float | None,
    shapes: tuple[str, ...],
    via_ssp: bool,
) -> None:
    """Generate a test PKI, start the CRL/OCSP responder and two reference providers
    (require and http-496 mode), and play the SSP and rogue callers against them.

    With --shape, play them against other deployment shapes of the same policy (the
    middleware, the nginx, Apache and HAProxy exports): one shape prints its column of
    the parity matrix, several print the matrix. --via-ssp adds the SSP simulator and
    consumer callers that go through it to the serve shape's provider (`make demo`).
    Exit 0 only when every caller got the outcome the GP Connect policy requires, or the
    documented difference of its shape.
    """
    chosen = _shapes(shapes)
    if via_ssp and Shape.SERVE not in chosen:
        raise click.UsageError(
            "--via-ssp forwards to the serve shape's reference provider: add --shape serve"
        )
    shown = _Progress(enabled=not as_json and not is_quiet(ctx))

    def progress(outcome: DemoOutcome | SSPOutcome) -> None:
        shown.dot("." if outcome.as_required else "!")

    started = time.perf_counter()
    with ExitStack() as stack:
        with shown.ticking():
            env = stack.enter_context(
                demo_environment(
                    key_type=KeyType(key_type), directory=directory, say=shown.say, shapes=chosen
                )
            )
            ssp = stack.enter_context(ssp_demo(env, say=shown.say)) if via_ssp else None
        shown.say("Playing the callers ")
        matrix = env.play_matrix(shapes=chosen, progress=progress)
        through_ssp = ssp.play(progress=progress) if ssp is not None else []
        outcomes: list[DemoOutcome | SSPOutcome] = [*matrix.outcomes.values(), *through_ssp]
        shown.say(f"done in {time.perf_counter() - started:.1f} s")
        good = sum(o.as_required for o in outcomes)
        if as_json:
            emit_json(
                {
                    "outcomes": [o.as_dict() for o in outcomes],
                    "as_required": good,
                    "total": len(outcomes),
                    "seconds": round(time.perf_counter() - started, 2),
                    "shapes": [s.value for s in chosen],
                    "providers": {m.value: s.url for m, s in env.providers.items()},
                    **({"ssp": ssp.ssp.url} if ssp is not None else {}),
                }
            )
        elif len(chosen) == 1:
            _table([*matrix.column(chosen[0]), *through_ssp])
            click.echo(f"\n{good} of {len(outcomes)} behaved as the policy requires.")
        else:
            click.echo(matrix.table())
            if through_ssp:
                click.echo("\nThrough the SSP simulator, to the serve shape's provider:")
                _table(through_ssp)
            what = "cells and callers through the SSP" if through_ssp else "cells"
            click.echo(f"\n{good} of {len(outcomes)} {what} behaved as the policy requires.")
        if keep:
            _keep(env, ssp, keep_seconds, to_err=as_json)
    if good != len(outcomes):
        ctx.exit(EXIT_INVALID)


def _shapes(names: tuple[str, ...]) -> tuple[Shape, ...]:
    if not names:
        return (Shape.SERVE,)
    if "all" in names:
        return tuple(Shape)
    return tuple(s for s in Shape if s.value in names)


def _keep(
    env: DemoEnvironment, ssp: SSPDemo | None, seconds: float | None, *, to_err: bool
) -> None:
    def out(message: str = "") -> None:
        click.echo(message, err=to_err)

    out("\nThe servers keep running (Ctrl-C stops them):")
    out(f"  CRL/OCSP responder     {env.responder.base_url}")
    for mode, server in env.providers.items():
        out(f"  provider ({mode.value:8}) {server.url}   (certificate for {env.pki.provider_fqdn})")
    for shape, endpoints in env.endpoints.items():
        if shape is not Shape.SERVE:
            for mode, (host, port) in endpoints.items():
                out(f"  {shape.value:>10} ({mode.value:8}) https://{host}:{port}")
    if ssp is not None:
        out(f"  SSP simulator          {ssp.ssp.url}   (on {ssp.ssp.address[0]})")
    out(f"  test PKI               {env.directory}")
    if env.providers:
        out("\nTry by hand (the tokens expire five minutes from now):")
        for what, line in env.curl_commands():
            out(f"\n# {what}\n{line}")
    deadline = None if seconds is None else time.monotonic() + seconds
    KEEP_STOP.clear()
    try:
        # Bounded waits, repeated, so Ctrl-C is handled promptly on every platform.
        while not KEEP_STOP.wait(0.25):
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        pass
    out("\nStopping the servers.")


def _table(outcomes: Sequence[DemoOutcome | SSPOutcome]) -> None:
    header = ("caller", "tried", "expected", "outcome", "status/alert", "reason")
    rows = [header]
    notes: dict[int, str] = {}
    for o in outcomes:
        # A caller through the SSP has the SSP's answer to get, never a shape's difference.
        expected = o.caller.expected
        if isinstance(o, DemoOutcome):
            difference = o.required.difference
            expected = o.required.text
            if difference is not None:
                notes[difference.number] = difference.reason
                expected += f" °{difference.number}"
        rows.append(
            (
                ("  " if o.as_required else "✗ ") + o.caller.name,
                o.caller.tried,
                expected,
                o.outcome,
                o.signal,
                o.reason,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        )
    if notes:
        click.echo("\nWhere this shape answers differently from the policy, and why:")
        for number, reason in sorted(notes.items()):
            click.echo(f"  °{number} {reason}")
