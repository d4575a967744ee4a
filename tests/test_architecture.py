"""The import contract (pyproject.toml, docs/architecture.md) holds, and it has teeth.

``make lint`` runs ``lint-imports`` on the tree. These tests run it on a copy of the
packages with one bad import added, to show that each kind of break fails the contract,
and check the one rule import-linter cannot say in a forbidden contract (a wildcard can
only stand for a whole module name): the command line imports no private module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
# Import package name -> folder in the repository (pyproject.toml's package-dir).
PACKAGES = {"spinepki": "spinepki", "spinepki_cli": "cli", "spinepki_pytest": "spinepki_pytest"}


def _copy_tree(tmp_path: Path) -> Path:
    """The three packages and pyproject.toml, laid out under their import names."""
    for name, folder in PACKAGES.items():
        shutil.copytree(
            ROOT / folder, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH puts the copy ahead of the editable install (its finder comes after
    # sys.path), so grimp analyses the copy.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _add_import(tree: Path, module: str, line: str) -> None:
    path = tree.joinpath(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_unchanged_tree_keeps_every_contract(tmp_path: Path) -> None:
    """The copy itself passes, so the failures below come from the added import."""
    run = _lint_imports(_copy_tree(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        pytest.param(
            "spinepki.policy",
            "import spinepki.gate",
            "spinepki's packages import downwards only BROKEN",
            id="upward: policy imports the gate",
        ),
        pytest.param(
            "spinepki.scan._request",
            "import spinepki.testpki",
            "spinepki's packages import downwards only BROKEN",
            id="sideways: scan imports testpki again",
        ),
        pytest.param(
            "spinepki.gate._kinds",
            "import spinepki.gate._config",
            "No circles between the modules of any package BROKEN",
            id="circle: the gate's kinds import its configuration",
        ),
        pytest.param(
            "spinepki.testpki._builder",
            "import spinepki.revocation",
            "The test PKI is a leaf like trustme",
            id="leaf: testpki imports revocation",
        ),
        pytest.param(
            "spinepki.errors",
            "import spinepki_cli",
            "sit on the library, which never imports them BROKEN",
            id="upward: the library imports the CLI",
        ),
    ],
)
def test_a_bad_import_breaks_the_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    """Each kind of break the plan forbids fails lint-imports, naming the contract."""
    tree = _copy_tree(tmp_path)
    _add_import(tree, module, line)
    run = _lint_imports(tree)
    assert run.returncode == 1, run.stdout + run.stderr
    flat = " ".join(run.stdout.split())  # the report wraps long contract names
    assert broken in flat, run.stdout


def _private_imports(graph: grimp.ImportGraph) -> list[str]:
    """``importer -> imported`` for every import from the CLI of a private spinepki module."""
    bad = []
    for importer in sorted(graph.find_children("spinepki_cli") | {"spinepki_cli"}):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            parts = imported.split(".")
            private = any(p.startswith("_") and not p.startswith("__") for p in parts)
            if parts[0] == "spinepki" and private:
                bad.append(f"{importer} -> {imported}")
    return bad


def test_the_cli_imports_only_public_modules() -> None:
    """The command line is a client of the public API, like any other."""
    graph = grimp.build_graph("spinepki_cli", "spinepki", cache_dir=None)
    assert _private_imports(graph) == []


def test_the_cli_check_sees_a_private_import() -> None:
    """The check above would notice, e.g., cli/cert.py importing spinepki._loading again."""
    graph = grimp.ImportGraph()
    graph.add_module("spinepki_cli")
    graph.add_import(importer="spinepki_cli.cert", imported="spinepki._loading")
    graph.add_import(importer="spinepki_cli.cert", imported="spinepki.trust")
    graph.add_import(importer="spinepki_cli.main", imported="spinepki.gate._config")
    assert _private_imports(graph) == [
        "spinepki_cli.cert -> spinepki._loading",
        "spinepki_cli.main -> spinepki.gate._config",
    ]
