"""Live state: the managed part of the registry, read in a handful of paged calls."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from mlops_gitops.identity import TAG_MANAGED, TAG_PROJECT, canonical_json
from mlops_gitops.registry.ports import ModelVersion, RegisteredModel, RegistryReader


@dataclass(frozen=True)
class LiveState:
    """The registered models this project manages (tags mlops.managed and mlops.project)."""

    models: dict[str, RegisteredModel]  # by name
    versions: dict[str, tuple[ModelVersion, ...]]  # by model name, ascending version
    foreign: frozenset[str] = frozenset()  # names taken by models this project does not own

    def fingerprint(self) -> str:
        """Hash of everything apply depends on; a plan made from another state is stale."""
        body = {"models": {n: asdict(m) for n, m in sorted(self.models.items())},
                "versions": {n: [asdict(v) for v in vs] for n, vs in sorted(self.versions.items())}}
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()

    def version(self, name: str, number: int) -> ModelVersion | None:
        return next((v for v in self.versions.get(name, ()) if v.version == number), None)


def _normalized_version(version: ModelVersion) -> ModelVersion:
    # Aliases live on the registered model (the version search does not return them).
    return ModelVersion(version.name, int(version.version), version.run_id, version.source,
                        dict(version.tags), ())


def build_live_state(models: list[RegisteredModel], versions: list[ModelVersion],
                     project: str) -> LiveState:
    managed = {m.name: RegisteredModel(m.name, m.description or "", dict(m.tags),
                                       {k: int(v) for k, v in m.aliases.items()})
               for m in models if m.tags.get(TAG_MANAGED) == "true"
               and m.tags.get(TAG_PROJECT) == project}
    by_model: dict[str, list[ModelVersion]] = {}
    for version in versions:
        if version.name in managed:
            by_model.setdefault(version.name, []).append(_normalized_version(version))
    return LiveState(managed, {n: tuple(sorted(vs, key=lambda v: v.version))
                               for n, vs in by_model.items()},
                     frozenset(m.name for m in models if m.name not in managed))


def read_live_state(reader: RegistryReader, project: str, names: Iterable[str] = ()) -> LiveState:
    """The project's part of the registry, filtered on the server.

    One paged search for the models tagged ``mlops.project=PROJECT``; one search by name for the
    ``names`` the caller will plan for that are not among them (to tell "not registered yet"
    from "taken by a model this project does not own": ``LiveState.foreign``); then the versions
    of the managed models only (``name IN (...)``). The cost follows this project's size, not the
    shared server's.
    """
    owned = reader.search_models(project=project)
    known = {m.name for m in owned}
    others = [n for n in dict.fromkeys(names) if n not in known]
    models = owned + (reader.search_models(names=others) if others else [])
    managed = [m.name for m in models if m.tags.get(TAG_MANAGED) == "true"
               and m.tags.get(TAG_PROJECT) == project]
    return build_live_state(models, reader.search_versions(managed) if managed else [], project)
