"""`lint` stays light: it never imports the heavy libraries (mlflow, scikit-learn, ...)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .support import CORPUS, REPO, copy_example_project

HEAVY = ("mlflow", "sklearn", "bentoml", "pandas", "dvc")
PROBE = """
import json, sys
from mlops_gitops.cli.app import main
code = main(sys.argv[1:])
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


def _probe(cwd, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_lint_example_project_imports_no_heavy_library():
    result = _probe(REPO, "lint")
    assert result == {"code": 0, "heavy": []}


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_lint_with_errors_imports_no_heavy_library(tmp_path, fmt):
    root = copy_example_project(tmp_path / "project")
    for name in ("unknown-field-nested.yaml", "ref-unknown-dataset.yaml", "billion-laughs.yaml"):
        (root / "specs" / name).write_bytes((CORPUS / "negative" / name).read_bytes())
    result = _probe(root, "lint", "--format", fmt)
    assert result == {"code": 1, "heavy": []}
