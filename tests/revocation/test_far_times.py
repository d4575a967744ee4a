"""Any time a CA can sign, and any time a caller can ask about, gets an answer.

A CRL whose nextUpdate was 99991231235959Z made the freshness check add its clock
tolerance past year 9999 and raise a bare OverflowError out of ``check()`` (a 500 in a
provider). The general rule, tested over the whole calendar: evidence times and ``at``
anywhere ASN.1 and ``datetime`` reach give a RevocationResult or a ValidationResult,
never an exception.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinepki._time import shift
from spinepki.errors import ConfigurationError, EvidenceError
from spinepki.revocation import RevocationChecker, RevocationResult, StaticFetcher
from spinepki.revocation._crl import check_window, verify_crl
from spinepki.testpki import KeyType, TestPKI
from spinepki.validation import ClientCertValidator, FailureCode
from tests._helpers import CLOCKS_GO_BACK

from ._helpers import M, make_ocsp
from .conftest import BASE, CRL_URL, der

UTC = dt.UTC
LAST = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
#: What a CRL's times may be: cryptography refuses to sign a time before 1950.
_SIGNABLE = st.datetimes(
    min_value=dt.datetime(1950, 1, 1), max_value=LAST.replace(tzinfo=None), timezones=st.just(UTC)
)
_ANY_AT = st.one_of(
    st.datetimes(timezones=st.just(UTC)),
    st.sampled_from([dt.datetime.min.replace(tzinfo=UTC), dt.datetime.max.replace(tzinfo=UTC)]),
)
#: Fixed offsets (no time zone database needed); at the ends of the calendar some of
#: these times have no UTC equivalent.
_OFFSETS = st.builds(
    dt.timezone,
    st.timedeltas(
        min_value=-dt.timedelta(hours=23, minutes=59), max_value=dt.timedelta(hours=23, minutes=59)
    ),
)
_LOCAL_AT = st.one_of(
    st.datetimes(timezones=_OFFSETS),
    st.builds(
        lambda tz, end: end.replace(tzinfo=tz),
        _OFFSETS,
        st.sampled_from([dt.datetime.min, dt.datetime.max]),
    ),
)
_PKI = TestPKI.create(key_type=KeyType.EC_P256, base_url=BASE)


def _crl(this_update: dt.datetime, next_update: dt.datetime) -> x509.CertificateRevocationList:
    key = _PKI.sub_ca.private_key
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(_PKI.sub_ca.certificate.subject)
        .last_update(this_update.replace(microsecond=0))
        .next_update(next_update.replace(microsecond=0))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )


def test_shift_stops_at_the_ends_of_the_calendar() -> None:
    assert shift(LAST, dt.timedelta(days=1)) == dt.datetime.max.replace(tzinfo=UTC)
    earliest = dt.datetime.min.replace(tzinfo=UTC)
    assert shift(earliest + dt.timedelta(hours=1), -dt.timedelta(days=1)) == earliest
    assert shift(LAST, -dt.timedelta(days=1)) == LAST - dt.timedelta(days=1)
    # A local time whose UTC instant is past the end stays at the end, whichever way it
    # is shifted (and one before the start, at the start).
    west = dt.timezone(-dt.timedelta(hours=5))
    late = dt.datetime(9999, 12, 31, 22, 0, tzinfo=west)
    assert shift(late, -dt.timedelta(minutes=5)) == dt.datetime.max.replace(tzinfo=UTC)
    east = dt.timezone(dt.timedelta(hours=5))
    early = dt.datetime(1, 1, 1, 2, 0, tzinfo=east)
    assert shift(early, dt.timedelta(minutes=5)) == earliest
    assert shift(dt.datetime(2024, 1, 1, 12, tzinfo=east), dt.timedelta(0)) == dt.datetime(
        2024, 1, 1, 7, tzinfo=UTC
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(this_update=_SIGNABLE, lifetime=st.timedeltas(min_value=dt.timedelta(0)), at=_ANY_AT)
def test_any_crl_times_any_at(
    this_update: dt.datetime, lifetime: dt.timedelta, at: dt.datetime
) -> None:
    next_update = min(shift(this_update, lifetime), LAST)
    crl = _crl(this_update, next_update)
    leaf, sub = _PKI.leaf("ssp").certificate, _PKI.sub_ca.certificate
    supplied = RevocationChecker(M.OFFLINE, crls=[crl])
    fetched = RevocationChecker(M.HARD_FAIL, fetcher=StaticFetcher(crls={CRL_URL: der(crl)}))
    for checker in (supplied, fetched):
        for _ in range(3):  # the walk, the one remembered, the answer from the index
            assert isinstance(checker.check(leaf, sub, at=at), RevocationResult)
            checker.cached(leaf, sub, at=at)
        assert checker.refresh(at=at) is not None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(this_update=_SIGNABLE, at=_ANY_AT, ocsp_next=st.booleans())
def test_any_ocsp_times_any_at(this_update: dt.datetime, at: dt.datetime, ocsp_next: bool) -> None:
    leaf = _PKI.leaf("ssp").certificate
    answer = make_ocsp(
        _PKI,
        leaf,
        _PKI.sub_ca,
        this_update=this_update.replace(microsecond=0),
        next_update=(LAST - this_update.replace(microsecond=0)) if ocsp_next else None,
    )
    checker = RevocationChecker(M.OFFLINE, ocsp_responses=[answer])
    assert isinstance(checker.check(leaf, _PKI.sub_ca.certificate, at=at), RevocationResult)


@settings(max_examples=30, deadline=None)
@given(at=_ANY_AT)
def test_the_validator_at_any_time(at: dt.datetime) -> None:
    checker = RevocationChecker(M.OFFLINE, crls=[_PKI.crl(), _PKI.root_crl()])
    validator = ClientCertValidator(_PKI.trust_store(), ssp_fqdns=_PKI.ssp_fqdn, revocation=checker)
    leaf = _PKI.leaf("ssp").certificate
    result = validator.validate(leaf, at=at)
    assert result.valid or result.failures
    if at.year in {1, 9999}:
        assert {FailureCode.EXPIRED, FailureCode.NOT_YET_VALID} & set(result.codes)


@settings(max_examples=60, deadline=None)
@given(at=_LOCAL_AT)
def test_any_local_time_is_an_answer_or_a_typed_error(at: dt.datetime) -> None:
    """A time in any fixed offset is used as its UTC instant; one that has none (a
    minute before year 1 in UTC) is a ConfigurationError, never an OverflowError."""
    checker = RevocationChecker(M.OFFLINE, crls=[_PKI.crl(), _PKI.root_crl()])
    validator = ClientCertValidator(_PKI.trust_store(), ssp_fqdns=_PKI.ssp_fqdn, revocation=checker)
    leaf, sub = _PKI.leaf("ssp").certificate, _PKI.sub_ca.certificate
    try:
        at.astimezone(UTC)
    except OverflowError:
        in_utc = False
    else:
        in_utc = True
    for ask in (
        lambda: checker.check(leaf, sub, at=at),
        lambda: checker.cached(leaf, sub, at=at),
        lambda: validator.validate(leaf, at=at),
    ):
        if in_utc:
            ask()
        else:
            with pytest.raises(ConfigurationError, match="outside the calendar"):
                ask()


def test_a_crl_valid_until_the_end_of_time_answers() -> None:
    """The probe: nextUpdate 99991231235959Z, asked about repeatedly (walk and index)."""
    at = _PKI.reference_time
    crl = _crl(at - dt.timedelta(hours=1), LAST)
    checker = RevocationChecker(M.OFFLINE, crls=[crl])
    leaf, sub = _PKI.leaf("ssp").certificate, _PKI.sub_ca.certificate
    assert checker.check(leaf, sub, at=at).status.value == "good"
    assert checker.cached(leaf, sub, at=LAST) == checker.check(leaf, sub, at=LAST)


def test_the_end_of_the_calendar_is_not_a_tie() -> None:
    """nextUpdate 23:50 on the last day, asked at 23:59:59 with five minutes' tolerance:
    stale, by every reading of the window (shifting both sides would make both the end
    of the calendar and call it fresh)."""
    crl = verify_crl(
        _crl(dt.datetime(2024, 1, 1, tzinfo=UTC), LAST.replace(minute=50, second=0)),
        _PKI.sub_ca.certificate,
    )
    tolerance = dt.timedelta(minutes=5)
    with pytest.raises(EvidenceError, match="stale"):
        crl.check_fresh(LAST, tolerance)
    assert crl.is_stale(LAST, tolerance)
    with pytest.raises(EvidenceError, match="stale"):
        check_window(
            crl.this_update, crl.next_update, at=LAST, tolerance=tolerance, what="x", source="y"
        )


@pytest.mark.parametrize("minute", [58, 30])
def test_a_local_time_is_its_instant(minute: int) -> None:
    """The public helpers shift a caller's time in UTC: across the hour repeated when
    clocks go back, wall-clock arithmetic would be an hour off."""
    this_update = dt.datetime(2024, 10, 27, 1, 50, tzinfo=UTC)
    crl = verify_crl(_crl(this_update, this_update + dt.timedelta(days=1)), _PKI.sub_ca.certificate)
    local = dt.datetime(2024, 10, 27, 1, minute, tzinfo=CLOCKS_GO_BACK, fold=0)
    tolerance = dt.timedelta(minutes=5)
    outcomes = []
    for at in (local, local.astimezone(UTC)):
        try:
            crl.check_fresh(at, tolerance)
        except EvidenceError:
            outcomes.append("refused")
        else:
            outcomes.append("fresh")
    assert outcomes[0] == outcomes[1]
