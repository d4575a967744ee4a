"""Hypothesis: malformed CRLs and OCSP responses give typed errors only, never a crash."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinepki.errors import SpinePKIError
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
from spinepki.testpki import KeyType, TestPKI

from ._helpers import make_ocsp
from .conftest import CRL_URL, OCSP_URL, der

PKI = TestPKI.create(key_type=KeyType.EC_P256, base_url="http://crl.test.invalid")
AT = PKI.reference_time
CRL_DER = der(PKI.crl())
OCSP_DER = make_ocsp(PKI, PKI.leaf("ssp").certificate, PKI.sub_ca, this_update=AT, nonce=b"n" * 16)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mutate(data: bytes, draw_ops: list[tuple[int, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, where, value in draw_ops:
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


ops = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4
)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_are_parse_errors(data: bytes) -> None:
    """Random bytes never escape the parse entry points except as spinepki errors."""
    for parse in (load_crl, parse_ocsp_response):
        with contextlib.suppress(SpinePKIError):
            parse(data)


@FUZZ
@given(ops)
def test_mutated_crl(changes: list[tuple[int, int, int]]) -> None:
    """A damaged CRL fails with CRLParseError or EvidenceError, or still verifies."""
    data = mutate(CRL_DER, changes)
    try:
        verified = verify_crl(load_crl(data), PKI.sub_ca.certificate, der=data)
    except SpinePKIError:
        return
    verified.lookup(PKI.leaf("revoked").serial)


@FUZZ
@given(ops)
def test_mutated_ocsp(changes: list[tuple[int, int, int]]) -> None:
    """A damaged OCSP response fails with OCSPParseError or EvidenceError, or still verifies."""
    data = mutate(OCSP_DER, changes)
    cert = PKI.leaf("ssp").certificate
    with contextlib.suppress(SpinePKIError):
        verify_ocsp_response(
            parse_ocsp_response(data),
            CertID.of(cert, PKI.sub_ca.certificate),
            PKI.sub_ca.certificate,
            at=AT,
            tolerance=dt.timedelta(minutes=5),
            nonce=b"n" * 16,
        )


@FUZZ
@given(
    st.one_of(st.binary(max_size=256), ops.map(lambda c: mutate(CRL_DER, c))),
    st.binary(max_size=256),
)
def test_checker_never_raises(crl: bytes, response: bytes) -> None:
    """Whatever the network returns, check() returns a result and never raises."""
    fetcher = StaticFetcher(crls={CRL_URL: crl}, ocsp={OCSP_URL: response})
    checker = RevocationChecker(RevocationMode.HARD_FAIL, fetcher=fetcher)
    result = checker.check(PKI.leaf("ssp").certificate, PKI.sub_ca.certificate, at=AT)
    assert result.status in (RevocationStatus.GOOD, RevocationStatus.UNKNOWN)


@pytest.mark.parametrize("cut", [1, 10, len(CRL_DER) // 2, len(CRL_DER) - 1])
def test_truncated_crl(cut: int) -> None:
    """Truncation at any point is a parse error."""
    with pytest.raises(SpinePKIError):
        load_crl(CRL_DER[:cut])
