"""The test tree's own layout: every folder a package, imported one way.

pytest's default ``prepend`` import mode puts the first folder above the last
``__init__.py`` (the repository root) on ``sys.path``, so ``tests.<area>._helpers`` imports the
same way from a test, a conftest, a benchmark or a subprocess started with ``-m``. A folder
without ``__init__.py`` would instead have its own folder prepended, and bare imports of its
modules would then work there and nowhere else (as ``tests/gate`` once did, with
``test_audit.py`` editing ``sys.path`` to reach it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from spinepki.testpki import TestPKI
from tests._helpers import fresh, shared

TESTS = Path(__file__).parent
FOLDERS = sorted(
    {p.parent for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts},
)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.relative_to(TESTS).as_posix() or ".")
def test_every_folder_is_a_package(folder: Path) -> None:
    assert (folder / "__init__.py").is_file()


def test_nothing_edits_sys_path() -> None:
    offenders = [
        p.relative_to(TESTS).as_posix()
        for p in TESTS.rglob("*.py")
        if p.name != "test_layout.py" and "sys.path." in p.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_helper_modules_have_one_name() -> None:
    """Shared code for a folder's tests lives in its ``_helpers.py``, nowhere else."""
    names = {p.name for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts}
    other = {n for n in names if "helper" in n or "harness" in n or n in {"_util.py", "_run.py"}}
    assert other <= {"_helpers.py"}


@pytest.mark.parametrize("change", ["issue", "revoke"])
def test_a_shared_pki_that_a_test_changes_fails_the_run(spine_pki: TestPKI, change: str) -> None:
    """The guard on shared PKIs notices an issue or a revoke; a fresh() copy keeps the
    shared one as it was."""
    copy = fresh(spine_pki)
    guard = shared(copy)
    guard.__enter__()
    if change == "issue":
        copy.issue("extra", fqdn="extra.example.nhs.uk")
    else:
        copy.revoke("ssp")
    with pytest.raises(AssertionError, match="was changed by a test"):
        guard.__exit__(None, None, None)
    assert "extra" not in spine_pki.leaves
    assert not spine_pki.is_revoked("ssp")
