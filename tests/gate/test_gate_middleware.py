"""Middleware edge cases in process, and the peer-certificate sources."""

from __future__ import annotations

import asyncio
import io
import logging
import ssl
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from spinepki._asgi import force_no_store
from spinepki.errors import CertificateLoadError, ConfigurationError
from spinepki.gate import (
    EnvironSource,
    FirstOf,
    GateASGIMiddleware,
    GateLimits,
    GateWSGIMiddleware,
    GunicornSocketSource,
    PeerCertificate,
    ProxyCertFormat,
    ProxyHeaderSource,
    RequestGate,
    TLSExtensionSource,
)
from spinepki.gate._wsgi import environ_headers
from spinepki.gate._wsgi import force_no_store as wsgi_force_no_store
from tests._helpers import receive_body
from tests.gate._helpers import (
    BY_ID,
    METADATA,
    Fixed,
    RootKind,
    encode,
    fresh_request,
    make_config,
    ssp_headers,
)

CREATE = BY_ID[
    ("urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1", RootKind.FOUNDATIONS)
]


@pytest.fixture(scope="module")
def pems(pki: Any) -> dict[str, str]:
    return {
        "ssp": pki.leaf("ssp").cert_pem.decode(),
        "chain": pki.leaf("ssp").chain_pem.decode(),
    }


# -- ASGI, in process ----------------------------------------------------------------------


async def _app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await send({"type": "lifespan.startup.complete"})
        return
    body = await receive_body(receive)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"cache-control", b"no-store, private"),
                (b"x-len", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _run_asgi(
    middleware: GateASGIMiddleware, scope: dict[str, Any], messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent


def _scope(req: Any, **over: Any) -> dict[str, Any]:
    scope = {
        "type": "http",
        "method": req.method,
        "path": req.path,
        "query_string": req.query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in req.headers],
        "client": ("127.0.0.1", 5000),
    }
    scope.update(over)
    return scope


class TestASGI:
    """The pure ASGI middleware beyond what a real server exercises."""

    def _mw(self, ssp_cert: Any, **kw: Any) -> GateASGIMiddleware:
        source = Fixed(PeerCertificate(ssp_cert))
        return GateASGIMiddleware(_app, gate=RequestGate(make_config()), cert_source=source, **kw)

    def test_lifespan_passes_through(self, ssp_cert: Any) -> None:
        """Non-HTTP scopes other than websocket go straight to the app."""
        sent = _run_asgi(self._mw(ssp_cert), {"type": "lifespan"}, [])
        assert sent == [{"type": "lifespan.startup.complete"}]

    def test_websocket_refused(self, ssp_cert: Any) -> None:
        """Websockets are closed with 1008 (GP Connect has none)."""
        sent = _run_asgi(self._mw(ssp_cert), {"type": "websocket"}, [{"type": "websocket.connect"}])
        assert sent == [{"type": "websocket.close", "code": 1008}]

    def test_no_store_kept_when_present(self, ssp_cert: Any) -> None:
        """An app value already containing no-store is kept as is."""
        req = fresh_request(METADATA)
        sent = _run_asgi(self._mw(ssp_cert), _scope(req), [])
        assert (b"cache-control", b"no-store, private") in sent[0]["headers"]

    def test_chunked_body_replayed(self, ssp_cert: Any) -> None:
        """A body in several chunks is buffered and replayed whole."""
        req = fresh_request(CREATE)
        messages = [
            {"type": "http.request", "body": b"ab", "more_body": True},
            {"type": "http.request", "body": b"cd", "more_body": False},
        ]
        sent = _run_asgi(self._mw(ssp_cert), _scope(req), messages)
        assert sent[0]["status"] == 200
        assert (b"x-len", b"4") in sent[0]["headers"]

    @pytest.mark.parametrize("length", [b"99999999999", b"abc", b"9" * 40])
    def test_declared_length_too_large(self, ssp_cert: Any, length: bytes) -> None:
        """A Content-Length over the limit (or not a number) is refused before reading."""
        req = fresh_request(CREATE)
        scope = _scope(req)
        scope["headers"].append((b"content-length", length))
        sent = _run_asgi(self._mw(ssp_cert), scope, [])
        assert sent[0]["status"] == 400

    def test_streamed_body_too_large(self, ssp_cert: Any) -> None:
        """Chunks adding up past the limit are refused."""
        gate = RequestGate(make_config(limits=GateLimits(max_body_bytes=3)))
        mw = GateASGIMiddleware(_app, gate=gate, cert_source=Fixed(PeerCertificate(ssp_cert)))
        messages = [
            {"type": "http.request", "body": b"ab", "more_body": True},
            {"type": "http.request", "body": b"cd", "more_body": False},
        ]
        sent = _run_asgi(mw, _scope(fresh_request(CREATE)), messages)
        assert sent[0]["status"] == 400

    def test_disconnect_while_reading(self, ssp_cert: Any) -> None:
        """A client that disconnects mid-body gets a 400 decision (the body is
        incomplete, never judged or passed on truncated), and the connection is closed."""
        sent = _run_asgi(self._mw(ssp_cert), _scope(fresh_request(CREATE)), [])
        assert sent[0]["status"] == 400
        assert (b"connection", b"close") in sent[0]["headers"]
        assert b"the request body is incomplete" in sent[1]["body"]

    def test_unusable_certificate_495(self) -> None:
        """A source that cannot parse the certificate -> 495."""
        mw = GateASGIMiddleware(
            _app, gate=RequestGate(make_config()), cert_source=Fixed(CertificateLoadError("bad"))
        )
        sent = _run_asgi(mw, _scope(fresh_request(METADATA)), [])
        assert sent[0]["status"] == 495

    def test_clock_injected(self, ssp_cert: Any) -> None:
        """The clock callable supplies the decision time (here: long after expiry)."""
        from datetime import UTC, datetime

        mw = self._mw(ssp_cert, clock=lambda: datetime(2100, 1, 1, tzinfo=UTC))
        sent = _run_asgi(mw, _scope(fresh_request(METADATA)), [])
        assert sent[0]["status"] == 400

    def test_needs_a_gate(self) -> None:
        """Constructing without a RequestGate is a ConfigurationError."""
        with pytest.raises(ConfigurationError):
            GateASGIMiddleware(_app, gate=None)  # type: ignore[arg-type]

    def test_force_no_store(self) -> None:
        """Weaker values are replaced, duplicates collapsed, missing ones added."""
        assert force_no_store(
            [(b"Cache-Control", b"max-age=1"), (b"cache-control", b"no-cache")]
        ) == [(b"cache-control", b"no-store")]
        assert force_no_store([(b"a", b"b")]) == [(b"a", b"b"), (b"cache-control", b"no-store")]
        assert force_no_store([(b"Cache-Control", b"No-Store"), (b"Cache-Control", b"x")]) == [
            (b"Cache-Control", b"No-Store")
        ]

    def test_force_no_store_never_mutates_the_apps_list(self) -> None:
        """A response object that reuses its header list must not collect no-stores."""
        headers = [(b"content-type", b"x")]
        for _ in range(2):
            assert force_no_store(headers) == [
                (b"content-type", b"x"),
                (b"cache-control", b"no-store"),
            ]
        assert headers == [(b"content-type", b"x")]
        # ASGI allows [name, value] lists as items, and any iterable of them.
        assert force_no_store(iter([[b"a", b"b"]])) == [
            [b"a", b"b"],
            (b"cache-control", b"no-store"),
        ]

    @pytest.mark.parametrize(
        "over",
        [
            {"reason_for_request": ["directcare"]},
            {"requesting_organization": {"identifier": [{"system": ["x"], "value": "A1"}]}},
            {"requesting_practitioner": {"identifier": [{"system": {}, "value": "1"}]}},
        ],
        ids=["reason-list", "org-system-list", "practitioner-system-dict"],
    )
    def test_unhashable_claims_are_audited_not_500(
        self, ssp_cert: Any, over: dict[str, Any], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A refused token with lists where strings belong: 400/422 and one audit event.

        Regression: the audit event looked such values up in a frozenset (TypeError -> 500).
        """
        req = fresh_request(METADATA)
        claims = {**req.claims, **over}
        headers = ssp_headers(METADATA.interaction_id, encode(claims))
        with caplog.at_level(logging.INFO, logger="spinepki.audit"):
            sent = _run_asgi(self._mw(ssp_cert), _scope(replace(req, headers=headers)), [])
        assert sent[0]["status"] in (400, 422)
        (record,) = [r for r in caplog.records if r.name == "spinepki.audit"]
        assert record.spinepki_audit["status"] == sent[0]["status"]  # type: ignore[attr-defined]


# -- WSGI, in process ----------------------------------------------------------------------


def _wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Cache-Control", "public"), ("X-Len", str(len(body)))])
    return [body]


def _environ(req: Any, body: bytes = b"", **over: Any) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": req.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": req.path,
        "QUERY_STRING": req.query,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_TYPE": "application/fhir+json",
    }
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    for k, v in req.headers:
        environ["HTTP_" + k.upper().replace("-", "_")] = v
    environ.update(over)
    return environ


def _run_wsgi(mw: GateWSGIMiddleware, environ: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got["status"], got["headers"] = status, dict(headers)
        return lambda data: None

    body = b"".join(mw(environ, start_response))
    return got["status"], got["headers"], body


class TestWSGI:
    """The WSGI middleware beyond what werkzeug exercises."""

    def _mw(self, ssp_cert: Any, gate: RequestGate | None = None) -> GateWSGIMiddleware:
        return GateWSGIMiddleware(
            _wsgi_app,
            gate=gate or RequestGate(make_config()),
            cert_source=Fixed(PeerCertificate(ssp_cert)),
        )

    def test_allowed_with_body(self, ssp_cert: Any) -> None:
        """The body is read once and replayed; Cache-Control is forced to no-store."""
        status, headers, body = _run_wsgi(
            self._mw(ssp_cert), _environ(fresh_request(CREATE), b"{}")
        )
        assert (status, headers["Cache-Control"], headers["X-Len"], body) == (
            "200 OK",
            "no-store",
            "2",
            b"{}",
        )

    def test_chunked_without_length(self, ssp_cert: Any) -> None:
        """Without CONTENT_LENGTH the body is read only when wsgi.input_terminated is set."""
        environ = _environ(fresh_request(CREATE))
        environ["wsgi.input"] = io.BytesIO(b"abc")
        environ["wsgi.input_terminated"] = True
        _, headers, _ = _run_wsgi(self._mw(ssp_cert), environ)
        assert headers["X-Len"] == "3"
        environ = _environ(fresh_request(CREATE))
        environ["wsgi.input"] = io.BytesIO(b"abc")
        _, headers, _ = _run_wsgi(self._mw(ssp_cert), environ)
        assert headers["X-Len"] == "0"

    def test_body_limits(self, ssp_cert: Any) -> None:
        """Declared or streamed bodies over the limit are 400."""
        gate = RequestGate(make_config(limits=GateLimits(max_body_bytes=2)))
        status, _, _ = _run_wsgi(self._mw(ssp_cert, gate), _environ(fresh_request(CREATE), b"abc"))
        assert status.startswith("400")
        environ = _environ(fresh_request(CREATE))
        environ.update({"wsgi.input": io.BytesIO(b"abc"), "wsgi.input_terminated": True})
        assert _run_wsgi(self._mw(ssp_cert, gate), environ)[0].startswith("400")
        environ = _environ(fresh_request(CREATE), CONTENT_LENGTH="x")
        assert _run_wsgi(self._mw(ssp_cert, gate), environ)[0].startswith("400")

    def test_script_name_is_part_of_the_path(self, ssp_cert: Any) -> None:
        """SCRIPT_NAME + PATH_INFO is matched against the service root."""
        req = fresh_request(METADATA)
        environ = _environ(req, SCRIPT_NAME=req.path[:10], PATH_INFO=req.path[10:])
        assert _run_wsgi(self._mw(ssp_cert), environ)[0] == "200 OK"
        environ = _environ(req, PATH_INFO=req.path + "\u0100")
        assert _run_wsgi(self._mw(ssp_cert), environ)[0].startswith("400")

    def test_unusable_certificate(self) -> None:
        """A certificate source error is 495."""
        mw = GateWSGIMiddleware(
            _wsgi_app, gate=RequestGate(make_config()), cert_source=Fixed(CertificateLoadError("x"))
        )
        assert _run_wsgi(mw, _environ(fresh_request(METADATA)))[0] == "495 SSL Certificate Error"

    def test_needs_a_gate(self) -> None:
        """Constructing without a RequestGate is a ConfigurationError."""
        with pytest.raises(ConfigurationError):
            GateWSGIMiddleware(_wsgi_app, gate="x")  # type: ignore[arg-type]

    def test_helpers(self) -> None:
        """environ_headers rebuilds names; force_no_store mirrors the ASGI one."""
        assert environ_headers({"HTTP_SSP_TO": "1", "CONTENT_LENGTH": "2", "CONTENT_TYPE": ""}) == [
            ("ssp-to", "1"),
            ("content-length", "2"),
        ]
        assert wsgi_force_no_store([("cache-control", "no-store"), ("Cache-Control", "x")]) == [
            ("cache-control", "no-store")
        ]


# -- certificate sources -------------------------------------------------------------------


class TestSources:
    """Each ready-made certificate source."""

    def test_tls_extension(self, pems: dict[str, str], ssp_cert: Any) -> None:
        """client_cert_chain PEM strings become leaf + intermediates; absence is None."""
        source = TLSExtensionSource()
        chain = pems["chain"]
        found = source.from_scope({"extensions": {"tls": {"client_cert_chain": [chain]}}})
        assert found is not None
        assert found.leaf == ssp_cert
        assert len(found.intermediates) == 1
        assert source.from_scope({"extensions": {"tls": {"client_cert_chain": ()}}}) is None
        assert source.from_scope({}) is None
        assert source.from_scope({"extensions": None}) is None
        assert source.from_scope({"extensions": {"tls": "x"}}) is None
        assert source.from_environ({}) is None

    def test_tls_extension_cached_by_value(self, pems: dict[str, str]) -> None:
        """The same PEM strings (even in a new list, or a tuple) give the same parsed object."""
        source = TLSExtensionSource()
        first = source.from_scope({"extensions": {"tls": {"client_cert_chain": [pems["ssp"]]}}})
        again = source.from_scope(
            {"extensions": {"tls": {"client_cert_chain": (str(pems["ssp"]),)}}}
        )
        assert first is not None
        assert again is first

    @pytest.mark.parametrize(
        "chain",
        [
            "pem",
            [1],
            ["-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----"],
            ["junk"],
            ["x"] * 9,
            [["unhashable"]],
            7,
        ],
        ids=["string", "not-str", "bad-base64", "no-pem", "too-many", "unhashable", "not-iterable"],
    )
    def test_tls_extension_garbage(self, chain: Any) -> None:
        """Malformed chains raise CertificateLoadError (-> 495)."""
        with pytest.raises(CertificateLoadError):
            TLSExtensionSource().from_scope({"extensions": {"tls": {"client_cert_chain": chain}}})

    def test_bad_der_and_huge_pem(self) -> None:
        """Valid base64 that is not a certificate, and oversized PEM, are refused."""
        bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
        with pytest.raises(CertificateLoadError):
            TLSExtensionSource().from_scope({"extensions": {"tls": {"client_cert_chain": [bad]}}})
        with pytest.raises(CertificateLoadError):
            EnvironSource().from_environ({"SSL_CLIENT_CERT": "x" * 40000})
        many = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----" * 9
        with pytest.raises(CertificateLoadError):
            EnvironSource().from_environ({"SSL_CLIENT_CERT": many})

    def test_environ(self, pems: dict[str, str], ssp_cert: Any) -> None:
        """SSL_CLIENT_CERT (+ mod_ssl chain keys); '(null)' and absence are None."""
        source = EnvironSource()
        found = source.from_environ(
            {"SSL_CLIENT_CERT": pems["ssp"], "SSL_CLIENT_CERT_CHAIN_0": pems["chain"]}
        )
        assert found is not None
        assert found.leaf == ssp_cert
        assert len(found.intermediates) == 1
        assert source.from_environ({"SSL_CLIENT_CERT": "(null)"}) is None
        assert source.from_environ({}) is None
        assert source.from_scope({}) is None
        with pytest.raises(CertificateLoadError):
            source.from_environ({"SSL_CLIENT_CERT": b"x"})

    def test_gunicorn_socket(self, pki: Any, ssp_cert: Any) -> None:
        """gunicorn.socket.getpeercert(True) DER is used; plain sockets give None."""

        class Sock:
            def __init__(self, der: Any) -> None:
                self.der = der

            def getpeercert(self, binary_form: bool = False) -> Any:
                if isinstance(self.der, Exception):
                    raise self.der
                return self.der

        der = ssp_cert.public_bytes(Encoding.DER)
        source = GunicornSocketSource()
        found = source.from_environ({"gunicorn.socket": Sock(der)})
        assert found is not None
        assert found.leaf == ssp_cert
        assert source.from_environ({"gunicorn.socket": Sock(None)}) is None
        assert source.from_environ({"gunicorn.socket": Sock(ValueError())}) is None
        assert source.from_environ({"gunicorn.socket": object()}) is None
        assert source.from_scope({}) is None
        with pytest.raises(CertificateLoadError):
            source.from_environ({"gunicorn.socket": Sock(b"\x30\x00")})
        assert ssl.DER_cert_to_PEM_cert(der)  # sanity: it is real DER

    def test_nginx_proxy_header_trusted(self, pems: dict[str, str], ssp_cert: Any) -> None:
        """nginx $ssl_client_escaped_cert from a trusted proxy is decoded (ASGI and WSGI)."""
        source = ProxyHeaderSource("X-SSL-Client-Cert", ["127.0.0.1", "10.0.0.0/8"])
        value = quote(pems["ssp"], safe="")
        scope = {"client": ("10.1.2.3", 1), "headers": [(b"x-ssl-client-cert", value.encode())]}
        found = source.from_scope(scope)
        assert found is not None
        assert found.leaf == ssp_cert
        environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_SSL_CLIENT_CERT": value}
        found = source.from_environ(environ)
        assert found is not None
        assert found.leaf == ssp_cert
        assert source.from_scope({"client": ("127.0.0.1", 1), "headers": []}) is None
        assert source.from_environ({"REMOTE_ADDR": "127.0.0.1"}) is None

    def test_apache_proxy_header(self, pems: dict[str, str], ssp_cert: Any) -> None:
        """Apache's spaces-for-newlines PEM is decoded; '(null)' means no certificate."""
        source = ProxyHeaderSource("X-Client-Cert", ["::1"], ProxyCertFormat.APACHE)
        value = pems["ssp"].strip().replace("\n", " ")
        environ = {"REMOTE_ADDR": "::1", "HTTP_X_CLIENT_CERT": value}
        found = source.from_environ(environ)
        assert found is not None
        assert found.leaf == ssp_cert
        assert source.from_environ({"REMOTE_ADDR": "::1", "HTTP_X_CLIENT_CERT": "(null)"}) is None

    @pytest.mark.parametrize("peer", ["192.0.2.1", None, "not-an-ip"])
    def test_untrusted_proxy_header_ignored_and_logged(
        self, pems: dict[str, str], peer: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A proxy header from anyone but a trusted proxy is ignored, and a warning logged."""
        source = ProxyHeaderSource("X-SSL-Client-Cert", ["127.0.0.1"])
        value = quote(pems["ssp"], safe="")
        with caplog.at_level(logging.WARNING, logger="spinepki.gate._certsource"):
            client = (peer, 1) if peer else None
            assert (
                source.from_scope(
                    {"client": client, "headers": [(b"x-ssl-client-cert", value.encode())]}
                )
                is None
            )
            assert (
                source.from_environ({"REMOTE_ADDR": peer, "HTTP_X_SSL_CLIENT_CERT": value}) is None
            )
        assert len(caplog.records) == 2
        assert "BEGIN" not in caplog.text
        assert "%2D" not in caplog.text

    def test_proxy_header_garbage(self) -> None:
        """A duplicated, non-ASCII or oversize proxy header is refused."""
        source = ProxyHeaderSource("X-C", ["127.0.0.1"])
        scope = {"client": ("127.0.0.1", 1), "headers": [(b"x-c", b"a"), (b"x-c", b"b")]}
        with pytest.raises(CertificateLoadError):
            source.from_scope(scope)
        with pytest.raises(CertificateLoadError):
            source.from_scope({"client": ("127.0.0.1", 1), "headers": [(b"x-c", b"\xff")]})
        with pytest.raises(CertificateLoadError):
            source.from_environ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_C": "é"})
        with pytest.raises(CertificateLoadError):
            source.from_environ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_C": "a" * 200_000})
        assert source.from_environ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_C": " "}) is None

    @pytest.mark.parametrize(
        ("header", "proxies"), [("", ["127.0.0.1"]), ("X", []), ("X", "127.0.0.1"), ("X", ["nope"])]
    )
    def test_proxy_config(self, header: str, proxies: Any) -> None:
        """A proxy source needs a header name and parseable trusted addresses."""
        with pytest.raises(ConfigurationError):
            ProxyHeaderSource(header, proxies)

    def test_first_of(self, ssp_cert: Any) -> None:
        """FirstOf returns the first source's find, in order; it needs one source at least."""
        found = PeerCertificate(ssp_cert)
        combo = FirstOf(Fixed(None), Fixed(found))
        assert combo.from_scope({}) is found
        assert combo.from_environ({}) is found
        assert FirstOf(Fixed(None)).from_scope({}) is None
        assert FirstOf(Fixed(None)).from_environ({}) is None
        with pytest.raises(ConfigurationError):
            FirstOf()
