"""The MLflow adapter: the only module that imports MLflow's client.

Implements :class:`RegistryReader` and :class:`RegistryWriter`, and logs training runs. Every MLflow
or HTTP failure becomes a :class:`DiagnosticError` naming the tracking URI.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.identity import STATUS_READY, TAG_FINGERPRINT, TAG_STATUS
from mlops_gitops.registry.filters import (
    model_filters,
    select_models,
    select_versions,
    version_filters,
)
from mlops_gitops.registry.ports import ModelVersion, RegisteredModel
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

PAGE_MODELS = 1000
PAGE_VERSIONS = 10_000
MODEL_ARTIFACT = "model"
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


def _pins(*packages: str) -> list[str]:
    pins = []
    for package in packages:
        with contextlib.suppress(PackageNotFoundError):
            pins.append(f"{package}=={version(package)}")
    return pins


# The dataset contract's column types as MLflow signature types. A nullable int column may
# hold missing values, which MLflow's "long" refuses: it is declared "double".
MLFLOW_TYPES = {"float": "double", "int": "long", "string": "string", "bool": "boolean"}


@dataclass(frozen=True)
class TrainingData:
    """What a run was trained on, logged as its MLflow dataset input (digest: the DVC md5)."""

    name: str
    path: str
    md5: str
    target: str
    frame: Any
    feature_types: dict[str, tuple[str, bool]]  # feature -> (contract type, nullable), in order


def input_schema(feature_types: dict[str, tuple[str, bool]]) -> Any:
    """The model's input signature typed by the dataset contract (not guessed from floats)."""
    from mlflow.types import ColSpec, Schema

    return Schema([ColSpec("double" if kind == "int" and nullable else MLFLOW_TYPES[kind], name,
                           required=not nullable)
                   for name, (kind, nullable) in feature_types.items()])


def typed_example(frame: Any, feature_types: dict[str, tuple[str, bool]]) -> Any:
    """The input example with the signature's types (whole numbers for int columns)."""
    frame = frame.copy()
    for name, (kind, nullable) in feature_types.items():
        if kind == "int" and not nullable and frame[name].notna().all():
            frame[name] = frame[name].astype("int64")
    return frame


class MlflowRegistry:
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

    # --- reading ---------------------------------------------------------------------------

    @staticmethod
    def _version(v: Any) -> ModelVersion:
        return ModelVersion(name=v.name, version=int(v.version), run_id=v.run_id or None,
                            source=v.source or "", tags=dict(v.tags or {}),
                            aliases=tuple(getattr(v, "aliases", None) or ()))

    def find_version(self, name: str, fingerprint: str) -> ModelVersion | None:
        with self.errors("searching model versions"):
            found = self.client.search_model_versions(
                f"name = '{name}' and tags.`{TAG_FINGERPRINT}` = '{fingerprint}'")
        ready = [self._version(v) for v in found if (v.tags or {}).get(TAG_STATUS) == STATUS_READY]
        return max(ready, key=lambda v: v.version) if ready else None

    def get_version(self, name: str, number: int) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        with self.errors(f"reading {name}/{number}"):
            try:
                return self._version(self.client.get_model_version(name, str(number)))
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                    return None
                raise

    def get_model(self, name: str) -> RegisteredModel | None:
        from mlflow.exceptions import MlflowException

        with self.errors(f"reading registered model {name}"):
            try:
                m = self.client.get_registered_model(name)
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                    return None
                raise
        return self._model(m)

    @staticmethod
    def _model(m: Any) -> RegisteredModel:
        return RegisteredModel(name=m.name, description=m.description or "",
                               tags=dict(m.tags or {}),
                               aliases={k: int(v) for k, v in (m.aliases or {}).items()})

    def _all_pages(self, search: Callable[..., Any], size: int, action: str) -> list[Any]:
        """Every item of a paged MLflow search (a handful of calls for a whole registry)."""
        items, token = [], None
        with self.errors(action):
            while True:
                page = search(max_results=size, page_token=token)
                items += list(page)
                token = page.token
                if not token:
                    return items

    def list_models(self) -> list[RegisteredModel]:
        return [self._model(m) for m in self._all_pages(
            self.client.search_registered_models, PAGE_MODELS, "listing registered models")]

    def list_versions(self) -> list[ModelVersion]:
        return [self._version(v) for v in self._all_pages(
            self.client.search_model_versions, PAGE_VERSIONS, "listing model versions")]

    def search_models(self, *, project: str | None = None,
                      names: Sequence[str] | None = None) -> list[RegisteredModel]:
        """The models tagged for ``project``, or those named ``names``, filtered on the server."""
        found = [self._model(m) for f in model_filters(project, names)
                 for m in self._all_pages(functools.partial(self.client.search_registered_models,
                                                            filter_string=f),
                                          PAGE_MODELS, "searching registered models")]
        return select_models(found, project, names)

    def search_versions(self, names: Sequence[str]) -> list[ModelVersion]:
        """Every version of the named models (``name IN (...)`` on the server)."""
        filters = version_filters(names)
        return select_versions([self._version(v) for f in filters for v in self._all_pages(
            functools.partial(self.client.search_model_versions, filter_string=f),
            PAGE_VERSIONS, "searching model versions")], names)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        with self.errors(f"reading run {run_id}"):
            return dict(self.client.get_run(run_id).data.metrics)

    def run_artifact_json(self, run_id: str, path: str) -> dict[str, Any]:
        with self.errors(f"reading {path} of run {run_id}"):
            return dict(self._mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}"))

    # --- writing ---------------------------------------------------------------------------

    def ensure_model(self, name: str, description: str, tags: dict[str, str]) -> None:
        from mlflow.exceptions import MlflowException

        with self.errors(f"registering model {name}"):
            try:
                self.client.create_registered_model(name, tags=tags, description=description)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                for key, value in tags.items():
                    self.client.set_registered_model_tag(name, key, value)

    def update_model(self, name: str, description: str, set_tags: dict[str, str],
                     delete_tags: list[str]) -> None:
        with self.errors(f"updating registered model {name}"):
            current = self.client.get_registered_model(name)
            if (current.description or "") != description:
                self.client.update_registered_model(name, description=description)
            for key, value in set_tags.items():
                self.client.set_registered_model_tag(name, key, value)
            for key in delete_tags:
                self.client.delete_registered_model_tag(name, key)

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        with self.errors(f"tagging registered model {name}"):
            self.client.set_registered_model_tag(name, key, value)

    def acquire_lock(self, name: str, holder: dict[str, str]) -> dict[str, str] | None:
        """A lock is a registered model without versions: creating it is atomic in MLflow."""
        from mlflow.exceptions import MlflowException

        with self.errors(f"taking the lock {name}"):
            try:
                self.client.create_registered_model(name, tags=holder,
                                                    description="mlops-gitops apply lock")
                return None
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            return dict(self.client.get_registered_model(name).tags)

    def release_lock(self, name: str, tag: str, value: str) -> bool:
        """Delete the lock only while its tag ``tag`` is ``value`` (read, compare, delete);
        False when it is gone or belongs to another holder."""
        from mlflow.exceptions import MlflowException

        gone = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
        with self.errors(f"releasing the lock {name}"):
            try:
                current = self.client.get_registered_model(name)
            except MlflowException as exc:
                if exc.error_code in gone:
                    return False
                raise
            if (current.tags or {}).get(tag) != value:
                return False
            try:
                self.client.delete_registered_model(name)
            except MlflowException as exc:
                if exc.error_code in gone:
                    return False
                raise
            return True

    def set_version_tags(self, name: str, number: int, tags: dict[str, str]) -> None:
        with self.errors(f"tagging {name}/{number}"):
            for key, value in tags.items():
                self.client.set_model_version_tag(name, str(number), key, value)

    def set_alias(self, name: str, alias: str, number: int) -> None:
        with self.errors(f"setting alias {alias} of {name}"):
            self.client.set_registered_model_alias(name, alias, str(number))

    def delete_alias(self, name: str, alias: str) -> None:
        with self.errors(f"deleting alias {alias} of {name}"):
            self.client.delete_registered_model_alias(name, alias)

    def delete_version(self, name: str, number: int) -> None:
        with self.errors(f"deleting {name}/{number}"):
            self.client.delete_model_version(name, str(number))

    # --- training runs ---------------------------------------------------------------------

    def experiment_id(self, name: str) -> str:
        experiment_name = f"mlops-gitops/{name}"
        with self.errors(f"creating experiment {experiment_name}"):
            found = self.client.get_experiment_by_name(experiment_name)
            if found is not None:
                return found.experiment_id
            location = (f"{self.tracking.artifact_location}/{name}"
                        if self.tracking.artifact_location else None)
            return self.client.create_experiment(experiment_name, artifact_location=location)

    def log_training(self, *, registered_name: str, pipeline: Any, X_example: Any,
                     predictions: Any, params: dict[str, str], metrics: dict[str, float],
                     tags: dict[str, str], lineage: dict[str, Any],
                     training_data: TrainingData) -> tuple[str, str, str]:
        """Log a run with the fitted model and its training data as an MLflow dataset input;
        returns (run id, model URI, logged model id)."""
        mlflow = self._mlflow
        import skops.io
        from mlflow.models import ModelSignature, infer_signature

        signature = ModelSignature(inputs=input_schema(training_data.feature_types),
                                   outputs=infer_signature(X_example, predictions).outputs)
        example = typed_example(X_example.head(3), training_data.feature_types)
        # Our own freshly fitted, allow-listed pipeline: trust the types skops flags in it (tree
        # structures, dtypes). Loading reuses the list recorded in the MLmodel file.
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)) or None
        # MLflow prints run links to stdout when a run ends: keep stdout for our own output.
        with self.errors("logging the training run"), contextlib.redirect_stdout(sys.stderr):
            with mlflow.start_run(experiment_id=self.experiment_id(registered_name),
                                  tags=tags) as run:
                mlflow.log_params(params)
                mlflow.log_metrics(metrics)
                mlflow.log_dict(lineage, "lineage.json")
                with warnings.catch_warnings():  # MLflow guesses at the source's kind aloud
                    warnings.simplefilter("ignore")
                    dataset = mlflow.data.from_pandas(
                        training_data.frame, source=training_data.path,
                        targets=training_data.target, name=training_data.name,
                        digest=training_data.md5)
                mlflow.log_input(dataset, context="training",
                                 tags={"mlops.data_md5": training_data.md5})
                info = mlflow.sklearn.log_model(
                    pipeline, name=MODEL_ARTIFACT, signature=signature,
                    input_example=example, serialization_format="skops",
                    skops_trusted_types=trusted,
                    pip_requirements=_pins("scikit-learn", "skops", "numpy", "pandas", "scipy"),
                )
            return run.info.run_id, info.model_uri, info.model_id

    def register_version(self, name: str, source: str, run_id: str, model_id: str,
                         tags: dict[str, str], description: str = "") -> int:
        with self.errors(f"registering a version of {name}"):
            created = self.client.create_model_version(name, source=source, run_id=run_id,
                                                       tags=tags, model_id=model_id,
                                                       description=description or None)
            return int(created.version)

    # --- evaluation (model tests, champion/challenger) -------------------------------------

    def model_aliases(self, name: str) -> dict[str, int] | None:
        """The registered model's aliases ({} when it has none; None when it does not exist)."""
        found = self.get_model(name)
        return None if found is None else dict(found.aliases)

    def download_version(self, name: str, number: int, folder: Path) -> Path:
        """A version's model artifact files (the MLflow model folder), downloaded into folder."""
        with self.errors(f"downloading {name}/{number}"):
            return Path(self._mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{number}", dst_path=str(folder)))

    def load_version_model(self, name: str, number: int) -> tuple[Any, int]:
        """A version's fitted model and the size in bytes of its model artifact files; the
        file's types are checked against the allow-listed catalog before it is loaded."""
        import tempfile

        from mlops_gitops.model_files import check_model_files, load_checked

        with tempfile.TemporaryDirectory() as folder:
            local = self.download_version(name, number, Path(folder))
            size = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
            files = check_model_files(local, f"model version {name}/{number}")
            with self.errors(f"loading {name}/{number}"):
                return load_checked(files), size

    def run_json_or_none(self, run_id: str, path: str) -> dict[str, Any] | None:
        """A JSON artifact of a run, or None when the run has no such artifact."""
        from mlflow.exceptions import MlflowException

        with self.errors(f"reading {path} of run {run_id}"):
            try:
                return dict(self._mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}"))
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                    return None
                raise

    def log_run_json(self, run_id: str, data: dict[str, Any], path: str) -> None:
        with self.errors(f"logging {path} to run {run_id}"):
            self.client.log_dict(run_id, data, path)

    # --- audit archive ----------------------------------------------------------------------

    AUDIT_EXPERIMENT = "mlops-gitops.audit"  # no model's training experiment has this name
    AUDIT_RUN_TAG = "mlops.audit_archive_of"

    def _audit_run(self, model: str, create: bool) -> str | None:
        """The run whose artifacts archive a registered model's rolled audit records."""
        found = self.client.get_experiment_by_name(self.AUDIT_EXPERIMENT)
        if found is None:
            if not create:
                return None
            location = (f"{self.tracking.artifact_location}/audit"
                        if self.tracking.artifact_location else None)
            experiment = self.client.create_experiment(self.AUDIT_EXPERIMENT,
                                                       artifact_location=location)
        else:
            experiment = found.experiment_id
        quoted = model.replace("'", "\\'")
        runs = self.client.search_runs([experiment], f"tags.`{self.AUDIT_RUN_TAG}` = '{quoted}'",
                                       max_results=10, order_by=["attributes.start_time ASC"])
        mine = [r for r in runs if r.data.tags.get(self.AUDIT_RUN_TAG) == model]
        if mine:
            return str(mine[0].info.run_id)
        if not create:
            return None
        run = self.client.create_run(experiment, tags={self.AUDIT_RUN_TAG: model},
                                     run_name=f"audit {model}")
        self.client.set_terminated(run.info.run_id)
        return str(run.info.run_id)

    def archive_audit(self, model: str, env: str, chunk: str, text: str) -> None:
        with self.errors(f"archiving audit records of {model}"):
            run_id = self._audit_run(model, create=True)
            assert run_id is not None  # created when missing
            self.client.log_text(run_id, text, f"audit/{env}/{chunk}")

    def read_audit_archive(self, model: str, env: str) -> list[str]:
        with self.errors(f"reading the audit archive of {model}"):
            run_id = self._audit_run(model, create=False)
            if run_id is None:
                return []
            files = self.client.list_artifacts(run_id, f"audit/{env}")
            return [self._mlflow.artifacts.load_text(f"runs:/{run_id}/{f.path}")
                    for f in sorted(files, key=lambda f: f.path) if not f.is_dir]

    def delete_model_tags(self, name: str, keys: list[str]) -> None:
        with self.errors(f"untagging registered model {name}"):
            for key in keys:
                self.client.delete_registered_model_tag(name, key)

    def delete_version_tags(self, name: str, number: int, keys: list[str]) -> None:
        with self.errors(f"untagging {name}/{number}"):
            for key in keys:
                self.client.delete_model_version_tag(name, str(number), key)
