"""Skip what is already known: recorded model-test results and verdicts are reused only while
they still hold, and then say exactly what running the step again says; data validation is
remembered by (md5, spec); the SQLite reader refuses a schema it does not know."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops_gitops.registry.ports import RegisteredModel

from .eval_support import EvalRegistry, edit, example_project, load, train_into

MODEL = "iris-classifier"


class Reader(EvalRegistry):
    """The in-memory registry with the reader's get_model (aliases)."""

    def get_model(self, name):
        if name not in self.aliases:
            return None
        return RegisteredModel(name, aliases=dict(self.aliases[name]))


@dataclass
class Session:
    registry_: Reader

    @property
    def reader(self):
        return self.registry_

    def registry(self):
        return self.registry_


@dataclass(frozen=True)
class Trained:
    registered_name: str
    version: int
    fingerprint: str


@pytest.fixture
def setup(tmp_path):
    root = example_project(tmp_path / "project")
    registry = Reader()
    number = train_into(registry, root, MODEL)
    lineage = registry.artifacts[f"run-{MODEL}-{number}"]["lineage.json"]
    registry.set_version_tags(MODEL, number, {  # what train records
        "mlops.test_split_hash": lineage["dataset"]["test_split_hash"]})
    return root, registry, number


def steps(root, registry, number):
    from mlops_gitops.lifecycle.steps import compare_step, test_step
    from mlops_gitops.targets import training_target

    project = load(root)
    model = project.located("Model", MODEL)
    trained = {MODEL: Trained(MODEL, number, training_target(project, model).fingerprint)}
    session = Session(registry)
    return (test_step(project, [model], session, trained),
            compare_step(project, [model], session, trained))


def reused(step) -> bool:
    return "still hold" in step.summary


def test_recorded_results_are_reused_and_say_what_a_new_run_says(setup):
    root, registry, number = setup
    test1, compare1 = steps(root, registry, number)
    assert test1.ok and compare1.ok and not reused(test1) and not reused(compare1)
    test2, compare2 = steps(root, registry, number)
    assert reused(test2) and reused(compare2)
    assert (test2.ok, test2.details) == (test1.ok, test1.details)
    assert (compare2.ok, compare2.details) == (compare1.ok, compare1.details)


def test_a_moved_champion_compares_again_then_reuses_with_the_interval(setup):
    root, registry, number = setup
    steps(root, registry, number)
    registry.aliases[MODEL]["prod"] = number  # the champion moved (from none)
    test2, compare2 = steps(root, registry, number)
    assert reused(test2) and not reused(compare2) and compare2.ok
    assert any("interval" in line for line in compare2.details)
    _, compare3 = steps(root, registry, number)
    assert reused(compare3) and compare3.details == compare2.details


def test_a_changed_policy_compares_again(setup):
    root, registry, number = setup
    steps(root, registry, number)
    edit(root / "policies" / "classification.yaml", "accuracy: {min: 0.85}",
         "accuracy: {min: 0.8}")
    test2, compare2 = steps(root, registry, number)
    assert reused(test2) and not reused(compare2)


def test_changed_tests_run_again(setup):
    root, registry, number = setup
    steps(root, registry, number)
    edit(root / "specs" / "models" / "iris-classifier.yaml",
         "metric: accuracy, min: 0.85}", "metric: accuracy, min: 0.8}")
    test2, compare2 = steps(root, registry, number)
    assert not reused(test2) and test2.ok


@pytest.mark.parametrize("forged", [
    {"mlops.tests_digest": "0" * 16},
    {"mlops.tests_split_hash": "forged"},
    {"mlops.test_split_hash": "moved"},
    {"mlops.tests": "passed ", "mlops.verdict": "blessed "},
    {"mlops.tests.not-declared": "pass"},
    {"mlops.fingerprint": "f" * 64},
    {"mlops.status": "registering"},
])
def test_forged_or_half_written_tags_run_again(setup, forged):
    root, registry, number = setup
    steps(root, registry, number)
    registry.set_version_tags(MODEL, number, forged)
    test2, compare2 = steps(root, registry, number)
    assert not reused(test2)
    if set(forged) & {"mlops.test_split_hash", "mlops.verdict", "mlops.fingerprint",
                      "mlops.status"}:
        assert not reused(compare2)


@pytest.mark.parametrize("key", ["mlops.tests.noise-invariance", "mlops.tests_digest",
                                 "mlops.verdict.checks", "mlops.verdict.alias",
                                 "mlops.verdict.policy_digest", "mlops.verdict.champion"])
def test_a_missing_tag_runs_again(setup, key):
    root, registry, number = setup
    steps(root, registry, number)
    assert key in registry.versions[(MODEL, number)].tags
    registry.delete_version_tags(MODEL, number, [key])
    test2, compare2 = steps(root, registry, number)
    assert not reused(test2 if key.startswith("mlops.tests") else compare2)


def test_a_champion_without_a_recorded_interval_compares_again(setup):
    root, registry, number = setup
    registry.aliases[MODEL]["prod"] = number
    steps(root, registry, number)
    registry.delete_version_tags(MODEL, number, ["mlops.verdict.interval"])
    _, compare2 = steps(root, registry, number)
    assert not reused(compare2)


def test_a_forged_champion_number_compares_again(setup):
    root, registry, number = setup
    steps(root, registry, number)
    registry.set_version_tags(MODEL, number, {"mlops.verdict.champion": "x1"})
    _, compare2 = steps(root, registry, number)
    assert not reused(compare2)


# --- data validation remembered ------------------------------------------------------------

def _dataset(root: Path):
    return load(root).located("Dataset", "iris")


def test_data_validation_is_remembered_by_md5_and_spec(tmp_path):
    from mlops_gitops.data.validated import CACHE_FILE, KnownReport, validate_cached

    root = example_project(tmp_path / "project")
    first = validate_cached(root, _dataset(root))
    assert first.ok and not isinstance(first, KnownReport)
    second = validate_cached(root, _dataset(root))
    assert isinstance(second, KnownReport)
    assert (second.dataset, second.md5, second.rows, second.columns) == \
        (first.dataset, first.md5, first.rows, first.columns)
    edit(root / "specs" / "datasets" / "iris.yaml", "min_rows: 100", "min_rows: 101")
    assert not isinstance(validate_cached(root, _dataset(root)), KnownReport)
    (root / "data" / "iris.csv").write_text((root / "data" / "iris.csv").read_text()
                                            + "1,1,1,1,setosa\n")
    third = validate_cached(root, _dataset(root))
    assert not isinstance(third, KnownReport) and third.md5 != first.md5
    assert (root / CACHE_FILE).is_file()


@pytest.mark.parametrize("forge", [
    lambda e: e.update(rows="150"), lambda e: e.update(md5="0" * 32),
    lambda e: e.update(dataset="other"), lambda e: e.update(rows=-1), lambda e: e.clear(),
])
def test_a_forged_cache_entry_validates_again(tmp_path, forge):
    from mlops_gitops.data.validated import CACHE_FILE, KnownReport, validate_cached

    root = example_project(tmp_path / "project")
    validate_cached(root, _dataset(root))
    cache = root / CACHE_FILE
    data = json.loads(cache.read_text())
    for entry in data.values():
        forge(entry)
    cache.write_text(json.dumps(data))
    assert not isinstance(validate_cached(root, _dataset(root)), KnownReport)


def test_a_corrupt_cache_file_validates_again(tmp_path):
    from mlops_gitops.data.validated import CACHE_FILE, KnownReport, validate_cached

    root = example_project(tmp_path / "project")
    (root / CACHE_FILE).parent.mkdir(parents=True)
    (root / CACHE_FILE).write_text("[not json")
    assert validate_cached(root, _dataset(root)).ok
    assert isinstance(validate_cached(root, _dataset(root)), KnownReport)


# --- the SQLite reader's schema check ------------------------------------------------------

def _store(path: Path, versions_columns: str, workspace: str = "") -> None:
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE registered_models (name, description{workspace})")
        db.execute(f"CREATE TABLE registered_model_tags (key, value, name{workspace})")
        db.execute(f"CREATE TABLE registered_model_aliases (alias, version, name{workspace})")
        db.execute(f"CREATE TABLE model_versions ({versions_columns}{workspace})")
        db.execute(f"CREATE TABLE model_version_tags (key, value, name, version{workspace})")


def test_sqlite_reader_refuses_an_unknown_schema(tmp_path):
    from mlops_gitops.registry.ports import LookupUnavailable
    from mlops_gitops.registry.sqlite import SqliteRegistryReader
    from mlops_gitops.tracking import Tracking

    path = tmp_path / "mlflow.db"
    _store(path, "name, version, source, run_id")  # no current_stage: another schema
    with pytest.raises(LookupUnavailable):
        SqliteRegistryReader(Tracking(f"sqlite:///{path}"))


def test_sqlite_reader_refuses_other_workspaces(tmp_path, monkeypatch):
    from mlops_gitops.registry.ports import LookupUnavailable
    from mlops_gitops.registry.sqlite import SqliteRegistryReader
    from mlops_gitops.tracking import Tracking

    path = tmp_path / "mlflow.db"
    _store(path, "name, version, current_stage, source, run_id", ", workspace")
    tracking = Tracking(f"sqlite:///{path}")
    assert SqliteRegistryReader(tracking).list_models() == []
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO registered_models VALUES ('m', '', 'team-a')")
    with pytest.raises(LookupUnavailable):
        SqliteRegistryReader(tracking)
    monkeypatch.setenv("MLFLOW_ENABLE_WORKSPACES", "true")
    with pytest.raises(LookupUnavailable):
        SqliteRegistryReader(tracking)


def test_sqlite_reader_of_a_store_not_created_yet(tmp_path):
    from mlops_gitops.registry.sqlite import SqliteRegistryReader
    from mlops_gitops.tracking import Tracking

    reader = SqliteRegistryReader(Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}"))
    assert reader.list_models() == [] and reader.list_versions() == []
    assert reader.get_model("m") is None and reader.find_version("m", "f") is None
