"""Where the MLflow tracking server and registry are: ``MLFLOW_TRACKING_URI``, else the project
config's ``tracking_uri``, else the embedded default (SQLite and artifacts under ``.mlops/``)."""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError

STATE_DIR = ".mlops"
# Fail in seconds, not minutes, when the server is down (MLflow's own default retries ~2 min).
CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Tracking:
    uri: str
    artifact_location: str | None = None  # set for SQLite stores only
    embedded: bool = False  # the default store under .mlops/ (no URI configured)

    @property
    def is_http(self) -> bool:
        return self.uri.startswith(("http://", "https://"))

    @property
    def sqlite_path(self) -> Path | None:
        prefix = "sqlite:///"
        return Path(self.uri[len(prefix):]) if self.uri.startswith(prefix) else None


def resolve_tracking(root: Path, configured: str | None) -> Tracking:
    """The tracking location; a relative SQLite path in the project config is relative to the
    project root, and a SQLite store keeps its artifacts in ``artifacts/`` beside the file."""
    root = root.resolve()
    uri = os.environ.get("MLFLOW_TRACKING_URI") or configured
    default = root / STATE_DIR / "mlflow.db"
    if not uri:
        uri = f"sqlite:///{default}"
    elif uri == configured and uri.startswith("sqlite:///") and not uri[10:].startswith("/"):
        uri = f"sqlite:///{root / uri[10:]}"
    if uri.startswith("sqlite:///"):
        database = Path(uri[10:])
        return Tracking(uri, (database.parent / "artifacts").as_uri(), database == default)
    return Tracking(uri)


def _store_error(path: Path, message: str, hint: str) -> DiagnosticError:
    return DiagnosticError([Diagnostic(str(path), code="tracking-store", message=message,
                                       hint=hint)])


def check_sqlite_store(tracking: Tracking, must_exist: bool) -> None:
    """A SQLite store file must be a SQLite database; with ``must_exist`` (read-only commands)
    it must also exist, unless it is the embedded default (nothing trained yet): a mistyped
    path would otherwise be created and reported on as a new, empty registry."""
    path = tracking.sqlite_path
    if path is None:
        return
    where = "MLFLOW_TRACKING_URI (or tracking_uri in mlops-gitops.yaml)"
    if not path.exists():
        if must_exist and not tracking.embedded:
            raise _store_error(path, f"the SQLite tracking store '{path}' does not exist"
                               + ("" if path.parent.is_dir() else
                                  f" (nor does its folder '{path.parent}')"),
                               f"check the path in {where}; 'mlops-gitops train' creates a "
                               "new store")
        return
    try:
        with path.open("rb") as file:
            head = file.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise _store_error(path, f"cannot read the SQLite tracking store '{path}': "
                           f"{exc.strerror or exc}", f"check the path in {where}") from None
    if head and head != SQLITE_HEADER:
        raise _store_error(path, f"the tracking store '{path}' is not a SQLite database "
                           "(corrupt, or another kind of file)",
                           f"restore it from a backup, or point {where} at the right file")


def auth_headers() -> dict[str, str]:
    """HTTP auth from MLflow's own environment variables (never printed)."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = (os.environ.get("MLFLOW_TRACKING_USERNAME"),
                      os.environ.get("MLFLOW_TRACKING_PASSWORD"))
    if user and password:
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    return {}


def unreachable(uri: str, detail: str) -> DiagnosticError:
    return DiagnosticError([Diagnostic(
        uri, code="tracking-unreachable",
        message=f"cannot reach the MLflow tracking server at {uri}: {detail}",
        hint="start it, or point MLFLOW_TRACKING_URI (or tracking_uri in mlops-gitops.yaml) at a "
             "running server; unset both to use the embedded SQLite store")])


def check_reachable(tracking: Tracking, timeout: float = 5.0) -> None:
    """Fail fast with one clear line when an HTTP tracking server does not answer."""
    if not tracking.is_http:
        return
    request = urllib.request.Request(tracking.uri.rstrip("/") + "/health", headers=auth_headers())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.status >= 500:
                raise unreachable(tracking.uri, f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise unreachable(tracking.uri, f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise unreachable(tracking.uri, str(reason)) from None


def apply_client_defaults() -> None:
    for key, value in CLIENT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
