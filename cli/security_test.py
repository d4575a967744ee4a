"""``spinepki security-test URL``: bounded security probes of one GP Connect deployment.

Exit codes: 0 every check passed, 1 a check failed or could not be determined, 2 could
not test (refused target, unreachable, handshake refused, bad credential, or the valid
baseline request was not served so no refusal proves anything).
"""

from __future__ import annotations

from typing import Any

import click

from spinepki.revocation import DEFAULT_MAX_STALENESS
from spinepki.securitytest import ProbeLimits, SecurityReport, run_security_test

from ._common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    MARKS,
    Input,
    InputFile,
    Progress,
    command,
    emit_json,
    json_option,
    optional_trust,
    password_from_env,
    trust_option,
)

__all__ = ["security_test"]

_DEFAULTS = ProbeLimits()


def _print_table(report: SecurityReport) -> None:
    click.echo(f"Security test of {report.url} ({report.host}:{report.port})")
    id_width = max(len(c.id) for c in report.checks)
    cat_width = max(len(c.category) for c in report.checks)
    for c in report.checks:
        click.echo(f"  {MARKS[c.passed]} {c.id:<{id_width}}  {c.category:<{cat_width}}  {c.detail}")
    failed, unknown = len(report.failed), len(report.undetermined)
    if not report.testable:
        verdict = "COULD NOT TEST: the valid request was not served"
    elif report.passed:
        verdict = "PASSED"
    else:
        verdict = f"FAILED: {failed} failed, {unknown} could not be determined"
    click.echo(
        f"{verdict} ({len(report.checks)} checks, {len(report.exchanges)} requests, "
        f"{report.duration:.2f} s)"
    )


@command("security-test")
@click.argument("url", metavar="URL")
@click.option(
    "--cert",
    "cert_file",
    required=True,
    type=InputFile(),
    help="Client certificate (PEM chain) to present, as the SSP would.",
)
@click.option("--key", "key_file", required=True, type=InputFile(), help="Its key.")
@click.option(
    "--password-env", metavar="VAR", help="Environment variable holding the key password."
)
@click.option(
    "--env",
    type=click.Choice(["live", "int", "dep"]),
    help="Verify the server's certificate against this Spine environment's CAs.",
)
@trust_option("Verify the server's certificate against these CA files (repeatable).")
@click.option("--asid", help="The provider's ASID, sent as Ssp-To (default: the spec's example).")
@click.option(
    "--max-connections",
    type=int,
    default=_DEFAULTS.max_connections,
    show_default=True,
    help=f"Idle connections the idle-connection probe holds (at most "
    f"{ProbeLimits.CEILING_CONNECTIONS}).",
)
@click.option(
    "--max-seconds",
    type=float,
    default=_DEFAULTS.max_seconds,
    show_default=True,
    help=f"Cap of the slow-header and idle-connection probes (at most "
    f"{ProbeLimits.CEILING_SECONDS:g}); set it above the server's header deadline.",
)
@click.option(
    "--timeout", type=float, default=5.0, show_default=True, help="Seconds per connect/response."
)
@click.option(
    "--revoked-cert",
    type=InputFile(),
    help="A test certificate the CA has revoked (published at least --max-staleness ago): "
    "it must be refused on fresh and resumed sessions.",
)
@click.option("--revoked-key", type=InputFile(), help="Its key.")
@click.option(
    "--max-staleness",
    type=float,
    default=DEFAULT_MAX_STALENESS.total_seconds(),
    show_default=True,
    help="The revocation bound (seconds) TLS session tickets must not outlive.",
)
@click.option(
    "--second-source",
    metavar="ADDRESS",
    help="A second local address of this machine: while one address holds every "
    "connection it can, a request from this one must be served (loopback targets: "
    "127.0.0.2 by default).",
)
@json_option("Print the report as JSON.")
@click.pass_context
def security_test(
    ctx: click.Context,
    url: str,
    cert_file: Input,
    key_file: Input,
    password_env: str | None,
    env: str | None,
    trust_files: tuple[Input, ...],
    asid: str | None,
    max_connections: int,
    max_seconds: float,
    timeout: float,
    revoked_cert: Input | None,
    revoked_key: Input | None,
    max_staleness: float,
    second_source: str | None,
    as_json: bool,
) -> None:
    """Probe one deployment (URL = its service root) for OWASP Top 10 and DoS weaknesses.

    Sends about 120 requests to one host, presenting --cert/--key: missing, duplicated,
    oversized and CR/LF-injected SSP headers; CL+TE smuggling, encoded delimiters,
    lower-case methods and upgrades; path traversal and encoded-path tricks against the
    interaction matching; method-override headers; alg-confusion, malformed, oversized,
    nested and huge-number tokens; TRACE and OPTIONS; a renegotiation and a garbage TLS
    record; session lifetime against --max-staleness (and --revoked-cert, if given);
    a refused request with a body that never comes; then a slow-header probe and an
    idle-connection probe from this one address, bounded by --max-seconds and
    --max-connections. After every probe the valid request must still be served. Every
    response is checked for leaks, banners, no-store and OperationOutcome errors.
    One https URL of one host only; ranges, CIDRs, lists and wildcards are refused.

    Exit codes: 0 all passed, 1 something failed (or could not be determined),
    2 could not test.
    """
    limits = ProbeLimits(max_connections=max_connections, max_seconds=max_seconds)
    options: dict[str, Any] = {
        "client_cert": cert_file.source,
        "client_key": key_file.source,
        "password": password_from_env(password_env),
        "trust": optional_trust(env, trust_files),
        "asid": asid,
        "timeout": timeout,
        "limits": limits,
        "revoked_cert": revoked_cert.source if revoked_cert is not None else None,
        "revoked_key": revoked_key.source if revoked_key is not None else None,
        "max_staleness": max_staleness,
        "second_source": second_source,
    }
    # The bar appears with the first step: the library checks the inputs first.
    with Progress(f"Testing {url}", enabled=not as_json) as progress:
        report = run_security_test(url, progress=progress, **options)
    if as_json:
        emit_json(report.as_dict())
    else:
        _print_table(report)
    if not report.testable:
        ctx.exit(EXIT_USAGE)
    ctx.exit(EXIT_OK if report.passed else EXIT_INVALID)
