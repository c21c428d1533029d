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
    "DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "BENTOML_DO_NOT_TRACK": "true",
}


def clean_env() -> dict[str, str]:
    """The environment for child processes: no tracking URI leaks in from in-process MLflow use
    (``mlflow.set_tracking_uri`` exports MLFLOW_TRACKING_URI)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "BENTOML_HOME")}
    return {**env, **GIT_ENV}


def run(cwd: Path, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=clean_env(), capture_output=True, text=True)
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
    return make_example_repo(tmp_path)


def make_example_repo(tmp_path: Path) -> Path:
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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, seconds: float, process: subprocess.Popen | None = None) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process serving {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


def start_mlflow(folder: Path, port: int) -> subprocess.Popen:
    """A real `mlflow server` (SQLite backend, proxied artifacts) on 127.0.0.1:port, ready."""
    log = open(folder / "server.log", "a")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server",
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=folder,
        # no background job runners: the registry does not need them (saves ~1 GB of memory)
        env={**clean_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    log.close()
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 90, process)
    except BaseException:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    """One server for the whole session; tests keep apart by project name and model prefix."""
    port = free_port()
    process = start_mlflow(tmp_path_factory.mktemp("mlflow-server"), port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture
def server_repo(example_repo: Path, mlflow_server: str, request) -> Path:
    """The example repository pointed at the session's server, with a model-name prefix unique
    to the test so tests never see each other's registered models."""
    return use_server(example_repo, mlflow_server, request.node.name)


def use_server(example_repo: Path, mlflow_server: str, test_name: str) -> Path:
    import re

    name = re.sub(r"[^a-z0-9]+", "-", test_name.lower())[:40].strip("-")
    config = example_repo / "mlops-gitops.yaml"
    text = config.read_text().replace("tracking_uri: null", f"tracking_uri: {mlflow_server}")
    text = text.replace("name: example", f"name: {name}")  # its own project in the registry
    config.write_text(text + f"  model_prefix: {name}-\n")
    run(example_repo, "git", "commit", "-qam", "use the test server")
    return example_repo
