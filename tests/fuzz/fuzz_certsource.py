"""Fuzz target: the peer-certificate sources, above all the proxy-header decoder
(nginx ``$ssl_client_escaped_cert``, Apache's space-joined PEM) and the ASGI TLS extension.

Invariants: a source returns a ``PeerCertificate`` or None, or raises
``CertificateLoadError`` (the middleware's 495); nothing else; an untrusted peer's header
is never decoded; bounded time and memory per input.

Atheris: ``python -m tests.fuzz.fuzz_certsource [libFuzzer flags] [corpus]``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import strategies as st

from spinepki.errors import CertificateLoadError
from spinepki.gate._certsource import (
    EnvironSource,
    PeerCertificate,
    ProxyCertFormat,
    ProxyHeaderSource,
    TLSExtensionSource,
)
from tests.fuzz import _samples as s
from tests.fuzz._helpers import atheris_main, fuzz_test

HEADER = "X-SSL-Client-Cert"
NGINX = ProxyHeaderSource(HEADER, ("127.0.0.1", "10.0.0.0/8"), ProxyCertFormat.NGINX_ESCAPED)
APACHE = ProxyHeaderSource(HEADER, ("127.0.0.1", "::1"), ProxyCertFormat.APACHE)


@functools.cache
def nginx_value() -> str:
    """What nginx puts in the header for the ssp chain."""
    return quote(s.chain_pem().decode(), safe="")


@functools.cache
def apache_value() -> str:
    """What Apache's %{SSL_CLIENT_CERT}s gives: PEM with spaces for newlines."""
    return s.chain_pem().decode().replace("\n", " ")


#: Known finding F5 (pinned by test_regression_nginx_escape_not_utf8): tolerated in the
#: properties so a campaign keeps looking for new failures. Remove when fixed.
KNOWN: tuple[type[BaseException], ...] = ()  # F5 fixed
#: Known finding F8 (pinned by test_regression_invalid_x509_version): any source format.
KNOWN_ANY: tuple[type[BaseException], ...] = ()  # F8 fixed
LOAD_ERRORS: tuple[type[BaseException], ...] = (CertificateLoadError, *KNOWN_ANY)


def _load(source: ProxyHeaderSource, value: bytes, *, asgi: bool) -> PeerCertificate | None:
    try:
        if asgi:
            scope = {"headers": [(HEADER.lower().encode(), value)], "client": ("127.0.0.1", 1)}
            return source.from_scope(scope)
        environ = {"HTTP_X_SSL_CLIENT_CERT": value.decode("latin-1"), "REMOTE_ADDR": "127.0.0.1"}
        return source.from_environ(environ)
    except CertificateLoadError:
        return None
    except KNOWN_ANY:
        return None
    except KNOWN:
        assert source.format is ProxyCertFormat.NGINX_ESCAPED
        return None


@fuzz_test(st.sampled_from([NGINX, APACHE]), st.binary(max_size=3000), st.booleans())
def test_proxy_header_random(source: ProxyHeaderSource, value: bytes, asgi: bool) -> None:
    """Random header bytes: a certificate, None or CertificateLoadError."""
    _load(source, value, asgi=asgi)


@fuzz_test(st.booleans(), s.MUTATIONS, st.booleans())
def test_proxy_header_mutated(nginx: bool, changes: list[tuple[int, int, int]], asgi: bool) -> None:
    """A real nginx/Apache header value with flipped, deleted or inserted bytes."""
    value = (nginx_value() if nginx else apache_value()).encode()
    found = _load(NGINX if nginx else APACHE, s.mutate(value, changes), asgi=asgi)
    assert found is None or isinstance(found, PeerCertificate)


@fuzz_test(st.sampled_from([NGINX, APACHE]), st.text(max_size=2000))
def test_proxy_header_text(source: ProxyHeaderSource, value: str) -> None:
    """Any text (non-ASCII included) through WSGI's latin-1 environ."""
    environ = {"HTTP_X_SSL_CLIENT_CERT": value, "REMOTE_ADDR": "10.1.2.3"}
    try:
        source.from_environ(environ)
    except LOAD_ERRORS:
        pass
    except KNOWN:
        assert source.format is ProxyCertFormat.NGINX_ESCAPED


@fuzz_test(st.text(max_size=60) | st.none() | st.integers(), st.binary(max_size=200))
def test_untrusted_peer_never_decoded(address: Any, value: bytes) -> None:
    """From an address outside trusted_proxies the header is ignored: always None."""
    if isinstance(address, str) and address.startswith(("127.", "10.")):
        return
    scope = {"headers": [(HEADER.lower().encode(), value)], "client": (address, 1)}
    assert NGINX.from_scope(scope) is None


pem_entries = st.one_of(
    st.just(s.chain_pem().decode()),
    st.text(max_size=400),
    st.builds(lambda c: s.mutate(s.chain_pem(), c).decode("latin-1"), s.MUTATIONS),
    st.binary(max_size=50),
    st.integers(),
    st.lists(st.text(max_size=5), max_size=2),
)


@fuzz_test(
    st.one_of(
        st.lists(pem_entries, max_size=10),
        pem_entries,
        st.none(),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5)),
    ),
    st.sampled_from(["tls", "other"]),
)
def test_tls_extension(chain: Any, key: str) -> None:
    """Any ``client_cert_chain`` value in the ASGI TLS extension."""
    with contextlib.suppress(CertificateLoadError):
        TLSExtensionSource().from_scope({"extensions": {key: {"client_cert_chain": chain}}})


@fuzz_test(st.text(max_size=1500), st.lists(st.text(max_size=300), max_size=10))
def test_environ_source(leaf: str, chain: list[str]) -> None:
    """SSL_CLIENT_CERT and mod_ssl's SSL_CLIENT_CERT_CHAIN_n with any text."""
    environ: dict[str, Any] = {"SSL_CLIENT_CERT": leaf}
    environ.update({f"SSL_CLIENT_CERT_CHAIN_{i}": v for i, v in enumerate(chain)})
    with contextlib.suppress(CertificateLoadError):
        EnvironSource().from_environ(environ)


def test_real_values_decode() -> None:
    """The unmutated nginx and Apache values decode to the ssp leaf and its Sub CA."""
    for source, value in ((NGINX, nginx_value()), (APACHE, apache_value())):
        found = _load(source, value.encode(), asgi=True)
        assert found is not None
        assert found.leaf == s.pki().leaf("ssp").certificate
        assert len(found.intermediates) == 1


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_regression_nginx_escape_not_utf8(asgi: bool) -> None:
    """Found by fuzzing (minimised: the header value ``%ff`` from a trusted proxy): must be
    CertificateLoadError (the middleware's 495), not UnicodeDecodeError (a 500)."""
    scope = {"headers": [(b"x-ssl-client-cert", b"%ff")], "client": ("127.0.0.1", 1)}
    environ = {"HTTP_X_SSL_CLIENT_CERT": "%ff", "REMOTE_ADDR": "127.0.0.1"}
    with pytest.raises(CertificateLoadError):
        NGINX.from_scope(scope) if asgi else NGINX.from_environ(environ)


def test_regression_nginx_escape_not_utf8_middleware() -> None:
    """Through the WSGI middleware the same header must be answered 495 with no-store."""
    from spinepki.gate._wsgi import GateWSGIMiddleware

    statuses: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None, /) -> Any:
        statuses.append((status, headers))
        return lambda data: None

    middleware = GateWSGIMiddleware(lambda e, r: [b""], gate=s.gate(), cert_source=NGINX)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "HTTP_X_SSL_CLIENT_CERT": "%ff",
        "REMOTE_ADDR": "127.0.0.1",
    }
    middleware(environ, start_response)
    [(status, headers)] = statuses
    assert status == "495 SSL Certificate Error"
    assert ("Cache-Control", "no-store") in headers


@pytest.mark.parametrize("fmt", ["apache", "nginx", "environ", "tls-extension"])
def test_regression_invalid_x509_version(fmt: str) -> None:
    """Found by atheris: a certificate whose version field is 106 must give
    CertificateLoadError (495) from every certificate source."""
    pem = s.invalid_version_pem()
    calls: dict[str, Callable[[], object]] = {
        "apache": lambda: APACHE.from_environ(
            {"HTTP_X_SSL_CLIENT_CERT": pem.replace("\n", " "), "REMOTE_ADDR": "127.0.0.1"}
        ),
        "nginx": lambda: NGINX.from_environ(
            {"HTTP_X_SSL_CLIENT_CERT": quote(pem, safe=""), "REMOTE_ADDR": "127.0.0.1"}
        ),
        "environ": lambda: EnvironSource().from_environ({"SSL_CLIENT_CERT": pem}),
        "tls-extension": lambda: TLSExtensionSource().from_scope(
            {"extensions": {"tls": {"client_cert_chain": [pem]}}}
        ),
    }
    with pytest.raises(CertificateLoadError):
        calls[fmt]()


def fuzz_one_input(data: bytes) -> None:
    """Atheris: the first byte picks nginx/Apache and ASGI/WSGI; the rest is the header."""
    if not data:
        return
    source = NGINX if data[0] & 1 else APACHE
    found = _load(source, data[1:], asgi=bool(data[0] & 2))
    assert found is None or isinstance(found, PeerCertificate)


def _atheris_seeds() -> list[bytes]:
    return [
        b"\x01" + nginx_value().encode(),
        b"\x02" + apache_value().encode(),
        b"\x03" + nginx_value().encode(),
        b"\x00" + apache_value().encode(),
    ]


if __name__ == "__main__":
    atheris_main(fuzz_one_input, _atheris_seeds())
