"""What every command shares: the one place library errors become exit codes, JSON output.

Exit codes (stable): 0 success / compliant / valid; 1 checked and found invalid or
non-compliant; 2 usage or input error (bad file, bad option, unreadable PKI).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import click

from spinepki.errors import SpinePKIError

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def _default(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return value.value
    return str(value)


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON (datetimes ISO 8601, enums by value)."""
    click.echo(json.dumps(data, indent=2, default=_default, sort_keys=False))


@contextlib.contextmanager
def library_errors(debug: bool = False) -> Iterator[None]:
    """Turn ``SpinePKIError`` into a one-line message and exit code 2.

    Tracebacks only with ``--debug``.
    """
    try:
        yield
    except SpinePKIError as exc:
        if debug:
            raise
        fail(f"{exc} [{exc.code}]")


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``Error: message`` to stderr and exit with ``code``."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def parse_time(value: str | None) -> dt.datetime | None:
    """Parse ``--at`` (ISO 8601; naive means UTC)."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}", param_hint="--at") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def is_debug(ctx: click.Context) -> bool:
    """True when the top-level ``--debug`` flag is set."""
    root = ctx.find_root()
    return bool(root.obj and root.obj.get("debug"))
