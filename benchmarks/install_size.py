"""Installed size of mlops-gitops's base package and of each extra (#14: a lint that installs
small). Each is installed with uv into a fresh virtualenv from the package index, pinned by
constraints.txt; prints packages, megabytes on disk and install seconds, and checks that `lint`
runs on the base install."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ENV, REPO

VARIANTS = ("", "[train]", "[serve]", "[all]")


def uv() -> str:
    found = Path(sys.executable).parent / "uv"
    return str(found) if found.exists() else "uv"


def disk_mb(folder: Path) -> float:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total / 1e6


def install(variant: str, into: Path) -> tuple[int, float, float]:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(into)], check=True)
    python = into / "bin" / "python"
    start = time.perf_counter()
    # a non-editable install: what `pip install mlops-gitops[...]` puts on a machine
    subprocess.run([uv(), "pip", "install", "--quiet", "--python", str(python), "-c",
                    str(REPO / "constraints.txt"), f"{REPO}{variant}"], check=True, env=ENV)
    seconds = time.perf_counter() - start
    listed = subprocess.run([uv(), "pip", "list", "--python", str(python), "--format", "freeze"],
                            check=True, capture_output=True, text=True).stdout.split()
    return len(listed), disk_mb(into), seconds


def main() -> None:
    print(f"{'install':<28}{'packages':>9}{'MB':>9}{'seconds':>9}")
    with tempfile.TemporaryDirectory() as scratch:
        for variant in VARIANTS:
            venv = Path(scratch) / (variant.strip("[]") or "base")
            packages, megabytes, seconds = install(variant, venv)
            print(f"{'mlops-gitops' + variant:<28}{packages:>9}{megabytes:>9.0f}{seconds:>9.1f}")
            if not variant:
                lint = subprocess.run([str(venv / "bin" / "mlops-gitops"), "lint"], cwd=REPO,
                                      capture_output=True, text=True, env=ENV)
                print(f"  lint on the base install: exit {lint.returncode}, "
                      f"{lint.stdout.strip() or lint.stderr.strip()}")


if __name__ == "__main__":
    main()
