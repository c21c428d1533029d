"""Artifact locations recorded in an embedded store follow the store when its folder moves."""

from __future__ import annotations

import sqlite3

from mlops_gitops.registry.relocate import relocate_store
from mlops_gitops.tracking import Tracking

OLD = "file:///old/project/.mlops/artifacts"


def make_store(path, old=OLD):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE experiments (name TEXT, artifact_location TEXT)")
        db.execute("CREATE TABLE runs (artifact_uri TEXT)")
        db.execute("CREATE TABLE logged_models (artifact_location TEXT)")
        db.execute("CREATE TABLE model_versions (source TEXT, storage_location TEXT)")
        db.executemany("INSERT INTO experiments VALUES (?, ?)", [
            ("Default", "/somewhere/mlruns/0"),
            ("mlops-gitops/iris", f"{old}/iris"),
        ])
        db.executemany("INSERT INTO runs VALUES (?)", [
            (f"{old}/iris/r1/artifacts",), (f"{old}2/iris/r2/artifacts",)])  # not under OLD
        db.execute("INSERT INTO logged_models VALUES (?)", (f"{old}/iris/models/m-1/artifacts",))
        db.execute("INSERT INTO model_versions VALUES (?, ?)",
                   ("models:/m-1", f"{old}/iris/models/m-1/artifacts"))


def dump(path):
    with sqlite3.connect(path) as db:
        return {table: db.execute(f"SELECT * FROM {table}").fetchall()
                for table in ("experiments", "runs", "logged_models", "model_versions")}


def test_stale_roots_are_rewritten_to_the_store_s_own(tmp_path):
    make_store(tmp_path / "mlflow.db")
    new = (tmp_path / "artifacts").as_uri()
    tracking = Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", new)
    assert relocate_store(tracking) == [OLD]
    state = dump(tmp_path / "mlflow.db")
    assert state["experiments"] == [("Default", "/somewhere/mlruns/0"),
                                    ("mlops-gitops/iris", f"{new}/iris")]
    assert state["runs"] == [(f"{new}/iris/r1/artifacts",), (f"{OLD}2/iris/r2/artifacts",)]
    assert state["logged_models"] == [(f"{new}/iris/models/m-1/artifacts",)]
    assert state["model_versions"] == [("models:/m-1", f"{new}/iris/models/m-1/artifacts")]
    assert relocate_store(tracking) == []  # in place now: nothing to do
    assert dump(tmp_path / "mlflow.db") == state


def test_a_store_in_place_or_missing_is_left_alone(tmp_path):
    here = (tmp_path / "artifacts").as_uri()
    make_store(tmp_path / "mlflow.db", old=here)
    before = dump(tmp_path / "mlflow.db")
    assert relocate_store(Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", here)) == []
    assert dump(tmp_path / "mlflow.db") == before
    assert relocate_store(Tracking(f"sqlite:///{tmp_path / 'none.db'}", here)) == []
    assert not (tmp_path / "none.db").exists()
