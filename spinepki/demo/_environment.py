"""A whole local GP Connect integration environment: ``spinepki env up``.

:func:`run_environment` brings up, on 127.0.0.1, what a consumer developer needs to call
a provider the way production does, through the Spine Secure Proxy:

* a Spine-shaped test PKI (:class:`~spinepki.testpki.TestPKI`) with a certificate for
  the SSP and for every consumer and provider endpoint FQDN in the directory;
* its CRL/OCSP responder (:class:`~spinepki.testpki.responder.Responder`);
* one reference provider (:mod:`spinepki.provider`) per provider in the directory, with
  the built-in FHIR demo application behind the gate;
* the SSP simulator (:mod:`spinepki.ssp`) configured with the directory.

Everything is written to one folder (the PKI, ``env.toml`` for ``spinepki ssp serve``,
``provider-<ASID>.toml`` for ``spinepki serve``), and everything stops on leaving the
``with`` block. :func:`default_directory` is the built-in default: one consumer, one
provider, the Foundations and Structured interactions.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from spinepki._extras import require_anycorn
from spinepki._listen import check_free
from spinepki._tokens import gp_connect_token
from spinepki.audit import AuditLogger
from spinepki.errors import ConfigurationError
from spinepki.gate import Catalogue, RootKind
from spinepki.provider import ProviderServer, create_server
from spinepki.provider import load_config as load_provider_config
from spinepki.serverconfig import Listen
from spinepki.ssp import (
    ConsumerSystem,
    Directory,
    ProviderSystem,
    SSPAuditLogger,
    SSPConfigError,
    SSPServer,
    create_ssp,
    load_config,
)
from spinepki.ssp._config import expand_interactions
from spinepki.testpki import (
    DEFAULT_CONSUMER_FQDN,
    DEFAULT_PROVIDER_FQDN,
    IssuedCertificate,
    KeyType,
    TestPKI,
    write_pki,
)
from spinepki.testpki.responder import Responder

__all__ = [
    "DEFAULT_CONSUMER_ASID",
    "DEFAULT_PROVIDER_ASID",
    "ENV_FILE",
    "Environment",
    "default_directory",
    "directory_toml",
    "run_environment",
]

#: The default consumer's ASID (an example ASID of the GP Connect pages).
DEFAULT_CONSUMER_ASID = "200000000359"
#: The default provider's ASID (the assurance pack's example provider ASID).
DEFAULT_PROVIDER_ASID = "918999198738"
#: The SSP simulator's configuration file in an environment's folder.
ENV_FILE = "env.toml"
#: Where the simulator of an environment listens (everything stays on loopback).
_SSP_HOST = "127.0.0.1"
_METADATA = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1"
_READ_PATIENT = "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1"
_SCOPES = {_METADATA: "organization/*.read", _READ_PATIENT: "patient/*.read"}


def default_directory(
    *, consumer_fqdn: str = DEFAULT_CONSUMER_FQDN, provider_fqdn: str = DEFAULT_PROVIDER_FQDN
) -> Directory:
    """The built-in directory: consumer ``200000000359`` (ODS A1001) may send the
    Foundations and Structured interactions to provider ``918999198738`` (ODS A12345)."""
    root = f"https://{provider_fqdn}/A12345/STU3/1/gpconnect"
    provider = ProviderSystem(
        asid=DEFAULT_PROVIDER_ASID,
        ods="A12345",
        fqdn=provider_fqdn,
        service_roots={
            RootKind.FOUNDATIONS: (root,),
            RootKind.STRUCTURED: (f"{root}/structured",),
        },
    )
    consumer = ConsumerSystem(
        asid=DEFAULT_CONSUMER_ASID,
        ods="A1001",
        fqdn=consumer_fqdn,
        interactions=expand_interactions(
            ["foundations", "structured"], Catalogue.default(), "interactions"
        ),
        send_to=frozenset({DEFAULT_PROVIDER_ASID}),
    )
    return Directory((consumer,), (provider,))


def _toml(value: object) -> str:
    # JSON strings and lists of them are valid TOML basic strings and arrays.
    return json.dumps(value, ensure_ascii=True)


def _interaction_list(directory: Directory, ids: frozenset[str]) -> list[str]:
    """``ids`` with every complete released group written as its group name."""
    left = set(ids)
    listed: list[str] = []
    for kind in RootKind:
        group = {
            r.interaction_id
            for r in directory.catalogue.interactions
            if r.root is kind and not r.legacy
        }
        if group and group <= left:
            listed.append(kind.value)
            left -= group
    return listed + sorted(left)


def directory_toml(directory: Directory, *, addresses: bool = True) -> str:
    """``directory`` as the ``[directory]`` tables of a configuration file.

    Args:
        directory: the directory to write.
        addresses: include the providers' ``address`` (``env up`` starts providers
            itself, so its ``--config`` input has none).
    """
    lines: list[str] = []
    for c in directory.consumers:
        lines += [
            "[[directory.consumers]]",
            f"asid = {_toml(c.asid)}",
            f"ods = {_toml(c.ods)}",
            f"fqdn = {_toml(c.fqdn)}",
            f"interactions = {_toml(_interaction_list(directory, c.interactions))}",
            f"send_to = {_toml(sorted(c.send_to))}",
            "",
        ]
    for p in directory.providers:
        lines += [
            "[[directory.providers]]",
            f"asid = {_toml(p.asid)}",
            f"ods = {_toml(p.ods)}",
            f"fqdn = {_toml(p.fqdn)}",
        ]
        if p.interactions != directory.released_interactions(p.service_roots):
            lines.append(f"interactions = {_toml(_interaction_list(directory, p.interactions))}")
        if p.cpa_id != f"S{p.asid}":
            lines.append(f"cpa_id = {_toml(p.cpa_id)}")
        if addresses and p.address is not None:
            host, port = p.address
            lines.append(
                f"address = {_toml(f'[{host}]:{port}' if ':' in host else f'{host}:{port}')}"
            )
        lines.append("[directory.providers.service_roots]")
        lines += [f"{kind.value} = {_toml(list(urls))}" for kind, urls in p.service_roots.items()]
        lines.append("")
    return "\n".join(lines)


def _leaf_for(pki: TestPKI, role: str, asid: str, fqdn: str) -> IssuedCertificate:
    """The certificate of a system: ``<role>-<ASID>`` if issued, else the standard
    ``consumer``/``provider`` one when its FQDN matches, else a new ``<role>-<ASID>``."""
    name = f"{role}-{asid}"
    if name in pki.leaves:
        return pki.leaves[name]
    standard = pki.leaves.get(role)
    if standard is not None and standard.fqdn == fqdn:
        return standard
    return pki.issue(name, fqdn=fqdn, purpose=f"the endpoint certificate of {role} {asid}")


@dataclass
class Environment:
    """A running environment (see the module docstring)."""

    pki: TestPKI
    """The test PKI."""
    folder: Path
    """Where everything was written."""
    responder: Responder
    """The CRL/OCSP responder."""
    ssp: SSPServer
    """The SSP simulator."""
    providers: dict[str, ProviderServer]
    """The reference providers, by ASID."""
    certificates: dict[str, str]
    """Each system's certificate name in the PKI (``certs/<name>.chain.pem``), by ASID."""

    @property
    def directory(self) -> Directory:
        """The directory the SSP runs with (providers' addresses filled in)."""
        return self.ssp.config.directory

    def summary(self) -> dict[str, Any]:
        """What a consumer developer needs, as JSON-ready data."""
        folder = self.folder
        return {
            "ssp": {
                "url": self.ssp.url,
                "fqdn": self.ssp.fqdn,
                "address": f"{self.ssp.address[0]}:{self.ssp.address[1]}",
                "config": str(folder / ENV_FILE),
            },
            "consumers": [
                {
                    "asid": c.asid,
                    "ods": c.ods,
                    "fqdn": c.fqdn,
                    "certificate": str(folder / f"certs/{self.certificates[c.asid]}.chain.pem"),
                    "key": str(folder / f"certs/{self.certificates[c.asid]}.key.pem"),
                    "send_to": sorted(c.send_to),
                    "interactions": _interaction_list(self.directory, c.interactions),
                }
                for c in self.directory.consumers
            ],
            "providers": [
                {
                    "asid": p.asid,
                    "ods": p.ods,
                    "fqdn": p.fqdn,
                    "service_roots": {k.value: list(v) for k, v in p.service_roots.items()},
                    "listening": self.providers[p.asid].url,
                    "config": str(folder / f"provider-{p.asid}.toml"),
                }
                for p in self.directory.providers
            ],
            "responder": self.responder.base_url,
            "trust_bundle": str(folder / "ca/trust-bundle.pem"),
        }

    def curl_commands(self, now: int | None = None) -> list[tuple[str, str]]:
        """``(what it shows, command)`` pairs through the SSP (tokens valid 5 minutes)."""
        now = int(time.time()) if now is None else now
        commands: list[tuple[str, str]] = []
        for consumer in self.directory.consumers:
            for provider in self.directory.providers:
                roots = provider.service_roots.get(RootKind.FOUNDATIONS)
                if provider.asid not in consumer.send_to or not roots:
                    continue
                root = roots[0]
                for iid, path in ((_METADATA, "/metadata"), (_READ_PATIENT, "/Patient/1")):
                    if iid in consumer.interactions and iid in provider.interactions:
                        commands.append(
                            (
                                f"{consumer.asid} -> {provider.asid}: GET {path} (200)",
                                self._curl(consumer, provider, iid, root, path, now),
                            )
                        )
                if commands:
                    netloc = urlsplit(root).netloc
                    wrong = root.replace(netloc, f"{netloc}:443", 1)
                    commands.append(
                        (
                            "a service root with ':443' added (400 ENDPOINT_..._VARIES_...)",
                            self._curl(consumer, provider, _METADATA, wrong, "/metadata", now),
                        )
                    )
                    return commands
        return commands

    def _curl(
        self,
        consumer: ConsumerSystem,
        provider: ProviderSystem,
        iid: str,
        root: str,
        path: str,
        now: int,
    ) -> str:
        folder = self.folder
        name = self.certificates[consumer.asid]
        host, port = self.ssp.address
        args = ["curl", "-sS", "-i", "--cacert", str(folder / "ca/trust-bundle.pem")]
        args += ["--resolve", f"{self.ssp.fqdn}:{port}:{host}"]
        args += ["--cert", str(folder / f"certs/{name}.chain.pem")]
        args += ["--key", str(folder / f"certs/{name}.key.pem")]
        token = gp_connect_token(now, scope=_SCOPES[iid], audience=root)
        headers = {
            "Ssp-TraceID": str(uuid.uuid4()),
            "Ssp-From": consumer.asid,
            "Ssp-To": provider.asid,
            "Ssp-InteractionID": iid,
            "Authorization": f"Bearer {token}",
        }
        for header, value in headers.items():
            args += ["-H", f"{header}: {value}"]
        args.append(f"{self.ssp.url}/{root}{path}")
        return " ".join(shlex.quote(a) for a in args)


def _provider_toml(provider: ProviderSystem, certificate: str, ssp_fqdn: str) -> str:
    roots = {
        kind.value: [urlsplit(u).path for u in urls]
        for kind, urls in provider.service_roots.items()
    }
    audiences = {url for urls in provider.service_roots.values() for url in urls}
    lines = [
        "# Written by `spinepki env up`: the reference provider of one directory entry.",
        "[provider]",
        f"asid = {_toml(provider.asid)}",
        'host = "127.0.0.1"',
        "port = 0",
        # A token addressed to another provider is refused: GP Connect's consumers put
        # the provider's service root URL, as registered in SDS, in the JWT's aud.
        f"expected_aud = {_toml(sorted(audiences))}",
        "",
        "[provider.service_roots]",
        *(f"{kind} = {_toml(paths)}" for kind, paths in roots.items()),
        "",
        "[tls]",
        f'certificate = "certs/{certificate}.chain.pem"',
        f'key = "certs/{certificate}.key.pem"',
        'trust_files = ["ca/trust-bundle.pem"]',
        "",
        "[validation]",
        f"ssp_fqdns = [{_toml(ssp_fqdn)}]",
        "",
    ]
    return "\n".join(lines)


def _ssp_toml(directory: Directory, port: int) -> str:
    return "\n".join(
        [
            "# Written by `spinepki env up`: the SSP simulator of this environment",
            "# (`spinepki ssp serve --config env.toml`; the providers' addresses are those",
            "# of the reference providers env up started).",
            "[ssp]",
            'certificate = "certs/ssp.chain.pem"',
            'key = "certs/ssp.key.pem"',
            'trust_files = ["ca/trust-bundle.pem"]',
            f"host = {_toml(_SSP_HOST)}",
            f"port = {port}",
            "",
            directory_toml(directory),
        ]
    )


def _check_folder(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()) and not (folder / ENV_FILE).exists():
        raise ConfigurationError(
            "the folder is not empty and holds no environment: choose an empty or new one",
            source=str(folder),
        )


@contextlib.contextmanager
def run_environment(
    folder: str | Path,
    *,
    directory: Directory | None = None,
    key_type: KeyType = KeyType.RSA_2048,
    ssp_port: int = 0,
    say: Callable[[str], None] | None = None,
    audit: SSPAuditLogger | None = None,
    provider_audit: AuditLogger | None = None,
) -> Iterator[Environment]:
    """Generate, write and start a whole environment; stop everything on exit.

    Args:
        folder: where to write (new, empty, or an earlier environment's, which is
            replaced: a fresh PKI each time).
        directory: the systems (default :func:`default_directory`); providers must have
            no ``address``, since their reference providers are started here.
        key_type: key algorithm of the test PKI (RSA-2048, as Spine uses, by default).
        ssp_port: the SSP simulator's port (0: a free one).
        say: progress messages.
        audit: where the SSP's hop events go.
        provider_audit: where the providers' gate decisions go.

    Raises:
        SSPConfigError: a provider in ``directory`` has an ``address``.
        ConfigurationError: anycorn (the ``provider`` extra) is not installed, ``folder``
            is not empty and holds no environment, or ``ssp_port`` is in use (all three
            found before anything is generated or started), or a port cannot be bound.
    """
    # What can be known before work starts is checked first: keys take seconds to make
    # and servers would start only to be stopped again.
    require_anycorn()
    note = say or (lambda _message: None)
    wanted = directory or default_directory()
    for i, provider in enumerate(wanted.providers):
        if provider.address is not None:
            raise SSPConfigError(
                f"directory.providers[{i}].address",
                "env up starts each provider itself and knows its address: remove it",
            )
    target = Path(folder).resolve()
    _check_folder(target)
    if ssp_port:  # a fixed port that is taken: refused before the PKI and providers
        check_free(Listen(_SSP_HOST, ssp_port), source="ssp_port")
    with contextlib.ExitStack() as stack:
        responder = stack.enter_context(Responder())
        note(f"Generating a Spine-shaped test PKI ({key_type.value}) in {target} ...")
        pki = TestPKI.create(key_type=key_type, base_url=responder.base_url, reuse_keys=False)
        certificates = {
            c.asid: _leaf_for(pki, "consumer", c.asid, c.fqdn).name for c in wanted.consumers
        }
        certificates.update(
            (p.asid, _leaf_for(pki, "provider", p.asid, p.fqdn).name) for p in wanted.providers
        )
        responder.attach(pki)
        write_pki(pki, target, overwrite=True)
        note(f"CRL/OCSP responder on {responder.base_url}")
        providers: dict[str, ProviderServer] = {}
        placed: list[ProviderSystem] = []
        for p in wanted.providers:
            config_file = target / f"provider-{p.asid}.toml"
            config_file.write_text(_provider_toml(p, certificates[p.asid], pki.ssp_fqdn))
            server = create_server(load_provider_config(config_file), audit=provider_audit)
            providers[p.asid] = stack.enter_context(server)
            placed.append(
                ProviderSystem(
                    p.asid, p.ods, p.fqdn, p.service_roots, p.interactions, server.address, p.cpa_id
                )
            )
            note(f"Reference provider {p.asid} ({p.fqdn}) on {server.url}")
        env_file = target / ENV_FILE
        env_file.write_text(
            _ssp_toml(Directory(wanted.consumers, tuple(placed), wanted.catalogue), ssp_port)
        )
        ssp = stack.enter_context(create_ssp(load_config(env_file), audit=audit))
        note(f"SSP simulator on {ssp.url} (listening on {ssp.address[0]}:{ssp.address[1]})")
        yield Environment(pki, target, responder, ssp, providers, certificates)
