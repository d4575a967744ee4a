"""Where a consumer's request may go: the checks SDS feeds, as one pure function.

:func:`route` takes what arrived (method, raw target, query, headers) and the FQDN of the
consumer's validated certificate, and returns either a :class:`Route` to forward or the
:class:`~spinepki.ssp.SSPRefusal` the SSP answers. It reads nothing else and changes
nothing, so every branch is tested without a socket. The order of the checks:

1. the method is one the SSP forwards (405);
2. ``Ssp-TraceID``, ``Ssp-From``, ``Ssp-To``, ``Ssp-InteractionID`` present once each and
   identifier-shaped (400);
3. the sender: ``Ssp-From`` registered, its endpoint FQDN the certificate's, and allowed
   to send the interaction (403 ``ASID_CHECK_FAILED_MESSAGESENDER_<from>``);
4. the receiver: ``Ssp-To`` registered and receiving the interaction (403
   ``PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_<to>``);
5. the pair: a data sharing agreement from sender to receiver (403
   ``FOT_CHECK_FAILED_MESSAGESENDER_<from>_MESSAGERECEIVER_<to>``);
6. the URL: ``/<service root>/<FHIR request>`` with the service root exactly as
   registered for the receiver and the interaction's kind, and after it no dot segment,
   empty segment or encoded slash (400
   ``ENDPOINT_<root>_CPAID_<id>_VARIES_FROM_TARGETURL_<url>``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from spinepki.gate import Interaction
from spinepki.ssp._config import ASID, ConsumerSystem, Directory, ProviderSystem
from spinepki.ssp._outcome import SSPError, SSPRefusal, echo

__all__ = ["SSP_HEADERS", "Route", "route"]

#: The SSP headers, by their lower-case wire name, in the spelling the guidance uses.
SSP_HEADERS = {
    b"ssp-traceid": "Ssp-TraceID",
    b"ssp-from": "Ssp-From",
    b"ssp-to": "Ssp-To",
    b"ssp-interactionid": "Ssp-InteractionID",
}
# A trace ID is a GUID in every example, but no format is published: printable ASCII
# without spaces, bounded. Interaction IDs are URNs (looked up exactly afterwards).
_TOKEN = re.compile(r"[\x21-\x7e]{1,256}")
_SHAPES = {b"ssp-from": ASID, b"ssp-to": ASID}
# After the service root: "." and ".." segments (however they are percent-encoded), empty
# segments, and slashes or backslashes in disguise (%2F, "\\", %5C, which some servers read
# as "/"). With any of them the URL may name something other than the registered root,
# so it "varies from" it; FHIR requests need none of them. ("?" and "#" never reach here
# from a server, which splits the query off; given in a raw path they are refused too.)
_ESCAPE = re.compile(r"(?:^|/)(?:\.|%2e){1,2}(?:/|$)|//|\\|%5c|%2f|[?#]", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Route:
    """A request the directory allows, and where it goes."""

    consumer: ConsumerSystem
    """The sending system."""
    provider: ProviderSystem
    """The receiving system."""
    interaction: Interaction
    """The interaction (catalogue row) named by ``Ssp-InteractionID``."""
    trace_id: str
    """``Ssp-TraceID``."""
    target: bytes
    """The request target sent to the provider: the service root's path, the FHIR
    request, and the query exactly as received."""
    host: bytes
    """The ``Host`` the provider is sent (the service root's authority)."""
    url: str
    """Service root plus FHIR path, without the query (for 502/504 displays)."""


@dataclass(frozen=True, slots=True)
class _Headers:
    trace_id: str | None = None
    from_asid: str | None = None
    to_asid: str | None = None
    interaction_id: str | None = None


def ssp_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[_Headers, str | None]:
    """The four SSP headers, and the name of the first missing or unusable one."""
    seen: dict[bytes, bytes] = {}
    bad: str | None = None
    for name, value in headers:
        key = name.lower()
        if key in SSP_HEADERS:
            if key in seen:
                bad = bad or SSP_HEADERS[key]  # a repeated header is ambiguous
            seen[key] = value
    values: list[str | None] = []
    for key, spelled in SSP_HEADERS.items():
        raw = seen.get(key)
        text = raw.decode("latin-1") if raw is not None else None
        if text is None or not _SHAPES.get(key, _TOKEN).fullmatch(text):
            bad = bad or spelled
            text = None
        values.append(text)
    return _Headers(*values), bad


def route(
    directory: Directory,
    methods: frozenset[str],
    method: str,
    raw_path: bytes,
    query: bytes,
    headers: Iterable[tuple[bytes, bytes]],
    certificate_fqdn: str,
) -> Route | SSPRefusal:
    """Decide where a request goes, or how the SSP refuses it (the module's check order).

    Args:
        directory: the systems and their permissions.
        methods: the HTTP methods forwarded.
        method: the request's method.
        raw_path: the request target's path, as received (``/https://host/root/...``).
        query: the query string, as received (without ``?``).
        headers: the request headers.
        certificate_fqdn: the FQDN of the consumer's validated client certificate.
    """
    if method not in methods:
        return SSPRefusal(SSPError.METHOD_NOT_ALLOWED, SSPError.METHOD_NOT_ALLOWED.value)
    found, bad = ssp_headers(headers)
    if bad is not None:
        return SSPRefusal(SSPError.MISSING_HEADER, f"{SSPError.MISSING_HEADER.value}_{bad}")
    # After ssp_headers every value is present and shaped (bad would be set otherwise).
    trace_id, sender, receiver, iid = (
        str(found.trace_id),
        str(found.from_asid),
        str(found.to_asid),
        str(found.interaction_id),
    )
    consumer = directory.consumer(sender)
    interaction = directory.catalogue.get(iid)
    if (
        consumer is None
        or interaction is None
        or consumer.fqdn != certificate_fqdn.lower().rstrip(".")
        or iid not in consumer.interactions
    ):
        if consumer is None:
            detail = "Ssp-From is not a registered consumer"
        elif interaction is None:
            detail = "unknown interaction"
        elif iid not in consumer.interactions:
            detail = "the sender may not send this interaction"
        else:
            detail = "the certificate is not the one registered for Ssp-From"
        error = SSPError.SENDER_NOT_AUTHORISED
        return SSPRefusal(error, f"{error.value}_{sender}", detail)
    provider = directory.provider(receiver)
    if provider is None or iid not in provider.interactions:
        error = SSPError.RECEIVER_NOT_AUTHORISED
        detail = (
            "Ssp-To is not a registered provider"
            if provider is None
            else "the receiver does not receive this interaction"
        )
        return SSPRefusal(error, f"{error.value}_{receiver}", detail)
    if receiver not in consumer.send_to:
        error = SSPError.NO_AGREEMENT
        return SSPRefusal(
            error,
            f"{error.value}_MESSAGESENDER_{sender}_MESSAGERECEIVER_{receiver}",
            "no data sharing agreement from sender to receiver",
        )
    roots = provider.service_roots[interaction.root]
    target_url = raw_path.decode("latin-1")[1:] if raw_path.startswith(b"/") else ""
    for root in roots:
        if target_url == root or target_url.startswith(f"{root}/"):
            rest = target_url[len(root) :]
            if _ESCAPE.search(rest):
                break
            parts = urlsplit(root)
            target = (parts.path + rest).encode("latin-1")
            if query:
                target += b"?" + query
            return Route(
                consumer=consumer,
                provider=provider,
                interaction=interaction,
                trace_id=trace_id,
                target=target,
                host=parts.netloc.encode("ascii"),
                url=root + rest,
            )
    error = SSPError.ENDPOINT_VARIES
    return SSPRefusal(
        error,
        f"ENDPOINT_{roots[0]}_CPAID_{provider.cpa_id}_VARIES_FROM_TARGETURL_{echo(target_url)}",
        "the target URL is not the service root registered for this interaction",
    )
