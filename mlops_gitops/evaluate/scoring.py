"""Predictions and metrics for model tests and comparisons: overall, per slice, and over many
bootstrap resamples at once.

A metric that cannot be computed is never a number: it comes back with the reason, so that the
test or threshold that needs it fails with an explanation instead of passing silently.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlops_gitops.evaluate.metrics import NEEDS_PROBA, compute


@dataclass(frozen=True)
class Predictions:
    values: np.ndarray  # predict()
    proba: np.ndarray | None = None  # predict_proba(), when asked for and available
    classes: tuple | None = None  # the columns of proba
    proba_error: str = ""  # why proba is missing


def predict(model, X, *, proba: bool = False) -> Predictions:
    """The model's predictions (and class probabilities when asked for) on ``X``."""
    values = np.asarray(model.predict(X))
    if not proba:
        return Predictions(values)
    if not hasattr(model, "predict_proba"):
        name = type(getattr(model, "steps", [(None, model)])[-1][1]).__name__
        return Predictions(values, proba_error=f"{name} has no predict_proba")
    try:
        probabilities = np.asarray(model.predict_proba(X))
    except (AttributeError, ValueError, TypeError) as exc:  # e.g. SVC(probability=False)
        return Predictions(values, proba_error=f"predict_proba failed: {exc}")
    return Predictions(values, probabilities, tuple(model.classes_))


def needs_proba(names: Sequence[str]) -> bool:
    return bool(NEEDS_PROBA & set(names))


def score(names: Sequence[str], y_true, predictions: Predictions,
          rows: np.ndarray | None = None) -> tuple[dict[str, float], dict[str, str]]:
    """(values, missing) of each named metric on all rows or on the given row positions."""
    y = np.asarray(y_true)
    values, proba = predictions.values, predictions.proba
    if rows is not None:
        y, values = y[rows], values[rows]
        proba = proba[rows] if proba is not None else None
    found: dict[str, float] = {}
    missing: dict[str, str] = {}
    for name in names:
        if len(y) == 0:
            missing[name] = "no rows"
            continue
        if name in NEEDS_PROBA and proba is None:
            missing[name] = predictions.proba_error or "no class probabilities"
            continue
        labels = list(predictions.classes) if predictions.classes is not None else None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = compute(name, y, values, proba, labels)
        except (ValueError, TypeError, IndexError, ZeroDivisionError) as exc:
            missing[name] = f"cannot compute {name} on {len(y)} rows: {_first_line(exc)}"
            continue
        if not math.isfinite(value):
            missing[name] = f"{name} is not defined on these {len(y)} rows"
            continue
        found[name] = value
    return found, missing


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- slices --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Slice:
    column: str
    label: str  # the value, or the bin "[a, b)"
    rows: np.ndarray  # row positions in the test frame

    @property
    def key(self) -> str:
        return f"{self.column}={self.label}"


def _fmt(value: float) -> str:
    return f"{value:g}"


def bin_label(low: float, high: float, last: bool) -> str:
    return f"[{_fmt(low)}, {_fmt(high)}{']' if last else ')'}"


def slices(frame, column: str, *, bins: Sequence[float] | None = None,
           expected: Sequence | None = None) -> tuple[list[Slice], int]:
    """The slices of ``frame`` by a column, and how many rows fall outside all bins.

    Every expected value (the dataset contract's ``allowed`` list) and every bin is a slice even
    when no test row falls in it, so that a missing slice fails instead of disappearing.
    """
    values = frame[column].to_numpy()
    if bins is not None:
        numeric = np.asarray(values, dtype=float)
        out, outside = [], np.ones(len(numeric), dtype=bool)
        for i in range(len(bins) - 1):
            last = i == len(bins) - 2
            low, high = bins[i], bins[i + 1]
            inside = (numeric >= low) & ((numeric <= high) if last else (numeric < high))
            outside &= ~inside
            out.append(Slice(column, bin_label(low, high, last), np.flatnonzero(inside)))
        return out, int(outside.sum())
    present = _distinct(values)
    order = list(expected) if expected is not None else []
    order += [v for v in present if not any(_same(v, e) for e in order)]
    return [Slice(column, str(value), np.flatnonzero(_equal(values, value))) for value in order], 0


def _distinct(values: np.ndarray) -> list:
    import pandas as pd

    present = [v.item() if hasattr(v, "item") else v for v in pd.unique(values)
               if not pd.isna(v)]
    try:
        return sorted(present)
    except TypeError:
        return sorted(present, key=str)


def _same(a, b) -> bool:
    """Equal as contract values: booleans only equal booleans (True is not 1 here)."""
    if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        return isinstance(a, (bool, np.bool_)) and isinstance(b, (bool, np.bool_)) and \
            bool(a) == bool(b)
    return type(a) is type(b) and a == b or (
        isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b)


def _equal(values: np.ndarray, value) -> np.ndarray:
    if isinstance(value, str):
        return np.asarray(values.astype(object) == value, dtype=bool)
    if values.dtype == object or values.dtype.kind in "US":
        return np.array([_same(v, value) for v in values], dtype=bool)
    if (values.dtype.kind == "b") != isinstance(value, (bool, np.bool_)):
        return np.zeros(len(values), dtype=bool)
    return np.asarray(values == value, dtype=bool)


# --- metrics over many resamples at once ---------------------------------------------------------

CONFUSION_METRICS = frozenset({"accuracy", "balanced_accuracy", "f1_macro", "f1_weighted",
                               "precision_macro", "recall_macro"})
ERROR_METRICS = frozenset({"r2", "mae", "mse", "rmse", "mape", "max_error"})
BATCHED = CONFUSION_METRICS | ERROR_METRICS


def encode(*arrays) -> tuple[list[np.ndarray], int]:
    """Label arrays as integer codes over their shared sorted labels."""
    labels = np.unique(np.concatenate([np.asarray(a).astype(str) for a in arrays]))
    return [np.searchsorted(labels, np.asarray(a).astype(str)) for a in arrays], len(labels)


def batch_metric(name: str, y_true: np.ndarray, y_pred: np.ndarray, idx: np.ndarray,
                 n_labels: int = 0) -> np.ndarray:
    """The metric on each resample (one row of ``idx`` = row positions), as scikit-learn computes
    it. Classification metrics take integer codes (:func:`encode`) and their number."""
    if name in ERROR_METRICS:
        return _error_metric(name, np.asarray(y_true, dtype=float)[idx],
                             np.asarray(y_pred, dtype=float)[idx])
    if name not in CONFUSION_METRICS:
        raise ValueError(f"{name} has no batched form")
    b, n = idx.shape
    k = n_labels
    codes = y_true[idx] * k + y_pred[idx] + (np.arange(b) * k * k)[:, None]
    cm = np.bincount(codes.ravel(), minlength=b * k * k).reshape(b, k, k).astype(float)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    support = cm.sum(axis=2)  # true counts per label
    predicted = cm.sum(axis=1)
    if name == "accuracy":
        return tp.sum(axis=1) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, 0.0)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        denominator = support + predicted
        f1 = np.where(denominator > 0, 2 * tp / denominator, 0.0)
    if name == "balanced_accuracy":  # mean recall over the labels present in y_true
        return (recall * (support > 0)).sum(axis=1) / (support > 0).sum(axis=1)
    if name == "f1_weighted":
        return (f1 * support).sum(axis=1) / n
    present = (support + predicted) > 0  # scikit-learn averages over labels in y_true or y_pred
    per_label = {"f1_macro": f1, "precision_macro": precision, "recall_macro": recall}[name]
    return (per_label * present).sum(axis=1) / present.sum(axis=1)


def _error_metric(name: str, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    error = y - p
    if name == "mae":
        return np.abs(error).mean(axis=1)
    if name == "mse":
        return (error ** 2).mean(axis=1)
    if name == "rmse":
        return np.sqrt((error ** 2).mean(axis=1))
    if name == "max_error":
        return np.abs(error).max(axis=1)
    if name == "mape":
        return (np.abs(error) / np.maximum(np.abs(y), np.finfo(np.float64).eps)).mean(axis=1)
    residual = (error ** 2).sum(axis=1)  # r2, with scikit-learn's finite convention
    total = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1 - residual / total
    return np.where(total > 0, r2, np.where(residual == 0, 1.0, 0.0))


def resample_metric(name: str, y_true, predictions: Predictions, idx: np.ndarray) -> np.ndarray:
    """The metric on each resample for any metric: batched when it has a batched form, one
    scikit-learn call per resample otherwise (NaN where it is not defined)."""
    y = np.asarray(y_true)
    if name in ERROR_METRICS:
        return batch_metric(name, y, predictions.values, idx)
    if name in CONFUSION_METRICS:
        (codes_true, codes_pred), k = encode(y, predictions.values)
        return batch_metric(name, codes_true, codes_pred, idx, k)
    out = np.full(len(idx), np.nan)
    for i, rows in enumerate(idx):
        found, _ = score([name], y, predictions, rows)
        out[i] = found.get(name, np.nan)
    return out
