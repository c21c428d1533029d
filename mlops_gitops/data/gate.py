"""``data validate``: each dataset's file (pulled by DVC when missing) against its contract."""

from __future__ import annotations

from pathlib import Path

from mlops_gitops.data.contract import DataReport, read_csv, validate_frame
from mlops_gitops.data.versioning import data_version, ensure_present
from mlops_gitops.spec.loader import LoadedSpec


def load_dataset_frame(root: Path, dataset: LoadedSpec):
    """The dataset's frame, its version, and failures that stop reading (None frame then)."""
    spec = dataset.spec.spec
    path = ensure_present(root, spec.path, dataset.file)
    frame, failures = read_csv(path, spec)
    return frame, data_version(root, spec.path), failures


def validate_dataset(root: Path, dataset: LoadedSpec) -> DataReport:
    spec = dataset.spec.spec
    frame, version, failures = load_dataset_frame(root, dataset)
    if frame is not None:
        failures = validate_frame(frame, spec)
    return DataReport(
        dataset=dataset.name,
        path=spec.path,
        md5=version.md5,
        rows=0 if frame is None else len(frame),
        columns=0 if frame is None else len(frame.columns),
        failures=tuple(failures),
    )
