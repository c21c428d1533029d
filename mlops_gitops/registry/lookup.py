"""Find a registered version by fingerprint without importing MLflow (the fast no-op path).

The embedded store is read directly with sqlite3 (read-only); a server through its REST API
with urllib. Anything unexpected raises :class:`LookupUnavailable` and the caller falls back to
the MLflow client, so a change in MLflow's storage can slow the no-op down but never mislead it.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.parse
import urllib.request

from mlops_gitops.identity import STATUS_READY, TAG_FINGERPRINT, TAG_STATUS
from mlops_gitops.tracking import Tracking, auth_headers


class LookupUnavailable(Exception):
    pass


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
        return _from_rest(tracking, name, fingerprint)
    raise LookupUnavailable(tracking.uri)


def _from_sqlite(tracking: Tracking, name: str, fingerprint: str) -> int | None:
    path = tracking.sqlite_path
    if not path.exists():
        return None
    try:
        with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as db:
            row = db.execute(_SQL, (TAG_FINGERPRINT, fingerprint, TAG_STATUS, STATUS_READY,
                                    name)).fetchone()
    except sqlite3.Error as exc:
        raise LookupUnavailable(str(exc)) from None
    return int(row[0]) if row else None


def _from_rest(tracking: Tracking, name: str, fingerprint: str) -> int | None:
    filter_string = f"name = '{name}' and tags.`{TAG_FINGERPRINT}` = '{fingerprint}'"
    query = urllib.parse.urlencode({"filter": filter_string, "max_results": 100})
    url = f"{tracking.uri.rstrip('/')}/api/2.0/mlflow/model-versions/search?{query}"
    try:
        request = urllib.request.Request(url, headers=auth_headers())
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise LookupUnavailable(str(exc)) from None
    ready = [int(v["version"]) for v in payload.get("model_versions", [])
             if {t["key"]: t["value"] for t in v.get("tags", [])}.get(TAG_STATUS) == STATUS_READY]
    return max(ready) if ready else None
