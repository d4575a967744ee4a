"""What the simulator changes in the messages it forwards, and its own answers' shape."""

from __future__ import annotations

import json

import pytest

from spinepki.ssp import SSP_CODING_SYSTEM, Route, SSPError, SSPRefusal, route
from spinepki.ssp._config import DEFAULT_METHODS
from spinepki.ssp._headers import forwarded_element, request_headers, response_headers
from tests.ssp.test_route import DIRECTORY, FQDN, ROOT, headers


def _route() -> Route:
    result = route(
        DIRECTORY, DEFAULT_METHODS, "GET", f"/{ROOT}/metadata".encode(), b"", headers(), FQDN
    )
    assert isinstance(result, Route)
    return result


class TestForwarded:
    @pytest.mark.parametrize(
        ("client", "host", "expected"),
        [
            (("127.0.0.1", 5000), b"ssp.nhs.uk", b"for=127.0.0.1;host=ssp.nhs.uk;proto=https"),
            (("::1", 5000), b"ssp.nhs.uk:443", b'for="[::1]";host="ssp.nhs.uk:443";proto=https'),
            (None, None, b"proto=https"),
            (("10.0.0.1", 1), b'a"b\\c', b'for=10.0.0.1;host="a\\"b\\\\c";proto=https'),
        ],
    )
    def test_element(self, client: object, host: bytes | None, expected: bytes) -> None:
        """RFC 7239 §4: tokens as they are, anything else a quoted-string (escaped)."""
        assert forwarded_element(client, host) == expected


def test_request_headers_keep_everything_end_to_end() -> None:
    """Consumer headers in order and unmodified; hop-by-hop ones (and those Connection
    names) dropped; Host the provider's; Content-Length of the body; Forwarded last."""
    sent = [
        (b"host", b"ssp"),
        (b"Ssp-TraceID", b"t"),
        (b"connection", b"keep-alive, X-Hop"),
        (b"x-hop", b"secret"),
        (b"keep-alive", b"timeout=5"),
        (b"transfer-encoding", b"chunked"),
        (b"content-length", b"999"),
        (b"expect", b"100-continue"),
        (b"te", b"trailers"),
        (b"upgrade", b"h2c"),
        (b"proxy-authorization", b"Basic x"),
        (b"Forwarded", b"for=1.2.3.4"),
        (b"accept", b"application/fhir+json"),
    ]
    out = request_headers(sent, _route(), b"{}", "POST", b"for=127.0.0.1")
    assert out == [
        (b"host", b"provider.spinepki.test.nhs.uk"),
        (b"Ssp-TraceID", b"t"),
        (b"Forwarded", b"for=1.2.3.4"),
        (b"accept", b"application/fhir+json"),
        (b"content-length", b"2"),
        (b"forwarded", b"for=127.0.0.1"),
    ]


def test_get_without_body_has_no_content_length() -> None:
    out = request_headers([], _route(), b"", "GET", b"proto=https")
    assert [name for name, _ in out] == [b"host", b"forwarded"]


def test_response_headers_drop_hop_by_hop_and_date() -> None:
    """The SSP's own server writes Date and the framing; the rest passes unmodified."""
    got = response_headers(
        [
            (b"content-type", b"application/fhir+json"),
            (b"date", b"Mon, 01 Jan 2024 00:00:00 GMT"),
            (b"connection", b"close, x-private"),
            (b"x-private", b"1"),
            (b"transfer-encoding", b"chunked"),
            (b"content-length", b"10"),
            (b"cache-control", b"no-store"),
        ]
    )
    assert got == [
        (b"content-type", b"application/fhir+json"),
        (b"content-length", b"10"),
        (b"cache-control", b"no-store"),
    ]


@pytest.mark.parametrize("error", list(SSPError))
def test_refusal_has_the_guidance_shape(error: SSPError) -> None:
    """id, one issue (severity error, the issue type), one coding in the schedule-response
    system whose code is the HTTP status, display repeated as diagnostics, no-store."""
    head, body = SSPRefusal(error, f"{error.value}_X").response()
    outcome = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome"
    assert len(outcome["id"]) == 36
    assert "meta" not in outcome
    (issue,) = outcome["issue"]
    assert (issue["severity"], issue["code"]) == ("error", error.issue_type)
    assert issue["details"]["coding"] == [
        {"system": SSP_CODING_SYSTEM, "code": str(error.status), "display": f"{error.value}_X"}
    ]
    assert issue["diagnostics"] == f"{error.value}_X"
    assert dict(head)[b"cache-control"] == b"no-store"
    assert dict(head)[b"content-length"] == str(len(body)).encode()
    assert error.status in (400, 403, 405, 413, 495, 496, 502, 504)


def test_docs_name_every_code() -> None:
    """docs/ssp.md lists every SSPError code with its status."""
    from pathlib import Path

    page = (Path(__file__).parents[2] / "docs" / "ssp.md").read_text(encoding="utf-8")
    for error in SSPError:
        assert f"| `{error.value}` | {error.status} | {error.issue_type} |" in page, error
