"""The registry as the rest of the code sees it: plain values and two small protocols.

Only :mod:`mlops_gitops.registry.mlflow` talks to MLflow; tests may use a fake behind the same
protocols. Version numbers are always ``int`` here (MLflow returns str from a server and int from
SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class LookupUnavailable(Exception):
    """A fast reader cannot answer for sure: the caller falls back to the MLflow client."""


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    run_id: str | None = None
    source: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


class RegistryReader(Protocol):
    def find_version(self, name: str, fingerprint: str) -> ModelVersion | None:
        """The newest completely registered version with this fingerprint."""

    def get_version(self, name: str, version: int) -> ModelVersion | None: ...

    def get_model(self, name: str) -> RegisteredModel | None: ...

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model, with tags and aliases (paged, a handful of calls)."""

    def list_versions(self) -> list[ModelVersion]:
        """Every model version, with tags (paged)."""

    def search_models(self, *, project: str | None = None,
                      names: Sequence[str] | None = None) -> list[RegisteredModel]:
        """The models tagged ``mlops.project=project``, or the models named ``names``, filtered
        on the server (a shared registry holds every team's models)."""

    def search_versions(self, names: Sequence[str]) -> list[ModelVersion]:
        """Every version of the named models, filtered on the server."""


class RegistryWriter(Protocol):
    def ensure_model(self, name: str, description: str, tags: dict[str, str]) -> None: ...

    def update_model(self, name: str, description: str, set_tags: dict[str, str],
                     delete_tags: list[str]) -> None: ...

    def set_model_tag(self, name: str, key: str, value: str) -> None: ...

    def acquire_lock(self, name: str, holder: dict[str, str]) -> dict[str, str] | None:
        """Take the named lock atomically; returns the current holder when it is taken."""

    def release_lock(self, name: str, tag: str, value: str) -> bool:
        """Delete the named lock only while its tag ``tag`` has ``value`` (read, compare,
        delete); False when it is gone or held by another."""

    def set_version_tags(self, name: str, version: int, tags: dict[str, str]) -> None: ...

    def set_alias(self, name: str, alias: str, version: int) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...


class EvaluationRegistry(Protocol):
    """What model tests and champion/challenger comparisons read and record."""

    def find_version(self, name: str, fingerprint: str) -> ModelVersion | None: ...

    def get_version(self, name: str, version: int) -> ModelVersion | None: ...

    def get_model(self, name: str) -> RegisteredModel | None: ...

    def model_aliases(self, name: str) -> dict[str, int] | None:
        """Alias -> version of a registered model; None when the model does not exist."""

    def load_version_model(self, name: str, version: int) -> tuple[object, int]:
        """The fitted model and the size in bytes of its artifact files."""

    def run_metrics(self, run_id: str) -> dict[str, float]: ...

    def run_json_or_none(self, run_id: str, path: str) -> dict[str, Any] | None: ...

    def log_run_json(self, run_id: str, data: dict[str, Any], path: str) -> None: ...

    def set_version_tags(self, name: str, version: int, tags: dict[str, str]) -> None: ...

    def delete_version_tags(self, name: str, version: int, keys: list[str]) -> None: ...


class Registry(RegistryReader, RegistryWriter, Protocol):
    """What the reconciler needs to plan and apply: read the registry and write to it."""


@runtime_checkable
class AuditArchive(Protocol):
    """Where old audit records go (the MLflow adapter; the fake in unit tests)."""

    def archive_audit(self, model: str, env: str, chunk: str, text: str) -> None: ...

    def read_audit_archive(self, model: str, env: str) -> list[str]: ...

    def delete_model_tags(self, name: str, keys: list[str]) -> None: ...
