"""``spinepki tls …``: the Spine TLS policy as this machine's OpenSSL applies it."""

from __future__ import annotations

import ssl

import click

from spinepki.policy import SPINE_POLICY, SPINE_STRICT_POLICY, TLSPolicy

from ._common import emit_json, group, json_option
from .tls_config import config as config_command
from .tls_scan import scan

_PROFILES: dict[str, TLSPolicy] = {p.name: p for p in (SPINE_POLICY, SPINE_STRICT_POLICY)}


@group()
def tls() -> None:
    """The Spine TLS policy: show it, check endpoints against it, export it."""


def _policy_dict(policy: TLSPolicy) -> dict[str, object]:
    return {
        "profile": policy.name,
        "openssl": ssl.OPENSSL_VERSION,
        "protocols": {
            "minimum": policy.minimum_version.name,
            "maximum": policy.maximum_version.name,
        },
        "cipher_string": policy.cipher_string,
        "honour_server_order": policy.honour_server_order,
        "client_certificate_required": policy.client_certificate_required,
        "suites": [
            {
                "preference": i,
                "name": s.name,
                "code_point": f"0x{s.code_point:04X}",
                "key_exchange": s.key_exchange,
                "server_key": s.authentication,
                "needs_dh_params": s.needs_dh_params,
                "aead": s.aead,
                "sha1_mac": s.sha1_mac,
                "weaker": s.weaker,
            }
            for i, s in enumerate(policy.suites(), start=1)
        ],
    }


@tls.command()
@click.option(
    "--profile",
    type=click.Choice(sorted(_PROFILES)),
    default=SPINE_POLICY.name,
    show_default=True,
    help="spine: the GP Connect rule; spine-strict: GCM suites only.",
)
@json_option("Print the policy as JSON.")
def show(profile: str, as_json: bool) -> None:
    """Print the policy and the exact suites its cipher string selects on this OpenSSL.

    Suites are listed in server preference order. "DHE" suites need DH parameters
    (server_context loads RFC 7919 ffdhe2048); "ECDSA"/"DSS" suites need a server key
    of that type; CBC and SHA-1-MAC suites are allowed by the GP Connect string but
    flagged as weaker.
    """
    policy = _PROFILES[profile]
    suites = policy.suites()
    if as_json:
        emit_json(_policy_dict(policy))
        return
    click.echo(f"Policy {profile!r} on {ssl.OPENSSL_VERSION}")
    click.echo(f"  protocols        {policy.minimum_version.name} .. {policy.maximum_version.name}")
    click.echo(f"  cipher string    {policy.cipher_string}")
    click.echo(f"  server order     {'honoured' if policy.honour_server_order else 'client wins'}")
    click.echo("  client cert      required (missing: handshake failure, or HTTP 496 mode)")
    click.echo(f"  {len(suites)} TLS 1.2 suites, in server preference order:")
    for i, suite in enumerate(suites, start=1):
        notes = []
        if suite.needs_dh_params:
            notes.append("needs DH params")
        if suite.authentication != "RSA":
            notes.append(f"needs a server key of type {suite.authentication}")
        if not suite.aead:
            notes.append("CBC (weaker)")
        if suite.sha1_mac:
            notes.append("SHA-1 MAC (weaker)")
        click.echo(f"  {i:>3}. {suite.name:<32} 0x{suite.code_point:04X}  {', '.join(notes)}")


tls.add_command(scan)
tls.add_command(config_command)
