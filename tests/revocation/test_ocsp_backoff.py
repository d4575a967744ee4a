"""Unusable OCSP answers are backed off per (responder URL, certificate), in validation time.

An answer that arrives but is no evidence (garbage, a signature from nobody authorised,
a nonce that is not ours, tryLater, stale) is remembered for ``failure_backoff`` of
validation time, like a failed fetch, so a broken responder is not asked on every
validation. Time is an input: the backoff expires by moving ``at``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from spinepki.revocation import (
    RevocationChecker,
    RevocationLimits,
    RevocationStatus,
    StaticFetcher,
)
from spinepki.testpki import TestPKI

from ._helpers import M, make_ocsp
from .conftest import CRL_URL, OCSP_URL, der

SECOND = dt.timedelta(seconds=1)
Answer = Callable[[bytes], bytes]


def serial_of(request_der: bytes) -> int:
    return ocsp.load_der_ocsp_request(request_der).serial_number


def nonce_of(request_der: bytes) -> bytes:
    request = ocsp.load_der_ocsp_request(request_der)
    return request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce


def cert_for(pki: TestPKI, request_der: bytes) -> x509.Certificate:
    serial = serial_of(request_der)
    return next(c.certificate for c in pki if c.serial == serial)


def good(pki: TestPKI, at: dt.datetime) -> Answer:
    return lambda req: make_ocsp(
        pki, cert_for(pki, req), pki.sub_ca, this_update=at, nonce=nonce_of(req)
    )


def bad_answers(pki: TestPKI, at: dt.datetime) -> dict[str, tuple[Answer, str]]:
    """Unusable answers, by name: (the answer, a word of the problem it gives)."""
    try_later = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
    return {
        "garbage": (lambda req: b"\x30\x03junk", "not a valid OCSP response"),
        "unauthorised-signer": (
            lambda req: make_ocsp(
                pki, cert_for(pki, req), pki.sub_ca, this_update=at, signer=pki.root
            ),
            "signed neither by the issuer",
        ),
        "wrong-nonce": (
            lambda req: make_ocsp(
                pki, cert_for(pki, req), pki.sub_ca, this_update=at, nonce=b"\x01" * 32
            ),
            "nonce is not the one sent",
        ),
        "try-later": (lambda req: try_later.public_bytes(Encoding.DER), "try_later"),
        "stale": (
            lambda req: make_ocsp(
                pki, cert_for(pki, req), pki.sub_ca, this_update=at - dt.timedelta(days=2)
            ),
            "stale",
        ),
    }


BAD = ["garbage", "unauthorised-signer", "wrong-nonce", "try-later", "stale"]


def check(checker: RevocationChecker, pki: TestPKI, at: dt.datetime, name: str = "ssp"):  # type: ignore[no-untyped-def]
    return checker.check(pki.leaf(name).certificate, pki.sub_ca.certificate, at=at)


@pytest.mark.parametrize("kind", BAD)
def test_unusable_answer_is_backed_off_until_the_backoff_passes(
    pki: TestPKI, at: dt.datetime, kind: str
) -> None:
    """The responder is asked once; within the 30 s backoff (of validation time) the
    remembered problem is reported instead; past it, it is asked again."""
    answer, word = bad_answers(pki, at)[kind]
    fetcher = StaticFetcher(ocsp={OCSP_URL: answer})
    checker = RevocationChecker(M.OCSP_ONLY, fetcher=fetcher)
    first = check(checker, pki, at)
    assert first.status is RevocationStatus.UNKNOWN
    assert word in first.problems[0]
    for seconds in (0, 10, 29):
        again = check(checker, pki, at + seconds * SECOND)
        assert again.status is RevocationStatus.UNKNOWN
        assert "not retried before" in again.problems[0]
        assert first.problems[0] in again.problems[0]
    assert len(fetcher.calls) == 1
    fetcher.ocsp[OCSP_URL] = good(pki, at)
    recovered = check(checker, pki, at + 31 * SECOND)
    assert recovered.status is RevocationStatus.GOOD
    assert recovered.problems == ()
    assert len(fetcher.calls) == 2


def test_backoff_is_per_certificate(pki: TestPKI, at: dt.datetime) -> None:
    """The responder answered, so only this certificate is backed off: another
    certificate's status is still asked for."""
    answers = {pki.leaf("ssp").serial: b"junk"}
    fetcher = StaticFetcher(
        ocsp={OCSP_URL: lambda req: answers.get(serial_of(req)) or good(pki, at)(req)}
    )
    checker = RevocationChecker(M.OCSP_ONLY, fetcher=fetcher)
    assert check(checker, pki, at).status is RevocationStatus.UNKNOWN
    other = check(checker, pki, at + SECOND, "provider")
    assert other.status is RevocationStatus.GOOD
    assert len(fetcher.calls) == 2


def test_backoff_of_zero_asks_every_time(pki: TestPKI, at: dt.datetime) -> None:
    """failure_backoff=0 turns the memory off."""
    fetcher = StaticFetcher(ocsp={OCSP_URL: b"junk"})
    checker = RevocationChecker(
        M.OCSP_ONLY, fetcher=fetcher, limits=RevocationLimits(failure_backoff=dt.timedelta(0))
    )
    for _ in range(3):
        check(checker, pki, at)
    assert len(fetcher.calls) == 3


def test_backoff_memory_is_bounded(pki: TestPKI, at: dt.datetime) -> None:
    """At most ocsp_cache_size unusable answers are remembered; the oldest is forgotten."""
    fetcher = StaticFetcher(ocsp={OCSP_URL: b"junk"})
    checker = RevocationChecker(
        M.OCSP_ONLY, fetcher=fetcher, limits=RevocationLimits(ocsp_cache_size=2)
    )
    for name in ("ssp", "provider", "consumer"):
        check(checker, pki, at, name)
    assert len(fetcher.calls) == 3
    check(checker, pki, at + SECOND, "consumer")  # remembered
    assert len(fetcher.calls) == 3
    check(checker, pki, at + SECOND, "ssp")  # forgotten: asked again
    assert len(fetcher.calls) == 4


def test_prefer_ocsp_falls_back_to_the_crl_without_asking_again(
    pki: TestPKI, at: dt.datetime
) -> None:
    """PREFER_OCSP with a garbage-answering responder: the CRL answers, and within the
    backoff the next check goes straight to the (cached) CRL."""
    fetcher = StaticFetcher(crls={CRL_URL: der(pki.crl())}, ocsp={OCSP_URL: b"junk"})
    checker = RevocationChecker(M.PREFER_OCSP, fetcher=fetcher)
    assert check(checker, pki, at).status is RevocationStatus.GOOD
    second = check(checker, pki, at + 10 * SECOND)
    assert second.status is RevocationStatus.GOOD
    assert "not retried before" in second.problems[0]
    assert fetcher.calls == [("ocsp", OCSP_URL), ("crl", CRL_URL)]


def test_a_failed_post_still_backs_off_the_whole_responder(pki: TestPKI, at: dt.datetime) -> None:
    """Unchanged: an unreachable responder is backed off for every certificate."""
    fetcher = StaticFetcher()  # nothing configured: every post fails
    checker = RevocationChecker(M.OCSP_ONLY, fetcher=fetcher)
    check(checker, pki, at)
    result = check(checker, pki, at + SECOND, "provider")
    assert "not retried before" in result.problems[0]
    assert len(fetcher.calls) == 1
