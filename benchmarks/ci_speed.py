"""Pipeline speed on an unchanged repository (everything cached), beside `dvc status`.

The example project in a temporary git + DVC repository with the embedded store: a first
`mlops-gitops ci pr` trains, tests and compares; the figures are the runs after it, when every
step is a no-op, against `dvc status` on the same repository. Then `ci deploy --env dev` the
first time (build, start, smoke test) and again with nothing changed.
"""

from __future__ import annotations

import socket
import sys
import tempfile
from pathlib import Path

from _common import MLOPS, copy_example, sh, timed, track_with_dvc

RUNS = 3


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = copy_example(Path(scratch) / "project")
        track_with_dvc(root, Path(scratch) / "remote")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        spec = root / "environments" / "dev.yaml"
        spec.write_text(spec.read_text().replace("port: 3001", f"port: {port}"))
        sh(root, "git", "add", "-A")
        sh(root, "git", "commit", "-qm", "dvc")
        first = timed(root, [MLOPS, "ci", "pr", "--base", "HEAD"], 1)
        again = timed(root, [MLOPS, "ci", "pr", "--base", "HEAD"], RUNS)
        status = timed(root, [sys.executable, "-m", "dvc", "status"], RUNS)
        deploy_first = timed(root, [MLOPS, "ci", "deploy", "--env", "dev"], 1)
        deploy_again = timed(root, [MLOPS, "ci", "deploy", "--env", "dev"], RUNS)
        sh(root, MLOPS, "undeploy", "--env", "dev")
    print(f"ci pr, first run (trains, tests, compares):   {first:6.2f} s")
    print(f"ci pr, unchanged repository (median of {RUNS}):  {again:6.2f} s")
    print(f"dvc status, same repository (median of {RUNS}): {status:6.2f} s "
          f"(ci pr = {again / status:.1f}x)")
    print(f"ci deploy --env dev, first (build, start, smoke test): {deploy_first:6.2f} s")
    print(f"ci deploy --env dev, nothing changed (median of {RUNS}): {deploy_again:6.2f} s")


if __name__ == "__main__":
    main()
