"""Real components for integration tests: git repositories, DVC with a local remote, `mlflow
server` on SQLite and on a real PostgreSQL cluster (Debian's binaries, started here)."""

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


def start_mlflow(folder: Path, port: int, backend_uri: str | None = None,
                 artifacts: str | None = None, env: dict[str, str] | None = None,
                 extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """A real `mlflow server` (SQLite backend unless ``backend_uri``, artifacts proxied to
    ``artifacts`` or a folder) on 127.0.0.1:port, ready; ``extra`` options are appended (e.g.
    ``--app-name basic-auth``)."""
    log = open(folder / "server.log", "a")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server",
         "--backend-store-uri", backend_uri or f"sqlite:///{folder / 'mlflow.db'}",
         "--serve-artifacts", "--artifacts-destination", artifacts or str(folder / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1", *extra],
        stdout=log, stderr=subprocess.STDOUT, cwd=folder,
        # no background job runners: the registry does not need them (saves ~1 GB of memory)
        env={**clean_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})})
    log.close()
    try:
        # on PostgreSQL the first start runs every schema migration (~30 s on a busy machine)
        wait_http(f"http://127.0.0.1:{port}/health", 240, process)
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
def mlflow_server_sqlite(tmp_path_factory) -> str:
    """One server for the whole session; tests keep apart by project name and model prefix."""
    port = free_port()
    process = start_mlflow(tmp_path_factory.mktemp("mlflow-server"), port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture(scope="session")
def mlflow_server(mlflow_server_sqlite: str) -> str:
    """The session's SQLite-backed server; modules that run on every registry backend override
    this name with :func:`backend_server` (see ``BACKENDS``)."""
    return mlflow_server_sqlite


# --- PostgreSQL: a throw-away cluster from Debian's binaries ---------------------------------

BACKENDS = ["sqlite", "postgresql"]
PG_SYSTEM_USER = "mlopspg"  # postgres refuses to run as root: a system user runs the cluster
PG_USER, PG_PASSWORD = "mlops", "mlops-test-password"


def backend_server(request) -> str:
    """For a fixture parametrised over ``BACKENDS``: that backend's session server."""
    return request.getfixturevalue(f"mlflow_server_{request.param}")


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding initdb (Debian keeps it off PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def missing_postgres() -> str | None:
    """Why a PostgreSQL-backed server cannot run here, or None."""
    if postgres_bin() is None:
        return "PostgreSQL is not installed (initdb not found; apt-get install postgresql)"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed (pip install -e '.[dev]' installs psycopg2-binary)"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip with the reason; on CI (CI=true), where .ci/run installs everything, fail."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL tests: {reason}", pytrace=False)
    pytest.skip(reason)


class Postgres:
    """A PostgreSQL cluster in a temporary folder on 127.0.0.1:port (password auth)."""

    def __init__(self, port: int):
        import tempfile

        self.bin = postgres_bin()
        self.port = port
        # not under pytest's tmp folders: those are private to root, and the cluster's system
        # user must be able to reach its own folder
        self.folder = Path(tempfile.mkdtemp(prefix="mlops-gitops-pg-"))
        self.data = self.folder / "data"
        self.as_root = os.geteuid() == 0

    def _cmd(self, *cmd: str) -> list[str]:
        return ["runuser", "-u", PG_SYSTEM_USER, "--", *cmd] if self.as_root else list(cmd)

    def _run(self, *cmd: str) -> None:
        done = subprocess.run(self._cmd(*cmd), capture_output=True, text=True, cwd=self.folder,
                              env={**clean_env(), "PGPASSWORD": PG_PASSWORD})
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}"
                               f"\n{done.stderr}")

    def start(self) -> None:
        if self.as_root:
            exists = subprocess.run(["id", "-u", PG_SYSTEM_USER], capture_output=True)
            if exists.returncode != 0:
                subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                                "/usr/sbin/nologin", PG_SYSTEM_USER], check=True)
            shutil.chown(self.folder, PG_SYSTEM_USER)
        password_file = self.folder / "password"
        password_file.write_text(PG_PASSWORD + "\n")
        if self.as_root:
            shutil.chown(password_file, PG_SYSTEM_USER)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", PG_USER,
                  f"--pwfile={password_file}", "--auth=scram-sha-256", "-E", "UTF8",
                  "--no-sync")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.folder / "postgres.log"), "-w", "-t", "60", "-o",
                  # a throw-away cluster: no durability, so no waiting for the disk
                  f"-h 127.0.0.1 -p {self.port} -k '' -c fsync=off -c synchronous_commit=off "
                  "-c full_page_writes=off", "start")

    def create_database(self, name: str) -> str:
        """A new database; returns its SQLAlchemy URI (psycopg2 driver)."""
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", PG_USER, name)
        return self.uri(name)

    def uri(self, database: str, password: str = PG_PASSWORD) -> str:
        # SQLAlchemy 2.1's plain postgresql:// means psycopg 3: name the driver we install
        return f"postgresql+psycopg2://{PG_USER}:{password}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run(self._cmd(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m",
                                     "fast", "-w", "stop"), capture_output=True, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Postgres:
    """A real PostgreSQL cluster for the session (stopped and removed at the end)."""
    reason = missing_postgres()
    if reason:
        skip_or_fail(reason)
    cluster = Postgres(free_port())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def mlflow_server_postgresql(postgres: Postgres, tmp_path_factory) -> str:
    """A real `mlflow server` whose backend store is the session's PostgreSQL."""
    port = free_port()
    process = start_mlflow(tmp_path_factory.mktemp("mlflow-server-pg"), port,
                           postgres.create_database("mlflow"))
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
