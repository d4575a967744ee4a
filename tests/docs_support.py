"""Support for the executable documentation: collect code blocks, run them, render docs/cli.md.

Conventions (also described in docs/index.md, "Code blocks are tested"):

- Every fenced code block in README.md and docs/**/*.md is collected.
- ```python blocks are exec'd; the blocks of one page share one namespace, in order.
- ```console blocks: a line ``$ spinepki ...`` is a command, run in-process with click's
  CliRunner; the lines after it, up to the next ``$``, are expected output: each non-blank
  one (other than ``...``) must appear in the command's output. A trailing comment
  ``# exit N`` states the expected exit code (default 0).
- ```sh / ```shell / ```bash blocks: every non-blank, non-comment line is a command.
  Only ``spinepki`` commands can run; a block with any other command must be skipped.
- ```toml blocks are parsed with tomllib, ```json with json, ```nginx blocks are checked
  for balanced braces and terminated directives; every other block must be non-empty.
- ``<!-- docs-test: skip (reason) -->`` on the line before a fence skips that block; the
  reason is required and is reported.
- ``<!-- docs-test: empty-dir -->`` anywhere in a page runs it in an empty directory (for
  pages that create ./pki themselves); otherwise a page runs in a temporary directory that
  holds the test PKI ``./pki`` (as written by ``spinepki pki init ./pki``) whose CRL/OCSP
  URLs point at a running loopback responder.
- Network: only 127.0.0.1 / localhost.

Regenerate docs/cli.md: ``.venv/bin/python -m tests.docs_support``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import shlex
import socket
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from spinepki import testpki

ROOT = Path(__file__).resolve().parent.parent
CLI_DOC = ROOT / "docs" / "cli.md"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<body>.*?)\s*-->")
_SKIP = re.compile(r"^skip\s*(?:\((?P<reason>.*)\))?$")
_EXIT = re.compile(r"#.*\bexit\s+(?P<code>\d+)")
_PYTHON = {"python", "py", "python3"}
_CONSOLE = {"console", "shell-session"}
_SHELL = {"sh", "shell", "bash"}


class DocsError(AssertionError):
    """A documentation block did not do what the page says."""


@dataclass(frozen=True)
class Block:
    """One fenced code block."""

    path: Path
    """The Markdown file, relative to the repository root."""
    line: int
    """1-based line of the opening fence."""
    lang: str
    """First word of the info string, lower-case ('' when none)."""
    source: str
    """The code, with the fence's indentation removed."""
    skip: str | None = None
    """The skip marker's body when the block is marked, else None."""

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def skip_reason(self) -> str | None:
        """The reason given in the skip marker ('' when the marker gives none)."""
        if self.skip is None:
            return None
        match = _SKIP.match(self.skip)
        return (match.group("reason") or "").strip() if match else ""


@dataclass
class Page:
    """A Markdown page and its blocks."""

    path: Path
    blocks: list[Block]
    empty_dir: bool = False
    """The page creates its own files (``<!-- docs-test: empty-dir -->``)."""
    bad_markers: list[str] = field(default_factory=list)


def doc_files() -> list[Path]:
    """README.md and every Markdown file under docs/, relative to the repository root."""
    files = [Path("README.md")]
    files += sorted(p.relative_to(ROOT) for p in (ROOT / "docs").rglob("*.md"))
    return files


def parse_page(path: Path) -> Page:
    """Collect the fenced blocks of ``path`` (relative to the repository root)."""
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    page = Page(path, [])
    i = 0
    last_text = ""  # the previous non-blank line outside a block
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence is None:
            for marker in _MARKER.finditer(line):
                body = marker.group("body")
                if body == "empty-dir":
                    page.empty_dir = True
                elif not _SKIP.match(body):
                    page.bad_markers.append(f"{path}:{i + 1}: unknown marker {body!r}")
            if line.strip():
                last_text = line.strip()
            i += 1
            continue
        indent, ticks = fence.group("indent"), fence.group("fence")
        lang = (fence.group("info").strip().split() or [""])[0].lower()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines):
            closing = lines[i].strip()
            if closing.startswith(ticks[0] * len(ticks)) and not closing.strip(ticks[0]):
                break
            text = lines[i]
            body.append(text[len(indent) :] if text.startswith(indent) else text.lstrip())
            i += 1
        marker = _MARKER.fullmatch(last_text)
        skip = marker.group("body") if marker and marker.group("body").startswith("skip") else None
        page.blocks.append(Block(path, start + 1, lang, "\n".join(body) + "\n", skip))
        last_text = ""
        i += 1
    return page


# -- network guard -------------------------------------------------------------------------

_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def _is_local(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Refuse every connection and name lookup that is not to the loopback interface."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_local(host):
            raise OSError(f"docs tests may only reach 127.0.0.1, not {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def check(address: Any) -> None:
        if isinstance(address, tuple) and not _is_local(address[0]):
            raise OSError(f"docs tests may only reach 127.0.0.1, not {address[0]!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.getaddrinfo = real_getaddrinfo
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]


# -- running blocks ------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One command of a console or shell block, with what it should print and return."""

    line: int
    argv: list[str]
    exit_code: int = 0
    expected: tuple[str, ...] = ()


def parse_commands(block: Block) -> list[Command]:
    """The commands of a console (``$`` prompts, output lines) or shell block."""
    commands: list[Command] = []
    prompt = block.lang in _CONSOLE
    lines = block.source.splitlines()
    pending: str | None = None
    pending_line = 0
    for offset, raw in enumerate(lines, start=block.line + 1):
        text = raw.rstrip()
        if pending is not None:  # a backslash continuation
            pending += " " + text.rstrip("\\").strip()
            if not text.endswith("\\"):
                commands.append(_command(pending, pending_line))
                pending = None
            continue
        if prompt and not text.startswith("$ "):
            if commands and text.strip() and text.strip() != "...":
                last = commands[-1]
                commands[-1] = Command(
                    last.line, last.argv, last.exit_code, (*last.expected, text.strip())
                )
            continue
        command = text[2:] if prompt else text
        if not command.strip() or command.lstrip().startswith("#"):
            continue
        if command.endswith("\\"):
            pending, pending_line = command.rstrip("\\").strip(), offset
            continue
        commands.append(_command(command, offset))
    return commands


def _command(text: str, line: int) -> Command:
    exit_match = _EXIT.search(text)
    argv = shlex.split(text, comments=True)
    return Command(line, argv, int(exit_match.group("code")) if exit_match else 0)


def run_command(command: Command, block: Block) -> str:
    """Run one ``spinepki`` command in-process; return its output."""
    from click.testing import CliRunner
    from spinepki_cli.main import cli

    where = f"{block.path}:{command.line}"
    if not command.argv or command.argv[0] != "spinepki":
        raise DocsError(
            f"{where}: only `spinepki` commands can run here, not {shlex.join(command.argv)!r};"
            " mark the block <!-- docs-test: skip (reason) --> if it cannot run"
        )
    result = CliRunner().invoke(cli, command.argv[1:], prog_name="spinepki", catch_exceptions=True)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise DocsError(
            f"{where}: {shlex.join(command.argv)} raised {result.exception!r}\n{output}"
        ) from result.exception
    if result.exit_code != command.exit_code:
        raise DocsError(
            f"{where}: {shlex.join(command.argv)} exited {result.exit_code}, "
            f"the page says {command.exit_code}\n{output}"
        )
    for expected in command.expected:
        if expected not in output:
            raise DocsError(
                f"{where}: {shlex.join(command.argv)} did not print {expected!r}\n{output}"
            )
    return output


def check_nginx(source: str) -> None:
    """A syntax check for nginx configuration snippets: braces balance, directives end."""
    depth = 0
    for number, raw in enumerate(source.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        depth += line.count("{") - line.count("}")
        if depth < 0:
            raise DocsError(f"line {number}: unbalanced '}}'")
        if not line.endswith(("{", "}", ";")):
            raise DocsError(f"line {number}: directive without ';': {line!r}")
    if depth:
        raise DocsError("unbalanced '{'")


@dataclass
class PageRun:
    """The namespace of a page's Python blocks after each block ran."""

    page: Page
    namespace: dict[str, Any] = field(default_factory=dict)
    after: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Block line -> a shallow copy of the namespace after that block."""
    skipped: list[Block] = field(default_factory=list)


def run_block(block: Block, run: PageRun) -> None:
    """Run or check one block; raise DocsError (with the block's location) on failure."""
    lang = block.lang
    if lang in _PYTHON:
        # Leading newlines make traceback line numbers those of the Markdown file.
        code = compile("\n" * block.line + block.source, str(block.path), "exec")
        run.namespace.setdefault("__name__", "__docs__")
        exec(code, run.namespace)  # running the documentation is the point
        run.after[block.line] = dict(run.namespace)
    elif lang in _CONSOLE or lang in _SHELL:
        commands = parse_commands(block)
        if not commands:
            raise DocsError(f"{block.where}: a {lang} block without a command")
        for command in commands:
            run_command(command, block)
    elif lang == "toml":
        tomllib.loads(block.source)
    elif lang == "json":
        json.loads(block.source)
    elif lang == "nginx":
        try:
            check_nginx(block.source)
        except DocsError as exc:
            raise DocsError(f"{block.where}: {exc}") from None
    elif not block.source.strip():
        raise DocsError(f"{block.where}: empty block")


def run_page(page: Page) -> PageRun:
    """Run every block of ``page`` in order in the current directory."""
    run = PageRun(page)
    for block in page.blocks:
        if block.skip is not None:
            run.skipped.append(block)
            continue
        try:
            run_block(block, run)
        except DocsError:
            raise
        except Exception as exc:
            raise DocsError(
                f"{block.where}: ```{block.lang} block failed: {type(exc).__name__}: {exc}"
            ) from exc
    return run


# -- a GP Connect request for the tests ----------------------------------------------------


def gp_connect_token(*, scope: str = "patient/*.read", now: int | None = None) -> str:
    """An unsecured GP Connect 1.x JWT like the specification's example (rules §3.7 A)."""
    return testpki.gp_connect_token(
        now, scope=scope, audience="https://gp.example.nhs.uk/A12345/STU3/1/gpconnect"
    )


def ssp_headers(
    interaction_id: str, *, provider_asid: str = "918999198738", token: str | None = None
) -> dict[str, str]:
    """The five headers the SSP sends with every request."""
    return {
        "Ssp-TraceID": "09a01679-2564-0fb4-5129-aecc81ea2706",
        "Ssp-From": "200000000359",
        "Ssp-To": provider_asid,
        "Ssp-InteractionID": interaction_id,
        "Authorization": f"Bearer {token or gp_connect_token()}",
    }


# -- docs/cli.md ---------------------------------------------------------------------------

_CLI_HEADER = """\
# Command-line reference

<!-- Generated from click's help by `.venv/bin/python -m tests.docs_support`; do not edit.
     tests/test_docs.py fails when this file differs from the generated text. -->

What every command shares:

- **Exit codes**: 0 ok / valid / compliant; 1 checked and found invalid or non-compliant;
  2 usage or input error (a bad file or option, an unreadable PKI, a port in use, an
  output that cannot be written); 130 interrupted. Nothing is checked, fetched or
  generated until every input has been read and every option checked, so an error comes
  before any work.
- **Errors** are one line on stderr: `Error: <what is wrong> [<code>]`. The code is the
  library error's stable code (`input.certificate`, `config.trust`, `testpki`...), `usage`
  for a bad command line or `io` for a file the command could not write. With `--json`
  the error is one JSON object on stdout instead, `{"error": {"code": ..., "message": ...}}`.
- **`--json`** on every command whose output is data: `cert`, `pki`, `tls show`,
  `tls scan`, `security-test`, `demo`, `env up`. Not on `tls config` (its output is a
  configuration file) nor on the servers `serve`, `gate serve` and `ssp serve` (their
  output is a log); `pki serve --json` and `env up --json` print what they serve as one
  JSON object.
- **`-q` / `--quiet`** on every command: print nothing, the exit status is the answer
  (errors and safety warnings still print), as `step certificate verify` is silent.
- **`--debug`** anywhere on the line (`spinepki --debug cert check ...` or
  `spinepki cert check ... --debug`) shows the traceback instead of the one-line error.
- **`-`** reads standard input where a command reads a certificate, chain, trust or CRL
  file (`cert check`, `cert show`, `tls scan`, `security-test`); once per command line.
- **One name per thing**: `--trust` for the CAs to trust and `--fqdn` for the FQDN a
  certificate must carry, in every command. The old spellings `--trust-bundle` (`tls
  config`, `gate serve`) and `--ssp-fqdn` (`gate serve`) still work but are not shown.
  `pki init --ssp-fqdn/--provider-fqdn` name the certificates it makes, as `pki issue
  --fqdn` names the one it issues.

"""

_BAD_INPUT_HEADER = """\
## Bad input, command by command

Generated by running each case of `tests/cli/bad_inputs.py` in a workspace holding a
test PKI (`pki/`) and one file of each bad kind; `tests/cli/test_bad_inputs.py` checks
every row for the one error style (one line, the exit code, the code, the JSON form,
nothing on stdout). `PORT` is a loopback port that is closed, or taken (`port in use`).

"""


def render_bad_input_table() -> str:
    """The bad-input section of docs/cli.md, from real runs in a scratch workspace."""
    import tempfile

    from tests.cli.bad_inputs import make_workspace, render_table, run_cases

    with tempfile.TemporaryDirectory(prefix="spinepki-bad-inputs-") as tmp:
        root = Path(tmp)
        make_workspace(root)
        outcomes = run_cases(root)
    return _BAD_INPUT_HEADER + render_table(outcomes) + "\n"


def _walk(command: click.Command, ctx: click.Context) -> Iterator[click.Context]:
    yield ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield from _walk(sub, click.Context(sub, info_name=name, parent=ctx))


def render_cli_docs() -> str:
    """docs/cli.md: the ``--help`` of every command, at a fixed width."""
    from spinepki_cli.main import cli

    # The group's context_settings (e.g. -h as a help option) apply as in a real run.
    settings = {**cli.context_settings, "terminal_width": 100, "max_content_width": 100}
    root = click.Context(cli, info_name="spinepki", **settings)
    contexts = list(_walk(cli, root))
    out = [_CLI_HEADER, render_bad_input_table()]
    for ctx in contexts:
        if isinstance(ctx.command, click.Group) and ctx.parent is not None:
            names = ", ".join(f"`{ctx.command_path} {n}`" for n in ctx.command.list_commands(ctx))
            out.append(f"## `{ctx.command_path}`\n\nSub-commands: {names}.\n\n")
        elif ctx.parent is not None:
            out.append(f"## `{ctx.command_path}`\n\n")
        else:
            out.append("## `spinepki`\n\n")
        help_text = ctx.command.get_help(ctx).rstrip()
        out.append(f"```text\n$ {ctx.command_path} --help\n{help_text}\n```\n\n")
    return "".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write docs/cli.md (``--check``: only compare, exit 1 when it differs)."""
    args = sys.argv[1:] if argv is None else argv
    text = render_cli_docs()
    if "--check" in args:
        current = CLI_DOC.read_text(encoding="utf-8") if CLI_DOC.exists() else ""
        if current != text:
            print(f"{CLI_DOC} is out of date: run python -m tests.docs_support", file=sys.stderr)
            return 1
        return 0
    CLI_DOC.write_text(text, encoding="utf-8")
    print(f"wrote {CLI_DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
