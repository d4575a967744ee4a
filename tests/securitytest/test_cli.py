"""`spinepki security-test`, in-process with CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from spinepki_cli.main import cli

from spinepki.demo._callers import DEMO_ASID, DEMO_ROOT
from spinepki.provider import ProviderServer
from tests.securitytest.conftest import Written
from tests.securitytest.servers import RawTLSServer

pytestmark = pytest.mark.network

FAST = ["--max-connections", "5", "--max-seconds", "3"]


def _args(written: Written, url: str, *extra: str) -> list[str]:
    return ["security-test", url, "--cert", str(written.cert), "--key", str(written.key), *extra]


class TestCommand:
    def test_provider_table_exit_0(self, written: Written, provider: ProviderServer) -> None:
        """The reference provider passes every probe (its four findings were fixed): exit 0,
        a ✓ table."""
        result = CliRunner().invoke(
            cli, _args(written, provider.url + DEMO_ROOT, "--asid", DEMO_ASID, *FAST)
        )
        assert result.exit_code == 0, result.output
        assert "✓ baseline.valid_request" in result.output
        assert "✓ token.huge_numbers" in result.output
        assert "✗" not in result.output
        assert "A01 Broken Access Control" in result.output

    def test_json_and_trust(self, written: Written, provider: ProviderServer) -> None:
        result = CliRunner().invoke(
            cli,
            _args(
                written,
                provider.url + DEMO_ROOT,
                "--asid",
                DEMO_ASID,
                "--trust",
                str(written.trust),
                "--json",
                *FAST,
            ),
        )
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert data["schema"] == "spinepki.security-test/1"
        assert data["limits"]["max_connections"] == 5
        assert data["testable"] is True

    def test_not_testable_exit_2(self, written: Written, provider: ProviderServer) -> None:
        """A wrong ASID: the baseline is refused, nothing can be proven: exit 2."""
        result = CliRunner().invoke(
            cli, _args(written, provider.url + DEMO_ROOT, "--asid", "123456789123", *FAST)
        )
        assert result.exit_code == 2, result.output
        assert "COULD NOT TEST" in result.output

    def test_all_passed_exit_0(self, written: Written, monkeypatch: pytest.MonkeyPatch) -> None:
        """Exit 0 when every check passes (the report's verdict is what decides)."""
        from spinepki.securitytest import SecurityReport

        monkeypatch.setattr(SecurityReport, "passed", property(lambda self: True))
        monkeypatch.setattr(SecurityReport, "testable", property(lambda self: True))
        from tests.securitytest.servers import fixed_handler, gp_response

        with RawTLSServer(
            written.server_context(), fixed_handler(gp_response(200, {"resourceType": "X"}))
        ) as srv:
            result = CliRunner().invoke(cli, _args(written, srv.url, *FAST, "--max-seconds", "1"))
        assert result.exit_code == 0, result.output
        assert "PASSED" in result.output

    @pytest.mark.parametrize(
        ("extra", "url", "message"),
        [
            ((), "https://10.0.0.0/24", "ranges"),
            ((), "https://10.0.0.1-9/", "ranges"),
            (("--max-connections", "501"), "https://127.0.0.1:1/", "max_connections"),
            (("--max-seconds", "999"), "https://127.0.0.1:1/", "max_seconds"),
            (("--env", "int", "--trust", "x"), "https://127.0.0.1:1/", "either --env or --trust"),
            (("--password-env", "SPINEPKI_NO_SUCH_VAR"), "https://127.0.0.1:1/", "not set"),
        ],
    )
    def test_refused_exit_2(
        self, written: Written, extra: tuple[str, ...], url: str, message: str, tmp_path: object
    ) -> None:
        args = _args(written, url, *extra)
        if "--trust" in extra:
            args[args.index("x")] = str(written.trust)
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2
        assert message in result.output

    def test_unreachable_exit_2(self, written: Written) -> None:
        result = CliRunner().invoke(cli, _args(written, "https://127.0.0.1:1/", "--env", "int"))
        assert result.exit_code == 2
        assert "cannot connect" in result.output
