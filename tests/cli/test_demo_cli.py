"""`spinepki demo`: the end-to-end smoke test behind `make demo` (and `make test`)."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner
from spinepki_cli.main import cli

from spinepki.demo._callers import Caller
from spinepki.demo._demo import DemoEnvironment, demo_environment, run_demo
from spinepki.testpki import KeyType

pytest.importorskip("anycorn")
pytestmark = pytest.mark.network


def test_demo_passes_and_prints_the_verdict(runner: CliRunner) -> None:
    """Every scripted caller gets the outcome the policy requires; exit 0, table printed."""
    result = runner.invoke(cli, ["demo", "--key-type", "ec-p256", "--dir", "out"])
    assert result.exit_code == 0, result.output
    assert "30 of 30 behaved as the policy requires." in result.output
    for column in ("caller", "tried", "expected", "outcome", "status/alert", "reason"):
        assert column in result.output
    for name in (
        "rogue: revoked (CRL)",
        "rogue: revoked (OCSP)",
        "rogue: wrong FQDN",
        "no certificate (496 mode)",
        "rogue: invalid FHIR in token",
    ):
        assert name in result.output
    assert "TLSV1_ALERT_PROTOCOL_VERSION" in result.output  # the TLS 1.1 caller's alert
    assert "Generating a Spine-shaped test PKI" in result.output  # progress (stderr)


def test_demo_json(runner: CliRunner) -> None:
    """--json reports every outcome with what was expected and what happened."""
    result = runner.invoke(cli, ["demo", "--key-type", "ec-p256", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["as_required"] == data["total"] == len(data["outcomes"])
    by_name = {o["caller"]: o for o in data["outcomes"]}
    dhe = by_name["SSP (DHE only)"]
    assert dhe["expected"] == "TLS refusal"  # EC provider key: TLS 1.2 has no DHE-ECDSA suite
    ssp = data["outcomes"][0]
    assert (ssp["status"], ssp["cache_control"]) == (200, "no-store")
    assert by_name["rogue: no certificate"]["alert"]
    assert by_name["no certificate (496 mode)"]["status"] == 496
    assert by_name["rogue: invalid FHIR in token"]["spine_code"] == "INVALID_RESOURCE"
    assert set(data["providers"]) == {"require", "http-496"}


def test_demo_exit_1_when_a_caller_misbehaves(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller whose expectation is wrong makes the demo fail with exit 1."""
    wrong = (
        Caller("liar", "expects the foreign CA to get in", "none", 200, certificate="foreign"),
    )
    original = DemoEnvironment.play
    monkeypatch.setattr(
        DemoEnvironment, "play", lambda self, callers=None, **kw: original(self, wrong, **kw)
    )
    result = runner.invoke(cli, ["demo", "--key-type", "ec-p256"])
    assert result.exit_code == 1
    assert "0 of 1 behaved" in result.output
    assert "✗ liar" in result.output


def test_demo_keep_prints_urls_and_curl_then_stops(runner: CliRunner) -> None:
    """--keep prints the servers' URLs and ready-to-paste curl lines, then stops cleanly."""
    result = runner.invoke(
        cli, ["demo", "--key-type", "ec-p256", "--dir", "pki", "--keep", "--keep-seconds", "0.2"]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "CRL/OCSP responder     http://127.0.0.1:" in out
    assert "provider (require )" in out
    assert "provider (http-496)" in out
    curl_lines = [line for line in out.splitlines() if line.startswith("curl ")]
    assert len(curl_lines) == 5
    assert all("--cacert" in line and "--resolve" in line for line in curl_lines)
    assert any("--cert" in line and "certs/ssp.chain.pem" in line for line in curl_lines)
    assert "Stopping the servers." in out


def test_keep_stops_on_ctrl_c(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while --keep waits stops the servers cleanly and keeps exit 0."""
    import spinepki_cli.demo as demo_mod

    class Interrupting:
        def clear(self) -> None:
            pass

        def wait(self, timeout: float) -> bool:
            raise KeyboardInterrupt

    monkeypatch.setattr(demo_mod, "KEEP_STOP", Interrupting())
    result = runner.invoke(cli, ["demo", "--key-type", "ec-p256", "--keep", "--json"])
    assert result.exit_code == 0, result.output
    assert "Stopping the servers." in result.output


def test_environment_curl_and_servers() -> None:
    """The environment's curl commands name the PKI files and its providers answer."""
    with demo_environment(key_type=KeyType.EC_P256) as env:
        commands = dict(env.curl_commands(now=1_750_000_000))
        assert len(commands) == 5
        first = commands["the SSP reads /metadata (200)"]
        assert str(env.directory / "certs/ssp.key.pem") in first
        outcomes = env.play()
        assert all(o.as_required for o in outcomes), [
            o.as_dict() for o in outcomes if not o.as_required
        ]


def test_run_demo_with_rsa_accepts_dhe() -> None:
    """With RSA (what Spine uses) every caller behaves and the DHE-only SSP gets in."""
    started = time.perf_counter()
    outcomes = run_demo(key_type=KeyType.RSA_2048)
    assert time.perf_counter() - started < 30
    dhe = next(o for o in outcomes if o.caller.name == "SSP (DHE only)")
    assert dhe.status == 200
    assert all(o.as_required for o in outcomes), [
        o.as_dict() for o in outcomes if not o.as_required
    ]


def test_demo_shape_middleware_json(runner: CliRunner) -> None:
    """--shape middleware plays the callers against GateASGIMiddleware under anycorn: its
    column of the parity matrix, every cell as the policy requires or documented."""
    result = runner.invoke(
        cli, ["demo", "--key-type", "ec-p256", "--shape", "middleware", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["shapes"] == ["middleware"]
    assert {o["shape"] for o in data["outcomes"]} == {"middleware"}
    by_name = {o["caller"]: o for o in data["outcomes"]}
    assert by_name["rogue: wrong FQDN"]["status"] == 495
    assert by_name["rogue: malformed request"]["difference"] == 10
    assert data["providers"] == {}


def test_demo_several_shapes_print_the_matrix(runner: CliRunner) -> None:
    """Two shapes: the matrix, callers as rows and shapes as columns, with its legend."""
    result = runner.invoke(
        cli, ["demo", "--key-type", "ec-p256", "--shape", "serve", "--shape", "middleware"]
    )
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.startswith("caller"))
    assert header.split()[-2:] == ["middleware", "serve"]
    assert "°10 HTTP 400 from anycorn" in result.output
    assert "cells behaved as the policy requires" in result.output


def test_demo_keep_lists_the_shapes_endpoints(runner: CliRunner) -> None:
    """--keep with a shape other than serve lists its endpoints (and no curl lines)."""
    result = runner.invoke(
        cli,
        [
            "demo",
            "--key-type",
            "ec-p256",
            "--shape",
            "middleware",
            "--keep",
            "--keep-seconds",
            "0.1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "middleware (require ) https://127.0.0.1:" in result.output
    assert not [line for line in result.output.splitlines() if line.startswith("curl ")]


@pytest.mark.usefixtures("without_anycorn")
def test_without_the_extra_the_demo_fails_first(runner: CliRunner) -> None:
    """No anycorn: one line naming the extra, exit 2; no PKI written, nothing started."""
    from pathlib import Path

    from tests.cli._helpers import run

    ran = run("demo", "--key-type", "ec-p256", "--dir", "out")
    assert ran.exit_code == 2
    assert ran.error_lines == [
        "Error: anycorn: the reference provider needs anycorn: "
        "pip install 'spinepki[provider]' [config]"
    ]
    assert not Path("out").exists() or not any(Path("out").iterdir())
