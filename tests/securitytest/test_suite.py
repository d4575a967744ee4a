"""run_security_test against real loopback servers: the reference provider and weak ones."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from spinepki.demo._callers import DEMO_ASID, DEMO_ROOT
from spinepki.errors import ConfigurationError
from spinepki.provider import ProviderServer
from spinepki.securitytest import (
    CHECKS,
    SCHEMA,
    STEPS,
    InteractionPaths,
    ProbeLimits,
    ProbeTarget,
    SecurityReport,
    SecurityTestError,
    run_security_test,
)
from spinepki.trust import TrustStore
from tests.securitytest.conftest import Written
from tests.securitytest.servers import RawTLSServer, fixed_handler, gp_response

pytestmark = pytest.mark.network

FAST = ProbeLimits(max_connections=20, max_seconds=4.0, trickle_interval=0.1)

#: What the suite finds in the reference provider today (see docs/security-test.md,
#: "Findings"). When one is fixed, this test fails and the set shrinks.
KNOWN_FINDINGS: set[str] = set()


def _test_provider(written: Written, provider: ProviderServer, **kw: Any) -> SecurityReport:
    """The suite against the reference provider, as the SSP (the demo ASID unless ``kw``
    says otherwise), with the fast limits."""
    options: dict[str, Any] = {"asid": DEMO_ASID, "limits": FAST, **kw}
    return run_security_test(
        provider.url + DEMO_ROOT, client_cert=written.cert, client_key=written.key, **options
    )


@pytest.fixture(scope="module")
def provider_report(written: Written, provider: ProviderServer) -> SecurityReport:
    steps: list[tuple[str, int, int]] = []
    report = _test_provider(written, provider, progress=lambda *a: steps.append(a))
    assert [s[0] for s in steps] == list(STEPS)
    assert steps[-1][1:] == (len(STEPS), len(STEPS))
    return report


class TestReferenceProvider:
    def test_checks_pass_except_known_findings(self, provider_report: SecurityReport) -> None:
        """Every check passes against the hardened provider except the reported findings."""
        report = provider_report
        assert [c.id for c in report.checks] == [c[0] for c in CHECKS]
        assert report.testable
        assert report.undetermined == (), [c.detail for c in report.undetermined]
        assert {c.id for c in report.failed} == KNOWN_FINDINGS, [
            (c.id, c.detail) for c in report.failed
        ]
        assert report.passed is not bool(KNOWN_FINDINGS)

    def test_findings_are_precise(self, provider_report: SecurityReport) -> None:
        r = provider_report
        # Fixed in the provider: a bare LF in a request head is refused (400, no-store).
        assert r.check("headers.bare_lf").passed is True
        assert r.check("headers.bare_lf").detail == "400"
        # Fixed in the gate: exp/iat bounded to 64 bits and the clock, JSON depth to 32.
        assert r.check("token.huge_numbers").passed is True
        assert r.check("token.nested_json").passed is True
        # Fixed in the provider: anycorn's own 400/431 answers say no-store too.
        assert r.check("http.no_store").passed is True
        assert "carry no-store" in r.check("http.no_store").detail

    def test_dos_probes_pass(self, provider_report: SecurityReport) -> None:
        """The header deadline (1 s here) cuts the trickle; idle connections starve nothing."""
        assert provider_report.check("dos.slow_headers").passed is True
        assert "closed the connection after 1." in provider_report.check("dos.slow_headers").detail
        idle = provider_report.check("dos.idle_connections")
        assert idle.passed is True
        assert "20 idle connections held (10 after" in idle.detail

    def test_json_form(self, provider_report: SecurityReport) -> None:
        d = provider_report.as_dict()
        assert d["schema"] == SCHEMA
        assert set(d) == {
            "schema",
            "target",
            "started_at",
            "duration_seconds",
            "limits",
            "passed",
            "testable",
            "summary",
            "checks",
            "exchanges",
        }
        assert d["target"]["root"] == DEMO_ROOT
        assert d["summary"]["failed"] == len(KNOWN_FINDINGS)
        assert set(d["checks"][0]) == {"id", "passed", "category", "rule", "detail"}
        assert set(d["exchanges"][0]) == {
            "check",
            "variant",
            "request",
            "status",
            "outcome",
            "cache_control",
            "elapsed_ms",
        }
        # no token ever appears in the report
        assert "Bearer" not in str(d)
        assert "eyJ" not in str(d)
        with pytest.raises(KeyError):
            provider_report.check("nope")

    def test_with_trust_verifies_the_server(
        self, written: Written, provider: ProviderServer
    ) -> None:
        """With a trust store the server certificate is verified (IP host: no name check);
        a wrong ASID makes the baseline fail, so the refusal checks are not claimed."""
        report = _test_provider(
            written, provider, trust=TrustStore.from_paths(written.trust), asid="123456789123"
        )
        assert not report.testable
        baseline = report.check("baseline.valid_request")
        assert baseline.passed is False
        assert "answered 400" in baseline.detail
        assert report.check("headers.missing").passed is None
        assert report.check("dos.idle_connections").passed is None
        assert report.check("method.override").passed is None
        assert report.check("headers.crlf_injection").passed is None
        assert report.check("headers.bare_lf").passed is None


class TestWeakServer:
    @pytest.mark.parametrize(
        "check_id",
        [
            "headers.missing",
            "headers.duplicate",
            "headers.oversized",
            "headers.crlf_injection",
            "headers.bare_lf",
            "path.other_interaction",
            "path.traversal",
            "path.normalisation",
            "method.override",
            "token.alg_confusion",
            "token.encoding",
            "token.oversized",
            "token.nested_json",
            "token.huge_numbers",
            "http.trace",
            "http.options",
            "dos.slow_headers",
            "dos.idle_connections",
            "leak.error_details",
            "leak.version_banner",
            "http.no_store",
            "http.smuggling",
            "path.encoded_delimiters",
            "method.case",
            "revocation.freshness",
            "dos.slow_body",
            "dos.one_source",
            "http.error_outcome",
        ],
    )
    def test_weakness_found(self, weak_report: SecurityReport, check_id: str) -> None:
        assert weak_report.check(check_id).passed is False, weak_report.check(check_id).detail

    def test_details_name_the_weakness(self, weak_report: SecurityReport) -> None:
        report = weak_report
        assert report.check("baseline.valid_request").passed is True
        assert "500" in report.check("headers.missing").detail
        assert "echo" in report.check("headers.crlf_injection").detail
        assert "echoing the request" in report.check("http.trace").detail
        assert "Access-Control-Allow-Origin *" in report.check("http.options").detail
        assert "Python traceback" in report.check("leak.error_details").detail
        assert "Server: Foo/1.2" in report.check("leak.version_banner").detail
        assert "X-Powered-By: Bar/3.4" in report.check("leak.version_banner").detail
        assert "still open after 1.5 s" in report.check("dos.slow_headers").detail
        assert "not answered within" in report.check("dos.idle_connections").detail


class TestOtherServers:
    def _run(self, written: Written, url: str, **kw: object) -> SecurityReport:
        return run_security_test(
            url,
            client_cert=written.cert,
            client_key=written.key,
            timeout=1.0,
            limits=ProbeLimits(max_connections=2, max_seconds=1.0, trickle_interval=0.2),
            **kw,  # type: ignore[arg-type]
        )

    def test_closing_server_cannot_be_tested(self, written: Written) -> None:
        """A server that closes every connection after the handshake: no baseline."""
        with RawTLSServer(written.server_context(), fixed_handler(b"", read=False)) as srv:
            report = self._run(written, srv.url)
        assert not report.testable
        assert "no answer" in report.check("baseline.valid_request").detail
        # TRACE/OPTIONS are judged anyway; a closed connection is a refusal
        assert report.check("http.trace").passed is True
        assert report.check("dos.slow_headers").passed is True
        assert report.check("leak.error_details").passed is None
        assert report.check("http.no_store").passed is None

    def test_strict_refuser(self, written: Written) -> None:
        """A server answering 401 to everything: the baseline is not served."""
        with RawTLSServer(written.server_context(), fixed_handler(gp_response(401))) as srv:
            report = self._run(written, srv.url)
        assert not report.testable

    def test_unreachable(self, written: Written) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with pytest.raises(SecurityTestError, match="cannot connect"):
            self._run(written, f"https://127.0.0.1:{port}/")

    def test_unresolvable(self, written: Written) -> None:
        with pytest.raises(SecurityTestError, match="cannot resolve"):
            self._run(written, "https://no-such-host.invalid/")

    def test_handshake_refused(self, written: Written) -> None:
        """A plain TCP listener that closes at once: the handshake fails, nothing is tested."""
        with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]
            listener.settimeout(2)
            with pytest.raises(SecurityTestError, match="TLS handshake"):
                # the listener never accepts; the backlog completes TCP, TLS gets no answer
                self._run(written, f"https://127.0.0.1:{port}/")

    @pytest.mark.parametrize(
        ("kw", "match"),
        [
            ({"timeout": 0}, "timeout"),
            ({"timeout": 61}, "timeout"),
            ({"asid": "12 34"}, "ASID"),
        ],
    )
    def test_bad_arguments(self, written: Written, kw: dict[str, object], match: str) -> None:
        with pytest.raises(ConfigurationError, match=match):
            run_security_test(
                "https://127.0.0.1:1/",
                client_cert=written.cert,
                client_key=written.key,
                **kw,  # type: ignore[arg-type]
            )

    def test_custom_interactions(self, written: Written, provider: ProviderServer) -> None:
        """interaction_paths picks the valid and the other interaction."""
        paths = InteractionPaths(
            valid=ProbeTarget(
                "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1",
                "/Patient/1",
                "patient/*.read",
            ),
            other=ProbeTarget(
                "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1",
                "/metadata",
                "organization/*.read",
            ),
        )
        report = _test_provider(written, provider, interaction_paths=paths)
        assert "(Patient)" in report.check("baseline.valid_request").detail
        assert report.check("path.traversal").passed is True
        assert report.check("path.normalisation").passed is True
