"""Syntax checks for the names and URLs spinepki writes into certificates and files.

A host name goes into a certificate's subject CN (and SAN), a URL into its CRL
distribution point and AIA; both are read later by other software, so a malformed one
is refused where it enters, not discovered when a peer cannot use the certificate.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from spinepki.errors import ConfigurationError

__all__ = ["check_file_name", "check_fqdn", "check_http_url"]

#: RFC 1123 section 2.1 host name label: letters, digits, hyphens; not starting or
#: ending with a hyphen; 1 to 63 characters.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
#: RFC 1035 section 2.3.4: at most 253 characters in the text form (255 octets on the wire).
MAX_FQDN_LENGTH = 253
#: A name that becomes a file name: no separators, no dots (so ``x.key`` cannot land on
#: another certificate's ``x.key.pem``), no leading hyphen (an option to a shell tool).
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
#: What a URL written into a certificate may hold beyond letters and digits (RFC 3986
#: unreserved and sub-delims, "/", ":", "@" and "%"; no spaces, quotes or controls).
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%\[\]]+")


def check_fqdn(name: str, *, what: str = "fqdn", wildcard: bool = False) -> str:
    """``name`` if it is a DNS host name (RFC 1123), else a ConfigurationError.

    Labels of letters, digits and hyphens, 1-63 characters each, 253 in all, no trailing
    dot. Internationalised names must be given in their ASCII (``xn--``) form.

    Args:
        name: the host name.
        what: the setting's name, for the message (``--fqdn``, ``ssp_fqdn``...).
        wildcard: allow ``*`` as the whole left-most label.

    Raises:
        ConfigurationError: anything else (code ``config``).
    """
    if not isinstance(name, str) or not name:
        raise ConfigurationError("a host name is required", source=what)
    shown = name if len(name) <= 80 else name[:77] + "..."
    if len(name) > MAX_FQDN_LENGTH:
        raise ConfigurationError(
            f"{shown!r} is longer than {MAX_FQDN_LENGTH} characters", source=what
        )
    labels = name.split(".")
    if wildcard and labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise ConfigurationError(
                f"{shown!r} is not a host name (dot-separated labels of letters, digits and "
                "hyphens, e.g. msg.dev.spine2.ncrs.nhs.uk)",
                source=what,
            )
    return name


def check_http_url(url: str, *, what: str = "url") -> str:
    """``url`` if it is an absolute ``http(s)://host[:port][/path]`` URL, else an error.

    The host is a DNS name or an IP address; user information, a query or a fragment
    are refused (a certificate's CRL or OCSP URL has none), as are spaces, quotes and
    control characters.

    Raises:
        ConfigurationError: anything else (code ``config``).
    """
    shown = url if isinstance(url, str) and len(url) <= 80 else f"{str(url)[:77]}..."
    usage = f"{shown!r} is not an http(s)://HOST[:PORT][/PATH] URL"
    if not isinstance(url, str) or not _URL_CHARS.fullmatch(url):
        raise ConfigurationError(usage, source=what)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"{usage}: {exc}", source=what) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise ConfigurationError(usage, source=what)
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ConfigurationError(f"{usage}: no query or fragment", source=what)
    if port == 0:
        raise ConfigurationError(f"{usage}: port 0", source=what)
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
    except ValueError:
        check_fqdn(host, what=what)
    return url


def check_file_name(name: str, *, what: str = "name") -> str:
    """``name`` if it can name a file inside a directory spinepki owns, else an error.

    1-64 letters, digits, hyphens and underscores, starting with a letter or digit: no
    path separators, no ``..``, no dots at all.

    Raises:
        ConfigurationError: anything else (code ``config``).
    """
    if not isinstance(name, str) or not _FILE_NAME.fullmatch(name):
        shown = name if isinstance(name, str) and len(name) <= 80 else f"{str(name)[:77]}..."
        raise ConfigurationError(
            f"{shown!r} is not usable as a name: 1-64 letters, digits, '-' or '_', "
            "starting with a letter or digit",
            source=what,
        )
    return name
