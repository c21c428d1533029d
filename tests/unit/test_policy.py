"""Blessing logic with hand-computed numbers: value thresholds, change thresholds (absolute and
relative, both directions), slices, missing metrics, no champion, and the bootstrap interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlops_gitops.evaluate.policy import (
    DeltaInterval,
    Scores,
    bootstrap_delta,
    direction,
    improvement,
    judge,
)
from mlops_gitops.spec.models import PolicySpec


def policy(**thresholds) -> PolicySpec:
    primary = next(iter(thresholds), "accuracy")
    return PolicySpec(primary=primary, thresholds=thresholds)


def scores(**values) -> Scores:
    return Scores({None: values})


def only(verdict, kind):
    [check] = [c for c in verdict.checks if c.kind == kind]
    return check


# --- value thresholds ----------------------------------------------------------------------------

@pytest.mark.parametrize("value, passed", [(0.85, True), (0.8499, False), (0.9, True)])
def test_min_is_inclusive(value, passed):
    verdict = judge("p", policy(accuracy={"min": 0.85}), scores(accuracy=value), None)
    assert only(verdict, "min").passed is passed
    assert verdict.blessed is passed


@pytest.mark.parametrize("value, passed", [(60.0, True), (60.01, False), (12.0, True)])
def test_max_is_inclusive(value, passed):
    verdict = judge("p", policy(mae={"max": 60}), scores(mae=value), None)
    assert only(verdict, "max").passed is passed


def test_value_thresholds_do_not_depend_on_direction():
    """min/max are plain bounds: a max on accuracy and a min on mae work as written."""
    verdict = judge("p", policy(accuracy={"max": 0.99}, mae={"min": 1.0}),
                    scores(accuracy=0.995, mae=0.5), None)
    assert [c.passed for c in verdict.checks] == [False, False]


# --- change thresholds ---------------------------------------------------------------------------

def test_absolute_change_higher_is_better():
    rules = policy(f1_macro={"change": {"absolute": -0.01}})
    champion = scores(f1_macro=0.90)
    # 0.885 - 0.900 = -0.015 < -0.01: more than the tolerated loss
    worse = judge("p", rules, scores(f1_macro=0.885), champion)
    check = only(worse, "change.absolute")
    assert check.passed is False and check.delta == pytest.approx(-0.015)
    assert not worse.blessed
    # 0.895 - 0.900 = -0.005 >= -0.01
    assert judge("p", rules, scores(f1_macro=0.895), champion).blessed


def test_absolute_change_lower_is_better():
    """mae: improvement = champion - challenger; 40 -> 41 is -1, 40 -> 40.4 is -0.4."""
    rules = policy(mae={"change": {"absolute": -0.5}})
    champion = scores(mae=40.0)
    assert only(judge("p", rules, scores(mae=41.0), champion), "change.absolute").passed is False
    assert only(judge("p", rules, scores(mae=40.4), champion), "change.absolute").passed is True
    check = only(judge("p", rules, scores(mae=39.0), champion), "change.absolute")
    assert check.passed is True and check.delta == -1.0  # delta is always challenger - champion


def test_positive_absolute_change_requires_a_gain():
    rules = policy(accuracy={"change": {"absolute": 0.02}})
    champion = scores(accuracy=0.90)
    assert not judge("p", rules, scores(accuracy=0.91), champion).blessed
    assert judge("p", rules, scores(accuracy=0.92), champion).blessed


def test_floating_point_rounding_does_not_fail_an_exact_boundary():
    """0.9 - 0.8 == 0.09999999999999998 in floating point; the threshold 0.1 still passes."""
    assert 0.9 - 0.8 < 0.1
    rules = policy(accuracy={"change": {"absolute": 0.1}})
    assert judge("p", rules, scores(accuracy=0.9), scores(accuracy=0.8)).blessed


def test_relative_change_lower_is_better():
    """mae 40 -> 42 is (40 - 42) / 40 = -5%: exactly the -5% allowed; 42.1 is -5.25%."""
    rules = policy(mae={"change": {"relative": -0.05}})
    champion = scores(mae=40.0)
    check = only(judge("p", rules, scores(mae=42.0), champion), "change.relative")
    assert check.passed is True and check.relative_delta == pytest.approx(0.05)
    assert only(judge("p", rules, scores(mae=42.1), champion), "change.relative").passed is False


def test_relative_change_higher_is_better():
    """r2 0.5 -> 0.45 is -0.05 / 0.5 = -10%: fails -5%, passes -10%."""
    champion = scores(r2=0.5)
    assert not judge("p", policy(r2={"change": {"relative": -0.05}}), scores(r2=0.45),
                     champion).blessed
    assert judge("p", policy(r2={"change": {"relative": -0.1}}), scores(r2=0.45),
                 champion).blessed


def test_relative_change_against_a_negative_champion():
    """r2 -0.2 -> -0.1 is an improvement of 0.1, relative to |-0.2|: +50%."""
    rules = policy(r2={"change": {"relative": 0.4}})
    check = only(judge("p", rules, scores(r2=-0.1), scores(r2=-0.2)), "change.relative")
    assert check.passed is True and check.relative_delta == pytest.approx(0.5)


@pytest.mark.parametrize("challenger, passed", [(0.0, True), (0.1, True), (-0.1, False)])
def test_relative_change_against_a_zero_champion(challenger, passed):
    check = only(judge("p", policy(r2={"change": {"relative": 0.0}}), scores(r2=challenger),
                       scores(r2=0.0)), "change.relative")
    assert check.passed is passed
    assert "champion is 0" in check.note


def test_absolute_and_relative_are_both_checked():
    rules = policy(accuracy={"min": 0.8, "change": {"absolute": -0.05, "relative": -0.01}})
    verdict = judge("p", rules, scores(accuracy=0.88), scores(accuracy=0.90))
    # -0.02 passes the absolute -0.05; -0.02 / 0.9 = -2.2% fails the relative -1%
    assert [(c.kind, c.passed) for c in verdict.checks] == [
        ("min", True), ("change.absolute", True), ("change.relative", False)]
    assert verdict.summary() == "2/3 passed"


def test_value_checks_show_the_champion_too():
    verdict = judge("p", policy(accuracy={"min": 0.8}), scores(accuracy=0.9),
                    scores(accuracy=0.85))
    check = only(verdict, "min")
    assert (check.champion, check.challenger) == (0.85, 0.9)
    assert check.delta == pytest.approx(0.05)


def test_direction_defaults_by_metric_and_explicit_setting():
    assert direction("accuracy") is True and direction("mae") is False
    assert direction("log_loss") is False and direction("r2") is True
    assert improvement(0.9, 0.8, True) == pytest.approx(0.1)
    assert improvement(38.0, 40.0, False) == pytest.approx(2.0)


# --- champion missing, metric missing -----------------------------------------------------------

def test_no_champion_skips_change_thresholds_but_not_value_thresholds():
    rules = policy(f1_macro={"min": 0.85, "change": {"absolute": -0.01}})
    verdict = judge("p", rules, scores(f1_macro=0.9), None)
    assert verdict.blessed
    assert [c.status for c in verdict.checks] == ["pass", "skipped"]
    assert verdict.summary() == "1/1 passed, 1 skipped"
    assert any("no champion" in note and "value thresholds still apply" in note
               for note in verdict.notes)
    failing = judge("p", rules, scores(f1_macro=0.8), None)
    assert not failing.blessed


def test_missing_challenger_metric_fails_every_threshold_on_it():
    challenger = Scores({None: {"accuracy": 0.9}}, {None: {"log_loss": "no predict_proba"}})
    rules = policy(log_loss={"max": 0.5, "change": {"absolute": 0.0}})
    verdict = judge("p", rules, challenger, scores(log_loss=0.3))
    assert not verdict.blessed
    assert [c.passed for c in verdict.checks] == [False, False]
    assert all("no predict_proba" in c.note for c in verdict.checks)


def test_metric_never_computed_fails_and_says_so():
    verdict = judge("p", policy(r2={"min": 0.1}), scores(accuracy=0.9), None)
    [check] = verdict.checks
    assert check.passed is False and "r2 was not computed overall" in check.note


def test_missing_champion_metric_fails_only_the_change_threshold():
    champion = Scores({None: {}}, {None: {"f1_macro": "predict failed"}})
    rules = policy(f1_macro={"min": 0.5, "change": {"absolute": -0.01}})
    verdict = judge("p", rules, scores(f1_macro=0.9), champion)
    assert [c.passed for c in verdict.checks] == [True, False]
    assert "champion value missing: predict failed" in verdict.checks[1].note


def test_champion_that_cannot_be_evaluated_is_not_blessed_with_the_reason():
    rules = policy(f1_macro={"min": 0.5, "change": {"absolute": -0.01}})
    verdict = judge("p", rules, scores(f1_macro=0.9), None,
                    champion_problem="trained on features the current data lacks: petal_area")
    assert not verdict.blessed
    assert verdict.checks[1].note == ("champion not evaluated: trained on features the current "
                                      "data lacks: petal_area")
    assert any("could not be evaluated" in n for n in verdict.notes)


def test_policy_without_thresholds_blesses_and_says_why():
    verdict = judge("lenient", PolicySpec(primary="r2"), scores(r2=0.1), None)
    assert verdict.blessed and verdict.checks == ()
    assert "has no thresholds" in verdict.notes[0]


# --- slices --------------------------------------------------------------------------------------

def test_every_threshold_applies_on_every_slice():
    challenger = Scores({None: {"accuracy": 0.9},
                         "species=setosa": {"accuracy": 1.0},
                         "species=virginica": {"accuracy": 0.7}})
    champion = Scores({None: {"accuracy": 0.88},
                       "species=setosa": {"accuracy": 1.0},
                       "species=virginica": {"accuracy": 0.8}})
    rules = policy(accuracy={"min": 0.75, "change": {"absolute": -0.05}})
    verdict = judge("p", rules, challenger, champion,
                    slice_keys=("species=setosa", "species=virginica"))
    assert len(verdict.checks) == 3 * 2
    failed = [(c.slice, c.kind) for c in verdict.failed]
    # virginica: 0.7 < 0.75, and 0.7 - 0.8 = -0.1 < -0.05
    assert failed == [("species=virginica", "min"), ("species=virginica", "change.absolute")]
    assert not verdict.blessed


def test_a_slice_without_rows_fails():
    challenger = Scores({None: {"accuracy": 0.9}, "species=setosa": {}},
                        {"species=setosa": {"accuracy": "no rows"}})
    verdict = judge("p", policy(accuracy={"min": 0.5}), challenger, None,
                    slice_keys=("species=setosa",))
    assert [c.passed for c in verdict.checks] == [True, False]
    assert verdict.checks[1].note == "missing: no rows"


def test_descriptions():
    rules = policy(mae={"max": 60, "change": {"absolute": -0.5, "relative": -0.05}})
    verdict = judge("p", rules, scores(mae=1.0), scores(mae=1.0))
    assert [c.describe() for c in verdict.checks] == [
        "<= 60", "improvement >= -0.5 (lower is better)",
        "relative improvement >= -0.05 (-5%) (lower is better)"]


def test_to_dict_is_json_ready():
    import json

    verdict = judge("p", policy(accuracy={"min": 0.5, "change": {"absolute": 0}}),
                    scores(accuracy=0.6), scores(accuracy=0.5))
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["verdict"] == "blessed" and data["summary"] == "2/2 passed"
    assert data["checks"][1]["delta"] == pytest.approx(0.1)


# --- bootstrap -----------------------------------------------------------------------------------

def _mean_statistic(a: np.ndarray, b: np.ndarray):
    return lambda idx: (a[idx].mean(axis=1), b[idx].mean(axis=1))


def test_identical_models_give_a_zero_interval():
    values = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    interval = bootstrap_delta("accuracy", _mean_statistic(values, values), len(values),
                               observed=0.0, higher_is_better=True)
    assert (interval.low, interval.high) == (0.0, 0.0)
    assert interval.reading == "noise" and interval.resamples == 1000


def test_a_constant_offset_gives_exactly_that_interval():
    base = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0])
    interval = bootstrap_delta("r2", _mean_statistic(base + 0.25, base), len(base),
                               observed=0.25, higher_is_better=True)
    assert interval.low == pytest.approx(0.25) and interval.high == pytest.approx(0.25)
    assert interval.reading == "better"


def test_lower_is_better_reads_the_sign_the_other_way():
    base = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0])
    interval = bootstrap_delta("mae", _mean_statistic(base + 1.0, base), len(base),
                               observed=1.0, higher_is_better=False)
    assert interval.reading == "worse"  # a larger error is worse
    assert "worse beyond resampling noise" in interval.describe()


def test_interval_is_the_percentile_interval_of_paired_resamples():
    """The same numbers as a plain loop with the same generator: 95% percentile interval."""
    rng = np.random.default_rng(42)
    a = rng.integers(0, 2, 40).astype(float)
    b = rng.integers(0, 2, 40).astype(float)
    interval = bootstrap_delta("accuracy", _mean_statistic(a, b), 40, observed=a.mean() -
                               b.mean(), higher_is_better=True, resamples=500, seed=7,
                               max_cells=40 * 64)  # several chunks
    check = np.random.default_rng(7)
    deltas = []
    done = 0
    while done < 500:
        size = min(64, 500 - done)
        idx = check.integers(0, 40, size=(size, 40))
        deltas += list(a[idx].mean(axis=1) - b[idx].mean(axis=1))
        done += size
    low, high = np.quantile(deltas, [0.025, 0.975])
    assert (interval.low, interval.high) == (pytest.approx(low), pytest.approx(high))
    assert interval.low <= interval.observed <= interval.high


def test_same_seed_same_interval_and_different_seed_differs():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=30), rng.normal(size=30)
    first = bootstrap_delta("r2", _mean_statistic(a, b), 30, observed=0.0,
                            higher_is_better=True, seed=3)
    again = bootstrap_delta("r2", _mean_statistic(a, b), 30, observed=0.0,
                            higher_is_better=True, seed=3)
    other = bootstrap_delta("r2", _mean_statistic(a, b), 30, observed=0.0,
                            higher_is_better=True, seed=4)
    assert first == again and first != other


def test_undefined_resamples_are_dropped():
    def statistic(idx):
        ours = np.where(idx[:, 0] % 2 == 0, np.nan, 1.0)
        return ours, np.zeros(len(idx))

    interval = bootstrap_delta("roc_auc_ovr", statistic, 10, observed=1.0,
                               higher_is_better=True, resamples=200)
    assert 0 < interval.resamples < 200 and interval.requested == 200
    assert (interval.low, interval.high) == (1.0, 1.0)


def test_no_interval_without_rows_or_defined_values():
    assert bootstrap_delta("accuracy", lambda idx: (idx, idx), 1, observed=0.0,
                           higher_is_better=True) is None

    def undefined(idx):
        return np.full(len(idx), math.nan), np.zeros(len(idx))

    assert bootstrap_delta("accuracy", undefined, 5, observed=0.0,
                           higher_is_better=True) is None


def test_delta_interval_reading():
    def interval(low, high, higher=True):
        return DeltaInterval("m", 0.0, low, high, 0.95, 10, 10, 5, 0, higher)

    assert interval(0.01, 0.2).reading == "better"
    assert interval(-0.2, -0.01).reading == "worse"
    assert interval(-0.01, 0.2).reading == "noise"
    assert interval(-0.2, -0.01, higher=False).reading == "better"
