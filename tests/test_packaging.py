"""The artefacts hold everything a user needs: the wheel installs and runs, the sdist is a
complete source tree whose suite runs, and the metadata passes ``twine check --strict``."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An sdist and a wheel built from this tree (no isolation: no network needed)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("spinepki-*.whl")
    return wheel


def _sdist(dist: Path) -> Path:
    (sdist,) = dist.glob("spinepki-*.tar.gz")
    return sdist


@pytest.mark.slow
def test_twine_check_strict(dist: Path) -> None:
    """Both artefacts pass twine check --strict (what PyPI would refuse)."""
    run = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist.iterdir()))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.slow
def test_wheel_metadata_says_what_is_tested(dist: Path) -> None:
    """License file and expression, the tested Python versions, project URLs, entry points."""
    with zipfile.ZipFile(_wheel(dist)) as wheel:
        names = set(wheel.namelist())
        info = next(n.rsplit("/", 1)[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(wheel.read(f"{info}/METADATA"))
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert f"{info}/licenses/LICENSE" in names
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] == ">=3.11"
    versions = {
        c.rsplit(" :: ", 1)[1]
        for c in metadata.get_all("Classifier") or []
        if c.startswith("Programming Language :: Python :: 3.")
    }
    assert versions == {"3.11", "3.12", "3.13"}
    assert any(c.startswith("Development Status ::") for c in metadata.get_all("Classifier"))
    assert metadata.get_all("Project-URL")
    assert "spinepki = spinepki_pytest" in entry_points
    assert "spinepki = spinepki_cli.main:main" in entry_points
    for package in ("spinepki/", "spinepki_cli/", "spinepki_pytest/"):
        assert f"{package}py.typed" in names
    assert "spinepki/provider/example.toml" in names


@pytest.mark.slow
def test_sdist_holds_every_tracked_file(dist: Path) -> None:
    """Every file git tracks is in the sdist, except the CI entry point and .gitignore."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (e.g. the suite running from an unpacked sdist)")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    with tarfile.open(_sdist(dist)) as sdist:
        held = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    missing = {f for f in tracked if (ROOT / f).exists()} - held - {".gitignore", ".ci/run"}
    assert not missing, sorted(missing)


@pytest.mark.slow
def test_sdist_suite_runs(dist: Path, tmp_path: Path) -> None:
    """Unpacked, the sdist's own tests run against its own sources."""
    with tarfile.open(_sdist(dist)) as sdist:
        sdist.extractall(tmp_path, filter="data")
    (tree,) = tmp_path.glob("spinepki-*")
    where = subprocess.run(
        [sys.executable, "-c", "import spinepki; print(spinepki.__file__)"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(tree)), where.stdout  # not this checkout's copy
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_policy.py",
            "tests/test_tls.py",
            "tests/validation/test_checks.py",
            "tests/provider/test_config.py",
        ],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout


@pytest.mark.slow
def test_wheel_installs_and_runs(dist: Path, tmp_path: Path) -> None:
    """Install the wheel (no deps) into a fresh venv, run the CLI and imports from it."""
    wheel = _wheel(dist)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # Dependencies come from this test environment (no network); spinepki itself only from
    # the wheel. A plain path entry does not run the editable-install hook of the outer venv.
    (site / "outer-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "--quiet",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    check = subprocess.run(
        [
            str(py),
            "-c",
            "import spinepki, spinepki_cli, spinepki_pytest, spinepki.testpki;"
            "from spinepki.provider import example_config; assert 'asid' in example_config();"
            "from spinepki.trust import TrustStore;"
            "[TrustStore.spine(e) for e in ('live', 'int', 'dep')];"
            "import spinepki.tls as t; t._dh_params_path().read_bytes();"
            "print(spinepki.__file__)",
        ],
        cwd=tmp_path,  # not the repo root, whose spinepki/ would shadow the wheel's
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert str(env_dir) in check.stdout, "spinepki was not imported from the wheel"
    version = subprocess.run(
        [str(env_dir / "bin" / "spinepki"), "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert version.returncode == 0, version.stderr
    assert "spinepki" in version.stdout
