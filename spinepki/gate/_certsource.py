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
``ProxyHeaderSource``     a header set by the TLS edge (nginx, Apache, HAProxy, Envoy,
                          AWS ALB, Traefik, Azure Application Gateway), *only* from
                          trusted proxies
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

from spinepki._listen import address_in
from spinepki._loading import MALFORMED_INPUT
from spinepki._x509 import parse_fully
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
    "decode_proxy_header",
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
    """How a TLS-terminating proxy encodes the certificate in its header.

    Each format is the one its proxy documents (the page is cited on each member and in
    ``docs/deploy-fleet.md``); :attr:`header` is the header name that documentation uses.
    """

    NGINX_ESCAPED = "nginx-escaped"
    """nginx ``$ssl_client_escaped_cert``: URL-escaped PEM (leaf only).
    https://nginx.org/en/docs/http/ngx_http_ssl_module.html#var_ssl_client_escaped_cert"""
    APACHE = "apache"
    """Apache ``%{SSL_CLIENT_CERT}s``: PEM with spaces for newlines; ``(null)`` if none.
    https://httpd.apache.org/docs/2.4/mod/mod_ssl.html#envvars"""
    HAPROXY_BASE64 = "haproxy-base64"
    """HAProxy ``%[ssl_c_der,base64]``: the leaf's DER in base64 (standard alphabet,
    padded), nothing around it.
    https://docs.haproxy.org/2.6/configuration.html#7.3.4-ssl_c_der"""
    ENVOY_XFCC = "envoy-xfcc"
    """Envoy ``x-forwarded-client-cert``: comma-separated elements, one per proxy, each
    ``;``-separated ``key=value`` pairs, values double-quoted when they hold ``,;=``
    (``\\"`` for a quote). The *last* element (the one the proxy in front of us added)
    is read: ``Chain`` (URL-encoded PEM, leaf first), else ``Cert`` (URL-encoded PEM).
    https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/headers#x-forwarded-client-cert"""
    AWS_ALB = "aws-alb"
    """AWS Application Load Balancer mutual TLS: ``X-Amzn-Mtls-Clientcert-Leaf`` (verify
    mode, the leaf) or ``X-Amzn-Mtls-Clientcert`` (passthrough mode, the whole chain), each
    "URL-encoded PEM format ... with +=/ as safe characters" (so ``+`` is not a space).
    https://docs.aws.amazon.com/elasticloadbalancing/latest/application/mutual-authentication.html"""
    TRAEFIK = "traefik"
    """Traefik ``PassTLSClientCert`` (``pem: true``): ``X-Forwarded-Tls-Client-Cert``, each
    certificate's PEM body without delimiters or newlines, certificates separated by
    ``,``; Traefik 2.x URL-escapes the whole value.
    https://doc.traefik.io/traefik/middlewares/http/passtlsclientcert/"""
    AZURE_APPGW = "azure-appgw"
    """Azure Application Gateway's ``{var_client_certificate}`` server variable, put in a
    request header by a rewrite rule: "the client certificate in PEM format". How its
    line breaks travel in a header is not documented, so every header-safe form of one
    PEM certificate is read: line breaks as spaces or tabs, URL-escaped, or the bare
    base64 body.
    https://learn.microsoft.com/azure/application-gateway/rewrite-http-headers-url#mutual-authentication-server-variables"""

    @property
    def header(self) -> str:
        """The header name the proxy's documentation uses (``X-SSL-Client-Cert`` for the
        servers whose header name is configuration)."""
        return _DOCUMENTED_HEADER[self]


_DOCUMENTED_HEADER = {
    ProxyCertFormat.NGINX_ESCAPED: "X-SSL-Client-Cert",
    ProxyCertFormat.APACHE: "X-SSL-Client-Cert",
    ProxyCertFormat.HAPROXY_BASE64: "X-SSL-Client-Cert",
    ProxyCertFormat.ENVOY_XFCC: "X-Forwarded-Client-Cert",
    ProxyCertFormat.AWS_ALB: "X-Amzn-Mtls-Clientcert-Leaf",
    ProxyCertFormat.TRAEFIK: "X-Forwarded-Tls-Client-Cert",
    ProxyCertFormat.AZURE_APPGW: "X-Client-Certificate",
}
# A header value larger than this is refused before any decoding: a whole Spine chain,
# URL-escaped (up to three characters per byte), fits with room to spare.
_MAX_HEADER = _MAX_PEM * 3
# XFCC: each proxy a request passed adds one element; more than this is not a real path.
_MAX_XFCC_ELEMENTS = 16
_MAX_XFCC_PAIRS = 32
# One XFCC token: a quoted string (backslash escapes), a separator, or a bare run. The
# possessive/atomic forms keep every match linear however the value is built.
_XFCC_TOKEN = re.compile(r'"(?:[^"\\]|\\[\s\S])*+"|[,;]|[^",;]++|"')
_XFCC_UNESCAPE = re.compile(r"\\([\s\S])")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def _unescape_url(value: str) -> str:
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:  # e.g. "%ff": escapes that are not UTF-8
        raise CertificateLoadError("proxy certificate header is not UTF-8") from None


def _der_base64(value: str) -> x509.Certificate:
    compact = value.strip()
    if _BASE64.fullmatch(compact) is None:
        raise CertificateLoadError("proxy certificate header is not base64")
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise CertificateLoadError("proxy certificate header is not base64") from None
    return _load_der(der)


def _from_nginx(value: str) -> tuple[x509.Certificate, ...]:
    return _load_pem_chain(_unescape_url(value))


def _from_apache(value: str) -> tuple[x509.Certificate, ...]:
    return _load_pem_chain(value)


def _from_haproxy(value: str) -> tuple[x509.Certificate, ...]:
    return (_der_base64(value),)


def _from_traefik(value: str) -> tuple[x509.Certificate, ...]:
    if "%" in value:  # Traefik 2.x escapes the value for a URL query (url.QueryEscape)
        value = _unescape_url(value)
    items = value.split(",")
    if len(items) > _MAX_CHAIN:
        raise CertificateLoadError("too many certificates in the peer chain")
    return tuple(_der_base64(item) for item in items)


def _from_azure(value: str) -> tuple[x509.Certificate, ...]:
    if "%" in value:
        value = _unescape_url(value)
    if "-----BEGIN" in value:
        return _load_pem_chain(value)
    return (_der_base64("".join(value.split())),)


def _xfcc_elements(value: str) -> list[list[str]]:
    """Split an XFCC value into elements, each a list of raw ``key=value`` pairs."""
    elements: list[list[str]] = [[]]
    pieces: list[str] = []
    fields = 0
    for match in _XFCC_TOKEN.finditer(value):
        piece = match.group()
        if piece == '"':
            raise CertificateLoadError("x-forwarded-client-cert has an unterminated quote")
        if piece not in (",", ";"):
            pieces.append(piece)
            continue
        elements[-1].append("".join(pieces))
        pieces = []
        fields += 1
        if fields > _MAX_XFCC_PAIRS * _MAX_XFCC_ELEMENTS:
            raise CertificateLoadError("x-forwarded-client-cert has too many fields")
        if piece == ",":
            elements.append([])
            if len(elements) > _MAX_XFCC_ELEMENTS:
                raise CertificateLoadError("x-forwarded-client-cert has too many elements")
    elements[-1].append("".join(pieces))
    return elements


def _xfcc_value(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        return _XFCC_UNESCAPE.sub(r"\1", raw[1:-1])
    if '"' in raw:
        raise CertificateLoadError("x-forwarded-client-cert has a misplaced quote")
    return raw


def _from_envoy(value: str) -> tuple[x509.Certificate, ...]:
    # The last element is the one the proxy directly in front added; earlier ones came
    # from further away (APPEND_FORWARD) and are not this connection's certificate.
    element = _xfcc_elements(value)[-1]
    if len(element) > _MAX_XFCC_PAIRS:
        raise CertificateLoadError("x-forwarded-client-cert has too many fields")
    fields: dict[str, str] = {}
    for pair in element:
        key, eq, raw = pair.partition("=")
        key = key.strip().lower()
        if not eq or not key:
            raise CertificateLoadError("x-forwarded-client-cert field is not key=value")
        if key in ("cert", "chain"):
            if key in fields:  # which one would the application read?
                raise CertificateLoadError(f"x-forwarded-client-cert names {key} twice")
            fields[key] = _xfcc_value(raw)
    chain = _from_nginx(fields["chain"]) if "chain" in fields else ()
    if "cert" in fields:
        leaf = _from_nginx(fields["cert"])
        if len(leaf) != 1:
            raise CertificateLoadError("x-forwarded-client-cert Cert is not one certificate")
        if chain and chain[0] != leaf[0]:
            raise CertificateLoadError("x-forwarded-client-cert Cert and Chain disagree")
        return chain or leaf
    return chain


_DECODERS = {
    ProxyCertFormat.NGINX_ESCAPED: _from_nginx,
    ProxyCertFormat.APACHE: _from_apache,
    ProxyCertFormat.HAPROXY_BASE64: _from_haproxy,
    ProxyCertFormat.ENVOY_XFCC: _from_envoy,
    ProxyCertFormat.AWS_ALB: _from_nginx,  # URL-encoded PEM, one certificate or a chain
    ProxyCertFormat.TRAEFIK: _from_traefik,
    ProxyCertFormat.AZURE_APPGW: _from_azure,
}


@functools.lru_cache(maxsize=64)
def decode_proxy_header(value: str, fmt: ProxyCertFormat) -> PeerCertificate | None:
    """The certificate (and chain) in a proxy header value of format ``fmt``, or None
    when the value says there is none (empty, ``(null)``, an XFCC element without one).

    The edge in front forwards the same header on every request of a connection (and the
    SSP reuses one certificate), so the result is cached by the exact value.

    Raises:
        CertificateLoadError: a value that is too large, not in the format, or not a
            certificate.
    """
    value = value.strip()
    if not value or value == "(null)":
        return None
    if len(value) > _MAX_HEADER:
        raise CertificateLoadError("proxy certificate header is too large")
    return _chain(_DECODERS[fmt](value))


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
        return address_in(address, self._networks)

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
        return decode_proxy_header(text, self.format)

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
        return decode_proxy_header(value, self.format)


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
