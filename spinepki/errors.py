"""Every exception spinepki raises, under one root.

Callers branch on the class or on the stable, machine-readable ``code``; they never
parse messages. The human message is built from the structured fields by ``__str__``.

The tree::

    SpinePKIError                         spinepki
    ├── InputError (ValueError)           input            bytes/files we could not use
    │   ├── CertificateLoadError          input.certificate
    │   ├── KeyLoadError                  input.key
    │   ├── CRLParseError                 input.crl
    │   ├── OCSPParseError                input.ocsp
    │   └── TokenParseError               input.token
    ├── ConfigurationError (ValueError)   config           a setting that cannot work
    │   ├── PolicyError                   config.policy
    │   ├── TrustStoreError               config.trust
    │   ├── ServerCredentialError         config.server_credential
    │   ├── ProviderConfigError           config.provider  (spinepki.provider; names the key)
    │   └── SSPConfigError                config.ssp       (spinepki.ssp; names the key)
    ├── CertificateValidationError        validation       raised form of a ValidationResult
    ├── RevocationError                   revocation       revocation evidence unobtainable
    │   ├── FetchError                    revocation.fetch (timeout, HTTP status, too large)
    │   └── EvidenceError                 revocation.evidence (bad signature, stale, mismatch)
    ├── TestPKIError                      testpki          the on-disk test PKI is unusable
    ├── ProviderFailedError               provider.failed  (spinepki.provider) server stopped
    ├── ScanError                         scan.unreachable (spinepki.scan) endpoint unreachable
    └── SecurityTestError                 security_test.unreachable (spinepki.securitytest)

Subclasses defined next to the feature that raises them (the last four) are re-exported
from ``spinepki`` like the rest; their codes follow the same namespacing.

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
    "RevocationError",
    "ServerCredentialError",
    "SpinePKIError",
    "TestPKIError",
    "TokenParseError",
    "TrustStoreError",
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
