"""``spinepki pki …``: generate, extend, revoke in and show an on-disk test PKI."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import threading
from pathlib import Path

import click
from cryptography import x509

from spinepki.errors import TestPKIError
from spinepki.testpki import (
    CRL_SET,
    DEFAULT_BASE_URL,
    DEFAULT_PROVIDER_FQDN,
    DEFAULT_SSP_FQDN,
    MANIFEST_NAME,
    KeyType,
    TestPKI,
    load_pki,
    write_pki,
)
from spinepki.testpki.responder import OCSPSigner, Responder

from ._common import FQDN, IO, CommandError, HttpURL, Time, emit_json, group, json_option, note

_KEY_TYPES = click.Choice([k.value for k in KeyType])
_REASONS = click.Choice(
    [
        r.value
        for r in x509.ReasonFlags
        if r not in (x509.ReasonFlags.unspecified, x509.ReasonFlags.remove_from_crl)
    ]
)


#: The test PKI's directory: opened by the library (``load_pki``), which says what is
#: wrong with it (missing, not a PKI, incomplete) with the ``testpki`` error code.
_DIRECTORY = click.Path(path_type=Path)


@group()
def pki() -> None:
    """Generate and manage a Spine-shaped test PKI (throwaway keys: tests only)."""


def _summary(p: TestPKI, directory: Path) -> dict[str, object]:
    return {
        "directory": str(directory),
        "reference_time": p.reference_time,
        "key_type": p.key_type.value,
        "base_url": p.base_url,
        "ssp_fqdn": p.ssp_fqdn,
        "provider_fqdn": p.provider_fqdn,
        "trust_bundle": str(directory / "ca" / "trust-bundle.pem"),
        "crl_set": str(directory / CRL_SET),
        "certificates": [
            {
                "name": c.name,
                "fqdn": c.fqdn,
                "purpose": c.purpose,
                "serial": format(c.serial, "x"),
                "not_before": c.certificate.not_valid_before_utc,
                "not_after": c.certificate.not_valid_after_utc,
                "revoked": p.is_revoked(c.name),
            }
            for c in p
        ],
    }


def _print_table(p: TestPKI, directory: Path) -> None:
    click.echo(f"Test PKI in {directory}  (key type {p.key_type.value}, URLs under {p.base_url})")
    click.echo(f"  trust bundle: {directory / 'ca' / 'trust-bundle.pem'}")
    click.echo(
        f"  CRL set:      {directory / CRL_SET}  (root + Sub CA: for nginx, Apache, HAProxy)"
    )
    width = max(len(c.name) for c in p)
    for c in p:
        state = "REVOKED " if p.is_revoked(c.name) else ""
        window = (
            f"{c.certificate.not_valid_before_utc:%Y-%m-%d} .. "
            f"{c.certificate.not_valid_after_utc:%Y-%m-%d}"
        )
        click.echo(f"  {c.name:<{width}}  {window}  {state}{c.fqdn or ''}  {c.purpose}")


@pki.command()
@click.argument("directory", type=_DIRECTORY)
@click.option(
    "--ssp-fqdn",
    type=FQDN(),
    default=DEFAULT_SSP_FQDN,
    show_default=True,
    help="FQDN of the SSP client certificate.",
)
@click.option(
    "--provider-fqdn",
    type=FQDN(),
    default=DEFAULT_PROVIDER_FQDN,
    show_default=True,
    help="FQDN of the provider server certificate.",
)
@click.option("--key-type", type=_KEY_TYPES, default=KeyType.RSA_2048.value, show_default=True)
@click.option(
    "--base-url",
    type=HttpURL(),
    default=DEFAULT_BASE_URL,
    show_default=True,
    help="Where CRL/OCSP/CA URLs point.",
)
@click.option("--no-ocsp", is_flag=True, help="Leave the AIA OCSP URL off endpoint certificates.")
@click.option("--at", "at_", type=Time(), help="Reference time (ISO 8601; default now).")
@click.option("--force", is_flag=True, help="Replace a test PKI that already exists there.")
@json_option()
def init(
    directory: Path,
    ssp_fqdn: str,
    provider_fqdn: str,
    key_type: str,
    base_url: str,
    no_ocsp: bool,
    at_: dt.datetime | None,
    force: bool,
    as_json: bool,
) -> None:
    """Create a test PKI in DIRECTORY: CAs, the standard certificates, CRLs, a manifest.

    Refuses to overwrite an existing PKI unless --force is given.
    """
    # Everything that can refuse is checked before keys are generated (RSA takes seconds).
    _writable_directory(directory)
    if (directory / MANIFEST_NAME).exists() and not force:
        raise TestPKIError(
            "a test PKI already exists here (use --force to replace it)", source=str(directory)
        )
    if not as_json:
        note(f"Generating {key_type} keys and certificates...")
    p = TestPKI.create(
        ssp_fqdn=ssp_fqdn,
        provider_fqdn=provider_fqdn,
        key_type=KeyType(key_type),
        base_url=base_url,
        with_ocsp=not no_ocsp,
        at=at_,
        reuse_keys=False,
    )
    write_pki(p, directory, overwrite=force)
    if as_json:
        emit_json(_summary(p, directory))
    else:
        _print_table(p, directory)


def _writable_directory(directory: Path) -> None:
    """Create ``directory`` (or find it) and make sure files can be written in it."""
    if directory.exists() and not directory.is_dir():
        raise CommandError(f"{directory}: exists and is not a directory", code=IO)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"{directory}: cannot create: {exc.strerror or exc}", code=IO) from exc
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CommandError(f"{directory}: cannot write here (permission denied)", code=IO)


@pki.command()
@click.argument("directory", type=_DIRECTORY)
@click.argument("name")
@click.option(
    "--fqdn",
    required=True,
    type=FQDN(wildcard=True),
    help="FQDN for the subject CN (and SAN with --san).",
)
@click.option(
    "--days", type=click.IntRange(1, 36500), default=365, show_default=True, help="Lifetime."
)
@click.option("--not-before", type=Time(), help="Start of validity (ISO 8601; default now - 1h).")
@click.option("--key-type", type=_KEY_TYPES, help="Default: the PKI's key type.")
@click.option(
    "--san", is_flag=True, help="Add a subjectAltName (real Spine certificates have none)."
)
@click.option("--untrusted", is_flag=True, help="Issue from the foreign (untrusted) CA.")
@click.option("--replace", is_flag=True, help="Re-issue an existing name.")
@json_option()
def issue(
    directory: Path,
    name: str,
    fqdn: str,
    days: int,
    not_before: dt.datetime | None,
    key_type: str | None,
    san: bool,
    untrusted: bool,
    replace: bool,
    as_json: bool,
) -> None:
    """Issue an extra endpoint certificate NAME into the test PKI in DIRECTORY.

    NAME becomes the file name certs/NAME.pem: 1-64 letters, digits, '-' or '_'.
    """
    p = load_pki(directory)
    start = not_before or (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    issued = p.issue(
        name,
        fqdn=fqdn,
        not_before=start,
        not_after=start + dt.timedelta(days=days),
        key_type=KeyType(key_type) if key_type else None,
        san=san,
        issuer="foreign-sub-ca" if untrusted else "sub-ca",
        purpose="extra certificate issued with `spinepki pki issue`",
        replace_existing=replace,
    )
    write_pki(p, directory, overwrite=True)
    if as_json:
        emit_json(
            {
                "name": name,
                "fqdn": fqdn,
                "serial": format(issued.serial, "x"),
                "cert": str(directory / "certs" / f"{name}.pem"),
            }
        )
    else:
        click.echo(
            f"Issued {name} ({fqdn}), serial {issued.serial:x}: "
            f"{directory / 'certs' / (name + '.pem')}"
        )


@pki.command()
@click.argument("directory", type=_DIRECTORY)
@click.argument("name")
@click.option(
    "--reason", type=_REASONS, default=x509.ReasonFlags.key_compromise.value, show_default=True
)
@json_option()
def revoke(directory: Path, name: str, reason: str, as_json: bool) -> None:
    """Revoke certificate NAME and re-issue its CA's CRL."""
    p = load_pki(directory)
    entry = p.revoke(name, reason=x509.ReasonFlags(reason), at=dt.datetime.now(dt.UTC))
    write_pki(p, directory, overwrite=True)
    if as_json:
        emit_json(
            {
                "name": name,
                "serial": format(entry.serial, "x"),
                "reason": reason,
                "revoked_at": entry.revoked_at,
            }
        )
    else:
        click.echo(
            f"Revoked {name} (serial {entry.serial:x}, {reason}); "
            f"CRLs re-issued in {directory / 'crl'}"
        )


@pki.command()
@click.argument("directory", type=_DIRECTORY)
@json_option()
def show(directory: Path, as_json: bool) -> None:
    """Show what the test PKI in DIRECTORY holds."""
    p = load_pki(directory)
    if as_json:
        emit_json(_summary(p, directory))
    else:
        _print_table(p, directory)


@pki.command()
@click.argument("directory", type=_DIRECTORY)
@click.option("--port", type=click.IntRange(0, 65535), help="Default: the port in the PKI's URLs.")
@click.option("--delegated", is_flag=True, help="Sign OCSP with the delegated responder cert.")
@click.option(
    "--duration",
    type=click.FloatRange(min=0.1),
    help="Stop after this many seconds (default: run until interrupted).",
)
@json_option("Print the URLs served as JSON (one object), then serve.")
def serve(
    directory: Path, port: int | None, delegated: bool, duration: float | None, as_json: bool
) -> None:
    """Serve the test PKI's CRLs, OCSP and CA certificates on 127.0.0.1.

    URLs follow the certificates: /crl/<ca>.crl, POST /ocsp, /ca/<ca>.crt. CRLs and OCSP
    answers are dated from the current time. Stop with Ctrl-C.
    """
    p = load_pki(directory)
    responder = Responder(
        p,
        port=port,
        ocsp_signer=OCSPSigner.DELEGATED if delegated else OCSPSigner.CA,
        clock=lambda: dt.datetime.now(dt.UTC),
    )
    with responder:
        urls = {
            "base_url": responder.base_url,
            "crl": f"{responder.base_url}/crl/sub-ca.crl",
            "ocsp": f"{responder.base_url}/ocsp",
            "ca": f"{responder.base_url}/ca/sub-ca.crt",
        }
        if as_json:
            click.echo(json.dumps({"directory": str(directory), **urls}))
        else:
            click.echo(f"Serving {directory} at {responder.base_url}")
            click.echo(f"  CRL   {urls['crl']}")
            click.echo(f"  OCSP  {urls['ocsp']} (POST)")
            click.echo(f"  CA    {urls['ca']}")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait(duration)  # None: until interrupted
