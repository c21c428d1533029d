"""Metrics for evaluations: the batched (bootstrap) forms agree with scikit-learn, missing metrics
carry their reason, slices keep declared values and bins even when they are empty."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_gitops.evaluate.metrics import compute
from mlops_gitops.evaluate.scoring import (
    CONFUSION_METRICS,
    ERROR_METRICS,
    Predictions,
    batch_metric,
    encode,
    resample_metric,
    score,
    slices,
)

labels = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=2, max_size=30)


@settings(max_examples=150, deadline=None)
@given(truth=labels, data=st.data(), name=st.sampled_from(sorted(CONFUSION_METRICS)))
def test_batched_classification_metrics_equal_scikit_learn(truth, data, name):
    n = len(truth)
    pred = data.draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=n, max_size=n))
    idx = np.array(data.draw(st.lists(st.lists(st.integers(0, n - 1), min_size=n, max_size=n),
                                      min_size=1, max_size=4)))
    (codes_true, codes_pred), k = encode(truth, pred)
    batched = batch_metric(name, codes_true, codes_pred, idx, k)
    y, p = np.array(truth), np.array(pred)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [compute(name, y[rows], p[rows]) for rows in idx]
    assert batched == pytest.approx(expected, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(ERROR_METRICS)))
def test_batched_regression_metrics_equal_scikit_learn(data, name):
    n = data.draw(st.integers(2, 25))
    finite = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False)
    y = np.array(data.draw(st.lists(finite, min_size=n, max_size=n)))
    p = np.array(data.draw(st.lists(finite, min_size=n, max_size=n)))
    idx = np.array(data.draw(st.lists(st.lists(st.integers(0, n - 1), min_size=n, max_size=n),
                                      min_size=1, max_size=4)))
    batched = batch_metric(name, y, p, idx)
    expected = [compute(name, y[rows], p[rows]) for rows in idx]
    assert batched == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_resample_metric_falls_back_to_scikit_learn_per_resample():
    y = np.array(["x", "y", "x", "y", "x", "y"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2], [0.4, 0.6]])
    predictions = Predictions(np.array(["x", "y", "x", "y", "x", "y"]), proba, ("x", "y"))
    idx = np.array([[0, 1, 2, 3, 4, 5], [0, 0, 2, 2, 4, 4]])
    values = resample_metric("roc_auc_ovr", y, predictions, idx)
    assert values[0] == 1.0
    assert np.isnan(values[1])  # one class only: roc_auc is not defined


def test_missing_metrics_come_with_the_reason():
    y = np.array([0, 1, 1, 0])
    found, missing = score(["accuracy", "log_loss"], y,
                           Predictions(np.array([0, 1, 0, 0]), proba_error="LinearSVC has no "
                                       "predict_proba"))
    assert found == {"accuracy": 0.75}
    assert missing == {"log_loss": "LinearSVC has no predict_proba"}
    found, missing = score(["accuracy"], y, Predictions(np.array([0, 1, 0, 0])),
                           np.array([], dtype=int))
    assert found == {} and missing == {"accuracy": "no rows"}
    found, missing = score(["r2"], np.array([1.0]), Predictions(np.array([2.0])))
    assert "r2 is not defined" in missing["r2"] or "cannot compute" in missing["r2"]


def test_recall_on_a_single_class_slice_is_that_class_recall():
    """Bug fixed: with one true class and two other predicted classes, 'recall' raised
    (binary average over three labels); it is now the recall of that class."""
    y = np.array(["virginica"] * 5)
    pred = np.array(["virginica", "virginica", "versicolor", "setosa", "virginica"])
    assert compute("recall", y, pred) == pytest.approx(0.6)


def test_slices_keep_declared_values_even_without_rows():
    frame = pd.DataFrame({"species": ["setosa", "virginica", "setosa"]})
    parts, outside = slices(frame, "species", expected=["setosa", "versicolor", "virginica"])
    assert [(p.key, list(p.rows)) for p in parts] == [
        ("species=setosa", [0, 2]), ("species=versicolor", []), ("species=virginica", [1])]
    assert outside == 0


def test_slices_without_declared_values_are_the_values_present():
    frame = pd.DataFrame({"sex": [2, 1, 2, 2]})
    parts, _ = slices(frame, "sex")
    assert [(p.label, len(p.rows)) for p in parts] == [("1", 1), ("2", 3)]


def test_booleans_are_not_numbers_in_slices():
    frame = pd.DataFrame({"active": [True, False, True]})
    parts, _ = slices(frame, "active", expected=[True, False, 1])
    assert [(p.label, len(p.rows)) for p in parts] == [("True", 2), ("False", 1), ("1", 0)]


def test_bins_are_half_open_and_the_last_is_closed():
    frame = pd.DataFrame({"bmi": [10.0, 20.0, 29.9, 30.0, 45.0, 50.0, 70.0]})
    parts, outside = slices(frame, "bmi", bins=[20, 30, 50])
    assert [(p.label, list(p.rows)) for p in parts] == [("[20, 30)", [1, 2]),
                                                        ("[30, 50]", [3, 4, 5])]
    assert outside == 2  # 10 and 70
