"""The MLflow adapter, the only code that imports MLflow's client: the model registry half
(registered models, versions, aliases, tags, the lock) here, the run store half in
:mod:`mlops_gitops.registry.mlflow_runs`, on one connection
(:mod:`mlops_gitops.registry.mlflow_connection`). :class:`MlflowRegistry` is both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from mlops_gitops.identity import STATUS_READY, TAG_FINGERPRINT, TAG_STATUS
from mlops_gitops.registry.filters import (
    model_filters,
    select_models,
    select_versions,
    version_filters,
)
from mlops_gitops.registry.mlflow_connection import MlflowConnection
from mlops_gitops.registry.mlflow_runs import MlflowRunStore
from mlops_gitops.registry.ports import ModelVersion, RegisteredModel

PAGE_MODELS = 1000
PAGE_VERSIONS = 10_000


class MlflowModelRegistry(MlflowConnection):
    # --- reading ---------------------------------------------------------------------------

    @staticmethod
    def _version(v: Any) -> ModelVersion:
        return ModelVersion(name=v.name, version=int(v.version), run_id=v.run_id or None,
                            source=v.source or "", tags=dict(v.tags or {}),
                            aliases=tuple(getattr(v, "aliases", None) or ()))

    def find_version(self, name: str, fingerprint: str) -> ModelVersion | None:
        with self.errors("searching model versions"):
            found = self.client.search_model_versions(
                f"name = '{name}' and tags.`{TAG_FINGERPRINT}` = '{fingerprint}'")
        ready = [self._version(v) for v in found if (v.tags or {}).get(TAG_STATUS) == STATUS_READY]
        return max(ready, key=lambda v: v.version) if ready else None

    def get_version(self, name: str, number: int) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        with self.errors(f"reading {name}/{number}"):
            try:
                return self._version(self.client.get_model_version(name, str(number)))
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                    return None
                raise

    def get_model(self, name: str) -> RegisteredModel | None:
        from mlflow.exceptions import MlflowException

        with self.errors(f"reading registered model {name}"):
            try:
                m = self.client.get_registered_model(name)
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                    return None
                raise
        return self._model(m)

    @staticmethod
    def _model(m: Any) -> RegisteredModel:
        return RegisteredModel(name=m.name, description=m.description or "",
                               tags=dict(m.tags or {}),
                               aliases={k: int(v) for k, v in (m.aliases or {}).items()})

    def _all_pages(self, search: Callable[..., Any], size: int, action: str) -> list[Any]:
        """Every item of a paged MLflow search (a handful of calls for a whole registry)."""
        items, token = [], None
        with self.errors(action):
            while True:
                page = search(max_results=size, page_token=token)
                items += list(page)
                token = page.token
                if not token:
                    return items

    def list_models(self) -> list[RegisteredModel]:
        return [self._model(m) for m in self._all_pages(
            self.client.search_registered_models, PAGE_MODELS, "listing registered models")]

    def list_versions(self) -> list[ModelVersion]:
        return [self._version(v) for v in self._all_pages(
            self.client.search_model_versions, PAGE_VERSIONS, "listing model versions")]

    def search_models(self, *, project: str | None = None,
                      names: Sequence[str] | None = None) -> list[RegisteredModel]:
        """The models tagged for ``project``, or those named ``names``, filtered on the server."""
        found = [self._model(m) for f in model_filters(project, names)
                 for m in self._all_pages(functools.partial(self.client.search_registered_models,
                                                            filter_string=f),
                                          PAGE_MODELS, "searching registered models")]
        return select_models(found, project, names)

    def search_versions(self, names: Sequence[str]) -> list[ModelVersion]:
        """Every version of the named models (``name IN (...)`` on the server)."""
        filters = version_filters(names)
        return select_versions([self._version(v) for f in filters for v in self._all_pages(
            functools.partial(self.client.search_model_versions, filter_string=f),
            PAGE_VERSIONS, "searching model versions")], names)

    # --- writing ---------------------------------------------------------------------------

    def ensure_model(self, name: str, description: str, tags: dict[str, str]) -> None:
        from mlflow.exceptions import MlflowException

        with self.errors(f"registering model {name}"):
            try:
                self.client.create_registered_model(name, tags=tags, description=description)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                for key, value in tags.items():
                    self.client.set_registered_model_tag(name, key, value)

    def update_model(self, name: str, description: str, set_tags: dict[str, str],
                     delete_tags: list[str]) -> None:
        with self.errors(f"updating registered model {name}"):
            current = self.client.get_registered_model(name)
            if (current.description or "") != description:
                self.client.update_registered_model(name, description=description)
            for key, value in set_tags.items():
                self.client.set_registered_model_tag(name, key, value)
            for key in delete_tags:
                self.client.delete_registered_model_tag(name, key)

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        with self.errors(f"tagging registered model {name}"):
            self.client.set_registered_model_tag(name, key, value)

    def acquire_lock(self, name: str, holder: dict[str, str]) -> dict[str, str] | None:
        """A lock is a registered model without versions: creating it is atomic in MLflow."""
        from mlflow.exceptions import MlflowException

        with self.errors(f"taking the lock {name}"):
            try:
                self.client.create_registered_model(name, tags=holder,
                                                    description="mlops-gitops apply lock")
                return None
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            return dict(self.client.get_registered_model(name).tags)

    def release_lock(self, name: str, tag: str, value: str) -> bool:
        """Delete the lock only while its tag ``tag`` is ``value`` (read, compare, delete);
        False when it is gone or belongs to another holder."""
        from mlflow.exceptions import MlflowException

        gone = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
        with self.errors(f"releasing the lock {name}"):
            try:
                current = self.client.get_registered_model(name)
            except MlflowException as exc:
                if exc.error_code in gone:
                    return False
                raise
            if (current.tags or {}).get(tag) != value:
                return False
            try:
                self.client.delete_registered_model(name)
            except MlflowException as exc:
                if exc.error_code in gone:
                    return False
                raise
            return True

    def set_version_tags(self, name: str, number: int, tags: dict[str, str]) -> None:
        with self.errors(f"tagging {name}/{number}"):
            for key, value in tags.items():
                self.client.set_model_version_tag(name, str(number), key, value)

    def set_alias(self, name: str, alias: str, number: int) -> None:
        with self.errors(f"setting alias {alias} of {name}"):
            self.client.set_registered_model_alias(name, alias, str(number))

    def delete_alias(self, name: str, alias: str) -> None:
        with self.errors(f"deleting alias {alias} of {name}"):
            self.client.delete_registered_model_alias(name, alias)

    def delete_version(self, name: str, number: int) -> None:
        with self.errors(f"deleting {name}/{number}"):
            self.client.delete_model_version(name, str(number))

    def register_version(self, name: str, source: str, run_id: str, model_id: str,
                         tags: dict[str, str], description: str = "") -> int:
        with self.errors(f"registering a version of {name}"):
            created = self.client.create_model_version(name, source=source, run_id=run_id,
                                                       tags=tags, model_id=model_id,
                                                       description=description or None)
            return int(created.version)

    # --- evaluation (model tests, champion/challenger) -------------------------------------

    def model_aliases(self, name: str) -> dict[str, int] | None:
        """The registered model's aliases ({} when it has none; None when it does not exist)."""
        found = self.get_model(name)
        return None if found is None else dict(found.aliases)

    def delete_model_tags(self, name: str, keys: list[str]) -> None:
        with self.errors(f"untagging registered model {name}"):
            for key in keys:
                self.client.delete_registered_model_tag(name, key)

    def delete_version_tags(self, name: str, number: int, keys: list[str]) -> None:
        with self.errors(f"untagging {name}/{number}"):
            for key in keys:
                self.client.delete_model_version_tag(name, str(number), key)


class MlflowRegistry(MlflowModelRegistry, MlflowRunStore):
    """The adapter the commands use: the model registry and the run store on one connection."""
