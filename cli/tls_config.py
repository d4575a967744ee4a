"""``spinepki tls config nginx|apache|tomcat|haproxy``: the policy as server configuration.

The files the configuration names are opened and checked first (a server would only
find a wrong one when it starts or reloads), every path is written absolute, and the DH
parameters are written beside the configuration rather than pointed at inside the
installed package.
"""

from __future__ import annotations

from pathlib import Path

import click

from spinepki.errors import ConfigurationError
from spinepki.policy import SPINE_POLICY, SPINE_STRICT_POLICY, ClientAuth, TLSPolicy
from spinepki.serverconfig import (
    DEFAULT_SESSION_LIFETIME,
    DHPARAM_SERVERS,
    ServerKind,
    check_server_files,
    dhparam_pem,
    render_config,
)
from spinepki.trust import SpineEnvironment, TrustStore

from ._common import (
    FQDN,
    IO,
    CommandError,
    command,
    note,
    password_from_env,
    trust_option,
    write_output,
)

_PROFILES: dict[str, TLSPolicy] = {p.name: p for p in (SPINE_POLICY, SPINE_STRICT_POLICY)}
_DHPARAM_NAME = "ffdhe2048.pem"


def _unchecked(paths: dict[str, str | None]) -> dict[str, Path | None]:
    """``--no-check-files``: the paths as given, which must then be absolute."""
    out: dict[str, Path | None] = {}
    for name, value in paths.items():
        if value is None:
            out[name] = None
            continue
        if not Path(value).is_absolute():
            raise ConfigurationError(
                "with --no-check-files every path must be absolute (the server resolves a "
                "relative one against its own directory)",
                source=value,
            )
        out[name] = Path(value)
    return out


@command("config")
@click.argument("server", type=click.Choice([k.value for k in ServerKind]))
@click.option("--cert", required=True, help="The provider's certificate (PEM, with chain).")
@click.option("--key", required=True, help="Its private key (PEM, unencrypted).")
@trust_option(
    "PEM bundle of the CAs client certificates must chain to (or use --env).",
    name="trust_bundle",
    multiple=False,
    stdin=False,
)
@click.option(
    "--env",
    "environment",
    type=click.Choice([e.value for e in SpineEnvironment]),
    help="Use spinepki's bundled Spine CA set of this environment (written to --bundle-out).",
)
@click.option(
    "--bundle-out",
    type=click.Path(path_type=Path),
    help="Where --env writes the CA bundle (default: spine-ENV-ca.pem beside -o, or here).",
)
@click.option(
    "--fqdn",
    "ssp_fqdns",
    multiple=True,
    type=FQDN(),
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
    "--dhparam",
    help=f"DH parameters file (PEM, >= 2048 bits). Default: spinepki's RFC 7919 group, "
    f"written to {_DHPARAM_NAME} beside -o (or here).",
)
@click.option(
    "--password-env",
    metavar="VAR",
    help="Environment variable holding the key password (only to check the key).",
)
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
    "--no-check-files",
    is_flag=True,
    help="Do not open the files (they exist only on the target server); paths must be absolute.",
)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to FILE.")
def config(
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
    dhparam: str | None,
    password_env: str | None,
    client_auth: str,
    gate_url: str | None,
    upstream: str,
    listen: str,
    server_name: str,
    session_lifetime: int,
    profile: str,
    no_check_files: bool,
    output: Path | None,
) -> None:
    """Print SERVER's configuration for the Spine TLS policy.

    Protocol, cipher suites (in the server's own syntax), server order, client
    certificates against the Spine bundle and the SSP's FQDN (--fqdn), CRL/OCSP where the
    server supports them, a session lifetime within the revocation freshness bound,
    Cache-Control: no-store on every response (the server's own errors too) and, where
    possible, HTTP 496 without a certificate. For nginx, --gate wires in `spinepki gate
    serve` with auth_request.

    The certificate, key, trust bundle, CRL and DH parameters are opened and checked
    first (PEM, key matches certificate, certificate valid for serverAuth, bundle of
    CAs), and every path is written absolute. The output is a configuration file, not
    data, so there is no --json.
    """
    if bool(trust_bundle) == bool(environment):
        raise click.UsageError("give exactly one of --trust and --env")
    kind = ServerKind(server)
    here = output.absolute().parent if output else Path.cwd()
    if not here.is_dir():
        raise CommandError(f"{output}: cannot write: {here} is not a directory", code=IO)
    # Files spinepki writes beside the configuration (absolute paths, known up front).
    bundle_target = (bundle_out or here / f"spine-{environment}-ca.pem") if environment else None
    dh_target = None if dhparam or kind not in DHPARAM_SERVERS else here / _DHPARAM_NAME
    named: dict[str, str | None] = {
        "cert": cert,
        "key": key,
        "trust_bundle": None if environment else trust_bundle,
        "crl": crl,
        "dhparam": dhparam,
    }
    if no_check_files:
        paths = _unchecked(named)
    else:
        files = check_server_files(
            cert=cert,
            key=key,
            trust_bundle=None if environment else trust_bundle,
            crl=crl,
            dhparam=dhparam,
            password=password_from_env(password_env),
            policy=_PROFILES[profile],
        )
        paths = {
            "cert": files.cert,
            "key": files.key,
            "trust_bundle": files.trust_bundle,
            "crl": files.crl,
            "dhparam": files.dhparam,
        }
    trust_path = bundle_target.absolute() if bundle_target else paths["trust_bundle"]
    dh_path = dh_target.absolute() if dh_target else paths["dhparam"]
    assert trust_path is not None
    # Rendered before anything is written: a refused option leaves no stray files.
    text = render_config(
        kind,
        policy=_PROFILES[profile],
        cert=paths["cert"] or cert,
        key=paths["key"] or key,
        trust_bundle=trust_path,
        crl=paths["crl"],
        ocsp=ocsp,
        client_auth=ClientAuth(client_auth),
        gate_url=gate_url,
        upstream=upstream,
        listen=listen,
        server_name=server_name,
        dhparam=dh_path,
        ssp_fqdns=ssp_fqdns,
        unsafe_skip_fqdn_check=unsafe_skip_fqdn_check,
        session_lifetime=session_lifetime,
    )
    if bundle_target is not None and environment is not None:
        write_output(bundle_target, TrustStore.spine(environment).to_pem())
        note(f"wrote the Spine {environment} CA bundle to {bundle_target}")
    if dh_target is not None:
        write_output(dh_target, dhparam_pem())
        note(f"wrote the RFC 7919 ffdhe2048 DH parameters to {dh_target}")
    if output is None:
        click.echo(text, nl=False)
    else:
        write_output(output, text)
        note(f"wrote {server} configuration to {output}")
