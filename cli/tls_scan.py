"""``spinepki tls scan HOST:PORT``: check a live endpoint against the Spine TLS policy.

Exit codes: 0 compliant (every check passed), 1 not compliant (a check failed or could
not be determined), 2 could not scan (refused, unresolvable, bad usage or credential).
"""

from __future__ import annotations

from typing import Any

import click

from spinepki.policy import SPINE_POLICY, SPINE_STRICT_POLICY, TLSPolicy
from spinepki.scan import ScanReport, parse_target, scan_endpoint

from ._common import (
    EXIT_INVALID,
    EXIT_OK,
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

__all__ = ["scan"]

_PROFILES: dict[str, TLSPolicy] = {p.name: p for p in (SPINE_POLICY, SPINE_STRICT_POLICY)}


def _print_table(report: ScanReport) -> None:
    target = f"{report.host}:{report.port}"
    name = f" ({report.server_name})" if report.server_name else ""
    click.echo(f"Scan of {target}{name} against policy {report.policy!r}")
    width = max(len(c.requirement) for c in report.checks)
    for c in report.checks:
        click.echo(f"  {MARKS[c.passed]} {c.requirement:<{width}}  {c.detail}")
    if report.ciphers is not None and report.ciphers.accepted:
        order = (
            "server preference"
            if report.ciphers.server_order
            else "order picked (the server does not enforce one)"
        )
        click.echo(f"  TLS 1.2 suites accepted, {order}:")
        for i, suite in enumerate(report.ciphers.accepted, start=1):
            flag = "  outside the policy" if suite in report.ciphers.outside_policy else ""
            click.echo(f"    {i:>3}. {suite}{flag}")
    if report.certificate is not None:
        click.echo("  Presented chain:")
        for s in report.certificate.chain:
            click.echo(f"    - {s.subject}  (until {s.not_after:%Y-%m-%d}, {s.days_left} days)")
    failed, unknown = len(report.failed), len(report.undetermined)
    verdict = (
        "COMPLIANT"
        if report.compliant
        else f"NOT COMPLIANT: {failed} failed, {unknown} could not be determined"
    )
    click.echo(f"{verdict} ({len(report.checks)} checks, {report.duration:.2f} s)")


@command()
@click.argument("target", metavar="HOST:PORT")
@click.option(
    "--cert",
    "cert_file",
    type=InputFile(),
    help="Client certificate (PEM chain) to present.",
)
@click.option("--key", "key_file", type=InputFile(), help="Its private key.")
@click.option(
    "--password-env", metavar="VAR", help="Environment variable holding the key password."
)
@click.option(
    "--wrong-fqdn-cert",
    type=InputFile(),
    help="A certificate from the same CAs naming another host (PEM chain): checks the "
    "endpoint refuses it.",
)
@click.option("--wrong-fqdn-key", type=InputFile(), help="Its private key.")
@click.option(
    "--env",
    type=click.Choice(["live", "int", "dep"]),
    help="Validate the server's chain against this Spine environment's CAs.",
)
@trust_option("Validate the server's chain against these CA files (repeatable).")
@click.option("--server-name", help="FQDN for SNI and the certificate name check (default: HOST).")
@click.option(
    "--path",
    "metadata_path",
    default="/metadata",
    show_default=True,
    help="Path of the metadata request (the provider's FHIR root + /metadata).",
)
@click.option(
    "--profile",
    type=click.Choice(sorted(_PROFILES)),
    default=SPINE_POLICY.name,
    show_default=True,
    help="spine: the GP Connect rule; spine-strict: GCM suites only.",
)
@click.option(
    "--timeout", type=float, default=5.0, show_default=True, help="Seconds per connect/read."
)
@json_option("Print the report as JSON.")
@click.pass_context
def scan(
    ctx: click.Context,
    target: str,
    cert_file: Input | None,
    key_file: Input | None,
    password_env: str | None,
    wrong_fqdn_cert: Input | None,
    wrong_fqdn_key: Input | None,
    env: str | None,
    trust_files: tuple[Input, ...],
    server_name: str | None,
    metadata_path: str,
    profile: str,
    timeout: float,
    as_json: bool,
) -> None:
    """Check one live endpoint against the Spine TLS policy [SEC].

    Probes the protocols it accepts (SSLv2 to TLS 1.3), every TLS 1.2 cipher suite,
    whether its own cipher order wins, what happens without a client certificate
    (handshake failure or HTTP 496 pass), whether plaintext HTTP is dropped, the
    certificate it presents and, with --cert/--key, whether GET /metadata and an error
    answer (to a request no server may parse, and the 496) carry Cache-Control: no-store;
    with --wrong-fqdn-cert/--wrong-fqdn-key, that a certificate naming another host is
    refused. One HOST:PORT only; ranges and CIDRs are refused.

    Exit codes: 0 compliant, 1 not compliant (or not every check could be made),
    2 could not scan.
    """
    if (cert_file is None) != (key_file is None):
        raise click.UsageError("give both --cert and --key, or neither")
    if (wrong_fqdn_cert is None) != (wrong_fqdn_key is None):
        raise click.UsageError("give both --wrong-fqdn-cert and --wrong-fqdn-key, or neither")
    host, port = parse_target(target)
    options: dict[str, Any] = {
        "policy": _PROFILES[profile],
        "trust": optional_trust(env, trust_files),
        "client_cert": cert_file.source if cert_file else None,
        "client_key": key_file.source if key_file else None,
        "password": password_from_env(password_env),
        "wrong_fqdn_cert": wrong_fqdn_cert.source if wrong_fqdn_cert else None,
        "wrong_fqdn_key": wrong_fqdn_key.source if wrong_fqdn_key else None,
        "server_name": server_name,
        "timeout": timeout,
        "metadata_path": metadata_path,
    }
    # The bar appears with the first probe: the library checks the inputs first.
    with Progress(f"Scanning {target}", enabled=not as_json) as progress:
        report = scan_endpoint(host, port, progress=progress, **options)
    if as_json:
        emit_json(report.as_dict())
    else:
        _print_table(report)
    if not report.compliant:
        ctx.exit(EXIT_INVALID)
    ctx.exit(EXIT_OK)
