"""``spinepki tls config nginx|apache|tomcat|haproxy``: the policy as server configuration."""

from __future__ import annotations

from pathlib import Path

import click

from spinepki.policy import SPINE_POLICY, SPINE_STRICT_POLICY, ClientAuth, TLSPolicy
from spinepki.serverconfig import DEFAULT_SESSION_LIFETIME, ServerKind, render_config
from spinepki.trust import SpineEnvironment, TrustStore

from ._common import fail, is_debug, library_errors

_PROFILES: dict[str, TLSPolicy] = {p.name: p for p in (SPINE_POLICY, SPINE_STRICT_POLICY)}


@click.command("config")
@click.argument("server", type=click.Choice([k.value for k in ServerKind]))
@click.option("--cert", required=True, help="The provider's certificate (PEM, with chain).")
@click.option("--key", required=True, help="Its private key (PEM).")
@click.option(
    "--trust-bundle",
    help="PEM bundle of the CAs client certificates must chain to (or use --env).",
)
@click.option(
    "--env",
    "environment",
    type=click.Choice([e.value for e in SpineEnvironment]),
    help="Use spinepki's bundled Spine CA set of this environment (written to --bundle-out).",
)
@click.option(
    "--bundle-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where --env writes the CA bundle (default: spine-ENV-ca.pem beside -o, or here).",
)
@click.option(
    "--ssp-fqdn",
    "ssp_fqdns",
    multiple=True,
    help="FQDN the SSP's client certificate carries (repeat); a verified certificate that "
    "names another is refused.",
)
@click.option(
    "--unsafe-skip-fqdn-check",
    is_flag=True,
    help="Export without the FQDN check (only when a gate behind the server checks it).",
)
@click.option(
    "--crl",
    help="PEM file of CRLs to check client chains against: the root's and every Sub CA's "
    "(spinepki pki init writes crl/crl-set.pem).",
)
@click.option("--ocsp", is_flag=True, help="Check client certificates with OCSP where possible.")
@click.option(
    "--client-auth",
    type=click.Choice([m.value for m in ClientAuth]),
    default=ClientAuth.REQUIRE.value,
    show_default=True,
    help="require: refuse without a certificate; http-496: answer HTTP 496.",
)
@click.option("--gate", "gate_url", help="URL of `spinepki gate serve` (nginx auth_request).")
@click.option(
    "--upstream", default="http://127.0.0.1:8080", show_default=True, help="The provider app."
)
@click.option("--listen", default="443", show_default=True, help="ADDR:PORT or PORT.")
@click.option("--server-name", default="_", show_default=True, help="Virtual host name.")
@click.option(
    "--session-lifetime",
    type=click.IntRange(1, 86400),
    default=DEFAULT_SESSION_LIFETIME,
    show_default=True,
    help="Seconds a TLS session may be resumed; no longer than the provider's revocation "
    "freshness bound.",
)
@click.option(
    "--profile",
    type=click.Choice(sorted(_PROFILES)),
    default=SPINE_POLICY.name,
    show_default=True,
    help="spine: the GP Connect rule; spine-strict: GCM suites only.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE."
)
@click.pass_context
def config(
    ctx: click.Context,
    server: str,
    cert: str,
    key: str,
    trust_bundle: str | None,
    environment: str | None,
    bundle_out: Path | None,
    ssp_fqdns: tuple[str, ...],
    unsafe_skip_fqdn_check: bool,
    crl: str | None,
    ocsp: bool,
    client_auth: str,
    gate_url: str | None,
    upstream: str,
    listen: str,
    server_name: str,
    session_lifetime: int,
    profile: str,
    output: Path | None,
) -> None:
    """Print SERVER's configuration for the Spine TLS policy.

    Protocol, cipher suites (in the server's own syntax), server order, client
    certificates against the Spine bundle and the SSP's FQDN (--ssp-fqdn), CRL/OCSP where
    the server supports them, a session lifetime within the revocation freshness bound,
    Cache-Control: no-store on every response (the server's own errors too) and, where
    possible, HTTP 496 without a certificate. For nginx, --gate wires in `spinepki gate
    serve` with auth_request.
    """
    if bool(trust_bundle) == bool(environment):
        fail("give exactly one of --trust-bundle and --env")
    with library_errors(is_debug(ctx)):
        if environment:
            target = bundle_out or (
                (output.parent if output else Path()) / f"spine-{environment}-ca.pem"
            )
            target.write_bytes(TrustStore.spine(environment).to_pem())
            click.echo(f"wrote the Spine {environment} CA bundle to {target}", err=True)
            trust_bundle = str(target.resolve())
        assert trust_bundle is not None
        text = render_config(
            server,
            policy=_PROFILES[profile],
            cert=cert,
            key=key,
            trust_bundle=trust_bundle,
            crl=crl,
            ocsp=ocsp,
            client_auth=ClientAuth(client_auth),
            gate_url=gate_url,
            upstream=upstream,
            listen=listen,
            server_name=server_name,
            ssp_fqdns=ssp_fqdns,
            unsafe_skip_fqdn_check=unsafe_skip_fqdn_check,
            session_lifetime=session_lifetime,
        )
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {server} configuration to {output}", err=True)
