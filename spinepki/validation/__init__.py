"""Client-certificate validation: the Spine chain, time, purpose, FQDN and revocation.

    >>> from spinepki.validation import ClientCertValidator
    >>> validator = ClientCertValidator(
    ...     TrustStore.spine("int"), ssp_fqdns=["msg.int.spine2.ncrs.nhs.uk"]
    ... )  # doctest: +SKIP
    >>> result = validator.validate(pem_bytes)  # doctest: +SKIP
    >>> result.valid, [f.code for f in result.failures]  # doctest: +SKIP

Path building, signatures, basic constraints, path length, CA key usage and the profile's
extension rules are done by ``cryptography.x509.verification`` (design decision 1; its
server verifier for ``Purpose.SERVER``); spinepki runs explicit checks beside it so every
rejection carries a precise, stable :class:`FailureCode`, and bounds the work a peer's
chain can cause (:data:`MAX_INTERMEDIATES`, :data:`PATH_BUDGET`). See
``docs/validation.md`` for the profiles (``spine``, ``strict``, ``general``), the key and
algorithm floor, caching and every way the ``spine`` profile relaxes ``strict``.
"""

from __future__ import annotations

from spinepki._public import publish as _publish
from spinepki.validation._checks import KEY_USAGE_BITS, MIN_RSA_BITS
from spinepki.validation._model import (
    FailureCode,
    Profile,
    Purpose,
    ValidationFailure,
    ValidationResult,
)
from spinepki.validation._paths import WorkBudget
from spinepki.validation._summary import CertificateSummary, summarize_certificate
from spinepki.validation._validator import (
    DEFAULT_CACHE_SIZE,
    DEFAULT_CACHE_TTL,
    DEFAULT_MAX_CHAIN_DEPTH,
    MAX_CHAIN_DEPTH_LIMIT,
    MAX_INTERMEDIATES,
    PATH_BUDGET,
    ClientCertValidator,
)

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_CACHE_TTL",
    "DEFAULT_MAX_CHAIN_DEPTH",
    "KEY_USAGE_BITS",
    "MAX_CHAIN_DEPTH_LIMIT",
    "MAX_INTERMEDIATES",
    "MIN_RSA_BITS",
    "PATH_BUDGET",
    "CertificateSummary",
    "ClientCertValidator",
    "FailureCode",
    "Profile",
    "Purpose",
    "ValidationFailure",
    "ValidationResult",
    "WorkBudget",
    "summarize_certificate",
]

# Show each name at its public path (``<class 'spinepki.gate.RequestGate'>``), not
# the private module that implements it, as httpx does.
_publish(__name__, __all__, globals())
