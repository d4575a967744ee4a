"""The test PKI's CRL/OCSP/AIA responder (spinepki.testpki.responder)."""

# ruff: noqa: F811 - the fixtures are imported by name so pytest finds them here

from __future__ import annotations

import datetime as dt
import socket
import threading
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from spinepki.errors import TestPKIError
from spinepki.testpki import KeyType, TestPKI
from spinepki.testpki.pytest_responder import spinepki_responder, spinepki_responder_pki  # noqa: F401
from spinepki.testpki.responder import Endpoint, Fault, OCSPSigner, Responder

pytestmark = pytest.mark.network


@pytest.fixture
def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    yield session  # type: ignore[misc]
    session.close()


def ask(
    http: requests.Session,
    responder: Responder,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    nonce: bytes | None = b"n" * 16,
) -> ocsp.OCSPResponse:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    body = builder.build().public_bytes(serialization.Encoding.DER)
    reply = http.post(
        responder.url(Endpoint.OCSP),
        data=body,
        headers={"Content-Type": "application/ocsp-request"},
    )
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(reply.content)


class TestServing:
    def test_urls_match_the_certificates(
        self, spinepki_responder: Responder, spinepki_responder_pki: TestPKI
    ) -> None:
        """The CDP and AIA URLs in the certificates point at this responder."""
        cert = spinepki_responder_pki.leaf("ssp").certificate
        cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert cdp[0].full_name[0].value == spinepki_responder.url(Endpoint.CRL)  # type: ignore[index]
        assert spinepki_responder.base_url.startswith("http://127.0.0.1:")

    def test_crl_and_ca(self, spinepki_responder: Responder, http: requests.Session) -> None:
        """CRLs and CA certificates are served with their media types; unknown names 404."""
        pki = spinepki_responder.pki
        reply = http.get(spinepki_responder.url(Endpoint.CRL))
        assert reply.headers["Content-Type"] == "application/pkix-crl"
        crl = x509.load_der_x509_crl(reply.content)
        assert crl.get_revoked_certificate_by_serial_number(pki.leaf("revoked").serial) is not None
        assert crl.is_signature_valid(pki.sub_ca.certificate.public_key())  # type: ignore[arg-type]
        ca = http.get(spinepki_responder.url(Endpoint.CA, "root"))
        assert x509.load_der_x509_certificate(ca.content) == pki.root.certificate
        for path in ("/crl/nope.crl", "/ca/nope.crt", "/other", "/crl/x"):
            assert http.get(spinepki_responder.base_url + path).status_code == 404
        assert http.post(spinepki_responder.base_url + "/elsewhere", data=b"x").status_code == 404
        assert spinepki_responder.hits[Endpoint.CRL] == 2

    def test_ocsp_ca_signed(self, spinepki_responder: Responder, http: requests.Session) -> None:
        """OCSP answers GOOD/REVOKED signed by the CA, echoing the nonce."""
        pki = spinepki_responder.pki
        good = ask(http, spinepki_responder, pki.leaf("ssp").certificate, pki.sub_ca.certificate)
        assert good.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert good.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"n" * 16
        assert good.responder_key_hash is not None
        assert not good.certificates
        revoked = ask(
            http,
            spinepki_responder,
            pki.leaf("revoked").certificate,
            pki.sub_ca.certificate,
            nonce=None,
        )
        assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert revoked.revocation_reason is x509.ReasonFlags.key_compromise
        assert len(revoked.extensions) == 0

    def test_ocsp_delegated(self, spinepki_responder: Responder, http: requests.Session) -> None:
        """With the delegated signer the responder certificate signs and is included;
        requests about the Sub CA are still signed by the root."""
        pki = spinepki_responder.pki
        spinepki_responder.ocsp_signer = OCSPSigner.DELEGATED
        reply = ask(http, spinepki_responder, pki.leaf("ssp").certificate, pki.sub_ca.certificate)
        assert reply.certificates == [pki.leaf("ocsp-responder").certificate]
        sub = ask(http, spinepki_responder, pki.sub_ca.certificate, pki.root.certificate)
        assert sub.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert not sub.certificates

    def test_ocsp_unknown_serial_and_issuer(
        self, spinepki_responder: Responder, http: requests.Session
    ) -> None:
        """A serial the CA never issued is UNKNOWN; an unknown issuer is unauthorized."""
        pki = spinepki_responder.pki
        foreign = pki.leaf("foreign").certificate
        # The foreign leaf names the same issuer *name* but another key: unauthorized.
        reply = ask(http, spinepki_responder, foreign, pki.cas["foreign-sub-ca"].certificate)
        assert reply.certificate_status is ocsp.OCSPCertStatus.GOOD  # the foreign CA is in the PKI
        stranger = TestPKI.create(key_type=KeyType.EC_P384, base_url="http://x", reuse_keys=False)
        body = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(
                stranger.leaf("ssp").certificate, stranger.sub_ca.certificate, hashes.SHA1()
            )
            .build()
            .public_bytes(serialization.Encoding.DER)
        )
        unauthorized = ocsp.load_der_ocsp_response(
            http.post(spinepki_responder.url(Endpoint.OCSP), data=body).content
        )
        assert unauthorized.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
        made_up = (
            x509.CertificateBuilder()
            .subject_name(pki.leaf("ssp").certificate.subject)
            .issuer_name(pki.sub_ca.certificate.subject)
            .public_key(pki.leaf("ssp").certificate.public_key())
            .serial_number(424242)
            .not_valid_before(pki.reference_time)
            .not_valid_after(pki.reference_time + dt.timedelta(days=1))
            .sign(pki.sub_ca.private_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        assert (
            ask(http, spinepki_responder, made_up, pki.sub_ca.certificate).certificate_status
            is ocsp.OCSPCertStatus.UNKNOWN
        )

    def test_ocsp_by_get(self, spinepki_responder: Responder, http: requests.Session) -> None:
        """RFC 6960 A.1 GET (what nginx sends): the base64 request after the URL, URL-
        encoded; the answer is the POST one. Junk after /ocsp/ is 400."""
        import base64
        from urllib.parse import quote

        pki = spinepki_responder.pki
        body = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(pki.leaf("revoked").certificate, pki.sub_ca.certificate, hashes.SHA1())
            .build()
            .public_bytes(serialization.Encoding.DER)
        )
        url = spinepki_responder.url(Endpoint.OCSP) + "/" + quote(base64.b64encode(body), safe="")
        reply = http.get(url)
        assert reply.headers["Content-Type"] == "application/ocsp-response"
        answer = ocsp.load_der_ocsp_response(reply.content)
        assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert http.get(spinepki_responder.url(Endpoint.OCSP) + "/!!").status_code == 400
        assert spinepki_responder.hits[Endpoint.OCSP] == 1

    def test_ocsp_bad_requests(self, spinepki_responder: Responder, http: requests.Session) -> None:
        """Malformed requests get malformedRequest; missing or huge lengths 411/413."""
        url = spinepki_responder.url(Endpoint.OCSP)
        reply = ocsp.load_der_ocsp_response(http.post(url, data=b"junk").content)
        assert reply.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        assert http.post(url, data=b"x" * (65 * 1024)).status_code == 413
        with socket.create_connection(
            ("127.0.0.1", int(spinepki_responder.base_url.rsplit(":", 1)[1]))
        ) as s:
            s.sendall(b"POST /ocsp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert b" 411 " in s.recv(100)


class TestFaults:
    def test_content_faults(self, spinepki_responder: Responder, http: requests.Session) -> None:
        """Stale, wrong-signature, unknown, wrong-nonce and tryLater shape the content."""
        pki = spinepki_responder.pki
        leaf, sub = pki.leaf("ssp").certificate, pki.sub_ca.certificate
        with spinepki_responder.fault(Fault.STALE):
            crl = x509.load_der_x509_crl(http.get(spinepki_responder.url(Endpoint.CRL)).content)
            assert crl.next_update_utc < pki.reference_time  # type: ignore[operator]
            assert ask(http, spinepki_responder, leaf, sub).next_update_utc < pki.reference_time  # type: ignore[operator]
        with spinepki_responder.fault(Fault.WRONG_SIGNATURE):
            crl = x509.load_der_x509_crl(http.get(spinepki_responder.url(Endpoint.CRL)).content)
            assert not crl.is_signature_valid(sub.public_key())  # type: ignore[arg-type]
        with spinepki_responder.fault(Fault.UNKNOWN_STATUS, on=Endpoint.OCSP):
            assert (
                ask(http, spinepki_responder, leaf, sub).certificate_status
                is ocsp.OCSPCertStatus.UNKNOWN
            )
        with spinepki_responder.fault(Fault.WRONG_NONCE, on=[Endpoint.OCSP]):
            reply = ask(http, spinepki_responder, leaf, sub)
            assert reply.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce != b"n" * 16
        with spinepki_responder.fault(Fault.TRY_LATER):
            body = ocsp.OCSPRequestBuilder().add_certificate(leaf, sub, hashes.SHA1()).build()
            raw = http.post(
                spinepki_responder.url(Endpoint.OCSP),
                data=body.public_bytes(serialization.Encoding.DER),
            )
            assert (
                ocsp.load_der_ocsp_response(raw.content).response_status
                is ocsp.OCSPResponseStatus.TRY_LATER
            )

    def test_transport_faults(self, spinepki_responder: Responder, http: requests.Session) -> None:
        """Down resets, 500 is 500, garbage is 200 junk, and the fault is per endpoint."""
        url = spinepki_responder.url(Endpoint.CRL)
        spinepki_responder.set_fault(Fault.DOWN, on=Endpoint.CRL)
        with pytest.raises(requests.ConnectionError):
            http.get(url)
        assert http.get(spinepki_responder.url(Endpoint.CA, "root")).status_code == 200
        spinepki_responder.set_fault(Fault.HTTP_500)
        assert http.get(url).status_code == 500
        spinepki_responder.set_fault(Fault.GARBAGE)
        reply = http.get(url)
        assert reply.status_code == 200
        assert len(reply.content) == 2048
        assert spinepki_responder.fault_for(Endpoint.CRL) is not None
        spinepki_responder.clear_faults()
        assert spinepki_responder.fault_for(Endpoint.CRL) is None
        assert http.get(url).status_code == 200

    def test_oversized_streams(self, spinepki_responder: Responder, http: requests.Session) -> None:
        """OVERSIZED sends exactly ``size`` bytes, with or without Content-Length."""
        for declare in (True, False):
            spinepki_responder.set_fault(Fault.OVERSIZED, size=200_000, declare_length=declare)
            reply = http.get(spinepki_responder.url(Endpoint.CRL))
            assert len(reply.content) == 200_000
            assert ("Content-Length" in reply.headers) is declare

    def test_slow_is_released_by_clearing(
        self, spinepki_responder: Responder, http: requests.Session
    ) -> None:
        """A SLOW request is released at once when faults are cleared (tests stay fast)."""
        spinepki_responder.set_fault(Fault.SLOW, delay=30)
        errors: list[BaseException] = []

        def get() -> None:
            try:
                http.get(spinepki_responder.url(Endpoint.CRL), timeout=10)
            except requests.RequestException as exc:
                errors.append(exc)

        start = time.monotonic()
        thread = threading.Thread(target=get)
        thread.start()
        time.sleep(0.2)
        spinepki_responder.clear_faults()
        thread.join(5)
        assert time.monotonic() - start < 3
        assert errors  # released early: the connection is cut, no answer

    def test_drip_completes_when_short(
        self, spinepki_responder: Responder, http: requests.Session
    ) -> None:
        """DRIP with a tiny delay still delivers the whole body."""
        spinepki_responder.set_fault(Fault.DRIP, delay=0.0001, on=Endpoint.CA)
        reply = http.get(spinepki_responder.url(Endpoint.CA, "root"))
        assert (
            x509.load_der_x509_certificate(reply.content) == spinepki_responder.pki.root.certificate
        )


class TestLifecycle:
    def test_bind_then_attach(self) -> None:
        """Bind first, create the PKI for the bound URL, attach, serve."""
        with Responder() as responder:
            with pytest.raises(TestPKIError, match="no PKI attached"):
                _ = responder.pki
            pki = TestPKI.create(key_type=KeyType.EC_P256, base_url=responder.base_url)
            responder.attach(pki)
            assert requests.get(responder.url(Endpoint.CRL), timeout=5).status_code == 200

    def test_attach_refuses_other_urls(self) -> None:
        """A PKI whose URLs point elsewhere is refused with a hint."""
        with Responder() as responder, pytest.raises(TestPKIError, match="base_url"):
            responder.attach(
                TestPKI.create(key_type=KeyType.EC_P256, base_url="http://127.0.0.1:1")
            )

    def test_port_from_pki_and_port_in_use(self) -> None:
        """Responder(pki) binds the port in the PKI's URLs; a busy port is a TestPKIError."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        pki = TestPKI.create(key_type=KeyType.EC_P256, base_url=f"http://127.0.0.1:{port}")
        with Responder(pki) as responder:
            assert responder.base_url == pki.base_url
            with pytest.raises(TestPKIError, match="cannot listen"):
                Responder(pki)

    def test_with_new_pki_closes_on_error(self) -> None:
        """with_new_pki releases the port when the PKI cannot be made."""
        with pytest.raises(TypeError):
            Responder.with_new_pki(no_such_option=True)

    def test_clock(self, spinepki_responder: Responder, http: requests.Session) -> None:
        """A clock dates the served CRL; stop() twice is harmless."""
        when = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
        spinepki_responder.clock = lambda: when
        crl = x509.load_der_x509_crl(http.get(spinepki_responder.url(Endpoint.CRL)).content)
        assert crl.last_update_utc == when - dt.timedelta(hours=1)
        assert spinepki_responder.now() == when
        spinepki_responder.stop()
        spinepki_responder.stop()
