"""spinepki's pytest plugin (entry point ``pytest11``, name ``spinepki``): test-PKI fixtures.

pytest imports every installed plugin when it starts, in every project that has spinepki
installed, whether or not its tests use these fixtures. So this module is harmless by
construction: it lives outside the ``spinepki`` package (importing it does not import the
library) and imports nothing but pytest at import time. Each fixture imports what it needs
when a test first asks for it, so a deprecation or a slow import anywhere in spinepki can
only ever affect tests that use spinepki. Disable it with ``pytest -p no:spinepki``.

Session-scoped, so a test run generates each PKI once:

- ``spine_pki``: a :class:`~spinepki.testpki.TestPKI` with ECDSA P-256 keys (fast).
- ``spine_pki_rsa``: the same with RSA-2048 keys (realistic, slower to build).
- ``spine_server_context``: a provider ``SSLContext`` (``server_context``, require mode).
- ``spine_client_context``: a factory, ``spine_client_context("ssp")`` → a client context
  presenting that certificate (``None`` for no certificate). Invalid certificates
  (``expired``, ``foreign``…) are presented as-is, to play rogue clients.

Per test:

- ``spinepki_responder``: a running CRL/OCSP/AIA responder on 127.0.0.1 with a fresh
  EC P-256 PKI whose URLs point at it; faults are cleared and the port released after
  the test (see :mod:`spinepki.testpki.responder`).
- ``spinepki_responder_pki``: that responder's PKI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import ssl

    from spinepki.testpki import TestPKI
    from spinepki.testpki.responder import Responder

__all__ = [
    "spine_client_context",
    "spine_pki",
    "spine_pki_rsa",
    "spine_server_context",
    "spinepki_responder",
    "spinepki_responder_pki",
]

ClientContextFactory = Callable[["str | None"], "ssl.SSLContext"]


@pytest.fixture(scope="session")
def spine_pki() -> TestPKI:
    """A Spine-shaped test PKI with ECDSA P-256 keys."""
    from spinepki.testpki import KeyType, TestPKI  # noqa: PLC0415 - only when used

    return TestPKI.create(key_type=KeyType.EC_P256)


@pytest.fixture(scope="session")
def spine_pki_rsa() -> TestPKI:
    """A Spine-shaped test PKI with RSA-2048 keys, as real Spine certificates use."""
    from spinepki.testpki import KeyType, TestPKI  # noqa: PLC0415 - only when used

    return TestPKI.create(key_type=KeyType.RSA_2048)


@pytest.fixture(scope="session")
def spine_server_context(spine_pki: TestPKI) -> ssl.SSLContext:
    """The provider's server context (TLS 1.2, Spine ciphers, client cert required)."""
    from spinepki.tls import server_context  # noqa: PLC0415 - only when used

    provider = spine_pki.leaf("provider")
    return server_context(provider.chain_pem, provider.key_pem, spine_pki.trust_store())


@pytest.fixture(scope="session")
def spine_client_context(spine_pki: TestPKI) -> ClientContextFactory:
    """Factory: a client context presenting the named certificate (or none)."""
    from spinepki.tls import client_context  # noqa: PLC0415 - only when used

    def make(name: str | None) -> ssl.SSLContext:
        if name is None:
            return client_context(spine_pki.trust_store())
        leaf = spine_pki.leaf(name)
        return client_context(
            spine_pki.trust_store(),
            cert=leaf.chain_pem,
            key=leaf.key_pem,
            unsafe_skip_credential_checks=True,
        )

    return make


@pytest.fixture
def spinepki_responder() -> Iterator[Responder]:
    """A running responder serving a fresh EC P-256 test PKI that points at it."""
    from spinepki.testpki import KeyType  # noqa: PLC0415 - only when used
    from spinepki.testpki.responder import Responder  # noqa: PLC0415 - only when used

    with Responder.with_new_pki(key_type=KeyType.EC_P256) as responder:
        yield responder


@pytest.fixture
def spinepki_responder_pki(spinepki_responder: Responder) -> TestPKI:
    """The test PKI served by :func:`spinepki_responder`."""
    return spinepki_responder.pki
