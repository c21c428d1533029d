"""Where the MLflow tracking server and registry are: ``MLFLOW_TRACKING_URI``, else the project
config's ``tracking_uri``, else the embedded default (SQLite and artifacts under ``.mlops/``)."""

from __future__ import annotations

import base64
import html
import os
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError, redact

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


CREDENTIALS_HINT = ("set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or "
                    "MLFLOW_TRACKING_TOKEN), or the user-info of MLFLOW_TRACKING_URI / "
                    "tracking_uri in mlops-gitops.yaml (http://USER:PASSWORD@HOST:PORT)")
# Transient server failures (a restart of `mlflow server`) are retried with exponential backoff
# within a bounded total time, then one clear message. The counts are MLflow's own settings
# (MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR; CLIENT_DEFAULTS below), so
# the stdlib reader and MLflow's client give up alike.
RETRY_STATUS = frozenset({502, 503, 504})
RETRY_BUDGET_S = 20.0


@dataclass(frozen=True)
class Tracking:
    uri: str  # never holds credentials: safe to print
    artifact_location: str | None = None  # set for SQLite stores only
    embedded: bool = False  # the default store under .mlops/ (no URI configured)
    # user-info taken out of the configured URI; never printed (repr=False)
    username: str | None = field(default=None, repr=False, compare=False)
    password: str | None = field(default=None, repr=False, compare=False)

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
    if uri and uri.startswith(("http://", "https://")):
        clean, username, password = split_credentials(uri)
        return Tracking(clean, username=username, password=password)
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


def split_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """``(uri without user-info, user, password)``; user and password are percent-decoded."""
    parts = urllib.parse.urlsplit(uri)
    if "@" not in parts.netloc:
        return uri, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    clean = urllib.parse.urlunsplit(parts._replace(netloc=host))
    return (clean, urllib.parse.unquote(user) or None,
            urllib.parse.unquote(password) if password else None)


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def credentials(tracking: Tracking | None = None) -> tuple[str | None, str | None]:
    """Basic-auth user and password: the URI's user-info first, else MLflow's variables."""
    if tracking is not None and tracking.username:
        return tracking.username, tracking.password
    return os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")


def auth_headers(tracking: Tracking | None = None) -> dict[str, str]:
    """HTTP auth as MLflow's client sends it (Basic before Bearer); never printed."""
    user, password = credentials(tracking)
    if user and password:
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    return {}


def ssl_context() -> ssl.SSLContext | None:
    """TLS as MLflow's client does it: ``MLFLOW_TRACKING_INSECURE_TLS`` (no verification),
    ``MLFLOW_TRACKING_SERVER_CERT_PATH`` (a CA bundle), ``MLFLOW_TRACKING_CLIENT_CERT_PATH``
    (a client certificate, PEM with its key); None: the default verified context."""
    insecure = _truthy("MLFLOW_TRACKING_INSECURE_TLS")
    server_cert = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
    client_cert = os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH")
    if not (insecure or server_cert or client_cert):
        return None
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=server_cert or None)
    if client_cert:
        context.load_cert_chain(client_cert)
    return context


def unreachable(uri: str, detail: str) -> DiagnosticError:
    uri = redact(uri)
    return DiagnosticError([Diagnostic(
        uri, code="tracking-unreachable",
        message=f"cannot reach the MLflow tracking server at {uri}: {redact(detail)}",
        hint="start it, or point MLFLOW_TRACKING_URI (or tracking_uri in mlops-gitops.yaml) at a "
             "running server; unset both to use the embedded SQLite store")])


def server_failed(uri: str, code: int, detail: str, artifacts: bool = False) -> DiagnosticError:
    """The server answered but failed (HTTP 500): its database or its artifact store, not the
    network. The client never sees the server's settings (the bucket, the database URI): the
    hint names the server options to check."""
    uri = redact(uri)
    if artifacts:
        return DiagnosticError([Diagnostic(
            uri, code="tracking-artifacts",
            message=f"the MLflow tracking server at {uri} could not store or read artifacts: "
                    f"HTTP {code} {redact(detail)}".rstrip(),
            hint="the server cannot write to its artifact store: check its "
                 "--artifacts-destination (does the bucket exist? create it, e.g. "
                 "`aws s3 mb s3://BUCKET`), the server's S3 credentials (AWS_ACCESS_KEY_ID / "
                 "AWS_SECRET_ACCESS_KEY) and MLFLOW_S3_ENDPOINT_URL, and the server's log")])
    return DiagnosticError([Diagnostic(
        uri, code="tracking-server-error",
        message=f"the MLflow tracking server at {uri} failed: HTTP {code} {redact(detail)}"
                .rstrip(),
        hint="the server is up but cannot serve the request: check the server's log and its "
             "--backend-store-uri (is the database reachable, and are its user and password "
             "right?)")])


def refused(uri: str, code: int, detail: str = "") -> DiagnosticError:
    """The server answered 401/403: the credentials are wrong, missing or not allowed."""
    what = ("rejected the credentials" if code == 401 else
            "refused the request (the user lacks the permission)")
    uri = redact(uri)
    return DiagnosticError([Diagnostic(
        uri, code="tracking-auth",
        message=f"the MLflow tracking server at {uri} {what}: HTTP {code}"
                + (f" on {detail}" if detail else ""),
        hint=CREDENTIALS_HINT)])


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code in RETRY_STATUS
    reason = getattr(exc, "reason", exc)
    return isinstance(reason, (ConnectionRefusedError, ConnectionResetError,
                               ConnectionAbortedError, TimeoutError)) or \
        isinstance(exc, (ConnectionResetError, ConnectionAbortedError, ConnectionRefusedError))


def _env_number(name: str, kind: type, default):
    try:
        return kind(os.environ.get(name) or CLIENT_DEFAULTS.get(name) or default)
    except ValueError:
        return default


def retry_settings() -> tuple[int, float]:
    """(retries, first backoff in seconds) from MLflow's variables, else our client defaults."""
    return (max(0, _env_number("MLFLOW_HTTP_REQUEST_MAX_RETRIES", int, 3)),
            max(0.0, _env_number("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", float, 1.0)))


def http_get(tracking: Tracking, url: str, timeout: float, retries: int | None = None,
             budget_s: float = RETRY_BUDGET_S):
    """Open ``url`` with the tracking server's auth and TLS settings, retrying connection
    refused/reset and HTTP 502/503/504 with exponential backoff (within ``budget_s`` in all).
    Returns the open response; raises the last ``urllib`` error when retries run out."""
    request = urllib.request.Request(url, headers=auth_headers(tracking))
    context = ssl_context() if url.startswith("https://") else None
    started, slept = time.monotonic(), 0.0
    default_retries, delay = retry_settings()
    retries = default_retries if retries is None else retries
    for attempt in range(retries + 1):
        try:
            return urllib.request.urlopen(request, timeout=timeout, context=context)
        except (urllib.error.URLError, OSError) as exc:
            spent = max(time.monotonic() - started, slept)
            if attempt == retries or not retryable(exc) or spent + delay > budget_s:
                raise
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()
            time.sleep(delay)
            slept += delay
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


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
    """Fail fast with one clear line when an HTTP tracking server does not answer (one short
    retry covers a server that is restarting)."""
    if not tracking.is_http:
        return
    try:
        with http_get(tracking, tracking.uri.rstrip("/") + "/health", timeout, retries=1,
                      budget_s=2.0) as response:
            if response.status >= 500:
                raise unreachable(tracking.uri, f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise unreachable(tracking.uri, f"HTTP {exc.code}") from None
        if exc.code in (401, 403):
            raise refused(tracking.uri, exc.code, "/health") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise unreachable(tracking.uri, str(reason)) from None


def export_credentials(tracking: Tracking) -> None:
    """Hand the URI's user-info to MLflow's client (and child processes) the way MLflow reads
    it: MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD."""
    if tracking.username:
        os.environ["MLFLOW_TRACKING_USERNAME"] = tracking.username
        if tracking.password is not None:
            os.environ["MLFLOW_TRACKING_PASSWORD"] = tracking.password


def apply_client_defaults() -> None:
    for key, value in CLIENT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def tracking_for(project) -> Tracking:
    """Where a project's registry is: its config's tracking URI, the environment's, or the
    embedded store under ``.mlops/``."""
    return resolve_tracking(project.root, project.config.tracking_uri)
