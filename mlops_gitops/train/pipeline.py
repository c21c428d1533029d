"""scikit-learn pipelines built from a Model spec. Only allow-listed classes are ever imported."""

from __future__ import annotations

import importlib
import inspect
import re

from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.spec import catalog
from mlops_gitops.spec.loader import LoadedSpec
from mlops_gitops.spec.models import Step


def _class(path: str, allowed: frozenset[str]):
    if path not in allowed:  # the spec models check this too; never import anything else
        raise ValueError(f"'{path}' is not allow-listed")
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _instantiate(step: Step, allowed: frozenset[str], seed: int, located: LoadedSpec,
                 path: tuple):
    cls = _class(step.class_, allowed)
    params = dict(step.params)
    accepted = inspect.signature(cls).parameters
    unknown = [p for p in params if p not in accepted]
    if unknown:
        from mlops_gitops.diagnostics import did_you_mean

        raise DiagnosticError([located.diagnostic(
            path + ("params", name), f"{step.class_} has no parameter '{name}'",
            did_you_mean(name, accepted) or f"parameters: {', '.join(sorted(accepted))}",
            code="hyperparameter") for name in unknown])
    if "random_state" in accepted and "random_state" not in params:
        params["random_state"] = seed
    return cls(**params)


def build_pipeline(located: LoadedSpec):
    """The model's Pipeline (transformer steps, then the estimator), unfitted."""
    from sklearn.pipeline import Pipeline

    spec = located.spec.spec
    steps = [(f"step{i}", _instantiate(step, catalog.TRANSFORMERS, spec.seed, located,
                                       ("spec", "steps", i)))
             for i, step in enumerate(spec.steps)]
    estimator = _instantiate(spec.estimator, catalog.ESTIMATORS[spec.task], spec.seed, located,
                             ("spec", "estimator"))
    return Pipeline([*steps, ("estimator", estimator)])


_PARAM = re.compile(r"The '(\w+)' parameter of (\w+) must be")


def parameter_error(located: LoadedSpec, exc: Exception) -> DiagnosticError:
    """An estimator's refusal of a hyperparameter, located on the spec's field."""
    spec = located.spec.spec
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    match = _PARAM.search(message)
    path: tuple = ("spec", "estimator", "params")
    if match:
        param, cls_name = match.groups()
        for i, step in enumerate(spec.steps):
            if step.class_.endswith("." + cls_name):
                path = ("spec", "steps", i, "params")
        path += (param,)
    return DiagnosticError([located.diagnostic(path, f"hyperparameter rejected: {message}",
                                               code="hyperparameter")])
