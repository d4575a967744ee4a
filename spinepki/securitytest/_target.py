"""The one URL a security test is allowed to touch: one https host, one port, one root."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from spinepki.errors import ConfigurationError
from spinepki.scan import parse_target

__all__ = ["Target", "parse_url"]

_PATH = re.compile(r"(?:/[A-Za-z0-9._~!$&'()*+=:@-]+)*/?")
_REFUSED = "give one https URL of one host; ranges, CIDRs, lists and wildcards are refused"


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed security-test target."""

    url: str
    """The URL as given (trimmed)."""
    host: str
    """The host name or IP address (IPv6 without brackets)."""
    port: int
    """The port (443 when the URL names none)."""
    root: str
    """The service root path without a trailing slash (``""`` for the server root)."""

    @property
    def host_header(self) -> str:
        """The ``Host`` header value (the port only when it is not 443)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 443 else f"{host}:{self.port}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_url(url: str) -> Target:
    """Parse ``https://HOST[:PORT][/service/root]``; refuse anything but one host.

    The suite probes one deployment its operator names, never a network: CIDRs
    (``10.0.0.0/24`` as a host), address ranges (``10.0.0.1-20``), lists (``a,b``),
    wildcards (``*.nhs.uk``), user info, queries and fragments are refused, and so is
    any scheme but https.

    Raises:
        ConfigurationError: not one https URL of a single host.
    """
    text = url.strip()
    if not text or any(ch in text for ch in " ,*{}|\\\t\r\n") or not text.isascii():
        raise ConfigurationError(_REFUSED, source=url)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ConfigurationError("not a URL with a valid port", source=url) from None
    if parts.scheme.lower() != "https":
        raise ConfigurationError("the URL must start with https://", source=url)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ConfigurationError("the URL must not carry user information", source=url)
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise ConfigurationError("the URL must not have a query or fragment", source=url)
    host = parts.hostname
    if not host:
        raise ConfigurationError("the URL names no host", source=url)
    netloc_host = f"[{host}]" if ":" in host else host
    # The scanner's parser refuses ranges and odd host shapes; reuse it for the host part.
    host, port = parse_target(f"{netloc_host}:{port if port is not None else 443}")
    path = parts.path
    if "%" in path or "//" in path or _PATH.fullmatch(path) is None:
        raise ConfigurationError(
            "the service root path may hold only plain segments (no %, //, or spaces)",
            source=url,
        )
    if _is_ip(host) and re.fullmatch(r"/\d{1,3}/?", path):
        raise ConfigurationError(_REFUSED, source=url)  # 10.0.0.0/24 is a CIDR, not a root
    if any(seg in {".", ".."} for seg in path.split("/")):
        raise ConfigurationError("the service root path must not hold . or ..", source=url)
    return Target(url=text, host=host, port=port, root=path.rstrip("/"))
