"""A read-only registry reader over MLflow's REST API with the standard library.

Planning and status read this project's part of a server's registry (filtered on the server) in a
few paged calls without importing MLflow (about a second of imports saved where people wait).
Writes always go through :mod:`mlops_gitops.registry.mlflow`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
from collections.abc import Sequence
from typing import Any

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.identity import STATUS_READY, TAG_FINGERPRINT, TAG_STATUS
from mlops_gitops.registry.filters import (
    model_filters,
    select_models,
    select_versions,
    version_filters,
)
from mlops_gitops.registry.ports import ModelVersion, RegisteredModel, RegistryReader
from mlops_gitops.tracking import (
    RETRY_STATUS,
    Tracking,
    http_get,
    not_mlflow,
    refused,
    retryable,
    server_failed,
    unreachable,
)

PAGE_MODELS = 1000
PAGE_VERSIONS = 100_000


def _tags(entries: list[dict[str, Any]] | None) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in entries or []}


def _model(m: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(name=m["name"], description=m.get("description", ""),
                           tags=_tags(m.get("tags")),
                           aliases={a["alias"]: int(a["version"]) for a in m.get("aliases", [])})


def _version(v: dict[str, Any]) -> ModelVersion:
    return ModelVersion(name=v["name"], version=int(v["version"]), run_id=v.get("run_id") or None,
                        source=v.get("source", ""), tags=_tags(v.get("tags")))


class RestRegistryReader:
    def __init__(self, tracking: Tracking, timeout: float = 30.0):
        self.tracking = tracking
        self.timeout = timeout

    def _get(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        url = (f"{self.tracking.uri.rstrip('/')}/api/2.0/mlflow/{endpoint}?"
               f"{urllib.parse.urlencode(params)}")
        try:
            with http_get(self.tracking, url, self.timeout) as response:
                body = response.read().decode("utf-8", "replace")
            try:
                answer: dict[str, Any] = json.loads(body)
                return answer
            except ValueError:
                raise not_mlflow(self.tracking.uri, endpoint, None, body) from None
        except urllib.error.HTTPError as exc:
            if exc.code in RETRY_STATUS:
                raise unreachable(self.tracking.uri, f"HTTP {exc.code} on {endpoint} after "
                                  "retries") from None
            if exc.code >= 500:
                raise server_failed(self.tracking.uri, exc.code, f"on {endpoint}") from None
            if exc.code in (401, 403):
                raise refused(self.tracking.uri, exc.code, endpoint) from None
            body = exc.read().decode("utf-8", "replace")
            try:
                detail = json.loads(body)
            except ValueError:
                raise not_mlflow(self.tracking.uri, endpoint, exc.code, body) from None
            if not isinstance(detail, dict):
                raise not_mlflow(self.tracking.uri, endpoint, exc.code, body) from None
            if detail.get("error_code") == "RESOURCE_DOES_NOT_EXIST":
                raise LookupError(detail.get("message", "")) from None
            raise DiagnosticError([Diagnostic(self.tracking.uri, code="registry",
                                              message=f"{endpoint} failed: HTTP {exc.code} "
                                              f"{detail.get('message', '')}".strip())]) from None
        except (urllib.error.URLError, OSError) as exc:
            raise unreachable(self.tracking.uri, f"{getattr(exc, 'reason', exc)} on {endpoint}"
                              + (" after retries" if retryable(exc) else "")) from None

    def _pages(self, endpoint: str, key: str, size: int,
               **params: Any) -> list[dict[str, Any]]:
        items, token = [], None
        while True:
            query = {"max_results": size, **params, **({"page_token": token} if token else {})}
            page = self._get(endpoint, query)
            items += page.get(key, [])
            token = page.get("next_page_token")
            if not token:
                return items

    def list_models(self) -> list[RegisteredModel]:
        return [_model(m) for m in self._pages("registered-models/search", "registered_models",
                                               PAGE_MODELS)]

    def search_models(self, *, project: str | None = None,
                      names: Sequence[str] | None = None) -> list[RegisteredModel]:
        """The models tagged for ``project``, or those named ``names``, filtered on the server."""
        found = [_model(m) for f in model_filters(project, names)
                 for m in self._pages("registered-models/search", "registered_models",
                                      PAGE_MODELS, **({"filter": f} if f else {}))]
        return select_models(found, project, names)

    def search_versions(self, names: Sequence[str]) -> list[ModelVersion]:
        """Every version of the named models (``name IN (...)`` on the server)."""
        filters = version_filters(names)
        return select_versions([_version(v) for f in filters for v in self._pages(
            "model-versions/search", "model_versions", PAGE_VERSIONS,
            **({"filter": f} if f else {}))], names)

    def get_model(self, name: str) -> RegisteredModel | None:
        try:
            return _model(self._get("registered-models/get", {"name": name})["registered_model"])
        except LookupError:
            return None

    def list_versions(self) -> list[ModelVersion]:
        return [_version(v) for v in self._pages("model-versions/search", "model_versions",
                                                 PAGE_VERSIONS)]

    def find_version(self, name: str, fingerprint: str) -> ModelVersion | None:
        found = [_version(v) for v in self._pages(
            "model-versions/search", "model_versions", 1000,
            filter=f"name = '{name}' and tags.`{TAG_FINGERPRINT}` = '{fingerprint}'")]
        ready = [v for v in found if v.tags.get(TAG_STATUS) == STATUS_READY]
        return max(ready, key=lambda v: v.version) if ready else None

    def get_version(self, name: str, number: int) -> ModelVersion | None:
        try:
            found = self._get("model-versions/get", {"name": name, "version": str(number)})
        except LookupError:
            return None
        return _version(found["model_version"])


def registry_reader(tracking: Tracking) -> RegistryReader:
    """The cheapest reader for the tracking location: REST for a server, SQLite read directly
    for a SQLite store (when its schema is the one expected), else MLflow."""
    if tracking.is_http:
        return RestRegistryReader(tracking)
    if tracking.sqlite_path is not None:
        from mlops_gitops.registry.ports import LookupUnavailable
        from mlops_gitops.registry.sqlite import SqliteRegistryReader

        try:
            return SqliteRegistryReader(tracking)
        except LookupUnavailable:
            pass
    from mlops_gitops.registry.mlflow import MlflowRegistry

    return MlflowRegistry(tracking)
