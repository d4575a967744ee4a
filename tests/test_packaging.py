"""The wheel holds everything a user needs: packages, data files, console script."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_and_runs(tmp_path: Path) -> None:
    """Build a wheel, install it (no deps) into a fresh venv, run the CLI and imports from it."""
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("spinepki-*.whl")
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
            "import spinepki, spinepki_cli, spinepki.testpki;"
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
