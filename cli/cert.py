"""``spinepki cert check`` and ``spinepki cert show``: certificates, checked or decoded.

Each takes several inputs: files (PEM or DER, a chain file's leaf first), ``-`` for
standard input, or ``https://host[:port]`` for the chain a live endpoint presents.
Exit codes as everywhere: 0 valid, 1 checked and invalid, 2 usage or input error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from spinepki import MALFORMED_INPUT, load_certificate_chain
from spinepki.errors import CertificateLoadError, CRLParseError
from spinepki.revocation import RevocationChecker, RevocationMode, RevocationResult, load_crl
from spinepki.revocation.fetchers import DEFAULT_MAX_CRL_BYTES
from spinepki.scan import fetch_chain, parse_https_url
from spinepki.trust import TrustStore
from spinepki.validation import (
    KEY_USAGE_BITS,
    MAX_CHAIN_DEPTH_LIMIT,
    CertificateSummary,
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
    FQDN,
    Input,
    InputFile,
    Time,
    emit_json,
    group,
    json_option,
    optional_trust,
    trust_option,
    warn,
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

_TIMEOUT_HELP = "Seconds to connect to and read from an https:// input."


@group()
def cert() -> None:
    """Check certificates against Spine trust, or show what is in them."""


@dataclass(frozen=True, slots=True)
class _Loaded:
    """One input's certificates (leaf first) and, for a URL, its host."""

    label: str
    chain: list[x509.Certificate]
    host: str | None = None


def _load(item: Input, timeout: float) -> _Loaded:
    """The certificates of one input: read a file or stdin, or fetch a live chain."""
    if item.url is not None:
        host, port = parse_https_url(item.url)
        return _Loaded(item.label, list(fetch_chain(host, port, timeout=timeout)), host)
    return _Loaded(item.label, load_certificate_chain(item.source, source=item.label))


_CRL_PEM = b"-----BEGIN X509 CRL-----"


def _read_crls(inputs: tuple[Input, ...]) -> list[Any]:
    crls: list[Any] = []
    for item in inputs:
        data = item.data if item.data is not None else _read_crl_file(item)
        # A PEM file may hold several CRLs (the test PKI's crl/crl-set.pem holds the
        # root's and the Sub CA's, what the whole-chain check needs): one load each.
        blocks = (
            [_CRL_PEM + b for b in data.split(_CRL_PEM)[1:]] if data.count(_CRL_PEM) > 1 else [data]
        )
        crls.extend(load_crl(block, source=item.label) for block in blocks)
    return crls


def _read_crl_file(item: Input) -> bytes:
    path = Path(item.path or item.label)
    try:
        size = path.stat().st_size
        if size > DEFAULT_MAX_CRL_BYTES:  # the same bound as a fetched CRL
            raise CRLParseError(
                f"file is {size} bytes, over the {DEFAULT_MAX_CRL_BYTES} byte limit",
                source=item.label,
            )
        return path.read_bytes()
    except OSError as exc:
        raise CRLParseError(f"cannot read: {exc.strerror or exc}", source=item.label) from exc


def _revocation(mode: str | None, crls: list[Any]) -> RevocationChecker:
    if mode is None:
        # Supplied CRLs mean "judge by these" (offline); otherwise fetch from the
        # certificate's distribution point and refuse without evidence (hard-fail).
        chosen = RevocationMode.OFFLINE if crls else RevocationMode.HARD_FAIL
    else:
        chosen = RevocationMode(mode)
    if chosen is RevocationMode.DISABLED:
        warn("revocation checking is disabled (--revocation disabled).")
    return RevocationChecker(
        chosen, crls=crls, unsafe_allow_disabled=chosen is RevocationMode.DISABLED
    )


def _trust(env: str | None, trust_files: tuple[Input, ...], *, partial_chain: bool) -> TrustStore:
    if partial_chain and (env or not trust_files):
        raise click.UsageError("--partial-chain needs --trust FILE (not --env)")
    trust = optional_trust(env, trust_files, partial_chain=partial_chain)
    if trust is None:  # validation needs trust; the scanners can run without it
        raise click.UsageError("say what to trust: --env live|int|dep or --trust FILE")
    return trust


def _revocation_detail(outcome: RevocationResult) -> str:
    evidence = outcome.evidence
    if evidence is None:
        # Why there is no evidence is the failure's own message (printed once, below the
        # row); a soft-failed check has no failure, so the reason goes here.
        if outcome.soft_failed and outcome.problems:
            return f"{outcome.status.value} without evidence ({'; '.join(outcome.problems)})"
        return f"{outcome.status.value} without evidence"
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


def _print_check(
    loaded: _Loaded,
    result: ValidationResult,
    rows: list[dict[str, Any]],
    *,
    at: dt.datetime,
    trust: TrustStore,
    profile: str,
    purpose: str,
    depth: int,
) -> None:
    leaf = loaded.chain[0]
    click.echo(f"Certificate  {_subject(leaf)}  ({loaded.label})")
    click.echo(
        f"Checked at   {at.isoformat()} against {trust.name} "
        f"(profile {profile}, purpose {purpose}, depth {depth})"
    )
    for row in rows:
        click.echo(f"{row['symbol']} {row['check']:<11}{row['detail']}")
        for failure in row["failures"]:
            subject = failure["certificate_subject"]
            on = f" [{subject}]" if subject and subject != _subject(leaf) else ""
            click.echo(f"    {failure['message']}{on}")
    click.echo("VALID" if result.valid else "INVALID: " + ", ".join(result.codes))


@cert.command("check")
@click.argument("certificates", nargs=-1, required=True, type=InputFile(urls=True))
@click.option("--chain", "chain_file", type=InputFile(), help="Intermediates sent (any input).")
@click.option("--env", type=click.Choice(["live", "int", "dep"]), help="Trust a Spine CA set.")
@trust_option("Trust CA file(s) (repeatable).")
@click.option(
    "--fqdn",
    "fqdns",
    multiple=True,
    type=FQDN(),
    help="Accepted FQDN (repeatable). For https:// input, default: the URL's host.",
)
@click.option(
    "--revocation",
    "mode",
    type=click.Choice([m.value for m in RevocationMode]),
    help="Revocation mode. Default: offline with --crl, else hard-fail fetching the CDP.",
)
@click.option(
    "--crl",
    "crl_files",
    multiple=True,
    type=InputFile(),
    help="CRL file(s), DER or PEM (a PEM file may hold several): the Sub CA's and the "
    "root's, as the Sub CA is checked too. Of several from one CA the highest CRL number "
    "wins, whatever their order. In online modes a usable supplied CRL is authoritative: "
    "the distribution point is fetched only when none of the CA's supplied CRLs is usable.",
)
@click.option(
    "--leaf-only",
    is_flag=True,
    help="Check the revocation status of the certificate only, not of its Sub CA.",
)
@click.option("--at", type=Time(), help="Validation time, ISO 8601 (naive = UTC). Default now.")
@click.option(
    "--purpose",
    type=click.Choice([p.value for p in Purpose]),
    help="Extended key usage required: client (default), server (the server verifier; "
    "default for https:// input) or any.",
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
@click.option("--timeout", type=click.FloatRange(0.1, 120), default=5.0, help=_TIMEOUT_HELP)
@json_option("Print the results as JSON.")
@click.pass_context
def check(
    ctx: click.Context,
    certificates: tuple[Input, ...],
    chain_file: Input | None,
    env: str | None,
    trust_files: tuple[Input, ...],
    fqdns: tuple[str, ...],
    mode: str | None,
    crl_files: tuple[Input, ...],
    leaf_only: bool,
    at: dt.datetime | None,
    purpose: str | None,
    profile: str,
    max_depth: int | None,
    policies: tuple[str, ...],
    key_usage: tuple[str, ...],
    allow_wildcard: bool,
    partial_chain: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Validate each CERTIFICATE: chain, validity, purpose, FQDN, algorithms, revocation.

    CERTIFICATE is a file (PEM or DER; a chain file's leaf first), - for standard input,
    or https://HOST[:PORT] to check the chain that endpoint presents. With several, a
    summary line follows. Exit 0 when every one is valid, 1 when any is invalid, 2 on a
    usage or input error (nothing is checked until every input has loaded).
    """
    when = at or dt.datetime.now(dt.UTC)
    # Every input is read (and every option checked) before anything is validated.
    try:
        oids = [x509.ObjectIdentifier(p) for p in policies]
    except ValueError:
        raise click.BadParameter(
            f"not an OID: {', '.join(policies)}", param_hint="--require-policy"
        ) from None
    trust = _trust(env, trust_files, partial_chain=partial_chain)
    checker = _revocation(mode, _read_crls(crl_files))
    extra = load_certificate_chain(chain_file.source, source=chain_file.label) if chain_file else []
    loaded = [_load(item, timeout) for item in certificates]
    documents, valid_count = [], 0
    for index, item in enumerate(loaded):
        chosen = Purpose(purpose or ("server" if item.host is not None else "client"))
        names = fqdns or ((item.host,) if item.host is not None else ())
        validator = ClientCertValidator(
            trust,
            ssp_fqdns=names,
            revocation=checker,
            purpose=chosen,
            profile=Profile(profile),
            max_chain_depth=max_depth,
            required_policies=oids,
            required_key_usage=key_usage,
            allow_wildcard=allow_wildcard,
            unsafe_skip_fqdn_check=not names,
            check_ca_revocation=not leaf_only,
            cache_ttl=0,
        )
        leaf, *sent = item.chain
        result = validator.validate(leaf, [*sent, *extra], at=when)
        valid_count += result.valid
        rows = _rows(
            result,
            purpose_detail=_purpose_detail(leaf, chosen, key_usage),
            purpose_checked=chosen is not Purpose.ANY or bool(key_usage),
            fqdn_checked=bool(names),
            policy_checked=bool(policies),
            revocation_disabled=checker.mode is RevocationMode.DISABLED,
        )
        if as_json:
            documents.append(
                {
                    "certificate": item.label,
                    "trust": trust.name,
                    "profile": profile,
                    "purpose": chosen.value,
                    "max_chain_depth": validator.max_chain_depth,
                    "required_key_usage": list(key_usage),
                    "checks": [{k: v for k, v in r.items() if k != "symbol"} for r in rows],
                    **result.as_dict(),
                }
            )
            continue
        if index:
            click.echo("")
        _print_check(
            item,
            result,
            rows,
            at=when,
            trust=trust,
            profile=profile,
            purpose=chosen.value,
            depth=validator.max_chain_depth,
        )
    total = len(loaded)
    if as_json:
        summary = {"total": total, "valid": valid_count, "invalid": total - valid_count}
        emit_json({"certificates": documents, "summary": summary})
    elif total > 1:
        click.echo(f"\n{total} certificates: {valid_count} valid, {total - valid_count} invalid")
    ctx.exit(EXIT_OK if valid_count == total else EXIT_INVALID)


def _show_lines(s: CertificateSummary) -> list[tuple[str, str]]:
    where = {"san": "subjectAltName", "cn": "subject CN; no subjectAltName"}
    fqdn = f"{s.fqdn} (from the {where[s.fqdn_source]})" if s.fqdn and s.fqdn_source else "-"
    size = f" ({s.key_size} bits)" if s.key_size and s.key_type != "RSA" else ""
    return [
        ("Subject", s.subject),
        ("Issuer", s.issuer),
        ("Serial", s.serial),
        ("FQDN", fqdn + (f"; also {', '.join(s.other_names)}" if s.other_names else "")),
        ("SAN", ", ".join(s.subject_alt_names) or "-"),
        ("Valid from", s.not_before.isoformat()),
        ("Valid until", f"{s.not_after.isoformat()} ({s.state}, {s.days_left} days left)"),
        ("CA", "yes" if s.is_ca else "no"),
        ("Public key", s.key + (" bits" if s.key_type == "RSA" else size)),
        ("Signature", s.signature_algorithm),
        ("Key usage", ", ".join(s.key_usage) or "-"),
        ("EKU", ", ".join(s.extended_key_usage) or "-"),
        ("Policies", ", ".join(s.policies) or "-"),
        ("CRL", ", ".join(s.crl_urls) or "-"),
        ("OCSP", ", ".join(s.ocsp_urls) or "-"),
        ("CA issuers", ", ".join(s.ca_issuer_urls) or "-"),
        ("SKI", s.subject_key_id or "-"),
        ("AKI", s.authority_key_id or "-"),
        ("SHA-256", s.sha256),
        ("SHA-1", s.sha1),
    ]


@cert.command("show")
@click.argument("certificates", nargs=-1, required=True, type=InputFile(urls=True))
@click.option("--at", type=Time(), help="Time for 'days left' (ISO 8601). Default now.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "pem"]),
    default="text",
    show_default=True,
    help="pem: the certificates themselves (e.g. of a live chain).",
)
@json_option("Same as --format json.")
@click.option("--timeout", type=click.FloatRange(0.1, 120), default=5.0, help=_TIMEOUT_HELP)
def show(
    certificates: tuple[Input, ...],
    at: dt.datetime | None,
    fmt: str,
    as_json: bool,
    timeout: float,
) -> None:
    """Show what a Spine operator checks in each CERTIFICATE (every certificate in it).

    CERTIFICATE is a file (PEM or DER), - for standard input, or https://HOST[:PORT]
    for the chain that endpoint presents (read without validating it; `cert check`
    validates it).
    """
    when = at or dt.datetime.now(dt.UTC)
    fmt = "json" if as_json else fmt
    loaded = [_load(item, timeout) for item in certificates]
    # Decoded before anything is printed: a malformed one is an input error, not half a
    # report (cryptography parses extensions lazily).
    decoded = [(item, c, _summary(item, c, when)) for item in loaded for c in item.chain]
    if fmt == "json":
        emit_json({"certificates": [{"source": i.label, **s.as_dict()} for i, _, s in decoded]})
        return
    if fmt == "pem":
        for _, c, _ in decoded:
            click.echo(c.public_bytes(serialization.Encoding.PEM).decode("ascii"), nl=False)
        return
    for index, (item, _, summary) in enumerate(decoded):
        if index:
            click.echo("")
        lines = _show_lines(summary)
        if len(loaded) > 1:
            lines.insert(0, ("Source", item.label))
        for label, value in lines:
            click.echo(f"{label + ':':<13}{value}")
    if len(loaded) > 1:
        click.echo(f"\n{len(decoded)} certificates from {len(loaded)} inputs")


def _summary(item: _Loaded, cert: x509.Certificate, at: dt.datetime) -> CertificateSummary:
    try:
        return summarize_certificate(cert, at=at)
    except CertificateLoadError as exc:
        raise CertificateLoadError(exc.reason, source=item.label) from exc


def _subject(cert: x509.Certificate) -> str:
    # A certificate can load and still have a subject that does not parse (cryptography
    # parses names lazily); the validator reports it MALFORMED, and printing must not crash.
    try:
        return cert.subject.rfc4514_string()
    except MALFORMED_INPUT:
        return "<unreadable subject>"
