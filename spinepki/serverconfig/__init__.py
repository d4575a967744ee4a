"""Server configuration for the Spine TLS policy: nginx, Apache httpd, Tomcat, HAProxy.

Every exporter reads the same :class:`~spinepki.policy.TLSPolicy` the library's own
contexts use (protocol range, cipher string, server order), so an exported server cannot
drift from ``spinepki.tls``:

    >>> from spinepki.serverconfig import ServerKind, render_config
    >>> text = render_config(
    ...     ServerKind.NGINX, cert="/etc/spine/provider.pem", key="/etc/spine/provider.key",
    ...     trust_bundle="/etc/spine/spine-int.pem", upstream="http://127.0.0.1:8080",
    ...     ssp_fqdns=["msg.int.spine2.ncrs.nhs.uk"],
    ... )
    >>> "ssl_protocols TLSv1.2;" in text
    True

``docs/serverconfig.md`` lists, server by server, what each setting proves and what a
server cannot do (client-certificate OCSP in HAProxy, an auth_request gate outside nginx).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

from spinepki._public import publish as _publish
from spinepki.errors import ConfigurationError
from spinepki.policy import SPINE_POLICY, ClientAuth, TLSPolicy
from spinepki.serverconfig._apache import render_apache
from spinepki.serverconfig._common import (
    DEFAULT_SESSION_LIFETIME,
    GATE_CERT_HEADER,
    GATE_DECISION_TIME_HEADER,
    GATE_METHOD_HEADER,
    GATE_STATUS_HEADER,
    GATE_URI_HEADER,
    Inputs,
    JsseSuites,
    Listen,
    ServerKind,
    crl_set_gaps,
    default_dhparam,
    jsse_cipher_suites,
    static_outcome,
)
from spinepki.serverconfig._files import (
    DHPARAM_SERVERS,
    MIN_DH_BITS,
    ServerFiles,
    check_server_files,
    dhparam_pem,
)
from spinepki.serverconfig._haproxy import render_haproxy
from spinepki.serverconfig._nginx import GATE_CHECK_LOCATION, render_nginx
from spinepki.serverconfig._tomcat import render_tomcat

__all__ = [
    "DEFAULT_SESSION_LIFETIME",
    "DHPARAM_SERVERS",
    "GATE_CERT_HEADER",
    "GATE_CHECK_LOCATION",
    "GATE_DECISION_TIME_HEADER",
    "GATE_METHOD_HEADER",
    "GATE_STATUS_HEADER",
    "GATE_URI_HEADER",
    "MIN_DH_BITS",
    "JsseSuites",
    "Listen",
    "ServerFiles",
    "ServerKind",
    "check_server_files",
    "crl_set_gaps",
    "default_dhparam",
    "dhparam_pem",
    "jsse_cipher_suites",
    "render_config",
    "static_outcome",
]

_RENDERERS = {
    ServerKind.NGINX: render_nginx,
    ServerKind.APACHE: render_apache,
    ServerKind.TOMCAT: render_tomcat,
    ServerKind.HAPROXY: render_haproxy,
}


def render_config(
    server: ServerKind | str,
    *,
    policy: TLSPolicy = SPINE_POLICY,
    cert: str | PurePath,
    key: str | PurePath,
    trust_bundle: str | PurePath,
    crl: str | PurePath | None = None,
    ocsp: bool = False,
    client_auth: ClientAuth = ClientAuth.REQUIRE,
    gate_url: str | None = None,
    upstream: str = "http://127.0.0.1:8080",
    listen: str | Listen = "443",
    server_name: str = "_",
    dhparam: str | PurePath | None = None,
    ssp_fqdns: Sequence[str] = (),
    unsafe_skip_fqdn_check: bool = False,
    session_lifetime: int = DEFAULT_SESSION_LIFETIME,
) -> str:
    """The configuration of ``server`` for ``policy``, as text.

    Args:
        server: which server (``ServerKind`` or its value, e.g. ``"nginx"``).
        policy: the TLS policy (default the GP Connect one).
        cert: the provider's certificate (PEM; with its chain for nginx/Apache/HAProxy).
        key: its private key (PEM).
        trust_bundle: PEM bundle of the CAs client certificates must chain to (the Spine
            bundle of the environment: ``TrustStore.spine("int").to_pem()``).
        crl: PEM file of CRLs to check client chains against, where the server can. The
            servers check the whole chain, so it must hold a CRL from every CA of
            ``trust_bundle`` (root and Sub CA); when both files are on this machine that is
            checked here (:func:`crl_set_gaps`).
        ocsp: check client certificates with OCSP, where the server can.
        client_auth: ``REQUIRE`` or ``HTTP_496`` (design decision 5).
        gate_url: ``http://HOST:PORT`` of ``spinepki gate serve`` (nginx ``auth_request``;
            the other servers have no equivalent and refuse it).
        upstream: the provider application, ``http(s)://HOST:PORT``.
        listen: ``ADDR:PORT`` or ``PORT`` to listen on with TLS.
        server_name: the virtual host name (``_`` for nginx's catch-all).
        dhparam: DH parameters file (default: spinepki's RFC 7919 ffdhe2048 inside the
            installed package, which moves on upgrade: write :func:`dhparam_pem` beside
            the configuration and name that copy, as ``spinepki tls config`` does).
        ssp_fqdns: the FQDN(s) the SSP's client certificate carries (subject CN); every
            export refuses a verified certificate that names another (Tomcat: see the
            comment in its output). Required unless ``unsafe_skip_fqdn_check``.
        unsafe_skip_fqdn_check: export without the FQDN check (a gate behind the server
            must then do it; spinepki's does).
        session_lifetime: seconds a TLS session may be resumed. Resumption skips the
            certificate and revocation checks, so keep it no longer than the provider's
            revocation freshness bound (default 300 s, the same).

    Raises:
        ConfigurationError: an unknown server, a path or URL that cannot be written into
            the file safely, a gate for a server that cannot call one, OCSP for a server
            that cannot check client certificates with it, no SSP FQDN, a session lifetime
            out of range, or a CRL file that lacks a CA's CRL.
        PolicyError: the policy's cipher string selects nothing on this OpenSSL.
    """
    try:
        kind = ServerKind(server)
    except ValueError:
        names = ", ".join(k.value for k in ServerKind)
        raise ConfigurationError(
            f"unknown server {server!r}; expected one of: {names}", source="server"
        ) from None
    inputs = Inputs.build(
        policy=policy,
        cert=cert,
        key=key,
        trust_bundle=trust_bundle,
        crl=crl,
        ocsp=ocsp,
        client_auth=client_auth,
        gate_url=gate_url,
        upstream=upstream,
        listen=listen,
        server_name=server_name,
        dhparam=dhparam,
        ssp_fqdns=ssp_fqdns,
        unsafe_skip_fqdn_check=unsafe_skip_fqdn_check,
        session_lifetime=session_lifetime,
    )
    if inputs.gate is not None and kind is not ServerKind.NGINX:
        raise ConfigurationError(
            f"{kind.value} has no auth_request equivalent; put the gate in the application "
            "(GateASGIMiddleware/GateWSGIMiddleware with ProxyHeaderSource) instead",
            source="gate_url",
        )
    if inputs.ocsp and kind is ServerKind.HAPROXY:
        raise ConfigurationError(
            "HAProxy cannot check client certificates with OCSP (it only staples its own); "
            "use a CRL, or the gate's revocation checking",
            source="ocsp",
        )
    return _RENDERERS[kind](inputs)


# Show each name at its public path (``<class 'spinepki.gate.RequestGate'>``), not
# the private module that implements it, as httpx does.
_publish(__name__, __all__, globals())
