"""Data validation results remembered by (file md5, dataset-spec digest), so that an unchanged
dataset is not read and checked again (no pandas import on that path).

The cache is ``.mlops/cache/data-validate.json``. Only datasets that met their contract are
remembered; the key also names the mlops-gitops, pandas and numpy versions that checked them.
The file is untrusted: an entry that is missing, malformed or does not match what it claims
(the md5, the dataset) is ignored and the data is validated again. The DVC-version check (the
working file against its ``.dvc`` md5) is never cached: it runs every time.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from mlops_gitops.identity import canonical_json
from mlops_gitops.spec.loader import LoadedSpec
from mlops_gitops.tracking import STATE_DIR

CACHE_FILE = Path(STATE_DIR) / "cache" / "data-validate.json"
MAX_ENTRIES = 256


@dataclass(frozen=True)
class KnownReport:
    """A remembered passing report (the fields of :class:`DataReport` that ``run`` shows)."""

    dataset: str
    path: str
    md5: str | None
    rows: int
    columns: int
    failures: tuple = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def _versions() -> dict[str, str]:
    from mlops_gitops import __version__

    out = {"mlops-gitops": __version__}
    for name in ("pandas", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - dependencies
            out[name] = "unknown"
    return out


def cache_key(dataset: LoadedSpec, md5: str) -> str:
    spec = dataset.spec.spec.model_dump(mode="json", by_alias=True)
    text = canonical_json({"dataset": dataset.name, "spec": spec, "md5": md5,
                           "versions": _versions()})
    return hashlib.sha256(text.encode()).hexdigest()


def _read(root: Path) -> dict:
    try:
        data = json.loads((root / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def current_md5(root: Path, dataset: LoadedSpec) -> str | None:
    """The md5 of the working file when it is present and matches its DVC version (or is
    untracked); None when validation has to run (missing file, changed file)."""
    from mlops_gitops.data.versioning import data_path, data_version

    relative = dataset.spec.spec.path
    path = data_path(root, relative, dataset.file)
    if not path.is_file():
        return None
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    tracked = data_version(root, relative).md5
    return None if tracked and tracked != md5 else md5


def known_report(root: Path, dataset: LoadedSpec) -> KnownReport | None:
    """The remembered passing report of the dataset as it is now, else None."""
    md5 = current_md5(root, dataset)
    if md5 is None:
        return None
    entry = _read(root).get(cache_key(dataset, md5))
    if not isinstance(entry, dict):
        return None
    rows, columns = entry.get("rows"), entry.get("columns")
    if entry.get("dataset") != dataset.name or entry.get("md5") != md5 or \
            entry.get("path") != dataset.spec.spec.path or \
            type(rows) is not int or type(columns) is not int or rows < 0 or columns < 0:
        return None
    return KnownReport(dataset.name, dataset.spec.spec.path, md5, rows, columns)


def remember(root: Path, dataset: LoadedSpec, report) -> None:
    """Remember a passing report (best effort: a cache that cannot be written is no error)."""
    if not report.ok or not report.md5:
        return
    data = _read(root)
    data[cache_key(dataset, report.md5)] = {
        "dataset": dataset.name, "path": report.path, "md5": report.md5, "rows": report.rows,
        "columns": report.columns}
    while len(data) > MAX_ENTRIES:
        data.pop(next(iter(data)))
    target = root / CACHE_FILE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, target)
    except OSError:
        pass


def validate_cached(root: Path, dataset: LoadedSpec):
    """The dataset's report: remembered when it still holds, else validated (and remembered)."""
    known = known_report(root, dataset)
    if known is not None:
        return known
    from mlops_gitops.data.gate import validate_dataset

    report = validate_dataset(root, dataset)
    remember(root, dataset, report)
    return report
