"""Find a registered version by fingerprint without importing MLflow (the fast no-op path).

The embedded store is read directly with sqlite3 (read-only); a server through its REST API
(:mod:`mlops_gitops.registry.rest`). Anything unexpected raises :class:`LookupUnavailable` and
the caller falls back to the MLflow client, so a change in MLflow's storage can slow the no-op
down but never mislead it.
"""

from __future__ import annotations

import sqlite3

from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.identity import STATUS_READY, TAG_FINGERPRINT, TAG_STATUS
from mlops_gitops.registry.ports import LookupUnavailable
from mlops_gitops.tracking import Tracking

_SQL = """
SELECT mv.version FROM model_versions mv
JOIN model_version_tags fp ON fp.name = mv.name AND fp.version = mv.version
    AND fp.key = ? AND fp.value = ?
JOIN model_version_tags st ON st.name = mv.name AND st.version = mv.version
    AND st.key = ? AND st.value = ?
WHERE mv.name = ? AND mv.current_stage != 'Deleted_Internal'
ORDER BY mv.version DESC LIMIT 1
"""


def find_ready_version(tracking: Tracking, name: str, fingerprint: str) -> int | None:
    if tracking.sqlite_path is not None:
        return _from_sqlite(tracking, name, fingerprint)
    if tracking.is_http:
        from mlops_gitops.registry.rest import RestRegistryReader

        try:
            found = RestRegistryReader(tracking, timeout=10).find_version(name, fingerprint)
        except DiagnosticError as exc:
            if exc.diagnostics[0].code in ("tracking-unreachable", "tracking-auth"):
                raise  # MLflow's client would fail the same way, only slower
            raise LookupUnavailable(exc.diagnostics[0].message) from None
        return found.version if found else None
    raise LookupUnavailable(tracking.uri)


def _from_sqlite(tracking: Tracking, name: str, fingerprint: str) -> int | None:
    path = tracking.sqlite_path
    if path is None or not path.exists():
        return None
    try:
        with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as db:
            row = db.execute(_SQL, (TAG_FINGERPRINT, fingerprint, TAG_STATUS, STATUS_READY,
                                    name)).fetchone()
    except sqlite3.Error as exc:
        raise LookupUnavailable(str(exc)) from None
    return int(row[0]) if row else None
