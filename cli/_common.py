"""What every command shares: the one place library errors become exit codes, JSON output.

Exit codes (stable): 0 success / compliant / valid; 1 checked and found invalid or
non-compliant; 2 usage or input error (bad file, bad option, unreadable PKI).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any, NoReturn

import click

from spinepki.audit import JSONAuditFormatter
from spinepki.errors import SpinePKIError
from spinepki.trust import TrustStore

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


#: The mark each check result prints with: passed, failed, could not be determined.
MARKS = {True: "✓", False: "✗", None: "?"}


def optional_trust(env: str | None, trust_files: tuple[str, ...]) -> TrustStore | None:
    """``--env`` or ``--trust`` (not both) as a TrustStore, or None when neither is given."""
    if env and trust_files:
        raise click.UsageError("use either --env or --trust, not both")
    if env:
        return TrustStore.spine(env)
    if trust_files:
        return TrustStore.from_paths(*trust_files)
    return None


def password_from_env(var: str | None) -> str | None:
    """The value of ``--password-env VAR`` (a key password never goes on the command line)."""
    if var is None:
        return None
    value = os.environ.get(var)
    if value is None:
        raise click.UsageError(f"--password-env {var}: the variable is not set")
    return value


def stderr_audit_logger(name: str) -> logging.Logger:
    """A logger that writes audit events to stderr as one JSON object per line (for the
    operator's log collector), not propagated to the root logger."""
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JSONAuditFormatter())
        logger.addHandler(handler)
    return logger


@contextlib.contextmanager
def stop_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGTERM for the block (when running in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
