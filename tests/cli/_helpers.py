"""Run the command line in-process with stdout and stderr apart (click 8.1 to 8.5)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

from click.testing import CliRunner
from spinepki_cli.main import cli

# click 8.1 mixes stderr into stdout unless told not to; 8.2 removed the switch and
# always keeps them apart (8.1 is the tested floor: `make test-oldest`).
_APART = {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner).parameters else {}


@dataclass(frozen=True)
class Ran:
    """What one command line did."""

    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    @property
    def error_lines(self) -> list[str]:
        """The non-blank lines on stderr."""
        return [line for line in self.stderr.splitlines() if line.strip()]

    def __str__(self) -> str:  # an assertion message that shows everything
        return (
            f"spinepki {' '.join(self.args)} -> exit {self.exit_code}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}--- exception {self.exception!r}"
        )


def run(
    *args: str,
    input: bytes | str | None = None,
    env: dict[str, str] | None = None,
) -> Ran:
    """``spinepki ARGS`` through the real entry point (``cli.main``), in-process."""
    result = CliRunner(**_APART).invoke(  # type: ignore[arg-type]
        cli, list(args), input=input, env=env, prog_name="spinepki"
    )
    exception = result.exception
    if isinstance(exception, SystemExit):
        exception = None
    return Ran(tuple(args), result.exit_code, result.stdout, result.stderr, exception)


def leaf_commands() -> list[tuple[str, ...]]:
    """Every runnable command's path below ``spinepki`` (``("cert", "check")``...)."""
    import click

    found: list[tuple[str, ...]] = []

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                walk(sub, (*path, name))
        else:
            found.append(path)

    walk(cli, ())
    return found


def command_at(path: Sequence[str]) -> object:
    """The click command object at ``path``."""
    import click

    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command
