"""Where the MLflow tracking server and registry are: ``MLFLOW_TRACKING_URI``, else the project
config's ``tracking_uri``, else the embedded default (SQLite and artifacts under ``.mlops/``)."""

from __future__ import annotations

import base64
import html
import os
import re
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

# SQLAlchemy databases MLflow can track in: with no server in front, MLflow writes their
# artifacts to ./mlruns in whatever folder a command runs from.
DATABASE_SCHEMES = ("postgresql", "mysql", "mssql", "oracle")


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
        if not self.uri.startswith(prefix):
            return None
        return Path(self.uri[len(prefix):].split("?", 1)[0])


def _scheme(uri: str) -> str:
    """``postgresql`` for ``postgresql+psycopg2://...``; '' for a plain path."""
    head, sep, _ = uri.partition("://")
    return head.split("+", 1)[0].lower() if sep else ""


def _tracking_error(uri: str, from_env: bool, message: str, hint: str) -> DiagnosticError:
    where = ("MLFLOW_TRACKING_URI", "") if from_env else ("mlops-gitops.yaml", "spec.tracking_uri")
    return DiagnosticError([Diagnostic(where[0], path=where[1], code="tracking-uri",
                                       message=f"tracking URI '{uri}': {message}", hint=hint)])


def _sqlite(uri: str, base: Path, from_env: bool, embedded: bool = False) -> Tracking:
    """A SQLite store with an absolute database path and its artifacts beside the file."""
    rest = uri.partition("://")[2]  # '/relative.db', '//absolute.db', '' (in memory)
    path, _, query = rest[1:].partition("?") if rest.startswith("/") else ("", "", "")
    if path in ("", ":memory:"):
        raise _tracking_error(uri, from_env, "an in-memory SQLite store keeps nothing",
                              "name a database file (sqlite:///path/to/mlflow.db), or unset it "
                              "to use the embedded store under .mlops/")
    database = (base / path).resolve()  # an absolute path stays as it is
    artifacts = (database.parent / "artifacts").as_uri()
    return Tracking(f"sqlite:///{database}" + (f"?{query}" if query else ""), artifacts, embedded)


def resolve_tracking(root: Path, configured: str | None) -> Tracking:
    """The tracking location. A SQLite store keeps its artifacts in ``artifacts/`` beside the
    database file; a relative SQLite path is relative to the project root in the project config
    and to the current folder in ``MLFLOW_TRACKING_URI`` (as MLflow reads it). Any other database
    is refused: MLflow would write its artifacts to ./mlruns wherever a command runs."""
    root = root.resolve()
    from_env = bool(os.environ.get("MLFLOW_TRACKING_URI"))
    uri = os.environ.get("MLFLOW_TRACKING_URI") or configured
    default = root / STATE_DIR / "mlflow.db"
    if not uri:
        return _sqlite(f"sqlite:///{default}", root, False, embedded=True)
    scheme = _scheme(uri)
    if scheme == "sqlite":
        return _sqlite(uri, Path.cwd() if from_env else root, from_env)
    if scheme in DATABASE_SCHEMES:
        raise _tracking_error(
            uri, from_env, "a database without a tracking server has no artifact store (MLflow "
            "would write models to ./mlruns in the current folder)",
            "run 'mlflow server --backend-store-uri URI --artifacts-destination STORE' and set "
            "tracking_uri (or MLFLOW_TRACKING_URI) to its http:// address, or unset both to use "
            "the embedded store under .mlops/")
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


def excerpt(body: str, limit: int = 120) -> str:
    """A short, one-line excerpt of a response body: an HTML page's title and text, not its
    markup."""
    body = body[:20_000]  # the start of a page says what it is
    title = re.search(r"<title[^>]*>(.*?)</title>", body, re.IGNORECASE | re.DOTALL)
    text = re.sub(r"<(script|style|head)\b.*?</\1\s*>", " ", body, flags=re.IGNORECASE | re.DOTALL)
    text = re.sub(r"<[^>]*>", " ", text)
    text = " ".join(html.unescape(text).split())
    if title:
        heading = " ".join(html.unescape(title.group(1)).split())
        text = text if text.startswith(heading) else f"{heading}: {text}".rstrip(": ")
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def not_mlflow(uri: str, what: str, status: int | None, body: str) -> DiagnosticError:
    """The answer of something that is not an MLflow tracking server (an HTML page, a 404)."""
    answer = f"HTTP {status}" if status else "a response that is not JSON"
    shown = excerpt(body)
    return DiagnosticError([Diagnostic(
        uri, code="not-mlflow",
        message=f"{what} failed: {answer} from {uri}" + (f" ({shown!r})" if shown else ""),
        hint="is this an MLflow tracking server? point MLFLOW_TRACKING_URI (or tracking_uri in "
             "mlops-gitops.yaml) at one (`mlflow server`), or unset both to use the embedded "
             "SQLite store")])


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
