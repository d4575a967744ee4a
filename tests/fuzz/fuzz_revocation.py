"""Fuzz target: CRL and OCSP parsing and verification, and the revocation checker.

Invariants: ``load_crl`` raises only ``CRLParseError``; ``parse_ocsp_response`` only
``OCSPParseError``; verification only ``SpinePKIError`` subclasses; a damaged CRL that
still verifies still lists the revoked serial; ``RevocationChecker.check`` in hard-fail
mode never raises and never answers GOOD for a revoked certificate whatever the
CRL/OCSP responder returns (revocation is never silently skipped); bounded time and
memory per input.

Atheris: ``python -m tests.fuzz.fuzz_revocation [libFuzzer flags] [corpus]``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import strategies as st

from spinepki.errors import CRLParseError, OCSPParseError, SpinePKIError
from spinepki.revocation import (
    CertID,
    RevocationChecker,
    RevocationMode,
    RevocationStatus,
    StaticFetcher,
    load_crl,
    parse_ocsp_response,
    verify_crl,
    verify_ocsp_response,
)
from tests.fuzz import _samples as s
from tests.fuzz._helpers import atheris_main, fuzz_test

BASE = "http://crl.test.invalid"
CRL_URL = f"{BASE}/crl/sub-ca.crl"
OCSP_URL = f"{BASE}/ocsp"


#: Known finding F10, pinned by test_regression_crl_duplicate_extension; tolerated so a
#: campaign keeps looking for new failures. Remove when fixed.
KNOWN_CRL: tuple[type[BaseException], ...] = ()  # F10 fixed: load_crl catches MALFORMED_INPUT
CRASHES = Path(__file__).parent / "crashes"


def _crl(data: bytes) -> None:
    try:
        crl = load_crl(data)
    except CRLParseError:
        return
    except KNOWN_CRL:
        return
    try:
        verified = verify_crl(crl, s.pki().sub_ca.certificate, der=data)
    except SpinePKIError:
        return
    assert verified.lookup(s.pki().leaf("revoked").serial) is not None
    verified.lookup(s.pki().leaf("ssp").serial)


def _ocsp(data: bytes) -> None:
    try:
        response = parse_ocsp_response(data)
    except OCSPParseError:
        return
    p = s.pki()
    with contextlib.suppress(SpinePKIError):
        verify_ocsp_response(
            response,
            CertID.of(p.leaf("ssp").certificate, p.sub_ca.certificate),
            p.sub_ca.certificate,
            at=p.reference_time,
            tolerance=dt.timedelta(minutes=5),
            nonce=b"n" * 16,
        )


@fuzz_test(st.binary(max_size=1024))
def test_random_bytes(data: bytes) -> None:
    """Random bytes through both parse-and-verify paths."""
    _crl(data)
    _ocsp(data)


@fuzz_test(s.MUTATIONS, st.booleans())
def test_mutated_crl(changes: list[tuple[int, int, int]], pem: bool) -> None:
    """A real CRL (DER or PEM) with bytes flipped, deleted or inserted."""
    base = s.crl_der()
    if pem:
        from cryptography.hazmat.primitives import serialization

        base = x509.load_der_x509_crl(base).public_bytes(serialization.Encoding.PEM)
    _crl(s.mutate(base, changes))


@fuzz_test(s.MUTATIONS)
def test_mutated_ocsp(changes: list[tuple[int, int, int]]) -> None:
    """A real signed OCSP response with bytes flipped, deleted or inserted."""
    _ocsp(s.mutate(s.ocsp_der(), changes))


answers = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda c: s.mutate(s.crl_der(), c), s.MUTATIONS),
    st.builds(lambda c: s.mutate(s.ocsp_der(), c), s.MUTATIONS),
    st.just(s.crl_der()),
    st.just(s.ocsp_der()),
)


@fuzz_test(
    answers,
    answers,
    st.sampled_from(["ssp", "revoked"]),
    st.sampled_from(
        [
            RevocationMode.HARD_FAIL,
            RevocationMode.SOFT_FAIL,
            RevocationMode.PREFER_OCSP,
            RevocationMode.CRL_ONLY,
            RevocationMode.OCSP_ONLY,
        ]
    ),
)
def test_checker_hard_fail(crl: bytes, response: bytes, name: str, mode: RevocationMode) -> None:
    """Whatever the responders return: a result, never GOOD for a revoked certificate."""
    fetcher = StaticFetcher(crls={CRL_URL: crl}, ocsp={OCSP_URL: response})
    checker = RevocationChecker(mode, fetcher=fetcher)
    p = s.pki()
    result = checker.check(p.leaf(name).certificate, p.sub_ca.certificate, at=p.reference_time)
    if name == "revoked":
        assert result.status is not RevocationStatus.GOOD
    else:
        # Nothing among the answers is signed evidence that the ssp leaf is revoked.
        assert result.status in (RevocationStatus.GOOD, RevocationStatus.UNKNOWN)
    if result.status is RevocationStatus.UNKNOWN:
        assert result.problems, "an UNKNOWN answer must say why"


def test_unmutated_vectors_verify() -> None:
    """The base vectors are valid, so mutations start from real evidence."""
    _crl(s.crl_der())
    _ocsp(s.ocsp_der())
    verified = verify_crl(load_crl(s.crl_der()), s.pki().sub_ca.certificate, der=s.crl_der())
    assert verified.lookup(s.pki().leaf("revoked").serial) is not None


def test_truncated_crl() -> None:
    """Truncation at any point is a parse error."""
    data = s.crl_der()
    for cut in (1, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(CRLParseError):
            load_crl(data[:cut])


def test_regression_crl_duplicate_extension() -> None:
    """Found by atheris (crashes/crl-duplicate-aki.der, two authorityKeyIdentifier
    extensions): load_crl must raise CRLParseError, its only documented exception."""
    with pytest.raises(CRLParseError):
        load_crl((CRASHES / "crl-duplicate-aki.der").read_bytes())


def fuzz_one_input(data: bytes) -> None:
    """Atheris: the bytes as a CRL and as an OCSP response."""
    _crl(data)
    _ocsp(data)


def _atheris_seeds() -> list[bytes]:
    return [s.crl_der(), s.ocsp_der()]


if __name__ == "__main__":
    atheris_main(fuzz_one_input, _atheris_seeds())
