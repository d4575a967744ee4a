"""Valid inputs the fuzz targets start from (seeds and mutation bases), built once.

Self-contained on purpose (no imports from other test packages), so every target module
also runs as ``python -m tests.fuzz.<module>`` under atheris.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from spinepki._tokens import example_claims
from spinepki.gate import GateConfig, Generation, RequestGate, RootKind
from spinepki.policy import ClientAuth
from spinepki.testpki import KeyType, TestPKI

ASID = "918999198738"
FROM_ASID = "200000000359"
TRACE = "09a01679-2564-0fb4-5129-aecc81ea2706"
FOUNDATIONS = "/A12345/STU3/1/gpconnect"
ROOTS = {
    RootKind.FOUNDATIONS: FOUNDATIONS,
    RootKind.STRUCTURED: f"{FOUNDATIONS}/structured",
    RootKind.DOCUMENTS: f"{FOUNDATIONS}/documents",
    RootKind.ACCESS_RECORD_HTML: "/A12345/DSTU2/1",
}
PREFIX = "urn:nhs:names:services:gpconnect:"
READ_PATIENT = f"{PREFIX}fhir:rest:read:patient-1"
SEARCH_PATIENT = f"{PREFIX}fhir:rest:search:patient-1"
MIGRATE = f"{PREFIX}fhir:operation:gpc.migratestructuredrecord-1"
NOW = 1_750_000_000
NOW_DT = dt.datetime.fromtimestamp(NOW, dt.UTC)
#: A marker put into tokens, queries and bodies: it must never reach diagnostics or logs.
CANARY = "Zq7CANARYx9"
NONE_HEADER = {"alg": "none", "typ": "JWT"}


def b64(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encode(claims: object, header: object = NONE_HEADER) -> str:
    """An unsecured JWT (compact JSON), ending with the empty signature part."""
    return f"{b64(_compact(header))}.{b64(_compact(claims))}."


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def v1_claims(**over: Any) -> dict[str, Any]:
    """A valid 1.x token's claims (rules §3.7 example A) at :data:`NOW`."""
    return example_claims(NOW, **over)


def ssp_headers(interaction_id: str, token: str) -> list[tuple[str, str]]:
    """The five SSP headers of a valid request."""
    return [
        ("Ssp-TraceID", TRACE),
        ("Ssp-From", FROM_ASID),
        ("Ssp-To", ASID),
        ("Ssp-InteractionID", interaction_id),
        ("Authorization", f"Bearer {token}"),
    ]


def gate_config(**over: Any) -> GateConfig:
    """The fuzzed provider: both generations, a 496 for a missing certificate."""
    values: dict[str, Any] = {
        "provider_asid": ASID,
        "service_roots": ROOTS,
        "generations": frozenset({Generation.V1, Generation.V0_7}),
        "client_auth": ClientAuth.HTTP_496,
    }
    values.update(over)
    return GateConfig(**values)


@functools.cache
def gate() -> RequestGate:
    """The shared gate (stateless, so one serves every example)."""
    return RequestGate(gate_config())


@functools.cache
def pki() -> TestPKI:
    """An EC test PKI at :data:`NOW` (EC keeps generation fast)."""
    return TestPKI.create(key_type=KeyType.EC_P256, at=NOW_DT, base_url="http://crl.test.invalid")


def cert_der(name: str = "ssp") -> bytes:
    """A leaf's DER."""
    return pki().leaf(name).certificate.public_bytes(serialization.Encoding.DER)


def chain_pem(name: str = "ssp") -> bytes:
    """A leaf followed by its Sub CA, PEM (what a TLS peer sends)."""
    return pki().leaf(name).chain_pem


def crl_der() -> bytes:
    """The Sub CA's CRL (it lists the ``revoked`` leaf)."""
    return pki().crl().public_bytes(serialization.Encoding.DER)


@functools.cache
def ocsp_der() -> bytes:
    """A signed GOOD OCSP response about the ``ssp`` leaf, with a nonce."""
    p = pki()
    cert = p.leaf("ssp").certificate
    issuer = p.sub_ca
    at = p.reference_time
    return (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=issuer.certificate,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=at,
            next_update=at + dt.timedelta(hours=12),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.certificate)
        .add_extension(x509.OCSPNonce(b"n" * 16), critical=False)
        .sign(issuer.private_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )


def mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    """Apply byte flips (0), deletions (1) and insertions (2) at positions mod len."""
    out = bytearray(data)
    for kind, where, value in ops:
        if not out:
            break
        pos = where % len(out)
        if kind == 0:
            out[pos] ^= value or 1
        elif kind == 1:
            del out[pos : pos + value % 8 + 1]
        else:
            out[pos:pos] = bytes([value])
    return bytes(out)


def invalid_version_der() -> bytes:
    """The ssp leaf with its X.509 version INTEGER set to 106 (atheris found the shape after
    135,208 inputs); cryptography raises ``x509.InvalidVersion``, which is no ValueError."""
    der = cert_der("ssp")
    at = der.index(bytes.fromhex("a003020102")) + 4  # [0] { INTEGER 2 } -> INTEGER 106
    return der[:at] + b"\x6a" + der[at + 1 :]


def invalid_version_pem() -> str:
    """:func:`invalid_version_der` as PEM text."""
    body = base64.b64encode(invalid_version_der()).decode()
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
