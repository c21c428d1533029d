"""A second `run` on an unchanged project is a no-op that says what the first said, without
importing MLflow, scikit-learn or pandas; the SQLite reader agrees with the MLflow adapter on a
real embedded store (and steps aside for one it does not recognise). Speed is measured in
benchmarks/noop_speed.py, never asserted here."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from tests.integration.conftest import clean_env, cli, dvc, run

pytestmark = pytest.mark.integration

HEAVY = ("mlflow", "sklearn", "pandas")
PROBE = """
import json, sys
sys.argv = ["mlops-gitops", *sys.argv[1:]]
from mlops_gitops.cli.app import run
try:
    run()
except SystemExit:
    pass
finally:
    print(json.dumps(sorted(m for m in ("mlflow", "sklearn", "pandas") if m in sys.modules)),
          file=sys.stderr)
"""


@pytest.fixture(autouse=True)
def no_global_tracking_uri(monkeypatch):
    """In-process MLflow use exports MLFLOW_TRACKING_URI: never let it point at another test's
    store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)


def lifecycle(repo) -> dict[str, dict]:
    result = cli(repo, "run", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    return {step["name"]: step for step in json.loads(result.stdout)}


def heavy_imports(repo, *args) -> list[str]:
    import subprocess

    result = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=repo, env=clean_env(),
                            capture_output=True, text=True)
    return json.loads(result.stderr.strip().splitlines()[-1])


def test_second_run_is_a_noop_that_says_the_same(example_repo):
    first = lifecycle(example_repo)
    second = lifecycle(example_repo)
    assert second["train"]["summary"] == "0 trained, 2 unchanged"
    assert second["test"]["summary"].endswith("(2 recorded result(s) still hold)")
    assert second["compare"]["summary"].endswith("(2 recorded verdict(s) still hold)")
    for step in ("lint", "data validate", "test", "compare"):
        assert second[step]["details"] == first[step]["details"], step
        assert second[step]["ok"]
    assert second["apply dev"]["summary"].endswith("registry already matches the specs")
    assert heavy_imports(example_repo, "run") == []
    assert heavy_imports(example_repo, "plan", "--env", "dev") == []
    assert heavy_imports(example_repo, "status") == []

    # changed data (tracked by DVC): validated, trained, tested and compared again
    data = example_repo / "data" / "iris.csv"
    lines = data.read_text().splitlines(keepends=True)
    data.write_text("".join(lines[:-3]))
    dvc(example_repo, "add", "-q", "data/iris.csv")
    third = lifecycle(example_repo)
    assert "iris: 147 rows" in "\n".join(third["data validate"]["details"])
    assert third["train"]["summary"] == "1 trained, 1 unchanged"
    assert third["test"]["summary"].endswith("(1 recorded result(s) still hold)")
    assert "iris-classifier/2: 5/5 model tests passed" in third["test"]["details"]
    assert third["compare"]["summary"].endswith("(1 recorded verdict(s) still hold)")


def test_a_moved_champion_and_a_changed_policy_compare_again(example_repo):
    from mlops_gitops.registry.mlflow import MlflowRegistry
    from mlops_gitops.spec.project import load_project
    from mlops_gitops.tracking import tracking_for

    lifecycle(example_repo)
    MlflowRegistry(tracking_for(load_project(example_repo))).set_alias(
        "iris-classifier", "prod", 1)
    moved = lifecycle(example_repo)
    assert moved["compare"]["summary"].endswith("(1 recorded verdict(s) still hold)")
    assert any("against champion 1" in line for line in moved["compare"]["details"])
    again = lifecycle(example_repo)
    assert again["compare"]["summary"].endswith("(2 recorded verdict(s) still hold)")
    assert again["compare"]["details"] == moved["compare"]["details"]  # the interval too

    policy = example_repo / "policies" / "classification.yaml"
    policy.write_text(policy.read_text().replace("accuracy: {min: 0.85}",
                                                 "accuracy: {min: 0.8}"))
    changed = lifecycle(example_repo)
    assert changed["test"]["summary"].endswith("(2 recorded result(s) still hold)")
    assert changed["compare"]["summary"].endswith("(1 recorded verdict(s) still hold)")


def _same(fast, slow) -> None:
    assert sorted(fast.list_models(), key=lambda m: m.name) == \
        sorted(slow.list_models(), key=lambda m: m.name)
    versions = sorted(slow.list_versions(), key=lambda v: (v.name, v.version))
    assert sorted(fast.list_versions(), key=lambda v: (v.name, v.version)) == versions
    for model in slow.list_models() + []:
        assert fast.get_model(model.name) == slow.get_model(model.name)
        assert fast.model_aliases(model.name) == slow.model_aliases(model.name)
    assert fast.get_model("no-such-model") is None and slow.get_model("no-such-model") is None
    for v in versions:
        assert fast.get_version(v.name, v.version) == slow.get_version(v.name, v.version)
        fingerprint = v.tags.get("mlops.fingerprint", "")
        assert fast.find_version(v.name, fingerprint) == slow.find_version(v.name, fingerprint)
        assert fast.find_version(v.name, "0" * 64) is None
        assert fast.get_version(v.name, 999) is None and slow.get_version(v.name, 999) is None


def test_sqlite_reader_agrees_with_the_mlflow_adapter(example_repo, monkeypatch):
    from mlops_gitops.reconcile.live import read_live_state
    from mlops_gitops.registry import sqlite
    from mlops_gitops.registry.mlflow import MlflowRegistry
    from mlops_gitops.registry.rest import registry_reader
    from mlops_gitops.spec.project import load_project
    from mlops_gitops.tracking import tracking_for

    lifecycle(example_repo)
    result = cli(example_repo, "train", "--force", "iris-classifier")  # a second version
    assert result.returncode == 0, result.stderr
    tracking = tracking_for(load_project(example_repo))
    slow = MlflowRegistry(tracking)
    slow.set_alias("iris-classifier", "prod", 1)
    slow.set_alias("iris-classifier", "canary", 2)
    slow.ensure_model("someone-elses", "not ours", {"team": "other", "empty": ""})
    slow.set_version_tags("diabetes-regressor", 1, {"note": "a value with 'quotes' and ü"})
    fast = registry_reader(tracking)
    assert isinstance(fast, sqlite.SqliteRegistryReader)
    _same(fast, slow)
    assert read_live_state(fast, "example").fingerprint() == \
        read_live_state(slow, "example").fingerprint()
    plan = cli(example_repo, "plan", "--env", "dev", "--format", "json")

    # a schema the reader does not know (another MLflow version): the MLflow client answers
    monkeypatch.setitem(sqlite.SCHEMA, "model_versions",
                        sqlite.SCHEMA["model_versions"] | {"column_of_the_future"})
    fallback = registry_reader(tracking)
    assert isinstance(fallback, MlflowRegistry)
    assert read_live_state(fallback, "example").fingerprint() == \
        read_live_state(slow, "example").fingerprint()
    assert json.loads(plan.stdout)["live_fingerprint"] == \
        read_live_state(slow, "example").fingerprint()


def test_a_moved_project_is_read_through_mlflow_until_relocated(example_repo, tmp_path):
    lifecycle(example_repo)
    moved = tmp_path / "elsewhere"
    shutil.move(example_repo, moved)
    from mlops_gitops.registry.ports import LookupUnavailable
    from mlops_gitops.registry.sqlite import SqliteRegistryReader
    from mlops_gitops.spec.project import load_project
    from mlops_gitops.tracking import tracking_for

    tracking = tracking_for(load_project(moved))
    with pytest.raises(LookupUnavailable):
        SqliteRegistryReader(tracking)
    again = lifecycle(moved)  # the MLflow adapter relocates the store, then reads are fast
    assert again["train"]["summary"] == "0 trained, 2 unchanged"
    SqliteRegistryReader(tracking)
    run(moved, "git", "status")
