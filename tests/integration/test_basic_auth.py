"""The lifecycle against a real `mlflow server --app-name basic-auth` (MLflow's own user store):
credentials from MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD and from user-info in the
URI; a wrong password is one clear message naming the setting, exit 1; no output ever holds the
password."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import (
    clean_env,
    free_port,
    make_example_repo,
    skip_or_fail,
    start_mlflow,
    stop,
    use_server,
)

pytestmark = pytest.mark.integration

ADMIN, PASSWORD = "admin", "s3cret-Pa55word-for-tests"
WRONG = "wrong-Pa55word-never-shown"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory) -> str:
    """One basic-auth server for the module: users in their own SQLite database, the admin
    created at first start from MLFLOW_AUTH_ADMIN_PASSWORD."""
    import importlib.util

    if importlib.util.find_spec("flask_wtf") is None:
        skip_or_fail("Flask-WTF is not installed (MLflow's basic-auth app needs it; "
                     "pip install -e '.[dev]' installs it)")
    folder = tmp_path_factory.mktemp("mlflow-basic-auth")
    config = folder / "basic_auth.ini"
    config.write_text("[mlflow]\ndefault_permission = READ\n"
                      f"database_uri = sqlite:///{folder / 'users.db'}\n"
                      f"admin_username = {ADMIN}\n"
                      "authorization_function = mlflow.server.auth:authenticate_request_basic_auth"
                      "\n")
    port = free_port()
    process = start_mlflow(folder, port, env={"MLFLOW_AUTH_CONFIG_PATH": str(config),
                                              "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD,
                                              "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-csrf-key"},
                           extra=("--app-name", "basic-auth"))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture(scope="module")
def auth_repo(auth_server, tmp_path_factory) -> Path:
    """The example project on the basic-auth server, trained once for the module."""
    repo = use_server(make_example_repo(tmp_path_factory.mktemp("auth")), auth_server,
                      "basic-auth")
    result = mlops(repo, "train", env=credentials())
    assert result.returncode == 0, result.stdout + result.stderr
    return repo


def credentials(password: str = PASSWORD) -> dict[str, str]:
    return {"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": password}


def mlops(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "mlops_gitops", *args], cwd=repo,
                            env={**clean_env(), **env}, capture_output=True, text=True)
    for secret in (PASSWORD, WRONG):
        assert secret not in result.stdout + result.stderr, f"{args} printed a password"
    return result


def ok(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = mlops(repo, *args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_credentials_from_the_environment_plan_apply_status(auth_repo):
    env = credentials()
    plan = mlops(auth_repo, "plan", "--env", "dev", "--detailed-exitcode", env=env)
    assert plan.returncode == 2, plan.stdout + plan.stderr
    ok(auth_repo, "apply", "--env", "dev", "--auto-approve", env=env)
    status = ok(auth_repo, "status", "--env", "dev", env=env)
    assert "Synced" in status.stdout
    assert mlops(auth_repo, "plan", "--env", "dev", "--detailed-exitcode",
                 env=env).returncode == 0


def test_credentials_in_the_uri(auth_repo, auth_server):
    uri = auth_server.replace("http://", f"http://{ADMIN}:{PASSWORD}@")
    env = {"MLFLOW_TRACKING_URI": uri}
    ok(auth_repo, "apply", "--env", "dev", "--auto-approve", env=env)
    assert mlops(auth_repo, "plan", "--env", "dev", "--detailed-exitcode",
                 env=env).returncode == 0
    assert "Synced" in ok(auth_repo, "status", "--env", "dev", env=env).stdout


@pytest.mark.parametrize("command", [("plan", "--env", "dev"),  # the stdlib REST reader
                                     ("apply", "--env", "dev", "--auto-approve")])  # MLflow's
def test_a_wrong_password_is_one_clear_message(auth_repo, auth_server, command):
    for env, setting in ((credentials(WRONG), "MLFLOW_TRACKING_PASSWORD"),
                         ({"MLFLOW_TRACKING_URI":
                           auth_server.replace("http://", f"http://{ADMIN}:{WRONG}@")},
                          "MLFLOW_TRACKING_URI")):
        result = mlops(auth_repo, *command, env=env)
        out = result.stdout + result.stderr
        assert result.returncode == 1, out
        assert "Traceback" not in out
        assert "rejected the credentials" in out and setting in out, out
        assert out.count("rejected the credentials") == 1, out


def test_no_credentials_names_the_settings(auth_repo):
    result = mlops(auth_repo, "plan", "--env", "dev", env={})
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in out, out
    assert "MLFLOW_TRACKING_USERNAME" in out, out


def test_the_server_really_checks_passwords(auth_server):
    """Sanity: a wrong password is refused by the server itself (not a lenient stand-in)."""
    import base64
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{auth_server}/api/2.0/mlflow/registered-models/search",
        headers={"Authorization": "Basic " + base64.b64encode(f"{ADMIN}:{WRONG}".encode())
                 .decode()})
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 401


def test_a_user_without_write_permission_is_told_so(auth_repo, auth_server):
    """A reader (default permission READ) plans, but applying a change to the admin's models is
    refused with HTTP 403: one message saying the user lacks the permission."""
    import base64
    import json
    import urllib.request

    from mlops_gitops.spec.project import load_project

    def admin_call(endpoint: str, method: str, body: dict) -> None:
        request = urllib.request.Request(
            f"{auth_server}/api/2.0/mlflow/{endpoint}", method=method,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Basic " +
                     base64.b64encode(f"{ADMIN}:{PASSWORD}".encode()).decode()})
        urllib.request.urlopen(request, timeout=10).close()

    ok(auth_repo, "apply", "--env", "dev", "--auto-approve", env=credentials())
    admin_call("users/create", "POST", {"username": "reader", "password": "reader-Pa55word"})
    name = load_project(auth_repo).name + "-iris-classifier"
    admin_call("registered-models/alias", "DELETE", {"name": name, "alias": "dev"})  # drift
    env = {"MLFLOW_TRACKING_USERNAME": "reader", "MLFLOW_TRACKING_PASSWORD": "reader-Pa55word"}
    plan = mlops(auth_repo, "plan", "--env", "dev", "--detailed-exitcode", env=env)
    assert plan.returncode == 2, plan.stdout + plan.stderr  # reading is allowed
    result = mlops(auth_repo, "apply", "--env", "dev", "--auto-approve", env=env)
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in out, out
    assert "lacks the permission" in out and "reader-Pa55word" not in out, out
    ok(auth_repo, "apply", "--env", "dev", "--auto-approve", env=credentials())  # heals
