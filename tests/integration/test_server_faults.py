"""Faults on the server's side: an `mlflow server` whose PostgreSQL password is wrong, or whose
database does not exist. The server refuses to start (its log says why); the client never sees
the database settings, and its commands say clearly that no server is serving, exit 1, and print
no secret. (A missing artifact bucket: tests/integration/test_s3.py.)
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration.conftest import clean_env, cli, free_port, use_server

pytestmark = pytest.mark.integration

DB_PASSWORD = "wrong-db-password-never-shown"
# MLflow retries a failing database connection 10 times (about 100 s of backoff) before it
# gives up; the test gives up after 2 (the same code path, in seconds)
SERVER = ("import sys, mlflow.store.db.utils as db; db.MAX_RETRY_COUNT = 2; "
          "from mlflow.cli import cli; sys.argv = ['mlflow', *sys.argv[1:]]; cli()")


@pytest.mark.parametrize(("database", "password", "says"), [
    ("faults", DB_PASSWORD, "password authentication failed"),
    ("no_such_database", None, 'database "no_such_database" does not exist'),
], ids=["wrong-password", "missing-database"])
def test_a_wrong_database_setting(postgres, example_repo, tmp_path, database, password, says):
    if database == "faults":
        postgres.create_database("faults")
    uri = postgres.uri(database, password) if password else postgres.uri(database)
    port = free_port()
    server = subprocess.run(
        [sys.executable, "-c", SERVER, "server", "--backend-store-uri", uri, "--serve-artifacts",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
        env={**clean_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    assert server.returncode != 0
    assert says in server.stdout + server.stderr

    repo = use_server(example_repo, f"http://127.0.0.1:{port}", "faults")
    for command in (("plan", "--env", "dev"), ("status", "--env", "dev")):
        result = cli(repo, *command)
        out = result.stdout + result.stderr
        assert result.returncode == 1, out
        assert "Traceback" not in out and DB_PASSWORD not in out, out
        assert "cannot reach the MLflow tracking server" in result.stderr, out
        assert out.count("error:") == 1, out
