"""pytest plugin (registered through the ``pytest11`` entry point): Spine test-PKI fixtures.

Session-scoped, so a test run generates its PKI once:

- ``spine_pki``: a :class:`~spinepki.testpki.TestPKI` with ECDSA P-256 keys (fast).
- ``spine_pki_rsa``: the same with RSA-2048 keys (realistic, slower to build).
- ``spine_server_context``: a provider ``SSLContext`` (``server_context``, require mode).
- ``spinepki_responder`` / ``spinepki_responder_pki``: a running CRL/OCSP/AIA responder
  on 127.0.0.1 with a fresh EC P-256 PKI whose URLs point at it (faults cleared after
  each test); see :mod:`spinepki.testpki.responder`.
- ``spine_client_context``: a factory, ``spine_client_context("ssp")`` → client context
  presenting that certificate (``None`` for no certificate). Invalid certificates
  (``expired``, ``foreign``…) are presented as-is, to play rogue clients.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import pytest

from spinepki.testpki import KeyType, TestPKI
from spinepki.testpki.pytest_responder import spinepki_responder, spinepki_responder_pki
from spinepki.tls import client_context, server_context

# The responder fixtures live in their own module; importing them here registers them.
__all__ = [
    "spine_client_context",
    "spine_pki",
    "spine_pki_rsa",
    "spine_server_context",
    "spinepki_responder",
    "spinepki_responder_pki",
]

ClientContextFactory = Callable[[str | None], ssl.SSLContext]


@pytest.fixture(scope="session")
def spine_pki() -> TestPKI:
    """A Spine-shaped test PKI with ECDSA P-256 keys."""
    return TestPKI.create(key_type=KeyType.EC_P256)


@pytest.fixture(scope="session")
def spine_pki_rsa() -> TestPKI:
    """A Spine-shaped test PKI with RSA-2048 keys, as real Spine certificates use."""
    return TestPKI.create(key_type=KeyType.RSA_2048)


@pytest.fixture(scope="session")
def spine_server_context(spine_pki: TestPKI) -> ssl.SSLContext:
    """The provider's server context (TLS 1.2, Spine ciphers, client cert required)."""
    provider = spine_pki.leaf("provider")
    return server_context(provider.chain_pem, provider.key_pem, spine_pki.trust_store())


@pytest.fixture(scope="session")
def spine_client_context(spine_pki: TestPKI) -> ClientContextFactory:
    """Factory: a client context presenting the named certificate (or none)."""

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
