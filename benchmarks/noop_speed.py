"""A no-op `run`, `plan --env dev` and `status` beside `dvc status` on the same repository.

The example project in a temporary git + DVC repository with the embedded store: a first
`mlops-gitops run` lints, validates, trains, tests, compares and applies `dev`; the figures are
the runs after it, when every step is a no-op (issue 14: a no-op run <= 3x `dvc status`, a no-op
plan <= 2x). Then which heavy modules each no-op command imported (none is the goal).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ENV, REPO, copy_example, sh, timed, track_with_dvc

RUNS = 5
HEAVY = ("mlflow", "sqlalchemy", "sklearn", "pandas", "numpy", "scipy", "skops", "bentoml",
         "dvc")
# runs the command line in-process, then prints which heavy modules it imported
PROBE = """
import json, sys
sys.argv = ["mlops-gitops", *sys.argv[1:]]
from mlops_gitops.cli.app import run
try:
    run()
except SystemExit:
    pass
finally:
    heavy = HEAVY
    print(json.dumps(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)
""".replace("HEAVY", repr(HEAVY))
MLOPS = [sys.executable, "-m", "mlops_gitops"]
CHILD_ENV = {**ENV, "PYTHONPATH": os.pathsep.join(
    [str(REPO), *filter(None, [ENV.get("PYTHONPATH")])])}


def imported(root: Path, *args: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=root, env=CHILD_ENV,
                            capture_output=True, text=True)
    return json.loads(result.stderr.strip().splitlines()[-1])


def main() -> None:
    ENV.update(CHILD_ENV)  # the commands timed are this checkout's
    with tempfile.TemporaryDirectory() as scratch:
        root = copy_example(Path(scratch) / "project")
        track_with_dvc(root, Path(scratch) / "remote")
        sh(root, "git", "add", "-A")
        sh(root, "git", "commit", "-qm", "dvc")
        first = timed(root, [*MLOPS, "run"], 1)
        run = timed(root, [*MLOPS, "run"], RUNS)
        plan = timed(root, [*MLOPS, "plan", "--env", "dev"], RUNS)
        status = timed(root, [*MLOPS, "status"], RUNS, ok_codes=(0, 1))
        dvc_status = timed(root, [sys.executable, "-m", "dvc", "status"], RUNS)
        imports = {name: imported(root, *args) for name, args in (
            ("run", ("run",)), ("plan --env dev", ("plan", "--env", "dev")),
            ("status", ("status",)))}
    print(f"run, first (trains, tests, compares, applies dev): {first:6.2f} s")
    print(f"median of {RUNS} runs on the unchanged repository:")
    print(f"  dvc status         {dvc_status:6.2f} s")
    print(f"  run                {run:6.2f} s  = {run / dvc_status:4.1f}x dvc status "
          "(target <= 3x)")
    print(f"  plan --env dev     {plan:6.2f} s  = {plan / dvc_status:4.1f}x dvc status "
          "(target <= 2x)")
    print(f"  status             {status:6.2f} s  = {status / dvc_status:4.1f}x dvc status")
    print("heavy modules imported by the no-op commands (of " + ", ".join(HEAVY) + "):")
    for name, modules in imports.items():
        print(f"  {name:<16}   {', '.join(modules) or 'none'}")


if __name__ == "__main__":
    main()
