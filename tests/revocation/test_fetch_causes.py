"""A failed fetch says its URL and its short cause, and "unknown" says the mode: one line."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests
import urllib3.exceptions
from hypothesis import given
from hypothesis import strategies as st

from spinepki.errors import FetchError
from spinepki.revocation import RequestsFetcher, RevocationChecker, RevocationMode
from spinepki.revocation.fetchers import _describe
from spinepki.testpki import KeyType, TestPKI
from spinepki.testpki.responder import Endpoint, Fault, Responder
from spinepki.validation import ClientCertValidator, FailureCode

#: The root causes an operator can act on, and the words each is reported with.
CAUSES: list[tuple[BaseException, str]] = [
    (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
    (socket.gaierror(-2, "Name or service not known"), "host name not resolved"),
    (ConnectionResetError(104, "Connection reset by peer"), "connection reset"),
    (TimeoutError("timed out"), "timed out"),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "TLS failed"),
    (OSError(101, "Network is unreachable"), "network is unreachable"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wrap(cause: BaseException, layers: list[int]) -> BaseException:
    """``cause`` inside the wrappers requests and urllib3 put around it, in some order."""
    exc: BaseException = cause
    for layer in layers:
        if layer == 0:
            outer: BaseException = urllib3.exceptions.NewConnectionError(
                None, f"HTTPConnection(host='127.0.0.1', port=9): Failed to establish: {exc}"
            )
            outer.__cause__ = exc
        elif layer == 1:
            outer = urllib3.exceptions.MaxRetryError(None, "/crl/sub-ca.crl", reason=exc)  # type: ignore[arg-type]
        elif layer == 2:
            outer = requests.ConnectionError(exc)
        else:
            outer = urllib3.exceptions.ProtocolError("Connection aborted.", exc)
        exc = outer
    return exc


class TestShortCause:
    @pytest.mark.parametrize(("cause", "words"), CAUSES)
    def test_the_real_requests_nesting(self, cause: BaseException, words: str) -> None:
        """ConnectionError -> MaxRetryError -> NewConnectionError -> OSError: the OSError speaks."""
        assert _describe(_wrap(cause, [0, 1, 2])).startswith(words)

    @given(st.sampled_from(range(len(CAUSES))), st.lists(st.integers(0, 3), min_size=0, max_size=6))
    def test_any_nesting(self, index: int, layers: list[int]) -> None:
        """However the wrappers nest, the cause is found and said in one short line."""
        cause, words = CAUSES[index]
        text = _describe(_wrap(cause, layers))
        assert text.startswith(words)
        assert "\n" not in text
        assert len(text) <= 120
        assert "HTTPConnection" not in text

    def test_unknown_errors_stay_short(self) -> None:
        """An error with no OS cause is cut to one short line."""
        text = _describe(ValueError("bad status line " + "x" * 500 + "\nsecond line"))
        assert len(text) <= 120
        assert "\n" not in text


@pytest.mark.network
class TestAgainstSockets:
    def test_refused(self) -> None:
        """Nothing listening: the URL and 'connection refused', nothing else."""
        url = f"http://127.0.0.1:{_free_port()}/crl/sub-ca.crl"
        with (
            RequestsFetcher(timeout=2, trust_env=False) as fetcher,
            pytest.raises(FetchError) as info,
        ):
            fetcher.fetch_crl(url)
        assert str(info.value) == f"{url}: request failed: connection refused"

    def test_tls_to_a_plain_port(self, spinepki_responder: Responder) -> None:
        """https:// to a plain HTTP responder: 'TLS failed' and OpenSSL's reason."""
        url = spinepki_responder.url(Endpoint.CRL).replace("http://", "https://")
        with (
            RequestsFetcher(timeout=2, trust_env=False) as fetcher,
            pytest.raises(FetchError) as info,
        ):
            fetcher.fetch_crl(url)
        assert str(info.value).startswith(f"{url}: request failed: TLS failed (")
        assert len(str(info.value)) < 200

    def test_reset(self, spinepki_responder: Responder) -> None:
        """A responder that drops the connection: 'connection reset' (or aborted)."""
        spinepki_responder.set_fault(Fault.DOWN)
        url = spinepki_responder.url(Endpoint.CRL)
        with (
            RequestsFetcher(timeout=2, trust_env=False) as fetcher,
            pytest.raises(FetchError) as info,
        ):
            fetcher.fetch_crl(url)
        reason = str(info.value).removeprefix(f"{url}: request failed: ")
        assert reason in {"connection reset", "connection aborted"}, reason


@pytest.mark.network
@pytest.mark.parametrize(
    ("mode", "sources"),
    [
        (RevocationMode.HARD_FAIL, ("crl/sub-ca.crl", "ocsp")),
        (RevocationMode.PREFER_OCSP, ("ocsp", "crl/sub-ca.crl")),
        (RevocationMode.CRL_ONLY, ("crl/sub-ca.crl",)),
    ],
)
def test_unknown_names_mode_url_and_cause_once(
    mode: RevocationMode, sources: tuple[str, ...]
) -> None:
    """A dead responder: one line with the mode, then per source its URL and short cause."""
    base = f"http://127.0.0.1:{_free_port()}"
    pki = TestPKI.create(key_type=KeyType.EC_P256, base_url=base)
    fetcher = RequestsFetcher(timeout=2, trust_env=False)
    validator = ClientCertValidator(
        pki.trust_store(),
        ssp_fqdns=[pki.ssp_fqdn],
        revocation=RevocationChecker(mode, fetcher=fetcher),
    )
    result = validator.validate(pki.leaf("ssp").chain_pem, at=pki.reference_time)
    failure, sub_ca = result.failures
    assert failure.code is FailureCode.REVOCATION_UNKNOWN
    causes = "; ".join(f"{base}/{s}: request failed: connection refused" for s in sources)
    assert failure.message == f"revocation status unknown ({mode.value}): {causes}"
    # The Sub CA's status is unknown too, and that is a failure of its own.
    assert sub_ca.code is FailureCode.REVOCATION_UNKNOWN
    assert sub_ca.certificate_subject == pki.sub_ca.certificate.subject.rfc4514_string()
    assert sub_ca.message.startswith(f"the issuing CA's revocation status unknown ({mode.value})")
    # A legitimate certificate is still accepted once the evidence is there.
    offline = ClientCertValidator(
        pki.trust_store(),
        ssp_fqdns=[pki.ssp_fqdn],
        revocation=RevocationChecker(RevocationMode.OFFLINE, crls=[pki.crl(), pki.root_crl()]),
    )
    assert offline.validate(pki.leaf("ssp").chain_pem, at=pki.reference_time).valid
