"""What every server exporter shares: inputs, checked once; cipher names; static outcomes."""

from __future__ import annotations

import enum
import json
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePath
from urllib.parse import urlsplit

from spinepki._listen import Listen
from spinepki._loading import load_certificates
from spinepki.errors import ConfigurationError, SpinePKIError
from spinepki.gate import IssueType, SpineCode, render_operation_outcome
from spinepki.policy import CipherSuite, ClientAuth, TLSPolicy
from spinepki.revocation import DEFAULT_MAX_STALENESS, load_crl

__all__ = [
    "GATE_CERT_HEADER",
    "GATE_DECISION_TIME_HEADER",
    "GATE_METHOD_HEADER",
    "GATE_STATUS_HEADER",
    "GATE_URI_HEADER",
    "Endpoint",
    "Inputs",
    "JsseSuites",
    "Listen",
    "ServerKind",
    "default_dhparam",
    "jsse_cipher_suites",
    "protocol_names",
    "static_outcome",
]

#: Header names shared by the nginx export and ``spinepki gate serve``.
GATE_CERT_HEADER = "X-SSL-Client-Cert"
GATE_METHOD_HEADER = "X-Original-Method"
GATE_URI_HEADER = "X-Original-URI"
GATE_STATUS_HEADER = "X-Spinepki-Status"
GATE_DECISION_TIME_HEADER = "X-Spinepki-Decision-Time"

#: Spine paths are Root -> Sub CA -> endpoint; matches ClientCertValidator's default depth.
VERIFY_DEPTH = 3

#: Longest a TLS session (ID or ticket) of an exported server may be resumed, in seconds.
#: Resumption skips the certificate and revocation checks of a full handshake, so a
#: session must not outlive the revocation freshness bound of the checks it stands for:
#: the same number as the provider's default bound (``docs/revocation.md``).
DEFAULT_SESSION_LIFETIME = int(DEFAULT_MAX_STALENESS.total_seconds())
#: Longest session lifetime an export accepts (one day): beyond it a revoked SSP
#: certificate could be used for a day after revocation.
MAX_SESSION_LIFETIME = 86400

# A DNS name as it appears in a Spine certificate's CN: letters, digits, hyphens, dots.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_FQDN = re.compile(rf"(?=.{{1,253}}$)(?:{_LABEL}\.)*{_LABEL}")


class ServerKind(enum.Enum):
    """The servers ``render_config`` writes configuration for."""

    NGINX = "nginx"
    APACHE = "apache"
    TOMCAT = "tomcat"
    HAPROXY = "haproxy"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An HTTP(S) upstream: the provider app, or the gate service."""

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, value: str, *, what: str, http_only: bool = False) -> Endpoint:
        """``http://host:port`` (no path, query or credentials).

        Raises:
            ConfigurationError: anything else.
        """
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError as exc:
            raise ConfigurationError(f"not a usable URL: {exc}", source=what) from None
        allowed = ("http",) if http_only else ("http", "https")
        if parts.scheme not in allowed or not parts.hostname:
            raise ConfigurationError(
                f"{what} must be {' or '.join(s + '://HOST:PORT' for s in allowed)}", source=value
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ConfigurationError(
                f"{what} must have no path, query or credentials", source=value
            )
        if any(c in parts.hostname for c in " ;{}'\"\\"):
            raise ConfigurationError(f"{what} host name is not usable", source=value)
        default = 443 if parts.scheme == "https" else 80
        return cls(parts.scheme, parts.hostname, port or default)

    def hostport(self) -> str:
        """``host:port`` (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def url(self) -> str:
        """``scheme://host:port``."""
        return f"{self.scheme}://{self.hostport()}"


def _path(value: str | PurePath, what: str) -> str:
    text = str(value)
    # The path goes verbatim into a configuration file: refuse what would break out of a
    # quoted token in any of the four syntaxes (quotes, semicolons, braces, newlines, <>).
    if not text or any(c in text for c in "\"';{}<>\n\r\t\\$`") or not text.isprintable():
        raise ConfigurationError(
            "path must be non-empty and free of quotes, ';', braces, '$', '<>' and control "
            "characters",
            source=what,
        )
    return text


def default_dhparam() -> str:
    """The RFC 7919 ffdhe2048 group that ships with spinepki (the DHE suites need it)."""
    return str(resources.files("spinepki.data").joinpath("ffdhe2048.pem"))


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything an exporter needs, checked once (paths quoted-safe, URLs parsed)."""

    policy: TLSPolicy
    cert: str
    key: str
    trust_bundle: str
    crl: str | None
    ocsp: bool
    client_auth: ClientAuth
    gate: Endpoint | None
    upstream: Endpoint
    listen: Listen
    server_name: str
    dhparam: str
    ssp_fqdns: tuple[str, ...]
    """Lower-case FQDNs the client certificate's subject CN must be one of; empty only
    with ``unsafe_skip_fqdn_check``."""
    session_lifetime: int
    """Seconds a TLS session may be resumed (session IDs and tickets)."""

    @classmethod
    def build(
        cls,
        *,
        policy: TLSPolicy,
        cert: str | PurePath,
        key: str | PurePath,
        trust_bundle: str | PurePath,
        crl: str | PurePath | None,
        ocsp: bool,
        client_auth: ClientAuth,
        gate_url: str | None,
        upstream: str,
        listen: str | Listen,
        server_name: str,
        dhparam: str | PurePath | None,
        ssp_fqdns: Sequence[str] = (),
        unsafe_skip_fqdn_check: bool = False,
        session_lifetime: int = DEFAULT_SESSION_LIFETIME,
    ) -> Inputs:
        if not isinstance(policy, TLSPolicy):
            raise ConfigurationError("policy must be a TLSPolicy", source="policy")
        if not isinstance(client_auth, ClientAuth):
            raise ConfigurationError("must be a ClientAuth member", source="client_auth")
        if not server_name or not all(c.isalnum() or c in "-._*" for c in server_name):
            raise ConfigurationError("server name must be a host name or '_'", source=server_name)
        crl_path = _path(crl, "crl") if crl is not None else None
        bundle_path = _path(trust_bundle, "trust_bundle")
        if crl_path is not None and Path(crl_path).is_file() and Path(bundle_path).is_file():
            gaps = crl_set_gaps(crl_path, bundle_path)
            if gaps:
                raise ConfigurationError(
                    "the CRL file lacks the CRL of " + "; ".join(gaps) + ": the server checks "
                    "the whole client chain, so it would refuse every client. Give the "
                    "complete set (root and Sub CA CRLs in one PEM file)",
                    source=crl_path,
                )
        return cls(
            policy=policy,
            cert=_path(cert, "cert"),
            key=_path(key, "key"),
            trust_bundle=bundle_path,
            crl=crl_path,
            ocsp=bool(ocsp),
            client_auth=client_auth,
            gate=Endpoint.parse(gate_url, what="gate", http_only=True) if gate_url else None,
            upstream=Endpoint.parse(upstream, what="upstream"),
            listen=listen if isinstance(listen, Listen) else Listen.parse(listen),
            server_name=server_name,
            dhparam=_path(dhparam if dhparam is not None else default_dhparam(), "dhparam"),
            ssp_fqdns=_fqdns(ssp_fqdns, unsafe_skip_fqdn_check),
            session_lifetime=_lifetime(session_lifetime),
        )


def _fqdns(values: Sequence[str], unsafe_skip: bool) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    names: list[str] = []
    for value in values:
        name = value.strip().rstrip(".").lower() if isinstance(value, str) else ""
        # Only plain DNS names: the names go into a regex (nginx), an expression (Apache)
        # and an ACL (HAProxy); nothing else may reach them, and a wildcard is not a
        # Spine certificate name.
        if not _FQDN.fullmatch(name):
            raise ConfigurationError(
                "not a DNS name (letters, digits, '-', '.')", source=str(value)
            )
        if name not in names:
            names.append(name)
    if not names and not unsafe_skip:
        raise ConfigurationError(
            "list the SSP FQDN(s) its client certificate carries (--fqdn): without them "
            "the server accepts any certificate the Spine CAs issued. Skip the check "
            "(unsafe_skip_fqdn_check, --unsafe-skip-fqdn-check) only when a gate behind the "
            "server checks the FQDN",
            source="ssp_fqdns",
        )
    return tuple(names)


def _lifetime(value: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (0 < value <= MAX_SESSION_LIFETIME)
    ):
        raise ConfigurationError(
            f"must be a whole number of seconds from 1 to {MAX_SESSION_LIFETIME}",
            source="session_lifetime",
        )
    return value


def protocol_names(policy: TLSPolicy) -> list[str]:
    """``["TLSv1.2"]`` style names of every version the policy allows, lowest first."""
    names = []
    for version in (
        ssl.TLSVersion.TLSv1,
        ssl.TLSVersion.TLSv1_1,
        ssl.TLSVersion.TLSv1_2,
        ssl.TLSVersion.TLSv1_3,
    ):
        if policy.minimum_version <= version <= policy.maximum_version:
            names.append("TLSv1" if version is ssl.TLSVersion.TLSv1 else f"TLSv{version.name[4:]}")
    return [n.replace("_", ".") for n in names]


# IANA TLS Cipher Suite registry names (what JSSE calls the suites) by code point, for the
# suites an "AES/ECDHE/DHE" string can select on OpenSSL 3.
_IANA: dict[int, str] = {
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0x00A3: "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384",
    0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0x00A2: "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC0AD: "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
    0xC0AF: "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8",
    0xC0AC: "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
    0xC0AE: "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
    0xC09F: "TLS_DHE_RSA_WITH_AES_256_CCM",
    0xC0A3: "TLS_DHE_RSA_WITH_AES_256_CCM_8",
    0xC09E: "TLS_DHE_RSA_WITH_AES_128_CCM",
    0xC0A2: "TLS_DHE_RSA_WITH_AES_128_CCM_8",
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0x006B: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
    0x006A: "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256",
    0x0067: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
    0x0040: "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256",
    0x0039: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    0x0038: "TLS_DHE_DSS_WITH_AES_256_CBC_SHA",
    0x0033: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    0x0032: "TLS_DHE_DSS_WITH_AES_128_CBC_SHA",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}

# SunJSSE (OpenJDK 17, measured with SSLContext.getSupportedSSLParameters()) implements
# every suite above except AES-CCM: it has the DHE-DSS suites, but no CCM suite at all.
_JSSE_MISSING = frozenset(cp for cp, name in _IANA.items() if "_CCM" in name)


@dataclass(frozen=True, slots=True)
class JsseSuites:
    """The policy's suites in JSSE (IANA) names, in preference order, and what was dropped."""

    names: tuple[str, ...]
    """IANA names JSSE implements, in the policy's preference order."""
    dropped: tuple[tuple[str, str], ...]
    """(OpenSSL name, reason) for each suite left out."""


def jsse_cipher_suites(policy: TLSPolicy) -> JsseSuites:
    """Map ``policy.suites()`` (by IANA code point) to the names Tomcat/JSSE accepts.

    Suites JSSE does not implement (AES-CCM) or that are not in spinepki's IANA table are
    dropped, and listed in ``dropped`` so the export can say so.

    Raises:
        PolicyError: the policy's string selects nothing on this OpenSSL.
    """
    names: list[str] = []
    dropped: list[tuple[str, str]] = []
    for suite in policy.suites():
        iana = _IANA.get(suite.code_point)
        if iana is None:
            dropped.append((suite.name, f"code point 0x{suite.code_point:04X} not mapped"))
        elif suite.code_point in _JSSE_MISSING:
            dropped.append((suite.name, f"{iana}: JSSE has no AES-CCM suites"))
        else:
            names.append(iana)
    return JsseSuites(tuple(names), tuple(dropped))


def suites_comment(suites: tuple[CipherSuite, ...], prefix: str) -> list[str]:
    """Comment lines listing the expansion, for the reader of the exported file."""
    lines = [f"{prefix}expands on {ssl.OPENSSL_VERSION} to {len(suites)} TLS 1.2 suites:"]
    lines.extend(f"{prefix}  {i:>2}. {s.name}" for i, s in enumerate(suites, start=1))
    return lines


def static_outcome(status: int, diagnostics: str | None = None) -> str:
    """The OperationOutcome a server returns itself, as compact JSON.

    Same shape as the gate's [ERR]: one issue, severity error, one coding. 495 and
    496 carry ``ACCESS_DENIED_SSL``; any other 4xx ``BAD_REQUEST`` (the server refused the
    request before any gate saw it); 5xx ``INTERNAL_SERVER_ERROR``.

    Args:
        status: the HTTP status the server answers.
        diagnostics: the diagnostics text (a fixed default per status otherwise).

    Raises:
        ConfigurationError: a status below 400 or above 599.
    """
    if status in (495, 496):
        text = diagnostics or (
            "a client certificate is required"
            if status == 496
            else "the client certificate is not acceptable (TLS verification failed)"
        )
        return render_operation_outcome(
            spine_code=SpineCode.ACCESS_DENIED_SSL, issue_code=IssueType.SECURITY, diagnostics=text
        ).decode("ascii")
    if 400 <= status < 500:
        return render_operation_outcome(
            spine_code=SpineCode.BAD_REQUEST,
            issue_code=IssueType.INVALID,
            diagnostics=diagnostics or f"the request was refused by the TLS edge (HTTP {status})",
        ).decode("ascii")
    if not 500 <= status < 600:
        raise ConfigurationError("no static outcome for this status", source=str(status))
    # Spine's INTERNAL_SERVER_ERROR row [ERR]; spinepki's gate never produces it, so
    # it is rendered here in the same shape.
    outcome = {
        "resourceType": "OperationOutcome",
        "meta": {
            "profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1"]
        },
        "issue": [
            {
                "severity": "error",
                "code": "processing",
                "details": {
                    "coding": [
                        {
                            "system": "https://fhir.nhs.uk/STU3/ValueSet/Spine-ErrorOrWarningCode-1",
                            "code": "INTERNAL_SERVER_ERROR",
                            "display": "Internal Server Error",
                        }
                    ]
                },
                "diagnostics": diagnostics
                or "the security edge of the provider could not complete the request",
            }
        ],
    }
    return json.dumps(outcome, separators=(",", ":"))


#: The diagnostics of a 495 for a verified certificate that names no accepted SSP FQDN.
FQDN_REFUSED = "the client certificate does not name an accepted SSP FQDN"


_CRL_BLOCK = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)
# Reading the files is configuration-time work; a CRL file larger than this is not a CRL
# set a web server should be loading either.
_MAX_CRL_FILE = 256 * 1024 * 1024


def crl_set_gaps(crl_file: str | PurePath, trust_bundle: str | PurePath) -> tuple[str, ...]:
    """The CAs of ``trust_bundle`` that have no CRL (issued and signed by them) in
    ``crl_file``, as RFC 4514 subject strings; empty when the set is complete.

    nginx, Apache (``SSLCARevocationCheck chain``) and HAProxy check every certificate of
    the client's chain against the CRL file: a CA without its CRL there fails *every*
    handshake ("unable to get certificate CRL"). So the file must hold the Sub CA's CRL
    (for the SSP certificate) and the root's (for the Sub CA) — ``spinepki pki init``
    writes them together as ``crl/crl-set.pem``.

    Raises:
        ConfigurationError: a file that cannot be read, holds no PEM CRL, or a CRL or
            certificate that does not parse.
    """
    try:
        crl_bytes = Path(crl_file).read_bytes()[:_MAX_CRL_FILE]
        bundle = Path(trust_bundle).read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read: {exc.strerror or exc}", source=str(exc.filename)
        ) from None
    blocks = _CRL_BLOCK.findall(crl_bytes)
    if not blocks:
        raise ConfigurationError(
            "holds no PEM CRL (-----BEGIN X509 CRL-----)", source=str(crl_file)
        )
    try:
        crls = [load_crl(block, source=str(crl_file)) for block in blocks]
        cas = load_certificates(bundle, source=str(trust_bundle))
    except SpinePKIError as exc:
        raise ConfigurationError(str(exc), source=str(crl_file)) from None
    gaps: list[str] = []
    for ca in cas:
        key = ca.public_key()
        if not any(
            crl.issuer == ca.subject and crl.is_signature_valid(key)  # type: ignore[arg-type]
            for crl in crls
        ):
            gaps.append(ca.subject.rfc4514_string())
    return tuple(gaps)


def exists_note(path: str) -> str:
    """A warning comment when a referenced file is not on this machine (config still written)."""
    return "" if Path(path).exists() else "  (not found on this machine)"
