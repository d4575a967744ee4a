"""`spinepki demo`: the end-to-end smoke test behind `make demo`."""

from __future__ import annotations

import json

from click.testing import CliRunner
from spinepki_cli.main import cli

from spinepki.testpki import KeyType, TestPKI
from spinepki.testpki.demo import Caller, run_demo


def test_demo_passes_and_prints_the_verdict(runner: CliRunner) -> None:
    """Every scripted caller gets the outcome the policy requires; exit 0."""
    result = runner.invoke(cli, ["demo", "--key-type", "ec-p256", "--dir", "out"])
    assert result.exit_code == 0, result.output
    assert "13 of 13 behaved as the policy requires." in result.output
    assert "rogue: revoked" in result.output


def test_demo_json(runner: CliRunner) -> None:
    """--json reports every outcome with the rule it proves."""
    result = runner.invoke(cli, ["demo", "--key-type", "ec-p256", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["as_required"] == data["total"] == len(data["outcomes"])
    dhe = next(o for o in data["outcomes"] if o["caller"] == "SSP (DHE only)")
    assert dhe["expected"] == "refused"  # EC provider key: TLS 1.2 has no DHE-ECDSA suite


def test_demo_exit_1_when_a_caller_misbehaves(runner: CliRunner, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A caller whose expectation is wrong makes the demo fail with exit 1."""
    import spinepki_cli.demo as demo_mod

    wrong = (Caller("liar", "expects the foreign CA to get in", "foreign", True, "none"),)
    monkeypatch.setattr(
        demo_mod, "run_demo", lambda pki, progress: run_demo(pki, wrong, progress=progress)
    )
    result = runner.invoke(cli, ["demo", "--key-type", "ec-p256"])
    assert result.exit_code == 1
    assert "0 of 1 behaved" in result.output


def test_run_demo_with_rsa_accepts_dhe() -> None:
    """With an RSA provider key the DHE-only SSP gets in (ffdhe2048 loaded)."""
    pki = TestPKI.create(key_type=KeyType.RSA_2048)
    outcomes = run_demo(pki)
    dhe = next(o for o in outcomes if o.caller.name == "SSP (DHE only)")
    assert dhe.result.accepted
    assert dhe.as_required
    assert all(o.as_required for o in outcomes), [
        o.as_dict() for o in outcomes if not o.as_required
    ]
