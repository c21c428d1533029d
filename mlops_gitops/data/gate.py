"""``data validate``: each dataset's file (pulled by DVC when missing) against its contract."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mlops_gitops.data.contract import DataReport, Failure, read_csv, validate_frame
from mlops_gitops.data.versioning import data_version, ensure_present, untracked_change
from mlops_gitops.spec.loader import LoadedSpec


def load_dataset_frame(root: Path, dataset: LoadedSpec):
    """The dataset's frame, its version, failures that stop reading (None frame then), and
    the file read (inside the repository: a path or symlink out of it is refused)."""
    spec = dataset.spec.spec
    path = ensure_present(root, spec.path, dataset.file)
    frame, failures = read_csv(path, spec)
    return frame, data_version(root, spec.path), failures, path


def validate_dataset(root: Path, dataset: LoadedSpec) -> DataReport:
    """The file's contract failures; its md5 is what was checked, and a file that differs from
    its DVC version fails too (it would be trained and recorded under the wrong version)."""
    spec = dataset.spec.spec
    frame, version, failures, path = load_dataset_frame(root, dataset)
    if frame is not None:
        failures = validate_frame(frame, spec)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    if version.md5 and md5 != version.md5:
        change = untracked_change(spec.path)
        failures = [Failure("version", f"{change.message}; {change.hint}"), *failures]
    return DataReport(
        dataset=dataset.name,
        path=spec.path,
        md5=md5,
        rows=0 if frame is None else len(frame),
        columns=0 if frame is None else len(frame.columns),
        failures=tuple(failures),
    )
