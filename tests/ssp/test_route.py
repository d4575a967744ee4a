"""The directory's checks as a pure function: every branch, the order, and generators
for the two classes of input a consumer controls (headers and the target URL)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spinepki.gate import RootKind
from spinepki.ssp import Directory, Route, SSPError, SSPRefusal, route
from spinepki.ssp._config import DEFAULT_METHODS
from tests.ssp._helpers import (
    CONSUMER,
    DOCUMENTS,
    OTHER_CONSUMER,
    PROVIDER,
    READ_METADATA,
    STRUCTURED,
    consumer_entry,
    provider_entry,
    root_of,
)

FQDN = "consumer.spinepki.test.nhs.uk"
OTHER = "918999198799"
ROOT = root_of("A12345")
DIRECTORY = Directory(
    (
        consumer_entry(CONSUMER, FQDN, {PROVIDER}),
        consumer_entry(OTHER_CONSUMER, "b.example.nhs.uk", {PROVIDER, OTHER}, ("documents",)),
    ),
    (
        provider_entry(PROVIDER, "A12345", ("127.0.0.1", 1)),
        provider_entry(OTHER, "B12345", ("127.0.0.1", 2), structured=True),
    ),
)


def headers(**over: str | None) -> list[tuple[bytes, bytes]]:
    values: dict[str, str | None] = {
        "ssp-traceid": "5f2b9c1e-0000-4000-8000-000000000001",
        "ssp-from": CONSUMER,
        "ssp-to": PROVIDER,
        "ssp-interactionid": READ_METADATA,
    }
    values.update({k.lower().replace("_", "-"): v for k, v in over.items()})
    return [(k.encode(), v.encode("latin-1")) for k, v in values.items() if v is not None]


def decide(
    path: str = f"/{ROOT}/metadata",
    *,
    method: str = "GET",
    query: bytes = b"",
    fqdn: str = FQDN,
    **over: str | None,
) -> Route | SSPRefusal:
    return route(DIRECTORY, DEFAULT_METHODS, method, path.encode(), query, headers(**over), fqdn)


def refused(result: Route | SSPRefusal) -> SSPRefusal:
    assert isinstance(result, SSPRefusal), result
    return result


class TestRoute:
    def test_allowed_request_routes_to_the_provider(self) -> None:
        """Path below the root, query verbatim, Host the root's authority, URL for errors."""
        result = decide(f"/{ROOT}/Patient", query=b"identifier=a%7Cb&x=1")
        assert isinstance(result, Route)
        assert result.target == b"/A12345/STU3/1/gpconnect/Patient?identifier=a%7Cb&x=1"
        assert result.host == b"provider.spinepki.test.nhs.uk"
        assert result.url == f"{ROOT}/Patient"
        assert (result.consumer.asid, result.provider.asid) == (CONSUMER, PROVIDER)
        assert result.interaction.interaction_id == READ_METADATA

    def test_header_names_are_case_insensitive(self) -> None:
        """``SSP-FROM`` and ``ssp-from`` are the same header (RFC 7230 §3.2)."""
        pairs = [(k.upper(), v) for k, v in headers()]
        result = route(
            DIRECTORY, DEFAULT_METHODS, "GET", f"/{ROOT}/metadata".encode(), b"", pairs, FQDN
        )
        assert isinstance(result, Route)

    def test_certificate_name_compared_case_insensitively(self) -> None:
        """A certificate CN in capitals with a trailing dot is the same FQDN."""
        assert isinstance(decide(fqdn=FQDN.upper() + "."), Route)

    def test_service_root_alone(self) -> None:
        """The service root itself (no FHIR request) is forwarded as the root's path."""
        result = decide(f"/{ROOT}")
        assert isinstance(result, Route)
        assert result.target == b"/A12345/STU3/1/gpconnect"


class TestRefusals:
    def test_method(self) -> None:
        assert refused(decide(method="DELETE")).error is SSPError.METHOD_NOT_ALLOWED

    @pytest.mark.parametrize("name", ["Ssp-TraceID", "Ssp-From", "Ssp-To", "Ssp-InteractionID"])
    def test_missing_header(self, name: str) -> None:
        result = refused(decide(**{name: None}))
        assert (result.error, result.display) == (
            SSPError.MISSING_HEADER,
            f"MISSING_OR_INVALID_HEADER_{name}",
        )

    def test_repeated_header_is_ambiguous(self) -> None:
        pairs = [*headers(), (b"ssp-from", CONSUMER.encode())]
        result = route(
            DIRECTORY, DEFAULT_METHODS, "GET", f"/{ROOT}/metadata".encode(), b"", pairs, FQDN
        )
        assert refused(result).display == "MISSING_OR_INVALID_HEADER_Ssp-From"

    @pytest.mark.parametrize(
        ("over", "fqdn", "detail"),
        [
            ({"ssp_from": "1"}, FQDN, "not a registered consumer"),
            ({}, "b.example.nhs.uk", "not the one registered"),
            ({"ssp_interactionid": DOCUMENTS}, FQDN, "may not send"),
            ({"ssp_interactionid": "urn:unknown"}, FQDN, "unknown interaction"),
        ],
    )
    def test_sender(self, over: dict[str, str], fqdn: str, detail: str) -> None:
        result = refused(decide(fqdn=fqdn, **over))
        sender = over.get("ssp_from", CONSUMER)
        assert result.display == f"ASID_CHECK_FAILED_MESSAGESENDER_{sender}"
        assert result.status == 403
        assert detail in result.detail

    def test_receiver_unknown(self) -> None:
        result = refused(decide(ssp_to="2"))
        assert result.display == "PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_2"

    def test_receiver_without_the_interaction(self) -> None:
        result = refused(decide(ssp_interactionid=STRUCTURED))
        assert result.display == f"PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_{PROVIDER}"

    def test_pair_without_agreement(self) -> None:
        result = refused(decide(f"/{root_of('B12345')}/metadata", ssp_to=OTHER))
        assert result.display == (
            f"FOT_CHECK_FAILED_MESSAGESENDER_{CONSUMER}_MESSAGERECEIVER_{OTHER}"
        )

    def test_order_sender_before_receiver_before_pair_before_url(self) -> None:
        """With everything wrong, the sender check answers; then the receiver's, etc."""
        everything = refused(decide("/nowhere", ssp_from="1", ssp_to="2"))
        assert everything.error is SSPError.SENDER_NOT_AUTHORISED
        receiver = refused(decide("/nowhere", ssp_to="2"))
        assert receiver.error is SSPError.RECEIVER_NOT_AUTHORISED
        pair = refused(decide("/nowhere", ssp_to=OTHER))
        assert pair.error is SSPError.NO_AGREEMENT

    def test_endpoint_display_echoes_a_bounded_url(self) -> None:
        """The URL in the display is printable ASCII and at most 512 characters."""
        result = refused(decide("/" + "https://x/\x01é" + "a" * 5000))
        assert result.error is SSPError.ENDPOINT_VARIES
        echoed = result.display.split("_VARIES_FROM_TARGETURL_", 1)[1]
        assert len(echoed) <= 515
        assert echoed.isascii()
        assert echoed.isprintable()


# -- generators ----------------------------------------------------------------------

_URL_PIECES = st.sampled_from(
    ["/", ".", "..", "%2e", "%2E", "%2f", "\\", "%5c", ":443", ":", "@", "?", "#", "A12345", "a"]
)


@given(st.lists(_URL_PIECES, max_size=8), st.text(max_size=20))
def test_url_outside_the_registered_root_never_routes(pieces: list[str], noise: str) -> None:
    """However a URL is built, it routes only when it starts with the registered root
    plus "/" (or is the root), and what follows holds no dot segment or backslash: the
    target sent to the provider always stays below the root's path."""
    url = "".join(pieces) + noise
    for candidate in (url, ROOT + url, ROOT + "/" + url):
        result = decide("/" + candidate)
        if isinstance(result, Route):
            assert candidate == ROOT or candidate.startswith(ROOT + "/")
            path = result.target.decode()
            assert (
                path.startswith("/A12345/STU3/1/gpconnect/") or path == "/A12345/STU3/1/gpconnect"
            )
            segments = unquote(urlsplit("https://h" + path).path).rstrip("/").split("/")[1:]
            assert not {"", ".", ".."} & set(segments)
            assert "\\" not in unquote(path)
        else:
            assert result.error is SSPError.ENDPOINT_VARIES


@given(
    st.sampled_from(
        [
            ROOT,
            ROOT.replace("https://", "http://"),
            ROOT.replace(".nhs.uk", ".nhs.uk:443"),
            ROOT.replace(".nhs.uk", ".nhs.uk."),
            ROOT.replace("provider.", "PROVIDER."),
            ROOT.replace("A12345", "a12345"),
            ROOT.replace("provider.spinepki.test.nhs.uk", "127.0.0.1"),
            ROOT.replace("https://", "https://user@"),
            ROOT + "/",
            ROOT + "%2F",
            ROOT[:-1],
        ]
    )
)
def test_only_the_exact_root_routes(root: str) -> None:
    """Any variation of the service root (scheme, port, case, trailing dot, IP, user,
    a trailing or encoded slash) is 400."""
    result = decide(f"/{root}/metadata")
    if root == ROOT:
        assert isinstance(result, Route)
    else:
        assert refused(result).error is SSPError.ENDPOINT_VARIES


_HEADER_NAMES = st.sampled_from(
    [b"ssp-traceid", b"ssp-from", b"ssp-to", b"ssp-interactionid", b"x-other", b"SSP-FROM"]
)


@given(
    st.lists(st.tuples(_HEADER_NAMES, st.binary(max_size=80)), max_size=10),
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]),
    st.binary(max_size=200),
)
def test_any_headers_give_a_route_or_a_client_error(
    pairs: list[tuple[bytes, bytes]], method: str, path: bytes
) -> None:
    """Arbitrary header bytes, methods and paths never raise and never give a server
    error: the answer is a route, or a 400/403/405 with an ASCII display."""
    result = route(DIRECTORY, DEFAULT_METHODS, method, b"/" + path, b"", pairs, FQDN)
    if isinstance(result, SSPRefusal):
        assert result.status in (400, 403, 405)
        assert result.display.isascii()
        result.response()  # renders
    else:
        assert result.provider.service_roots[RootKind.FOUNDATIONS]
