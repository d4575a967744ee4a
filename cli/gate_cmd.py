"""``spinepki gate serve``: the request gate as an nginx auth_request service."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from spinepki.gate import RootKind
from spinepki.gate_service import GateSettings, load_settings, serve
from spinepki.policy import ClientAuth
from spinepki.revocation import RevocationMode
from spinepki.trust import SpineEnvironment

from ._common import FQDN, AliasedOption, group, trust_option

_REVOCATION = [m.value for m in RevocationMode if m is not RevocationMode.DISABLED]


@group()
def gate() -> None:
    """The SSP request gate as a service."""


@gate.command("serve")
@click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="TOML file of settings (options given here win).",
)
@click.option("--asid", "provider_asid", help="The provider's ASID (Ssp-To must equal it).")
@click.option(
    "--root",
    "roots",
    multiple=True,
    metavar="KIND=URL",
    help="A service root, e.g. foundations=https://gp.example/A1/STU3/1/gpconnect (repeat).",
)
@click.option("--env", "environment", type=click.Choice([e.value for e in SpineEnvironment]))
@trust_option("PEM bundle or directory of CAs (repeat).", name="trust_bundle", stdin=False)
@click.option(
    "--fqdn",
    "ssp_fqdns",
    cls=AliasedOption,
    aliases=("--ssp-fqdn",),
    multiple=True,
    type=FQDN(),
    help="Accepted SSP FQDN (repeat).",
)
@click.option(
    "--expected-aud",
    "expected_aud",
    multiple=True,
    help="Accepted JWT aud: your service root URL as registered in SDS (repeat).",
)
@click.option("--revocation", type=click.Choice(_REVOCATION), help="Default hard-fail.")
@click.option("--crl", "crls", multiple=True, help="CRL file to use (repeat).")
@click.option("--ocsp-url", help="OCSP responder to use instead of the certificates' AIA.")
@click.option("--client-auth", type=click.Choice([m.value for m in ClientAuth]))
@click.option("--listen", help="ADDR:PORT (default 127.0.0.1:9000).")
@click.option("--trusted-proxy", "trusted_proxies", multiple=True, help="Proxy address (repeat).")
@click.option("--workers", type=click.IntRange(1, 1024), help="Worker processes (default 2).")
@click.option("--threads", type=click.IntRange(1, 1024), help="Threads per worker (default 8).")
def serve_cmd(
    config_file: Path | None,
    provider_asid: str | None,
    roots: tuple[str, ...],
    environment: str | None,
    trust_bundle: tuple[str, ...],
    ssp_fqdns: tuple[str, ...],
    expected_aud: tuple[str, ...],
    revocation: str | None,
    crls: tuple[str, ...],
    ocsp_url: str | None,
    client_auth: str | None,
    listen: str | None,
    trusted_proxies: tuple[str, ...],
    workers: int | None,
    threads: int | None,
) -> None:
    """Answer nginx's auth_request subrequests with the request gate.

    Listens on loopback (127.0.0.1:9000) by default and serves only the trusted proxy
    addresses. `spinepki tls config nginx --gate http://127.0.0.1:9000` writes the
    matching nginx side.
    """
    settings = load_settings(config_file) if config_file else GateSettings()
    service_roots: dict[str, list[str]] = {}
    for item in roots:
        kind, eq, url = item.partition("=")
        if not eq or kind not in {k.value for k in RootKind}:
            raise click.BadParameter(
                f"expected KIND=URL with KIND one of {', '.join(k.value for k in RootKind)}",
                param_hint="--root",
            )
        service_roots.setdefault(kind, []).append(url)
    settings = settings.merged(
        provider_asid=provider_asid,
        service_roots=service_roots,
        environment=environment,
        trust_bundle=trust_bundle,
        ssp_fqdns=ssp_fqdns,
        expected_aud=expected_aud,
        revocation=revocation,
        crls=crls,
        ocsp_url=ocsp_url,
        client_auth=client_auth,
        listen=listen,
        trusted_proxies=trusted_proxies,
        workers=workers,
        threads=threads,
    )
    config = settings.build()
    # Logging starts once the settings are known good: a refusal stays one line.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(config)
