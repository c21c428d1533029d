"""``verify``: retrain a registered version from its recorded lineage and check that the metrics
reproduce (same specs, same data md5, same split)."""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.spec.loader import LoadedSpec
from mlops_gitops.spec.models import API_VERSION, Dataset, Model
from mlops_gitops.spec.yamlread import YamlDocument
from mlops_gitops.tracking import Tracking


@dataclass(frozen=True)
class Verification:
    name: str
    version: int
    recorded: dict[str, float]
    reproduced: dict[str, float]
    tolerance: float
    data_source: str

    @property
    def ok(self) -> bool:
        return all(abs(self.recorded.get(k, float("nan")) - v) <= self.tolerance
                   for k, v in self.reproduced.items()) and set(self.recorded) >= \
            set(self.reproduced)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def _recorded_spec(kind: type, name: str, spec: dict, origin: str) -> LoadedSpec:
    document = {"apiVersion": API_VERSION, "kind": kind.__name__, "metadata": {"name": name},
                "spec": spec}
    return LoadedSpec(kind.model_validate(document), origin, YamlDocument(document))


def _parse(raw: bytes, spec, path: str):
    from mlops_gitops.data.contract import parse_csv

    frame, failures = parse_csv(io.BytesIO(raw), spec)
    if frame is None:
        raise DiagnosticError([Diagnostic(path, code="data", message=f"recorded data cannot be "
                                          f"read: {failures[0].message}")])
    return frame


def _recorded_frame(root: Path, meta: dict, dataset_spec):
    """The exact data the version was trained on: the working file if its md5 matches, else the
    file at the recorded git commit through DVC."""

    from mlops_gitops.data.versioning import data_path, read_at_revision

    dataset = meta["dataset"]
    path, md5 = dataset["path"], dataset["md5"]
    local = data_path(root, path, f"{path} (recorded in the version's lineage)")
    if local.is_file() and hashlib.md5(local.read_bytes()).hexdigest() == md5:
        return _parse(local.read_bytes(), dataset_spec, path), "working tree"
    commit = meta["git"]["commit"]
    if not commit:
        raise DiagnosticError([Diagnostic(path, code="lineage", message=f"the data the version "
                                          f"was trained on (md5 {md5}) is not in the working "
                                          "tree and no git commit was recorded")])
    raw = read_at_revision(root, path, commit)
    if hashlib.md5(raw).hexdigest() != md5:
        raise DiagnosticError([Diagnostic(path, code="lineage", message=f"data at commit "
                                          f"{commit[:12]} does not have the recorded md5 {md5}")])
    return _parse(raw, dataset_spec, path), f"git {commit[:12]} via DVC"


def verify_version(root: Path, tracking: Tracking, name: str, version: int,
                   tolerance: float = 1e-9, registry=None) -> Verification:
    from mlops_gitops.data.contract import validate_frame
    from mlops_gitops.targets import TrainingTarget
    from mlops_gitops.train.trainer import fit_and_evaluate

    if registry is None:
        from mlops_gitops.registry.mlflow import MlflowRegistry

        registry = MlflowRegistry(tracking)
    found = registry.get_version(name, version)
    if found is None or not found.run_id:
        raise DiagnosticError([Diagnostic(tracking.uri, code="not-found",
                                          message=f"model version {name}/{version} does not "
                                          "exist (or has no training run)")])
    meta = registry.run_artifact_json(found.run_id, "lineage.json")
    # lineage before the fingerprint left metrics and checks out recorded the specs as "inputs"
    inputs = meta.get("specs") or meta["inputs"]
    origin = f"{name}/{version} lineage"
    dataset = _recorded_spec(Dataset, meta["dataset"]["name"], inputs["dataset"], origin)
    model = _recorded_spec(Model, name, inputs["model"], origin)
    frame, source = _recorded_frame(root, meta, dataset.spec.spec)
    failures = validate_frame(frame, dataset.spec.spec)  # coerces types exactly as training did
    if failures:
        raise DiagnosticError([Diagnostic(meta["dataset"]["path"], code="data",
                                          message=f"recorded data breaks its contract: "
                                          f"{failures[0].message}")])
    target = TrainingTarget(model, dataset, name, meta["dataset"]["md5"], meta["fingerprint"])
    _, reproduced, _ = fit_and_evaluate(target, frame, lambda message: None)
    return Verification(name, version, registry.run_metrics(found.run_id), reproduced, tolerance,
                        source)
