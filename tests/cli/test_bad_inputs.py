"""Every command, every kind of bad input: one line, the right exit code, JSON under --json.

The cases and the table in docs/cli.md come from tests/cli/bad_inputs.py; the page is
rendered from the same runs (tests/test_docs.py checks it is current).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli._helpers import leaf_commands, run
from tests.cli.bad_inputs import CASES, Outcome, make_workspace, run_cases


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-inputs")
    make_workspace(root)
    return root


@pytest.fixture(scope="module")
def outcomes(workspace: Path) -> dict[tuple[str, ...], Outcome]:
    return {o.case.args: o for o in run_cases(workspace)}


def _id(case: object) -> str:
    return f"{case.command}: {case.kind}"  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_one_line_one_code_nothing_else(
    outcomes: dict[tuple[str, ...], Outcome], case: object
) -> None:
    """Exit code as declared; stdout empty (no work began); stderr one `Error: ... [code]`
    line, no traceback; with --json the same error as one JSON object on stdout."""
    o = outcomes[case.args]  # type: ignore[attr-defined]
    assert o.text.exception is None, str(o.text)
    assert o.text.exit_code == o.case.exit_code, str(o.text)
    assert o.text.stdout == "", str(o.text)
    assert len(o.text.error_lines) == 1, str(o.text)
    line = o.text.error_lines[0]
    suffix = f" [{o.case.code}]"
    assert line.startswith("Error: "), str(o.text)
    assert line.endswith(suffix), str(o.text)
    assert "Traceback" not in o.text.stderr
    if o.as_json is not None:
        assert o.as_json.exit_code == o.case.exit_code, str(o.as_json)
        assert o.as_json.stderr == "", str(o.as_json)
        message = line.removeprefix("Error: ").removesuffix(suffix)
        assert json.loads(o.as_json.stdout) == {
            "error": {"code": o.case.code, "message": message}
        }, str(o.as_json)


def test_every_command_has_bad_input_cases() -> None:
    """The table covers every command there is (a new command needs its rows)."""
    covered = {case.command for case in CASES}
    assert {" ".join(path) for path in leaf_commands()} <= covered


def test_a_good_command_still_works_afterwards(
    workspace: Path, outcomes: dict[tuple[str, ...], Outcome], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After every bad input, a legitimate check in the same workspace passes."""
    assert outcomes
    monkeypatch.chdir(workspace)
    good = run(
        "cert",
        "check",
        "pki/certs/ssp.pem",
        "--trust",
        "pki/ca/trust-bundle.pem",
        "--crl",
        "pki/crl/crl-set.pem",
        "-q",
    )
    assert good.exit_code == 0, str(good)
    assert good.stdout == ""


#: Commands safe to fuzz in-process: they read files and exit (no servers, no scans of
#: whatever a random HOST:PORT resolves to, no demo run).
FUZZED = {
    ("cert", "check"): ("--chain", "--env", "--trust", "--fqdn", "--crl", "--at", "--purpose",
                        "--profile", "--require-policy", "--json", "-q", "--format"),
    ("cert", "show"): ("--at", "--format", "--json", "-q"),
    ("pki", "show"): ("--json", "-q"),
    ("pki", "issue"): ("--fqdn", "--days", "--not-before", "--key-type", "--san", "--json"),
    ("pki", "revoke"): ("--reason", "--json"),
    ("tls", "show"): ("--profile", "--json"),
    ("tls", "config"): ("--cert", "--key", "--trust", "--env", "--crl", "--dhparam", "--listen",
                        "--upstream", "--server-name", "--profile", "-o", "--no-check-files"),
}  # fmt: skip
FILES = ("pki", "pki/certs/ssp.pem", "pki/certs/ssp.key.pem", "pki/crl/sub-ca.crl", "dir",
         "empty.pem", "notes.txt", "huge.pem", "missing.pem", "-", "nginx", "ssp")  # fmt: skip


@st.composite
def _command_lines(draw: st.DrawFn) -> list[str]:
    path = draw(st.sampled_from(sorted(FUZZED)))
    token = st.one_of(
        st.sampled_from(FUZZED[path]),
        st.sampled_from(FILES),
        st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
    )
    return [*path, *draw(st.lists(token, max_size=8))]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace of its own: fuzzed `pki issue/revoke` lines may change its PKI."""
    root = tmp_path_factory.mktemp("fuzzed-lines")
    make_workspace(root)
    return root


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=_command_lines())
def test_any_command_line_gets_an_answer_in_the_style(scratch: Path, line: list[str]) -> None:
    """Whatever the arguments: exit 0, 1 or 2, never a traceback; an exit 2 is one
    `Error: ... [code]` line (the general rule behind the table's cases)."""
    previous = Path.cwd()
    os.chdir(scratch)
    try:
        ran = run(*[t for t in line if not t.startswith("https://")], input=b"")
    finally:
        os.chdir(previous)
    assert ran.exception is None, str(ran)
    assert ran.exit_code in {0, 1, 2}, str(ran)
    if ran.exit_code == 2 and "--json" not in line and "json" not in line:
        assert len(ran.error_lines) == 1, str(ran)
        assert ran.error_lines[0].startswith("Error: "), str(ran)
        assert ran.error_lines[0].endswith("]"), str(ran)
