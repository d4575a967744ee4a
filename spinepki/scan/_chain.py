"""The certificate chain a live endpoint presents (``spinepki cert show https://...``).

The chain is read the way the scanner reads it: from the TLS 1.2 Certificate message
that answers a raw ClientHello. In TLS 1.2 that message travels in clear before the
server asks for a client certificate, so a mutual-TLS provider shows its chain to a
caller that has no certificate. A server that refuses TLS 1.2 is asked with a TLS 1.3
handshake instead, which shows only its leaf (Python exposes no more before 3.13).
Nothing is validated here: ``ClientCertValidator`` does that.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from cryptography import x509

from spinepki._endpoint import resolve_endpoint
from spinepki._loading import MALFORMED_INPUT, short_reason
from spinepki.errors import CertificateLoadError, ConfigurationError
from spinepki.scan._hello import TLS1_2
from spinepki.scan._probes import handshake, hello_probe, scan_context
from spinepki.scan._report import ScanError
from spinepki.scan._scan import MAX_TIMEOUT, _is_ip, _known_suites

__all__ = ["MAX_PRESENTED_CERTIFICATES", "fetch_chain", "parse_https_url"]

#: The most certificates of a presented chain that are decoded (Spine sends 2; a
#: hostile server may send hundreds, which only cost reading, bounded by the reader).
MAX_PRESENTED_CERTIFICATES = 10


def parse_https_url(url: str) -> tuple[str, int]:
    """``(host, port)`` of ``https://HOST[:PORT][/]`` (port 443 by default).

    Raises:
        ConfigurationError: another scheme, a path, query, fragment or credentials, or a
            bad port.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"not a usable URL: {exc}", source=url) from None
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise ConfigurationError("expected https://HOST[:PORT]", source=url)
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigurationError(
            "expected https://HOST[:PORT] without a path, query or credentials", source=url
        )
    if port == 0:
        raise ConfigurationError("port must be between 1 and 65535", source=url)
    return parts.hostname, port or 443


def fetch_chain(
    host: str, port: int = 443, *, server_name: str | None = None, timeout: float = 5.0
) -> tuple[x509.Certificate, ...]:
    """The certificates ``host:port`` presents, leaf first, unvalidated.

    Args:
        host / port: the endpoint (resolved once; the first address that answers).
        server_name: the SNI name to send (default: ``host`` unless it is an IP address).
        timeout: seconds for the connect and for each read (at most 120).

    Raises:
        ConfigurationError: a bad port or timeout.
        ScanError: the endpoint cannot be resolved or connected to, or sent no certificate.
        CertificateLoadError: a presented certificate does not parse.
    """
    if not 1 <= port <= 65535:
        raise ConfigurationError("port must be between 1 and 65535", source="port")
    if not 0 < timeout <= MAX_TIMEOUT:
        raise ConfigurationError(
            f"timeout must be in (0, {MAX_TIMEOUT:g}] seconds", source="timeout"
        )
    sni = server_name or (None if _is_ip(host) else host)
    address = resolve_endpoint(host, port, timeout, error=ScanError)
    hello = hello_probe(
        address,
        TLS1_2,
        list(_known_suites()),
        server_name=sni,
        timeout=timeout,
        want_certificate=True,
    )
    der: tuple[bytes, ...] = tuple(hello.certificates or ())
    if not der:
        full = handshake(
            address, scan_context(ssl.TLSVersion.TLSv1_3), server_name=sni, timeout=timeout
        )
        if full.peer_certificate is None:
            raise ScanError(
                f"no certificate presented (TLS 1.2: {hello.refusal}; TLS 1.3: {full.error})",
                host=host,
                port=port,
            )
        der = (full.peer_certificate,)
    certs = []
    for index, item in enumerate(der[:MAX_PRESENTED_CERTIFICATES]):
        try:
            certs.append(x509.load_der_x509_certificate(item))
        except MALFORMED_INPUT as exc:
            raise CertificateLoadError(
                f"presented certificate {index + 1} does not parse: {short_reason(exc)}",
                source=f"{host}:{port}",
            ) from exc
    return tuple(certs)
