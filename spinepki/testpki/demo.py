"""The scripted callers of ``spinepki demo``: who gets through the Spine TLS policy and why.

Each :class:`Caller` is one connection attempt against a provider whose context comes
from :func:`spinepki.tls.server_context`, with an expected outcome taken from the
GP Connect rules. :func:`run_demo` plays them all against real TLS servers on
127.0.0.1 and returns one :class:`DemoOutcome` per caller.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from spinepki.policy import ClientAuth
from spinepki.testpki._builder import TestPKI
from spinepki.testpki.tlsserver import ProbeResult, TLSTestServer, probe
from spinepki.tls import client_context, server_context

__all__ = ["Caller", "DemoOutcome", "default_callers", "run_demo"]


@dataclass(frozen=True, slots=True)
class Caller:
    """One scripted connection attempt."""

    name: str
    """Who is calling (``SSP``, ``rogue: expired certificate``…)."""
    tried: str
    """What it tried, in plain words."""
    certificate: str | None
    """Test-PKI certificate presented, or None for no certificate."""
    expect_accepted: bool
    """What the policy requires."""
    rule: str
    """The GP Connect rule the outcome proves."""
    client_auth: ClientAuth = ClientAuth.REQUIRE
    """Which provider mode it calls."""
    plaintext: bool = False
    tune: Callable[[ssl.SSLContext], None] | None = field(default=None, compare=False)
    """Adjust the client context (protocol versions, cipher list)."""


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    """How one caller fared."""

    caller: Caller
    result: ProbeResult

    @property
    def as_required(self) -> bool:
        """True when the outcome is what the policy requires."""
        return self.result.accepted == self.caller.expect_accepted

    @property
    def outcome(self) -> str:
        """``accepted (TLSv1.2, suite)`` or ``refused (reason)``."""
        if self.result.accepted:
            return f"accepted ({self.result.version}, {self.result.cipher})"
        return f"refused ({self.result.error})"

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form."""
        return {
            "caller": self.caller.name,
            "tried": self.caller.tried,
            "expected": "accepted" if self.caller.expect_accepted else "refused",
            "outcome": "accepted" if self.result.accepted else "refused",
            "version": self.result.version,
            "cipher": self.result.cipher,
            "reason": self.result.error,
            "rule": self.caller.rule,
            "as_required": self.as_required,
        }


def _versions(low: ssl.TLSVersion, high: ssl.TLSVersion) -> Callable[[ssl.SSLContext], None]:
    def tune(ctx: ssl.SSLContext) -> None:
        # Old protocols need OpenSSL security level 0 on the *client* to be offered at all.
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            # Python deprecates TLS 1.0/1.1; playing an old client is the point here.
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version, ctx.maximum_version = low, high

    return tune


def _ciphers(spec: str) -> Callable[[ssl.SSLContext], None]:
    def tune(ctx: ssl.SSLContext) -> None:
        ctx.set_ciphers(spec)

    return tune


def default_callers(*, rsa_provider: bool = True) -> tuple[Caller, ...]:
    """The scripted callers, in the order they are played.

    Args:
        rsa_provider: the provider has an RSA key. TLS 1.2 has no DHE suite for ECDSA
            keys, so with an EC provider key a DHE-only client is rightly refused.
    """
    tls11 = ssl.TLSVersion.TLSv1_1
    return (
        Caller("SSP", "valid SSP certificate, TLS 1.2", "ssp", True, "mutual TLS 1.2 with the SSP"),
        Caller(
            "SSP (DHE only)",
            "offers only DHE-RSA-AES256-GCM-SHA384",
            "ssp",
            rsa_provider,
            "AESGCM+EDH suites work (ffdhe2048 loaded)"
            if rsa_provider
            else "TLS 1.2 has no DHE suite for an ECDSA server key",
            tune=_ciphers("DHE-RSA-AES256-GCM-SHA384"),
        ),
        Caller(
            "rogue: TLS 1.1",
            "TLS 1.0-1.1 only",
            "ssp",
            False,
            "TLS 1.0/1.1 refused",
            tune=_versions(ssl.TLSVersion.TLSv1, tls11),
        ),
        Caller(
            "rogue: TLS 1.3",
            "TLS 1.3 only",
            "ssp",
            False,
            "TLS 1.2 only",
            tune=_versions(ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3),
        ),
        Caller(
            "rogue: weak cipher",
            "offers only AES128-SHA256 (no forward secrecy)",
            "ssp",
            False,
            "only the approved cipher suites",
            tune=_ciphers("AES128-SHA256:AES128-SHA"),
        ),
        Caller(
            "rogue: plaintext",
            "plain HTTP on the TLS port",
            None,
            False,
            "plaintext dropped",
            plaintext=True,
        ),
        Caller(
            "rogue: no certificate",
            "no client certificate (require mode)",
            None,
            False,
            "mutual authentication",
        ),
        Caller(
            "no certificate (496 mode)",
            "no client certificate (http-496 mode)",
            None,
            True,
            "handshake completes; the gate answers HTTP 496",
            client_auth=ClientAuth.HTTP_496,
        ),
        Caller(
            "rogue: expired",
            "the `expired` certificate",
            "expired",
            False,
            "unexpired certificates only",
        ),
        Caller(
            "rogue: not yet valid",
            "the `not-yet-valid` certificate",
            "not-yet-valid",
            False,
            "certificates valid now",
        ),
        Caller(
            "rogue: foreign CA",
            "same names, untrusted CA",
            "foreign",
            False,
            "issued under the Spine Sub CA/Root",
        ),
        Caller(
            "rogue: revoked",
            "the `revoked` certificate (CRL loaded)",
            "revoked",
            False,
            "unrevoked certificates only",
        ),
        Caller(
            "rogue: foreign CA (496 mode)",
            "untrusted certificate in http-496 mode",
            "foreign",
            False,
            "a presented invalid certificate is refused in both modes",
            client_auth=ClientAuth.HTTP_496,
        ),
    )


@contextmanager
def _servers(pki: TestPKI) -> Iterator[dict[ClientAuth, TLSTestServer]]:
    provider = pki.leaf("provider")
    trust = pki.trust_store()
    crl = pki.crl()
    with ExitStack() as stack:
        servers = {
            mode: stack.enter_context(
                TLSTestServer(
                    server_context(
                        provider.chain_pem, provider.key_pem, trust, client_auth=mode, crls=[crl]
                    )
                )
            )
            for mode in ClientAuth
        }
        yield servers


def run_demo(
    pki: TestPKI,
    callers: tuple[Caller, ...] | None = None,
    *,
    progress: Callable[[DemoOutcome], None] | None = None,
) -> list[DemoOutcome]:
    """Play ``callers`` against providers built from ``pki``; one outcome per caller."""
    outcomes: list[DemoOutcome] = []
    trust = pki.trust_store()
    with _servers(pki) as servers:
        rsa_provider = isinstance(pki.leaf("provider").private_key, rsa.RSAPrivateKey)
        for caller in callers or default_callers(rsa_provider=rsa_provider):
            address = servers[caller.client_auth].address
            if caller.plaintext:
                result = probe(address, None)
            else:
                leaf = pki.leaf(caller.certificate) if caller.certificate else None
                ctx = client_context(
                    trust,
                    cert=leaf.chain_pem if leaf else None,
                    key=leaf.key_pem if leaf else None,
                    unsafe_skip_credential_checks=True,
                )
                if caller.tune:
                    caller.tune(ctx)
                result = probe(address, ctx, server_hostname=pki.provider_fqdn)
            outcome = DemoOutcome(caller, result)
            outcomes.append(outcome)
            if progress:
                progress(outcome)
    return outcomes
