"""The scanner's results: frozen findings, one check per GP Connect rule, and the report."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from spinepki._reporting import CheckedReport
from spinepki.errors import ScanError
from spinepki.validation import CertificateSummary

__all__ = [
    "SCHEMA",
    "CertificateFinding",
    "CipherFinding",
    "ClientCertFinding",
    "ClientCertOutcome",
    "HttpFinding",
    "PlaintextFinding",
    "ProtocolFinding",
    "ScanCheck",
    "ScanError",
    "ScanReport",
]

#: Identifies the JSON layout of :meth:`ScanReport.as_dict`; bumped on incompatible change.
SCHEMA = "spinepki.tls-scan/1"


@dataclass(frozen=True, slots=True)
class ScanCheck:
    """One rule checked against the endpoint."""

    id: str
    """Stable identifier, e.g. ``protocol.tls1_0`` or ``ciphers.server_order``."""
    passed: bool | None
    """True passed, False failed, None could not be determined (counts as not proven)."""
    requirement: str
    """The GP Connect rule this check proves, e.g. ``TLS 1.2 only``."""
    detail: str
    """What was observed, in plain words."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "id": self.id,
            "passed": self.passed,
            "requirement": self.requirement,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class ProtocolFinding:
    """Whether the server speaks one protocol version."""

    name: str
    """``SSLv2``, ``SSLv3``, ``TLSv1.0`` … ``TLSv1.3``."""
    accepted: bool | None
    """True when the server negotiated it; None when it could not be probed."""
    method: str
    """``openssl`` (a full handshake with the system OpenSSL) or ``hello`` (a raw
    ClientHello answered by a ServerHello of that version)."""
    detail: str
    """The negotiated suite, or why the server refused."""


@dataclass(frozen=True, slots=True)
class CipherFinding:
    """The TLS 1.2 suites the server accepts and whose order wins."""

    accepted: tuple[str, ...]
    """Accepted suites (OpenSSL names; unknown code points as ``0xC0FF``), in the
    server's preference order when it enforces one, else in the order it picked them."""
    outside_policy: tuple[str, ...]
    """Accepted suites the policy does not allow."""
    server_order: bool | None
    """True when the server's order wins, False when the client's does, None when
    it cannot be told (fewer than two suites, or inconsistent answers)."""
    probes: int
    """ClientHellos sent for this enumeration (bounded)."""
    complete: bool
    """False when the probe budget ran out before the server refused every suite left."""


class ClientCertOutcome(enum.Enum):
    """What happened on a TLS 1.2 connection without a client certificate."""

    HANDSHAKE_FAILURE = "handshake-failure"
    """The handshake failed: the ``require`` mode (design decision 5)."""
    HTTP_496 = "http-496"
    """The handshake completed and the request was answered 496: the ``http-496`` mode."""
    SERVED = "served"
    """The handshake completed and the request was answered with another status."""
    NO_ANSWER = "no-answer"
    """The handshake completed but the server closed without an HTTP answer."""
    NOT_TLS12 = "not-tls12"
    """The server refused TLS 1.2 itself, so the question could not be asked."""


@dataclass(frozen=True, slots=True)
class ClientCertFinding:
    """Client-certificate behaviour."""

    without_certificate: ClientCertOutcome
    """What happened without a certificate."""
    status: int | None
    """The HTTP status answered without a certificate, if any."""
    detail: str
    """The TLS error, or the status line."""
    cache_control: str | None = None
    """The Cache-Control of the answer given without a certificate (the 496), if any."""


@dataclass(frozen=True, slots=True)
class PlaintextFinding:
    """What a plaintext ``GET / HTTP/1.1`` on the TLS port got back."""

    answered_http: bool
    """True when the server answered in HTTP (including a redirect): a failure."""
    status_line: str | None
    """The HTTP status line when it did."""
    detail: str
    """What came back instead (nothing, a TLS alert, a reset)."""


@dataclass(frozen=True, slots=True)
class CertificateFinding:
    """The certificate chain the server presents."""

    chain: tuple[CertificateSummary, ...]
    """Leaf first, as sent."""
    chain_der: tuple[bytes, ...]
    """The same certificates, DER."""
    expected_name: str | None
    """The name compared against the certificate (``--server-name`` or the host);
    None when the host is an IP address and no name was given."""
    name_matches: bool | None
    """True when the leaf's FQDN (SAN dNSName, else CN) equals ``expected_name``."""
    validation: tuple[str, ...] | None
    """Validation failures against the trust store given (empty: valid), or None when
    no trust store was given."""


@dataclass(frozen=True, slots=True)
class HttpFinding:
    """One HTTP request the scanner sent over TLS 1.2 (the GP Connect ``GET /metadata``,
    the unparsable request, the wrong-FQDN request) and what came back."""

    path: str
    """The request path."""
    status: int | None
    """The HTTP status, or None when there was no answer."""
    cache_control: str | None
    """The Cache-Control header value(s), joined with ``, ``."""
    detail: str
    """The status line or why there was no answer."""


@dataclass(frozen=True, slots=True)
class ScanReport(CheckedReport[ScanCheck]):
    """Everything one scan found, and the verdict."""

    host: str
    """The host connected to."""
    port: int
    """The port connected to."""
    server_name: str | None
    """The SNI / FQDN used."""
    policy: str
    """Name of the policy checked against."""
    started_at: dt.datetime
    """When the scan started (UTC)."""
    duration: float
    """How long it took, in seconds."""
    checks: tuple[ScanCheck, ...]
    """One entry per rule, in a fixed order."""
    protocols: tuple[ProtocolFinding, ...]
    """SSLv2 … TLS 1.3."""
    ciphers: CipherFinding | None
    """None when TLS 1.2 was refused."""
    client_certificate: ClientCertFinding
    """Behaviour without a client certificate."""
    plaintext: PlaintextFinding
    """Behaviour on plaintext HTTP."""
    certificate: CertificateFinding | None
    """The presented chain; None when none was obtained."""
    metadata: HttpFinding | None
    """The ``GET /metadata`` answer; None without a client certificate."""
    error_answer: HttpFinding | None = None
    """The answer to a request no server may parse (sent with the client certificate);
    None without one."""
    wrong_fqdn: HttpFinding | None = None
    """The metadata request with the wrong-FQDN certificate (``status`` None: refused in
    the handshake); None when no such certificate was given."""

    @property
    def compliant(self) -> bool:
        """True only when every check passed (an undetermined check is not a pass)."""
        return all(c.passed is True for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON form (``schema`` names its version)."""
        cert = self.certificate
        return {
            "schema": SCHEMA,
            "target": {"host": self.host, "port": self.port, "server_name": self.server_name},
            "policy": self.policy,
            "started_at": self.started_at.isoformat(),
            "duration_seconds": round(self.duration, 3),
            "compliant": self.compliant,
            "summary": {
                "passed": sum(1 for c in self.checks if c.passed is True),
                "failed": len(self.failed),
                "undetermined": len(self.undetermined),
            },
            "checks": [c.as_dict() for c in self.checks],
            "findings": {
                "protocols": [
                    {"name": p.name, "accepted": p.accepted, "method": p.method, "detail": p.detail}
                    for p in self.protocols
                ],
                "ciphers": None
                if self.ciphers is None
                else {
                    "accepted": list(self.ciphers.accepted),
                    "outside_policy": list(self.ciphers.outside_policy),
                    "server_order": self.ciphers.server_order,
                    "probes": self.ciphers.probes,
                    "complete": self.ciphers.complete,
                },
                "client_certificate": {
                    "without_certificate": self.client_certificate.without_certificate.value,
                    "status": self.client_certificate.status,
                    "detail": self.client_certificate.detail,
                    "cache_control": self.client_certificate.cache_control,
                },
                "plaintext": {
                    "answered_http": self.plaintext.answered_http,
                    "status_line": self.plaintext.status_line,
                    "detail": self.plaintext.detail,
                },
                "certificate": None
                if cert is None
                else {
                    "chain": [s.as_dict() for s in cert.chain],
                    "expected_name": cert.expected_name,
                    "name_matches": cert.name_matches,
                    "validation_failures": None
                    if cert.validation is None
                    else list(cert.validation),
                },
                "metadata": _http(self.metadata),
                "error_answer": _http(self.error_answer),
                "wrong_fqdn": _http(self.wrong_fqdn),
            },
        }


def _http(finding: HttpFinding | None) -> dict[str, Any] | None:
    if finding is None:
        return None
    return {
        "path": finding.path,
        "status": finding.status,
        "cache_control": finding.cache_control,
        "detail": finding.detail,
    }
