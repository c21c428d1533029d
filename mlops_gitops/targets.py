"""What each model trains on and the name its versions register under: the identity of a
training, computed from the specs and the data's DVC md5 (no data read for a tracked file), shared
by training, evaluation, the reconciler, serving and the reports."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from mlops_gitops.identity import fingerprint
from mlops_gitops.spec.loader import LoadedSpec
from mlops_gitops.spec.models import Dataset, Model
from mlops_gitops.spec.project import Project


@dataclass(frozen=True)
class TrainingTarget:
    """What a model trains on and the fingerprint that names the result (cheap to compute)."""

    model: LoadedSpec[Model]
    dataset: LoadedSpec[Dataset]
    registered_name: str
    data_md5: str
    fingerprint: str


def registered_name(project: Project, model: LoadedSpec[Model]) -> str:
    return str(project.config.model_prefix) + model.spec.registered_name


def data_md5(root: Path, dataset: LoadedSpec[Dataset]) -> str:
    """The DVC md5 of the data (no data needed); for an untracked file, the md5 of its bytes."""
    from mlops_gitops.data.versioning import data_version, ensure_present

    relative = dataset.spec.spec.path
    tracked = data_version(root, relative).md5
    if tracked:
        return tracked
    path = ensure_present(root, relative, dataset.file)
    return hashlib.md5(path.read_bytes()).hexdigest()


def training_target(project: Project, model: LoadedSpec[Model],
                    md5_cache: dict[str, str] | None = None) -> TrainingTarget:
    """The target of a model; ``md5_cache`` (by dataset name) saves re-reading shared data."""
    dataset = project.located("Dataset", model.spec.spec.dataset)
    cache = {} if md5_cache is None else md5_cache
    if dataset.name not in cache:
        cache[dataset.name] = data_md5(project.root, dataset)
    md5 = cache[dataset.name]
    return TrainingTarget(model, dataset, registered_name(project, model), md5,
                          fingerprint(model.spec, dataset.spec, md5))
