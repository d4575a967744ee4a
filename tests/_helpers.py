"""Helpers shared by every test folder: shared test PKIs that stay as they were built.

A session- or module-scoped PKI is read by many tests in an order pytest may change, so a
test that issues or revokes a certificate in one would change what the later tests see.
Such a test takes a :func:`fresh` copy (or builds a PKI of its own); the fixtures that hold
shared PKIs build them inside :func:`shared`, which fails the run at teardown if any test
changed one.
"""

from __future__ import annotations

import copy
import datetime as dt
import ssl
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

from spinepki.testpki import TestPKI
from spinepki.tls import client_context


def fingerprint(pki: TestPKI) -> Hashable:
    """What issuing or revoking changes: the certificates by name and serial, the revoked
    serials, and the CRL numbers."""
    return (
        tuple(sorted((name, c.certificate.serial_number) for name, c in pki.cas.items())),
        tuple(sorted((name, c.certificate.serial_number) for name, c in pki.leaves.items())),
        tuple(sorted((ca, tuple(sorted(serials))) for ca, serials in pki.revocations.items())),
        tuple(sorted(pki.crl_numbers.items())),
    )


@contextmanager
def shared(pki: TestPKI, what: str = "a shared test PKI") -> Iterator[TestPKI]:
    """Yield ``pki``; on exit, fail if a test issued or revoked anything in it."""
    before = fingerprint(pki)
    yield pki
    assert fingerprint(pki) == before, (
        f"{what} was changed by a test (a certificate issued or revoked); "
        "give that test a fresh(pki) copy or a PKI of its own"
    )


def fresh(pki: TestPKI) -> TestPKI:
    """A copy of ``pki`` (same keys and certificates) that a test may issue into or revoke
    in without touching the shared one: far cheaper than building a new PKI."""
    return copy.deepcopy(pki)


async def receive_body(receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
    """Everything an ASGI app is sent of the request body, however many messages it takes."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def client_for(pki: TestPKI, name: str | None, ciphers: str | None = None) -> ssl.SSLContext:
    """A client context trusting ``pki`` and presenting its leaf ``name`` (``None``: no
    certificate), optionally limited to ``ciphers``. Invalid leaves (``expired``,
    ``foreign``...) are presented as they are, to play rogue clients."""
    leaf = pki.leaf(name) if name else None
    ctx = client_context(
        pki.trust_store(),
        cert=leaf.chain_pem if leaf else None,
        key=leaf.key_pem if leaf else None,
        unsafe_skip_credential_checks=True,
    )
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


class _ClocksGoBack(dt.tzinfo):
    """A local time whose clocks go back an hour at 01:00 UTC on 27 October 2024 (as the
    UK's do), so local 01:00-02:00 happens twice (PEP 495 ``fold``). Built here so the
    tests need no time zone database."""

    _CHANGE = dt.datetime(2024, 10, 27, 2, 0)  # local, summer time

    def utcoffset(self, d: dt.datetime | None) -> dt.timedelta:
        if d is None:
            return dt.timedelta(0)
        local = d.replace(tzinfo=None, fold=0)
        if local < self._CHANGE - dt.timedelta(hours=1):
            return dt.timedelta(hours=1)
        if local >= self._CHANGE:
            return dt.timedelta(0)
        return dt.timedelta(hours=1) if d.fold == 0 else dt.timedelta(0)

    def dst(self, d: dt.datetime | None) -> dt.timedelta:
        return self.utcoffset(d)

    def tzname(self, d: dt.datetime | None) -> str:
        return "BST" if self.utcoffset(d) else "GMT"


#: The time zone of :class:`_ClocksGoBack`.
CLOCKS_GO_BACK = _ClocksGoBack()
