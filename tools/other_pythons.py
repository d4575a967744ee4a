"""Run the fast tests on every supported Python other than the one ``make test`` used.

``make test`` runs the whole suite (with coverage) on the default interpreter; this runs
the tests not marked ``slow`` on the other supported versions it can find, each in its
own virtual environment installed from the lock, and says which it ran and which it
skipped. An interpreter is found as pyenv's newest ``X.Y.*`` or ``pythonX.Y`` on PATH.

    python tools/other_pythons.py --lock requirements/constraints.txt [--only 3.13]

Exit status: 0 when every interpreter found passed, 1 when one failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The versions pyproject.toml's classifiers and requires-python promise.
SUPPORTED = ("3.11", "3.12", "3.13")


def find_interpreter(version: str) -> Path | None:
    """pyenv's newest ``version.*``, else ``python<version>`` on PATH, else None."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(
        (p for p in root.glob(f"{version}.*") if p.name.replace(".", "").isdigit()),
        key=lambda p: tuple(int(part) for part in p.name.split(".")),
    )
    for candidate in reversed(candidates):
        python = candidate / "bin" / f"python{version}"
        if python.exists():
            return python
    found = shutil.which(f"python{version}")
    return Path(found) if found else None


def ensure_venv(python: Path, version: str, lock: Path) -> Path:
    """``.venv-<version>`` with the test extras from the lock; reinstalled when stale."""
    venv = ROOT / f".venv-{version}"
    bin_python = venv / "bin" / "python"
    stamp = venv / ".installed-test"
    inputs = (ROOT / "pyproject.toml", lock)
    if stamp.exists() and all(stamp.stat().st_mtime >= p.stat().st_mtime for p in inputs):
        return bin_python
    if not bin_python.exists():
        subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
    pip = [str(bin_python), "-m", "pip", "install", "--quiet", "--constraint", str(lock)]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "--build-constraint", str(lock), "-e", ".[test]"], check=True, cwd=ROOT)
    stamp.touch()
    return bin_python


def main(argv: list[str] | None = None) -> int:
    """Run the fast suite on each other supported interpreter; print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, required=True)
    parser.add_argument("--only", nargs="*", default=None, help="versions, e.g. 3.12 3.13")
    args = parser.parse_args(argv)
    current = f"{sys.version_info.major}.{sys.version_info.minor}"
    # `--only` with no versions (OTHER_PYTHONS=none in the Makefile) runs none.
    wanted = [v for v in (SUPPORTED if args.only is None else args.only) if v != current]
    ran: list[str] = []
    skipped: list[str] = []
    failed: list[str] = []
    for version in wanted:
        python = find_interpreter(version)
        if python is None:
            skipped.append(f"{version} (no interpreter found)")
            continue
        print(f"== fast suite on Python {version} ({python})", flush=True)
        venv_python = ensure_venv(python, version, args.lock)
        started = time.monotonic()
        result = subprocess.run(
            [str(venv_python), "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider"],
            cwd=ROOT,
            check=False,
        )
        label = f"{version} ({time.monotonic() - started:.0f} s)"
        (ran if result.returncode == 0 else failed).append(label)
    print(f"other interpreters: whole suite ran on {current} (make test)")
    print(f"  fast suite passed: {', '.join(ran) or 'none'}")
    if failed:
        print(f"  fast suite FAILED: {', '.join(failed)}")
    print(f"  skipped: {', '.join(skipped) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
