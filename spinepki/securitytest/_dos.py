"""The two denial-of-service probes, each bounded in connections and in time.

* **slow headers**: one TLS connection trickles a request head a byte at a time (one
  byte per ``trickle_interval``) and never finishes it. Passes when the server cuts the
  connection (or answers, e.g. 408) before ``max_seconds``; fails when the connection is
  still open at ``max_seconds``.
* **idle connections**: opens ``max_connections`` connections (about half with a
  completed TLS handshake, the rest bare TCP), sends nothing on them, and checks that a
  valid request on a fresh connection is answered 2xx within ``response_seconds``.
  Everything is closed after at most ``max_seconds``.

Between bytes the slow probe waits on the socket (``select``) for the server's reaction,
so a cut is seen as soon as it happens.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time

from spinepki.securitytest._http import Client, Response, parse_response
from spinepki.securitytest._report import ProbeLimits

__all__ = ["idle_connections", "slow_headers"]

#: Longest a single handshake of a held connection may take.
HOLD_HANDSHAKE_TIMEOUT = 1.0


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


def idle_connections(
    client: Client, request: bytes, limits: ProbeLimits
) -> tuple[bool | None, str, Response | None]:
    """Hold idle connections and time a valid request; (passed, detail, its response)."""
    started = time.monotonic()
    cap = started + limits.max_seconds
    held: list[socket.socket] = []
    handshaken = refused = 0
    handshaking = True
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
                    # The server is not handshaking (busy, or over its cap): hold the rest
                    # as bare TCP rather than wait on each.
                    handshaking = False
                    with contextlib.suppress(OSError):
                        sock.close()
                    refused += 1
                    continue
            held.append(sock)
        if not held:
            return None, f"could not open any of {limits.max_connections} connections", None
        budget = max(0.01, min(limits.response_seconds, cap - time.monotonic()))
        response = client.exchange(request, timeout=budget)
    finally:
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()
    what = (
        f"{len(held)} idle connections held ({handshaken} after a TLS handshake"
        + (f", {refused} refused" if refused else "")
        + ")"
    )
    if response.answered and response.status is not None and 200 <= response.status < 300:
        return (
            True,
            f"{what}; a valid request was answered {response.status} in {response.elapsed:.2f} s",
            response,
        )
    if response.answered:
        why = f"answered {response.status}"
    elif response.outcome == "timeout" or "timed out" in (response.error or ""):
        why = f"not answered within {budget:.2f} s"
    else:
        why = f"not answered ({response.error})"
    return False, f"{what}; a valid request was {why}", response
