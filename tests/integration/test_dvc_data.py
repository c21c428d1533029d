"""Data versioning with real git and DVC repositories and a local remote (no mocks)."""

from __future__ import annotations

import json
import shutil

import pytest

from mlops_gitops.data.versioning import data_version
from tests.integration.conftest import cli, dvc, run

pytestmark = pytest.mark.integration


def test_md5_is_read_from_the_dvc_file(example_repo):
    import hashlib

    version = data_version(example_repo, "data/iris.csv")
    assert version.md5 == hashlib.md5((example_repo / "data/iris.csv").read_bytes()).hexdigest()


def test_fresh_clone_pulls_missing_data_then_validates(example_repo, tmp_path):
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(example_repo), str(clone))
    assert not (clone / "data" / "iris.csv").exists()
    result = cli(clone, "data", "validate", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    reports = {r["dataset"]: r for r in json.loads(result.stdout)}
    assert reports["iris"]["ok"] and reports["iris"]["rows"] == 150
    assert reports["iris"]["md5"] == data_version(example_repo, "data/iris.csv").md5
    assert (clone / "data" / "iris.csv").is_file()


def test_pull_after_cache_and_file_are_deleted(example_repo):
    shutil.rmtree(example_repo / ".dvc" / "cache")
    (example_repo / "data" / "iris.csv").unlink()
    result = cli(example_repo, "data", "validate", "iris")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "iris: data/iris.csv (150 rows" in result.stdout


def test_a_local_remote_that_does_not_exist_is_named(example_repo, tmp_path):
    dvc(example_repo, "remote", "modify", "local", "url", str(tmp_path / "gone"))
    shutil.rmtree(example_repo / ".dvc" / "cache")
    (example_repo / "data" / "iris.csv").unlink()
    result = cli(example_repo, "data", "validate", "iris")
    assert result.returncode == 1
    assert (f"'data/iris.csv' is missing and the local DVC remote '{tmp_path / 'gone'}' does "
            "not exist yet") in result.stderr
    assert "make data" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_failed_pull_shows_dvc_s_reason(example_repo, tmp_path):
    empty = tmp_path / "empty-remote"
    empty.mkdir()
    dvc(example_repo, "remote", "modify", "local", "url", str(empty))
    shutil.rmtree(example_repo / ".dvc" / "cache")
    (example_repo / "data" / "iris.csv").unlink()
    result = cli(example_repo, "data", "validate", "iris")
    assert result.returncode == 1
    assert "'data/iris.csv' is missing and 'dvc pull' failed: " in result.stderr
    assert "no output" not in result.stderr
    assert "failed to pull data from the cloud" in result.stderr  # DVC's own words
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_data_fails_the_gate(example_repo):
    path = example_repo / "data" / "iris.csv"
    path.write_text(path.read_text().replace("5.1,3.5,1.4,0.2,setosa", "51,3.5,1.4,0.2,setoza"))
    result = cli(example_repo, "data", "validate", "iris")
    assert result.returncode == 1
    assert "column 'sepal_length': 1 value(s) above max 10 (e.g. line 2: 51.0)" in result.stdout
    assert "column 'species': 1 value(s) not among the allowed values" in result.stdout


def test_data_diff_between_two_revisions(example_repo):
    path = example_repo / "data" / "iris.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:41] + lines[51:]))  # drop ten setosa rows
    dvc(example_repo, "add", "-q", "data/iris.csv")
    run(example_repo, "git", "commit", "-qam", "drop ten rows")
    dvc(example_repo, "push", "-q")
    result = cli(example_repo, "data", "diff", "iris", "--rev", "HEAD~1", "--rev", "HEAD",
                 "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    diff = json.loads(result.stdout)
    assert diff["rows"] == [150, 140] and diff["rows_removed"] == 10 and diff["rows_added"] == 0
    assert {d["column"] for d in diff["drift"]} >= {"sepal_length", "species"}
    markdown = cli(example_repo, "data", "diff", "iris", "--rev", "HEAD~1", "--rev", "HEAD",
                   "--format", "markdown").stdout
    assert "Rows 150 → 140 (+0 / -10)" in markdown


def test_data_diff_unknown_revision(example_repo):
    result = cli(example_repo, "data", "diff", "iris", "--rev", "nope", "--rev", "HEAD")
    assert result.returncode == 1
    assert "cannot read 'data/iris.csv' at revision 'nope'" in result.stderr
    assert "Traceback" not in result.stderr
