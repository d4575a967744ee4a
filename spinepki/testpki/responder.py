"""A real HTTP responder for the test PKI: CRLs, OCSP and CA certificates on loopback.

It serves what the certificates point at (``{base_url}/crl/<ca>.crl``, ``{base_url}/ocsp``,
``{base_url}/ca/<ca>.crt``) and can be told, while it runs, to misbehave in every way a
real responder does (down, slow, oversized, garbage, bad signature, stale, unknown,
HTTP 500…) so revocation code can be tested against real sockets.

The URLs are baked into the certificates, so the responder binds its port first and the
PKI is created for it::

    with Responder() as responder:            # binds 127.0.0.1 on a free port
        pki = TestPKI.create(key_type=KeyType.EC_P256, base_url=responder.base_url)
        responder.attach(pki)
        ...
        responder.set_fault(Fault.SLOW, delay=10, on=Endpoint.CRL)

or in one step ``Responder.with_new_pki(key_type=KeyType.EC_P256)``. A PKI whose
``base_url`` names a fixed port (``spinepki pki serve``) is served with
``Responder(pki)``, which binds that port.

Time: CRLs and OCSP responses are dated from ``clock()`` (default: the PKI's reference
time, so tests pass ``at=pki.reference_time`` and move ``at`` forward instead of
sleeping). cryptography stamps OCSP producedAt with the real time, so OCSP tests use a
PKI whose reference time is now (the default of ``TestPKI.create``).

Throwaway test keys only; this is not an OCSP responder for anything real.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import enum
import hashlib
import os
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from spinepki._der import spki_bit_string
from spinepki.errors import TestPKIError
from spinepki.testpki._builder import IssuedCertificate, TestPKI

__all__ = ["Endpoint", "Fault", "FaultSetting", "OCSPSigner", "Responder"]

#: Default size of an OVERSIZED body: the "100 MB CRL" of the requirements. It is
#: streamed in chunks, never held in memory.
OVERSIZED_BYTES = 100 * 1024 * 1024
_CHUNK = b"\0" * (64 * 1024)
_MAX_OCSP_REQUEST = 64 * 1024
_BACKDATE = dt.timedelta(hours=1)


class Endpoint(enum.Enum):
    """What the responder serves."""

    CRL = "crl"
    """``GET /crl/<ca>.crl``."""
    OCSP = "ocsp"
    """``POST /ocsp``, or ``GET /ocsp/<base64 request>`` (RFC 6960 A.1: nginx asks so)."""
    CA = "ca"
    """``GET /ca/<ca>.crt`` (AIA caIssuers)."""


class Fault(enum.Enum):
    """Ways to misbehave, switchable at runtime per endpoint."""

    DOWN = "down"
    """Close the connection without answering (a reset)."""
    SLOW = "slow"
    """Wait ``delay`` seconds before answering (interrupted by clearing or stopping)."""
    DRIP = "drip"
    """Send the headers, then the body one byte every ``delay`` seconds."""
    OVERSIZED = "oversized"
    """Answer 200 with ``size`` bytes (100 MB by default), streamed."""
    GARBAGE = "garbage"
    """Answer 200 with random bytes."""
    WRONG_SIGNATURE = "wrong-signature"
    """A CRL / OCSP response whose signature does not verify."""
    STALE = "stale"
    """A CRL / OCSP response whose nextUpdate is in the past."""
    UNKNOWN_STATUS = "unknown-status"
    """OCSP answers "unknown" for every certificate."""
    WRONG_NONCE = "wrong-nonce"
    """OCSP echoes a nonce other than the one asked with."""
    TRY_LATER = "try-later"
    """OCSP answers the unsuccessful status tryLater."""
    HTTP_500 = "http-500"
    """Answer HTTP 500."""


@dataclass(frozen=True, slots=True)
class FaultSetting:
    """A fault and its parameters."""

    fault: Fault
    """Which fault."""
    delay: float = 0.0
    """Seconds, for SLOW (before answering) and DRIP (between bytes)."""
    size: int = OVERSIZED_BYTES
    """Body size for OVERSIZED."""
    declare_length: bool = False
    """OVERSIZED: send a Content-Length (else the body is close-delimited, so the client
    can only find out by counting)."""


class OCSPSigner(enum.Enum):
    """Who signs OCSP responses for the Sub CA's certificates."""

    CA = "ca"
    """The issuing CA itself."""
    DELEGATED = "delegated"
    """The PKI's ``ocsp-responder`` certificate (id-kp-OCSPSigning, ocsp-nocheck),
    included in the response. Requests about the Sub CA itself are signed by the root."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    responder: Responder

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up on purpose in the fault tests (oversized, drip, timeouts).
        pass


def _flip_last(der: bytes, signature: bytes) -> bytes:
    """``der`` with the last byte of its signature value changed."""
    at = der.rfind(signature)
    if at < 0:  # pragma: no cover - the signature is always inside its structure
        raise TestPKIError("signature not found in the encoding")
    end = at + len(signature) - 1
    return der[:end] + bytes([der[end] ^ 0x01]) + der[end + 1 :]


def _sign_hash(key: Any) -> hashes.HashAlgorithm:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _key_bits_hash(cert: x509.Certificate, algorithm: str) -> bytes:
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING }. Reuse the
    # library's walker rather than a second DER parser.
    return hashlib.new(algorithm, spki_bit_string(spki)).digest()


class Responder:
    """A CRL/OCSP/AIA HTTP responder for a :class:`TestPKI`, on 127.0.0.1.

    The socket is bound on construction (so :attr:`base_url` is known before the PKI is
    created); requests are answered between :meth:`start` and :meth:`stop`, or inside a
    ``with`` block.

    Args:
        pki: the PKI to serve (or attach one later with :meth:`attach`).
        host: address to bind; loopback by default.
        port: port to bind; default the port in ``pki.base_url`` when a PKI is given and
            its URL names one, else a free port.
        ocsp_signer: who signs OCSP responses.
        clock: the responder's "now"; default the PKI's reference time.
        crl_lifetime: nextUpdate - thisUpdate of served CRLs.
        ocsp_lifetime: nextUpdate - thisUpdate of OCSP responses.

    Raises:
        TestPKIError: the port cannot be bound, or the PKI's URLs point elsewhere.
    """

    __test__ = False

    def __init__(
        self,
        pki: TestPKI | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        ocsp_signer: OCSPSigner = OCSPSigner.CA,
        clock: Callable[[], dt.datetime] | None = None,
        crl_lifetime: dt.timedelta = dt.timedelta(days=7),
        ocsp_lifetime: dt.timedelta = dt.timedelta(hours=12),
    ) -> None:
        if port is None:
            port = urlsplit(pki.base_url).port or 0 if pki is not None else 0
        try:
            self._server = _Server((host, port), _Handler)
        except OSError as exc:
            raise TestPKIError(f"cannot listen on {host}:{port}: {exc}", source="port") from exc
        self._server.responder = self
        bound_host, bound_port = self._server.server_address[:2]
        self.base_url = f"http://{bound_host!s}:{bound_port}"
        """Where this responder answers (``http://127.0.0.1:PORT``)."""
        self.ocsp_signer = ocsp_signer
        """Who signs OCSP responses (may be changed while running)."""
        self.clock = clock
        """The responder's "now"; None means the PKI's reference time."""
        self.crl_lifetime = crl_lifetime
        self.ocsp_lifetime = ocsp_lifetime
        self.hits: Counter[Endpoint] = Counter()
        """Requests answered (or faulted) per endpoint."""
        self._pki: TestPKI | None = None
        self._faults: dict[Endpoint, FaultSetting] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        if pki is not None:
            try:
                self.attach(pki)
            except BaseException:
                self._server.server_close()  # do not leak the bound socket
                raise

    # -- set-up ---------------------------------------------------------------------

    @classmethod
    def with_new_pki(cls, **create_args: Any) -> Responder:
        """Bind a free port, create a :class:`TestPKI` pointing at it, and attach it.

        Args:
            create_args: passed to :meth:`TestPKI.create` (``base_url`` is set here).
        """
        responder = cls()
        try:
            responder.attach(TestPKI.create(base_url=responder.base_url, **create_args))
        except BaseException:
            responder.close()
            raise
        return responder

    def attach(self, pki: TestPKI) -> None:
        """Serve ``pki``.

        Raises:
            TestPKIError: the PKI's certificates point at another base URL.
        """
        if pki.base_url.rstrip("/") != self.base_url:
            raise TestPKIError(
                f"the PKI's certificates point at {pki.base_url}, but this responder "
                f"answers at {self.base_url}; create the PKI with base_url=responder.base_url",
                source="base_url",
            )
        self._pki = pki

    @property
    def pki(self) -> TestPKI:
        """The PKI served.

        Raises:
            TestPKIError: none attached yet.
        """
        if self._pki is None:
            raise TestPKIError("no PKI attached to the responder", source="pki")
        return self._pki

    def now(self) -> dt.datetime:
        """The responder's current time (``clock()`` or the PKI's reference time)."""
        return self.clock() if self.clock is not None else self.pki.reference_time

    def url(self, endpoint: Endpoint, ca: str = "sub-ca") -> str:
        """The URL of an endpoint (for a CA's CRL or certificate, that CA's)."""
        if endpoint is Endpoint.OCSP:
            return f"{self.base_url}/ocsp"
        suffix = "crl" if endpoint is Endpoint.CRL else "crt"
        return f"{self.base_url}/{endpoint.value}/{ca}.{suffix}"

    # -- faults ---------------------------------------------------------------------

    def set_fault(
        self,
        fault: Fault,
        *,
        on: Endpoint | Iterable[Endpoint] | None = None,
        delay: float = 0.0,
        size: int = OVERSIZED_BYTES,
        declare_length: bool = False,
    ) -> None:
        """Switch a fault on for some endpoints (all by default), replacing theirs."""
        endpoints = (
            tuple(Endpoint) if on is None else (on,) if isinstance(on, Endpoint) else tuple(on)
        )
        setting = FaultSetting(fault, delay=delay, size=size, declare_length=declare_length)
        with self._lock:
            for endpoint in endpoints:
                self._faults[endpoint] = setting

    def clear_faults(self) -> None:
        """Behave again; requests waiting in SLOW or DRIP are released at once."""
        with self._lock:
            self._faults.clear()
            self._wake.set()
            self._wake = threading.Event()

    @contextlib.contextmanager
    def fault(
        self,
        fault: Fault,
        *,
        on: Endpoint | Iterable[Endpoint] | None = None,
        delay: float = 0.0,
        size: int = OVERSIZED_BYTES,
        declare_length: bool = False,
    ) -> Iterator[Responder]:
        """``set_fault`` for the duration of a ``with`` block."""
        self.set_fault(fault, on=on, delay=delay, size=size, declare_length=declare_length)
        try:
            yield self
        finally:
            self.clear_faults()

    def fault_for(self, endpoint: Endpoint) -> FaultSetting | None:
        """The fault currently set for ``endpoint``."""
        with self._lock:
            return self._faults.get(endpoint)

    def _pause(self, seconds: float) -> bool:
        """Wait up to ``seconds``; False when woken early (faults cleared, or stopping)."""
        with self._lock:
            wake = self._wake
        return not wake.wait(seconds)

    # -- lifetime -------------------------------------------------------------------

    def start(self) -> Responder:
        """Answer requests in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"spinepki-responder-{self.base_url}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and release the port (waiting requests are woken)."""
        self.clear_faults()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    close = stop

    def __enter__(self) -> Responder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- content --------------------------------------------------------------------

    def crl_der(self, ca: str, fault: Fault | None = None) -> bytes:
        """The CRL served for ``ca`` now (shaped by a content fault)."""
        now = self.now()
        this_update = now - _BACKDATE
        if fault is Fault.STALE:
            this_update = now - 2 * self.crl_lifetime
        crl = self.pki.crl(ca, at=this_update, next_update=self.crl_lifetime)
        der = crl.public_bytes(serialization.Encoding.DER)
        if fault is Fault.WRONG_SIGNATURE:
            der = _flip_last(der, crl.signature)
        return der

    def ocsp_der(self, request_der: bytes, fault: Fault | None = None) -> bytes:
        """The DER OCSP response to a DER request (shaped by a content fault)."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if fault is Fault.TRY_LATER:
            return _unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
        algorithm = request.hash_algorithm.name
        ca_name = self._ca_for(request.issuer_name_hash, request.issuer_key_hash, algorithm)
        if ca_name is None:
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        pki = self.pki
        ca = pki.cas[ca_name]
        now = self.now()
        this_update = now - _BACKDATE
        if fault is Fault.STALE:
            this_update = now - 2 * self.ocsp_lifetime
        serial = request.serial_number
        revoked = pki.revocations[ca_name].get(serial)
        status = ocsp.OCSPCertStatus.GOOD
        if revoked is not None:
            status = ocsp.OCSPCertStatus.REVOKED
        elif fault is Fault.UNKNOWN_STATUS or not self._issued(ca, serial):
            status = ocsp.OCSPCertStatus.UNKNOWN
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=serial,
            algorithm=request.hash_algorithm,
            cert_status=status,
            this_update=this_update,
            next_update=this_update + self.ocsp_lifetime,
            revocation_time=revoked.revoked_at if revoked is not None else None,
            revocation_reason=revoked.reason if revoked is not None else None,
        )
        signer: IssuedCertificate = ca
        if self.ocsp_signer is OCSPSigner.DELEGATED and ca_name == "sub-ca":
            signer = pki.leaf("ocsp-responder")
            builder = builder.certificates([signer.certificate])
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate)
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            nonce = None
        if nonce is not None:
            echoed = os.urandom(len(nonce)) if fault is Fault.WRONG_NONCE else nonce
            builder = builder.add_extension(x509.OCSPNonce(echoed), critical=False)
        response = builder.sign(signer.private_key, _sign_hash(signer.private_key))
        der = response.public_bytes(serialization.Encoding.DER)
        if fault is Fault.WRONG_SIGNATURE:
            der = _flip_last(der, response.signature)
        return der

    def _ca_for(self, name_hash: bytes, key_hash: bytes, algorithm: str) -> str | None:
        for ca_name, ca in self.pki.cas.items():
            subject = ca.certificate.subject.public_bytes()
            if (
                hashlib.new(algorithm, subject).digest() == name_hash
                and _key_bits_hash(ca.certificate, algorithm) == key_hash
            ):
                return ca_name
        return None

    def _issued(self, ca: IssuedCertificate, serial: int) -> bool:
        ski = x509.SubjectKeyIdentifier.from_public_key(ca.certificate.public_key()).digest
        for issued in self.pki:
            cert = issued.certificate
            if cert.serial_number != serial or cert.issuer != ca.certificate.subject:
                continue
            try:
                aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
            except x509.ExtensionNotFound:  # pragma: no cover - the builder always adds one
                continue
            if aki.key_identifier == ski and cert != ca.certificate:
                return True
        return False

    def ca_der(self, ca: str) -> bytes | None:
        """DER of the named CA certificate, or None."""
        issued = self.pki.cas.get(ca)
        return (
            None if issued is None else issued.certificate.public_bytes(serialization.Encoding.DER)
        )


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    _abort = False

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read hits, not logs

    # -- routing --------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        if path.startswith("/ocsp/") and len(path) <= _MAX_OCSP_REQUEST:
            # RFC 6960 A.1: the DER request, base64 then URL-encoded, after the URL.
            try:
                body = base64.b64decode(unquote(path[len("/ocsp/") :]), validate=True)
            except ValueError:
                self._send(400, b"bad request", "text/plain")
                return
            self._ocsp(body)
        elif len(parts) == 2 and parts[0] == "crl" and parts[1].endswith(".crl"):
            self._serve(Endpoint.CRL, lambda fault: self._crl(parts[1][:-4], fault))
        elif len(parts) == 2 and parts[0] == "ca" and parts[1].endswith(".crt"):
            self._serve(Endpoint.CA, lambda fault: self._ca(parts[1][:-4]))
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0].rstrip("/") != "/ocsp":
            self._send(404, b"not found", "text/plain")
            return
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > _MAX_OCSP_REQUEST:
            self._send(413 if length.isdigit() else 411, b"bad request length", "text/plain")
            return
        self._ocsp(self.rfile.read(int(length)))

    def _ocsp(self, body: bytes) -> None:
        self._serve(
            Endpoint.OCSP,
            lambda fault: (
                200,
                self.server.responder.ocsp_der(body, fault),
                "application/ocsp-response",
            ),
        )

    def _crl(self, ca: str, fault: Fault | None) -> tuple[int, bytes, str]:
        responder = self.server.responder
        if ca not in responder.pki.cas:
            return 404, b"no such CA", "text/plain"
        return 200, responder.crl_der(ca, fault), "application/pkix-crl"

    def _ca(self, ca: str) -> tuple[int, bytes, str]:
        der = self.server.responder.ca_der(ca)
        if der is None:
            return 404, b"no such CA", "text/plain"
        return 200, der, "application/pkix-cert"

    # -- faults and sending -----------------------------------------------------------

    def _serve(
        self, endpoint: Endpoint, content: Callable[[Fault | None], tuple[int, bytes, str]]
    ) -> None:
        responder = self.server.responder
        with responder._lock:
            responder.hits[endpoint] += 1
        setting = responder.fault_for(endpoint)
        fault = setting.fault if setting is not None else None
        if setting is None or fault in _CONTENT_FAULTS:
            status, body, kind = content(fault)
            self._send(status, body, kind)
        elif fault is Fault.DOWN:
            self._abort = self.close_connection = True
        elif fault is Fault.HTTP_500:
            self._send(500, b"internal server error", "text/plain")
        elif fault is Fault.GARBAGE:
            # Deterministic junk is enough: nothing here is secret.
            junk = random.Random(len(self.path)).randbytes(2048)  # noqa: S311
            self._send(200, junk, "application/octet-stream")
        elif fault is Fault.SLOW:
            if responder._pause(setting.delay):
                status, body, kind = content(None)
                self._send(status, body, kind)
            else:
                self._abort = self.close_connection = True  # released early: test over
        elif fault is Fault.DRIP:
            self._drip(content(None)[1], setting.delay)
        else:
            self._oversized(setting)

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip(self, body: bytes, delay: float) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for i in range(len(body)):
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()
            if not self.server.responder._pause(delay):
                self._abort = self.close_connection = True
                return

    def _oversized(self, setting: FaultSetting) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/pkix-crl")
        if setting.declare_length:
            self.send_header("Content-Length", str(setting.size))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        sent = 0
        while sent < setting.size:
            chunk = _CHUNK[: setting.size - sent]
            self.wfile.write(chunk)
            sent += len(chunk)

    def finish(self) -> None:
        if self._abort:
            # An abortive close (RST), like a crashed or firewalled responder.
            # The file objects hold the descriptor open, so close them first.
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.rfile.close()
                self.wfile.close()
                self.connection.close()
            return
        with contextlib.suppress(OSError):
            super().finish()


_CONTENT_FAULTS = frozenset(
    {Fault.WRONG_SIGNATURE, Fault.STALE, Fault.UNKNOWN_STATUS, Fault.WRONG_NONCE, Fault.TRY_LATER}
)
