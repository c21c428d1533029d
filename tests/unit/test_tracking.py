"""Where the tracking store and its artifacts are: every SQLite store keeps its artifacts beside
its database file; a database with no artifact store is refused, never a ./mlruns in the cwd."""

from __future__ import annotations

import pytest

from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.tracking import resolve_tracking


@pytest.fixture(autouse=True)
def no_env_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_the_embedded_default(tmp_path):
    tracking = resolve_tracking(tmp_path, None)
    assert tracking.sqlite_path == tmp_path.resolve() / ".mlops" / "mlflow.db"
    assert tracking.artifact_location == (tmp_path.resolve() / ".mlops" / "artifacts").as_uri()


def test_a_relative_sqlite_path_in_the_config_is_relative_to_the_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)
    tracking = resolve_tracking(tmp_path, "sqlite:///state/x.db")
    assert tracking.sqlite_path == tmp_path.resolve() / "state" / "x.db"
    assert tracking.artifact_location == (tmp_path.resolve() / "state" / "artifacts").as_uri()


def test_a_relative_sqlite_path_in_the_environment_is_relative_to_the_cwd(tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    tracking = resolve_tracking(tmp_path / "project", "sqlite:///ignored.db")
    assert tracking.sqlite_path == here.resolve() / "x.db"
    assert tracking.artifact_location == (here.resolve() / "artifacts").as_uri()


def test_an_absolute_sqlite_path_keeps_its_artifacts_beside_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'db' / 'm.db'}")
    tracking = resolve_tracking(tmp_path / "project", None)
    assert tracking.uri == f"sqlite:///{tmp_path / 'db' / 'm.db'}"
    assert tracking.artifact_location == (tmp_path / "db" / "artifacts").as_uri()


@pytest.mark.parametrize("uri", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_sqlite_store_is_refused(tmp_path, uri):
    with pytest.raises(DiagnosticError) as caught:
        resolve_tracking(tmp_path, uri)
    [diagnostic] = caught.value.diagnostics
    assert "in-memory" in diagnostic.message
    assert diagnostic.file == "mlops-gitops.yaml" and diagnostic.path == "spec.tracking_uri"


@pytest.mark.parametrize("uri", ["postgresql://u@db/mlflow", "postgresql+psycopg2://db/mlflow",
                                 "mysql://db/mlflow", "mssql+pyodbc://db/mlflow"])
def test_a_database_without_a_server_is_refused(tmp_path, monkeypatch, uri):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(DiagnosticError) as caught:
        resolve_tracking(tmp_path, None)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.file == "MLFLOW_TRACKING_URI"
    assert "no artifact store" in diagnostic.message and "./mlruns" in diagnostic.message
    assert "mlflow server" in diagnostic.hint and "embedded store" in diagnostic.hint


def test_a_server_is_used_as_it_is(tmp_path):
    tracking = resolve_tracking(tmp_path, "http://127.0.0.1:5000")
    assert tracking.is_http and tracking.artifact_location is None
