"""Helpers for the unit tests: the example project, and the CLI in a subprocess or in-process."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
EXAMPLE_PARTS = ("mlops-gitops.yaml", "specs", "policies", "environments")


def copy_example_project(dest: Path) -> Path:
    """A copy of the repository's example project (config and spec folders) in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in EXAMPLE_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, dest / part)
        else:
            shutil.copy2(source, dest / part)
    return dest


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, cwd: Path, timeout: float = 120) -> CliResult:
    """The real command line in a subprocess: ``python -m mlops_gitops ARGS`` in ``cwd``."""
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_GITOPS_DEBUG"}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    done = subprocess.run([sys.executable, "-m", "mlops_gitops", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return CliResult(done.returncode, done.stdout, done.stderr)


def call_cli(*args: str, cwd: Path) -> CliResult:
    """The same entry point in-process (``mlops_gitops.cli.app.main``), for speed."""
    from mlops_gitops.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    debug = os.environ.pop("MLOPS_GITOPS_DEBUG", None)  # internal errors: message, not traceback
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: --help, --version, usage errors
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(old)
        if debug is not None:
            os.environ["MLOPS_GITOPS_DEBUG"] = debug
    return CliResult(code, out.getvalue(), err.getvalue())
