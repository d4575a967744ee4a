"""Every exception spinepki raises, under one root.

Callers branch on the class or on the stable, machine-readable ``code``; they never
parse messages. The human message is built from the structured fields by ``__str__``.

Every class is importable from ``spinepki`` and from here; the feature-specific ones
are also re-exported by their feature's package (``spinepki.provider``, ``spinepki.ssp``,
``spinepki.scan``, ``spinepki.securitytest``). The tree::

    SpinePKIError                         spinepki
    ├── InputError (ValueError)           input            bytes/files we could not use
    │   ├── CertificateLoadError          input.certificate
    │   ├── KeyLoadError                  input.key
    │   ├── CRLParseError                 input.crl
    │   ├── OCSPParseError                input.ocsp
    │   └── TokenParseError               input.token
    ├── ConfigurationError (ValueError)   config           a setting or argument that cannot work
    │   ├── PolicyError                   config.policy
    │   ├── TrustStoreError               config.trust
    │   ├── ServerCredentialError         config.server_credential
    │   ├── ProviderConfigError           config.provider  a provider.toml key
    │   └── SSPConfigError                config.ssp       an SSP env.toml key
    ├── CertificateValidationError        validation       raised form of a ValidationResult
    ├── RevocationError                   revocation       revocation evidence unobtainable
    │   ├── FetchError                    revocation.fetch (timeout, HTTP status, too large)
    │   └── EvidenceError                 revocation.evidence (bad signature, stale, mismatch)
    ├── TestPKIError                      testpki          the on-disk test PKI is unusable
    ├── ProviderFailedError               provider.failed  the provider server stopped
    └── UnreachableError                  unreachable      a probed endpoint cannot be reached
        ├── ScanError                     scan.unreachable           spinepki.scan
        └── SecurityTestError             security_test.unreachable  spinepki.securitytest

A subclass's code starts with its parent's code, so callers can match prefixes; the two
children of ``UnreachableError`` are the exception: their codes name their feature first,
as they did before the common base existed, and stay as they are.

The command line maps ``InputError`` and ``ConfigurationError`` to exit code 2, and a
failed validation to exit code 1, in exactly one place.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "CRLParseError",
    "CertificateLoadError",
    "CertificateValidationError",
    "ConfigurationError",
    "EvidenceError",
    "FetchError",
    "InputError",
    "KeyLoadError",
    "OCSPParseError",
    "PolicyError",
    "ProviderConfigError",
    "ProviderFailedError",
    "RevocationError",
    "SSPConfigError",
    "ScanError",
    "SecurityTestError",
    "ServerCredentialError",
    "SpinePKIError",
    "TestPKIError",
    "TokenParseError",
    "TrustStoreError",
    "UnreachableError",
]


class SpinePKIError(Exception):
    """Root of every spinepki exception.

    Attributes:
        code: stable machine-readable identifier of the error class.
        reason: what went wrong, in plain words.
        source: the file, URL or field concerned, when there is one.
    """

    code: ClassVar[str] = "spinepki"

    def __init__(self, reason: str, *, source: str | None = None) -> None:
        self.reason = reason
        self.source = source
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.source:
            return f"{self.source}: {self.reason}"
        return self.reason

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(code={self.code!r}, reason={self.reason!r}, source={self.source!r})"


class InputError(SpinePKIError, ValueError):
    """Bytes or a file that spinepki could not use (unreadable, malformed, oversized)."""

    code = "input"


class CertificateLoadError(InputError):
    """A certificate could not be read or parsed."""

    code = "input.certificate"


class KeyLoadError(InputError):
    """A private key could not be read, parsed or decrypted."""

    code = "input.key"


class CRLParseError(InputError):
    """A CRL could not be parsed."""

    code = "input.crl"


class OCSPParseError(InputError):
    """An OCSP response could not be parsed."""

    code = "input.ocsp"


class TokenParseError(InputError):
    """A bearer token could not be decoded."""

    code = "input.token"


class ConfigurationError(SpinePKIError, ValueError):
    """A setting or combination of settings that cannot work."""

    code = "config"


class PolicyError(ConfigurationError):
    """The TLS policy cannot be applied (e.g. a cipher string that selects nothing)."""

    code = "config.policy"


class TrustStoreError(ConfigurationError):
    """A trust store is empty, unreadable or holds something that is not a CA."""

    code = "config.trust"


class ServerCredentialError(ConfigurationError):
    """The provider's own certificate and key cannot serve TLS under the policy."""

    code = "config.server_credential"


class ProviderConfigError(ConfigurationError):
    """A provider configuration key is missing, unknown or holds an unusable value.

    Attributes:
        key: the dotted key concerned (``tls.certificate``), also in ``source``.
    """

    code = "config.provider"

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        super().__init__(reason, source=key)


class SSPConfigError(ConfigurationError):
    """An SSP simulator configuration key is missing, unknown or holds an unusable value.

    Attributes:
        key: the dotted key concerned (``directory.providers[0].service_roots``), also
            in ``source``.
    """

    code = "config.ssp"

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        super().__init__(reason, source=key)


class CertificateValidationError(SpinePKIError):
    """A certificate failed validation; ``failure_codes`` lists the stable codes."""

    code = "validation"

    def __init__(
        self, reason: str, *, source: str | None = None, failure_codes: tuple[str, ...] = ()
    ) -> None:
        self.failure_codes = failure_codes
        super().__init__(reason, source=source)


class RevocationError(SpinePKIError):
    """Revocation evidence could not be obtained or used."""

    code = "revocation"


class FetchError(RevocationError):
    """A CRL or OCSP fetch failed: timeout, connection refused, HTTP error, too large."""

    code = "revocation.fetch"


class EvidenceError(RevocationError):
    """Evidence was fetched but cannot be trusted: bad signature, stale, wrong issuer."""

    code = "revocation.evidence"


class TestPKIError(SpinePKIError):
    """The on-disk test PKI is missing, incomplete, or would be overwritten."""

    __test__ = False  # not a pytest test class, despite the name
    code = "testpki"


class ProviderFailedError(SpinePKIError):
    """The server stopped serving by itself: its accept loop failed (a broken listening
    socket, or a bug). ``spinepki serve`` exits non-zero on it, so a supervisor (systemd
    ``Restart=on-failure``, a Kubernetes pod) restarts the process.

    Attributes:
        cause: the exception that ended the loop.
    """

    code = "provider.failed"

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause
        super().__init__(f"the server stopped serving: {_summary(cause)}", source="provider")


def _summary(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_summary(inner) for inner in exc.exceptions[:3])
    return f"{type(exc).__name__}: {exc}"


class UnreachableError(SpinePKIError):
    """An endpoint to be probed could not be reached at all (unresolvable, refused,
    silent, or it refused the TLS handshake outright).

    Catch this to handle both :class:`ScanError` and :class:`SecurityTestError`.

    Attributes:
        host / port: the target.
    """

    code = "unreachable"

    def __init__(self, reason: str, *, host: str, port: int) -> None:
        self.host = host
        self.port = port
        super().__init__(reason, source=f"{host}:{port}")


class ScanError(UnreachableError):
    """The endpoint could not be scanned at all (``spinepki.scan``)."""

    code = "scan.unreachable"


class SecurityTestError(UnreachableError):
    """The deployment could not be security-tested at all (``spinepki.securitytest``)."""

    code = "security_test.unreachable"
