"""The data-contract gate: a CSV file checked against its Dataset spec.

Value checks (min/max, allowed values, uniqueness) are compiled into a pandera schema; reading,
types, nulls, row counts, duplicate rows and the split definition are checked around it. Every
failure is reported at once with how many rows fail and a few example CSV lines and values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_gitops.diagnostics import Diagnostic
from mlops_gitops.spec.models import Column, DatasetSpec

MAX_EXAMPLES = 5
HEADER_LINES = 1  # CSV line of data row i is i + 2


@dataclass(frozen=True)
class Failure:
    check: str
    message: str
    column: str | None = None
    count: int = 0
    examples: tuple[tuple[int, str], ...] = ()  # (CSV line, value)


@dataclass(frozen=True)
class DataReport:
    dataset: str
    path: str
    md5: str | None
    rows: int
    columns: int
    failures: tuple[Failure, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def diagnostics(self) -> list[Diagnostic]:
        """Failures as located diagnostics (file = the CSV, line = the first example)."""
        out = []
        for failure in self.failures:
            line = failure.examples[0][0] if failure.examples else 0
            out.append(Diagnostic(self.path, line, 1 if line else 0, failure.column or "",
                                  f"dataset '{self.dataset}': {failure.message}",
                                  code=f"data-{failure.check}"))
        return out


def _line(index: int) -> int:
    return int(index) + HEADER_LINES + 1


def _examples(frame_index, values) -> tuple[tuple[int, str], ...]:
    pairs = zip(list(frame_index[:MAX_EXAMPLES]), list(values[:MAX_EXAMPLES]), strict=False)
    return tuple((_line(i), str(v)) for i, v in pairs)


def _describe(failure_examples: tuple[tuple[int, str], ...]) -> str:
    if not failure_examples:
        return ""
    shown = ", ".join(f"line {line}: {value!s}" for line, value in failure_examples)
    return f" (e.g. {shown})"


def _fail(check: str, message: str, column: str | None = None, count: int = 0,
          examples: tuple = ()) -> Failure:
    return Failure(check, message + _describe(examples), column, count, examples)


def read_csv(path: Path, spec: DatasetSpec) -> tuple[pd.DataFrame | None, list[Failure]]:
    """Read the CSV with the spec's types; unreadable input becomes failures, not exceptions."""
    size = path.stat().st_size
    limit = spec.checks.max_file_mb * 1024 * 1024
    if size > limit:
        return None, [_fail("size", f"file is {size / 1024 / 1024:.0f} MB, more than "
                            f"checks.max_file_mb ({spec.checks.max_file_mb} MB)")]
    if size == 0:
        return None, [_fail("empty", "file is empty (no header, no rows)")]
    return parse_csv(path, spec)


def parse_csv(source, spec: DatasetSpec) -> tuple[pd.DataFrame | None, list[Failure]]:
    """A CSV (path or binary file object) read with the spec's column types (declared text
    columns stay text: '01' is not 1); unreadable input becomes failures, not exceptions."""
    strings = {name: "string" for name, col in spec.columns.items() if col.type == "string"}
    try:
        frame = pd.read_csv(source, dtype=strings, low_memory=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        return None, [_fail("empty", "file has no columns")]
    except pd.errors.ParserError as exc:
        return None, [_fail("parse", f"malformed CSV: {str(exc).strip()}")]
    except UnicodeDecodeError as exc:
        return None, [_fail("encoding", f"file is not valid UTF-8 ({exc.reason} at byte "
                            f"{exc.start})")]
    return frame, []


_TRUTH = {"true": True, "false": False, "True": True, "False": False}


def _as_bool(value):
    return value if isinstance(value, bool) else _TRUTH.get(value)


def _coerce_types(frame: pd.DataFrame, spec: DatasetSpec) -> list[Failure]:
    """Make declared numeric/bool columns numeric; values that are not become type failures."""
    failures = []
    for name, column in spec.columns.items():
        if name not in frame or column.type == "string":
            continue
        values = frame[name]
        if column.type == "bool":
            mapped = values.map(_as_bool)
            bad = values.notna() & mapped.isna()
            frame[name] = mapped.astype("boolean")
        else:
            converted = values if pd.api.types.is_numeric_dtype(values) and not \
                pd.api.types.is_bool_dtype(values) else pd.to_numeric(values, errors="coerce")
            bad = values.notna() & converted.isna()
            if column.type == "int":
                fractional = converted.notna() & (converted % 1 != 0)
                if fractional.any():
                    failures.append(_fail("type", f"column '{name}': {int(fractional.sum())} "
                                          "value(s) are not whole numbers", name,
                                          int(fractional.sum()),
                                          _examples(frame.index[fractional],
                                                    values[fractional].to_numpy())))
            frame[name] = converted.astype("float64")
            infinite = converted.notna() & np.isinf(frame[name])
            if infinite.any():  # 'inf' passes min/max checks, then breaks training
                failures.append(_fail("finite", f"column '{name}': {int(infinite.sum())} "
                                      "value(s) are not finite (inf or -inf)", name,
                                      int(infinite.sum()),
                                      _examples(frame.index[infinite],
                                                values[infinite].to_numpy())))
        if bad.any():
            failures.append(_fail("type", f"column '{name}': {int(bad.sum())} value(s) are not "
                                  f"{column.type}", name, int(bad.sum()),
                                  _examples(frame.index[bad], values[bad].to_numpy())))
    return failures


def _pandera_schema(spec: DatasetSpec, present: list[str]):
    import pandera.pandas as pa

    def checks(column: Column) -> list:
        found = []
        if column.min is not None:
            found.append(pa.Check.ge(column.min, error=f"below min {column.min:g}"))
        if column.max is not None:
            found.append(pa.Check.le(column.max, error=f"above max {column.max:g}"))
        if column.allowed is not None:
            allowed = [float(v) if column.type in ("int", "float") and not isinstance(v, bool)
                       else v for v in column.allowed]
            shown = ", ".join(map(str, column.allowed))
            found.append(pa.Check.isin(allowed, error=f"not among the allowed values [{shown}]"))
        return found

    return pa.DataFrameSchema(
        {name: pa.Column(checks=checks(col), nullable=True, unique=col.unique, required=False)
         for name, col in spec.columns.items() if name in present},
        strict=False,
    )


def _value_failures(frame: pd.DataFrame, spec: DatasetSpec) -> list[Failure]:
    import pandera.errors

    schema = _pandera_schema(spec, list(frame.columns))
    try:
        schema.validate(frame, lazy=True, inplace=True)
        return []
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    failures = []
    for (column, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        label = _check_label(str(check))
        index = group["index"].dropna().astype(int).to_numpy()
        values = group["failure_case"].to_numpy()
        verb = "are duplicated" if label == "unique" else check
        failures.append(_fail(label, f"column '{column}': {len(group)} value(s) {verb}",
                              str(column), len(group), _examples(index, values)))
    return failures


def _check_label(check: str) -> str:
    for prefix, label in (("below min", "min"), ("above max", "max"), ("not among", "allowed")):
        if check.startswith(prefix):
            return label
    return "unique" if "unique" in check else check


def validate_frame(frame: pd.DataFrame, spec: DatasetSpec) -> list[Failure]:
    """Every contract failure of a frame already read from the dataset's file."""
    failures: list[Failure] = []
    declared = list(spec.columns)
    missing = [c for c in declared if c not in frame.columns]
    if missing:
        hint = ""
        if len(frame.columns) == 1 and any(sep in str(frame.columns[0]) for sep in ";\t|"):
            hint = "; the header looks like one column: is the delimiter a comma?"
        failures.append(_fail("columns", f"missing column(s): {', '.join(missing)}{hint}"))
    unexpected = [str(c) for c in frame.columns if c not in spec.columns]
    if unexpected and not spec.allow_extra_columns:
        failures.append(_fail("columns", f"unexpected column(s): {', '.join(unexpected)} "
                              "(set allow_extra_columns: true to allow them)"))
    rows = len(frame)
    checks = spec.checks
    if checks.min_rows is not None and rows < checks.min_rows:
        failures.append(_fail("rows", f"{rows} rows, fewer than min_rows ({checks.min_rows})"))
    if checks.max_rows is not None and rows > checks.max_rows:
        failures.append(_fail("rows", f"{rows} rows, more than max_rows ({checks.max_rows})"))
    null_masks = {name: frame[name].isna() for name in spec.columns if name in frame}
    failures += _coerce_types(frame, spec)
    for name, column in spec.columns.items():
        if name not in frame:
            continue
        nulls = null_masks[name]
        count = int(nulls.sum())
        allowed = column.max_null_fraction if column.max_null_fraction is not None else (
            1.0 if column.nullable else checks.max_null_fraction)
        if count and count / max(rows, 1) > allowed:
            failures.append(_fail("nulls", f"column '{name}': {count} missing value(s) "
                                  f"({count / rows:.1%}, allowed {allowed:.1%})", name, count,
                                  _examples(frame.index[nulls], ["<null>"] * MAX_EXAMPLES)))
    failures += _value_failures(frame, spec)
    if checks.unique_rows and not missing:
        duplicated = frame.duplicated(subset=declared, keep="first")
        if duplicated.any():
            count = int(duplicated.sum())
            failures.append(_fail("duplicates", f"{count} duplicated row(s)", None, count,
                                  _examples(frame.index[duplicated], ["duplicate"] * count)))
    failures += _split_failures(frame, spec)
    return failures


def _split_failures(frame: pd.DataFrame, spec: DatasetSpec) -> list[Failure]:
    split = spec.split
    rows = len(frame)
    test_rows = int(np.ceil(rows * split.test_fraction))
    if rows and (test_rows < 1 or rows - test_rows < 1):
        return [_fail("split", f"test_fraction {split.test_fraction} of {rows} rows leaves an "
                      "empty train or test split")]
    if split.stratify is None or split.stratify not in frame:
        return []
    counts = frame[split.stratify].value_counts(dropna=False)
    failures = []
    rare = counts[counts < 2]
    if len(rare):
        failures.append(_fail("split", f"stratify column '{split.stratify}': value(s) "
                              f"{', '.join(map(str, rare.index[:5]))} have fewer than 2 rows",
                              split.stratify))
    if test_rows < len(counts):
        failures.append(_fail("split", f"test split of {test_rows} rows cannot hold all "
                              f"{len(counts)} classes of '{split.stratify}'", split.stratify))
    if rows - test_rows < len(counts):
        failures.append(_fail("split", f"train split of {rows - test_rows} rows cannot hold all "
                              f"{len(counts)} classes of '{split.stratify}' (lower "
                              "split.test_fraction)", split.stratify))
    return failures


def load_dataset(root: Path, dataset):
    """A Dataset spec's data (``LoadedSpec``), read and checked against its contract; a failure
    stops whoever needs the data (training, model tests)."""
    from mlops_gitops.data.versioning import ensure_present
    from mlops_gitops.diagnostics import DiagnosticError

    spec = dataset.spec.spec
    frame, failures = read_csv(ensure_present(root, spec.path, dataset.file), spec)
    if frame is not None:
        failures = validate_frame(frame, spec)
    if failures:
        raise DiagnosticError([Diagnostic(spec.path, message=f"dataset '{dataset.name}' breaks "
                                          f"its contract: {f.message}", code=f"data-{f.check}")
                               for f in failures])
    return frame
