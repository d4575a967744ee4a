"""What the SSP changes in the headers it forwards, and nothing more.

"Request and response HTTP headers SHALL NOT be modified" [SSPIG-07]; a proxy still
drops the hop-by-hop fields (RFC 9110 §7.6.1), sends the next hop's ``Host`` and the
framing of the body it forwards, and discloses itself in ``Forwarded`` (RFC 7239) as the
SSP implementation guide asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from spinepki.ssp._route import Route

__all__ = ["forwarded_element", "request_headers", "response_headers"]

#: Request headers never forwarded: hop-by-hop (RFC 9110 §7.6.1), the framing the SSP
#: re-computes for the body it buffered, and Host (the provider's authority is sent).
_DROP_REQUEST = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"expect",
    }
)
#: Response headers not passed back: hop-by-hop, and Date (the SSP's server adds its own;
#: two Date fields would make the response invalid).
_DROP_RESPONSE = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"date",
    }
)
_TOKEN_CHARS = frozenset(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


def forwarded_element(client: Any, host: bytes | None) -> bytes:
    """This hop's RFC 7239 ``Forwarded`` element: ``for``, ``host`` and ``proto``."""
    parts = []
    if isinstance(client, tuple | list) and client and isinstance(client[0], str):
        address = client[0]
        parts.append(b"for=" + _quoted(f"[{address}]" if ":" in address else address))
    if host:
        parts.append(b"host=" + _quoted(host.decode("latin-1")))
    parts.append(b"proto=https")
    return b";".join(parts)


def _quoted(value: str) -> bytes:
    raw = value.encode("latin-1", "replace")
    if raw and all(c in _TOKEN_CHARS for c in raw):
        return raw
    # RFC 7239 §4: a value that is not a token is a quoted-string (RFC 7230 §3.2.6).
    escaped = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + escaped + b'"'


def request_headers(
    headers: Iterable[tuple[bytes, bytes]], route: Route, body: bytes, method: str, forwarded: bytes
) -> list[tuple[bytes, bytes]]:
    """The consumer's headers as the provider gets them: unmodified, in order, except the
    hop-by-hop ones and those named by ``Connection``, a new ``Host`` and body framing,
    and this hop's ``Forwarded`` element appended."""
    headers = list(headers)
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(t.strip().lower() for t in value.split(b","))
    out: list[tuple[bytes, bytes]] = [(b"host", route.host)]
    out += [(n, v) for n, v in headers if (k := n.lower()) not in _DROP_REQUEST and k not in named]
    if body or method in ("POST", "PUT", "PATCH"):
        out.append((b"content-length", str(len(body)).encode("ascii")))
    out.append((b"forwarded", forwarded))
    return out


def response_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The provider's response headers as the consumer gets them (hop-by-hop and Date
    removed; the SSP's server adds its own Date)."""
    headers = list(headers)
    named: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":  # h11 gives lower-case names
            named.update(t.strip().lower() for t in value.split(b","))
    return [(n, v) for n, v in headers if n not in _DROP_RESPONSE and n not in named]
