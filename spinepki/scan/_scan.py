"""``scan_endpoint``: probe one live endpoint and judge it against the Spine TLS policy."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import ssl
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from spinepki._endpoint import resolve_endpoint
from spinepki._loading import (
    CertificateSource,
    PrivateKeySource,
    load_certificate_chain,
    load_private_key,
)
from spinepki._x509 import fqdn_names, match_fqdn, normalise_fqdns
from spinepki.errors import ConfigurationError, ServerCredentialError
from spinepki.policy import SPINE_POLICY, TLSPolicy
from spinepki.revocation import RevocationChecker, RevocationMode
from spinepki.scan._hello import SSL3, TLS1_0, TLS1_1, TLS1_2, TLS1_3, HelloParseError
from spinepki.scan._probes import (
    HandshakeOutcome,
    HelloOutcome,
    handshake,
    hello_probe,
    parse_http_head,
    plaintext_probe,
    scan_context,
    sslv2_probe,
)
from spinepki.scan._report import (
    CertificateFinding,
    CipherFinding,
    ClientCertFinding,
    ClientCertOutcome,
    HttpFinding,
    PlaintextFinding,
    ProtocolFinding,
    ScanCheck,
    ScanError,
    ScanReport,
)
from spinepki.scan._request import malformed_request, metadata_request
from spinepki.tls import _load_chain_into
from spinepki.trust import TrustStore
from spinepki.validation import (
    ClientCertValidator,
    FailureCode,
    Purpose,
    summarize_certificate,
)

__all__ = ["MAX_CIPHER_PROBES", "SCAN_STEPS", "ScanProgress", "parse_target", "scan_endpoint"]

#: Most ClientHellos spent on cipher enumeration and the order test together.
MAX_CIPHER_PROBES = 100
#: Longest per-probe timeout accepted (seconds).
MAX_TIMEOUT = 120.0

ScanProgress = Callable[[str, int, int], None]
"""``progress(step, done, total)``: called after each step of :data:`SCAN_STEPS`."""

#: The steps of a scan, in order; ``progress`` is called once after each.
SCAN_STEPS = (
    "SSLv2",
    "SSLv3",
    "TLSv1.0",
    "TLSv1.1",
    "TLSv1.2",
    "TLSv1.3",
    "cipher suites",
    "cipher order",
    "client certificate",
    "plaintext",
    "certificate",
    "GET /metadata",
    "error answer",
    "wrong FQDN",
)

# Suites that OpenSSL 3 no longer implements but old servers still accept (RC4, 3DES,
# export grade). Offering them costs nothing and catches what matters most.
_LEGACY_SUITES = {
    0x0003: "EXP-RC4-MD5",
    0x0004: "RC4-MD5",
    0x0005: "RC4-SHA",
    0x0008: "EXP-DES-CBC-SHA",
    0x0009: "DES-CBC-SHA",
    0x000A: "DES-CBC3-SHA",
    0x0016: "EDH-RSA-DES-CBC3-SHA",
    0x0013: "EDH-DSS-DES-CBC3-SHA",
    0xC011: "ECDHE-RSA-RC4-SHA",
    0xC012: "ECDHE-RSA-DES-CBC3-SHA",
    0xC007: "ECDHE-ECDSA-RC4-SHA",
    0xC008: "ECDHE-ECDSA-DES-CBC3-SHA",
}


def _known_suites() -> dict[int, str]:
    """Every TLS 1.2-and-earlier suite this OpenSSL knows, in its order, plus legacy ones."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    suites = {
        int(str(c["id"])) & 0xFFFF: str(c["name"])
        for c in ctx.get_ciphers()
        if c.get("protocol") != "TLSv1.3"
    }
    for code, name in _LEGACY_SUITES.items():
        suites.setdefault(code, name)
    return suites


_TARGET = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9._-]+)):(?P<port>\d{1,5})$"
)


def parse_target(target: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` for IPv6); refuse ranges, CIDRs and lists.

    The scanner checks one endpoint the operator names; it is not a network sweeper.

    Raises:
        ConfigurationError: not a single ``HOST:PORT``.
    """
    text = target.strip()
    if any(ch in text for ch in "/,* "):
        raise ConfigurationError(
            "give one HOST:PORT; ranges, CIDRs and lists are refused", source=target
        )
    m = _TARGET.match(text)
    if m is None:
        raise ConfigurationError("expected HOST:PORT (IPv6 as [ADDR]:PORT)", source=target)
    host = m.group("v6") or m.group("host")
    if m.group("v6"):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigurationError("not an IPv6 address", source=target) from None
    elif re.fullmatch(r"[0-9.-]+", host) and "-" in host:
        raise ConfigurationError(
            "give one HOST:PORT; ranges, CIDRs and lists are refused", source=target
        )
    port = int(m.group("port"))
    if not 1 <= port <= 65535:
        raise ConfigurationError("port must be between 1 and 65535", source=target)
    return host, port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _version_name(v: int) -> str:
    return {SSL3: "SSLv3", TLS1_0: "TLSv1.0", TLS1_1: "TLSv1.1", TLS1_2: "TLSv1.2"}.get(
        v, "TLSv1.3" if v == TLS1_3 else f"0x{v:04x}"
    )


_SSL_VERSIONS = {
    TLS1_0: ssl.TLSVersion.TLSv1,
    TLS1_1: ssl.TLSVersion.TLSv1_1,
    TLS1_2: ssl.TLSVersion.TLSv1_2,
    TLS1_3: ssl.TLSVersion.TLSv1_3,
}


_LABELS = {
    ssl.TLSVersion.TLSv1: "TLS 1.0",
    ssl.TLSVersion.TLSv1_1: "TLS 1.1",
    ssl.TLSVersion.TLSv1_2: "TLS 1.2",
    ssl.TLSVersion.TLSv1_3: "TLS 1.3",
}


class _Scan:
    """One scan's state; ``run`` does the work in :data:`SCAN_STEPS` order."""

    def __init__(
        self,
        host: str,
        port: int,
        address: tuple[str, int],
        *,
        policy: TLSPolicy,
        trust: TrustStore | None,
        client_chain: tuple[str, str] | None,
        wrong_fqdn_chain: tuple[str, str] | None,
        server_name: str | None,
        timeout: float,
        metadata_path: str,
        at: dt.datetime,
        progress: ScanProgress | None,
    ) -> None:
        self.host, self.port, self.address = host, port, address
        self.policy = policy
        self.trust = trust
        self.client_chain = client_chain
        self.wrong_fqdn_chain = wrong_fqdn_chain
        self.sni = server_name or (None if _is_ip(host) else host)
        self.timeout = timeout
        self.metadata_path = metadata_path
        self.at = at
        self.progress = progress
        self.done = 0
        self.known = _known_suites()
        self.checks: list[ScanCheck] = []
        self.chain_der: tuple[bytes, ...] = ()
        self.peer_leaf: bytes | None = None
        host_part = self.sni or (f"[{host}]" if ":" in host else host)
        self.host_header = host_part if port == 443 else f"{host_part}:{port}"

    def step(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(SCAN_STEPS[self.done - 1], self.done, len(SCAN_STEPS))

    def add(self, check_id: str, passed: bool | None, requirement: str, detail: str) -> None:
        self.checks.append(ScanCheck(check_id, passed, requirement, detail))

    def suite_name(self, code: int) -> str:
        return self.known.get(code, f"0x{code:04X}")

    def hello(
        self, version: int, suites: list[int], *, want_certificate: bool = False
    ) -> HelloOutcome:
        return hello_probe(
            self.address,
            version,
            suites,
            server_name=self.sni,
            timeout=self.timeout,
            want_certificate=want_certificate,
        )

    def full(
        self,
        version: int,
        *,
        with_cert: bool,
        request: bytes | None = None,
        chain: tuple[str, str] | None = None,
    ) -> HandshakeOutcome:
        ctx = scan_context(
            _SSL_VERSIONS[version],
            client_chain=chain or (self.client_chain if with_cert else None),
        )
        out = handshake(
            self.address, ctx, server_name=self.sni, timeout=self.timeout, request=request
        )
        if out.peer_certificate and self.peer_leaf is None:
            self.peer_leaf = out.peer_certificate
        return out

    # -- protocols ----------------------------------------------------------------------

    def protocols(self) -> tuple[ProtocolFinding, ...]:
        findings: list[ProtocolFinding] = []
        ok, detail = sslv2_probe(self.address, timeout=self.timeout)
        findings.append(ProtocolFinding("SSLv2", ok, "hello", detail))
        self.step()
        all_codes = list(self.known)
        out = self.hello(SSL3, all_codes)
        sh = out.server_hello
        if sh is not None and sh.version == SSL3:
            findings.append(
                ProtocolFinding(
                    "SSLv3", True, "hello", f"ServerHello {self.suite_name(sh.cipher_suite)}"
                )
            )
        else:
            findings.append(ProtocolFinding("SSLv3", False, "hello", self._refused(out)))
        self.step()
        for version in (TLS1_0, TLS1_1, TLS1_2, TLS1_3):
            findings.append(self._tls_version(version, all_codes))
            self.step()
        return tuple(findings)

    @staticmethod
    def _refused(out: HelloOutcome) -> str:
        sh = out.server_hello
        if sh is not None:
            return f"answered with {_version_name(sh.version)} instead"
        return f"refused ({out.refusal})"

    def _tls_version(self, version: int, all_codes: list[int]) -> ProtocolFinding:
        name = _version_name(version)
        full = self.full(version, with_cert=self.client_chain is not None)
        if full.completed:
            return ProtocolFinding(name, True, "openssl", f"handshake completed with {full.cipher}")
        # The full handshake can fail after the server accepted the version (e.g. it then
        # wants a client certificate). A raw ClientHello tells the two apart.
        suites = [0x1301, 0x1302, 0x1303] if version == TLS1_3 else all_codes
        out = self.hello(version, suites)
        sh = out.server_hello
        if sh is not None and sh.version == version:
            what = "HelloRetryRequest" if sh.retry_request else "ServerHello"
            return ProtocolFinding(
                name,
                True,
                "hello",
                f"{what} {self.suite_name(sh.cipher_suite)}; the full handshake then "
                f"failed ({full.error})",
            )
        return ProtocolFinding(
            name, False, "openssl", f"{self._refused(out)}; OpenSSL: {full.error}"
        )

    def protocol_checks(self, findings: tuple[ProtocolFinding, ...]) -> None:
        low, high = self.policy.minimum_version, self.policy.maximum_version
        requirement = (
            f"{_LABELS[low]} only" if low == high else f"{_LABELS[low]} to {_LABELS[high]} only"
        )
        allowed = {
            "SSLv2": False,
            "SSLv3": False,
            "TLSv1.0": low <= ssl.TLSVersion.TLSv1 <= high,
            "TLSv1.1": low <= ssl.TLSVersion.TLSv1_1 <= high,
            "TLSv1.2": low <= ssl.TLSVersion.TLSv1_2 <= high,
            "TLSv1.3": low <= ssl.TLSVersion.TLSv1_3 <= high,
        }
        for f in findings:
            want = allowed[f.name]
            state = "accepted" if f.accepted else "refused"
            should = "must be accepted" if want else "must be refused"
            passed = None if f.accepted is None else f.accepted == want
            check_id = "protocol." + f.name.lower().replace("tlsv", "tls").replace(".", "_")
            self.add(check_id, passed, requirement, f"{f.name} {state} ({should}): {f.detail}")

    # -- ciphers ------------------------------------------------------------------------

    def ciphers(self) -> CipherFinding:
        offered = list(self.known)
        accepted: list[int] = []
        probes = 0
        complete = False
        anomaly = ""
        while offered and probes < MAX_CIPHER_PROBES - 2:
            out = self.hello(TLS1_2, offered, want_certificate=probes == 0)
            probes += 1
            if probes == 1 and out.certificates:
                self.chain_der = out.certificates
            sh = out.server_hello
            if sh is None:
                complete = True
                break
            if sh.version != TLS1_2 or sh.cipher_suite not in offered:
                anomaly = (
                    f"the server answered {_version_name(sh.version)} with "
                    f"{self.suite_name(sh.cipher_suite)}, which was not offered"
                )
                break
            accepted.append(sh.cipher_suite)
            offered.remove(sh.cipher_suite)
        else:
            complete = not offered
        self.step()
        server_order: bool | None = None
        if len(accepted) >= 2:
            forward = self.hello(TLS1_2, accepted)
            backward = self.hello(TLS1_2, accepted[::-1])
            probes += 2
            f = forward.server_hello.cipher_suite if forward.server_hello else None
            b = backward.server_hello.cipher_suite if backward.server_hello else None
            if f is not None and f == b:
                server_order = True
            elif f == accepted[0] and b == accepted[-1]:
                server_order = False
        self.step()
        names = tuple(self.suite_name(c) for c in accepted)
        allowed = {s.name for s in self.policy.suites()}
        outside = tuple(n for n in names if n not in allowed)
        finding = CipherFinding(names, outside, server_order, probes, complete and not anomaly)
        requirement = "approved ciphers in server order"
        if outside:
            self.add(
                "ciphers.approved",
                False,
                requirement,
                f"{len(outside)} of {len(names)} accepted suites are outside the "
                f"{self.policy.name!r} policy: {', '.join(outside)}",
            )
        elif not names:
            self.add("ciphers.approved", None, requirement, anomaly or "no TLS 1.2 suite accepted")
        elif not finding.complete:
            self.add(
                "ciphers.approved",
                None,
                requirement,
                anomaly or f"stopped after {probes} probes; accepted so far: {', '.join(names)}",
            )
        else:
            weaker = [s.name for s in self.policy.suites() if s.weaker and s.name in names]
            note = f" ({len(weaker)} CBC/SHA-1, allowed but weaker)" if weaker else ""
            self.add(
                "ciphers.approved",
                True,
                requirement,
                f"{len(names)} suites accepted, all in the policy{note}: {', '.join(names)}",
            )
        self._order_check(finding, requirement)
        return finding

    def _order_check(self, finding: CipherFinding, requirement: str) -> None:
        if not self.policy.honour_server_order:
            self.add("ciphers.server_order", True, requirement, "the policy does not ask for it")
        elif len(finding.accepted) < 2:
            passed = True if finding.accepted else None
            self.add(
                "ciphers.server_order",
                passed,
                requirement,
                "one suite accepted: there is no order to enforce"
                if finding.accepted
                else "no TLS 1.2 suite accepted",
            )
        elif finding.server_order is None:
            self.add(
                "ciphers.server_order",
                None,
                requirement,
                "the server's choices followed neither its own nor the client's order",
            )
        elif finding.server_order:
            self.add(
                "ciphers.server_order",
                True,
                requirement,
                f"the server's order wins; it prefers {finding.accepted[0]}",
            )
        else:
            self.add(
                "ciphers.server_order",
                False,
                requirement,
                "the client's order wins (the server picked the client's first suite "
                "in both orders)",
            )

    # -- client certificate, plaintext, certificate, metadata ----------------------------

    def request(self) -> bytes:
        return metadata_request(
            host_header=self.host_header, path=self.metadata_path, now=int(self.at.timestamp())
        )

    def client_certificate(self, tls12: bool) -> ClientCertFinding:
        requirement = "mutual authentication"
        if not tls12:
            self.step()
            self.add("client_cert.required", None, requirement, "TLS 1.2 is refused")
            return ClientCertFinding(ClientCertOutcome.NOT_TLS12, None, "TLS 1.2 is refused")
        out = self.full(TLS1_2, with_cert=False, request=self.request())
        self.step()
        if not out.completed:
            detail = f"handshake refused without a certificate ({out.error})"
            self.add("client_cert.required", True, requirement, detail)
            return ClientCertFinding(ClientCertOutcome.HANDSHAKE_FAILURE, None, detail)
        head = parse_http_head(out.response)
        if head is None:
            detail = "the handshake completed without a certificate, then " + (
                f"the connection failed ({out.error})" if out.error else "no HTTP answer"
            )
            self.add("client_cert.required", None, requirement, detail)
            return ClientCertFinding(ClientCertOutcome.NO_ANSWER, None, detail)
        cache = head.header("Cache-Control")
        if head.status == 496:
            detail = (
                "handshake completes without a certificate; the request is answered "
                + head.status_line
            )
            self.add("client_cert.required", True, requirement, detail)
            return ClientCertFinding(ClientCertOutcome.HTTP_496, 496, detail, cache)
        detail = f"served without a client certificate: {head.status_line}"
        self.add("client_cert.required", False, requirement, detail)
        return ClientCertFinding(ClientCertOutcome.SERVED, head.status, detail, cache)

    def plaintext(self) -> PlaintextFinding:
        head, detail = plaintext_probe(
            self.address, host_header=self.host_header, timeout=self.timeout
        )
        self.step()
        if head is None:
            self.add("plaintext.dropped", True, "plaintext dropped", f"no HTTP answer: {detail}")
            return PlaintextFinding(False, None, detail)
        location = head.header("Location")
        what = f"answered in plaintext: {head.status_line}" + (
            f" (redirect to {location})" if location else ""
        )
        self.add("plaintext.dropped", False, "plaintext dropped", what)
        return PlaintextFinding(True, head.status_line, what)

    def certificate(self) -> CertificateFinding | None:
        chain_der = self.chain_der or ((self.peer_leaf,) if self.peer_leaf else ())
        self.step()
        if not chain_der:
            for cid, req in _CERT_CHECKS:
                self.add(cid, None, req, "no certificate was obtained from the server")
            return None
        try:
            chain = tuple(x509.load_der_x509_certificate(d) for d in chain_der)
        except ValueError as exc:
            for cid, req in _CERT_CHECKS:
                self.add(cid, False, req, f"the server sent an unparsable certificate: {exc}")
            return None
        summaries = tuple(summarize_certificate(c, at=self.at) for c in chain)
        leaf, summary = chain[0], summaries[0]
        if summary.state == "valid":
            soon = " (renew soon)" if summary.days_left < 30 else ""
            self.add(
                "certificate.expiry",
                True,
                _CERT_CHECKS[0][1],
                f"valid until {summary.not_after:%Y-%m-%d}, {summary.days_left} days left{soon}",
            )
        else:
            self.add(
                "certificate.expiry",
                False,
                _CERT_CHECKS[0][1],
                f"{summary.state}: valid {summary.not_before:%Y-%m-%d} "
                f"to {summary.not_after:%Y-%m-%d}",
            )
        expected = self.sni
        matches: bool | None = None
        try:
            names, _source = fqdn_names(leaf, cn_fallback=True)
        except ValueError:
            names = ()
        shown = ", ".join(names) or "none"
        if expected is None:
            self.add(
                "certificate.fqdn",
                None,
                _CERT_CHECKS[1][1],
                "connected by IP address; give --server-name to compare "
                f"(certificate names: {shown})",
            )
        else:
            matches = (
                match_fqdn(names, normalise_fqdns([expected]), allow_wildcard=True) is not None
            )
            self.add(
                "certificate.fqdn",
                matches,
                _CERT_CHECKS[1][1],
                f"{expected} {'is' if matches else 'is not'} named by the certificate ({shown})",
            )
        validation: tuple[str, ...] | None = None
        if self.trust is None:
            self.add(
                "certificate.chain",
                None,
                _CERT_CHECKS[2][1],
                "give --env or --trust to validate the chain",
            )
        else:
            validator = ClientCertValidator(
                self.trust,
                ssp_fqdns=[expected] if expected else (),
                unsafe_skip_fqdn_check=expected is None,
                purpose=Purpose.SERVER,
                # Revocation is the CA's business at issuance time and needs network access
                # the scanner does not assume; the chain, purpose and key floor are checked.
                revocation=RevocationChecker(RevocationMode.DISABLED, unsafe_allow_disabled=True),
                cache_ttl=0,
            )
            result = validator.validate(chain_der[0], list(chain_der[1:]), at=self.at)
            validation = tuple(f"{f.code.value}: {f.message}" for f in result.failures)
            own = {FailureCode.FQDN_MISMATCH, FailureCode.EXPIRED, FailureCode.NOT_YET_VALID}
            chain_failures = [
                f"{f.code.value}: {f.message}" for f in result.failures if f.code not in own
            ]
            self.add(
                "certificate.chain",
                not chain_failures,
                _CERT_CHECKS[2][1],
                "; ".join(chain_failures)
                if chain_failures
                else f"chains to {self.trust.name!r} for serverAuth ({len(chain)} sent)",
            )
        return CertificateFinding(summaries, chain_der, expected, matches, validation)

    def metadata(self, tls12: bool) -> HttpFinding | None:
        requirement = "Cache-Control: no-store"
        if self.client_chain is None or not tls12:
            self.step()
            why = (
                "give --cert and --key to send GET /metadata"
                if self.client_chain is None
                else "TLS 1.2 is refused"
            )
            self.add("http.cache_control", None, requirement, why)
            return None
        out = self.full(TLS1_2, with_cert=True, request=self.request())
        self.step()
        if not out.completed:
            detail = f"the server refused the client certificate ({out.error})"
            self.add("http.cache_control", None, requirement, detail)
            return HttpFinding(self.metadata_path, None, None, detail)
        head = parse_http_head(out.response)
        if head is None:
            detail = f"no HTTP answer ({out.error or 'connection closed'})"
            self.add("http.cache_control", None, requirement, detail)
            return HttpFinding(self.metadata_path, None, None, detail)
        cache = head.header("Cache-Control")
        passed = cache is not None and "no-store" in cache.lower()
        self.add(
            "http.cache_control",
            passed,
            requirement,
            f"GET {self.metadata_path} answered {head.status_line}; Cache-Control: "
            + (cache if cache is not None else "absent"),
        )
        return HttpFinding(self.metadata_path, head.status, cache, head.status_line)

    def error_answer(self, tls12: bool, without_cert: ClientCertFinding) -> HttpFinding | None:
        """An unparsable request (with the client certificate): its error answer, and the
        496 answered without a certificate, must carry no-store like every answer."""
        requirement = "Cache-Control: no-store on errors"
        if self.client_chain is None or not tls12:
            self.step()
            why = (
                "give --cert and --key to send a request no server may parse"
                if self.client_chain is None
                else "TLS 1.2 is refused"
            )
            self.add("http.error_cache_control", None, requirement, why)
            return None
        request = malformed_request(
            host_header=self.host_header, path=self.metadata_path, now=int(self.at.timestamp())
        )
        out = self.full(TLS1_2, with_cert=True, request=request)
        self.step()
        head = parse_http_head(out.response) if out.completed else None
        seen: list[tuple[str, str | None]] = []
        if without_cert.status is not None:
            seen.append(
                (f"{without_cert.status} without a certificate", without_cert.cache_control)
            )
        if head is None:
            detail = f"no HTTP answer ({out.error or 'connection closed'})"
            finding = HttpFinding(self.metadata_path, None, None, detail)
        else:
            seen.append(
                (f"{head.status_line} to an unparsable request", head.header("Cache-Control"))
            )
            finding = HttpFinding(
                self.metadata_path, head.status, head.header("Cache-Control"), head.status_line
            )
        if head is not None and (head.status is None or head.status < 400):
            self.add(
                "http.error_cache_control",
                False,
                requirement,
                f"an unparsable request was served: {head.status_line}",
            )
            return finding
        missing = [what for what, cache in seen if cache is None or "no-store" not in cache.lower()]
        if not seen:
            passed: bool | None = True
            detail = (
                f"the unparsable request got no HTTP answer ({finding.detail}); nothing to cache"
            )
        else:
            passed = not missing
            shown = "; ".join(f"{what}: Cache-Control {cache or 'absent'}" for what, cache in seen)
            detail = shown if passed else f"without no-store: {', '.join(missing)} ({shown})"
        self.add("http.error_cache_control", passed, requirement, detail)
        return finding

    def wrong_fqdn(self, tls12: bool, metadata: HttpFinding | None) -> HttpFinding | None:
        """The metadata request with a valid chain that names another host: it must be
        refused (a failed handshake, 495, or Apache's 403)."""
        self.step()
        if self.wrong_fqdn_chain is None:
            return None
        requirement = "only the SSP's FQDN"
        if not tls12:
            self.add("client_cert.fqdn", None, requirement, "TLS 1.2 is refused")
            return None
        out = self.full(TLS1_2, with_cert=True, request=self.request(), chain=self.wrong_fqdn_chain)
        if not out.completed:
            detail = f"refused in the handshake ({out.error})"
            self.add("client_cert.fqdn", True, requirement, detail)
            return HttpFinding(self.metadata_path, None, None, detail)
        head = parse_http_head(out.response)
        if head is None or head.status is None:
            detail = f"no HTTP answer ({out.error or 'connection closed'})"
            self.add("client_cert.fqdn", None, requirement, detail)
            return HttpFinding(self.metadata_path, None, None, detail)
        finding = HttpFinding(
            self.metadata_path, head.status, head.header("Cache-Control"), head.status_line
        )
        passed: bool | None
        if head.status in (495, 403):
            passed, detail = True, f"refused: {head.status_line}"
        elif head.status < 400:
            passed, detail = (
                False,
                f"a certificate naming another host was served: {head.status_line}",
            )
        else:
            # Another refusal: the SSP certificate's own request may be refused the same
            # way (the scanner's Ssp-To is an example ASID), so it proves nothing here.
            passed = None
            ssp = f"{metadata.status}" if metadata is not None else "unknown"
            detail = (
                f"answered {head.status_line} (the SSP certificate's request got {ssp}): "
                "not attributable to the FQDN"
            )
        self.add("client_cert.fqdn", passed, requirement, detail)
        return finding


_CERT_CHECKS = (
    ("certificate.expiry", "valid server certificate"),
    ("certificate.fqdn", "server certificate names the endpoint (FQDN)"),
    ("certificate.chain", "server certificate chains to the Spine CAs"),
)


def _credential_files(
    tmp: Path,
    cert: CertificateSource,
    key: PrivateKeySource,
    password: bytes | str | None,
    policy: TLSPolicy,
    at: dt.datetime,
    name: str = "client",
) -> tuple[str, str]:
    """Check the client credential once (key match, validity, clientAuth) and write it out.

    ``ssl`` loads certificates only from files; the key is written unencrypted into a
    private (0700) directory that lives only as long as the scan.
    """
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _load_chain_into(
        probe,
        cert,
        key,
        password=password,
        purpose=ExtendedKeyUsageOID.CLIENT_AUTH,
        at=at,
        policy=policy,
    )
    chain = load_certificate_chain(cert)
    private_key = load_private_key(key, password=password)
    chain_path = tmp / f"{name}-chain.pem"
    key_path = tmp / f"{name}-key.pem"
    chain_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return str(chain_path), str(key_path)


def scan_endpoint(
    host: str,
    port: int,
    *,
    policy: TLSPolicy = SPINE_POLICY,
    trust: TrustStore | None = None,
    client_cert: CertificateSource | None = None,
    client_key: PrivateKeySource | None = None,
    password: bytes | str | None = None,
    wrong_fqdn_cert: CertificateSource | None = None,
    wrong_fqdn_key: PrivateKeySource | None = None,
    server_name: str | None = None,
    timeout: float = 5.0,
    metadata_path: str = "/metadata",
    progress: ScanProgress | None = None,
    at: dt.datetime | None = None,
) -> ScanReport:
    """Probe ``host:port`` and judge it against ``policy`` ([SEC]; docs/policy.md).

    Probes, each on its own connection and bounded by ``timeout``: SSLv2 and SSLv3 with
    raw hellos; TLS 1.0-1.3 with the system OpenSSL (raw hellos tell "refused the version"
    from "failed later"); every TLS 1.2 suite (at most :data:`MAX_CIPHER_PROBES` hellos);
    whether the server's order wins; a TLS 1.2 connection without a client certificate
    (handshake failure and HTTP 496 both pass); plaintext HTTP on the same port; the
    presented chain (expiry, FQDN, and with ``trust`` the chain); with a client
    certificate, ``GET metadata_path`` for ``Cache-Control: no-store`` and a request no
    server may parse, whose error answer (and the 496 without a certificate, if any) must
    carry no-store too; with a wrong-FQDN certificate, that it is refused.

    Args:
        host / port: the endpoint (one host; see :func:`parse_target`).
        policy: what to judge against (default: the GP Connect policy).
        trust: validate the presented chain against this store (e.g. ``TrustStore.spine("live")``).
        client_cert / client_key / password: the SSP-like client credential.
        wrong_fqdn_cert / wrong_fqdn_key: a credential from the same CAs whose certificate
            names another host (``spinepki pki init`` writes ``certs/wrong-fqdn.pem``):
            adds the ``client_cert.fqdn`` check that the endpoint refuses it.
        server_name: the FQDN for SNI and the certificate name check (default: ``host``
            unless it is an IP address).
        timeout: seconds for each connect and each read (at most 120).
        metadata_path: the path of the metadata request (the provider's FHIR root +
            ``/metadata``).
        progress: called as ``progress(step, done, total)`` after each step.
        at: the time certificates are judged at (default now).

    Raises:
        ScanError: the endpoint cannot be resolved or connected to.
        ConfigurationError: a bad port, timeout or path; only one of cert/key.
        CertificateLoadError / KeyLoadError / ServerCredentialError: an unusable client
            credential (checked before any probe).
    """
    if not 1 <= port <= 65535:
        raise ConfigurationError("port must be between 1 and 65535", source="port")
    if not 0 < timeout <= MAX_TIMEOUT:
        raise ConfigurationError(
            f"timeout must be in (0, {MAX_TIMEOUT:g}] seconds", source="timeout"
        )
    if not metadata_path.startswith("/") or any(c in metadata_path for c in "\r\n "):
        raise ConfigurationError(
            "the metadata path must start with / and hold no spaces", source="metadata_path"
        )
    if (client_cert is None) != (client_key is None):
        raise ServerCredentialError("give both a client certificate and its key, or neither")
    if (wrong_fqdn_cert is None) != (wrong_fqdn_key is None):
        raise ServerCredentialError("give both the wrong-FQDN certificate and its key, or neither")
    when = at or dt.datetime.now(dt.UTC)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spinepki-scan-") as tmp:
        os.chmod(tmp, 0o700)
        client_chain = wrong_chain = None
        if client_cert is not None and client_key is not None:
            client_chain = _credential_files(
                Path(tmp), client_cert, client_key, password, policy, when
            )
        if wrong_fqdn_cert is not None and wrong_fqdn_key is not None:
            wrong_chain = _credential_files(
                Path(tmp), wrong_fqdn_cert, wrong_fqdn_key, password, policy, when, "wrong-fqdn"
            )
        address = resolve_endpoint(host, port, timeout, error=ScanError)
        scan = _Scan(
            host,
            port,
            address,
            policy=policy,
            trust=trust,
            client_chain=client_chain,
            wrong_fqdn_chain=wrong_chain,
            server_name=server_name,
            timeout=timeout,
            metadata_path=metadata_path,
            at=when,
            progress=progress,
        )
        try:
            protocols = scan.protocols()
            scan.protocol_checks(protocols)
            tls12 = next(p.accepted for p in protocols if p.name == "TLSv1.2") is True
            if tls12:
                ciphers: CipherFinding | None = scan.ciphers()
            else:
                ciphers = None
                scan.step()
                scan.step()
                scan.add(
                    "ciphers.approved",
                    None,
                    "approved ciphers in server order",
                    "TLS 1.2 is refused",
                )
                scan.add(
                    "ciphers.server_order",
                    None,
                    "approved ciphers in server order",
                    "TLS 1.2 is refused",
                )
            client = scan.client_certificate(tls12)
            plain = scan.plaintext()
            cert = scan.certificate()
            metadata = scan.metadata(tls12)
            error = scan.error_answer(tls12, client)
            wrong = scan.wrong_fqdn(tls12, metadata)
        except (OSError, HelloParseError) as exc:
            # The endpoint answered the first connect, then went away mid-scan.
            raise ScanError(
                f"the endpoint stopped answering during the scan: {exc}", host=host, port=port
            ) from exc
    return ScanReport(
        host=host,
        port=port,
        server_name=scan.sni,
        policy=policy.name,
        started_at=when,
        duration=time.monotonic() - started,
        checks=tuple(scan.checks),
        protocols=protocols,
        ciphers=ciphers,
        client_certificate=client,
        plaintext=plain,
        certificate=cert,
        metadata=metadata,
        error_answer=error,
        wrong_fqdn=wrong,
    )
