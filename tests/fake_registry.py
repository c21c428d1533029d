"""An in-memory registry behind the same protocols as the MLflow adapter (unit tests only)."""

from __future__ import annotations

import copy
import json

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.registry.ports import ModelVersion, RegisteredModel


class FakeRegistry:
    def __init__(self, fail_after_writes: int | None = None):
        self.models: dict[str, RegisteredModel] = {}
        self.versions: dict[tuple[str, int], ModelVersion] = {}
        self.calls: list[str] = []
        self.fail_after_writes = fail_after_writes
        self.writes = 0
        self.audit_archive: dict[tuple[str, str], dict[str, str]] = {}

    @classmethod
    def from_json(cls, text: str) -> FakeRegistry:
        """A registry holding what a live.json lists: {"models": [...], "versions": [...]}."""
        data = json.loads(text)
        fake = cls()
        for m in data["models"]:
            fake.models[m["name"]] = RegisteredModel(**m)
        for v in data["versions"]:
            version = ModelVersion(**{**v, "aliases": tuple(v.get("aliases", ()))})
            fake.versions[(version.name, version.version)] = version
        return fake

    def _write(self, what: str) -> None:
        self.calls.append(what)
        if self.fail_after_writes is not None and self.writes >= self.fail_after_writes:
            raise DiagnosticError([Diagnostic("fake://registry", code="tracking-unreachable",
                                              message=f"cannot reach the registry ({what})")])
        self.writes += 1

    # reader
    def list_models(self) -> list[RegisteredModel]:
        self.calls.append("list_models")
        return [copy.deepcopy(m) for m in self.models.values()]

    def list_versions(self) -> list[ModelVersion]:
        self.calls.append("list_versions")
        return [copy.deepcopy(v) for v in self.versions.values()]

    def search_models(self, *, project: str | None = None,
                      names=None) -> list[RegisteredModel]:
        self.calls.append("search_models(project)" if project is not None else
                          "search_models(names)")
        return [copy.deepcopy(m) for m in self.models.values()
                if (project is None or m.tags.get("mlops.project") == project)
                and (names is None or m.name in names)]

    def search_versions(self, names) -> list[ModelVersion]:
        self.calls.append("search_versions")
        return [copy.deepcopy(v) for v in self.versions.values() if v.name in names]

    def find_version(self, name: str, fingerprint: str) -> ModelVersion | None:
        found = [v for v in self.versions.values() if v.name == name and
                 v.tags.get("mlops.fingerprint") == fingerprint and
                 v.tags.get("mlops.status") == "ready"]
        return max(found, key=lambda v: v.version) if found else None

    def get_version(self, name: str, number: int) -> ModelVersion | None:
        return self.versions.get((name, number))

    def get_model(self, name: str) -> RegisteredModel | None:
        return copy.deepcopy(self.models.get(name))

    # writer
    def ensure_model(self, name: str, description: str, tags: dict[str, str]) -> None:
        self._write(f"ensure_model {name}")
        model = self.models.get(name) or RegisteredModel(name, description)
        self.models[name] = RegisteredModel(name, model.description, {**model.tags, **tags},
                                            model.aliases)

    def update_model(self, name, description, set_tags, delete_tags) -> None:
        self._write(f"update_model {name}")
        model = self.models[name]
        tags = {k: v for k, v in {**model.tags, **set_tags}.items() if k not in delete_tags}
        self.models[name] = RegisteredModel(name, description, tags, model.aliases)

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        self._write(f"set_model_tag {name} {key}")
        model = self.models[name]
        self.models[name] = RegisteredModel(name, model.description, {**model.tags, key: value},
                                            model.aliases)

    def set_version_tags(self, name: str, number: int, tags: dict[str, str]) -> None:
        self._write(f"set_version_tags {name}/{number}")
        version = self.versions[(name, number)]
        self.versions[(name, number)] = ModelVersion(name, number, version.run_id, version.source,
                                                     {**version.tags, **tags})

    def set_alias(self, name: str, alias: str, number: int) -> None:
        self._write(f"set_alias {name}@{alias}={number}")
        if (name, number) not in self.versions:
            raise DiagnosticError([Diagnostic("fake://registry", message="no such version")])
        model = self.models[name]
        self.models[name] = RegisteredModel(name, model.description, model.tags,
                                            {**model.aliases, alias: number})

    def delete_alias(self, name: str, alias: str) -> None:
        self._write(f"delete_alias {name}@{alias}")
        model = self.models[name]
        aliases = {k: v for k, v in model.aliases.items() if k != alias}
        self.models[name] = RegisteredModel(name, model.description, model.tags, aliases)

    def archive_audit(self, model: str, env: str, chunk: str, text: str) -> None:
        self._write(f"archive_audit {model} {env} {chunk}")
        self.audit_archive.setdefault((model, env), {})[chunk] = text

    def read_audit_archive(self, model: str, env: str) -> list[str]:
        chunks = self.audit_archive.get((model, env), {})
        return [chunks[name] for name in sorted(chunks)]

    def delete_model_tags(self, name: str, keys: list[str]) -> None:
        for key in keys:  # one call per tag, as MLflow deletes them: a crash can stop midway
            self._write(f"delete_model_tag {name} {key}")
            model = self.models[name]
            tags = {k: v for k, v in model.tags.items() if k != key}
            self.models[name] = RegisteredModel(name, model.description, tags, model.aliases)

    def acquire_lock(self, name: str, holder: dict[str, str]) -> dict[str, str] | None:
        if name in self.models:
            return dict(self.models[name].tags)
        self.models[name] = RegisteredModel(name, "lock", dict(holder))
        return None

    def release_lock(self, name: str, tag: str, value: str) -> bool:
        self._write(f"release_lock {name}")
        current = self.models.get(name)
        if current is None or current.tags.get(tag) != value:
            return False
        del self.models[name]
        return True

    # test helpers
    def add_version(self, name: str, number: int, fingerprint: str, ready: bool = True,
                    **tags: str) -> None:
        if name not in self.models:
            self.models[name] = RegisteredModel(name, "", {"mlops.managed": "true"})
        all_tags = {"mlops.managed": "true", "mlops.fingerprint": fingerprint, **tags}
        if ready:
            all_tags["mlops.status"] = "ready"
        self.versions[(name, number)] = ModelVersion(name, number, f"run{number}", "src",
                                                     all_tags)
