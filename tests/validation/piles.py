"""Hostile piles of certificates (issue 12, finding 1), for tests/validation and the bench.

A pile is a leaf sent with many CA certificates that share one subject, X, and are issued
by X: each other. None chains to a trusted root, and every one is a candidate issuer for
every other, which is what made path building exponential. Throwaway EC keys only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Pile", "name", "pile", "pile_certificate"]


def name(cn: str) -> x509.Name:
    """A Name holding one CN."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def pile_certificate(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    *,
    at: dt.datetime,
    ca: bool = True,
) -> x509.Certificate:
    """A minimal CA (or clientAuth leaf) certificate valid around ``at``."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(at - dt.timedelta(days=1))
        .not_valid_after(at + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=False,
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


@dataclass(frozen=True)
class Pile:
    """A leaf and the intermediates a hostile peer sends with it."""

    leaf: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]

    def der(self) -> list[bytes]:
        """The intermediates as DER, as a TLS peer sends them."""
        return [c.public_bytes(serialization.Encoding.DER) for c in self.intermediates]


def pile(
    count: int,
    *,
    same_key: bool,
    fqdn: str,
    at: dt.datetime,
    curve: ec.EllipticCurve | None = None,
) -> Pile:
    """``count`` CA certificates named X issued by X, with one key or ``count`` keys."""
    curve = curve or ec.SECP256R1()
    one = ec.generate_private_key(curve)
    keys = [one] * count if same_key else [ec.generate_private_key(curve) for _ in range(count)]
    x = name("X")
    certs = tuple(
        pile_certificate(x, x, keys[i], keys[(i + 1) % count], at=at) for i in range(count)
    )
    leaf = pile_certificate(name(fqdn), x, ec.generate_private_key(curve), keys[0], at=at, ca=False)
    return Pile(leaf, certs)
