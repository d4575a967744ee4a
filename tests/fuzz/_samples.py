"""Valid inputs the fuzz targets start from (seeds and mutation bases), built once.

The gate's constants and configuration come from ``tests.gate._helpers`` (one copy of the
test provider); every target module still runs as ``python -m tests.fuzz.<module>`` under
atheris from the repository root.
"""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from hypothesis import strategies as st

from spinepki._tokens import example_claims
from spinepki.gate import GateConfig, RequestGate
from spinepki.testpki import KeyType, TestPKI
from tests.gate._helpers import (
    ASID,
    FROM_ASID,
    NONE_HEADER,
    NOW,
    NOW_DT,
    PREFIX,
    TRACE,
    b64,
    make_config,
)
from tests.revocation._helpers import make_ocsp

SEARCH_PATIENT = f"{PREFIX}fhir:rest:search:patient-1"
MIGRATE = f"{PREFIX}fhir:operation:gpc.migratestructuredrecord-1"
#: A marker put into tokens, queries and bodies: it must never reach diagnostics or logs.
CANARY = "Zq7CANARYx9"


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
    """The fuzzed provider: the gate tests' (both generations, a 496 for a missing
    certificate)."""
    return make_config(**over)


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
    return make_ocsp(
        p, p.leaf("ssp").certificate, p.sub_ca, this_update=p.reference_time, nonce=b"n" * 16
    )


#: Arguments for :func:`mutate`: one to six flips, deletions or insertions.
MUTATIONS = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6
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
