"""What every command shares: one error style, JSON errors, stdin, ``--debug`` and ``-q``.

Exit codes (stable): 0 success / compliant / valid; 1 checked and found invalid or
non-compliant; 2 usage or input error (bad file, bad option, unreadable PKI, a port in
use, an output that cannot be written); 130 interrupted.

Every error is one line on stderr, ``Error: <what went wrong> [<code>]``, where the code
is the library error's stable ``code`` (``input.certificate``, ``config.trust``, ...),
``usage`` for a bad command line, or ``io`` for a file the command line itself could not
write. With ``--json`` (or ``--format json``) the same error is printed on stdout as
``{"error": {"code": ..., "message": ...}}``, as cfssl does, so a script reading stdout
always gets JSON. ``--debug``, anywhere on the line, shows the traceback instead.

Library errors become exit codes in exactly one place: :meth:`SpineGroup.main`.
Commands are built with :func:`command` / :func:`group` (classes :class:`SpineCommand` /
:class:`SpineGroup`), which give every command the hidden ``--debug`` and a ``-q/--quiet``
that prints nothing but errors.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import itertools
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

import click

from spinepki import MAX_INPUT_BYTES, check_fqdn, check_http_url
from spinepki.audit import JSONAuditFormatter
from spinepki.errors import CertificateValidationError, ConfigurationError, SpinePKIError
from spinepki.testpki import KeyType
from spinepki.trust import TrustStore

__all__ = [
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_USAGE",
    "FQDN",
    "INPUT",
    "IO",
    "MARKS",
    "STDIN",
    "USAGE",
    "AliasedOption",
    "CommandError",
    "HttpURL",
    "Input",
    "InputFile",
    "Progress",
    "SpineCommand",
    "SpineGroup",
    "Time",
    "classify",
    "command",
    "emit_json",
    "error_document",
    "fail",
    "group",
    "is_debug",
    "is_quiet",
    "json_option",
    "key_type_option",
    "library_errors",
    "note",
    "optional_trust",
    "parse_time",
    "password_from_env",
    "read_stdin",
    "stderr_audit_logger",
    "stop_on_sigterm",
    "trust_option",
    "warn",
    "write_output",
]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

#: Error codes of the command line's own errors (library errors carry their own).
USAGE = "usage"
IO = "io"
INPUT = "input"

#: ``-`` names standard input, as in openssl, step and cfssl.
STDIN = "-"
_QUIET = "spinepki.quiet"
_STDIN_READ = "spinepki.stdin-read"


# -- errors ---------------------------------------------------------------------------


class CommandError(click.ClickException):
    """An error the command line finds itself: one line, a stable code, exit 2."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, code: str = USAGE) -> None:
        super().__init__(message)
        self.code = code


class _Invalid(CommandError):
    exit_code = EXIT_INVALID


def fail(message: str, code: int = EXIT_USAGE, *, error_code: str = USAGE) -> NoReturn:
    """Stop the command with ``message`` (printed in the one error style) and exit ``code``
    (2, or 1 for "checked and found invalid")."""
    raise (_Invalid if code == EXIT_INVALID else CommandError)(message, code=error_code)


@contextlib.contextmanager
def library_errors(debug: bool = False) -> Iterator[None]:
    """Kept for commands written before :class:`SpineGroup` mapped errors in one place.

    It lets every exception through: ``SpineGroup.main`` prints a ``SpinePKIError`` as
    one line and exits 2 (or shows the traceback under ``--debug``), whatever block it
    was raised in. ``debug`` is ignored for that reason.
    """
    del debug
    yield


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _os_message(exc: OSError) -> str:
    name = exc.filename if exc.filename is not None else ""
    what = exc.strerror or str(exc) or type(exc).__name__
    return f"{name}: {what}" if name else what


def classify(exc: BaseException) -> tuple[str, str, int] | None:
    """``(code, one-line message, exit code)`` for an error the command line reports, or
    None for anything else (a bug: it keeps its traceback)."""
    if isinstance(exc, CommandError):
        return exc.code, _one_line(exc.format_message()), exc.exit_code
    if isinstance(exc, click.ClickException):
        return USAGE, _one_line(exc.format_message()), EXIT_USAGE
    if isinstance(exc, CertificateValidationError):
        return exc.code, _one_line(str(exc)), EXIT_INVALID
    if isinstance(exc, SpinePKIError):
        return exc.code, _one_line(str(exc)), EXIT_USAGE
    if isinstance(exc, OSError):
        return IO, _one_line(_os_message(exc)), EXIT_USAGE
    return None


def error_document(code: str, message: str) -> dict[str, dict[str, str]]:
    """The JSON form of an error (``--json``): ``{"error": {"code", "message"}}``."""
    return {"error": {"code": code, "message": message}}


def _flags(argv: Sequence[str]) -> tuple[bool, bool]:
    """``(debug, json)`` as asked for anywhere on the command line (before ``--``).

    Read from the raw arguments because an error can come before click has parsed them
    (an unknown option, a bad value) and must still be shown in the asked-for form.
    """
    args = list(argv[: list(argv).index("--")] if "--" in argv else argv)
    as_json = "--json" in args or "--format=json" in args
    as_json = as_json or any(a == "--format" and b == "json" for a, b in itertools.pairwise(args))
    return "--debug" in args, as_json


def _report(code: str, message: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(error_document(code, message)))
    else:
        click.echo(f"Error: {message} [{code}]", err=True)


# -- commands ---------------------------------------------------------------------------


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        root = ctx.find_root()
        root.obj = {**(root.obj or {}), "debug": True}


def _set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_QUIET] = True


def _hidden_debug() -> click.Option:
    # Accepted after any sub-command (`spinepki cert check --debug ...`); shown once, on
    # the top-level command's help.
    return click.Option(
        ["--debug"],
        is_flag=True,
        hidden=True,
        expose_value=False,
        is_eager=True,
        callback=_set_debug,
        help="Show tracebacks instead of one-line errors.",
    )


class _Null(io.TextIOBase):
    """Where standard output goes under ``--quiet``."""

    def write(self, text: str) -> int:
        return len(text)


class SpineCommand(click.Command):
    """A command with the shared options: hidden ``--debug`` and ``-q/--quiet``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(
            click.Option(
                ["-q", "--quiet"],
                is_flag=True,
                expose_value=False,
                is_eager=True,
                callback=_set_quiet,
                help="Print nothing; the exit status is the answer (errors still print).",
            )
        )
        self.params.append(_hidden_debug())

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.meta.get(_QUIET):
            with contextlib.redirect_stdout(_Null()):
                return super().invoke(ctx)
        return super().invoke(ctx)


class SpineGroup(click.Group):
    """A command group whose sub-commands and sub-groups share the one style.

    The top-level group's :meth:`main` is where every error becomes one line (or one
    JSON object) and an exit code.
    """

    command_class = SpineCommand
    group_class = type  # sub-groups made with @group.group() are SpineGroups too

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not any("--debug" in p.opts for p in self.params if isinstance(p, click.Option)):
            self.params.append(_hidden_debug())

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; print any error in the one style and exit with its code."""
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        debug, as_json = _flags(argv)
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            _report("interrupted", "interrupted", as_json)
            sys.exit(130)
        except BrokenPipeError:
            # `spinepki ... | head`: the reader left; nothing more to say to it.
            with contextlib.suppress(OSError):
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the stream
            sys.exit(EXIT_INVALID)
        except Exception as exc:
            found = classify(exc)
            is_usage = isinstance(exc, click.ClickException)
            if found is None or (debug and not is_usage):
                raise
            code, message, exit_code = found
            _report(code, message, as_json)
            sys.exit(exit_code)
        sys.exit(result if isinstance(result, int) else EXIT_OK)


def command(name: str | None = None, **kwargs: Any) -> Callable[[Callable[..., Any]], SpineCommand]:
    """``@click.command`` for a :class:`SpineCommand`."""
    return click.command(name, cls=SpineCommand, **kwargs)


def group(name: str | None = None, **kwargs: Any) -> Callable[[Callable[..., Any]], SpineGroup]:
    """``@click.group`` for a :class:`SpineGroup`."""
    return click.group(name, cls=SpineGroup, **kwargs)


def is_debug(ctx: click.Context) -> bool:
    """True when ``--debug`` was given (anywhere on the line)."""
    root = ctx.find_root()
    return bool(root.obj and root.obj.get("debug"))


def is_quiet(ctx: click.Context | None = None) -> bool:
    """True when ``-q/--quiet`` was given."""
    ctx = ctx or click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(_QUIET))


# -- output -----------------------------------------------------------------------------


def _default(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return value.value
    return str(value)


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON (datetimes ISO 8601, enums by value)."""
    click.echo(json.dumps(data, indent=2, default=_default, sort_keys=False))


def note(message: str) -> None:
    """A progress or information line on stderr (not under ``--quiet``)."""
    if not is_quiet():
        click.echo(message, err=True)


def warn(message: str) -> None:
    """``Warning: message`` on stderr, even under ``--quiet`` (it is about safety)."""
    click.echo(f"Warning: {message}", err=True)


def write_output(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path``; a failure is one line and exit 2 (code ``io``)."""
    try:
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
    except OSError as exc:
        raise CommandError(f"{path}: cannot write: {exc.strerror or exc}", code=IO) from exc


class Progress:
    """A progress bar on stderr that appears with the first finished step.

    So nothing says "Scanning..." until the library has checked the inputs and work has
    begun; nothing at all under ``--json`` or ``--quiet``. Pass it as the ``progress``
    callback (``progress(step, done, total)``) and use it as a context manager.
    """

    def __init__(self, label: str, *, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled and not is_quiet()
        self._bar: Any = None

    def __call__(self, step: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self._bar.__enter__()
        self._bar.update(done - self._bar.pos)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)


#: The mark each check result prints with: passed, failed, could not be determined.
MARKS = {True: "✓", False: "✗", None: "?"}


# -- inputs -----------------------------------------------------------------------------

if TYPE_CHECKING:
    _ParamType = click.ParamType[Any]  # generic from click 8.2; 8.1 is in the tested range
else:
    _ParamType = click.ParamType


@dataclass(frozen=True, slots=True)
class Input:
    """One input named on the command line: a file, standard input, or an https URL."""

    label: str
    """What messages call it: the file name, ``<stdin>`` or the URL."""
    path: str | None = None
    """The file name (None for stdin and URLs)."""
    data: bytes | None = None
    """Standard input's bytes (None for files and URLs)."""
    url: str | None = None
    """The ``https://host:port`` given (only where a command accepts one)."""

    @property
    def source(self) -> str | bytes:
        """What the library's loaders take: the file name or the bytes."""
        if self.data is not None:
            return self.data
        return self.path if self.path is not None else self.label


def read_stdin(ctx: click.Context | None = None) -> bytes:
    """Standard input's bytes, once per command line and at most the input size limit.

    Raises:
        CommandError: a second ``-``, or more than ``MAX_INPUT_BYTES``.
    """
    ctx = ctx or click.get_current_context()
    if ctx.meta.get(_STDIN_READ):
        raise CommandError("'-' (standard input) can be given only once", code=USAGE)
    ctx.meta[_STDIN_READ] = True
    stream: Any = getattr(sys.stdin, "buffer", sys.stdin)  # bytes, also under CliRunner
    data: bytes = stream.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise CommandError(f"<stdin>: more than the {MAX_INPUT_BYTES} byte limit", code=INPUT)
    return data


class InputFile(_ParamType):
    """A file name, ``-`` for standard input or (with ``urls``) ``https://host[:port]``.

    Nothing is opened here beyond reading stdin: the library's loaders open files, so a
    missing file, a directory or the wrong kind of file is reported with their codes.
    """

    name = "FILE"

    def __init__(self, *, urls: bool = False) -> None:
        self.urls = urls

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Input):
            return value
        text = str(value)
        if text == STDIN:
            return Input("<stdin>", data=read_stdin(ctx))
        if self.urls and text.lower().startswith("https://"):
            return Input(text, url=text)
        if not text:
            self.fail("an empty file name", param, ctx)
        return Input(text, path=text)


class FQDN(_ParamType):
    """A DNS host name (checked with :func:`spinepki.check_fqdn`)."""

    name = "FQDN"

    def __init__(self, *, wildcard: bool = False) -> None:
        self.wildcard = wildcard

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return check_fqdn(str(value), wildcard=self.wildcard)
        except ConfigurationError as exc:
            self.fail(exc.reason, param, ctx)


class HttpURL(_ParamType):
    """An ``http(s)://HOST[:PORT][/PATH]`` URL (checked with :func:`spinepki.check_http_url`)."""

    name = "URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return check_http_url(str(value))
        except ConfigurationError as exc:
            self.fail(exc.reason, param, ctx)


class Time(_ParamType):
    """An ISO 8601 time; a naive one is UTC."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.datetime):
            return value
        try:
            parsed = dt.datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"not an ISO 8601 time: {value!r}", param, ctx)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_time(value: str | None) -> dt.datetime | None:
    """Parse ``--at`` text (ISO 8601; naive means UTC); None stays None."""
    if value is None:
        return None
    converted: dt.datetime = Time().convert(value, None, None)
    return converted


class AliasedOption(click.Option):
    """An option that also answers to older spellings, which ``--help`` does not show.

    Used where two commands named one thing differently (``--trust-bundle`` is now
    ``--trust``): the old spelling keeps working so scripts do not break.
    """

    def __init__(
        self, param_decls: Sequence[str], *, aliases: Sequence[str] = (), **kwargs: Any
    ) -> None:
        super().__init__([*param_decls, *aliases], **kwargs)
        self.aliases = tuple(aliases)

    @contextlib.contextmanager
    def _without_aliases(self) -> Iterator[None]:
        saved = self.opts
        self.opts = [o for o in saved if o not in self.aliases]
        try:
            yield
        finally:
            self.opts = saved

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        with self._without_aliases():
            return super().get_help_record(ctx)

    def get_error_hint(self, ctx: click.Context | None) -> str:
        with self._without_aliases():
            return super().get_error_hint(ctx)


def trust_option(
    help_text: str, *, name: str = "trust_files", multiple: bool = True, stdin: bool = True
) -> Callable[[Any], Any]:
    """``--trust FILE``, the one name for "the CAs to trust" in every command; it also
    answers to the old ``--trust-bundle``.

    Args:
        help_text: the option's help.
        name: the callback's parameter name.
        multiple: repeatable.
        stdin: ``-`` reads standard input (values are :class:`Input`); else plain paths
            (for commands that write the path into a configuration).
    """
    return click.option(
        "--trust",
        name,
        cls=AliasedOption,
        aliases=("--trust-bundle",),
        multiple=multiple,
        type=InputFile() if stdin else click.STRING,
        help=help_text,
    )


def json_option(help_text: str = "Print the result as JSON (errors too).") -> Callable[[Any], Any]:
    """``--json``: data out as JSON, and errors as ``{"error": {...}}``."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def key_type_option() -> Callable[[Any], Any]:
    """``--key-type`` of the commands that make a test PKI to run servers on (RSA-2048
    by default, as Spine uses)."""
    return click.option(
        "--key-type",
        type=click.Choice([k.value for k in KeyType]),
        default=KeyType.RSA_2048.value,
        show_default=True,
        help="RSA-2048 is what Spine uses; ec-p256 is faster.",
    )


def optional_trust(
    env: str | None, trust_files: Sequence[Input | str], *, partial_chain: bool = False
) -> TrustStore | None:
    """``--env`` or ``--trust`` (not both) as a TrustStore, or None when neither is given.

    ``partial_chain``: every ``--trust`` certificate is an anchor (``cert check
    --partial-chain``), so a file holding only a Sub CA is a usable store.
    """
    if env and trust_files:
        raise click.UsageError("use either --env or --trust, not both")
    if env:
        return TrustStore.spine(env)
    if not trust_files:
        return None
    inputs = [f if isinstance(f, Input) else Input(f, path=f) for f in trust_files]
    stores = [
        TrustStore.from_pem(i.data, name=i.label, partial_chain=partial_chain)
        if i.data is not None
        else TrustStore.from_paths(i.path or i.label, partial_chain=partial_chain)
        for i in inputs
    ]
    if len(stores) == 1:
        return stores[0]
    return TrustStore(
        [c for s in stores for c in s.certificates()],
        name=",".join(i.label for i in inputs),
        partial_chain=partial_chain,
    )


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
