"""A fetch that runs into its total deadline says so, whichever thread notices first."""

from __future__ import annotations

import time

import pytest
import requests

from spinepki.errors import FetchError
from spinepki.revocation import RequestsFetcher
from spinepki.revocation.fetchers import _Attempt


class _TimesOut:
    """A session whose request times out at once, as a socket read does at its timeout."""

    def request(self, *args: object, **kwargs: object) -> object:
        raise requests.ReadTimeout("read timed out")


@pytest.mark.parametrize(
    ("left", "expected"),
    [(10.0, "timed out (ReadTimeout)"), (0.0, "no complete answer within 0.3 s")],
)
def test_the_worker_names_the_deadline_when_it_is_the_cause(left: float, expected: str) -> None:
    """A read timeout at the total deadline reads 'no complete answer within N s' (as the
    caller's own deadline does); one well before the deadline keeps 'timed out'. The
    deadline is given, not waited for."""
    fetcher = RequestsFetcher(timeout=0.3, trust_env=False)
    fetcher._session = _TimesOut()  # type: ignore[assignment]
    attempt = _Attempt()
    fetcher._work(
        attempt,
        method="GET",
        url="http://127.0.0.1:9/x.crl",
        data=None,
        headers={},
        limit=1000,
        deadline=time.monotonic() + left,
        total=0.3,
    )
    assert isinstance(attempt.error, FetchError)
    assert str(attempt.error) == f"http://127.0.0.1:9/x.crl: {expected}"
