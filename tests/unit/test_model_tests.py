"""Model tests on small real scikit-learn models (and a few hand-made ones whose answers are known
exactly): metric thresholds overall and per slice, the rows-per-slice guard, invariance,
directional, latency and size budgets; and the run against a registry that records results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeClassifier

from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.evaluate.model_tests import Subject, check_model, run_model_tests
from mlops_gitops.examples import IRIS_COLUMNS, iris_frame
from mlops_gitops.spec.models import Column, ModelSpec

from .eval_support import EvalRegistry, edit, example_project, load, train_into


def declared(*tests: dict) -> list:
    """Model tests validated exactly as a spec's are."""
    spec = ModelSpec.model_validate({
        "dataset": "d", "task": "classification", "target": "y", "features": ["x"],
        "estimator": {"class": "sklearn.linear_model.LogisticRegression"},
        "metrics": ["accuracy"], "tests": list(tests)})
    return spec.tests


@pytest.fixture(scope="module")
def iris():
    frame = iris_frame()
    model = LogisticRegression(max_iter=500).fit(frame[IRIS_COLUMNS], frame["species"])
    columns = {"species": Column(type="string",
                                 allowed=["setosa", "versicolor", "virginica", "unseen"])}
    return Subject(model, frame, IRIS_COLUMNS, "species", "classification", 30_000, 42, columns)


def one(tests, subject):
    [outcome] = check_model(tests, subject)
    return outcome


# --- metric tests --------------------------------------------------------------------------------

def test_metric_threshold_on_the_test_rows(iris):
    expected = float((iris.model.predict(iris.frame[IRIS_COLUMNS]) == iris.frame["species"])
                     .mean())
    outcome = one(declared({"name": "floor", "metric": "accuracy", "min": 0.9}), iris)
    assert outcome.passed and outcome.value == pytest.approx(expected)
    failing = one(declared({"name": "ceiling", "metric": "accuracy", "max": 0.5}), iris)
    assert not failing.passed and failing.threshold == "<= 0.5"


def test_sliced_metric_includes_a_declared_value_with_no_rows(iris):
    """'unseen' is an allowed species without test rows: that slice fails, never disappears."""
    outcome = one(declared({"name": "per-species", "metric": "recall", "slice": "species",
                            "min": 0.5}), iris)
    assert [s.label for s in outcome.slices] == ["species=setosa", "species=versicolor",
                                                 "species=virginica", "species=unseen"]
    assert [s.rows for s in outcome.slices] == [50, 50, 50, 0]
    assert not outcome.passed
    assert outcome.slices[3].note == "no test rows" and outcome.slices[3].value is None
    assert all(s.passed for s in outcome.slices[:3])
    assert "failing: species=unseen" in outcome.detail


def test_rows_per_slice_guard(iris):
    subject = Subject(iris.model, iris.frame.iloc[[0, 1, 2, 50, 51, 100]], IRIS_COLUMNS,
                      "species", "classification")
    outcome = one(declared({"name": "guarded", "metric": "accuracy", "slice": "species",
                            "min": 0.0, "min_rows": 3}), subject)
    assert [(s.label, s.passed, s.note) for s in outcome.slices] == [
        ("species=setosa", True, ""),
        ("species=versicolor", False, "2 rows, fewer than min_rows 3"),
        ("species=virginica", False, "1 rows, fewer than min_rows 3")]
    assert not outcome.passed
    overall = one(declared({"name": "too-few", "metric": "accuracy", "min": 0.0,
                            "min_rows": 7}), subject)
    assert not overall.passed and "6 test rows, fewer than min_rows 7" in overall.detail


def test_binned_slices(iris):
    outcome = one(declared({"name": "by-length", "metric": "accuracy", "slice": "sepal_length",
                            "bins": [4, 5.5, 7, 7.5], "min": 0.0}), iris)
    lengths = iris.frame["sepal_length"]
    assert [(s.label, s.rows) for s in outcome.slices] == [
        ("sepal_length=[4, 5.5)", int(((lengths >= 4) & (lengths < 5.5)).sum())),
        ("sepal_length=[5.5, 7)", int(((lengths >= 5.5) & (lengths < 7)).sum())),
        ("sepal_length=[7, 7.5]", int(((lengths >= 7) & (lengths <= 7.5)).sum()))]
    outside = int((lengths > 7.5).sum())
    assert outside > 0 and f"{outside} rows outside the bins" in outcome.detail


def test_missing_slice_column_fails(iris):
    outcome = one(declared({"name": "by-colour", "metric": "accuracy", "slice": "colour",
                            "min": 0.5}), iris)
    assert not outcome.passed and "slice column 'colour' is not in the test data" in \
        outcome.detail


def test_metric_the_model_cannot_compute_fails_with_the_reason(iris):
    model = RidgeClassifier().fit(iris.frame[IRIS_COLUMNS], iris.frame["species"])
    subject = Subject(model, iris.frame, IRIS_COLUMNS, "species", "classification")
    spec = ModelSpec.model_validate({
        "dataset": "d", "task": "classification", "target": "species", "features": ["x"],
        "estimator": {"class": "sklearn.linear_model.RidgeClassifier"}, "metrics": ["accuracy"],
        "tests": [{"name": "loss", "metric": "log_loss", "max": 1.0}]})
    outcome = one(spec.tests, subject)
    assert not outcome.passed and outcome.value is None
    assert outcome.detail == "missing: RidgeClassifier has no predict_proba"


# --- invariance ----------------------------------------------------------------------------------

class EchoColumn:
    """A 'model' whose prediction is the column itself: any noise changes every prediction."""

    def __init__(self, column: str, scale: float = 1.0):
        self.column, self.scale = column, scale

    def predict(self, X):
        return X[self.column].to_numpy() * self.scale


def test_invariance_of_a_model_that_ignores_the_column(iris):
    model = DummyClassifier(strategy="most_frequent").fit(iris.frame[IRIS_COLUMNS],
                                                           iris.frame["species"])
    subject = Subject(model, iris.frame, IRIS_COLUMNS, "species", "classification")
    outcome = one(declared({"name": "noise", "type": "invariance", "column": "sepal_width",
                            "noise": 0.5, "max_flip_rate": 0.0}), subject)
    assert outcome.passed and outcome.value == 0.0


def test_invariance_of_a_model_that_echoes_the_column(iris):
    subject = Subject(EchoColumn("sepal_width"), iris.frame, IRIS_COLUMNS, "species",
                      "classification")
    outcome = one(declared({"name": "noise", "type": "invariance", "column": "sepal_width",
                            "noise": 0.01, "max_flip_rate": 0.5}), subject)
    assert not outcome.passed and outcome.value == 1.0
    assert "150 of 150 predictions flipped" in outcome.detail


def test_invariance_for_regression_counts_moves_beyond_the_tolerance(iris):
    subject = Subject(EchoColumn("sepal_width", 1000.0), iris.frame, IRIS_COLUMNS,
                      "petal_width", "regression")
    strict = one(declared({"name": "n", "type": "invariance", "column": "sepal_width",
                           "noise": 0.1, "max_flip_rate": 0.1, "tolerance": 0}), subject)
    assert strict.value == 1.0 and not strict.passed
    loose = one(declared({"name": "n", "type": "invariance", "column": "sepal_width",
                          "noise": 0.1, "max_flip_rate": 0.1, "tolerance": 1e9}), subject)
    assert loose.value == 0.0 and loose.passed


def test_invariance_on_a_constant_column_fails(iris):
    frame = iris.frame.assign(sepal_width=3.0)
    subject = Subject(iris.model, frame, IRIS_COLUMNS, "species", "classification")
    outcome = one(declared({"name": "n", "type": "invariance", "column": "sepal_width",
                            "noise": 0.1, "max_flip_rate": 0.1}), subject)
    assert not outcome.passed and "constant on the test split" in outcome.detail


def test_invariance_is_reproducible(iris):
    tests = declared({"name": "n", "type": "invariance", "column": "petal_width", "noise": 0.5,
                      "max_flip_rate": 1.0})
    assert one(tests, iris).value == one(tests, iris).value


# --- directional ---------------------------------------------------------------------------------

def test_directional_regression():
    frame = pd.DataFrame({"x": np.arange(20.0), "z": np.ones(20)})
    frame["y"] = 3 * frame["x"] + 1
    model = LinearRegression().fit(frame[["x", "z"]], frame["y"])
    subject = Subject(model, frame, ["x", "z"], "y", "regression")
    up = one(declared({"name": "up", "type": "directional", "column": "x", "delta": 1,
                       "expect": "increase"}), subject)
    assert up.passed and up.value == 1.0
    down = one(declared({"name": "down", "type": "directional", "column": "x", "delta": 1,
                         "expect": "decrease"}), subject)
    assert not down.passed and down.value == 0.0


def test_directional_binary_classifier_uses_the_positive_class_probability():
    frame = pd.DataFrame({"x": np.linspace(-3, 3, 40)})
    frame["y"] = np.where(frame["x"] + np.sin(7 * frame["x"]) > 0, "yes", "no")
    model = LogisticRegression().fit(frame[["x"]], frame["y"])
    subject = Subject(model, frame, ["x"], "y", "classification")
    outcome = one(declared({"name": "up", "type": "directional", "column": "x", "delta": 0.5,
                            "expect": "increase", "min_fraction": 1.0}), subject)
    assert outcome.passed and "probability of 'yes'" in outcome.detail


def test_directional_multiclass_fails_with_an_explanation(iris):
    outcome = one(declared({"name": "up", "type": "directional", "column": "petal_length",
                            "delta": 1, "expect": "increase"}), iris)
    assert not outcome.passed and "binary classifier" in outcome.detail


# --- latency and size ----------------------------------------------------------------------------

def test_latency_budget(iris):
    generous = one(declared({"name": "lat", "type": "latency", "batch": 100, "p95_ms": 10_000}),
                   iris)
    assert generous.passed and generous.value > 0
    assert "calls of 100 row(s)" in generous.detail
    impossible = one(declared({"name": "lat", "type": "latency", "batch": 1,
                               "p95_ms": 1e-9}), iris)
    assert not impossible.passed


@pytest.mark.parametrize("size, budget, passed", [(2_500_000, 2, False), (2_500_000, 3, True),
                                                  (None, 3, False)])
def test_size_budget(iris, size, budget, passed):
    subject = Subject(iris.model, iris.frame, IRIS_COLUMNS, "species", "classification", size)
    outcome = one(declared({"name": "size", "type": "size", "max_mb": budget}), subject)
    assert outcome.passed is passed
    if size:
        assert outcome.value == 2.5


# --- against a registry --------------------------------------------------------------------------

@pytest.fixture
def project_root(tmp_path):
    return example_project(tmp_path / "project")


def test_run_records_tags_and_the_json_artifact(project_root):
    registry = EvalRegistry()
    number = train_into(registry, project_root, "iris-classifier")
    project = load(project_root)
    run = run_model_tests(project, project.located("Model", "iris-classifier"),
                          registry=registry)
    assert run.passed and run.version == number
    assert [o.name for o in run.outcomes] == ["accuracy-floor", "per-species-recall",
                                              "noise-invariance", "latency", "size"]
    tags = registry.versions[("iris-classifier", number)].tags
    assert tags["mlops.tests"] == "passed"
    assert tags["mlops.tests.per-species-recall"] == "pass"
    recorded = registry.artifacts[f"run-iris-classifier-{number}"]["model_tests.json"]
    assert recorded["passed"] is True and recorded["split_hash"] == run.split_hash
    assert len(recorded["tests"]) == 5 and recorded["tests_digest"] == run.tests_digest


def test_failures_are_recorded_and_stale_test_tags_removed(project_root):
    registry = EvalRegistry()
    number = train_into(registry, project_root, "iris-classifier")
    project = load(project_root)
    run_model_tests(project, project.located("Model", "iris-classifier"), registry=registry)
    spec = project_root / "specs" / "models" / "iris-classifier.yaml"
    edit(spec, "{name: accuracy-floor, metric: accuracy, min: 0.85}",
         "{name: accuracy-high, metric: accuracy, min: 0.99}")
    project = load(project_root)  # tests are not in the fingerprint: the same version
    run = run_model_tests(project, project.located("Model", "iris-classifier"),
                          registry=registry)
    assert not run.passed and run.failed == ("accuracy-high",) and run.version == number
    tags = registry.versions[("iris-classifier", number)].tags
    assert tags["mlops.tests"] == "failed" and tags["mlops.tests.accuracy-high"] == "fail"
    assert "mlops.tests.accuracy-floor" not in tags


def test_untrained_spec_says_train_first(project_root):
    project = load(project_root)
    with pytest.raises(DiagnosticError, match="train first"):
        run_model_tests(project, project.located("Model", "iris-classifier"),
                        registry=EvalRegistry())


def test_named_version_that_does_not_exist(project_root):
    registry = EvalRegistry()
    train_into(registry, project_root, "iris-classifier")
    project = load(project_root)
    with pytest.raises(DiagnosticError, match="iris-classifier/9 does not exist"):
        run_model_tests(project, project.located("Model", "iris-classifier"), version=9,
                        registry=registry)


def test_older_version_with_other_features_is_tested_on_its_own_features(project_root):
    registry = EvalRegistry()
    spec = project_root / "specs" / "models" / "iris-classifier.yaml"
    edit(spec, "features: [sepal_length, sepal_width, petal_length, petal_width]",
         "features: [sepal_length, sepal_width, petal_length]")
    old = train_into(registry, project_root, "iris-classifier")
    edit(spec, "features: [sepal_length, sepal_width, petal_length]",
         "features: [sepal_length, sepal_width, petal_length, petal_width]")
    project = load(project_root)
    run = run_model_tests(project, project.located("Model", "iris-classifier"), version=old,
                          registry=registry, record=False)
    assert run.version == old and run.outcomes[0].value > 0.8
    assert "mlops.tests" not in registry.versions[("iris-classifier", old)].tags
