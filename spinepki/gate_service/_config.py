"""Configuration of ``spinepki gate serve``: options or a TOML file, checked once."""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spinepki.errors import ConfigurationError
from spinepki.gate import GateConfig, RootKind
from spinepki.policy import ClientAuth
from spinepki.revocation import RevocationChecker, RevocationMode
from spinepki.serverconfig import GATE_CERT_HEADER, Listen
from spinepki.trust import TrustStore
from spinepki.validation import ClientCertValidator

__all__ = [
    "DEFAULT_LISTEN",
    "GateServiceConfig",
    "GateSettings",
    "load_settings",
]

#: Where the service listens unless told otherwise: loopback, beside nginx.
DEFAULT_LISTEN = "127.0.0.1:9000"
_ROOT_NAMES = {k.value: k for k in RootKind}


@dataclass(frozen=True, slots=True)
class GateServiceConfig:
    """A ready-to-run service: the gate's configuration plus how to serve it."""

    gate: GateConfig
    """What the gate enforces; its ``certificate_checker`` should be a ClientCertValidator."""
    listen: Listen = field(default_factory=lambda: Listen.parse(DEFAULT_LISTEN))
    """Address and port (an IP address: the service is meant for loopback or a private net)."""
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    """Peers allowed to call the service; anyone else gets 403 and is logged."""
    cert_header: str = GATE_CERT_HEADER
    """The header nginx puts ``$ssl_client_escaped_cert`` in."""
    workers: int = 2
    """gunicorn worker processes (each holds its own validator and revocation caches)."""
    threads: int = 8
    """Threads per worker (gthread worker): concurrent checks per process."""
    keepalive: int = 75
    """Seconds an idle keep-alive connection from nginx is kept (above nginx's 60 s)."""

    def __post_init__(self) -> None:
        if not isinstance(self.gate, GateConfig):
            raise ConfigurationError("gate must be a GateConfig", source="gate")
        if not self.listen.host:
            raise ConfigurationError("give the listen address explicitly", source="listen")
        if isinstance(self.trusted_proxies, str) or not self.trusted_proxies:
            raise ConfigurationError("list at least one trusted proxy", source="trusted_proxies")
        for address in self.trusted_proxies:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError as exc:
                raise ConfigurationError(str(exc), source="trusted_proxies") from None
        for name in ("workers", "threads", "keepalive"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1024:
                raise ConfigurationError("must be an integer from 1 to 1024", source=name)


@dataclass(frozen=True, slots=True)
class GateSettings:
    """The plain settings (from TOML and/or options) before anything is loaded."""

    provider_asid: str | None = None
    service_roots: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """``foundations``/``structured``/``documents``/``access-record-html`` -> roots."""
    environment: str | None = None
    """``live``, ``int`` or ``dep``: the bundled Spine CA set."""
    trust_bundle: Sequence[str] = ()
    """PEM bundles/directories instead of ``environment``."""
    ssp_fqdns: Sequence[str] = ()
    expected_aud: Sequence[str] = ()
    """The JWT ``aud`` values accepted (service root URLs); empty: not compared."""
    revocation: str = RevocationMode.HARD_FAIL.value
    crls: Sequence[str] = ()
    ocsp_url: str | None = None
    client_auth: str = ClientAuth.REQUIRE.value
    listen: str = DEFAULT_LISTEN
    trusted_proxies: Sequence[str] = ("127.0.0.1", "::1")
    workers: int = 2
    threads: int = 8

    def merged(self, **overrides: Any) -> GateSettings:
        """These settings with every non-empty override applied (options beat the file)."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name, value in overrides.items():
            if name not in values:
                raise ConfigurationError("unknown setting", source=name)
            if value is not None and value not in ((), {}):
                values[name] = value
        return GateSettings(**values)

    def build(self) -> GateServiceConfig:
        """Load trust and CRLs, build the validator, the GateConfig and the service config.

        Raises:
            ConfigurationError: a missing or unusable setting (names it).
            InputError: a CRL or bundle that does not parse.
        """
        if not self.provider_asid:
            raise ConfigurationError("the provider's ASID is required", source="provider_asid")
        if not self.ssp_fqdns:
            raise ConfigurationError(
                "list the SSP FQDN(s) to accept (no SSP name is published per environment)",
                source="ssp_fqdns",
            )
        if bool(self.environment) == bool(self.trust_bundle):
            raise ConfigurationError(
                "give exactly one of environment (live/int/dep) and trust_bundle",
                source="trust",
            )
        trust = (
            TrustStore.spine(self.environment)
            if self.environment
            else TrustStore.from_paths(*self.trust_bundle)
        )
        try:
            mode = RevocationMode(self.revocation)
        except ValueError:
            names = ", ".join(m.value for m in RevocationMode if m is not RevocationMode.DISABLED)
            raise ConfigurationError(
                f"unknown revocation mode; expected one of: {names}", source="revocation"
            ) from None
        crls = [_read(path, "crls") for path in self.crls]
        checker = RevocationChecker(mode, crls=crls, ocsp_url=self.ocsp_url)
        validator = ClientCertValidator(trust, ssp_fqdns=list(self.ssp_fqdns), revocation=checker)
        roots: dict[RootKind, tuple[str, ...]] = {}
        for name, values in self.service_roots.items():
            kind = _ROOT_NAMES.get(name)
            if kind is None:
                raise ConfigurationError(
                    f"unknown service root kind; expected one of: {', '.join(_ROOT_NAMES)}",
                    source=f"service_roots.{name}",
                )
            roots[kind] = (values,) if isinstance(values, str) else tuple(values)
        try:
            client_auth = ClientAuth(self.client_auth)
        except ValueError:
            raise ConfigurationError(
                "client_auth must be 'require' or 'http-496'", source="client_auth"
            ) from None
        gate = GateConfig(
            provider_asid=self.provider_asid,
            service_roots=roots,
            client_auth=client_auth,
            certificate_checker=validator,
            expected_aud=tuple(self.expected_aud) or None,
        )
        return GateServiceConfig(
            gate=gate,
            listen=Listen.parse(self.listen),
            trusted_proxies=tuple(self.trusted_proxies),
            workers=self.workers,
            threads=self.threads,
        )


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read: {exc.strerror or exc}", source=path) from None


_LIST_KEYS = ("trust_bundle", "ssp_fqdns", "expected_aud", "crls", "trusted_proxies")
_STR_KEYS = (
    "provider_asid",
    "environment",
    "revocation",
    "ocsp_url",
    "client_auth",
    "listen",
)


def load_settings(path: str | Path) -> GateSettings:
    """Read a TOML file of :class:`GateSettings` keys (``docs/deploy-nginx-gate.md``).

    Raises:
        ConfigurationError: unreadable, not TOML, an unknown key or a value of the wrong type.
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"not valid TOML: {exc}", source=str(path)) from None
    values: dict[str, Any] = {}
    for key, raw in data.items():
        value = raw
        if key in _STR_KEYS:
            if not isinstance(value, str):
                raise ConfigurationError("must be a string", source=key)
        elif key in _LIST_KEYS:
            items = [raw] if isinstance(raw, str) else raw
            if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
                raise ConfigurationError("must be a list of strings", source=key)
            value = tuple(items)
        elif key in ("workers", "threads"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError("must be an integer", source=key)
        elif key == "service_roots":
            if not isinstance(value, dict) or not all(
                isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
                for v in value.values()
            ):
                raise ConfigurationError(
                    "must be a table of kind = root URL (or list of them)", source=key
                )
        else:
            raise ConfigurationError("unknown key", source=key)
        values[key] = value
    return GateSettings(**values)
