"""Reaching the one endpoint a probe targets: shared by ``spinepki.scan`` and
``spinepki.securitytest``, which raise their own subclass of :class:`UnreachableError`."""

from __future__ import annotations

import socket

from spinepki.errors import UnreachableError

__all__ = ["resolve_endpoint"]


def resolve_endpoint(
    host: str, port: int, timeout: float, *, error: type[UnreachableError]
) -> tuple[str, int]:
    """Resolve once and connect once, so every probe goes to the same address.

    Returns:
        The first address (IP, port) that accepted a TCP connection.

    Raises:
        UnreachableError: as ``error``: the name does not resolve, or no address answers.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise error(f"cannot resolve {host!r}: {exc}", host=host, port=port) from exc
    last: OSError | None = None
    for family, _type, _proto, _name, sockaddr in infos:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(sockaddr)
        except OSError as exc:
            last = exc
            continue
        return str(sockaddr[0]), int(sockaddr[1])
    reason = "timed out" if isinstance(last, TimeoutError) else (last.strerror if last else None)
    raise error(f"cannot connect: {reason or type(last).__name__}", host=host, port=port)
