"""Trusted loading of a registered model's files (an MLflow scikit-learn model saved with skops).

A model artifact crossed a boundary: anyone with write access to the registry can upload one.
Before anything is loaded, the skops file's types are checked against this project's
allow-listed catalog (:data:`mlops_gitops.spec.catalog.SKOPS_TRUSTED_TYPES`, beside the
scikit-learn estimators skops trusts itself). The list of "trusted types" stored in the artifact
is never used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.spec import catalog


@dataclass(frozen=True)
class ModelFiles:
    folder: Path
    model_file: str  # the skops file, relative to folder
    trusted_types: tuple[str, ...]  # the checked non-estimator types it holds
    signature_inputs: str | None  # MLflow's JSON list of input columns


def _refuse(where: str, message: str) -> DiagnosticError:
    return DiagnosticError([Diagnostic(where, code="untrusted-model", message=message,
                                       hint="use a version that 'mlops-gitops train' built "
                                            "from an allow-listed pipeline")])


def check_model_files(folder: Path, where: str) -> ModelFiles:
    """The MLflow model folder's skops file, checked; ``where`` names it in errors."""
    import skops.io
    import yaml

    try:
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise _refuse(where, f"no readable MLmodel file: {exc}") from None
    flavor = (mlmodel.get("flavors") or {}).get("sklearn") or {}
    model_file = flavor.get("pickled_model")
    if flavor.get("serialization_format") != "skops" or not isinstance(model_file, str) or \
            "/" in model_file or model_file.startswith("."):
        raise _refuse(where, "not a skops-serialized scikit-learn model: it is never loaded")
    try:
        untrusted = skops.io.get_untrusted_types(file=folder / model_file)
    except Exception as exc:  # noqa: BLE001 - a damaged or hostile file
        raise _refuse(where, f"the model file cannot be read ({type(exc).__name__}: "
                      f"{str(exc)[:200]})") from None
    foreign = sorted(set(untrusted) - catalog.SKOPS_TRUSTED_TYPES)
    if foreign:
        raise _refuse(where, "the model file holds types outside the allow-listed catalog: "
                      f"{', '.join(foreign)}; it is not loaded")
    signature = (mlmodel.get("signature") or {}).get("inputs")
    return ModelFiles(folder, model_file, tuple(sorted(untrusted)), signature)


def load_checked(files: ModelFiles):
    """The fitted model, loaded with exactly the checked types trusted."""
    import skops.io

    return skops.io.load(files.folder / files.model_file, trusted=list(files.trusted_types))
