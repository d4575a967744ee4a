"""Where the middleware finds the peer certificate: ready-made, pluggable sources.

Each source implements :class:`CertificateSource` (``from_scope`` for ASGI,
``from_environ`` for WSGI) and returns a :class:`PeerCertificate` or None. A source
that finds something it cannot parse raises ``CertificateLoadError``; the middleware
answers 495.

========================  ===========================================================
source                    reads
========================  ===========================================================
``TLSExtensionSource``    ASGI ``scope["extensions"]["tls"]["client_cert_chain"]`` (PEM)
``EnvironSource``         WSGI ``environ["SSL_CLIENT_CERT"]`` (werkzeug, mod_wsgi)
``GunicornSocketSource``  ``environ["gunicorn.socket"].getpeercert(True)`` (DER)
``ProxyHeaderSource``     a header set by nginx/Apache, *only* from trusted proxies
========================  ===========================================================
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote

from cryptography import x509

from spinepki._loading import MALFORMED_INPUT
from spinepki._validation._checks import parse_fully
from spinepki.errors import CertificateLoadError, ConfigurationError

__all__ = [
    "CertificateSource",
    "EnvironSource",
    "FirstOf",
    "GunicornSocketSource",
    "PeerCertificate",
    "ProxyCertFormat",
    "ProxyHeaderSource",
    "TLSExtensionSource",
]

_log = logging.getLogger("spinepki.gate.certsource")
_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)
_MAX_PEM = 32 * 1024  # a whole Spine chain is ~5 KB; anything far larger is not a cert
_MAX_CHAIN = 8


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """The client's certificate and whatever intermediates came with it."""

    leaf: x509.Certificate
    """The client (end-entity) certificate."""
    intermediates: tuple[x509.Certificate, ...] = ()
    """Further certificates the client or proxy supplied, leaf's issuer first."""


@runtime_checkable
class CertificateSource(Protocol):
    """**Protocol**: finds the peer certificate of one request.

    Return None when this source has nothing (the next source, or a 496, follows).
    Raise ``CertificateLoadError`` when it has something unusable (495).
    """

    def from_scope(self, scope: Mapping[str, Any]) -> PeerCertificate | None:
        """Look in an ASGI HTTP scope."""

    def from_environ(self, environ: Mapping[str, Any]) -> PeerCertificate | None:
        """Look in a WSGI environ."""


# Parsing a certificate costs tens of microseconds; the SSP presents the same one on
# every connection, so parsed certificates are cached by their exact encoding.
@functools.lru_cache(maxsize=64)
def _load_der(der: bytes) -> x509.Certificate:
    try:
        cert = x509.load_der_x509_certificate(der)
        parse_fully(cert)  # lazily parsed fields must fail here, as a typed error
    except MALFORMED_INPUT:
        raise CertificateLoadError("peer certificate is not valid DER") from None
    return cert


@functools.lru_cache(maxsize=64)
def _load_pem_chain(pem: str) -> tuple[x509.Certificate, ...]:
    if len(pem) > _MAX_PEM:
        raise CertificateLoadError("peer certificate PEM is too large")
    bodies = _PEM_BLOCK.findall(pem)
    if not bodies:
        raise CertificateLoadError("no PEM certificate found")
    if len(bodies) > _MAX_CHAIN:
        raise CertificateLoadError("too many certificates in the peer chain")
    certs = []
    for body in bodies:
        # Accepts the PEM line breaks, Apache's spaces-for-newlines and nginx's tabs.
        compact = "".join(body.split())
        try:
            der = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            raise CertificateLoadError("peer certificate PEM is not base64") from None
        certs.append(_load_der(der))
    return tuple(certs)


@functools.lru_cache(maxsize=64)
def _peer_from_pem_chain(chain: tuple[object, ...]) -> PeerCertificate | None:
    """The ASGI TLS extension's chain (PEM strings, leaf first), parsed; cached by value."""
    certs: list[x509.Certificate] = []
    for pem in chain:
        if not isinstance(pem, str):
            raise CertificateLoadError("client_cert_chain entry is not a PEM string")
        certs.extend(_load_pem_chain(pem))
    return _chain(certs)


def _chain(certs: Sequence[x509.Certificate]) -> PeerCertificate | None:
    if not certs:
        return None
    return PeerCertificate(leaf=certs[0], intermediates=tuple(certs[1:]))


@dataclass(frozen=True, slots=True)
class TLSExtensionSource:
    """The ASGI TLS extension: ``scope["extensions"]["tls"]["client_cert_chain"]``.

    Filled by servers implementing https://asgi.readthedocs.io/en/latest/specs/tls.html
    (anycorn does; hypercorn 0.18 and uvicorn 0.54 do not).
    """

    def from_scope(self, scope: Mapping[str, Any]) -> PeerCertificate | None:
        """The chain's PEM strings, leaf first, or None when the server sent none."""
        extensions = scope.get("extensions")
        tls = extensions.get("tls") if extensions else None
        # Exact-type tests first: isinstance against an ABC costs more than the lookup.
        if type(tls) is not dict and not isinstance(tls, Mapping):
            return None
        chain = tls.get("client_cert_chain")
        if not chain:
            return None
        if type(chain) is not list and (isinstance(chain, str) or not isinstance(chain, Iterable)):
            raise CertificateLoadError("client_cert_chain is not a sequence of PEM strings")
        # The SSP presents the same chain on every request: the parsed result is cached
        # by the exact PEM strings (immutable, bounded), so a request costs one lookup.
        pems = tuple(chain)
        if len(pems) > _MAX_CHAIN:  # before hashing every entry for the cache key
            raise CertificateLoadError("too many certificates in the peer chain")
        try:
            return _peer_from_pem_chain(pems)
        except TypeError:  # an unhashable entry cannot be a PEM string
            raise CertificateLoadError("client_cert_chain entry is not a PEM string") from None

    def from_environ(self, environ: Mapping[str, Any]) -> PeerCertificate | None:
        """WSGI has no TLS extension."""
        return None


@dataclass(frozen=True, slots=True)
class EnvironSource:
    """A PEM certificate in the WSGI environ (werkzeug and mod_wsgi use ``SSL_CLIENT_CERT``)."""

    key: str = "SSL_CLIENT_CERT"
    """The environ key holding the leaf's PEM."""
    chain_prefix: str | None = "SSL_CLIENT_CERT_CHAIN_"
    """mod_ssl's ``SSL_CLIENT_CERT_CHAIN_0..n`` keys for intermediates; None to ignore."""

    def from_scope(self, scope: Mapping[str, Any]) -> PeerCertificate | None:
        """ASGI has no such environ key."""
        return None

    def from_environ(self, environ: Mapping[str, Any]) -> PeerCertificate | None:
        """The leaf (and mod_ssl chain) from the environ, or None."""
        pem = environ.get(self.key)
        if not pem or pem == "(null)":
            return None
        if not isinstance(pem, str):
            raise CertificateLoadError("environ certificate is not a string")
        certs = list(_load_pem_chain(pem)[:1])
        if self.chain_prefix:
            for i in range(_MAX_CHAIN):
                extra = environ.get(f"{self.chain_prefix}{i}")
                if not extra or not isinstance(extra, str):
                    break
                certs.extend(_load_pem_chain(extra)[:1])
        return _chain(certs)


@dataclass(frozen=True, slots=True)
class GunicornSocketSource:
    """gunicorn's ``environ["gunicorn.socket"]`` (an ``ssl.SSLSocket``): leaf only, DER."""

    def from_scope(self, scope: Mapping[str, Any]) -> PeerCertificate | None:
        """Not an ASGI source."""
        return None

    def from_environ(self, environ: Mapping[str, Any]) -> PeerCertificate | None:
        """The leaf from the TLS socket, or None on a plain socket or without a certificate."""
        sock = environ.get("gunicorn.socket")
        getpeercert = getattr(sock, "getpeercert", None)
        if getpeercert is None:
            return None
        try:
            der = getpeercert(True)
        except ValueError:  # handshake not finished
            return None
        if not der:
            return None
        return _chain([_load_der(bytes(der))])


class ProxyCertFormat(enum.Enum):
    """How a TLS-terminating proxy encodes the certificate in its header."""

    NGINX_ESCAPED = "nginx-escaped"
    """nginx ``$ssl_client_escaped_cert``: URL-escaped PEM."""
    APACHE = "apache"
    """Apache ``%{SSL_CLIENT_CERT}s``: PEM with spaces for newlines; ``(null)`` if none."""


@dataclass(frozen=True, slots=True)
class ProxyHeaderSource:
    """A certificate in a request header, trusted only from configured proxy addresses.

    The header is honoured only when the TCP peer (ASGI ``scope["client"]``, WSGI
    ``REMOTE_ADDR``) is inside ``trusted_proxies``. From anyone else it is ignored and
    a warning is logged (without the header's content): otherwise any client could
    claim to be the SSP by sending the header itself.

    Raises:
        ConfigurationError: no trusted proxy, or an address that does not parse.
    """

    header: str
    """Header name, e.g. ``X-SSL-Client-Cert`` (case-insensitive)."""
    trusted_proxies: Sequence[str]
    """Addresses or networks of the proxies, e.g. ``("127.0.0.1", "10.0.0.0/24")``."""
    format: ProxyCertFormat = ProxyCertFormat.NGINX_ESCAPED
    """How the proxy encodes the certificate."""
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, repr=False, compare=False
    )
    _asgi_name: bytes = field(init=False, repr=False, compare=False)
    _wsgi_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.header or not self.header.isascii() or not self.header.isprintable():
            raise ConfigurationError("header name must be printable ASCII", source="header")
        if isinstance(self.trusted_proxies, str) or not self.trusted_proxies:
            raise ConfigurationError(
                "list at least one trusted proxy address", source="trusted_proxies"
            )
        try:
            nets = tuple(ipaddress.ip_network(a, strict=False) for a in self.trusted_proxies)
        except ValueError as exc:
            raise ConfigurationError(str(exc), source="trusted_proxies") from None
        object.__setattr__(self, "_networks", nets)
        object.__setattr__(self, "_asgi_name", self.header.lower().encode("ascii"))
        object.__setattr__(self, "_wsgi_key", "HTTP_" + self.header.upper().replace("-", "_"))

    def _trusted(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)

    def _decode(self, value: str) -> PeerCertificate | None:
        value = value.strip()
        if not value or value == "(null)":
            return None
        if len(value) > _MAX_PEM * 3:  # URL escaping triples the size at most
            raise CertificateLoadError("proxy certificate header is too large")
        if self.format is ProxyCertFormat.NGINX_ESCAPED:
            try:
                value = unquote(value, errors="strict")
            except UnicodeDecodeError:  # e.g. "%ff": escapes that are not UTF-8
                raise CertificateLoadError("proxy certificate header is not UTF-8") from None
        return _chain(_load_pem_chain(value))

    def from_scope(self, scope: Mapping[str, Any]) -> PeerCertificate | None:
        """The header's certificate if the ASGI client is a trusted proxy."""
        found: bytes | None = None
        for name, value in scope.get("headers") or ():
            if name.lower() == self._asgi_name:
                if found is not None:
                    raise CertificateLoadError("proxy certificate header appears twice")
                found = value
        if found is None:
            return None
        client = scope.get("client")
        address = client[0] if client else None
        if not self._trusted(address):
            _log.warning("ignored %s header from untrusted peer %s", self.header, address)
            return None
        try:
            text = found.decode("ascii")
        except UnicodeDecodeError:
            raise CertificateLoadError("proxy certificate header is not ASCII") from None
        return self._decode(text)

    def from_environ(self, environ: Mapping[str, Any]) -> PeerCertificate | None:
        """The header's certificate if ``REMOTE_ADDR`` is a trusted proxy."""
        value = environ.get(self._wsgi_key)
        if value is None:
            return None
        address = environ.get("REMOTE_ADDR")
        if not self._trusted(address):
            _log.warning("ignored %s header from untrusted peer %s", self.header, address)
            return None
        if not isinstance(value, str) or not value.isascii():
            raise CertificateLoadError("proxy certificate header is not ASCII")
        return self._decode(value)


class FirstOf:
    """Try several sources in order; the first that finds a certificate wins."""

    __slots__ = ("sources",)

    def __init__(self, *sources: CertificateSource) -> None:
        """Combine ``sources``.

        Raises:
            ConfigurationError: no sources given.
        """
        if not sources:
            raise ConfigurationError("FirstOf needs at least one source", source="sources")
        self.sources = sources

    def from_scope(self, scope: Mapping[str, Any]) -> PeerCertificate | None:
        """The first ASGI source's certificate."""
        for source in self.sources:
            found = source.from_scope(scope)
            if found is not None:
                return found
        return None

    def from_environ(self, environ: Mapping[str, Any]) -> PeerCertificate | None:
        """The first WSGI source's certificate."""
        for source in self.sources:
            found = source.from_environ(environ)
            if found is not None:
                return found
        return None
