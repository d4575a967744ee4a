"""Revocation benchmarks: big-CRL load/verify/index and lookups; OCSP verification.

Run with ``python -m tests.benchmarks.bench_revocation`` (or through ``make bench``).
``run()`` returns one row per measurement (see ``tests/benchmarks/_util.row``): ``name``,
``value``, ``unit``, ``peer`` (what was measured side by side, with its time), ``ratio``
(ours / peer) and ``target``.

The 100,000-entry CRL takes a few seconds to build, so its DER is cached in the system
temporary directory for the machine (the issuer key is cached next to it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from spinepki.revocation import (
    CertID,
    build_ocsp_request,
    load_crl,
    parse_ocsp_response,
    verify_crl,
    verify_ocsp_response,
)
from tests.benchmarks._helpers import Row, per_call, row, side_by_side

SIZES = (10, 10_000, 100_000)
#: A serial that is never listed (not 16 bytes long like the generated ones).
MISS = 12345
AT = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
_CACHE = Path(tempfile.gettempdir()) / "spinepki-bench-v1"


def _issuer() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    _CACHE.mkdir(exist_ok=True)
    key_path = _CACHE / "issuer.key"
    if key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):  # pragma: no cover
            raise TypeError("cached key is not EC")
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spinepki bench CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(AT - dt.timedelta(days=365))
        .not_valid_after(AT + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _serial(i: int) -> int:
    # Realistic 16-byte serials, spread out, reproducible.
    return int.from_bytes(hashlib.sha256(i.to_bytes(8, "big")).digest()[:16], "big") >> 1


def _crl_der(size: int, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate) -> bytes:
    pub = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = _CACHE / f"crl-{size}-{hashlib.sha256(pub).hexdigest()[:12]}.der"
    if path.exists():
        return path.read_bytes()
    reason = x509.CRLReason(x509.ReasonFlags.key_compromise)
    revoked = [
        x509.RevokedCertificateBuilder()
        .serial_number(_serial(i))
        .revocation_date(AT - dt.timedelta(days=1))
        .add_extension(reason, critical=False)
        .build()
        for i in range(size)
    ]
    # The constructor takes the whole list at once; add_revoked_certificate copies the
    # list on every call, which is quadratic at 100,000 entries.
    crl = x509.CertificateRevocationListBuilder(
        issuer_name=issuer.subject,
        last_update=AT - dt.timedelta(hours=1),
        next_update=AT + dt.timedelta(days=7),
        extensions=[
            x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(1)),
        ],
        revoked_certificates=revoked,
    ).sign(key, hashes.SHA256())
    data = crl.public_bytes(serialization.Encoding.DER)
    path.write_bytes(data)
    return data


def bench_crl(*, quick: bool = False) -> list[Row]:
    """Load + verify + index a 100k CRL vs cryptography; lookups at three sizes."""
    key, issuer = _issuer()
    public = issuer.public_key()
    rows = []
    big = _crl_der(100_000, key, issuer)

    def ours() -> None:
        verify_crl(load_crl(big), issuer, der=big)

    def peer() -> None:
        x509.load_der_x509_crl(big).is_signature_valid(public)  # type: ignore[arg-type]

    ours_s, peer_s = side_by_side(ours, peer, number=1, repeat=3 if quick else 7)
    rows.append(
        row(
            "CRL, 100,000 entries: load + signature check + index",
            ours_s * 1e3,
            "ms",
            peer=f"cryptography load_der_x509_crl + is_signature_valid: {peer_s * 1e3:.1f} ms",
            ratio=ours_s / peer_s,
            target="<= 1.5",
        )
    )
    number = 2_000 if quick else 20_000
    for size in SIZES:
        data = _crl_der(size, key, issuer)
        verified = verify_crl(load_crl(data), issuer, der=data)
        hit = _serial(size // 2)
        miss_s = per_call(lambda v=verified: v.lookup(MISS), number=number)  # type: ignore[misc]
        hit_s = per_call(lambda v=verified, h=hit: v.lookup(h), number=number // 10)  # type: ignore[misc]
        crl = verified.crl
        scan_s = per_call(
            lambda c=crl: c.get_revoked_certificate_by_serial_number(MISS),  # type: ignore[misc]
            number=max(1, 2_000 // max(1, size // 10)),
            repeat=3,
        )
        rows.append(
            row(
                f"CRL lookup, serial not listed, {size:,} entries",
                miss_s * 1e6,
                "us",
                peer=f"cryptography get_revoked_certificate_by_serial_number (a scan): "
                f"{scan_s * 1e6:.1f} us",
                ratio=miss_s / scan_s,
                target="flat across sizes",
            )
        )
        rows.append(
            row(
                f"CRL lookup, serial listed (date + reason read), {size:,} entries",
                hit_s * 1e6,
                "us",
                target="flat across sizes",
            )
        )
    return rows


def bench_ocsp(*, quick: bool = False) -> list[Row]:
    """Verify one OCSP response (parse, signer, signature, CertID, times) vs bare calls."""
    key, issuer = _issuer()
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
        .issuer_name(issuer.subject)
        .public_key(leaf_key.public_key())
        .serial_number(_serial(1))
        .not_valid_before(AT - dt.timedelta(days=1))
        .not_valid_after(AT + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    _, nonce = build_ocsp_request(leaf, issuer)
    produced = dt.datetime.now(dt.UTC)
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=leaf,
            issuer=issuer,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=produced - dt.timedelta(minutes=1),
            next_update=produced + dt.timedelta(hours=12),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
        .add_extension(x509.OCSPNonce(nonce or b""), critical=False)
        .sign(key, hashes.SHA256())
    )
    data = response.public_bytes(serialization.Encoding.DER)
    cert_id = CertID.of(leaf, issuer)
    public = issuer.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):  # pragma: no cover
        raise TypeError("bench issuer is EC")

    def ours() -> None:
        verify_ocsp_response(
            parse_ocsp_response(data),
            cert_id,
            issuer,
            at=produced,
            tolerance=dt.timedelta(minutes=5),
            nonce=nonce,
        )

    def peer() -> None:
        # The bare minimum: parse, verify the signature, read the status.
        r = ocsp.load_der_ocsp_response(data)
        public.verify(r.signature, r.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
        _ = r.certificate_status

    ours_s, peer_s = side_by_side(ours, peer, number=200 if quick else 2_000)
    return [
        row(
            "OCSP response: parse + signer + signature + CertID + nonce + times",
            ours_s * 1e6,
            "us",
            peer=f"cryptography load_der_ocsp_response + verify + status: {peer_s * 1e6:.1f} us",
            ratio=ours_s / peer_s,
        )
    ]


def run(quick: bool = False) -> list[Row]:
    """Every revocation measurement, in one run."""
    return bench_crl(quick=quick) + bench_ocsp(quick=quick)


if __name__ == "__main__":
    for r in run():
        ratio = f"  ratio {r['ratio']:.3f}" if r["ratio"] is not None else ""
        print(f"{r['name']}: {r['value']:.3f} {r['unit']}{ratio}  ({r['peer']})")
