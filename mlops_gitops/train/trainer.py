"""``train``: fit a Model spec's pipeline on its dataset's train split, evaluate it on the test
split, log the run with its lineage to MLflow and register the version under its fingerprint.

A fingerprint that already has a ready version is a no-op, found without importing MLflow or
scikit-learn when the registry allows it (see :mod:`mlops_gitops.registry.lookup`).
"""

from __future__ import annotations

import hashlib
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlops_gitops import __version__
from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.identity import (
    STATUS_READY,
    TAG_FINGERPRINT,
    TAG_MANAGED,
    TAG_PROJECT,
    TAG_STATUS,
    TRAINING_LIBRARIES,
    library_version,
    owned_model_tags,
    training_inputs,
)
from mlops_gitops.spec.loader import LoadedSpec
from mlops_gitops.spec.project import Project
from mlops_gitops.targets import TrainingTarget, training_target
from mlops_gitops.tracking import Tracking, tracking_for

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainResult:
    model: str
    registered_name: str
    fingerprint: str
    version: int
    status: str  # "trained" | "cached"
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    test_split_hash: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def check_working_copy(root: Path, target: TrainingTarget) -> None:
    """A working file that differs from its DVC version would be trained and recorded under
    the wrong data version: refuse it."""
    from mlops_gitops.data.versioning import data_path, untracked_change

    relative = target.dataset.spec.spec.path
    path = data_path(root, relative, target.dataset.file)
    if path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() != target.data_md5:
        raise DiagnosticError([untracked_change(relative, target.dataset.file)])


def find_existing(tracking: Tracking, target: TrainingTarget, registry_factory) -> int | None:
    """A ready version for the fingerprint: the fast path first, the MLflow client if needed."""
    from mlops_gitops.registry.lookup import find_ready_version
    from mlops_gitops.registry.ports import LookupUnavailable

    try:
        return find_ready_version(tracking, target.registered_name, target.fingerprint)
    except LookupUnavailable:
        found = registry_factory(tracking).find_version(target.registered_name,
                                                        target.fingerprint)
        return found.version if found else None


def _flat_params(model: LoadedSpec) -> dict[str, str]:
    spec = model.spec.spec
    params = {"estimator": spec.estimator.class_, "seed": str(spec.seed),
              "dataset": spec.dataset, "target": spec.target, "features": ",".join(spec.features)}
    params.update({f"estimator.{k}": str(v) for k, v in spec.estimator.params.items()})
    for i, step in enumerate(spec.steps):
        params[f"step{i}"] = step.class_
        params.update({f"step{i}.{k}": str(v) for k, v in step.params.items()})
    return params


def fit_and_evaluate(target: TrainingTarget, frame, progress: Progress):
    """(fitted pipeline, metrics, split) for a target; user mistakes become diagnostics."""
    from mlops_gitops.data.split import split_frame
    from mlops_gitops.evaluate.metrics import evaluate
    from mlops_gitops.train.pipeline import build_pipeline, parameter_error

    spec = target.model.spec.spec
    missing = [c for c in [spec.target, *spec.features] if c not in frame.columns]
    if missing:
        raise DiagnosticError([target.model.diagnostic(
            ("spec", "target" if spec.target in missing else "features"),
            f"column(s) {', '.join(missing)} missing from {target.dataset.spec.spec.path}")])
    split = split_frame(frame, target.dataset.spec.spec.split)
    if spec.task == "classification" and split.train[spec.target].nunique() < 2:
        raise DiagnosticError([target.model.diagnostic(
            ("spec", "target"), f"the training split has a single class of '{spec.target}' "
            f"({split.train[spec.target].iloc[0]!r}); a classifier needs at least two")])
    pipeline = build_pipeline(target.model)
    progress(f"{target.model.name}: fitting {spec.estimator.class_.rsplit('.', 1)[-1]} on "
             f"{len(split.train)} rows")
    try:
        pipeline.fit(split.train[spec.features], split.train[spec.target])
    except (ValueError, TypeError) as exc:
        from sklearn.utils._param_validation import InvalidParameterError

        if isinstance(exc, InvalidParameterError):
            raise parameter_error(target.model, exc) from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DiagnosticError([target.model.diagnostic(
            ("spec",), f"training failed: {first}",
            "check the feature and target types (text features need an encoder step, a "
            "regression target must be numeric) and the hyperparameters", code="fit")]) \
            from None
    try:
        metrics = evaluate(pipeline, split.test, spec.features, spec.target, spec.metrics)
    except (ValueError, TypeError, AttributeError) as exc:
        raise DiagnosticError([target.model.diagnostic(("spec", "metrics"),
                                                       f"cannot compute the metrics: {exc}")]) \
            from None
    return pipeline, metrics, split


def lineage(project: Project, target: TrainingTarget, split_hash: str) -> dict:
    from mlops_gitops.lineage import file_sha256, git_state

    commit, dirty = git_state(project.root)
    files = {item.file: file_sha256(project.root / item.file) if (project.root / item.file)
             .is_file() else None for item in (target.model, target.dataset)}
    return {
        "fingerprint": target.fingerprint,
        "inputs": training_inputs(target.model.spec, target.dataset.spec, target.data_md5),
        # what `verify` retrains from (the fingerprint's inputs leave out metrics and checks)
        "specs": {"model": target.model.spec.spec.model_dump(
                      mode="json", by_alias=True,
                      exclude={"tests", "policy", "registered_model", "retrain"}),
                  "dataset": target.dataset.spec.spec.model_dump(mode="json", by_alias=True)},
        "git": {"commit": commit, "dirty": dirty},
        "spec_files": files,
        "dataset": {"name": target.dataset.name, "path": target.dataset.spec.spec.path,
                    "md5": target.data_md5, "test_split_hash": split_hash},
        "versions": {"mlops-gitops": __version__, "python": platform.python_version(),
                     **{name: library_version(name) for name in TRAINING_LIBRARIES}},
    }


def _run_tags(meta: dict, model_name: str) -> dict[str, str]:
    commit = meta["git"]["commit"] or ""
    return {
        # MLflow's own: the UI shows the source and commit, and names the run
        "mlflow.runName": f"{model_name}-{meta['fingerprint'][:12]}",
        "mlflow.source.name": f"mlops-gitops train {model_name}",
        "mlflow.source.type": "JOB",
        **({"mlflow.source.git.commit": commit} if commit else {}),
        TAG_MANAGED: "true",
        TAG_FINGERPRINT: meta["fingerprint"],
        "mlops.git_commit": meta["git"]["commit"] or "",
        "mlops.git_dirty": str(meta["git"]["dirty"]).lower(),
        "mlops.dataset": meta["dataset"]["name"],
        "mlops.data_md5": meta["dataset"]["md5"],
        "mlops.test_split_hash": meta["dataset"]["test_split_hash"],
        "mlops.spec_files": ",".join(f"{f}@{h[:12] if h else '-'}"
                                     for f, h in meta["spec_files"].items()),
        "mlops.sklearn_version": meta["versions"]["scikit-learn"],
        "mlops.version": meta["versions"]["mlops-gitops"],
    }


TRAIN_LOCK_TIMEOUT_S = 600.0  # another train of the same fingerprint logging its model


def train_model(project: Project, model: LoadedSpec, *, force: bool = False,
                registry_factory=None, progress: Progress = lambda message: None,
                before_register: Callable[[], None] = lambda: None) -> TrainResult:
    started = time.perf_counter()
    tracking = tracking_for(project)
    registry_factory = registry_factory or _mlflow_registry
    target = training_target(project, model)
    check_working_copy(project.root, target)
    if not force:
        existing = find_existing(tracking, target, registry_factory)
        if existing is not None:
            progress(f"{model.name}: fingerprint {target.fingerprint[:12]} already registered as "
                     f"{target.registered_name}/{existing}")
            return TrainResult(model.name, target.registered_name, target.fingerprint, existing,
                               "cached", seconds=time.perf_counter() - started)
    from mlops_gitops.data.contract import load_dataset
    from mlops_gitops.tracking import check_reachable

    check_reachable(tracking)
    frame = load_dataset(project.root, target.dataset)
    pipeline, metrics, split = fit_and_evaluate(target, frame, progress)
    meta = lineage(project, target, split.test_hash)
    registry = registry_factory(tracking)
    spec = model.spec
    owned = owned_model_tags(project.name, spec)
    existing = registry.get_model(target.registered_name)
    if existing is not None and any(existing.tags.get(k) != owned[k]
                                    for k in (TAG_MANAGED, TAG_PROJECT)):
        raise DiagnosticError([model.diagnostic(
            ("metadata", "name"), f"registered model '{target.registered_name}' exists but is "
            f"not managed by project '{project.name}': it is never touched",
            "choose another registered_model (or model_prefix), or tag it "
            f"mlops.managed=true and mlops.project={project.name} to adopt it",
            code="foreign-model")])
    before_register()
    from mlops_gitops.reconcile.lock import Lock, train_lock_name

    # Two trains of one fingerprint at once: the second to get here finds the first's version.
    with Lock(registry, project.name, "", TRAIN_LOCK_TIMEOUT_S,
              resource=train_lock_name(target.registered_name, target.fingerprint)):
        found = None if force else registry.find_version(target.registered_name,
                                                         target.fingerprint)
        if found is not None:
            progress(f"{model.name}: fingerprint {target.fingerprint[:12]} was registered "
                     f"meanwhile as {target.registered_name}/{found.version}")
            return TrainResult(model.name, target.registered_name, target.fingerprint,
                               found.version, "cached", seconds=time.perf_counter() - started)
        progress(f"{model.name}: logging the run and the model to {tracking.uri}")
        number, run_id = _register(registry, project, target, pipeline, metrics, split, meta,
                                   frame)
    progress(f"{model.name}: registered {target.registered_name}/{number}")
    return TrainResult(model.name, target.registered_name, target.fingerprint, number,
                       "trained", run_id, metrics, split.test_hash,
                       time.perf_counter() - started)


def _version_description(target: TrainingTarget, meta: dict) -> str:
    spec = target.model.spec
    dirty = " (dirty)" if meta["git"]["dirty"] else ""
    trained = (f"Trained by mlops-gitops from {target.model.file} at commit "
               f"{(meta['git']['commit'] or 'none')[:12]}{dirty}"
               f" on {target.dataset.spec.spec.path} (DVC md5 {target.data_md5}); fingerprint "
               f"{target.fingerprint[:12]}.")
    return f"{spec.metadata.description}\n\n{trained}" if spec.metadata.description else trained


def _register(registry, project: Project, target: TrainingTarget, pipeline, metrics, split,
              meta: dict, frame) -> tuple[int, str]:
    """Log the run with the model and register it as a ready version: (number, run id)."""
    from mlops_gitops.registry.mlflow_runs import TrainingData

    model, spec = target.model, target.model.spec
    owned = owned_model_tags(project.name, spec)
    registry.ensure_model(target.registered_name, spec.metadata.description or "", owned)
    features = split.test[spec.spec.features]
    columns = target.dataset.spec.spec.columns
    training_data = TrainingData(
        name=target.dataset.name, path=target.dataset.spec.spec.path, md5=target.data_md5,
        target=spec.spec.target, frame=frame,
        feature_types={f: (columns[f].type, columns[f].nullable) for f in spec.spec.features})
    run_id, model_uri, model_id = registry.log_training(
        registered_name=target.registered_name, pipeline=pipeline, X_example=features,
        predictions=pipeline.predict(features.head(3)), params=_flat_params(model),
        metrics=metrics, tags=_run_tags(meta, model.name), lineage=meta,
        training_data=training_data)
    number = registry.register_version(target.registered_name, model_uri, run_id, model_id,
                                       {TAG_MANAGED: "true", TAG_FINGERPRINT: target.fingerprint,
                                        "mlops.test_split_hash": split.test_hash},
                                       _version_description(target, meta))
    try:  # only a completely registered version is marked ready (and ever found again)
        registry.set_version_tags(target.registered_name, number, {TAG_STATUS: STATUS_READY})
    except DiagnosticError:
        try:
            registry.delete_version(target.registered_name, number)
        except DiagnosticError:
            pass  # never marked ready, so never used: the next train registers a new one
        raise
    return number, run_id


def _mlflow_registry(tracking: Tracking):
    from mlops_gitops.registry.mlflow import MlflowRegistry

    return MlflowRegistry(tracking)
