"""What every command does with every kind of bad input: the table in docs/cli.md.

Each :class:`Case` names a command line, the exit code and error code it must give, and
(for the table) what kind of bad input it is. :func:`run_cases` runs them all in a fresh
workspace; ``tests/cli/test_bad_inputs.py`` checks each against the one error style, and
``tests.docs_support`` renders the table from the same runs, so the page cannot say one
thing while the command does another.

The workspace holds a small test PKI (``pki/``) and one file of each bad kind. Ports
that must be closed or taken are found at run time and shown as ``PORT``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.cli._helpers import Ran, run

#: Where every case runs; shown as "." in messages.
HUGE_BYTES = 50 * 1024 * 1024  # 100x anything legitimate (a Spine CA bundle is ~5 kB)


@dataclass(frozen=True)
class Case:
    """One bad command line and what it must do."""

    command: str
    """The command, as the table shows it (``cert check``)."""
    kind: str
    """The kind of bad input, in words."""
    args: tuple[str, ...]
    """The arguments after ``spinepki`` (``{closed}``/``{taken}`` become ports)."""
    exit_code: int = 2
    """2: every case here is a usage or input error."""
    code: str = "usage"
    """The error code in ``[...]`` / ``error.code``."""
    json: bool = True
    """Whether the command takes ``--json`` (then the JSON form is checked too)."""
    stdin: bytes | None = None


#: Shorthands in the case lines below.
_SHORT = {
    "$TRUST": "--trust pki/ca/trust-bundle.pem",
    "$PKI": "--trust pki/ca/trust-bundle.pem --crl pki/crl/crl-set.pem",
    "$SSP": "pki/certs/ssp.pem",
    "$KEY": "pki/certs/ssp.key.pem",
    "$PROVIDER": "--cert pki/certs/provider.chain.pem --key pki/certs/provider.key.pem",
    "$GATE": "gate serve --asid 918999198738 --env int --fqdn ssp.nhs.uk"
    " --root foundations=https://gp.example/A1/STU3/1/gpconnect",
}


def _case(
    command: str,
    kind: str,
    line: str,
    code: str = "usage",
    *,
    json: bool = True,
    stdin: bytes | None = None,
) -> Case:
    for short, long in _SHORT.items():
        line = line.replace(short, long)
    return Case(command, kind, tuple(shlex.split(line)), 2, code, json, stdin)


_CERT = "input.certificate"
_SSP = "config.ssp"
_NO_JSON = {"json": False}

CASES: tuple[Case, ...] = (
    _case("cert check", "missing file", "cert check missing.pem $PKI", _CERT),
    _case("cert check", "a directory", "cert check dir $PKI", _CERT),
    _case("cert check", "empty file", "cert check empty.pem $PKI", _CERT),
    _case("cert check", "text file", "cert check notes.txt $PKI", _CERT),
    _case("cert check", "a private key", "cert check $KEY $PKI", _CERT),
    _case("cert check", "a CRL", "cert check pki/crl/sub-ca.crl $PKI", _CERT),
    _case("cert check", "50 MB file", "cert check huge.pem $PKI", _CERT),
    _case("cert check", "empty stdin (-)", "cert check - $PKI", _CERT, stdin=b""),
    _case("cert check", "- twice", "cert check - - $PKI", stdin=b"x"),
    _case("cert check", "one bad among good", "cert check $SSP missing.pem $PKI", _CERT),
    _case("cert check", "no trust given", "cert check $SSP"),
    _case("cert check", "trust is not a CA", "cert check $SSP --trust $SSP", "config.trust"),
    _case("cert check", "a certificate as --crl", "cert check $SSP $TRUST --crl $SSP", "input.crl"),
    _case("cert check", "bad --at", "cert check $SSP $PKI --at yesterday"),
    _case("cert check", "unknown --env", "cert check $SSP --env prod"),
    _case("cert check", "malformed --fqdn", "cert check $SSP $PKI --fqdn 'bad fqdn!!'"),
    _case("cert check", "unknown option", "cert check $SSP --fqnd x"),
    _case("cert check", "nothing listening", "cert check https://127.0.0.1:{closed} $TRUST",
          "scan.unreachable"),
    _case("cert check", "a path in the URL", "cert check https://127.0.0.1:443/metadata $TRUST",
          "config"),
    _case("cert show", "missing file", "cert show missing.pem", _CERT),
    _case("cert show", "a private key", "cert show $KEY", _CERT),
    _case("cert show", "50 MB file", "cert show huge.pem", _CERT),
    _case("cert show", "unknown --format", "cert show $SSP --format der", **_NO_JSON),
    _case("cert show", "nothing listening", "cert show https://127.0.0.1:{closed}",
          "scan.unreachable"),
    _case("pki init", "malformed --ssp-fqdn", "pki init new --ssp-fqdn 'bad fqdn!!'"),
    _case("pki init", "malformed --base-url", "pki init new --base-url notaurl"),
    _case("pki init", "a file as DIRECTORY", "pki init notes.txt", "io"),
    _case("pki init", "a PKI already there", "pki init pki", "testpki"),
    _case("pki issue", "a path as NAME", "pki issue pki ../../escape --fqdn x.nhs.uk", "config"),
    _case("pki issue", "an absolute NAME", "pki issue pki /srv/abs --fqdn x.nhs.uk", "config"),
    _case("pki issue", "malformed --fqdn", "pki issue pki extra --fqdn 'bad fqdn!!'"),
    _case("pki issue", "a NAME that exists", "pki issue pki ssp --fqdn x.nhs.uk", "testpki"),
    _case("pki issue", "not a test PKI", "pki issue dir extra --fqdn x.nhs.uk", "testpki"),
    _case("pki revoke", "unknown NAME", "pki revoke pki nobody", "testpki"),
    _case("pki show", "missing directory", "pki show missing", "testpki"),
    _case("pki show", "a file as DIRECTORY", "pki show notes.txt", "testpki"),
    _case("pki serve", "not a test PKI", "pki serve dir --duration 0.1", "testpki"),
    _case("tls show", "unknown --profile", "tls show --profile strictest"),
    _case("tls config", "missing --cert", "tls config nginx --cert missing.pem --key $KEY $TRUST",
          _CERT, **_NO_JSON),
    _case("tls config", "a directory as --key",
          "tls config nginx --cert pki/certs/provider.chain.pem --key dir $TRUST", "input.key",
          **_NO_JSON),
    _case("tls config", "key of another certificate",
          "tls config nginx --cert pki/certs/provider.chain.pem --key $KEY $TRUST",
          "config.server_credential", **_NO_JSON),
    _case("tls config", "text as --trust", "tls config nginx $PROVIDER --trust notes.txt", _CERT,
          **_NO_JSON),
    _case("tls config", "50 MB --crl", "tls config nginx $PROVIDER $TRUST --crl huge.pem",
          "input.crl", **_NO_JSON),
    _case("tls config", "-o in a missing directory",
          "tls config nginx $PROVIDER $TRUST -o missing/x.conf", "io", **_NO_JSON),
    _case("tls config", "relative path, --no-check-files",
          "tls config nginx $PROVIDER $TRUST --no-check-files", "config", **_NO_JSON),
    _case("tls config", "neither --trust nor --env", "tls config nginx $PROVIDER", **_NO_JSON),
    _case("tls scan", "a range, not HOST:PORT", "tls scan 10.0.0.0/24", "config"),
    _case("tls scan", "nothing listening", "tls scan 127.0.0.1:{closed}", "scan.unreachable"),
    _case("tls scan", "--cert without --key", "tls scan 127.0.0.1:{closed} --cert $SSP"),
    _case("tls scan", "a certificate as --key",
          "tls scan 127.0.0.1:{closed} --cert $SSP --key $SSP", "input.key"),
    _case("security-test", "http:// URL",
          "security-test http://127.0.0.1:{closed}/ --cert $SSP --key $KEY", "config"),
    _case("security-test", "missing --cert",
          "security-test https://127.0.0.1:{closed}/ --cert missing.pem --key $KEY", _CERT),
    _case("serve", "missing --config", "serve --config missing.toml", "config.provider",
          **_NO_JSON),
    _case("serve", "a directory as --config", "serve --config dir", "config.provider",
          **_NO_JSON),
    _case("serve", "a file without [provider]", "serve --config bad.toml", "config.provider",
          **_NO_JSON),
    _case("gate serve", "port in use", "$GATE --listen 127.0.0.1:{taken}", "config", **_NO_JSON),
    _case("gate serve", "bad --root", "$GATE --root nowhere", **_NO_JSON),
    _case("gate serve", "unknown key in the file", "gate serve -c bad.toml", "config",
          **_NO_JSON),
    _case("gate serve", "malformed --fqdn", "gate serve --fqdn 'bad fqdn!!'", **_NO_JSON),
    _case("demo", "unknown --key-type", "demo --key-type dsa"),
    _case("demo", "a file as --dir", "demo --dir notes.txt"),
    _case("demo", "a file as --dir, --via-ssp", "demo --via-ssp --dir notes.txt"),
    _case("demo", "--via-ssp without the serve shape", "demo --via-ssp --shape middleware"),
    _case("ssp serve", "no --config", "ssp serve", **_NO_JSON),
    _case("ssp serve", "missing --config", "ssp serve --config missing.toml", _SSP, **_NO_JSON),
    _case("ssp serve", "a directory as --config", "ssp serve --config dir", _SSP, **_NO_JSON),
    _case("ssp serve", "a file without [ssp]", "ssp serve --config bad.toml", _SSP, **_NO_JSON),
    _case("ssp serve", "50 MB --config", "ssp serve --config huge.pem", _SSP, **_NO_JSON),
    _case("ssp serve", "an env up --config file", "ssp serve --config directory.toml", _SSP,
          **_NO_JSON),
    _case("ssp serve", "a certificate as its key", "ssp serve --config ssp.toml --check",
          "input.key", **_NO_JSON),
    _case("env up", "unknown --key-type", "env up new --key-type dsa"),
    _case("env up", "--port out of range", "env up new --port 70000"),
    _case("env up", "port in use", "env up new --port {taken}", "config"),
    _case("env up", "a file as FOLDER", "env up notes.txt"),
    _case("env up", "a folder with other files", "env up pki", "config"),
    _case("env up", "missing --config", "env up new --config missing.toml", _SSP),
    _case("env up", "50 MB --config", "env up new --config huge.pem", _SSP),
    _case("env up", "a file without [directory]", "env up new --config bad.toml", _SSP),
    _case("env up", "an ssp serve --config file", "env up new --config ssp.toml", _SSP),
    _case("env up", "a provider with an address", "env up new --config directory.toml", _SSP),
)  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """A case as run: the text form, and (where the command has --json) the JSON form."""

    case: Case
    text: Ran
    as_json: Ran | None
    args: tuple[str, ...]

    @property
    def message(self) -> str:
        """The error line, with the run's ports and paths made stable for the page."""
        lines = self.text.error_lines
        return lines[0] if lines else ""


def make_workspace(root: Path) -> None:
    """The files the cases name: a small test PKI and one file of each bad kind."""
    from spinepki.testpki import KeyType, TestPKI, write_pki

    pki = TestPKI.create(key_type=KeyType.EC_P256, base_url="http://127.0.0.1:9")
    write_pki(pki, root / "pki")
    (root / "dir").mkdir()
    (root / "empty.pem").write_bytes(b"")
    (root / "notes.txt").write_text("Remember to renew the certificate.\n")
    with (root / "huge.pem").open("wb") as f:
        f.truncate(HUGE_BYTES)  # sparse: the size is what matters
    (root / "bad.toml").write_text('colour = "blue"\n')
    # A directory as `env up --config` reads it, but with a provider address (which only
    # `ssp serve` may have), and an `ssp serve` configuration whose key is a certificate.
    (root / "directory.toml").write_text(_DIRECTORY)
    (root / "ssp.toml").write_text(_SSP_CONFIG + _DIRECTORY)


_DIRECTORY = """\
[[directory.consumers]]
asid = "200000000359"
ods = "A1001"
fqdn = "consumer.spinepki.test.nhs.uk"
interactions = ["foundations"]
send_to = ["918999198738"]

[[directory.providers]]
asid = "918999198738"
ods = "A12345"
fqdn = "provider.spinepki.test.nhs.uk"
address = "127.0.0.1:9"
[directory.providers.service_roots]
foundations = ["https://provider.spinepki.test.nhs.uk/A12345/STU3/1/gpconnect"]
"""
_SSP_CONFIG = """\
[ssp]
certificate = "pki/certs/ssp.chain.pem"
key = "pki/certs/ssp.pem"
trust_files = ["pki/ca/trust-bundle.pem"]
port = 0

"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _ports() -> Iterator[dict[str, str]]:
    """A closed port, and a port held by a listening socket."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield {"closed": str(_free_port()), "taken": str(taken.getsockname()[1])}


def run_cases(root: Path) -> list[Outcome]:
    """Run every case in ``root`` (made with :func:`make_workspace`); restore the cwd."""
    outcomes = []
    before = Path.cwd()
    os.chdir(root)
    try:
        with _ports() as ports:
            for case in CASES:
                args = tuple(a.format(**ports) for a in case.args)
                text = run(*args, input=case.stdin)
                as_json = run(*args, "--json", input=case.stdin) if case.json else None
                outcomes.append(Outcome(case, text, as_json, args))
        return [_stable(o, ports, root) for o in outcomes]
    finally:
        os.chdir(before)


def _stable(outcome: Outcome, ports: dict[str, str], root: Path) -> Outcome:
    """Replace the run's ports and absolute paths, so the page is the same on every run."""

    def clean(text: str) -> str:
        for port in ports.values():
            text = text.replace(port, "PORT")
        return text.replace(str(root.resolve()), ".").replace(str(root), ".")

    def cleaned(ran: Ran | None) -> Ran | None:
        if ran is None:
            return None
        return Ran(ran.args, ran.exit_code, clean(ran.stdout), clean(ran.stderr), ran.exception)

    text = cleaned(outcome.text)
    assert text is not None
    return Outcome(outcome.case, text, cleaned(outcome.as_json), outcome.args)


def render_table(outcomes: list[Outcome]) -> str:
    """The Markdown table of docs/cli.md."""
    rows = [
        "| command | bad input | exit | code | what it prints on stderr "
        "(`--json`: the same, as JSON on stdout) |",
        "|---|---|---|---|---|",
    ]
    for o in outcomes:
        message = o.message.replace("|", "\\|")
        rows.append(
            f"| `{o.case.command}` | {o.case.kind} | {o.text.exit_code} | `{o.case.code}` "
            f"| `{message}` |"
        )
    return "\n".join(rows) + "\n"
