"""Metrics by the names specs use (see :data:`mlops_gitops.spec.catalog.METRICS`)."""

from __future__ import annotations

import numpy as np


def compute(name: str, y_true, y_pred, y_proba=None, labels=None) -> float:
    from sklearn import metrics as m

    if name == "accuracy":
        return float(m.accuracy_score(y_true, y_pred))
    if name == "balanced_accuracy":
        return float(m.balanced_accuracy_score(y_true, y_pred))
    if name in ("f1_macro", "f1_weighted", "precision_macro", "recall_macro"):
        kind, average = name.split("_")
        scorer = {"f1": m.f1_score, "precision": m.precision_score, "recall": m.recall_score}[kind]
        return float(scorer(y_true, y_pred, average=average, zero_division=0))
    if name in ("f1", "precision", "recall"):  # binary: first label sorted is negative
        scorer = {"f1": m.f1_score, "precision": m.precision_score, "recall": m.recall_score}[name]
        present = np.unique(y_true)
        if len(present) == 1:  # a slice holding one class: the metric of that class
            return float(scorer(y_true, y_pred, labels=list(present), average="macro",
                                zero_division=0))
        average = "binary" if len(present) <= 2 else "macro"
        positive = sorted(np.unique(y_true))[-1]
        kwargs = {"pos_label": positive} if average == "binary" else {}
        return float(scorer(y_true, y_pred, average=average, zero_division=0, **kwargs))
    if name == "log_loss":
        return float(m.log_loss(y_true, y_proba, labels=labels))
    if name == "roc_auc_ovr":
        if y_proba is not None and y_proba.shape[1] == 2:
            return float(m.roc_auc_score(y_true, y_proba[:, 1]))
        return float(m.roc_auc_score(y_true, y_proba, multi_class="ovr", labels=labels))
    if name == "r2":
        return float(m.r2_score(y_true, y_pred))
    if name == "mae":
        return float(m.mean_absolute_error(y_true, y_pred))
    if name == "mse":
        return float(m.mean_squared_error(y_true, y_pred))
    if name == "rmse":
        return float(np.sqrt(m.mean_squared_error(y_true, y_pred)))
    if name == "mape":
        return float(m.mean_absolute_percentage_error(y_true, y_pred))
    if name == "max_error":
        return float(m.max_error(y_true, y_pred))
    raise ValueError(f"unknown metric '{name}'")


NEEDS_PROBA = {"log_loss", "roc_auc_ovr"}


def evaluate(model, frame, features: list[str], target: str, names: list[str]) -> dict[str, float]:
    """Each named metric of a fitted model on a frame."""
    X, y = frame[features], frame[target]
    predictions = model.predict(X)
    proba, labels = None, None
    if NEEDS_PROBA & set(names):
        if not hasattr(model, "predict_proba"):
            estimator = type(model[-1] if hasattr(model, "steps") else model).__name__
            needing = ", ".join(sorted(NEEDS_PROBA & set(names)))
            raise ValueError(f"{needing} need predicted probabilities, which {estimator} does "
                             "not give (no predict_proba)")
        proba, labels = model.predict_proba(X), list(model.classes_)
    return {name: compute(name, y, predictions, proba, labels) for name in names}
