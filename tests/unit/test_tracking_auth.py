"""A tracking server with credentials and TLS settings, and one that fails for a moment: secrets
are never printed, user-info is Basic auth (not a host name), transient errors are retried.

The server here is a tiny ``http.server`` on 127.0.0.1 that answers like MLflow's REST API."""

from __future__ import annotations

import base64
import json
import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlops_gitops import tracking as tracking_module
from mlops_gitops.diagnostics import DiagnosticError, redact
from mlops_gitops.registry.rest import RestRegistryReader
from mlops_gitops.tracking import (
    Tracking,
    auth_headers,
    resolve_tracking,
    split_credentials,
    ssl_context,
)
from tests.unit.support import copy_example_project, run_cli

SECRET = "s3cr3t-Pa55"
AUTH_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME",
             "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_INSECURE_TLS",
             "MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_TRACKING_CLIENT_CERT_PATH")


class FakeMlflow:
    """Records each request's path and Authorization header; ``failures`` leading requests get
    ``fail_status``; with ``password`` set, other credentials get 401 (as MLflow's basic-auth
    app answers)."""

    def __init__(self, failures: int = 0, fail_status: int = 503, password: str | None = None):
        self.requests: list[tuple[str, str | None]] = []
        self.failures, self.fail_status, self.password = failures, fail_status, password
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                fake.requests.append((self.path, self.headers.get("Authorization")))
                if fake.failures > 0:
                    fake.failures -= 1
                    return self._send(fake.fail_status, {"error_code": "TEMPORARILY_UNAVAILABLE"})
                if fake.password is not None and not self.path.startswith("/health"):
                    expected = "Basic " + base64.b64encode(
                        f"alice:{fake.password}".encode()).decode()
                    if self.headers.get("Authorization") != expected:
                        return self._send(401, {"error_code": "UNAUTHENTICATED",
                                                "message": "You are not authenticated."})
                if self.path.startswith("/health"):
                    return self._send(200, None, b"OK")
                if "/registered-models/search" in self.path:
                    return self._send(200, {})  # an empty page, as MLflow answers
                if "/model-versions/search" in self.path:
                    return self._send(200, {})
                return self._send(404, {"error_code": "RESOURCE_DOES_NOT_EXIST"})

            def _send(self, status, body, raw: bytes | None = None):
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeMlflow:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def no_auth_env(monkeypatch):
    for name in AUTH_VARS:  # set then deleted: restored (or removed) after the test
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "4")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")  # an int for MLflow


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- parsing and redaction -------------------------------------------------------------------

def test_user_info_is_taken_out_of_the_uri_not_taken_for_the_host():
    clean, user, password = split_credentials("http://alice:p%40ss@mlflow.example:5000/x")
    assert (clean, user, password) == ("http://mlflow.example:5000/x", "alice", "p@ss")
    assert split_credentials("https://mlflow.example") == ("https://mlflow.example", None, None)


def test_resolve_tracking_keeps_credentials_out_of_the_printable_uri(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:{SECRET}@127.0.0.1:5000")
    found = resolve_tracking(tmp_path, None)
    assert found.uri == "http://127.0.0.1:5000"
    assert (found.username, found.password) == ("alice", SECRET)
    assert SECRET not in repr(found) and SECRET not in str(found)


def test_every_message_redacts_a_password_in_a_url():
    assert redact(f"at http://alice:{SECRET}@h:1/x and s3://k:{SECRET}@b") == \
        "at http://alice:***@h:1/x and s3://k:***@b"
    error = tracking_module.unreachable(f"http://alice:{SECRET}@h:1", "down")
    assert SECRET not in str(error) and "http://alice:***@h:1" in str(error)


def test_basic_auth_comes_before_a_token_as_in_mlflow(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok")
    assert auth_headers() == {"Authorization": "Bearer tok"}
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")
    assert auth_headers()["Authorization"] == "Basic " + base64.b64encode(b"bob:pw").decode()
    # the URI's user-info wins over the variables
    with_info = Tracking("http://h", username="alice", password="x")
    assert auth_headers(with_info)["Authorization"] == \
        "Basic " + base64.b64encode(b"alice:x").decode()


# --- TLS -------------------------------------------------------------------------------------

def test_insecure_tls_gives_an_unverified_context(monkeypatch):
    assert ssl_context() is None
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    context = ssl_context()
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


def test_server_cert_path_is_the_ca_bundle(monkeypatch, tmp_path):
    import certifi

    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", certifi.where())
    context = ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0


# --- the REST reader against a local server --------------------------------------------------

def test_rest_reader_sends_basic_auth_from_the_uri_user_info(tmp_path, monkeypatch):
    with FakeMlflow() as server:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:{SECRET}@127.0.0.1:{server.port}")
        reader = RestRegistryReader(resolve_tracking(tmp_path, None))
        assert reader.list_models() == []
    path, header = server.requests[-1]
    assert "/api/2.0/mlflow/registered-models/search" in path
    assert header == "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()


def test_rest_reader_sends_the_token_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", SECRET)
    with FakeMlflow() as server:
        RestRegistryReader(Tracking(f"http://127.0.0.1:{server.port}")).list_models()
    assert server.requests[-1][1] == f"Bearer {SECRET}"


def test_transient_503_is_retried_with_backoff(tmp_path):
    with FakeMlflow(failures=2, fail_status=503) as server:
        assert RestRegistryReader(Tracking(f"http://127.0.0.1:{server.port}")).list_models() == []
    assert len(server.requests) == 3


def test_backoff_doubles_and_stays_within_the_budget(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(tracking_module.time, "sleep", slept.append)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "10")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    with FakeMlflow(failures=100, fail_status=504) as server:
        with pytest.raises(DiagnosticError):
            RestRegistryReader(Tracking(f"http://127.0.0.1:{server.port}")).list_models()
    assert slept[:4] == [1, 2, 4, 8]
    assert sum(slept) <= tracking_module.RETRY_BUDGET_S


def test_a_server_that_stays_down_gives_one_clear_message():
    with FakeMlflow(failures=100, fail_status=502) as server:
        with pytest.raises(DiagnosticError) as caught:
            RestRegistryReader(Tracking(f"http://127.0.0.1:{server.port}")).list_models()
    assert len(server.requests) == 4 + 1
    message = caught.value.diagnostics[0].message
    assert "cannot reach the MLflow tracking server" in message and "HTTP 502" in message
    assert "after retries" in message


def test_connection_refused_is_retried_then_reported():
    reader = RestRegistryReader(Tracking(f"http://127.0.0.1:{closed_port()}"))
    with pytest.raises(DiagnosticError) as caught:
        reader.list_models()
    assert "after retries" in caught.value.diagnostics[0].message


def test_a_wrong_password_names_the_settings_and_hides_the_secret(tmp_path, monkeypatch):
    with FakeMlflow(password="right") as server:
        tracking = Tracking(f"http://127.0.0.1:{server.port}", username="alice", password=SECRET)
        with pytest.raises(DiagnosticError) as caught:
            RestRegistryReader(tracking).list_models()
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "tracking-auth" and "HTTP 401" in diagnostic.message
    assert "MLFLOW_TRACKING_USERNAME" in diagnostic.hint and "MLFLOW_TRACKING_PASSWORD" in \
        diagnostic.hint
    assert SECRET not in str(caught.value)


def test_the_mlflow_client_gets_the_uri_user_info_as_basic_auth(monkeypatch):
    from mlops_gitops.registry.mlflow import MlflowRegistry

    with FakeMlflow(password=SECRET) as server:
        tracking = Tracking(f"http://127.0.0.1:{server.port}", username="alice", password=SECRET)
        assert MlflowRegistry(tracking).list_models() == []
        wrong = Tracking(tracking.uri, username="alice", password="wrong")
        with pytest.raises(DiagnosticError) as caught:
            MlflowRegistry(wrong).list_models()
    assert server.requests[0][1] == "Basic " + base64.b64encode(
        f"alice:{SECRET}".encode()).decode()
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "tracking-auth", diagnostic
    assert "MLFLOW_TRACKING_PASSWORD" in diagnostic.hint and "wrong" not in str(caught.value)


# --- the command line: no secret in any output -----------------------------------------------

def example_project(tmp_path: Path) -> Path:
    from mlops_gitops.examples import write_example

    project = copy_example_project(tmp_path / "project")
    write_example("iris", project / "data" / "iris.csv")
    write_example("diabetes", project / "data" / "diabetes.csv")
    return project


def _cli(project: Path, uri: str, *args: str):
    env_before = {name: os.environ.pop(name, None) for name in AUTH_VARS}
    os.environ["MLFLOW_TRACKING_URI"] = uri  # the autouse fixture keeps retries short
    try:
        return run_cli(*args, cwd=project)
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        for name, value in env_before.items():
            if value is not None:
                os.environ[name] = value


@pytest.mark.parametrize("command", [("plan", "--env", "dev"), ("status",), ("train",)])
def test_a_password_in_the_uri_is_never_printed_when_the_server_is_unreachable(tmp_path,
                                                                                command):
    project = example_project(tmp_path)
    result = _cli(project, f"http://alice:{SECRET}@127.0.0.1:{closed_port()}", *command)
    assert result.returncode == 1, result.output
    assert SECRET not in result.output
    assert "cannot reach the MLflow tracking server at http://127.0.0.1:" in result.output
    assert "Name or service not known" not in result.output
    assert "Traceback" not in result.output


def test_a_wrong_password_in_the_uri_gives_one_clear_message(tmp_path):
    project = example_project(tmp_path)
    with FakeMlflow(password="right") as server:
        result = _cli(project, f"http://alice:{SECRET}@127.0.0.1:{server.port}",
                      "plan", "--env", "dev")
    assert result.returncode == 1, result.output
    assert SECRET not in result.output
    assert "rejected the credentials" in result.output
    assert "MLFLOW_TRACKING_PASSWORD" in result.output
    assert "Traceback" not in result.output


def test_a_server_that_answers_500_failed_and_is_not_unreachable():
    """HTTP 500 is the server failing (its database), not the network: the hint names the
    server's --backend-store-uri; one request, no retry loop in the stdlib reader."""
    with FakeMlflow(failures=100, fail_status=500) as server:
        with pytest.raises(DiagnosticError) as caught:
            RestRegistryReader(Tracking(f"http://127.0.0.1:{server.port}")).search_models(
                project="p")
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "tracking-server-error"
    assert "failed: HTTP 500 on registered-models/search" in diagnostic.message
    assert "--backend-store-uri" in diagnostic.hint
    assert len(server.requests) == 1
