"""The connection to MLflow that both halves of the adapter share (:mod:`.mlflow` for the model
registry, :mod:`.mlflow_runs` for training runs and artifacts): the client, and every MLflow or
HTTP failure translated into a :class:`DiagnosticError` naming the tracking URI."""

from __future__ import annotations

import contextlib
import errno
import logging
import re
from collections.abc import Iterator

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.registry.relocate import relocate_store
from mlops_gitops.tracking import (
    Tracking,
    apply_client_defaults,
    check_sqlite_store,
    export_credentials,
    not_mlflow,
    refused,
    server_failed,
    unreachable,
)

# MLflow's message for an answer that is not MLflow's JSON (rest_utils.verify_rest_response)
_NOT_MLFLOW = re.compile(r"API request to endpoint .*?(?:failed with error code (\d+) != \d+|"
                         r"was successful but the response body was not in a valid JSON "
                         r"format)\. Response body: '(.*)'$", re.DOTALL)
# What SQLite, SQLAlchemy and the OS say when the store cannot be written.
_DISK_FULL = ("database or disk is full", "no space left on device")
_READ_ONLY = ("attempt to write a readonly database", "read-only file system",
              "readonly database", "permission denied", "unable to open database file")
_FAULT_ERRNOS = {errno.ENOSPC: "full", errno.EDQUOT: "full", errno.EROFS: "read-only",
                 errno.EACCES: "read-only", errno.EPERM: "read-only"}


def _fault_kind(text: str) -> str | None:
    lowered = text.lower()
    if any(marker in lowered for marker in _DISK_FULL):
        return "full"
    if any(marker in lowered for marker in _READ_ONLY):
        return "read-only"
    return None


def store_fault(tracking: Tracking, action: str, kind: str, path: str | None = None) -> \
        DiagnosticError:
    """The store cannot be written (full disk, read-only folder): name it and what to do."""
    where = path or (str(tracking.sqlite_path) if tracking.sqlite_path is not None
                     else tracking.uri)
    remote = tracking.is_http and path is None
    again = ("then run the command again: changes already made are kept (each with its audit "
             "record) and the next apply finishes the rest")
    if kind == "full":
        message = (f"{action} failed: the disk holding {where} is full" if not remote else
                   f"{action} failed: the tracking server's store is full")
        hint = f"free space on it ({'ask its operator' if remote else 'df -h ' + where}), {again}"
    else:
        message = (f"{action} failed: {where} is read-only or not writable" if not remote else
                   f"{action} failed: the tracking server cannot write its store")
        hint = ("make it writable (its folder too: SQLite writes a journal beside it), or point "
                "MLFLOW_TRACKING_URI at a writable store, " + again)
    return DiagnosticError([Diagnostic(where, code="store-" + kind, message=message, hint=hint)])


# a server that answered but failed: retried 500s, or one 500 with MLflow's JSON error body
_SERVER_FAILED = re.compile(r"too many (500) error responses|failed with error code (?=500 )"
                            r"|INTERNAL_ERROR")



class MlflowConnection:
    def __init__(self, tracking: Tracking):
        apply_client_defaults()
        export_credentials(tracking)  # the URI's user-info, the way MLflow's client reads it
        import mlflow
        from mlflow import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # mlflow sets INFO on import

        self.tracking = tracking
        self._mlflow = mlflow
        check_sqlite_store(tracking, must_exist=False)
        with self.errors(f"opening the tracking location '{tracking.uri}'"):
            if tracking.sqlite_path is not None:
                tracking.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
                relocate_store(tracking)  # the project may have been moved or copied
            mlflow.set_tracking_uri(tracking.uri)
            mlflow.set_registry_uri(tracking.uri)
            self.client = MlflowClient(tracking_uri=tracking.uri, registry_uri=tracking.uri)

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Translate MLflow and connection failures into one clear, located error."""
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as exc:
            text = str(exc.message if hasattr(exc, "message") else exc)
            code = getattr(exc, "error_code", "")
            status = next((c for c in (401, 403) if f"error code {c}" in text), None)
            if status or code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
                raise refused(self.tracking.uri, status or (401 if code == "UNAUTHENTICATED"
                                                            else 403), action) from None
            kind = _fault_kind(text)
            if kind:
                raise store_fault(self.tracking, action, kind) from None
            failed = _SERVER_FAILED.search(text)
            if failed:  # MLflow's server answered 500 (after MLflow's client retried it)
                raise server_failed(self.tracking.uri, int(failed.group(1) or 500),
                                    f"while {action}",
                                    artifacts="mlflow-artifacts" in text) from None
            answer = _NOT_MLFLOW.search(text)
            if answer:  # a web server that is not MLflow's: its status and a short excerpt
                status = int(answer.group(1)) if answer.group(1) else None
                raise not_mlflow(self.tracking.uri, action, status, answer.group(2)) from None
            if "Max retries exceeded" in text or "Connection refused" in text or \
                    "API request to" in text:
                raise unreachable(self.tracking.uri, f"{action} failed after retries") from None
            raise DiagnosticError([Diagnostic(self.tracking.uri, code="registry",
                                              message=f"{action} failed: {text.splitlines()[0]}")
                                   ]) from None
        except OSError as exc:
            kind = _FAULT_ERRNOS.get(exc.errno or 0)
            if kind and not (self.tracking.is_http and exc.filename is None):
                raise store_fault(self.tracking, action, kind,
                                  str(exc.filename) if exc.filename else None) from None
            raise unreachable(self.tracking.uri, f"{action}: {exc}") from None
        except Exception as exc:
            # SQLAlchemy / sqlite3 errors that MLflow lets through (e.g. an autoflush on a full
            # disk): a located message, never a traceback
            kind = _fault_kind(str(exc)) if type(exc).__module__.startswith(
                ("sqlalchemy", "sqlite3")) else None
            if kind is None:
                raise
            raise store_fault(self.tracking, action, kind) from None
