"""The run store half of the MLflow adapter: training runs (parameters, metrics, the model, its
lineage and training data), the JSON results recorded on them, model files, the audit archive."""

from __future__ import annotations

import contextlib
import sys
import warnings
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mlops_gitops.registry.mlflow_connection import MlflowConnection

MODEL_ARTIFACT = "model"


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


class MlflowRunStore(MlflowConnection):
    def run_metrics(self, run_id: str) -> dict[str, float]:
        with self.errors(f"reading run {run_id}"):
            return dict(self.client.get_run(run_id).data.metrics)

    def run_artifact_json(self, run_id: str, path: str) -> dict[str, Any]:
        with self.errors(f"reading {path} of run {run_id}"):
            return dict(self._mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}"))

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
