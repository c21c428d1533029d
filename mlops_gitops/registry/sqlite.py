"""A read-only registry reader over the embedded store's SQLite file, with the standard library.

``plan``, ``status`` and the no-op steps of ``run`` read the embedded store without importing
MLflow (its SQLAlchemy store costs seconds to import for a few list calls). It answers exactly as
:class:`mlops_gitops.registry.mlflow.MlflowRegistry` does (a test compares them on a real store).

Anything it does not recognise raises :class:`LookupUnavailable` and the caller falls back to the
MLflow client: a schema without the tables and columns read here (another MLflow version),
MLflow workspaces switched on, or a project that was moved (its recorded artifact locations are
stale until the MLflow adapter rewrites them). A change in MLflow's storage can make reads slower,
never wrong. Writes always go through :mod:`mlops_gitops.registry.mlflow`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from mlops_gitops.identity import STATUS_READY, TAG_FINGERPRINT, TAG_STATUS
from mlops_gitops.registry.filters import select_models, select_versions
from mlops_gitops.registry.ports import LookupUnavailable, ModelVersion, RegisteredModel
from mlops_gitops.tracking import Tracking

PROMPT_TAG = "mlflow.prompt.is_prompt"  # MLflow lists prompts apart from models
DEFAULT_WORKSPACE = "default"
DELETED_STAGE = "Deleted_Internal"  # a version MLflow is deleting: never listed
# the tables and columns read here; any missing one means another schema: fall back
SCHEMA = {
    "registered_models": {"name", "description"},
    "registered_model_tags": {"key", "value", "name"},
    "registered_model_aliases": {"alias", "version", "name"},
    "model_versions": {"name", "version", "current_stage", "source", "run_id"},
    "model_version_tags": {"key", "value", "name", "version"},
}
WORKSPACE_VARIABLES = ("MLFLOW_ENABLE_WORKSPACES", "MLFLOW_WORKSPACE", "MLFLOW_WORKSPACE_STORE_URI")


class SqliteRegistryReader:
    """Reads the registry tables of an MLflow SQLite store (read-only connection)."""

    def __init__(self, tracking: Tracking):
        path = tracking.sqlite_path
        if path is None:
            raise LookupUnavailable(f"{tracking.uri} is not a SQLite store")
        if any(os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")
               for name in WORKSPACE_VARIABLES):
            raise LookupUnavailable("MLflow workspaces are configured")
        self.tracking = tracking
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._workspace = False
        if path.exists():
            self._open()

    def _open(self) -> None:
        try:
            db = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=30)
            tables = {r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:  # an empty file: MLflow has not created its tables yet
                db.close()
                return
            columns = {}
            for table in SCHEMA:
                columns[table] = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                if not SCHEMA[table] <= columns[table]:
                    db.close()
                    raise LookupUnavailable(f"unexpected schema of table {table}")
            self._workspace = all("workspace" in c for c in columns.values())
            if any("workspace" in c for c in columns.values()) and not self._workspace:
                db.close()
                raise LookupUnavailable("unexpected schema: workspace columns")
            if self._workspace and db.execute(
                    "SELECT 1 FROM registered_models WHERE workspace != ? LIMIT 1",
                    (DEFAULT_WORKSPACE,)).fetchone():
                db.close()
                raise LookupUnavailable("the store holds several workspaces")
            if self._moved(db, tables):
                db.close()
                raise LookupUnavailable("the project was moved: artifact locations are stale")
        except sqlite3.Error as exc:
            raise LookupUnavailable(str(exc)) from None
        self._db = db

    def _moved(self, db: sqlite3.Connection, tables: set[str]) -> bool:
        """Recorded artifact roots other than the store's own (the MLflow adapter relocates
        them when it opens the store; until then, sources read here would be stale)."""
        from mlops_gitops.registry.relocate import recorded_roots

        if "experiments" not in tables or self.tracking.artifact_location is None:
            return False
        return bool(recorded_roots(db) - {self.tracking.artifact_location})

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._db is None and self.path.exists():
            self._open()  # created since this reader was made (a first run trains)
        if self._db is None:
            return []
        where = " AND workspace = 'default'" if self._workspace else ""
        try:
            return self._db.execute(sql.replace("{ws}", where), params).fetchall()
        except sqlite3.Error as exc:
            raise LookupUnavailable(str(exc)) from None

    # --- the registry's rows --------------------------------------------------------------

    def _prompts(self) -> set[str]:
        return {r[0] for r in self._rows(
            "SELECT name FROM registered_model_tags WHERE key = ? AND value = 'true'{ws}",
            (PROMPT_TAG,))}

    def _models(self, name: str | None) -> list[RegisteredModel]:
        clause, params = (" AND name = ?", (name,)) if name is not None else ("", ())
        tags: dict[str, dict[str, str]] = {}
        for key, value, owner in self._rows(
                f"SELECT key, value, name FROM registered_model_tags WHERE 1=1{clause}{{ws}}",
                params):
            tags.setdefault(owner, {})[key] = value if value is not None else ""
        aliases: dict[str, dict[str, int]] = {}
        for alias, version, owner in self._rows(
                "SELECT alias, version, name FROM registered_model_aliases "
                f"WHERE 1=1{clause}{{ws}}", params):
            aliases.setdefault(owner, {})[alias] = int(version)
        return [RegisteredModel(n, d or "", tags.get(n, {}), aliases.get(n, {}))
                for n, d in self._rows(
                    f"SELECT name, description FROM registered_models WHERE 1=1{clause}{{ws}} "
                    "ORDER BY name", params)]

    def _versions(self, clause: str = "", params: tuple[Any, ...] = (),
                  with_aliases: bool = False) -> list[ModelVersion]:
        """Versions with their tags; aliases only with ``with_aliases`` (as MLflow's search
        returns none and its get returns them)."""
        rows = self._rows(
            "SELECT name, version, run_id, source FROM model_versions "
            f"WHERE current_stage != '{DELETED_STAGE}'{clause}{{ws}} "
            "ORDER BY name, version", params)
        if not rows:
            return []
        names = {r[0] for r in rows}
        tags: dict[tuple[str, int], dict[str, str]] = {}
        aliases: dict[tuple[str, int], list[str]] = {}
        one = len(names) == 1
        filter_, fparams = (" AND name = ?", (next(iter(names)),)) if one else ("", ())
        for key, value, name, version in self._rows(
                f"SELECT key, value, name, version FROM model_version_tags WHERE 1=1{filter_}"
                "{ws}", fparams):
            tags.setdefault((name, int(version)), {})[key] = value if value is not None else ""
        for alias, version, name in self._rows(
                f"SELECT alias, version, name FROM registered_model_aliases WHERE 1=1{filter_}"
                "{ws} ORDER BY alias", fparams) if with_aliases else ():
            aliases.setdefault((name, int(version)), []).append(alias)
        return [ModelVersion(name, int(version), run_id or None, source or "",
                             tags.get((name, int(version)), {}),
                             tuple(aliases.get((name, int(version)), ())))
                for name, version, run_id, source in rows]

    # --- RegistryReader --------------------------------------------------------------------

    def list_models(self) -> list[RegisteredModel]:
        prompts = self._prompts()
        return [m for m in self._models(None) if m.name not in prompts]

    def get_model(self, name: str) -> RegisteredModel | None:
        found = self._models(name)
        return found[0] if found else None

    def list_versions(self) -> list[ModelVersion]:
        prompts = self._prompts()
        return [v for v in self._versions() if v.name not in prompts]

    def search_models(self, *, project: str | None = None,
                      names: Sequence[str] | None = None) -> list[RegisteredModel]:
        """The same selection as a server's filtered search (a local file: read it all)."""
        return select_models(self.list_models(), project, names)

    def search_versions(self, names: Sequence[str]) -> list[ModelVersion]:
        return select_versions(self.list_versions(), names)

    def get_version(self, name: str, version: int) -> ModelVersion | None:
        found = self._versions(" AND name = ? AND version = ?", (name, int(version)),
                               with_aliases=True)
        return found[0] if found else None

    def find_version(self, name: str, fingerprint: str) -> ModelVersion | None:
        ready = [v for v in self._versions(" AND name = ?", (name,))
                 if v.tags.get(TAG_FINGERPRINT) == fingerprint
                 and v.tags.get(TAG_STATUS) == STATUS_READY]
        return max(ready, key=lambda v: v.version) if ready else None

    def model_aliases(self, name: str) -> dict[str, int] | None:
        found = self.get_model(name)
        return None if found is None else dict(found.aliases)
