"""Shared by the benchmark scripts: environment, running and timing commands, the example
project copied into a temporary folder."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent
MLOPS = str(BIN / "mlops-gitops")
ENV = {**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
       "MLFLOW_DISABLE_TELEMETRY": "true", "DVC_NO_ANALYTICS": "1",
       "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@example.com",
       "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@example.com"}


def sh(cwd: Path, *cmd: str) -> subprocess.CompletedProcess:
    """Run a command; a failure stops the benchmark with its output."""
    result = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({result.returncode}):\n"
                         f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result


def timed(cwd: Path, cmd: list[str], runs: int, ok_codes: tuple[int, ...] = (0,)) -> float:
    """Median wall time of ``runs`` runs of a whole process."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if result.returncode not in ok_codes:
            raise SystemExit(f"{' '.join(cmd)} failed ({result.returncode}):\n"
                             f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return statistics.median(times)


def copy_example(root: Path) -> Path:
    """The repository's example project (specs and data, no DVC) as a fresh git repository."""
    from mlops_gitops.examples import write_example

    root.mkdir(parents=True)
    for name in ("specs", "policies", "environments"):
        shutil.copytree(REPO / name, root / name)
    shutil.copy(REPO / "mlops-gitops.yaml", root)
    (root / ".gitignore").write_text(".mlops/\ndata/*.csv\n")  # data is DVC's or untracked
    write_example("iris", root / "data" / "iris.csv")
    write_example("diabetes", root / "data" / "diabetes.csv")
    sh(root, "git", "init", "-q")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "example")
    return root


def track_with_dvc(root: Path, remote: Path) -> None:
    """DVC in the example project: its data tracked and pushed to a local remote."""
    dvc = [sys.executable, "-m", "dvc"]
    sh(root, *dvc, "init", "-q")
    sh(root, *dvc, "remote", "add", "-d", "local", str(remote))
    sh(root, *dvc, "add", "-q", "data/iris.csv", "data/diabetes.csv")
    sh(root, *dvc, "push", "-q")
