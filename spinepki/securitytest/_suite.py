"""``run_security_test``: bounded probes of one deployment, one check per property."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import json
import secrets
import socket
import ssl
import time
from collections.abc import Callable

from cryptography.x509.oid import ExtendedKeyUsageOID

from spinepki._endpoint import resolve_endpoint
from spinepki._loading import CertificateSource, PrivateKeySource
from spinepki.errors import ConfigurationError
from spinepki.policy import SPINE_POLICY
from spinepki.revocation import DEFAULT_MAX_STALENESS
from spinepki.securitytest._dos import hold_connections, slow_body, slow_headers
from spinepki.securitytest._http import MAX_RESPONSE_BYTES, Client, Response, parse_response
from spinepki.securitytest._judge import (
    Verdict,
    banner,
    combine,
    expect_refusal,
    is_operation_outcome,
    leaks,
    no_store,
    resource_type,
)
from spinepki.securitytest._report import (
    A01,
    A03,
    A05,
    A07,
    DOS,
    Exchange,
    ProbeLimits,
    SecurityCheck,
    SecurityReport,
    SecurityTestError,
)
from spinepki.securitytest._requests import (
    TO_ASID,
    Header,
    InteractionPaths,
    RequestFactory,
    b64url,
)
from spinepki.securitytest._target import Target, parse_url
from spinepki.securitytest._tls import Credential, garbage_record, renegotiation, session_lifetime
from spinepki.tls import _load_chain_into, client_context
from spinepki.trust import TrustStore

__all__ = ["CHECKS", "STEPS", "SecurityProgress", "run_security_test"]

#: Longest per-request timeout accepted (seconds).
MAX_TIMEOUT = 60.0
#: Nesting depth of the deeply nested claims (arrays; objects use a third of it).
NESTING_DEPTH = 2000
#: Attempts (half a second apart) of the valid request after each probe before the
#: server is said to have stopped serving (one, once it has stopped).
STILL_SERVING_ATTEMPTS = 2

SecurityProgress = Callable[[str, int, int], None]
"""``progress(step, done, total)``: called after each step of :data:`STEPS`."""

PRECONDITION = "Precondition"

#: Every check, in report order: (id, category, the rule it proves).
CHECKS: tuple[tuple[str, str, str], ...] = (
    (
        "baseline.valid_request",
        PRECONDITION,
        "a valid SSP request is served 2xx (otherwise refusals prove nothing)",
    ),
    (
        "headers.missing",
        A07,
        "GP Connect §1.1/§1.2: a missing SSP header or Authorization is answered 400 "
        "with an OperationOutcome, never 500",
    ),
    (
        "headers.duplicate",
        A07,
        "GP Connect §1.1: a duplicated SSP header is answered 400 with an OperationOutcome",
    ),
    ("headers.oversized", DOS, "an oversized header is refused (4xx or close), never 2xx/500"),
    (
        "headers.crlf_injection",
        A03,
        "CR, NUL or encoded CR/LF in a request is refused or inert: no split response, no echo",
    ),
    (
        "headers.bare_lf",
        A03,
        "a bare LF inside a header value is refused, not taken as a line break "
        "(request-smuggling differential)",
    ),
    (
        "http.smuggling",
        A05,
        "RFC 9112 §6.1: Content-Length with Transfer-Encoding is refused (or at least the "
        "request hidden in the body is never answered)",
    ),
    (
        "path.encoded_delimiters",
        A01,
        "an encoded /, \\, NUL, %, . or malformed escape in the path is refused, so the "
        "server and any proxy in front see the same path",
    ),
    (
        "method.case",
        A01,
        "RFC 9110 §9.1: method names are case-sensitive; a lower-case get is not served",
    ),
    (
        "http.upgrade",
        A05,
        "an Upgrade (websocket, h2c) is never switched to (no 101) and never fails (5xx)",
    ),
    (
        "path.other_interaction",
        A01,
        "GP Connect §2: another interaction's path under this interaction ID is answered 400",
    ),
    (
        "path.traversal",
        A01,
        "dot segments (/../, %2e%2e) and %2F in the path never reach another resource",
    ),
    (
        "path.normalisation",
        A01,
        "double slashes, ; parameters, case changes and a trailing slash do not match "
        "the interaction",
    ),
    (
        "method.override",
        A01,
        "method-override headers do not change the matched interaction",
    ),
    (
        "token.alg_confusion",
        A07,
        "GP Connect §3.1: only alg none with an empty signature is accepted "
        "(HS256, RS256, signed none refused)",
    ),
    (
        "token.encoding",
        A07,
        "GP Connect §3.1: padding, +// and missing parts in the JWT are refused",
    ),
    ("token.oversized", DOS, "an oversized JWT is refused, never 2xx/500"),
    ("token.nested_json", DOS, "deeply nested JSON in a JWT claim is refused, never 2xx/500"),
    (
        "token.huge_numbers",
        A07,
        "huge or overflowing exp/iat numbers are refused (400/422), never 2xx/500",
    ),
    ("http.trace", A05, "TRACE is refused and never echoes the request"),
    (
        "http.options",
        A05,
        "OPTIONS does not fail (500), echo the request or open CORS to any origin",
    ),
    (
        "tls.renegotiation",
        DOS,
        "a client-initiated renegotiation after the handshake is refused",
    ),
    (
        "tls.garbage_record",
        DOS,
        "a garbage TLS record after the handshake ends that connection only",
    ),
    (
        "revocation.freshness",
        A07,
        "TLS sessions (tickets) live no longer than the revocation bound, and a revoked "
        "credential is refused on fresh and resumed sessions",
    ),
    (
        "dos.slow_body",
        DOS,
        "a request refused on its certificate, headers or token is answered without "
        "waiting for its body",
    ),
    (
        "dos.slow_headers",
        DOS,
        "a request head trickled a byte at a time is cut before the probe's cap",
    ),
    (
        "dos.idle_connections",
        DOS,
        "a valid request is answered in time while idle connections are held",
    ),
    (
        "dos.one_source",
        DOS,
        "one source address cannot hold every connection the server allows",
    ),
    (
        "leak.error_details",
        A05,
        "error responses show no stack trace, exception class name or file path",
    ),
    (
        "leak.version_banner",
        A05,
        "no Server version, X-Powered-By or similar product banner on any response",
    ),
    (
        "http.no_store",
        A05,
        "GP Connect §7: Cache-Control: no-store on every response, errors included",
    ),
    (
        "http.error_outcome",
        A05,
        "GP Connect: every error response is a FHIR OperationOutcome, the server's own "
        "(bad framing, bad escapes, oversized heads) included",
    ),
    (
        "service.still_serving",
        DOS,
        "after every probe the valid request is still served (a probe after which it is "
        "not is named)",
    ),
)
_CATEGORY = {cid: (cat, rule) for cid, cat, rule in CHECKS}

#: The steps of a run, in order; ``progress`` is called once after each.
STEPS = (
    "valid request",
    "missing headers",
    "duplicate headers",
    "oversized headers",
    "CR/LF injection",
    "bare LF",
    "CL+TE smuggling",
    "encoded delimiters",
    "method case",
    "upgrade",
    "other interaction's path",
    "path traversal",
    "path normalisation",
    "method override",
    "alg confusion",
    "token encoding",
    "oversized token",
    "nested JSON",
    "huge numbers",
    "TRACE",
    "OPTIONS",
    "renegotiation",
    "garbage record",
    "revocation freshness",
    "slow body",
    "slow headers",
    "idle connections",
)

_INJECTED = "X-Spinepki-Injected"


class _Run:
    """One run's state; ``run`` does the work in :data:`STEPS` order."""

    def __init__(
        self,
        target: Target,
        client: Client,
        factory: RequestFactory,
        limits: ProbeLimits,
        progress: SecurityProgress | None,
        *,
        credential: Credential | None = None,
        revoked: Client | None = None,
        other: Client | None = None,
        max_staleness: float = DEFAULT_MAX_STALENESS.total_seconds(),
    ) -> None:
        self.target = target
        self.client = client
        self.factory = factory
        self.limits = limits
        self.progress = progress
        self.credential = credential
        self.revoked = revoked
        self.other = other
        self.max_staleness = max_staleness
        self.done = 0
        self.checks: dict[str, SecurityCheck] = {}
        self.exchanges: list[Exchange] = []
        self.seen: list[tuple[str, Response]] = []
        self.baseline: Response | None = None
        self.marker = secrets.token_hex(8)
        self.stopped_after: list[str] = []
        self.serving_checks = 0

    # -- plumbing ------------------------------------------------------------------------

    def step(self) -> None:
        self.done += 1
        name = STEPS[self.done - 1]
        if self.testable and name != STEPS[0]:
            self.still_serving(name)
        if self.progress is not None:
            self.progress(name, self.done, len(STEPS))

    def still_serving(self, after: str) -> None:
        """The valid request again (a few tries, a second apart): did the probe stop it?"""
        self.serving_checks += 1
        attempts = 1 if self.stopped_after else STILL_SERVING_ATTEMPTS
        for attempt in range(attempts):
            if attempt:
                time.sleep(0.5)
            response = self.send("service.still_serving", f"after {after}", self.factory.valid())
            if response.answered and response.status is not None and response.status < 300:
                return
        self.stopped_after.append(after)

    def add(self, check_id: str, verdict: Verdict) -> None:
        category, rule = _CATEGORY[check_id]
        self.checks[check_id] = SecurityCheck(check_id, verdict[0], category, rule, verdict[1])

    def send(self, check_id: str, variant: str, request: bytes) -> Response:
        response = self.client.exchange(request)
        self.record(check_id, variant, request, response)
        return response

    def record(self, check_id: str, variant: str, request: bytes, response: Response) -> None:
        line = request.split(b"\r\n", 1)[0].decode("latin-1")
        shown = line.removesuffix(" HTTP/1.1")
        self.exchanges.append(
            Exchange(
                check_id,
                variant,
                (shown[:197] + "...") if len(shown) > 200 else shown,
                response.status,
                response.outcome,
                response.header("Cache-Control"),
                response.elapsed,
            )
        )
        if response.answered:
            self.seen.append((f"{check_id} ({variant})", response))

    @property
    def testable(self) -> bool:
        return self.baseline is not None

    def untested(self, check_id: str) -> None:
        self.add(check_id, (None, "not tested: the valid request was not served"))

    def refusals(
        self,
        check_id: str,
        variants: list[tuple[str, bytes]],
        *,
        gp_connect_400: bool = False,
    ) -> None:
        if not self.testable:
            self.untested(check_id)
        else:
            results = [
                (
                    name,
                    expect_refusal(self.send(check_id, name, req), gp_connect_400=gp_connect_400),
                )
                for name, req in variants
            ]
            self.add(check_id, combine(results))
        self.step()

    def echo(self, response: Response) -> str | None:
        """Why the response shows our injected header or marker, or None."""
        if response.split:
            return "a second HTTP response followed the first (response splitting)"
        if any(name.lower() == _INJECTED.lower() for name, _ in response.headers):
            return f"the response carries the injected {_INJECTED} header"
        if self.marker in response.head.decode("iso-8859-1"):
            return "the injected value was echoed into the response head"
        if self.marker.encode() in response.body:
            return "the injected value was echoed in the response body"
        return None

    # -- the probes ----------------------------------------------------------------------

    def baseline_request(self) -> None:
        response = self.send("baseline.valid_request", "valid", self.factory.valid())
        probe = self.factory.paths.valid
        what = f"{probe.method} {self.factory.path(probe.path)}"
        if response.answered and response.status is not None and 200 <= response.status < 300:
            self.baseline = response
            kind = resource_type(response)
            self.add(
                "baseline.valid_request",
                (True, f"{what} answered {response.status}" + (f" ({kind})" if kind else "")),
            )
        elif response.answered:
            self.add(
                "baseline.valid_request",
                (
                    False,
                    f"{what} answered {response.status}, not 2xx: check the URL (the service "
                    "root), --asid and the client certificate",
                ),
            )
        else:
            self.add("baseline.valid_request", (False, f"{what}: no answer ({response.error})"))
        self.step()

    def headers(self) -> None:
        f = self.factory
        names = ["Ssp-TraceID", "Ssp-From", "Ssp-To", "Ssp-InteractionID", "Authorization"]
        self.refusals(
            "headers.missing",
            [(f"missing {n}", f.valid(replace={n: None})) for n in names],
            gp_connect_400=True,
        )
        probe = f.paths.valid
        duplicates: list[Header] = [
            ("Ssp-TraceID", "6f1c2b8e-3c1d-4c55-9a55-0b0f5f0c2a11"),
            ("Ssp-From", "200000000115"),
            ("Ssp-To", f.to_asid),
            ("Ssp-InteractionID", probe.interaction),
            ("Authorization", f"Bearer {f.token(probe.scope)}"),
        ]
        self.refusals(
            "headers.duplicate",
            [(f"duplicate {name}", f.valid(extra=[(name, value)])) for name, value in duplicates],
            gp_connect_400=True,
        )
        self.refusals(
            "headers.oversized",
            [
                ("10 KiB Ssp-TraceID", f.valid(replace={"Ssp-TraceID": "a" * 10240})),
                (
                    "10 KiB Ssp-InteractionID",
                    f.valid(replace={"Ssp-InteractionID": probe.interaction + "x" * 10240}),
                ),
                ("64 KiB extra header", f.valid(extra=[("X-Spinepki-Pad", "p" * 65536)])),
            ],
        )
        self.crlf()
        self.bare_lf()

    def crlf(self) -> None:
        check = "headers.crlf_injection"
        if not self.testable:
            self.untested(check)
            self.step()
            return
        f = self.factory
        iid = f.paths.valid.interaction
        injected = f"{_INJECTED}: {self.marker}"
        base = f.path(f.paths.valid.path)
        encoded = f"%0d%0a{_INJECTED}:%20{self.marker}"
        variants: list[tuple[str, bytes, bool]] = [
            (
                "bare CR in Ssp-InteractionID",
                f.valid(replace={"Ssp-InteractionID": f"{iid}\r{injected}"}),
                True,
            ),
            ("NUL in Ssp-TraceID", f.valid(replace={"Ssp-TraceID": f"{self.marker}\x00x"}), True),
            ("%0d%0a in the path", f.valid(path=base + encoded), False),
            ("%0d%0a in the query", f.valid(path=f"{base}?_format=json{encoded}"), False),
        ]
        results: list[tuple[str, Verdict]] = []
        for name, request, must_refuse in variants:
            response = self.send(check, name, request)
            echoed = self.echo(response)
            if echoed is not None:
                results.append((name, (False, echoed)))
            elif must_refuse:
                results.append((name, expect_refusal(response)))
            elif response.answered and response.status is not None and response.status >= 500:
                results.append((name, (False, f"{response.status} (a server error)")))
            elif response.answered:
                results.append((name, (True, f"{response.status}, nothing injected")))
            else:
                results.append((name, expect_refusal(response)))
        self.add(check, combine(results))
        self.step()

    def bare_lf(self) -> None:
        check = "headers.bare_lf"
        if not self.testable:
            self.untested(check)
            self.step()
            return
        f = self.factory
        iid = f.paths.valid.interaction
        request = f.valid(replace={"Ssp-InteractionID": f"{iid}\n{_INJECTED}: {self.marker}"})
        response = self.send(check, "bare LF in Ssp-InteractionID", request)
        echoed = self.echo(response)
        if echoed is not None:
            verdict: Verdict = (False, echoed)
        else:
            ok, note = expect_refusal(response)
            if ok is False and response.status is not None and response.status < 300:
                note = (
                    f"served {response.status}: the server took the bare LF as a line break, "
                    f"so the rest of the value became a header of its own"
                )
            verdict = (ok, note)
        self.add(check, verdict)
        self.step()

    def smuggling(self) -> None:
        """CL + TE, the request hidden in the body: never a second response."""
        check = "http.smuggling"
        if not self.testable:
            self.untested(check)
            self.step()
            return
        f = self.factory
        hidden = f.valid(extra=[(_INJECTED, self.marker)])
        body = b"0\r\n\r\n" + hidden
        results: list[tuple[str, Verdict]] = []
        for name, te in (
            ("CL + TE", "Transfer-Encoding: chunked"),
            ("CL + TE (ChUnKeD)", "Transfer-Encoding: ChUnKeD"),
            ("CL + TE (tab)", "Transfer-Encoding:\tchunked"),
            ("CL + TE (obs-fold)", "Transfer-Encoding:\r\n chunked"),
        ):
            head = f.valid(method="POST").removesuffix(b"\r\n\r\n")
            head = head.replace(b"Connection: close", b"Connection: keep-alive")
            request = head + f"\r\nContent-Length: 5\r\n{te}\r\n\r\n".encode("latin-1") + body
            response = self.send(check, name, request)
            if response.split or self.marker.encode() in response.trailing:
                results.append((name, (False, "the request hidden in the body was answered")))
            else:
                results.append((name, expect_refusal(response)))
        self.add(check, combine(results))
        self.step()

    def encoded_delimiters(self) -> None:
        f = self.factory
        v = f.path(f.paths.valid.path)
        root = f.target.root
        last = v.rsplit("/", 1)
        encoded_root = "".join(
            f"%{b:02X}" if ch == "/" else ch for ch, b in ((c, ord(c)) for c in v)
        )
        self.refusals(
            "path.encoded_delimiters",
            [
                ("%2F before the last segment", f.valid(path=f"{last[0]}%2F{last[1]}")),
                ("a fully encoded path", f.valid(path=encoded_root)),
                ("%5C", f.valid(path=f"{last[0]}%5C{last[1]}")),
                ("%00", f.valid(path=f"{v}%00")),
                ("%252F (double encoding)", f.valid(path=f"{last[0]}%252F{last[1]}")),
                ("%C0%AE (overlong dot)", f.valid(path=f"{root}/%C0%AE{f.paths.valid.path}")),
                ("%ZZ (malformed)", f.valid(path=f"{v}%ZZ")),
                ("a trailing %", f.valid(path=f"{v}%")),
            ],
        )

    def method_case(self) -> None:
        self.refusals(
            "method.case",
            [
                ("get", self.factory.valid(method="get")),
                ("Get", self.factory.valid(method="Get")),
            ],
        )

    def upgrade(self) -> None:
        check = "http.upgrade"
        f = self.factory
        variants = [
            (
                "Upgrade: websocket",
                f.valid(
                    extra=[
                        ("Upgrade", "websocket"),
                        ("Sec-WebSocket-Version", "13"),
                        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                    ]
                ).replace(b"Connection: close", b"Connection: Upgrade"),
            ),
            ("Upgrade: h2c", f.valid(extra=[("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABk")])),
        ]
        results: list[tuple[str, Verdict]] = []
        for name, request in variants:
            response = self.send(check, name, request)
            if response.status == 101:
                results.append((name, (False, "101: the server switched protocols")))
            elif response.answered and response.status is not None and response.status >= 500:
                results.append((name, (False, f"{response.status} (a server error)")))
            elif response.answered:
                results.append((name, (True, f"{response.status}, no switch")))
            else:
                results.append((name, expect_refusal(response)))
        self.add(check, combine(results))
        self.step()

    def tls_probes(self) -> None:
        """A renegotiation and a garbage record: each judged by the server's reaction and
        by whether it serves the valid request right after (the critical finding)."""
        if self.credential is None:  # pragma: no cover - always given by run_security_test
            verdict: Verdict = (None, "not tested: no credential")
        else:
            verdict = renegotiation(self.client, self.credential, self.client.timeout)
        self.add("tls.renegotiation", self.serves_after("tls.renegotiation", verdict))
        self.step()
        verdict = garbage_record(self.client)
        self.add("tls.garbage_record", self.serves_after("tls.garbage_record", verdict))
        self.step()

    def serves_after(self, check: str, verdict: Verdict) -> Verdict:
        """``verdict``, failed when the valid request is not served right after."""
        if not self.testable or verdict[0] is None:
            return verdict
        response = self.send(check, "valid request after it", self.factory.valid())
        if response.answered and response.status is not None and response.status < 300:
            return verdict[0], f"{verdict[1]}; the next valid request was served"
        why = f"answered {response.status}" if response.answered else response.error
        return False, f"{verdict[1]}; then the server stopped serving ({why})"

    def freshness(self) -> None:
        check = "revocation.freshness"
        ok, note = session_lifetime(self.client, self.max_staleness)
        results: list[tuple[str, Verdict]] = [("session lifetime", (ok, note))]
        if self.revoked is not None:
            results.append(("revoked credential", self.revoked_refused()))
        verdict = combine(results)
        if self.revoked is None and verdict[0] is True:
            verdict = (True, f"{note}; no revoked test credential given (--revoked-cert)")
        self.add(check, verdict)
        self.step()

    def revoked_refused(self) -> Verdict:
        """The revoked credential: refused on a fresh session, and on a resumed one."""
        assert self.revoked is not None
        request = self.factory.valid()
        try:
            tls = self.revoked.connect()
        except OSError:
            return True, "refused in the TLS handshake"
        with tls:
            session = tls.session
        results: list[tuple[str, Verdict]] = []
        fresh = self.revoked.exchange(request)
        self.record("revocation.freshness", "revoked, fresh session", request, fresh)
        results.append(("fresh session", expect_refusal(fresh)))
        if session is not None:
            try:
                resumed_tls = self.revoked.connect(session=session)
            except OSError:
                results.append(("resumed session", (True, "refused in the TLS handshake")))
            else:
                with resumed_tls:
                    resumed_tls.sendall(request)
                    resumed_tls.settimeout(self.client.timeout)
                    raw = b""
                    with contextlib.suppress(OSError):
                        while len(raw) < MAX_RESPONSE_BYTES and (chunk := resumed_tls.recv(65536)):
                            raw += chunk
                answer = parse_response(raw, eof=True) or Response("closed")
                self.record("revocation.freshness", "revoked, resumed session", request, answer)
                results.append(("resumed session", expect_refusal(answer)))
        return combine(results)

    def slow_body_probe(self) -> None:
        check = "dos.slow_body"
        if not self.testable:
            self.untested(check)
            self.step()
            return
        f = self.factory
        declared = [("Content-Length", "1000")]
        refused_token = "not.a-jwt."  # noqa: S105 - a token the gate must refuse, not a secret
        head = f.valid(method="POST", token=refused_token, extra=declared)
        results: list[tuple[str, Verdict]] = []
        ok, note, response = slow_body(self.client, head, timeout=self.client.timeout)
        if response is not None:
            self.record(check, "refused token, no body", head, response)
        results.append(("refused token", (ok, note)))
        if self.revoked is not None:
            head = f.valid(method="POST", extra=declared)
            ok, note, response = slow_body(self.revoked, head, timeout=self.client.timeout)
            if response is not None:
                self.record(check, "revoked credential, no body", head, response)
            if response is not None and response.outcome == "error":
                ok, note = True, "refused in the TLS handshake"
            results.append(("revoked credential", (ok, note)))
        self.add(check, combine(results))
        self.step()

    def paths(self) -> None:
        f = self.factory
        valid, other = f.paths.valid, f.paths.other
        root = f.target.root
        v = f.path(valid.path)
        o = other.path
        self.refusals("path.other_interaction", [(o, f.valid(path=root + o))])
        encoded_other = o[1:].replace("/", "%2F")
        self.refusals(
            "path.traversal",
            [
                ("/../", f.valid(path=f"{v}/..{o}")),
                ("%2e%2e", f.valid(path=f"{v}/%2e%2e{o}")),
                ("%2F..%2F", f.valid(path=f"{v}%2F..%2F{encoded_other}")),
                (
                    "dot segments back to the path",
                    f.valid(path=f"{root}{o}/%2e%2e/%2e%2e{valid.path}"),
                ),
                ("..;/ (path parameter)", f.valid(path=f"{v}/..;{o}")),
            ],
        )
        segments = valid.path.rsplit("/", 1)
        upper_last = (
            f"{segments[0]}/{segments[1].upper()}"
            if segments[1].upper() != segments[1]
            else valid.path.swapcase()
        )
        variants = [
            ("double slash", f.valid(path=f"{root}/{valid.path}")),
            (";parameter", f.valid(path=f"{v};spinepki=1")),
            ("upper-case segment", f.valid(path=root + upper_last)),
            ("trailing slash", f.valid(path=f"{v}/")),
            ("trailing /.", f.valid(path=f"{v}/.")),
        ]
        if root and root.swapcase() != root:
            variants.append(("case-changed root", f.valid(path=root.swapcase() + valid.path)))
        self.refusals("path.normalisation", variants)

    def method_override(self) -> None:
        check = "method.override"
        if not self.testable or self.baseline is None:
            self.untested(check)
            self.step()
            return
        f = self.factory
        wanted = (self.baseline.status, resource_type(self.baseline))
        results: list[tuple[str, Verdict]] = []
        for name, value in (
            ("X-HTTP-Method-Override", "DELETE"),
            ("X-HTTP-Method", "DELETE"),
            ("X-Method-Override", "PUT"),
            ("X-HTTP-Method-Override", "POST"),
        ):
            variant = f"GET with {name}: {value}"
            response = self.send(check, variant, f.valid(extra=[(name, value)]))
            got = (response.status, resource_type(response))
            if got == wanted:
                results.append((variant, (True, f"{response.status}, unchanged")))
            elif response.status == 400:
                results.append((variant, (True, "400 (refused)")))
            else:
                results.append(
                    (
                        variant,
                        (
                            False if response.answered else None,
                            f"answered {response.status} ({got[1] or 'no FHIR resource'}) "
                            f"instead of the GET's {wanted[0]}"
                            if response.answered
                            else (response.error or response.outcome),
                        ),
                    )
                )
        variant = "POST with X-HTTP-Method-Override: GET"
        request = f.valid(
            method="POST", extra=[("X-HTTP-Method-Override", "GET"), ("Content-Length", "0")]
        )
        results.append((variant, expect_refusal(self.send(check, variant, request))))
        self.add(check, combine(results))
        self.step()

    def tokens(self) -> None:
        f = self.factory
        scope = f.paths.valid.scope
        claims = json.dumps(f.claims(scope), separators=(",", ":")).encode()
        good = f.token(scope)
        head, payload, _ = good.split(".")
        signature = b64url(secrets.token_bytes(32))

        def with_token(token: str) -> bytes:
            return f.valid(token=token)

        self.refusals(
            "token.alg_confusion",
            [
                (
                    "HS256 with a signature",
                    with_token(
                        f.token(scope, header={"alg": "HS256", "typ": "JWT"}, signature=signature)
                    ),
                ),
                (
                    "RS256 with an empty signature",
                    with_token(f.token(scope, header={"alg": "RS256", "typ": "JWT"})),
                ),
                ("none with a signature", with_token(f"{head}.{payload}.{signature}")),
                (
                    "alg None (capitalised)",
                    with_token(f.token(scope, header={"alg": "None", "typ": "JWT"})),
                ),
                ("no alg", with_token(f.token(scope, header={"typ": "JWT"}))),
            ],
        )
        self.refusals(
            "token.encoding",
            [
                ("padded base64", with_token(f"{head}.{_padded(claims)}.")),
                (
                    "+ and / (standard base64)",
                    with_token(f"{head}.{_standard_alphabet(f, scope)}."),
                ),
                ("two parts (no trailing dot)", with_token(f"{head}.{payload}")),
                (
                    "raw JSON parts",
                    with_token('{"alg":"none","typ":"JWT"}.' + claims.decode() + "."),
                ),
            ],
        )
        self.refusals(
            "token.oversized",
            [
                ("16 KiB token", with_token(f.token(scope, spinepki_pad="p" * 12288))),
                ("64 KiB token", with_token(f.token(scope, spinepki_pad="p" * 49152))),
            ],
        )
        arrays = "[" * NESTING_DEPTH + "]" * NESTING_DEPTH
        depth = NESTING_DEPTH // 3
        objects = '{"a":' * depth + "1" + "}" * depth
        self.refusals(
            "token.nested_json",
            [
                (f"{NESTING_DEPTH} nested arrays", with_token(_raw_claim(f, scope, arrays))),
                (f"{depth} nested objects", with_token(_raw_claim(f, scope, objects))),
            ],
        )
        now = int(time.time())
        big = 2**64
        self.refusals(
            "token.huge_numbers",
            [
                ("exp 1e400 (float overflow)", with_token(_numbers(f, scope, "1e400", str(now)))),
                (
                    "iat and exp beyond 64 bits",
                    with_token(_numbers(f, scope, str(big + 300), str(big))),
                ),
                ("iat of 5000 digits", with_token(_numbers(f, scope, str(now + 300), "9" * 5000))),
                (
                    "negative exp beyond 64 bits",
                    with_token(_numbers(f, scope, str(-big), str(-big - 300))),
                ),
            ],
        )

    def trace(self) -> None:
        check = "http.trace"
        f = self.factory
        path = f.path(f.paths.valid.path)
        marker = ("X-Spinepki-Trace", self.marker)
        variants = [
            ("TRACE with SSP headers", f.valid(method="TRACE", extra=[marker])),
            ("bare TRACE", f.render("TRACE", path, [marker])),
        ]
        results: list[tuple[str, Verdict]] = []
        for name, request in variants:
            response = self.send(check, name, request)
            if response.answered and self.marker.encode() in response.body:
                results.append((name, (False, f"{response.status} echoing the request")))
            else:
                results.append((name, expect_refusal(response)))
        self.add(check, combine(results))
        self.step()

    def options(self) -> None:
        check = "http.options"
        f = self.factory
        path = f.path(f.paths.valid.path)
        origin = f"https://{self.marker}.spinepki-probe.invalid"
        cors: list[Header] = [("Origin", origin), ("Access-Control-Request-Method", "DELETE")]
        variants = [
            ("OPTIONS with SSP headers", f.valid(method="OPTIONS", extra=cors)),
            ("bare OPTIONS", f.render("OPTIONS", path, cors)),
            ("OPTIONS *", f.render("OPTIONS", "*", cors)),
        ]
        results: list[tuple[str, Verdict]] = []
        for name, request in variants:
            response = self.send(check, name, request)
            allow_origin = response.header("Access-Control-Allow-Origin")
            if not response.answered:
                results.append((name, expect_refusal(response)))
            elif response.status is not None and response.status >= 500:
                results.append((name, (False, f"{response.status} (a server error)")))
            elif allow_origin is not None and allow_origin.strip() in (origin, "*"):
                results.append(
                    (name, (False, f"CORS open: Access-Control-Allow-Origin {allow_origin}"))
                )
            elif self.marker.encode() in response.body:
                results.append((name, (False, f"{response.status} echoing the request")))
            else:
                allow = response.header("Allow")
                results.append(
                    (name, (True, f"{response.status}" + (f" (Allow: {allow})" if allow else "")))
                )
        self.add(check, combine(results))
        self.step()

    def dos(self) -> None:
        ok, detail = slow_headers(self.client, self.factory.valid(), self.limits)
        self.add("dos.slow_headers", (ok, detail))
        self.step()
        if not self.testable:
            self.untested("dos.idle_connections")
            self.untested("dos.one_source")
        else:
            request = self.factory.valid()
            hold = hold_connections(self.client, request, self.limits, self.other)
            if hold.response is not None:
                self.record("dos.idle_connections", "valid request", request, hold.response)
            self.add("dos.idle_connections", hold.verdict)
            self.add("dos.one_source", hold.source)
        self.step()

    def summaries(self) -> None:
        errors = [(name, r) for name, r in self.seen if r.status is not None and r.status >= 400]
        leaked = [
            f"{name} {r.status}: {', '.join(found)}" for name, r in errors if (found := leaks(r))
        ]
        if leaked:
            self.add(
                "leak.error_details",
                (False, f"{len(leaked)} error response(s) leak — " + "; ".join(leaked[:5])),
            )
        elif errors:
            self.add(
                "leak.error_details", (True, f"{len(errors)} error responses seen, none leaks")
            )
        else:
            self.add("leak.error_details", (None, "no error response was seen"))
        banners = sorted({b for _, r in self.seen for b in banner(r)})
        total = len(self.seen)
        if banners:
            self.add("leak.version_banner", (False, "; ".join(banners[:5])))
        elif total:
            servers = sorted({s for _, r in self.seen if (s := r.header("Server"))})
            note = f" (Server: {', '.join(servers)}, no version)" if servers else ""
            self.add("leak.version_banner", (True, f"{total} responses seen, no banner{note}"))
        else:
            self.add("leak.version_banner", (None, "no response was seen"))
        missing = [f"{name} {r.status}" for name, r in self.seen if not no_store(r)]
        if missing:
            self.add(
                "http.no_store",
                (
                    False,
                    f"{len(missing)} of {total} responses lack no-store — "
                    + "; ".join(missing[:6])
                    + ("; …" if len(missing) > 6 else ""),
                ),
            )
        elif total:
            self.add("http.no_store", (True, f"all {total} responses seen carry no-store"))
        else:
            self.add("http.no_store", (None, "no response was seen"))
        bare = [f"{name} {r.status}" for name, r in errors if not is_operation_outcome(r)]
        if bare:
            self.add(
                "http.error_outcome",
                (
                    False,
                    f"{len(bare)} of {len(errors)} error responses are not an OperationOutcome "
                    "— " + "; ".join(bare[:6]) + ("; …" if len(bare) > 6 else ""),
                ),
            )
        elif errors:
            self.add(
                "http.error_outcome",
                (True, f"all {len(errors)} error responses are OperationOutcomes"),
            )
        else:
            self.add("http.error_outcome", (None, "no error response was seen"))
        if not self.testable:
            self.untested("service.still_serving")
        elif self.stopped_after:
            self.add(
                "service.still_serving",
                (
                    False,
                    "the valid request was not served after: " + ", ".join(self.stopped_after),
                ),
            )
        else:
            self.add(
                "service.still_serving",
                (True, f"served after every probe ({self.serving_checks} checks)"),
            )

    def run(self) -> tuple[SecurityCheck, ...]:
        self.baseline_request()
        self.headers()
        self.smuggling()
        self.encoded_delimiters()
        self.method_case()
        self.upgrade()
        self.paths()
        self.method_override()
        self.tokens()
        self.trace()
        self.options()
        self.tls_probes()
        self.freshness()
        self.slow_body_probe()
        self.dos()
        self.summaries()
        return tuple(self.checks[cid] for cid, _, _ in CHECKS)


def _padded(claims: bytes) -> str:
    """The claims in base64url with ``=`` padding (extended until padding is needed)."""
    while len(claims) % 3 == 0:
        claims = claims[:-1] + b" }"
    return base64.urlsafe_b64encode(claims).decode("ascii")


def _standard_alphabet(f: RequestFactory, scope: str) -> str:
    """Claims whose standard base64 holds ``+`` or ``/`` (tried over a few paddings)."""
    for shift in range(6):
        raw = json.dumps(
            f.claims(scope, spinepki_fill="x" * shift + "?>?>?>~~~"), separators=(",", ":")
        ).encode()
        text = base64.b64encode(raw).decode("ascii").rstrip("=")
        if "+" in text or "/" in text:
            return text
    raise AssertionError("no shift gave + or /")  # pragma: no cover - '?>' always does


def _raw_claim(f: RequestFactory, scope: str, raw_value: str) -> str:
    claims = json.dumps(f.claims(scope, spinepki_nested=0), separators=(",", ":"))
    payload = claims.replace('"spinepki_nested":0', f'"spinepki_nested":{raw_value}')
    return f.token(scope, payload=payload.encode())


def _numbers(f: RequestFactory, scope: str, exp: str, iat: str) -> str:
    claims = json.dumps(f.claims(scope, exp=-1, iat=-2), separators=(",", ":"))
    payload = claims.replace('"exp":-1', f'"exp":{exp}').replace('"iat":-2', f'"iat":{iat}')
    return f.token(scope, payload=payload.encode())


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _context(
    client_cert: CertificateSource,
    client_key: PrivateKeySource,
    password: bytes | str | None,
    trust: TrustStore | None,
    host: str,
    *,
    check: bool = True,
) -> ssl.SSLContext:
    """The client context: the credential checked once (unless ``check`` is False: a
    revoked test credential may be expired too); the server verified with ``trust``."""
    if trust is not None:
        return client_context(
            trust,
            cert=client_cert,
            key=client_key,
            password=password,
            check_hostname=not _is_ip(host),
            unsafe_skip_credential_checks=not check,
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _load_chain_into(
        ctx,
        client_cert,
        client_key,
        password=password,
        purpose=ExtendedKeyUsageOID.CLIENT_AUTH,
        at=None,
        policy=SPINE_POLICY,
        check=check,
    )
    return ctx


def _loopback_second(address: tuple[str, int]) -> str | None:
    """For a target on 127.0.0.0/8, another loopback address to test from (if bindable)."""
    try:
        ip = ipaddress.ip_address(address[0])
    except ValueError:
        return None
    if not (isinstance(ip, ipaddress.IPv4Address) and ip.is_loopback):
        return None
    candidate = "127.0.0.3" if address[0] == "127.0.0.2" else "127.0.0.2"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((candidate, 0))
    except OSError:
        return None
    return candidate


def run_security_test(
    url: str,
    *,
    client_cert: CertificateSource,
    client_key: PrivateKeySource,
    password: bytes | str | None = None,
    trust: TrustStore | None = None,
    asid: str | None = None,
    interaction_paths: InteractionPaths | None = None,
    timeout: float = 5.0,
    limits: ProbeLimits | None = None,
    progress: SecurityProgress | None = None,
    revoked_cert: CertificateSource | None = None,
    revoked_key: PrivateKeySource | None = None,
    revoked_password: bytes | str | None = None,
    max_staleness: float = DEFAULT_MAX_STALENESS.total_seconds(),
    second_source: str | None = None,
) -> SecurityReport:
    """Probe the deployment at ``url`` (its service root) and judge each property.

    Every probe is one request on its own TLS connection (presenting ``client_cert``)
    and bounded by ``timeout``, except the two DoS probes, bounded by ``limits``. About
    70 requests in all, to one host; see ``docs/security-test.md`` for each probe.

    Args:
        url: ``https://HOST[:PORT]/service/root`` — one host (see :func:`parse_url`).
        client_cert / client_key / password: the SSP-like client credential (must carry
            clientAuth and be in date).
        trust: verify the server's certificate against this store (and its name, unless
            the host is an IP address); None: the server is not verified.
        asid: the provider's ASID for ``Ssp-To`` (default: GP Connect's example ASID).
        interaction_paths: the valid and the other interaction (default: metadata and a
            Patient read).
        timeout: seconds for each connect and each response (at most 60).
        limits: bounds of the DoS probes (default :class:`ProbeLimits`).
        progress: called as ``progress(step, done, total)`` after each step.
        revoked_cert / revoked_key / revoked_password: optional, a test credential the
            CA has revoked (published at least ``max_staleness`` ago): it must be refused
            on fresh and resumed TLS sessions, and before its request body is read.
        max_staleness: the revocation bound (seconds) session tickets must not outlive
            (default 300, spinepki's ``DEFAULT_MAX_STALENESS``).
        second_source: a second local address of this machine: while the idle probe
            holds every connection this address can get, a valid request from there must
            be served (one source cannot lock others out). Default for a loopback
            target: 127.0.0.2 when it can be bound; otherwise that check is undetermined.

    Raises:
        ConfigurationError: a refused URL, a bad timeout, ASID, max_staleness or
            second_source, or only one of revoked_cert and revoked_key.
        CertificateLoadError / KeyLoadError / ServerCredentialError: an unusable credential.
        SecurityTestError: the host cannot be reached, or refuses the TLS handshake with
            the credential.
    """
    target = parse_url(url)
    if not 0 < timeout <= MAX_TIMEOUT:
        raise ConfigurationError(
            f"timeout must be in (0, {MAX_TIMEOUT:g}] seconds", source="timeout"
        )
    to_asid = TO_ASID if asid is None else asid
    if not to_asid.isascii() or not to_asid.isalnum():
        raise ConfigurationError("the ASID must be alphanumeric", source="asid")
    if (
        isinstance(max_staleness, bool)
        or not isinstance(max_staleness, int | float)
        or not 0 < max_staleness <= 86400
    ):
        raise ConfigurationError("must be in (0, 86400] seconds", source="max_staleness")
    if second_source is not None and not _is_ip(second_source):
        raise ConfigurationError("must be an IP address of this machine", source="second_source")
    if (revoked_cert is None) != (revoked_key is None):
        raise ConfigurationError("give both revoked_cert and revoked_key", source="revoked_cert")
    limits = limits or ProbeLimits()
    paths = interaction_paths or InteractionPaths()
    context = _context(client_cert, client_key, password, trust, target.host)
    credential = Credential(client_cert, client_key, password)
    revoked_context = (
        _context(revoked_cert, revoked_key, revoked_password, trust, target.host, check=False)
        if revoked_cert is not None and revoked_key is not None
        else None
    )
    started_at = dt.datetime.now(dt.UTC)
    started = time.monotonic()
    address = resolve_endpoint(target.host, target.port, timeout, error=SecurityTestError)
    client = Client(
        address, context, server_name=None if _is_ip(target.host) else target.host, timeout=timeout
    )
    try:
        client.connect().close()
    except OSError as exc:
        raise SecurityTestError(
            f"the TLS handshake with the client certificate failed: {exc}",
            host=target.host,
            port=target.port,
        ) from exc
    source = second_source or _loopback_second(address)
    run = _Run(
        target,
        client,
        RequestFactory(target, paths, to_asid=to_asid),
        limits,
        progress,
        credential=credential,
        revoked=client.with_context(revoked_context) if revoked_context is not None else None,
        other=client.from_source(source) if source is not None else None,
        max_staleness=float(max_staleness),
    )
    checks = run.run()
    return SecurityReport(
        url=target.url,
        host=target.host,
        port=target.port,
        root=target.root,
        started_at=started_at,
        duration=time.monotonic() - started,
        limits=limits,
        checks=checks,
        exchanges=tuple(run.exchanges),
    )
