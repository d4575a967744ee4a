"""The answers the SSP gives itself, in the shape the GP Connect error guidance shows.

The SSP's own errors are not the provider's: no ``meta.profile``, an ``id``, the coding
system ``http://fhir.nhs.net/ValueSet/gpconnect-schedule-response-code-1-0`` whose
``code`` is the HTTP status, and a ``display`` (repeated in ``diagnostics``) that names
the failed check with its values, e.g. ``ASID_CHECK_FAILED_MESSAGESENDER_200000000359``
[ERR "Spine Secure Proxy (SSP) errors"].
"""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass

__all__ = ["SSP_CODING_SYSTEM", "SSPError", "SSPRefusal"]

#: The coding system of every SSP error example in the GP Connect error guidance.
SSP_CODING_SYSTEM = "http://fhir.nhs.net/ValueSet/gpconnect-schedule-response-code-1-0"
#: The longest request-derived text echoed in a display (a target URL).
_MAX_ECHO = 512


class SSPError(enum.Enum):
    """What the simulator refused, or why the provider hop failed: a stable code.

    The value is the code recorded in the audit trail (never the display, which may
    echo a request's URL). ``status`` and ``issue_type`` follow the error guidance's
    table where it has a row; the others follow the SSP implementation guide's status
    list and are this simulator's choice of display (the guidance publishes none).
    """

    ENDPOINT_VARIES = "ENDPOINT_VARIES_FROM_TARGETURL"
    """400: the service root in the URL is not the one registered for the interaction."""
    SENDER_NOT_AUTHORISED = "ASID_CHECK_FAILED_MESSAGESENDER"
    """403: ``Ssp-From`` unknown, not the certificate's system, or not allowed to send
    the interaction."""
    RECEIVER_NOT_AUTHORISED = "PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER"
    """403: ``Ssp-To`` unknown or does not receive the interaction."""
    NO_AGREEMENT = "FOT_CHECK_FAILED"
    """403: the sender may not send to the receiver (no data sharing agreement)."""
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    """405: an HTTP method the SSP does not forward."""
    MISSING_HEADER = "MISSING_OR_INVALID_HEADER"
    """400: an SSP header is missing, repeated, blank or not identifier-shaped
    (simulator's display; the SSP validates the headers [SSPIG-07])."""
    BODY_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    """413: a request body over the configured bound (simulator's bound)."""
    CERTIFICATE_INVALID = "SSL_CERTIFICATE_ERROR"
    """495: the consumer's certificate is invalid (chain, time, revocation, unregistered
    name) [SSPIG-07]."""
    CERTIFICATE_MISSING = "SSL_CERTIFICATE_REQUIRED"
    """496: the consumer presented no certificate [SSPIG-07]."""
    PROVIDER_UNREACHABLE = "ERROR_COMMUNICATING_TO_ENDPOINT_URL"
    """502: the provider could not be reached, failed its certificate check, or answered
    with something that is not an HTTP response."""
    PROVIDER_TIMEOUT = "TIMEOUT_COMMUNICATING_TO_ENDPOINT_URL"
    """504: the provider did not answer within ``forwarding.response_timeout`` (the
    guidance's example is "TBC"; this display mirrors the 502 one)."""

    @property
    def status(self) -> int:
        """The HTTP status."""
        return _STATUS[self]

    @property
    def issue_type(self) -> str:
        """The FHIR issue type of the guidance's table."""
        return _ISSUE[self]


_STATUS = {
    SSPError.ENDPOINT_VARIES: 400,
    SSPError.SENDER_NOT_AUTHORISED: 403,
    SSPError.RECEIVER_NOT_AUTHORISED: 403,
    SSPError.NO_AGREEMENT: 403,
    SSPError.METHOD_NOT_ALLOWED: 405,
    SSPError.MISSING_HEADER: 400,
    SSPError.BODY_TOO_LARGE: 413,
    SSPError.CERTIFICATE_INVALID: 495,
    SSPError.CERTIFICATE_MISSING: 496,
    SSPError.PROVIDER_UNREACHABLE: 502,
    SSPError.PROVIDER_TIMEOUT: 504,
}
_ISSUE = {
    SSPError.ENDPOINT_VARIES: "invalid",
    SSPError.SENDER_NOT_AUTHORISED: "forbidden",
    SSPError.RECEIVER_NOT_AUTHORISED: "forbidden",
    SSPError.NO_AGREEMENT: "forbidden",
    SSPError.METHOD_NOT_ALLOWED: "not-supported",
    SSPError.MISSING_HEADER: "invalid",
    SSPError.BODY_TOO_LARGE: "too-long",
    SSPError.CERTIFICATE_INVALID: "security",
    SSPError.CERTIFICATE_MISSING: "security",
    SSPError.PROVIDER_UNREACHABLE: "transient",
    SSPError.PROVIDER_TIMEOUT: "transient",
}


def echo(text: str) -> str:
    """Request-derived text as a display may carry it: printable ASCII, bounded."""
    cleaned = "".join(c if " " < c < "\x7f" else "?" for c in text[: _MAX_ECHO + 1])
    return cleaned if len(cleaned) <= _MAX_ECHO else cleaned[:_MAX_ECHO] + "..."


@dataclass(frozen=True, slots=True)
class SSPRefusal:
    """One answer of the SSP's own: the error and its display."""

    error: SSPError
    """The stable code."""
    display: str
    """The coding's display (also the diagnostics), e.g.
    ``FOT_CHECK_FAILED_MESSAGESENDER_200000000359_MESSAGERECEIVER_918999198738``."""
    detail: str = ""
    """Why, in fixed words, for the audit trail (never request content)."""

    @property
    def status(self) -> int:
        """The HTTP status."""
        return self.error.status

    def response(self) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """The response headers and the OperationOutcome body (compact 7-bit JSON)."""
        outcome = {
            "resourceType": "OperationOutcome",
            "id": str(uuid.uuid4()),
            "issue": [
                {
                    "severity": "error",
                    "code": self.error.issue_type,
                    "details": {
                        "coding": [
                            {
                                "system": SSP_CODING_SYSTEM,
                                "code": str(self.status),
                                "display": self.display,
                            }
                        ]
                    },
                    "diagnostics": self.display,
                }
            ],
        }
        body = json.dumps(outcome, separators=(",", ":"), ensure_ascii=True).encode("ascii")
        headers = [
            (b"content-type", b"application/fhir+json"),
            (b"cache-control", b"no-store"),
            (b"content-length", str(len(body)).encode("ascii")),
        ]
        return headers, body
