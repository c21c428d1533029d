"""What evaluations look at: the challenger (the ready version trained from the current spec),
the champion (the version an environment's alias points at), a version loaded with its lineage,
and the current test split that every model is evaluated on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.spec.loader import LoadedSpec
from mlops_gitops.spec.project import Project

DEFAULT_CHAMPION_ALIAS = "prod"


@dataclass(frozen=True)
class TestSplit:
    frame: Any  # pandas DataFrame: the test rows of the current data and split
    hash: str
    dataset: LoadedSpec
    data_md5: str

    @property
    def rows(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class LoadedVersion:
    """A registered version with its fitted model and what its lineage says it was trained on."""

    name: str
    version: int
    run_id: str | None
    model: Any
    size_bytes: int
    features: tuple[str, ...]
    target: str | None
    task: str | None
    fingerprint: str | None
    split_hash: str | None  # the test split recorded when it was trained
    tags: dict[str, str] = field(default_factory=dict)
    has_lineage: bool = True

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"


def challenger(project: Project, model: LoadedSpec, registry):
    """(training target, version number) of the ready version for the current spec."""
    from mlops_gitops.targets import training_target

    target = training_target(project, model)
    found = registry.find_version(target.registered_name, target.fingerprint)
    number = found.version if found is not None else None
    if number is None:
        raise DiagnosticError([model.diagnostic(
            ("metadata", "name"), f"no registered version of '{target.registered_name}' for the "
            f"current spec (fingerprint {target.fingerprint[:12]}): train first",
            f"run 'mlops-gitops train {model.name}'", code="not-trained")])
    return target, number


def default_alias(project: Project) -> str:
    """The alias that names the champion: the last environment of the promotion order (prod)."""
    order = project.promotion_order()
    return order[-1] if order else DEFAULT_CHAMPION_ALIAS


def champion_version(registry, name: str, alias: str, explicit: bool) -> tuple[int | None, str]:
    """(version, note) of the champion. No alias is no champion, unless the alias was asked for
    by name; an alias that points at a version that no longer exists is an error."""
    aliases = registry.model_aliases(name)
    if not aliases or alias not in aliases:
        if explicit:
            known = ", ".join(sorted(aliases or {})) or "none"
            raise DiagnosticError([Diagnostic("<command line>", code="usage", message=(
                f"alias '{alias}' is not set on registered model '{name}'"),
                hint=f"aliases of {name}: {known}")])
        return None, (f"alias '{alias}' is not set on {name}: nothing is served there yet (or "
                      "its version was deleted, which removes the alias)")
    number = aliases[alias]
    if registry.get_version(name, number) is None:
        raise DiagnosticError([Diagnostic(registry_uri(registry), code="champion-missing", message=(
            f"alias '{alias}' of {name} points at version {number}, which no longer exists"),
            hint=f"point '{alias}' at an existing version (mlops-gitops apply), or compare with "
                 "--champion ALIAS")])
    return number, f"alias '{alias}' -> version {number}"


def registry_uri(registry) -> str:
    tracking = getattr(registry, "tracking", None)
    return getattr(tracking, "uri", "registry")


def load_version(registry, name: str, number: int) -> LoadedVersion:
    from mlops_gitops.identity import TAG_FINGERPRINT, TAG_MANAGED

    found = registry.get_version(name, number)
    if found is None:
        raise DiagnosticError([Diagnostic(registry_uri(registry), code="not-found", message=(
            f"model version {name}/{number} does not exist"))])
    if found.tags.get(TAG_MANAGED) != "true" or TAG_FINGERPRINT not in found.tags:
        raise DiagnosticError([Diagnostic(registry_uri(registry), code="untrusted-model", message=(
            f"model version {name}/{number} was not registered by mlops-gitops (no provenance "
            "tags): it is never loaded"), hint="evaluate a version that 'mlops-gitops train' "
            "registered")])
    lineage = registry.run_json_or_none(found.run_id, "lineage.json") if found.run_id else None
    model, size = registry.load_version_model(name, number)
    inputs = (lineage or {}).get("inputs", {}).get("model", {})
    features = inputs.get("features") or [str(c) for c in getattr(model, "feature_names_in_", [])]
    return LoadedVersion(
        name=name, version=number, run_id=found.run_id, model=model, size_bytes=size,
        features=tuple(features), target=inputs.get("target"), task=inputs.get("task"),
        fingerprint=(lineage or {}).get("fingerprint") or found.tags.get(TAG_FINGERPRINT),
        split_hash=((lineage or {}).get("dataset") or {}).get("test_split_hash")
        or found.tags.get("mlops.test_split_hash"),
        tags=dict(found.tags), has_lineage=lineage is not None)


def load_test_split(project: Project, dataset: LoadedSpec, data_md5: str) -> TestSplit:
    """The current test rows: the dataset (pulled if missing, checked against its contract) split
    as its spec says."""
    from mlops_gitops.data.contract import load_dataset
    from mlops_gitops.data.split import split_frame

    frame = load_dataset(project.root, dataset)
    split = split_frame(frame, dataset.spec.spec.split)
    return TestSplit(split.test, split.test_hash, dataset, data_md5)


def unusable(version: LoadedVersion, split: TestSplit, target: str, task: str) -> str:
    """Why this version cannot be evaluated on the split ('' when it can)."""
    if not version.features:
        return f"{version.ref} records no features (no lineage, no feature names)"
    if version.task is not None and version.task != task:
        return f"{version.ref} is a {version.task} model, the current spec is {task}"
    if version.target is not None and version.target != target:
        return f"{version.ref} predicts '{version.target}', the current spec predicts '{target}'"
    missing = [f for f in version.features if f not in split.frame.columns]
    if missing:
        return (f"{version.ref} was trained on features the current data lacks: "
                f"{', '.join(missing)}")
    return ""


def feature_change(champion: LoadedVersion, challenger: LoadedVersion) -> str:
    added = [f for f in challenger.features if f not in champion.features]
    removed = [f for f in champion.features if f not in challenger.features]
    if not added and not removed:
        return ""
    parts = ([f"added {', '.join(added)}"] if added else []) + \
        ([f"removed {', '.join(removed)}"] if removed else [])
    return (f"the champion was trained on different features ({'; '.join(parts)}): each model "
            "is evaluated on its own features over the same test rows")
