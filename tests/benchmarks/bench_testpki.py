"""Test-PKI generation: spinepki's standard set vs the same number of certificates from trustme."""

from __future__ import annotations

from typing import Any

import trustme

from spinepki.testpki import STANDARD_LEAVES, KeyType, TestPKI
from tests.benchmarks._helpers import Row, row, side_by_side

#: Our standard set: root, sub CA, foreign root, foreign sub CA, OCSP responder + leaves.
N_CERTS = 4 + 1 + len(STANDARD_LEAVES)


def _trustme_equivalent(key_type: trustme.KeyType) -> None:
    # Same shape and count: two root+intermediate hierarchies, the rest leaves.
    for _ in range(2):
        root = trustme.CA(key_type=key_type)
        root.create_child_ca(key_type=key_type)
    sub = trustme.CA(key_type=key_type).create_child_ca(key_type=key_type)
    for i in range(N_CERTS - 6):
        sub.issue_cert(f"leaf{i}.example.nhs.uk", key_type=key_type)


def _per_certificate(what: str, seconds: float, trustme_seconds: float, **kw: Any) -> Row:
    """A row of milliseconds per certificate, beside trustme's for the same work."""
    return row(
        f"test PKI, {what} (ms per certificate)",
        seconds / N_CERTS * 1e3,
        "ms",
        peer=f"trustme {trustme_seconds / N_CERTS * 1e3:.2f} ms",
        ratio=seconds / trustme_seconds,
        **kw,
    )


def run(quick: bool = False) -> list[Row]:
    rows: list[Row] = []
    cases = [
        ("ECDSA P-256", KeyType.EC_P256, trustme.KeyType.ECDSA, 20 if not quick else 3),
        ("RSA-2048", KeyType.RSA_2048, trustme.KeyType.RSA, 3 if not quick else 1),
    ]
    for label, ours, theirs, number in cases:
        cold, peer = side_by_side(
            lambda o=ours: TestPKI.create(key_type=o, reuse_keys=False),
            lambda t=theirs: _trustme_equivalent(t),
            number=number,
            repeat=5 if not quick else 2,
        )
        rows.append(
            _per_certificate(
                f"{label}, fresh keys", cold, peer, target="<= 1.0 (ECDSA), <= 1.2 (RSA)"
            )
        )
        TestPKI.create(key_type=ours)  # warm the per-role key cache
        warm, _ = side_by_side(
            lambda o=ours: TestPKI.create(key_type=o), lambda: None, number=number * 3, repeat=3
        )
        rows.append(_per_certificate(f"{label}, keys reused in-process", warm, peer))
    return rows
