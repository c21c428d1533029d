"""Keep an embedded (SQLite) store working after its project folder is moved or copied.

MLflow records absolute artifact locations in the database: the experiment's artifact root, each
run's artifact URI, each logged model's location and each model version's storage location. After
``mv`` or ``cp -r`` of the project, they still point at the old folder: MLflow would write new
artifacts there and find none of the old ones. A SQLite store of ours keeps its artifacts in
``artifacts/`` beside the database file, so any other recorded root is stale: rewrite it to the
current one before MLflow opens the store. Plain ``sqlite3``: no MLflow import.
"""

from __future__ import annotations

import sqlite3

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.tracking import Tracking

EXPERIMENT_PREFIX = "mlops-gitops/"
# every column in which MLflow records an artifact location
LOCATION_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
)


def recorded_roots(db: sqlite3.Connection) -> set[str]:
    """The artifact roots recorded for our experiments (``<root>/<model name>``)."""
    roots = set()
    rows = db.execute("SELECT name, artifact_location FROM experiments WHERE name LIKE ?",
                      (EXPERIMENT_PREFIX + "%",))
    for name, location in rows:
        suffix = "/" + name.removeprefix(EXPERIMENT_PREFIX)
        if location and location.endswith(suffix):
            roots.add(location[:-len(suffix)])
    return roots


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def relocate_store(tracking: Tracking) -> list[str]:
    """Rewrite stale artifact roots to the store's own; returns the roots that were rewritten."""
    path, current = tracking.sqlite_path, tracking.artifact_location
    if path is None or current is None or not path.is_file():
        return []
    try:
        with sqlite3.connect(path, timeout=30) as db:
            if "experiments" not in {r[0] for r in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")}:
                return []
            stale = sorted(recorded_roots(db) - {current})
            for old in stale:
                for table, column in LOCATION_COLUMNS:
                    if column not in _columns(db, table):
                        continue
                    db.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                               f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                               (current, len(old) + 1, old, len(old) + 1, old + "/"))
        return stale
    except sqlite3.Error as exc:
        raise DiagnosticError([Diagnostic(
            str(path), code="registry",
            message=f"cannot update the artifact locations recorded in the store: {exc}",
            hint="is another command writing to it? try again")]) from None
