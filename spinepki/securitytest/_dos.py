"""The denial-of-service probes, each bounded in connections and in time.

* **slow headers**: one TLS connection trickles a request head a byte at a time (one
  byte per ``trickle_interval``) and never finishes it. Passes when the server cuts the
  connection (or answers, e.g. 408) before ``max_seconds``; fails when the connection is
  still open at ``max_seconds``.
* **idle connections**: opens ``max_connections`` connections (about half with a
  completed TLS handshake, the rest bare TCP), sends nothing on them, and checks that a
  valid request on a fresh connection is answered 2xx within ``response_seconds``.
  Everything is closed after at most ``max_seconds``. All of them come from this one
  client address, so the same hold also shows whether the server limits what **one
  source** may hold (issue 11: one address filled a 512-connection cap): connections the
  server closes at once are counted, a few held ones are released so the valid request
  fits under such a limit, and the verdict says how many one source could hold.
* **slow body**: a request the server can refuse without its body (here: a token that is
  not a JWT; optionally a refused certificate) is sent with ``Content-Length`` and no
  body. A server that decides before reading answers at once; one that reads first holds
  the connection as long as the client likes.

Between bytes the slow probe waits on the socket (``select``) for the server's reaction,
so a cut is seen as soon as it happens.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
from dataclasses import dataclass

from spinepki.securitytest._http import Client, Response, parse_response
from spinepki.securitytest._report import ProbeLimits

__all__ = ["Hold", "hold_connections", "idle_connections", "slow_body", "slow_headers"]

#: Longest a single handshake of a held connection may take.
HOLD_HANDSHAKE_TIMEOUT = 1.0
#: Held connections released to make room under a server's per-source limit.
RELEASED = 2
#: Pause for the server's closes to reach us (and ours to reach it).
SETTLE = 0.2


def slow_headers(client: Client, request: bytes, limits: ProbeLimits) -> tuple[bool | None, str]:
    """Trickle ``request`` (minus its final CRLF) and see whether the server cuts it."""
    head = request.removesuffix(b"\r\n")
    started = time.monotonic()
    cap = started + limits.max_seconds
    try:
        tls = client.connect()
    except OSError as exc:
        return None, f"could not open the connection: {exc}"
    sent = 0
    with tls:
        while True:
            now = time.monotonic()
            if now >= cap:
                return False, (
                    f"the connection was still open after {limits.max_seconds:g} s "
                    f"({sent} bytes trickled): the server waits longer than the cap for a "
                    "request head"
                )
            if sent < len(head):
                try:
                    tls.send(head[sent : sent + 1])
                except OSError:
                    return True, _cut(started, sent, "refused the next byte")
                sent += 1
            wait = max(0.0, min(limits.trickle_interval, cap - time.monotonic()))
            readable, _, _ = select.select([tls], [], [], wait)
            if not readable:
                continue
            tls.settimeout(wait or 0.01)
            try:
                data = tls.recv(4096)
            except TimeoutError:
                continue  # e.g. a TLS 1.3 session ticket: not a reaction
            except OSError:
                return True, _cut(started, sent, "reset the connection")
            if not data:
                return True, _cut(started, sent, "closed the connection")
            answer = parse_response(data, eof=True)
            line = answer.status_line if answer is not None and answer.answered else "bytes"
            return True, _cut(started, sent, f"answered ({line})")


def _cut(started: float, sent: int, how: str) -> str:
    return f"the server {how} after {time.monotonic() - started:.1f} s ({sent} bytes trickled)"


@dataclass(frozen=True, slots=True)
class Hold:
    """What the idle-connection probe saw (its own verdict and the one-source one)."""

    verdict: tuple[bool | None, str]
    """The idle-connection verdict."""
    source: tuple[bool | None, str]
    """The one-source verdict."""
    response: Response | None
    """The valid request's response, when one was sent."""


def idle_connections(
    client: Client, request: bytes, limits: ProbeLimits
) -> tuple[bool | None, str, Response | None]:
    """Hold idle connections and time a valid request; (passed, detail, its response)."""
    hold = hold_connections(client, request, limits)
    return (*hold.verdict, hold.response)


def hold_connections(
    client: Client, request: bytes, limits: ProbeLimits, other: Client | None = None
) -> Hold:
    """Hold up to ``max_connections`` idle connections from this address, then time a
    valid request; judge both the idle hold and whether one source can lock others out
    (a valid request from ``other``, a second local address, while everything is held)."""
    started = time.monotonic()
    cap = started + limits.max_seconds
    held: list[socket.socket] = []
    handshaken = refused = 0
    handshaking = True
    response: Response | None = None
    try:
        for _ in range(limits.max_connections):
            remaining = cap - time.monotonic()
            if remaining <= limits.response_seconds:
                break  # keep time for the request itself
            try:
                sock = client.tcp(timeout=min(client.timeout, remaining))
            except OSError:
                refused += 1
                continue
            if handshaking and len(held) % 2 == 0:
                sock.settimeout(min(HOLD_HANDSHAKE_TIMEOUT, remaining))
                try:
                    sock = client.context.wrap_socket(sock, server_hostname=client.server_name)
                    handshaken += 1
                except OSError:
                    # The server is not handshaking (busy, or over a limit): hold the rest
                    # as bare TCP rather than wait on each.
                    handshaking = False
                    with contextlib.suppress(OSError):
                        sock.close()
                    refused += 1
                    continue
            held.append(sock)
        opened = len(held)
        if not held:
            verdict = (None, f"could not open any of {limits.max_connections} connections")
            return Hold(verdict, (None, verdict[1]), None)
        closed = _closed_by_server(held)
        kept = [s for s in held if s not in closed]
        for sock in closed:
            with contextlib.suppress(OSError):
                sock.close()
        elsewhere = None
        if other is not None:
            # Everything this address could get is held: is someone else still served?
            budget = max(0.01, min(limits.response_seconds, cap - time.monotonic()))
            elsewhere = other.exchange(request, timeout=budget)
        if closed:  # the server closed some at once: a limit (a busy server does not)
            # A per-source limit: make room under it for the valid request (from the same
            # address), as the limit's owner intends; the rest stay held.
            release = kept[len(kept) - min(RELEASED, len(kept)) :]
            for sock in release:
                with contextlib.suppress(OSError):
                    sock.close()
            kept = kept[: len(kept) - len(release)]
            time.sleep(SETTLE)  # the server must see the close before the next connect
        budget = max(0.01, min(limits.response_seconds, cap - time.monotonic()))
        response = client.exchange(request, timeout=budget)
        held = kept
    finally:
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()
    what = (
        f"{len(kept)} idle connections held ({handshaken} after a TLS handshake"
        + (f", {refused} refused" if refused else "")
        + (f", {len(closed)} closed at once by the server" if closed else "")
        + ")"
    )
    return Hold(
        _served(what, response, budget),
        _one_source(opened + refused, len(closed) + refused, elsewhere, other),
        response,
    )


def _served(what: str, response: Response, budget: float) -> tuple[bool | None, str]:
    if response.answered and response.status is not None and 200 <= response.status < 300:
        return (
            True,
            f"{what}; a valid request was answered {response.status} in {response.elapsed:.2f} s",
        )
    if response.answered:
        why = f"answered {response.status}"
    elif response.outcome == "timeout" or "timed out" in (response.error or ""):
        why = f"not answered within {budget:.2f} s"
    else:
        why = f"not answered ({response.error})"
    return False, f"{what}; a valid request was {why}"


def _one_source(
    opened: int, closed: int, elsewhere: Response | None, other: Client | None
) -> tuple[bool | None, str]:
    held = f"this address held {opened - closed} connections" + (
        f" (the server closed {closed} more at once)" if closed else ""
    )
    if other is None or elsewhere is None:
        # From one address a per-source limit and a full server look alike.
        return None, (
            f"{held}; give a second local address (--second-source) to check that "
            "another client is still served meanwhile"
        )
    if elsewhere.answered and elsewhere.status is not None and 200 <= elsewhere.status < 300:
        return True, f"{held}; a valid request from {other.source} was answered meanwhile"
    why = f"answered {elsewhere.status}" if elsewhere.answered else (elsewhere.error or "no answer")
    return False, f"{held}; a valid request from {other.source} was not served ({why})"


def _closed_by_server(socks: list[socket.socket]) -> list[socket.socket]:
    """The held connections the server has closed (readable at EOF or reset)."""
    time.sleep(SETTLE)  # a server closing at accept does so within milliseconds
    closed: list[socket.socket] = []
    for start in range(0, len(socks), 256):  # select() is fine with a bounded batch
        batch = socks[start : start + 256]
        try:
            readable, _, _ = select.select(batch, [], [], 0)
        except (OSError, ValueError):
            continue
        for sock in readable:
            try:
                # The socket's own recv, below TLS for a TLS socket: EOF is the server's
                # close (a TLS close_notify shows as data first, and is not counted).
                data = socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError:
                closed.append(sock)
                continue
            if not data:
                closed.append(sock)
    return closed


def slow_body(
    client: Client, request_head: bytes, *, timeout: float, context: ssl.SSLContext | None = None
) -> tuple[bool | None, str, Response | None]:
    """Send a head declaring a body that never comes, for a request the server can refuse
    without it; passes when the refusal comes without waiting for the body."""
    sender = client if context is None else client.with_context(context)
    response = sender.exchange(request_head, timeout=timeout)
    if response.answered and response.status is not None:
        if response.status < 300:
            return False, f"served {response.status} without its body", response
        return (
            True,
            f"refused ({response.status}) in {response.elapsed:.2f} s, body unsent",
            response,
        )
    if response.outcome == "closed":
        return True, "the connection was closed without waiting for the body", response
    if response.outcome == "timeout":
        return (
            False,
            (
                f"no answer within {timeout:g} s: the server waits for the body of a request "
                "it will refuse, so a refused client holds the connection as long as it likes"
            ),
            response,
        )
    return None, response.error or response.outcome, response
