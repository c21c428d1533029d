"""Drift statistics and the deterministic split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_gitops.data.diff import diff_frames
from mlops_gitops.data.drift import frame_drift, psi
from mlops_gitops.data.split import frame_hash, split_frame
from mlops_gitops.examples import iris_frame
from mlops_gitops.spec.models import Split


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 20_000)
    assert psi(reference, rng.normal(0, 1, 20_000)) < 0.01
    assert psi(reference, rng.normal(1.0, 1, 20_000)) > 0.5


def test_psi_handles_a_constant_reference():
    assert psi(np.zeros(100), np.zeros(100)) == pytest.approx(0.0, abs=1e-9)
    assert psi(np.zeros(100), np.ones(100)) > 1


def test_frame_drift_numeric_and_categorical():
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 5000), "c": rng.choice(["a", "b"], 5000)})
    same = pd.DataFrame({"x": rng.normal(0, 1, 5000), "c": rng.choice(["a", "b"], 5000)})
    shifted = pd.DataFrame({"x": rng.normal(2, 1, 5000),
                            "c": rng.choice(["a", "b"], 5000, p=[0.9, 0.1])})
    calm = {d.column: d for d in frame_drift(reference, same)}
    moved = {d.column: d for d in frame_drift(reference, shifted)}
    assert calm["x"].kind == "numeric" and calm["c"].kind == "categorical"
    assert calm["x"].ks_pvalue > 0.01 and moved["x"].ks_pvalue < 1e-6
    assert moved["x"].psi > 1 > calm["x"].psi
    assert calm["c"].js_distance < 0.05 < moved["c"].js_distance
    assert moved["c"].chi2_pvalue < 1e-6 < calm["c"].chi2_pvalue
    assert moved["x"].score("psi") == moved["x"].psi


def test_split_is_deterministic_and_stratified():
    frame = iris_frame()
    spec = Split(test_fraction=0.3, seed=42, stratify="species")
    first, second = split_frame(frame, spec), split_frame(frame.copy(), spec)
    assert first.test_hash == second.test_hash
    assert first.test.index.equals(second.test.index)
    assert len(first.test) == 45 and len(first.train) == 105
    assert first.test["species"].value_counts().tolist() == [15, 15, 15]
    other = split_frame(frame, Split(test_fraction=0.3, seed=43, stratify="species"))
    assert other.test_hash != first.test_hash


def test_frame_hash_sees_a_changed_value():
    frame = iris_frame()
    changed = frame.copy()
    changed.loc[3, "sepal_length"] += 0.1
    assert frame_hash(frame) != frame_hash(changed)


def test_diff_frames_counts_rows_and_schema_changes():
    old = iris_frame()
    new = pd.concat([old.iloc[10:], old.iloc[:3]], ignore_index=True)
    new["sepal_length"] = new["sepal_length"] * 1.5
    new["extra"] = 1
    diff = diff_frames("iris", "data/iris.csv", ("a", "b"), old, new)
    assert diff.rows == (150, 143)
    assert diff.columns_added == ["extra"] and diff.columns_removed == []
    assert diff.changed and diff.rows_added == 143 and diff.rows_removed == 150
    drift = {d.column: d for d in diff.drift}
    assert drift["sepal_length"].psi > 1 and drift["petal_width"].psi < 0.1
