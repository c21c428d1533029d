"""Real components for integration tests: git repositories, DVC with a local remote."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
    "DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
}


def run(cwd: Path, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True,
                            text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n"
                             f"{result.stderr}")
    return result


def cli(cwd: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    return run(cwd, sys.executable, "-m", "mlops_gitops", *args, check=check)


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(cwd, sys.executable, "-m", "dvc", *args, check=check)


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    """A git + DVC repository holding a copy of the example project, data pushed to a local
    remote outside the repository."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("specs", "policies", "environments"):
        shutil.copytree(REPO / name, root / name)
    shutil.copy(REPO / "mlops-gitops.yaml", root)
    (root / ".gitignore").write_text(".mlops/\n")
    from mlops_gitops.examples import write_example

    write_example("iris", root / "data" / "iris.csv")
    write_example("diabetes", root / "data" / "diabetes.csv")
    run(root, "git", "init", "-q", "-b", "main")
    dvc(root, "init", "-q")
    dvc(root, "remote", "add", "-d", "local", str(tmp_path / "remote"))
    dvc(root, "add", "-q", "data/iris.csv", "data/diabetes.csv")
    dvc(root, "push", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "example project")
    return root
