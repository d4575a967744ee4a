"""``spinepki cert check`` and ``spinepki cert show``: one certificate, checked or decoded.

Exit codes as everywhere: 0 valid, 1 checked and invalid, 2 usage or input error.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click
from cryptography import x509

from spinepki._loading import MALFORMED_INPUT, load_certificate_chain
from spinepki.errors import CRLParseError
from spinepki.revocation import RevocationChecker, RevocationMode, RevocationResult, load_crl
from spinepki.trust import TrustStore
from spinepki.validation import (
    KEY_USAGE_BITS,
    MAX_CHAIN_DEPTH_LIMIT,
    ClientCertValidator,
    FailureCode,
    Profile,
    Purpose,
    ValidationResult,
    summarize_certificate,
)

from ._common import (
    EXIT_INVALID,
    EXIT_OK,
    emit_json,
    fail,
    is_debug,
    library_errors,
    optional_trust,
    parse_time,
)

__all__ = ["cert"]

OK, BAD, SKIP = "✓", "✗", "-"

#: The rows of ``cert check``: label, the codes that make the row fail, what success means.
_ROWS: tuple[tuple[str, frozenset[FailureCode], str], ...] = (
    (
        "chain",
        frozenset({FailureCode.UNTRUSTED, FailureCode.CHAIN_TOO_LONG, FailureCode.MALFORMED}),
        "chains to a trusted root",
    ),
    (
        "validity",
        frozenset({FailureCode.EXPIRED, FailureCode.NOT_YET_VALID}),
        "every certificate on the path is within its validity period",
    ),
    ("purpose", frozenset({FailureCode.WRONG_PURPOSE}), ""),
    ("FQDN", frozenset({FailureCode.FQDN_MISMATCH}), ""),
    ("policy", frozenset({FailureCode.POLICY_MISSING}), "the required policies are asserted"),
    (
        "algorithms",
        frozenset({FailureCode.WEAK_KEY, FailureCode.WEAK_SIGNATURE}),
        "keys and signatures meet the floor (RSA >= 2048, P-256/384/521, SHA-256+)",
    ),
    ("revocation", frozenset({FailureCode.REVOKED, FailureCode.REVOCATION_UNKNOWN}), ""),
)


_FAILED = {
    "chain": "does not chain to a trusted root",
    "validity": "outside a validity period",
    "purpose": "wrong extended key usage",
    "FQDN": "",
    "policy": "a required policy is missing",
    "algorithms": "below the key or signature floor",
    "revocation": "",
}


@click.group()
def cert() -> None:
    """Check a certificate against Spine trust, or show what is in it."""


def _read_crls(paths: tuple[str, ...]) -> list[Any]:
    crls = []
    for name in paths:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            raise CRLParseError(f"cannot read: {exc.strerror or exc}", source=name) from exc
        crls.append(load_crl(data, source=name))
    return crls


def _revocation(mode: str | None, crl_files: tuple[str, ...]) -> RevocationChecker:
    crls = _read_crls(crl_files)
    if mode is None:
        # Supplied CRLs mean "judge by these" (offline); otherwise fetch from the
        # certificate's distribution point and refuse without evidence (hard-fail).
        chosen = RevocationMode.OFFLINE if crls else RevocationMode.HARD_FAIL
    else:
        chosen = RevocationMode(mode)
    if chosen is RevocationMode.DISABLED:
        click.echo("Warning: revocation checking is disabled (--revocation disabled).", err=True)
    return RevocationChecker(
        chosen, crls=crls, unsafe_allow_disabled=chosen is RevocationMode.DISABLED
    )


def _trust(env: str | None, trust_files: tuple[str, ...], *, partial_chain: bool) -> TrustStore:
    if partial_chain:
        if env or not trust_files:
            raise click.UsageError("--partial-chain needs --trust FILE (not --env)")
        return TrustStore.from_paths(*trust_files, partial_chain=True)
    trust = optional_trust(env, trust_files)
    if trust is None:  # validation needs trust; the scanners can run without it
        raise click.UsageError("say what to trust: --env live|int|dep or --trust FILE")
    return trust


def _revocation_detail(outcome: RevocationResult | None) -> str:
    if outcome is None:
        return ""
    evidence = outcome.evidence
    if evidence is None:
        extra = f" ({'; '.join(outcome.problems)})" if outcome.problems else ""
        return f"{outcome.status.value} without evidence{extra}"
    what = "CRL" if evidence.source == "crl" else "OCSP"
    number = f" #{evidence.crl_number}" if evidence.crl_number is not None else ""
    until = f", next update {evidence.next_update.isoformat()}" if evidence.next_update else ""
    return f"{outcome.status.value} ({what}{number}{until})"


def _purpose_detail(leaf: x509.Certificate, purpose: Purpose, key_usage: tuple[str, ...]) -> str:
    """What the purpose row says when it passes."""
    wanted = {Purpose.CLIENT: "clientAuth", Purpose.SERVER: "serverAuth"}.get(purpose)
    try:
        present = summarize_certificate(leaf, at=dt.datetime.now(dt.UTC)).extended_key_usage
    except MALFORMED_INPUT:
        present = ()
    if wanted is None:
        detail = "not checked (--purpose any)"
    elif present:
        detail = f"{wanted} present"
    else:
        detail = f"no extKeyUsage: any purpose (RFC 5280 4.2.1.12), {wanted} included"
    if key_usage:
        detail += f"; keyUsage {', '.join(key_usage)} asserted"
    return detail


def _rows(
    result: ValidationResult,
    *,
    purpose_detail: str,
    purpose_checked: bool,
    fqdn_checked: bool,
    policy_checked: bool,
    revocation_disabled: bool,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for label, codes, success in _ROWS:
        failures = [f for f in result.failures if f.code in codes]
        status = BAD if failures else OK
        detail = success if not failures else _FAILED[label]
        if label == "chain" and not failures:
            detail = f"chains to {result.chain[-1].subject.rfc4514_string()}"
        elif label == "purpose" and not failures:
            detail = purpose_detail
            if not purpose_checked:
                status = SKIP
        elif label == "FQDN":
            where = {"san": "subjectAltName", "cn": "subject CN"}.get(result.fqdn_source or "")
            found = f"{result.fqdn} (from the {where})" if result.fqdn else "no name found"
            detail = found if fqdn_checked else f"{found}; not compared (no --fqdn given)"
            if not fqdn_checked and not failures:
                status = SKIP
        elif label == "policy" and not policy_checked:
            status, detail = SKIP, "no --require-policy given"
        elif label == "revocation":
            if result.revocation is not None:
                detail = _revocation_detail(result.revocation)
                if result.revocation.soft_failed:
                    detail += "; accepted under soft-fail"
            elif not failures:
                status = SKIP
                detail = (
                    "not checked (--revocation disabled)"
                    if revocation_disabled
                    else "not checked (only done once the path is trusted)"
                )
        rows.append(
            {
                "check": label,
                "status": {OK: "pass", BAD: "fail", SKIP: "skipped"}[status],
                "symbol": status,
                "detail": detail,
                "failures": [f.as_dict() for f in failures],
            }
        )
    return rows


@cert.command("check")
@click.argument("certificate", type=click.Path(dir_okay=False))
@click.option("--chain", "chain_file", type=click.Path(dir_okay=False), help="Intermediates sent.")
@click.option("--env", type=click.Choice(["live", "int", "dep"]), help="Trust a Spine CA set.")
@click.option("--trust", "trust_files", multiple=True, type=click.Path(), help="Trust CA file(s).")
@click.option("--fqdn", "fqdns", multiple=True, help="Accepted FQDN (repeatable).")
@click.option(
    "--revocation",
    "mode",
    type=click.Choice([m.value for m in RevocationMode]),
    help="Revocation mode. Default: offline with --crl, else hard-fail fetching the CDP.",
)
@click.option("--crl", "crl_files", multiple=True, type=click.Path(), help="CRL file(s).")
@click.option("--at", "at_text", help="Validation time, ISO 8601 (naive = UTC). Default now.")
@click.option(
    "--purpose",
    type=click.Choice([p.value for p in Purpose]),
    default="client",
    help="Extended key usage required: clientAuth, serverAuth (server verifier), or none.",
)
@click.option(
    "--profile",
    type=click.Choice([p.value for p in Profile]),
    default="spine",
    help="spine (default), strict (RFC 5280 + CA/B Forum) or general (EKU optional).",
)
@click.option(
    "--max-depth",
    type=click.IntRange(0, MAX_CHAIN_DEPTH_LIMIT),
    help="Most intermediate CAs. Default 3 (spine, strict) or 8 (general).",
)
@click.option("--require-policy", "policies", multiple=True, help="Required policy OID.")
@click.option(
    "--require-key-usage",
    "key_usage",
    multiple=True,
    type=click.Choice(KEY_USAGE_BITS),
    metavar="BIT",
    help="keyUsage bit the leaf must assert, e.g. digital_signature (repeatable).",
)
@click.option("--allow-wildcard", is_flag=True, help="Accept a wildcard name (one label).")
@click.option(
    "--partial-chain",
    is_flag=True,
    help="Every --trust certificate is an anchor, not only self-signed roots.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.pass_context
def check(
    ctx: click.Context,
    certificate: str,
    chain_file: str | None,
    env: str | None,
    trust_files: tuple[str, ...],
    fqdns: tuple[str, ...],
    mode: str | None,
    crl_files: tuple[str, ...],
    at_text: str | None,
    purpose: str,
    profile: str,
    max_depth: int | None,
    policies: tuple[str, ...],
    key_usage: tuple[str, ...],
    allow_wildcard: bool,
    partial_chain: bool,
    as_json: bool,
) -> None:
    """Validate CERTIFICATE: chain, validity, purpose, FQDN, algorithms, revocation.

    Exit 0 when valid, 1 when invalid, 2 on a usage or input error.
    """
    at = parse_time(at_text) or dt.datetime.now(dt.UTC)
    with library_errors(is_debug(ctx)):
        trust = _trust(env, trust_files, partial_chain=partial_chain)
        leaf, *sent = load_certificate_chain(certificate)
        if chain_file:
            sent.extend(load_certificate_chain(chain_file))
        try:
            oids = [x509.ObjectIdentifier(p) for p in policies]
        except ValueError:
            raise click.BadParameter(
                f"not an OID: {', '.join(policies)}", param_hint="--require-policy"
            ) from None
        validator = ClientCertValidator(
            trust,
            ssp_fqdns=fqdns,
            revocation=_revocation(mode, crl_files),
            purpose=Purpose(purpose),
            profile=Profile(profile),
            max_chain_depth=max_depth,
            required_policies=oids,
            required_key_usage=key_usage,
            allow_wildcard=allow_wildcard,
            unsafe_skip_fqdn_check=not fqdns,
            cache_ttl=0,
        )
        result = validator.validate(leaf, sent, at=at)
    rows = _rows(
        result,
        purpose_detail=_purpose_detail(leaf, Purpose(purpose), key_usage),
        purpose_checked=Purpose(purpose) is not Purpose.ANY or bool(key_usage),
        fqdn_checked=bool(fqdns),
        policy_checked=bool(policies),
        revocation_disabled=validator.revocation.mode is RevocationMode.DISABLED,
    )
    if as_json:
        emit_json(
            {
                "certificate": certificate,
                "trust": trust.name,
                "profile": profile,
                "purpose": purpose,
                "max_chain_depth": validator.max_chain_depth,
                "required_key_usage": list(key_usage),
                "checks": [{k: v for k, v in r.items() if k != "symbol"} for r in rows],
                **result.as_dict(),
            }
        )
    else:
        click.echo(f"Certificate  {_subject(leaf)}")
        click.echo(
            f"Checked at   {at.isoformat()} against {trust.name} "
            f"(profile {profile}, purpose {purpose}, depth {validator.max_chain_depth})"
        )
        for row in rows:
            click.echo(f"{row['symbol']} {row['check']:<11}{row['detail']}")
            for failure in row["failures"]:
                subject = failure["certificate_subject"]
                on = f" [{subject}]" if subject and subject != _subject(leaf) else ""
                click.echo(f"    {failure['message']}{on}")
        click.echo("VALID" if result.valid else "INVALID: " + ", ".join(result.codes))
    ctx.exit(EXIT_OK if result.valid else EXIT_INVALID)


@cert.command("show")
@click.argument("certificate", type=click.Path(dir_okay=False))
@click.option("--at", "at_text", help="Time for 'days left' (ISO 8601). Default now.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def show(ctx: click.Context, certificate: str, at_text: str | None, as_json: bool) -> None:
    """Show what a Spine operator checks in CERTIFICATE (every certificate in the file)."""
    at = parse_time(at_text) or dt.datetime.now(dt.UTC)
    with library_errors(is_debug(ctx)):
        certs = load_certificate_chain(certificate)
    summaries = []
    for item in certs:
        try:
            summaries.append(summarize_certificate(item, at=at))
        except MALFORMED_INPUT as exc:
            fail(f"{certificate}: malformed certificate: {exc}")
    if as_json:
        emit_json({"certificates": [s.as_dict() for s in summaries]})
        return
    for index, s in enumerate(summaries):
        if index:
            click.echo("")
        where = {"san": "subjectAltName", "cn": "subject CN; no subjectAltName"}
        fqdn = f"{s.fqdn} (from the {where[s.fqdn_source]})" if s.fqdn and s.fqdn_source else "-"
        lines = [
            ("Subject", s.subject),
            ("Issuer", s.issuer),
            ("Serial", s.serial),
            ("FQDN", fqdn + (f"; also {', '.join(s.other_names)}" if s.other_names else "")),
            ("Valid from", s.not_before.isoformat()),
            ("Valid until", f"{s.not_after.isoformat()} ({s.state}, {s.days_left} days left)"),
            ("CA", "yes" if s.is_ca else "no"),
            ("Key", s.key),
            ("Signature", s.signature_algorithm),
            ("EKU", ", ".join(s.extended_key_usage) or "-"),
            ("Policies", ", ".join(s.policies) or "-"),
            ("CRL", ", ".join(s.crl_urls) or "-"),
            ("OCSP", ", ".join(s.ocsp_urls) or "-"),
            ("CA issuers", ", ".join(s.ca_issuer_urls) or "-"),
            ("SHA-256", s.sha256),
            ("SHA-1", s.sha1),
        ]
        for label, value in lines:
            click.echo(f"{label + ':':<13}{value}")


def _subject(cert: x509.Certificate) -> str:
    # A certificate can load and still have a subject that does not parse (cryptography
    # parses names lazily); the validator reports it MALFORMED, and printing must not crash.
    try:
        return cert.subject.rfc4514_string()
    except MALFORMED_INPUT:
        return "<unreadable subject>"
