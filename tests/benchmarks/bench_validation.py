"""Validation benchmarks (issue 3, section 6): spinepki against bare cryptography and pyhanko.

``make bench`` runs it with the others (``python -m tests.benchmarks --only validation``);
``python -m tests.benchmarks.bench_validation`` prints it alone. One Root -> Sub CA -> leaf
RSA-2048 chain from the test PKI, CRLs already loaded:

* floor: cryptography ``ClientVerifier.verify`` (same Spine extension profile) plus a
  ``serial in set`` lookup;
* cold: ``ClientCertValidator.validate`` with the result cache off: every check on every
  validation, the leaf's and the Sub CA's revocation read from their verified, indexed
  CRLs (the same certificate object each time, so the validator's per-certificate memos
  and the revocation layer's answer index help; cryptography's verifier is reused within
  one second of validation time, as it is under load);
* cold, fetched: the same in the provider's mode (hard-fail, CRLs fetched from the
  distribution points and cached), a fetcher answering from memory;
* first sight: each validation is of a leaf the validator has never seen, given as DER
  bytes as ``validate_peer`` gives it (1,000 distinct leaves, more than the memos hold),
  against cryptography parsing the same DER and verifying it: the strictest reading of
  "cold";
* pyhanko: pyhanko-certvalidator validating the same chain with the same CRLs, hard-fail;
* warm: ``ClientCertValidator.validate`` of the same certificate again (a cache hit);
* worst case (issue 12): a leaf sent with a pile of 32 intermediates that share one subject
  (one key, or 32 keys; EC P-256, as the path-validation corpora use), and with 1,000 of
  them, side by side with the cold validation of the normal chain.

Targets: cold <= 1.3x the floor; pyhanko >= 10x cold; the floor >= 20x warm; the worst
case < 10x a normal chain.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import sys
import warnings

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store
from pyhanko_certvalidator import CertificateValidator, ValidationContext

from spinepki.revocation import RevocationChecker, RevocationMode, StaticFetcher
from spinepki.testpki import KeyType, TestPKI
from spinepki.validation import MAX_INTERMEDIATES, ClientCertValidator, Profile, Purpose
from spinepki.validation._validator import _rules
from tests.benchmarks._helpers import Row, row, side_by_side
from tests.validation.piles import pile

AT = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)


def _der(obj: x509.Certificate | x509.CertificateRevocationList) -> bytes:
    return obj.public_bytes(serialization.Encoding.DER)


def run(quick: bool = False) -> list[Row]:
    """Measure; return one row per comparison (ratio = ours / peer)."""
    number, repeat = (200, 3) if quick else (2000, 7)
    pki = TestPKI.create(key_type=KeyType.RSA_2048, at=AT)
    leaf, sub, root = pki.leaf("ssp").certificate, pki.sub_ca.certificate, pki.root.certificate
    crl, root_crl = pki.crl(), pki.root_crl()
    rules = _rules(Profile.SPINE, Purpose.CLIENT)  # like for like: the same extension profile
    verifier = (
        PolicyBuilder()
        .store(Store([root]))
        .time(AT)
        .extension_policies(ca_policy=rules.client_ca, ee_policy=rules.client_ee)
        .build_client_verifier()
    )
    revoked = {entry.serial_number for entry in crl}

    def floor() -> bool:
        verifier.verify(leaf, [sub])
        return leaf.serial_number in revoked

    checker = RevocationChecker(RevocationMode.OFFLINE, crls=[crl, root_crl])
    trust = pki.trust_store()
    cold_validator = ClientCertValidator(
        trust, ssp_fqdns=pki.ssp_fqdn, revocation=checker, cache_ttl=0
    )
    warm_validator = ClientCertValidator(trust, ssp_fqdns=pki.ssp_fqdn, revocation=checker)
    if not (
        cold_validator.validate(leaf, [sub], at=AT).valid
        and warm_validator.validate(leaf, [sub], at=AT).valid
    ):
        raise RuntimeError("the benchmark chain does not validate")

    bare_validator = ClientCertValidator(
        trust,
        ssp_fqdns=pki.ssp_fqdn,
        revocation=RevocationChecker(RevocationMode.DISABLED, unsafe_allow_disabled=True),
        cache_ttl=0,
    )

    def no_revocation() -> object:
        return bare_validator.validate(leaf, [sub], at=AT)

    def revocation_only() -> object:
        return checker.check(leaf, sub, at=AT)

    def cold() -> object:
        return cold_validator.validate(leaf, [sub], at=AT)

    fetched_validator = ClientCertValidator(
        trust,
        ssp_fqdns=pki.ssp_fqdn,
        revocation=RevocationChecker(
            RevocationMode.HARD_FAIL,
            fetcher=StaticFetcher({url: _der(c) for url, c in _crl_urls(pki, crl, root_crl)}),
        ),
        cache_ttl=0,
    )
    if not fetched_validator.validate(leaf, [sub], at=AT).valid:
        raise RuntimeError("the benchmark chain does not validate with fetched CRLs")

    def cold_fetched() -> object:
        return fetched_validator.validate(leaf, [sub], at=AT)

    def warm() -> object:
        return warm_validator.validate(leaf, [sub], at=AT)

    fresh = [
        _der(pki.issue(f"bench-{i}", fqdn=pki.ssp_fqdn).certificate)
        for i in range(100 if quick else 1000)
    ]
    new_leaves = itertools.cycle(fresh)
    new_for_floor = itertools.cycle(fresh)

    def first_sight() -> object:
        return cold_validator.validate(next(new_leaves), [sub], at=AT)

    def first_sight_floor() -> bool:
        parsed = x509.load_der_x509_certificate(next(new_for_floor))
        verifier.verify(parsed, [sub])
        return parsed.serial_number in revoked

    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(_der(root))],
        moment=AT,
        allow_fetching=False,
        revocation_mode="hard-fail",
        crls=[asn1_crl.CertificateList.load(_der(c)) for c in (crl, root_crl)],
    )
    ee = asn1_x509.Certificate.load(_der(leaf))
    intermediate = asn1_x509.Certificate.load(_der(sub))
    loop = asyncio.new_event_loop()

    def pyhanko() -> None:
        engine = CertificateValidator(
            ee, intermediate_certs=[intermediate], validation_context=context
        )
        loop.run_until_complete(engine.async_validate_usage(set(), {"client_auth"}))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pyhanko()
        cold_s, floor_s = side_by_side(cold, floor, number=number, repeat=repeat)
        fetched_s, floor4_s = side_by_side(cold_fetched, floor, number=number, repeat=repeat)
        cold2_s, hanko_s = side_by_side(cold, pyhanko, number=max(number // 20, 10), repeat=repeat)
        warm_s, floor2_s = side_by_side(warm, floor, number=number, repeat=repeat)
        plain_s, floor3_s = side_by_side(no_revocation, floor, number=number, repeat=repeat)
        lookup_s, _ = side_by_side(revocation_only, lambda: None, number=number, repeat=repeat)
        first_s, first_floor_s = side_by_side(
            first_sight, first_sight_floor, number=number, repeat=repeat
        )
    loop.close()
    worst = _worst_cases(cold_validator, cold, pki.ssp_fqdn, number=max(number // 10, 20))
    return [
        row(
            "cold validation, cached CRL (us)",
            cold_s * 1e6,
            "us",
            peer=f"cryptography verify + set lookup {floor_s * 1e6:.1f} us",
            ratio=cold_s / floor_s,
            target="<= 1.3",
        ),
        row(
            "cold validation, hard-fail, CRLs fetched and cached (us)",
            fetched_s * 1e6,
            "us",
            peer=f"cryptography verify + set lookup {floor4_s * 1e6:.1f} us",
            ratio=fetched_s / floor4_s,
            target="<= 1.3",
        ),
        row(
            "cold validation, first sight: a leaf never seen, as DER (us)",
            first_s * 1e6,
            "us",
            peer=f"cryptography parse + verify + set lookup {first_floor_s * 1e6:.1f} us",
            ratio=first_s / first_floor_s,
            target="<= 1.3 (the cold target, strictest reading)",
        ),
        row(
            "cold validation vs pyhanko-certvalidator (us)",
            cold2_s * 1e6,
            "us",
            peer=f"pyhanko-certvalidator {hanko_s * 1e6:.0f} us",
            ratio=cold2_s / hanko_s,
            target="<= 0.1 (>= 10x faster)",
        ),
        row(
            "attribution: cold validation, revocation off (us)",
            plain_s * 1e6,
            "us",
            peer=f"cryptography verify {floor3_s * 1e6:.1f} us; "
            f"RevocationChecker.check alone {lookup_s * 1e6:.1f} us",
            ratio=plain_s / floor3_s,
        ),
        row(
            "warm validation, cached result (us)",
            warm_s * 1e6,
            "us",
            peer=f"cryptography verify + set lookup {floor2_s * 1e6:.1f} us",
            ratio=warm_s / floor2_s,
            target="<= 0.05 (>= 20x faster)",
        ),
        *worst,
    ]


def _crl_urls(
    pki: TestPKI, *crls: x509.CertificateRevocationList
) -> list[tuple[str, x509.CertificateRevocationList]]:
    """Each CRL with the distribution point URL the test PKI's certificates name for it."""
    by_issuer = {c.issuer: c for c in crls}
    pairs = []
    for cert in (pki.leaf("ssp").certificate, pki.sub_ca.certificate):
        cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        url = cdp[0].full_name[0].value  # type: ignore[index]
        pairs.append((url, by_issuer[cert.issuer]))
    return pairs


def _worst_cases(
    validator: ClientCertValidator, cold: object, fqdn: str, *, number: int
) -> list[Row]:
    """Hostile piles side by side with the cold validation of the normal chain."""
    shapes = [
        ("32 intermediates, one subject, one key", MAX_INTERMEDIATES, True, None),
        ("32 intermediates, one subject, 32 keys", MAX_INTERMEDIATES, False, None),
        ("1,000 intermediates, one subject, one key", 1000, True, None),
        ("32 intermediates, one subject, 32 P-384 keys", MAX_INTERMEDIATES, False, ec.SECP384R1()),
    ]
    rows = []
    for label, size, same_key, curve in shapes:
        hostile_pile = pile(size, same_key=same_key, fqdn=fqdn, at=AT, curve=curve)
        leaf, sent = _der(hostile_pile.leaf), hostile_pile.der()
        if validator.validate(leaf, sent, at=AT).valid:
            raise RuntimeError(f"the pile ({label}) validated")

        def hostile(leaf: bytes = leaf, sent: list[bytes] = sent) -> object:
            return validator.validate(leaf, sent, at=AT)

        hostile_s, normal_s = side_by_side(hostile, cold, number=number)  # type: ignore[arg-type]
        rows.append(
            row(
                f"worst case: {label} (us)",
                hostile_s * 1e6,
                "us",
                peer=f"cold validation of the normal chain {normal_s * 1e6:.0f} us",
                ratio=hostile_s / normal_s,
                target="" if curve else "< 10",
            )
        )
    return rows


def main() -> int:
    """Print the rows."""
    for r in run():
        print(f"{r['name']}: {r['value']:.2f} {r['unit']}  ratio {r['ratio']:.3f}  ({r['peer']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
