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


@dataclass(frozen=True)
class Tracking:
    uri: str
    artifact_location: str | None = None  # set for the embedded store only

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
    if not uri:
        uri = f"sqlite:///{root / STATE_DIR / 'mlflow.db'}"
    elif uri == configured and uri.startswith("sqlite:///") and not uri[10:].startswith("/"):
        uri = f"sqlite:///{root / uri[10:]}"
    if uri.startswith("sqlite:///"):
        database = Path(uri[10:])
        return Tracking(uri, (database.parent / "artifacts").as_uri())
    return Tracking(uri)


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
