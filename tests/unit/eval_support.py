"""Unit-test support for model tests and comparisons: the example project with its data, real
fitted scikit-learn models, and an in-memory registry behind the EvaluationRegistry protocol."""

from __future__ import annotations

import copy
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.registry.ports import ModelVersion

from .support import copy_example_project


class EvalRegistry:
    """Versions, aliases, run metrics and JSON artifacts in memory; models are real objects."""

    def __init__(self):
        self.versions: dict[tuple[str, int], ModelVersion] = {}
        self.fitted: dict[tuple[str, int], object] = {}
        self.aliases: dict[str, dict[str, int]] = {}
        self.artifacts: dict[str, dict[str, dict]] = {}
        self.metrics: dict[str, dict[str, float]] = {}
        self.tracking = None

    def add(self, name: str, model, *, fingerprint: str, lineage: dict | None,
            metrics: dict | None = None, size: int = 12_345) -> int:
        number = 1 + max([v for n, v in self.versions if n == name], default=0)
        run_id = f"run-{name}-{number}"
        self.versions[(name, number)] = ModelVersion(
            name, number, run_id, f"models:/{name}/{number}",
            {"mlops.managed": "true", "mlops.fingerprint": fingerprint,
             "mlops.status": "ready"})  # what train registers
        self.fitted[(name, number)] = (model, size)
        self.aliases.setdefault(name, {})
        self.artifacts[run_id] = {"lineage.json": lineage} if lineage is not None else {}
        self.metrics[run_id] = dict(metrics or {})
        return number

    def delete(self, name: str, number: int) -> None:
        del self.versions[(name, number)]

    # the protocol
    def find_version(self, name, fingerprint):
        found = [v for v in self.versions.values() if v.name == name and
                 v.tags.get("mlops.fingerprint") == fingerprint and
                 v.tags.get("mlops.status") == "ready"]
        return max(found, key=lambda v: v.version) if found else None

    def get_version(self, name, number):
        return copy.deepcopy(self.versions.get((name, number)))

    def model_aliases(self, name):
        return dict(self.aliases[name]) if name in self.aliases else None

    def load_version_model(self, name, number):
        if (name, number) not in self.fitted:
            raise DiagnosticError([Diagnostic("fake://registry", message="no such model")])
        return self.fitted[(name, number)]

    def run_metrics(self, run_id):
        return dict(self.metrics.get(run_id, {}))

    def run_json_or_none(self, run_id, path):
        return copy.deepcopy(self.artifacts.get(run_id, {}).get(path))

    def log_run_json(self, run_id, data, path):
        import json

        self.artifacts.setdefault(run_id, {})[path] = json.loads(json.dumps(data))

    def set_version_tags(self, name, number, tags):
        v = self.versions[(name, number)]
        self.versions[(name, number)] = ModelVersion(v.name, v.version, v.run_id, v.source,
                                                     {**v.tags, **tags})

    def delete_version_tags(self, name, number, keys):
        v = self.versions[(name, number)]
        self.versions[(name, number)] = ModelVersion(
            v.name, v.version, v.run_id, v.source,
            {k: value for k, value in v.tags.items() if k not in keys})


def example_project(root: Path) -> Path:
    """The example project with its data files (untracked: the md5 is the file's)."""
    from mlops_gitops.examples import write_example

    copy_example_project(root)
    write_example("iris", root / "data" / "iris.csv")
    write_example("diabetes", root / "data" / "diabetes.csv")
    return root


def load(root: Path):
    from mlops_gitops.spec.project import load_project

    project = load_project(root)
    assert project.ok, project.diagnostics
    return project


def train_into(registry: EvalRegistry, root: Path, model: str, *, lineage: bool = True) -> int:
    """Fit the model as its spec in ``root`` says now and add it as a ready version."""
    from mlops_gitops.data.contract import load_dataset
    from mlops_gitops.targets import training_target
    from mlops_gitops.train.trainer import fit_and_evaluate

    project = load(root)
    item = project.located("Model", model)
    target = training_target(project, item)
    frame = load_dataset(root, target.dataset)
    pipeline, metrics, split = fit_and_evaluate(target, frame, lambda message: None)
    spec = item.spec.spec
    meta = {"fingerprint": target.fingerprint,
            "inputs": {"model": {"features": list(spec.features), "target": spec.target,
                                 "task": spec.task}},
            "dataset": {"test_split_hash": split.test_hash}} if lineage else None
    return registry.add(target.registered_name, pipeline, fingerprint=target.fingerprint,
                        lineage=meta, metrics=metrics)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (old, path)
    path.write_text(text.replace(old, new))
