"""``data diff``: what changed in a dataset between two git revisions (the reviewer's view)."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from mlops_gitops.data.drift import ColumnDrift, frame_drift
from mlops_gitops.data.versioning import read_at_revision
from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.spec.loader import LoadedSpec


@dataclass(frozen=True)
class DataDiff:
    dataset: str
    path: str
    revs: tuple[str, str]
    rows: tuple[int, int]
    rows_added: int
    rows_removed: int
    columns_added: list[str] = field(default_factory=list)
    columns_removed: list[str] = field(default_factory=list)
    type_changes: dict[str, tuple[str, str]] = field(default_factory=dict)
    drift: list[ColumnDrift] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.rows_added or self.rows_removed or self.columns_added or
                    self.columns_removed or self.type_changes)

    def to_dict(self) -> dict:
        return {**asdict(self), "changed": self.changed}


def _row_counts(frame: pd.DataFrame, columns: list[str]) -> Counter:
    return Counter(pd.util.hash_pandas_object(frame[columns], index=False).to_numpy().tolist())


def diff_frames(dataset: str, path: str, revs: tuple[str, str], old: pd.DataFrame,
                new: pd.DataFrame) -> DataDiff:
    shared = [c for c in old.columns if c in new.columns]
    old_rows, new_rows = _row_counts(old, shared), _row_counts(new, shared)
    return DataDiff(
        dataset=dataset, path=path, revs=revs, rows=(len(old), len(new)),
        rows_added=sum((new_rows - old_rows).values()),
        rows_removed=sum((old_rows - new_rows).values()),
        columns_added=[str(c) for c in new.columns if c not in old.columns],
        columns_removed=[str(c) for c in old.columns if c not in new.columns],
        type_changes={str(c): (str(old[c].dtype), str(new[c].dtype)) for c in shared
                      if old[c].dtype != new[c].dtype},
        drift=frame_drift(old, new, shared),
    )


def diff_dataset(root: Path, dataset: LoadedSpec, rev_a: str, rev_b: str) -> DataDiff:
    from mlops_gitops.data.contract import parse_csv

    relative = dataset.spec.spec.path
    frames = []
    for rev in (rev_a, rev_b):
        frame, failures = parse_csv(io.BytesIO(read_at_revision(root, relative, rev)),
                                    dataset.spec.spec)
        if frame is None:
            raise DiagnosticError([Diagnostic(relative, code="data", message=f"cannot read "
                                              f"'{relative}' at revision '{rev}': "
                                              f"{failures[0].message}")])
        frames.append(frame)
    return diff_frames(dataset.name, relative, (rev_a, rev_b), *frames)
