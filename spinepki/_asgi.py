"""ASGI plumbing the gate's middleware, the reference provider and the SSP simulator share.

The ASGI type names, reading a request body within a limit, and forcing
``Cache-Control: no-store`` onto a response. Private and neutral, at the bottom of the
layers (docs/architecture.md): the provider and the SSP simulator sit beside the gate's
users, not inside the gate, so they may not import the gate's private modules.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

__all__ = [
    "ASGIApp",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "Unread",
    "force_no_store",
    "read_body",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_NO_STORE = b"no-store"
_CACHE_CONTROL = b"cache-control"
_NO_STORE_HEADER = (_CACHE_CONTROL, _NO_STORE)


class Unread(enum.Enum):
    """Why :func:`read_body` has no body to give."""

    TOO_LARGE = "too large"
    INCOMPLETE = "incomplete"  # the client went away (or was cut) before the body ended


def force_no_store(headers: Iterable[tuple[bytes, bytes]] | Any) -> list[tuple[bytes, bytes]]:
    """Return ``headers`` with exactly one Cache-Control that contains ``no-store``.

    A value that already says ``no-store`` (``no-store, private``) is kept; anything
    weaker (``max-age=60``, ``no-cache``) is replaced [SEC][PT-160]. Always a new list:
    the app's own header list may be reused by it (a module-level response).
    """
    out = list(headers)
    for name, _ in out:
        if name.lower() == _CACHE_CONTROL:
            break
    else:  # the common case: the app set no Cache-Control at all
        out.append(_NO_STORE_HEADER)
        return out
    kept = False
    rewritten: list[tuple[bytes, bytes]] = []
    for name, value in out:
        if name.lower() == _CACHE_CONTROL:
            if not kept and _NO_STORE in value.lower():
                rewritten.append((name, value))
                kept = True
            continue
        rewritten.append((name, value))
    if not kept:
        rewritten.append(_NO_STORE_HEADER)
    return rewritten


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | Unread:
    """The request's whole body, or why there is none.

    A declared ``Content-Length`` over ``limit`` is refused before a byte is read
    (``Unread.TOO_LARGE``); an undeclared body is read until it passes the limit, and no
    further; a client that goes away before the body ends gives ``Unread.INCOMPLETE``.
    """
    for name, value in scope["headers"]:
        if name.lower() == b"content-length" and (
            not value.isdigit() or len(value) > 15 or int(value) > limit
        ):
            return Unread.TOO_LARGE
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            return Unread.INCOMPLETE
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return Unread.TOO_LARGE
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
