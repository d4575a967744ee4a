"""The SSP simulator's configuration: its own TLS identity plus a small directory.

The directory is what Spine Directory Services (SDS) feeds the real SSP: the accredited
systems by ASID, their organisation (ODS code), their endpoint FQDN, a provider's
service root URLs (``nhsMhsEndPoint``) and the interactions each ASID may send or
receive. It is read from TOML once, into frozen dataclasses; a bad or unknown key raises
:class:`SSPConfigError` naming it (``directory.consumers[1].interactions[0]``), so
``spinepki ssp serve`` prints one line and exits 2 instead of failing at a request.
``docs/ssp.md`` documents every key.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from spinepki._listen import check_host_port
from spinepki._toml import Table, read_toml
from spinepki.errors import ProviderConfigError, SSPConfigError
from spinepki.gate import Catalogue, RootKind
from spinepki.provider import ProviderLimits
from spinepki.revocation import RevocationMode
from spinepki.trust import SpineEnvironment

__all__ = [
    "ConsumerSystem",
    "Directory",
    "ForwardingLimits",
    "ProviderSystem",
    "SSPConfig",
    "SSPConfigError",
    "load_config",
    "load_directory",
]

#: Largest configuration file read (a directory of thousands of systems is ~1 MB).
MAX_CONFIG_BYTES = 4 * 1024 * 1024
#: Most consumers, and most providers, in one directory.
MAX_SYSTEMS = 10_000
#: Most interactions (or groups) listed for one system.
MAX_INTERACTIONS = 256
#: Most service roots of one kind for one provider.
MAX_ROOTS = 16
#: Longest service root URL.
MAX_URL = 2048
#: The methods the SSP forwards at go-live (GET, POST, PUT); DELETE, PATCH and OPTIONS
#: were announced for later [SSPIG-07 "Functional Requirements"].
DEFAULT_METHODS = frozenset({"GET", "POST", "PUT"})
_ALL_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"})

#: ASIDs are numeric in every published example (12 digits); no length rule is
#: published, so any short alphanumeric string is accepted, as the provider does.
ASID = re.compile(r"[A-Za-z0-9]{1,32}")
_ODS = re.compile(r"[A-Za-z0-9]{1,16}")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_FQDN = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")


@contextmanager
def _under(prefix: str) -> Iterator[None]:
    """Re-raise a nested entry's error with its full dotted key."""
    try:
        yield
    except SSPConfigError as exc:
        raise SSPConfigError(f"{prefix}.{exc.key}", exc.reason) from None
    except ProviderConfigError as exc:  # ProviderLimits validates its own fields
        raise SSPConfigError(f"{prefix}.{exc.key.removeprefix('limits.')}", exc.reason) from None


def _fqdn(value: object, key: str) -> str:
    if not isinstance(value, str) or not _FQDN.fullmatch(value.lower().rstrip(".")):
        raise SSPConfigError(key, f"must be a host name (FQDN), got {value!r}")
    return value.lower().rstrip(".")


def _identifier(value: object, pattern: re.Pattern[str], key: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise SSPConfigError(key, f"must be {what}, got {value!r}")
    return value


def parse_address(value: object, key: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as a tuple.

    Raises:
        SSPConfigError: not that shape, or the port is out of range.
    """
    if not isinstance(value, str) or len(value) > 300:
        raise SSPConfigError(key, "must be 'host:port'")
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise SSPConfigError(key, f"{host!r} is not an IPv6 address") from None
    elif not sep or not host or ":" in host:
        raise SSPConfigError(key, "must be 'host:port' ('[addr]:port' for IPv6)")
    else:
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            _fqdn(host, key)
    if not port_text.isdigit() or not 0 < int(port_text) < 2**16:
        raise SSPConfigError(key, "the port must be an integer from 1 to 65535")
    return host, int(port_text)


@dataclass(frozen=True, slots=True)
class ConsumerSystem:
    """A consuming system as SDS knows it: who may send what, to whom."""

    asid: str
    """Its ASID: the ``Ssp-From`` it sends."""
    ods: str
    """Its organisation's ODS code (recorded in the audit trail)."""
    fqdn: str
    """The endpoint FQDN registered for the ASID: its client certificate's name must be
    this one [SSPIG-07 "Functional Requirements"]."""
    interactions: frozenset[str]
    """Interaction IDs the ASID may send."""
    send_to: frozenset[str]
    """Provider ASIDs it has a data sharing agreement with (the SSP's FOT check)."""

    def __post_init__(self) -> None:
        _identifier(self.asid, ASID, "asid", "an ASID (letters and digits, at most 32)")
        _identifier(self.ods, _ODS, "ods", "an ODS code (letters and digits)")
        object.__setattr__(self, "fqdn", _fqdn(self.fqdn, "fqdn"))
        object.__setattr__(self, "interactions", frozenset(self.interactions))
        object.__setattr__(self, "send_to", frozenset(self.send_to))
        for asid in self.send_to:
            _identifier(asid, ASID, "send_to", "a list of provider ASIDs")


@dataclass(frozen=True, slots=True)
class ProviderSystem:
    """A providing system as SDS knows it: its endpoint and what it offers."""

    asid: str
    """Its ASID: the ``Ssp-To`` a consumer sends."""
    ods: str
    """The practice's ODS code; every service root names it [SDSREG]."""
    fqdn: str
    """The endpoint FQDN registered for the ASID: the host of every service root and the
    name its server certificate must carry."""
    service_roots: Mapping[RootKind, tuple[str, ...]]
    """Service root URLs (``nhsMhsEndPoint``) per kind, exactly as registered."""
    interactions: frozenset[str] = frozenset()
    """Interaction IDs it receives; empty: every released interaction of each kind it
    has a service root for (filled in by :class:`Directory`)."""
    address: tuple[str, int] | None = None
    """Where the SSP connects (``host``, ``port``) instead of resolving the roots' host:
    the simulator's stand-in for DNS, so an environment runs on loopback."""
    cpa_id: str = ""
    """The SDS CPA ID shown in the ``ENDPOINT_…_CPAID_…`` error; default ``S`` + ASID."""

    def __post_init__(self) -> None:
        _identifier(self.asid, ASID, "asid", "an ASID (letters and digits, at most 32)")
        _identifier(self.ods, _ODS, "ods", "an ODS code (letters and digits)")
        fqdn = _fqdn(self.fqdn, "fqdn")
        object.__setattr__(self, "fqdn", fqdn)
        if not self.service_roots:
            raise SSPConfigError("service_roots", "at least one service root is required")
        roots: dict[RootKind, tuple[str, ...]] = {}
        for kind, urls in self.service_roots.items():
            if not isinstance(kind, RootKind):
                raise SSPConfigError("service_roots", f"{kind!r} is not a RootKind")
            listed = (urls,) if isinstance(urls, str) else tuple(urls)
            if not listed or len(listed) > MAX_ROOTS:
                raise SSPConfigError(
                    f"service_roots.{kind.value}", f"give 1 to {MAX_ROOTS} service roots"
                )
            for url in listed:
                _check_root(url, fqdn, self.ods, f"service_roots.{kind.value}")
            roots[kind] = listed
        object.__setattr__(self, "service_roots", MappingProxyType(roots))
        object.__setattr__(self, "interactions", frozenset(self.interactions))
        if self.address is not None:
            host, port = self.address
            parse_address(f"[{host}]:{port}" if ":" in host else f"{host}:{port}", "address")
        if not self.cpa_id:
            object.__setattr__(self, "cpa_id", f"S{self.asid}")
        elif not isinstance(self.cpa_id, str) or not _ODS.fullmatch(self.cpa_id):
            raise SSPConfigError("cpa_id", "must be letters and digits")

    @property
    def connect_to(self) -> tuple[str, int]:
        """Where the SSP opens connections: :attr:`address`, else the first root's host."""
        if self.address is not None:
            return self.address
        first = urlsplit(next(iter(self.service_roots.values()))[0])
        return first.hostname or self.fqdn, first.port or 443


def _check_root(url: object, fqdn: str, ods: str, key: str) -> None:
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise SSPConfigError(key, f"a service root must be a URL of at most {MAX_URL} characters")
    if not url.isascii() or not url.isprintable() or " " in url:
        raise SSPConfigError(key, f"{url!r} is not a URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise SSPConfigError(key, f"{url!r} is not a URL") from None
    if parts.scheme != "https":
        raise SSPConfigError(key, f"{url!r}: a service root is an https:// URL")
    if parts.username is not None or parts.query or parts.fragment or "#" in url or "?" in url:
        raise SSPConfigError(key, f"{url!r}: no user, query or fragment in a service root")
    if (parts.hostname or "") != fqdn or parts.netloc.lower().rstrip(".") not in {
        fqdn,
        f"{fqdn}:{port}",
    }:
        raise SSPConfigError(key, f"{url!r}: the host must be the provider's FQDN {fqdn}")
    if not parts.path or parts.path.endswith("/") or "//" in parts.path:
        raise SSPConfigError(key, f"{url!r}: a path with no empty segment and no trailing '/'")
    if ods not in parts.path.split("/"):
        # SDS: the FHIR base URL identifies the practice by its ODS code [SSPIG-07][SDSREG].
        raise SSPConfigError(key, f"{url!r}: the path must contain the ODS code {ods}")


@dataclass(frozen=True, slots=True)
class Directory:
    """The systems the simulator knows, indexed by ASID, checked against a catalogue.

    Raises:
        SSPConfigError: a duplicate ASID, an unknown interaction, an agreement naming an
            unknown provider, or an interaction a provider has no service root for.
    """

    consumers: tuple[ConsumerSystem, ...]
    """Consuming systems."""
    providers: tuple[ProviderSystem, ...]
    """Providing systems."""
    catalogue: Catalogue = field(default_factory=Catalogue.default)
    """The interactions there are (the gate's catalogue)."""
    _consumers: Mapping[str, ConsumerSystem] = field(init=False, repr=False, compare=False)
    _providers: Mapping[str, ProviderSystem] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        consumers = tuple(self.consumers)
        providers = tuple(self.providers)
        for name, systems in (("consumers", consumers), ("providers", providers)):
            if not systems:
                raise SSPConfigError(name, f"at least one of the {name} is required")
            if len(systems) > MAX_SYSTEMS:
                raise SSPConfigError(name, f"at most {MAX_SYSTEMS} entries")
        by_provider: dict[str, ProviderSystem] = {}
        for i, provider in enumerate(providers):
            key = f"providers[{i}]"
            if provider.asid in by_provider:
                raise SSPConfigError(f"{key}.asid", f"ASID {provider.asid} is listed twice")
            offered = provider.interactions or self.released_interactions(provider.service_roots)
            for iid in sorted(offered):
                row = self.catalogue.get(iid)
                if row is None:
                    raise SSPConfigError(f"{key}.interactions", f"unknown interaction {iid!r}")
                if row.root not in provider.service_roots:
                    raise SSPConfigError(
                        f"{key}.interactions",
                        f"{iid} needs a {row.root.value} service root, and there is none",
                    )
            by_provider[provider.asid] = _with_interactions(provider, offered)
        by_consumer: dict[str, ConsumerSystem] = {}
        for i, consumer in enumerate(consumers):
            key = f"consumers[{i}]"
            if consumer.asid in by_consumer:
                raise SSPConfigError(f"{key}.asid", f"ASID {consumer.asid} is listed twice")
            for iid in sorted(consumer.interactions):
                if self.catalogue.get(iid) is None:
                    raise SSPConfigError(f"{key}.interactions", f"unknown interaction {iid!r}")
            for asid in sorted(consumer.send_to):
                if asid not in by_provider:
                    raise SSPConfigError(f"{key}.send_to", f"no provider has ASID {asid}")
            by_consumer[consumer.asid] = consumer
        object.__setattr__(self, "consumers", consumers)
        object.__setattr__(self, "providers", tuple(by_provider.values()))
        object.__setattr__(self, "_consumers", MappingProxyType(by_consumer))
        object.__setattr__(self, "_providers", MappingProxyType(by_provider))

    def released_interactions(self, roots: Iterable[RootKind]) -> frozenset[str]:
        """Every released (non-legacy) interaction of the catalogue whose service root is
        one of the kinds ``roots``: what a provider receives unless it lists its own."""
        return frozenset(
            row.interaction_id
            for row in self.catalogue.interactions
            if row.root in roots and not row.legacy
        )

    def consumer(self, asid: str) -> ConsumerSystem | None:
        """The consumer registered with ``asid``, or None."""
        return self._consumers.get(asid)

    def provider(self, asid: str) -> ProviderSystem | None:
        """The provider registered with ``asid``, or None."""
        return self._providers.get(asid)

    @property
    def consumer_fqdns(self) -> frozenset[str]:
        """Every consumer endpoint FQDN (the names a client certificate may carry)."""
        return frozenset(c.fqdn for c in self.consumers)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, prefix: str = "directory") -> Directory:
        """Build a directory from a parsed ``[directory]`` table.

        Raises:
            SSPConfigError: a missing, unknown or invalid key (named in full).
        """
        table = Table(data, f"{prefix}.", SSPConfigError)
        catalogue = Catalogue.default()
        consumers = tuple(
            _consumer(item, catalogue)
            for item in _entries(table, "consumers", f"{prefix}.consumers")
        )
        providers = tuple(
            _provider(item, catalogue)
            for item in _entries(table, "providers", f"{prefix}.providers")
        )
        table.done()
        with _under(prefix):
            return cls(consumers, providers, catalogue)


def _with_interactions(provider: ProviderSystem, offered: frozenset[str]) -> ProviderSystem:
    if provider.interactions == offered:
        return provider
    return ProviderSystem(
        asid=provider.asid,
        ods=provider.ods,
        fqdn=provider.fqdn,
        service_roots=provider.service_roots,
        interactions=offered,
        address=provider.address,
        cpa_id=provider.cpa_id,
    )


def _entries(table: Table, name: str, key: str) -> Iterator[Table]:
    """Each table of an array of tables (``[[directory.consumers]]``)."""
    if name not in table.remaining():
        return
    items = table.take(name)
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise SSPConfigError(key, "must be an array of tables ([[...]])")
    if len(items) > MAX_SYSTEMS:
        raise SSPConfigError(key, f"at most {MAX_SYSTEMS} entries")
    for i, item in enumerate(items):
        yield Table(item, f"{key}[{i}].", SSPConfigError)


def _list(table: Table, name: str, *, allow_empty: bool = False) -> list[str]:
    key = table._key(name)
    if name not in table.remaining():
        raise SSPConfigError(key, "missing key")
    value = table.take(name)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or (not value and not allow_empty):
        raise SSPConfigError(key, "must be a list of strings")
    if len(value) > MAX_SYSTEMS:
        raise SSPConfigError(key, f"at most {MAX_SYSTEMS} entries")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise SSPConfigError(f"{key}[{i}]", "must be a non-empty string")
    return value


def expand_interactions(values: Iterable[str], catalogue: Catalogue, key: str) -> frozenset[str]:
    """Interaction IDs from a list of IDs and group names.

    A group is a service-root kind (``foundations``, ``structured``, ``documents``,
    ``access-record-html``) and stands for every released interaction of that kind in
    the catalogue; an ID must be in the catalogue.

    Raises:
        SSPConfigError: an unknown ID or group (``key[i]``), or too many entries.
    """
    groups = {kind.value: kind for kind in RootKind}
    found: set[str] = set()
    listed = list(values)
    if len(listed) > MAX_INTERACTIONS:
        raise SSPConfigError(key, f"at most {MAX_INTERACTIONS} interactions or groups")
    for i, value in enumerate(listed):
        kind = groups.get(value)
        if kind is not None:
            found.update(
                row.interaction_id
                for row in catalogue.interactions
                if row.root is kind and not row.legacy
            )
        elif catalogue.get(value) is not None:
            found.add(value)
        else:
            known = ", ".join(groups)
            raise SSPConfigError(
                f"{key}[{i}]",
                f"{value[:200]!r} is neither a known interaction ID nor a group ({known})",
            )
    return frozenset(found)


def _consumer(table: Table, catalogue: Catalogue) -> ConsumerSystem:
    prefix = table._key("").rstrip(".")
    interactions = expand_interactions(
        _list(table, "interactions"), catalogue, table._key("interactions")
    )
    send_to = _list(table, "send_to", allow_empty=True)
    asid, ods, fqdn = table.string("asid"), table.string("ods"), table.string("fqdn")
    table.done()
    with _under(prefix):
        return ConsumerSystem(asid, ods, fqdn, interactions, frozenset(send_to))


def _provider(table: Table, catalogue: Catalogue) -> ProviderSystem:
    prefix = table._key("").rstrip(".")
    asid, ods, fqdn = table.string("asid"), table.string("ods"), table.string("fqdn")
    roots = table.table("service_roots").keyed_by(
        RootKind, lambda urls, name: tuple(_list(urls, name)), what="root kind"
    )
    interactions: frozenset[str] = frozenset()
    if "interactions" in table.remaining():
        interactions = expand_interactions(
            _list(table, "interactions"), catalogue, table._key("interactions")
        )
    address = None
    if "address" in table.remaining():
        address = parse_address(table.take("address"), table._key("address"))
    cpa_id = table.optional_string("cpa_id") or ""
    table.done()
    with _under(prefix):
        return ProviderSystem(asid, ods, fqdn, roots, interactions, address, cpa_id)


@dataclass(frozen=True, slots=True)
class ForwardingLimits:
    """Bounds of the provider hop: how long the SSP waits, what it keeps, what it forwards."""

    connect_timeout: float = 5.0
    """Seconds to connect to a provider and complete the TLS handshake."""
    response_timeout: float = 30.0
    """Seconds to wait for the provider's response head, and for each read of its body;
    past it the consumer gets 504."""
    idle_timeout: float = 4.0
    """Seconds a kept-alive provider connection may sit unused before it is closed (below
    the reference provider's 10 s keep-alive, so the SSP closes first)."""
    max_idle_connections: int = 8
    """Kept-alive connections kept per provider."""
    max_response_head_bytes: int = 65536
    """Largest response status line plus headers accepted from a provider (502 beyond)."""
    methods: frozenset[str] = DEFAULT_METHODS
    """HTTP methods forwarded; any other is answered 405."""

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "response_timeout", "idle_timeout"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or not 0 < value <= 3600
            ):
                raise SSPConfigError(name, f"must be a number of seconds (0-3600], got {value!r}")
        for name, low, high in (
            ("max_idle_connections", 0, 1024),
            ("max_response_head_bytes", 1024, 1 << 24),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise SSPConfigError(name, f"must be an integer from {low} to {high}")
        methods = frozenset(self.methods)
        if not methods or not methods <= _ALL_METHODS:
            known = ", ".join(sorted(_ALL_METHODS))
            raise SSPConfigError("methods", f"must be a non-empty list of: {known}")
        object.__setattr__(self, "methods", methods)


@dataclass(frozen=True, slots=True)
class SSPConfig:
    """Everything ``spinepki ssp serve`` needs; built by :func:`load_config` or directly.

    Raises:
        SSPConfigError: a value that cannot work, naming its key.
    """

    directory: Directory
    """The systems and what each may send or receive."""
    certificate: Path
    """The SSP's certificate and chain (PEM): its server certificate towards consumers
    and its client certificate towards providers, as the real SSP's one identity."""
    key: Path
    """Its private key (PEM)."""
    trust: SpineEnvironment | None = None
    """The bundled public Spine CA set, or None when ``trust_files`` is used."""
    trust_files: tuple[Path, ...] = ()
    """PEM bundles / directories of the CAs consumer and provider certificates chain to."""
    key_password_env: str | None = None
    """Name of the environment variable holding the key's password."""
    revocation: RevocationMode = RevocationMode.HARD_FAIL
    """How consumer and provider certificates are checked for revocation."""
    fqdn: str | None = None
    """The SSP's host name as consumers address it (None: the certificate's name)."""
    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 9443
    """Port to listen on (0: any free port)."""
    forwarding: ForwardingLimits = field(default_factory=ForwardingLimits)
    """Bounds of the provider hop."""
    limits: ProviderLimits = field(default_factory=ProviderLimits)
    """Bounds of the consumer side (the reference provider's connection limits)."""

    def __post_init__(self) -> None:
        if not isinstance(self.directory, Directory):
            raise SSPConfigError("directory", "must be a Directory")
        if (self.trust is None) == (not self.trust_files):
            raise SSPConfigError(
                "ssp.trust", "give exactly one of ssp.trust (live|int|dep) or ssp.trust_files"
            )
        if self.revocation in (RevocationMode.DISABLED, RevocationMode.OFFLINE):
            raise SSPConfigError(
                "ssp.revocation", f"{self.revocation.value!r} cannot be used by the simulator"
            )
        if self.fqdn is not None:
            object.__setattr__(self, "fqdn", _fqdn(self.fqdn, "ssp.fqdn"))
        check_host_port(self.host, self.port, section="ssp", error=SSPConfigError)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base_dir: Path | None = None) -> SSPConfig:
        """Build a configuration from parsed TOML; relative paths resolve against
        ``base_dir`` (the file's directory).

        Raises:
            SSPConfigError: a missing, unknown or invalid key.
        """
        base = base_dir or Path.cwd()
        top = Table(data, "", SSPConfigError)
        ssp = top.table("ssp")
        forwarding_table = top.table("forwarding", required=False)
        limits_table = top.table("limits", required=False)
        directory = Directory.from_mapping(top.table("directory")._data)
        top.done()

        certificate = base / ssp.string("certificate")
        key = base / ssp.string("key")
        password_env = ssp.optional_string("key_password_env")
        trust = ssp.enum("trust", SpineEnvironment, None)
        trust_files = tuple(base / p for p in ssp.strings("trust_files", required=False))
        revocation = ssp.enum("revocation", RevocationMode, RevocationMode.HARD_FAIL)
        fqdn = ssp.optional_string("fqdn")
        host = ssp.string("host", "127.0.0.1")
        port = ssp.integer("port", 9443)
        ssp.done()
        if password_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", password_env):
            raise SSPConfigError("ssp.key_password_env", "must be an environment variable name")

        forwarding = ForwardingLimits()
        if forwarding_table is not None:
            values = _keyed_values(forwarding_table, ForwardingLimits, "forwarding")
            if "methods" in values:
                methods = values["methods"]
                if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
                    raise SSPConfigError("forwarding.methods", "must be a list of method names")
                values["methods"] = frozenset(m.upper() for m in methods)
            with _under("forwarding"):
                forwarding = ForwardingLimits(**values)
        limits = ProviderLimits()
        if limits_table is not None:
            values = _keyed_values(limits_table, ProviderLimits, "limits")
            with _under("limits"):
                limits = ProviderLimits(**values)
        return cls(
            directory=directory,
            certificate=certificate,
            key=key,
            trust=trust,
            trust_files=trust_files,
            key_password_env=password_env,
            revocation=revocation,
            fqdn=fqdn,
            host=host,
            port=port,
            forwarding=forwarding,
            limits=limits,
        )


def _keyed_values(table: Table, kind: type, prefix: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in list(table.remaining()):
        if name not in kind.__dataclass_fields__ or name.startswith("_"):  # type: ignore[attr-defined]
            raise SSPConfigError(f"{prefix}.{name}", "unknown key")
        values[name] = table.take(name)
    return values


def load_config(path: str | Path) -> SSPConfig:
    """Read an SSP simulator configuration file (TOML).

    Raises:
        SSPConfigError: the file cannot be read or parsed, is over 4 MiB, or a key is
            wrong (``key`` names it; ``file`` for an unreadable or non-TOML file).
    """
    file = Path(path)
    data = read_toml(file, SSPConfigError, max_bytes=MAX_CONFIG_BYTES)
    return SSPConfig.from_mapping(data, base_dir=file.resolve().parent)


def load_directory(path: str | Path) -> Directory:
    """Read a file that holds only a ``[directory]`` table (``spinepki env up --config``).

    Raises:
        SSPConfigError: as :func:`load_config`; any other table is an unknown key.
    """
    data = read_toml(Path(path), SSPConfigError, max_bytes=MAX_CONFIG_BYTES)
    top = Table(data, "", SSPConfigError)
    directory = Directory.from_mapping(top.table("directory")._data)
    top.done()
    return directory
