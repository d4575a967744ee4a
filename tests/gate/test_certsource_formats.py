"""ProxyHeaderSource reads each TLS edge's client-certificate header, from trusted peers only.

Every format is built the way its proxy's documentation describes it (cited on each
``ProxyCertFormat`` member): Envoy's ``x-forwarded-client-cert`` (with the documentation's
own examples), the AWS ALB ``X-Amzn-Mtls-Clientcert(-Leaf)`` headers, Traefik's
``X-Forwarded-Tls-Client-Cert`` (with the certificate its documentation prints), HAProxy's
``%[ssl_c_der,base64]`` and Azure Application Gateway's ``{var_client_certificate}``.
Each parser is also fuzzed (Hypothesis) and fed 100x the normal size; after every hostile
value the legitimate SSP header is still read. HAProxy's runs for real in tests/parity.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinepki.errors import CertificateLoadError
from spinepki.gate import ProxyCertFormat, ProxyHeaderSource
from spinepki.gate._certsource import decode_proxy_header

ROOT = Path(__file__).resolve().parents[2]
TRAEFIK_DOC_CERT = ROOT / "testdata/proxy-headers/traefik-passtlsclientcert-example.pem"
PROXY = "10.0.0.7"
ALL = list(ProxyCertFormat)


def _b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def encode(fmt: ProxyCertFormat, chain: list[x509.Certificate]) -> str:
    """What the proxy of ``fmt`` puts in its header for ``chain`` (leaf first)."""
    pems = "".join(_pem(c) for c in chain)
    if fmt is ProxyCertFormat.NGINX_ESCAPED:
        return quote(pems, safe="")
    if fmt is ProxyCertFormat.APACHE:
        return pems.replace("\n", " ")
    if fmt is ProxyCertFormat.HAPROXY_BASE64:
        return _b64(chain[0])
    if fmt is ProxyCertFormat.ENVOY_XFCC:
        cert, full = quote(_pem(chain[0]), safe=""), quote(pems, safe="")
        subject = chain[0].subject.rfc4514_string().replace('"', '\\"')
        return (
            "By=spiffe://edge.example.nhs.uk;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c"
            f'0748a02dd8de688;Cert="{cert}";Chain="{full}";Subject="{subject}";DNS=x.example'
        )
    if fmt is ProxyCertFormat.AWS_ALB:
        return quote(pems, safe="+=/")  # "URL-encoded PEM ... with +=/ as safe characters"
    if fmt is ProxyCertFormat.TRAEFIK:
        return ",".join(_b64(c) for c in chain)
    return _pem(chain[0]).replace("\n", " ")  # AZURE_APPGW


def _source(fmt: ProxyCertFormat) -> ProxyHeaderSource:
    return ProxyHeaderSource(fmt.header, (PROXY, "::1"), fmt)


def _scope(fmt: ProxyCertFormat, value: str | bytes, client: str = PROXY) -> dict[str, Any]:
    raw = value.encode() if isinstance(value, str) else value
    return {"headers": [(fmt.header.lower().encode(), raw)], "client": (client, 40000)}


def _environ(fmt: ProxyCertFormat, value: str, client: str = PROXY) -> dict[str, Any]:
    return {"HTTP_" + fmt.header.upper().replace("-", "_"): value, "REMOTE_ADDR": client}


@pytest.fixture(scope="module")
def chain(pki: Any) -> list[x509.Certificate]:
    ssp = pki.leaf("ssp")
    return [ssp.certificate, *ssp.chain]


class TestEachFormat:
    @pytest.mark.parametrize("fmt", ALL, ids=[f.value for f in ALL])
    def test_reads_the_leaf_from_a_trusted_proxy(
        self, fmt: ProxyCertFormat, chain: list[x509.Certificate]
    ) -> None:
        """ASGI and WSGI alike: the leaf (and the chain where the format carries one)."""
        value = encode(fmt, chain)
        for found in (
            _source(fmt).from_scope(_scope(fmt, value)),
            _source(fmt).from_environ(_environ(fmt, value)),
        ):
            assert found is not None
            assert found.leaf == chain[0]
            if fmt in (ProxyCertFormat.HAPROXY_BASE64, ProxyCertFormat.AZURE_APPGW):
                assert found.intermediates == ()
            else:
                assert list(found.intermediates) == chain[1:]

    @pytest.mark.parametrize("fmt", ALL, ids=[f.value for f in ALL])
    def test_untrusted_peer_is_ignored(
        self, fmt: ProxyCertFormat, chain: list[x509.Certificate], caplog: Any
    ) -> None:
        """From any other address the header is ignored (and not decoded), with a warning
        that does not quote it."""
        value = encode(fmt, chain)
        with caplog.at_level(logging.WARNING, "spinepki.gate._certsource"):
            assert _source(fmt).from_scope(_scope(fmt, value, client="192.0.2.9")) is None
            assert _source(fmt).from_environ(_environ(fmt, value, client="192.0.2.9")) is None
        assert "192.0.2.9" in caplog.text
        assert value[:40] not in caplog.text

    @pytest.mark.parametrize("fmt", ALL, ids=[f.value for f in ALL])
    @pytest.mark.parametrize("empty", ["", "   ", "(null)"])
    def test_no_certificate(self, fmt: ProxyCertFormat, empty: str) -> None:
        """An empty value (or Apache's ``(null)``) means none: the gate answers 496."""
        assert decode_proxy_header(empty, fmt) is None

    @pytest.mark.parametrize("fmt", ALL, ids=[f.value for f in ALL])
    def test_header_twice_is_refused(
        self, fmt: ProxyCertFormat, chain: list[x509.Certificate]
    ) -> None:
        """Two copies of the header: which one would an application read? 495."""
        value = encode(fmt, chain).encode()
        scope = _scope(fmt, value)
        scope["headers"].append(scope["headers"][0])
        with pytest.raises(CertificateLoadError, match="twice"):
            _source(fmt).from_scope(scope)

    @pytest.mark.parametrize("fmt", ALL, ids=[f.value for f in ALL])
    def test_hundredfold_size_is_refused_fast(
        self, fmt: ProxyCertFormat, chain: list[x509.Certificate]
    ) -> None:
        """100x a real header is refused by its length, in bounded time, before decoding;
        the real one is read afterwards."""
        value = encode(fmt, chain)
        started = time.perf_counter()
        with pytest.raises(CertificateLoadError):
            decode_proxy_header(value * 100, fmt)
        assert time.perf_counter() - started < 1
        found = decode_proxy_header(value, fmt)
        assert found is not None
        assert found.leaf == chain[0]


class TestEnvoy:
    """https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/headers"""

    FMT = ProxyCertFormat.ENVOY_XFCC
    # The documentation's three examples, verbatim: none carries Cert or Chain.
    DOC_EXAMPLES = (
        "By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a"
        '02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";'
        "URI=http://testclient.lyft.com",
        "By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a"
        "02dd8de688;URI=http://testclient.lyft.com,By=http://backend.lyft.com;Hash=9ba61d64253034"
        "43c0748a02dd8de688468ed33be74eee6556d90c0149c1309e;URI=http://frontend.lyft.com",
        "By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a"
        '02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";'
        "URI=http://testclient.lyft.com;DNS=lyft.com;DNS=www.lyft.com",
    )

    @pytest.mark.parametrize("example", DOC_EXAMPLES)
    def test_documented_examples_parse_and_carry_no_certificate(self, example: str) -> None:
        """The documented examples (several elements, quoting, repeated DNS) parse; with
        no Cert/Chain there is no certificate, so the gate answers 496."""
        assert decode_proxy_header(example, self.FMT) is None

    def test_cert_only(self, chain: list[x509.Certificate]) -> None:
        """``set_current_client_cert_details: {cert: true}``: the leaf alone."""
        found = decode_proxy_header(f"Hash=ab;Cert={quote(_pem(chain[0]), safe='')}", self.FMT)
        assert found is not None
        assert (found.leaf, found.intermediates) == (chain[0], ())

    def test_last_element_wins(self, chain: list[x509.Certificate], pki: Any) -> None:
        """APPEND_FORWARD: a client's own (forged) element comes first; the proxy's, last."""
        forged = quote(pki.leaf("foreign").cert_pem.decode(), safe="")
        value = f'Cert="{forged}";By=x,' + encode(self.FMT, chain)
        found = decode_proxy_header(value, self.FMT)
        assert found is not None
        assert found.leaf == chain[0]

    def test_quoted_values_with_separators(self, chain: list[x509.Certificate]) -> None:
        """Quoted values may hold , ; = and escaped quotes without splitting the element."""
        cert = quote(_pem(chain[0]), safe="")
        value = f'Subject="CN=a,O=b;c=\\"d\\"";URI="spiffe://x/y,z";Cert="{cert}"'
        found = decode_proxy_header(value, self.FMT)
        assert found is not None
        assert found.leaf == chain[0]

    @pytest.mark.parametrize(
        ("value", "why"),
        [
            ('Cert="%s', "unterminated"),
            ("Cert=%s;Cert=%s", "twice"),
            ("Chain=%s;chain=%s", "twice"),
            ("Cert;Hash=ab", "key=value"),
            ('Cert=a"b', "quote"),
            ('Cert=a"b"', "misplaced"),
            ("," * 40, "elements"),
        ],
    )
    def test_malformed(self, value: str, why: str, chain: list[x509.Certificate]) -> None:
        """Broken quoting, a repeated Cert/Chain, a field without '=', too many elements."""
        cert = quote(_pem(chain[0]), safe="")
        with pytest.raises(CertificateLoadError, match=why):
            decode_proxy_header(value.replace("%s", cert), self.FMT)

    def test_cert_and_chain_must_agree(self, chain: list[x509.Certificate], pki: Any) -> None:
        """A Cert that is not Chain's first certificate is refused."""
        other = quote(pki.leaf("consumer").cert_pem.decode(), safe="")
        full = quote("".join(_pem(c) for c in chain), safe="")
        with pytest.raises(CertificateLoadError, match="disagree"):
            decode_proxy_header(f"Cert={other};Chain={full}", self.FMT)


class TestAwsAlb:
    """https://docs.aws.amazon.com/elasticloadbalancing/latest/application/mutual-authentication.html"""

    FMT = ProxyCertFormat.AWS_ALB

    def test_documented_leaf_shape(self, chain: list[x509.Certificate]) -> None:
        """``X-Amzn-Mtls-Clientcert-Leaf: -----BEGIN%20CERTIFICATE-----%0AMII...%0A-----END
        %20CERTIFICATE-----%0A``: spaces and newlines escaped, ``+=/`` left as they are."""
        body = _b64(chain[0])
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        value = (
            "-----BEGIN%20CERTIFICATE-----%0A"
            + "%0A".join(lines)
            + "%0A-----END%20CERTIFICATE-----%0A"
        )
        found = decode_proxy_header(value, self.FMT)
        assert found is not None
        assert found.leaf == chain[0]

    def test_plus_is_not_a_space(self, chain: list[x509.Certificate]) -> None:
        """``+`` is base64, not an encoded space (unquote, never unquote_plus)."""
        value = encode(self.FMT, chain)
        assert "+" in value or "/" in value
        found = decode_proxy_header(value, self.FMT)
        assert found is not None
        assert found.leaf == chain[0]

    def test_passthrough_chain(self, chain: list[x509.Certificate]) -> None:
        """``X-Amzn-Mtls-Clientcert`` (passthrough mode): the whole chain, leaf first."""
        found = ProxyHeaderSource("X-Amzn-Mtls-Clientcert", (PROXY,), self.FMT).from_environ(
            {"HTTP_X_AMZN_MTLS_CLIENTCERT": encode(self.FMT, chain), "REMOTE_ADDR": PROXY}
        )
        assert found is not None
        assert [found.leaf, *found.intermediates] == chain


class TestTraefik:
    """https://doc.traefik.io/traefik/middlewares/http/passtlsclientcert/"""

    FMT = ProxyCertFormat.TRAEFIK

    def test_documented_certificate(self) -> None:
        """The documentation's complete certificate, delimiters and newlines removed."""
        pem = TRAEFIK_DOC_CERT.read_text()
        body = pem.replace("-----BEGIN CERTIFICATE-----", "").replace(
            "-----END CERTIFICATE-----", ""
        )
        value = "".join(body.split())
        found = decode_proxy_header(value, self.FMT)
        assert found is not None
        cns = found.leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        assert [a.value for a in cns] == ["*.cheese.org", "*.cheese.com"]

    def test_escaped_form_of_traefik_2(self, chain: list[x509.Certificate]) -> None:
        """Traefik 2.x sends the value URL-escaped ("Pass the escaped pem")."""
        found = decode_proxy_header(quote(encode(self.FMT, chain), safe=""), self.FMT)
        assert found is not None
        assert [found.leaf, *found.intermediates] == chain

    def test_too_many_certificates(self, chain: list[x509.Certificate]) -> None:
        """More than 8 comma-separated certificates is refused."""
        with pytest.raises(CertificateLoadError, match="too many"):
            decode_proxy_header(",".join([_b64(chain[0])] * 9), self.FMT)


class TestHAProxy:
    FMT = ProxyCertFormat.HAPROXY_BASE64

    @pytest.mark.parametrize("value", ["not base64!", "QUJD", "-----BEGIN CERTIFICATE-----"])
    def test_not_a_base64_certificate(self, value: str) -> None:
        """Anything but base64 of a DER certificate is refused."""
        with pytest.raises(CertificateLoadError):
            decode_proxy_header(value, self.FMT)


class TestAzure:
    """https://learn.microsoft.com/azure/application-gateway/rewrite-http-headers-url"""

    FMT = ProxyCertFormat.AZURE_APPGW

    @pytest.mark.parametrize(
        "shape",
        ["spaces", "tabs", "escaped", "bare"],
    )
    def test_header_safe_forms_of_one_pem(self, shape: str, chain: list[x509.Certificate]) -> None:
        """PEM ("the client certificate in PEM format") with its line breaks as spaces, as
        nginx's tab-indented continuation lines, URL-escaped, or the bare base64 body."""
        pem = _pem(chain[0])
        value = {
            "spaces": pem.replace("\n", " "),
            "tabs": pem.replace("\n", "\n\t").strip().replace("\n", ""),
            "escaped": quote(pem, safe=""),
            "bare": _b64(chain[0]),
        }[shape]
        found = decode_proxy_header(value, self.FMT)
        assert found is not None
        assert found.leaf == chain[0]


# -- generated: every parser, any input --------------------------------------------------


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fmt=st.sampled_from(ALL), value=st.text(max_size=400))
def test_any_text_is_a_certificate_none_or_a_typed_error(
    fmt: ProxyCertFormat, value: str, chain: list[x509.Certificate]
) -> None:
    """Arbitrary text: a certificate, None, or CertificateLoadError (495) — nothing else;
    the legitimate header is read right after."""
    with contextlib.suppress(CertificateLoadError):
        decode_proxy_header(value, fmt)
    found = decode_proxy_header(encode(fmt, chain), fmt)
    assert found is not None
    assert found.leaf == chain[0]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fmt=st.sampled_from(ALL), data=st.data())
def test_mutated_headers(fmt: ProxyCertFormat, data: Any, chain: list[x509.Certificate]) -> None:
    """The real header with bytes changed, dropped or repeated: still only a certificate,
    None or a CertificateLoadError."""
    value = encode(fmt, chain)
    cut = data.draw(st.integers(0, len(value)))
    insert = data.draw(st.sampled_from(['"', ",", ";", "=", "%", "%zz", "\\", " ", "Cert=", "ff"]))
    mutated = value[:cut] + insert * data.draw(st.integers(0, 50)) + value[cut + 1 :]
    try:
        found = decode_proxy_header(mutated, fmt)
    except CertificateLoadError:
        return
    assert found is None or isinstance(found.leaf, x509.Certificate)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fmt=st.sampled_from(ALL), length=st.integers(1, 3))
def test_round_trip(
    fmt: ProxyCertFormat, length: int, chain: list[x509.Certificate], pki: Any
) -> None:
    """Whatever chain the proxy encodes is what the source reads (leaf-only formats: the leaf)."""
    certs = [chain[0], *chain[1:], pki.root.certificate][:length]
    found = decode_proxy_header(encode(fmt, certs), fmt)
    assert found is not None
    assert found.leaf == certs[0]
    if fmt not in (ProxyCertFormat.HAPROXY_BASE64, ProxyCertFormat.AZURE_APPGW):
        assert list(found.intermediates) == certs[1:]


@pytest.mark.parametrize("fmt", ALL, ids=[f.value for f in ALL])
def test_middleware_refuses_garbage_then_serves_the_ssp(
    fmt: ProxyCertFormat, chain: list[x509.Certificate]
) -> None:
    """Through GateASGIMiddleware: a malformed header from the trusted proxy is 495 with
    an OperationOutcome and no-store; the SSP's next request is served (200)."""
    from spinepki.gate import GateASGIMiddleware, RequestGate
    from spinepki.gate._catalogue import INTERACTIONS
    from tests.gate._helpers import fresh_request, make_config

    metadata = next(i for i in INTERACTIONS if i.interaction_id.endswith("read:metadata-1"))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    middleware = GateASGIMiddleware(app, gate=RequestGate(make_config()), cert_source=_source(fmt))

    async def call(value: str) -> tuple[int, dict[bytes, bytes]]:
        req = fresh_request(metadata)
        headers = [(k.lower().encode(), v.encode()) for k, v in req.headers]
        headers.append((fmt.header.lower().encode(), value.encode()))
        scope = {
            "type": "http",
            "method": "GET",
            "path": req.path,
            "raw_path": req.path.encode(),
            "query_string": b"",
            "headers": headers,
            "client": (PROXY, 4000),
            "server": ("127.0.0.1", 8443),
            "scheme": "https",
            "http_version": "1.1",
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await middleware(scope, receive, send)
        start = sent[0]
        return start["status"], dict(start["headers"])

    status, headers = asyncio.run(call('Cert="%zz;' + "A" * 50))
    assert status == 495
    assert headers[b"cache-control"] == b"no-store"
    status, headers = asyncio.run(call(encode(fmt, chain)))
    assert status == 200
    assert headers[b"cache-control"] == b"no-store"
