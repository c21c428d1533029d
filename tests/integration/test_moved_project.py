"""A project with the embedded store survives `mv` and `cp -r`: MLflow records absolute artifact
locations, which the store rewrites to its own `.mlops/artifacts` when it is opened elsewhere."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from tests.integration.conftest import cli

pytestmark = pytest.mark.integration


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def files(folder):
    return {p.relative_to(folder) for p in folder.rglob("*") if p.is_file()}


def recorded_locations(root):
    with sqlite3.connect(root / ".mlops" / "mlflow.db") as db:
        return [row[0] for query in ("SELECT artifact_uri FROM runs",
                                     "SELECT storage_location FROM model_versions",
                                     "SELECT artifact_location FROM logged_models")
                for row in db.execute(query)]


def test_a_moved_project_finds_its_models_and_writes_only_inside_itself(example_repo, tmp_path):
    ok(cli(example_repo, "train", "iris-classifier"))
    moved = tmp_path / "moved"
    shutil.move(example_repo, moved)

    tested = ok(cli(moved, "test", "iris-classifier"))
    assert "No such artifact" not in tested.stderr
    ok(cli(moved, "train", "iris-classifier", "--force"))
    ok(cli(moved, "compare", "iris-classifier"))

    assert not example_repo.exists()  # nothing recreated at the old path
    assert all(location.startswith((moved / ".mlops" / "artifacts").as_uri())
               for location in recorded_locations(moved))


def test_a_copied_project_uses_its_own_artifacts(example_repo, tmp_path):
    ok(cli(example_repo, "train", "iris-classifier"))
    original = files(example_repo / ".mlops" / "artifacts")
    copy = tmp_path / "copy"
    shutil.copytree(example_repo, copy)

    ok(cli(copy, "test", "iris-classifier"))
    retrained = json.loads(ok(cli(copy, "train", "iris-classifier", "--force", "--format",
                                  "json")).stdout)
    assert retrained[0]["version"] == 2

    assert files(example_repo / ".mlops" / "artifacts") == original  # the original untouched
    assert len(files(copy / ".mlops" / "artifacts")) > len(original)
    ok(cli(example_repo, "test", "iris-classifier"))  # and still working on its own store
    assert all(location.startswith((example_repo / ".mlops" / "artifacts").as_uri())
               for location in recorded_locations(example_repo))
