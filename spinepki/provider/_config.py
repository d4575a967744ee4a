"""The reference provider's configuration: a TOML file read into frozen dataclasses.

Every key is checked once, when the file is read; a bad or unknown key raises
:class:`ProviderConfigError` naming it (``tls.certificate``, ``limits.max_connections``),
so ``spinepki serve`` can print one line and exit 2 instead of failing at the first
request. ``docs/provider.md`` documents every key; :func:`example_config` (``spinepki
serve --example-config``) is a complete, commented example shipped in the package.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from spinepki._listen import check_host_port
from spinepki._toml import Table, read_toml
from spinepki.errors import ProviderConfigError
from spinepki.gate import RootKind
from spinepki.policy import ClientAuth
from spinepki.revocation import DEFAULT_MAX_STALENESS, RevocationMode
from spinepki.trust import SpineEnvironment

__all__ = [
    "DEFAULT_APP",
    "ProviderConfig",
    "ProviderConfigError",
    "ProviderLimits",
    "example_config",
    "load_config",
]

#: Largest ``validation.max_staleness`` accepted (seconds): a day. A longer bound would
#: leave a revoked SSP certificate in use for longer than any CA's CRL cycle.
MAX_STALENESS_LIMIT = 86400.0
#: The built-in FHIR demo application (``module:attribute``).
DEFAULT_APP = "spinepki.provider:demo_app"
_APP_SPEC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    """Connection-level bounds: what one slow or silent client may cost the server.

    The defaults are sized for one SSP (a handful of keep-alive connections) with a wide
    margin; ``docs/provider.md`` explains each one.
    """

    max_connections: int = 512
    """Concurrent connections, counted from accept (so handshakes count). A connection
    over the cap is closed at once, before any TLS work."""
    max_connections_per_source: int = 128
    """Concurrent connections from one source address (an IPv6 client counts by its /64).
    Over it a new connection from that source is closed at once, before any TLS work, so
    one address cannot fill ``max_connections`` and lock the SSP out. A value above
    ``max_connections`` means ``max_connections``."""
    handshake_timeout: float = 5.0
    """Seconds from accept to a completed TLS handshake."""
    header_timeout: float = 10.0
    """Seconds from the handshake (or the end of the previous response) until a request's
    headers are complete. Also the keep-alive idle limit: a trickling client is cut here
    however many bytes it sends."""
    read_timeout: float = 30.0
    """Seconds any single read may wait once a request has started (body uploads)."""
    body_timeout: float = 15.0
    """Seconds from the end of a request's head until its whole body has arrived; a body
    still incomplete then closes the connection. Only an accepted request's body is read:
    the gate decides on the certificate, headers and token first."""
    max_header_bytes: int = 16384
    """Largest request line plus headers; more is answered 431 and the connection closed."""
    max_body_bytes: int = 1024 * 1024
    """Largest request body the gate buffers (also the gate's own limit)."""
    keep_alive_max_requests: int = 1000
    """Requests served on one connection before it is closed."""
    backlog: int = 128
    """The listen() queue length."""
    graceful_timeout: float = 3.0
    """Seconds in-flight requests get to finish when the server stops."""

    _INTS: ClassVar[tuple[str, ...]] = (
        "max_connections",
        "max_connections_per_source",
        "max_header_bytes",
        "max_body_bytes",
        "keep_alive_max_requests",
        "backlog",
    )

    def __post_init__(self) -> None:
        for name in self._INTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ProviderConfigError(
                    f"limits.{name}", f"must be a positive integer, got {value!r}"
                )
        for name in (
            "handshake_timeout",
            "header_timeout",
            "read_timeout",
            "body_timeout",
            "graceful_timeout",
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ProviderConfigError(
                    f"limits.{name}", f"must be a positive number of seconds, got {value!r}"
                )
        if self.max_header_bytes < 1024:
            # Below this even the five SSP headers and a real token do not fit.
            raise ProviderConfigError("limits.max_header_bytes", "must be at least 1024")


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """Everything ``spinepki serve`` needs; built by :func:`load_config` or directly.

    Raises:
        ProviderConfigError: a value that cannot work, naming its key.
    """

    asid: str
    """The provider's ASID; ``Ssp-To`` must equal it."""
    service_roots: Mapping[RootKind, tuple[str, ...]]
    """Service root URLs (or paths) per kind."""
    certificate: Path
    """The provider's certificate (PEM, optionally followed by its chain)."""
    key: Path
    """Its private key (PEM)."""
    ssp_fqdns: tuple[str, ...]
    """FQDNs the SSP's client certificate may carry."""
    trust: SpineEnvironment | None = None
    """The bundled public Spine CA set, or None when ``trust_files`` is used."""
    trust_files: tuple[Path, ...] = ()
    """PEM bundles / directories of CA certificates (instead of ``trust``)."""
    key_password_env: str | None = None
    """Name of the environment variable holding the key's password (never the password)."""
    revocation: RevocationMode = RevocationMode.HARD_FAIL
    """How revocation is checked (``hard-fail`` by default)."""
    client_auth: ClientAuth = ClientAuth.REQUIRE
    """``require`` (handshake fails without a certificate) or ``http-496``."""
    app: str = DEFAULT_APP
    """The upstream ASGI application, ``module:attribute``."""
    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 8443
    """Port to listen on (0: any free port)."""
    limits: ProviderLimits = field(default_factory=ProviderLimits)
    """Connection-level limits."""
    max_staleness: float = DEFAULT_MAX_STALENESS.total_seconds()
    """Seconds: the worst case from the CA publishing a revocation (while its
    distribution point answers) to the certificate being refused. No fetched CRL or OCSP
    answer is relied on longer, no validation result is reused longer, and the TLS
    context is renewed this often, so no TLS session resumes past it."""
    expected_aud: tuple[str, ...] = ()
    """The JWT ``aud`` values accepted: your service root URL(s) as registered in SDS.
    Empty: ``aud`` is not compared (what the assurance pack's default configuration needs)."""

    def __post_init__(self) -> None:
        if not isinstance(self.asid, str) or not self.asid.isascii() or not self.asid.isalnum():
            raise ProviderConfigError(
                "provider.asid", "must be a non-empty alphanumeric string (the ASID)"
            )
        if not self.service_roots:
            raise ProviderConfigError("provider.service_roots", "at least one root is required")
        if not self.ssp_fqdns:
            raise ProviderConfigError("validation.ssp_fqdns", "at least one SSP FQDN is required")
        if (self.trust is None) == (not self.trust_files):
            raise ProviderConfigError(
                "tls.trust", "give exactly one of tls.trust (live|int|dep) or tls.trust_files"
            )
        if self.key_password_env is not None and not _ENV_NAME.fullmatch(self.key_password_env):
            raise ProviderConfigError(
                "tls.key_password_env", "must be an environment variable name"
            )
        if not _APP_SPEC.fullmatch(self.app):
            raise ProviderConfigError("provider.app", "must be 'module:attribute'")
        check_host_port(self.host, self.port, section="provider", error=ProviderConfigError)
        if (
            isinstance(self.max_staleness, bool)
            or not isinstance(self.max_staleness, int | float)
            or not math.isfinite(self.max_staleness)
            or not 0 < self.max_staleness <= MAX_STALENESS_LIMIT
        ):
            raise ProviderConfigError(
                "validation.max_staleness",
                f"must be a number of seconds above 0 and at most {MAX_STALENESS_LIMIT:g}",
            )

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, base_dir: Path | None = None
    ) -> ProviderConfig:
        """Build a configuration from parsed TOML; relative paths are resolved against
        ``base_dir`` (the config file's directory).

        Raises:
            ProviderConfigError: a missing, unknown or invalid key.
        """
        base = base_dir or Path.cwd()
        top = Table(data, "")
        provider = top.table("provider")
        tls = top.table("tls")
        validation = top.table("validation")
        limits_table = top.table("limits", required=False)
        top.done()

        roots = provider.table("service_roots").keyed_by(RootKind, Table.strings, what="root kind")

        asid = provider.string("asid")
        client_auth = provider.enum("client_auth", ClientAuth, ClientAuth.REQUIRE)
        app = provider.string("app", DEFAULT_APP)
        host = provider.string("host", "127.0.0.1")
        port = provider.integer("port", 8443)
        expected_aud = provider.strings("expected_aud", required=False)
        provider.done()

        certificate = base / tls.string("certificate")
        key = base / tls.string("key")
        password_env = tls.optional_string("key_password_env")
        trust = tls.enum("trust", SpineEnvironment, None)
        trust_files = tuple(base / p for p in tls.strings("trust_files", required=False))
        tls.done()

        fqdns = validation.strings("ssp_fqdns")
        max_staleness = validation.number("max_staleness", DEFAULT_MAX_STALENESS.total_seconds())
        revocation = validation.enum("revocation", RevocationMode, RevocationMode.HARD_FAIL)
        if revocation is RevocationMode.DISABLED:
            # The library allows it behind an unsafe_ flag; a config file never does.
            raise ProviderConfigError(
                "validation.revocation", "'disabled' is not allowed in a configuration file"
            )
        if revocation is RevocationMode.OFFLINE:
            # OFFLINE uses only evidence handed to the checker in code; from a file there
            # is none, so every certificate would be refused as "unknown".
            raise ProviderConfigError(
                "validation.revocation",
                "'offline' needs CRLs supplied in code (spinepki.provider.create_server"
                "(revocation=...)); a configuration file cannot supply them",
            )
        validation.done()

        limits = ProviderLimits()
        if limits_table is not None:
            values: dict[str, Any] = {}
            for name in list(limits_table.remaining()):
                if name not in ProviderLimits.__dataclass_fields__ or name.startswith("_"):
                    raise ProviderConfigError(f"limits.{name}", "unknown key")
                values[name] = limits_table.take(name)
            limits = ProviderLimits(**values)

        return cls(
            asid=asid,
            service_roots=roots,
            certificate=certificate,
            key=key,
            ssp_fqdns=fqdns,
            trust=trust,
            trust_files=trust_files,
            key_password_env=password_env,
            revocation=revocation,
            client_auth=client_auth,
            app=app,
            host=host,
            port=port,
            limits=limits,
            max_staleness=max_staleness,
            expected_aud=expected_aud,
        )


def example_config() -> str:
    """The commented example configuration shipped with spinepki (every key, its default).

    Save it next to your certificates (``spinepki serve --example-config >
    provider.toml``) and edit it: its paths (``certs/provider.chain.pem``…) are relative
    to the file's directory and follow ``spinepki pki init``'s layout.
    """
    return resources.files("spinepki.provider").joinpath("example.toml").read_text("utf-8")


def load_config(path: str | Path) -> ProviderConfig:
    """Read a provider configuration file (TOML).

    Raises:
        ProviderConfigError: the file cannot be read or parsed, or a key is wrong (the
            error's ``key`` names it; ``file`` for an unreadable or non-TOML file).
    """
    file = Path(path)
    data = read_toml(file)
    return ProviderConfig.from_mapping(data, base_dir=file.resolve().parent)
