"""The type checker passes on the core's seams (the files [tool.mypy] names in pyproject.toml):
the registry ports and adapters, the reconciler, identities. `make lint` runs the same check."""

from __future__ import annotations

import subprocess
import sys

from tests.unit.support import REPO


def test_mypy_finds_no_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout
