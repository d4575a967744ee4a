"""Where a server listens, and refusing at once when it cannot.

:class:`Listen` is public as ``spinepki.serverconfig.Listen`` (the exported
configurations' listen address); ``spinepki gate serve`` and the demo's local
environment check their ports with :func:`check_free` before they start anything.
:func:`address_in` is the one test of a connecting peer against trusted proxy networks
(the gate's proxy-header source and the gate service's own door); :func:`check_host_port`
the one check of a configured listen host and port (provider and SSP configurations).
Private and neutral, at the bottom of the layers (docs/architecture.md), so neither
reaches into serverconfig's private modules.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from spinepki.errors import ConfigurationError

__all__ = ["Listen", "address_in", "check_free", "check_host_port"]


def check_host_port(
    host: object,
    port: object,
    *,
    section: str,
    error: Callable[[str, str], ConfigurationError],
) -> None:
    """Refuse a configured listen host or port that no server could bind.

    Shared by the reference provider's and the SSP simulator's configurations, whose
    errors name ``<section>.host`` / ``<section>.port`` with their own error class.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 2**16:
        raise error(f"{section}.port", "must be an integer from 0 to 65535")
    if not isinstance(host, str) or not host:
        raise error(f"{section}.host", "must be a non-empty address")


@dataclass(frozen=True, slots=True)
class Listen:
    """Where the TLS server listens."""

    host: str
    """An IP address (``0.0.0.0``, ``127.0.0.1``, ``::``); empty means every address."""
    port: int
    """TCP port."""

    @classmethod
    def parse(cls, value: str) -> Listen:
        """``ADDR:PORT``, ``[V6]:PORT`` or ``PORT``.

        Raises:
            ConfigurationError: not an address and port.
        """
        text = value.strip()
        host, port_text = "", text
        if text.startswith("["):
            end = text.find("]")
            if end < 0 or text[end + 1 : end + 2] != ":":
                raise ConfigurationError("expected [ADDRESS]:PORT", source=value)
            host, port_text = text[1:end], text[end + 2 :]
        elif ":" in text:
            host, _, port_text = text.rpartition(":")
        if host:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ConfigurationError(
                    "listen address must be an IP address", source=value
                ) from None
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigurationError("listen port must be 1-65535", source=value)
        return cls(host, int(port_text))

    @property
    def is_v6(self) -> bool:
        """True for an IPv6 address."""
        return ":" in self.host

    def joined(self) -> str:
        """``host:port`` (IPv6 in brackets), or the port alone for every address."""
        if not self.host:
            return str(self.port)
        return f"[{self.host}]:{self.port}" if self.is_v6 else f"{self.host}:{self.port}"


def check_free(listen: Listen, *, source: str) -> None:
    """Refuse at once when ``listen`` cannot be bound here (a port in use), so a server
    that would only find out later (after retries, or after other work) fails first.

    Bound as the servers bind (SO_REUSEADDR, so a closed connection in TIME_WAIT is no
    bar) and closed again: another process may still take the port in between, and the
    server's own bind then reports it.

    Raises:
        ConfigurationError: ``source: cannot listen on ADDR:PORT: <reason>``.
    """
    family = socket.AF_INET6 if listen.is_v6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((listen.host, listen.port))
        except OSError as exc:
            raise ConfigurationError(
                f"cannot listen on {listen.joined()}: {(exc.strerror or str(exc)).lower()}",
                source=source,
            ) from None


def address_in(
    address: object, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    """Whether ``address`` (a peer address from the server) is an IP in ``networks``;
    anything else (a Unix socket path, None, a name) is not trusted."""
    if not isinstance(address, str):
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)
