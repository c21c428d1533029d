"""Live quality: ground-truth labels that arrive later, joined with the inference log by request id
(and the instance's ``index`` for requests of several instances), scored with the model's metrics
and checked against its PromotionPolicy's value thresholds (``min`` / ``max``).
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.monitor.check import EXIT_ACTION, EXIT_OK, NOT_ENOUGH_DATA
from mlops_gitops.monitor.columns import PREDICTION
from mlops_gitops.monitor.logread import ModelRows

HEALTHY, DEGRADED = "healthy", "degraded"
NEEDS_PROBA = {"log_loss", "roc_auc_ovr"}


@dataclass(frozen=True)
class Labels:
    frame: pd.DataFrame  # request_id (str), index (float, NaN when absent), label
    invalid: int  # lines/rows without a request id or a label, or with a bad index


@dataclass(frozen=True)
class MetricCheck:
    metric: str
    value: float
    min: float | None
    max: float | None

    @property
    def failed(self) -> bool:
        """A finite value outside its bounds. A value that is not a number fails nothing: it is
        no evidence of degraded quality (:func:`score` never makes such a check)."""
        if not math.isfinite(self.value):
            return False
        return (self.min is not None and self.value < self.min) or \
            (self.max is not None and self.value > self.max)

    @property
    def ok(self) -> bool:
        return math.isfinite(self.value) and not self.failed

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


@dataclass
class ModelQuality:
    model: str
    version: int
    verdict: str
    joined: int  # labels matched to a prediction
    checks: list[MetricCheck] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unusable: int = 0  # of the joined: a label or prediction a regression metric cannot use

    @property
    def used(self) -> int:
        return self.joined - self.unusable

    def to_dict(self) -> dict:
        return {"model": self.model, "version": self.version, "verdict": self.verdict,
                "joined": self.joined, "unusable": self.unusable,
                "metrics": [c.to_dict() for c in self.checks], "skipped": self.skipped}


@dataclass
class FeedbackReport:
    env: str
    file: str
    labels: int
    invalid: int
    unknown_request: int  # labels whose request id is not in the served version's log
    ambiguous: int  # no index, but the request had several instances
    bad_index: int  # an index the request does not have
    min_samples: int
    models: list[ModelQuality]

    @property
    def verdict(self) -> str:
        verdicts = {m.verdict for m in self.models}
        if DEGRADED in verdicts:
            return DEGRADED
        if NOT_ENOUGH_DATA in verdicts or not verdicts:
            return NOT_ENOUGH_DATA
        return HEALTHY

    @property
    def exit_code(self) -> int:
        return EXIT_ACTION if self.verdict == DEGRADED else EXIT_OK

    @property
    def warnings(self) -> list[str]:
        notes = []
        if self.unknown_request:
            notes.append(f"{self.unknown_request} label(s) for request ids not in the served "
                         "version's log (unknown, or of another version)")
        if self.ambiguous:
            notes.append(f"{self.ambiguous} label(s) without an index for requests of several "
                         "instances (add an 'index' column)")
        if self.bad_index:
            notes.append(f"{self.bad_index} label(s) with an index the request does not have")
        if self.invalid:
            notes.append(f"{self.invalid} unreadable label line(s) skipped")
        for m in self.models:
            if m.verdict == NOT_ENOUGH_DATA and m.used < self.min_samples:
                count = (f"{m.used} usable labelled prediction(s) of {m.joined} "
                         f"({m.unusable} left out)" if m.unusable else
                         f"{m.joined} labelled prediction(s)")
                notes.append(f"{m.model}/{m.version}: not enough data: {count}, min_samples is "
                             f"{self.min_samples}")
            elif m.verdict == NOT_ENOUGH_DATA:
                notes.append(f"{m.model}/{m.version}: not enough data: no threshold could be "
                             "checked")
            notes.extend(f"{m.model}/{m.version}: {s}" for s in m.skipped)
        return notes

    def to_dict(self) -> dict:
        def clean(value):
            return None if isinstance(value, float) and not math.isfinite(value) else value

        models = [m.to_dict() for m in self.models]
        for m in models:
            for check in m["metrics"]:
                check["value"] = clean(check["value"])
        return {"env": self.env, "file": self.file, "verdict": self.verdict,
                "exit_code": self.exit_code, "labels": self.labels, "invalid": self.invalid,
                "unknown_request_ids": self.unknown_request, "ambiguous": self.ambiguous,
                "bad_index": self.bad_index, "min_samples": self.min_samples,
                "models": models, "warnings": self.warnings}


def _error(path: Path, message: str, hint: str = "") -> DiagnosticError:
    return DiagnosticError([Diagnostic(str(path), code="feedback", message=message, hint=hint)])


LABEL_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")
BOM = b"\xef\xbb\xbf"
FORMATS_HINT = ("expected CSV with the header request_id,label[,index], JSON lines of "
                '{"request_id": ..., "label": ..., "index": ...}, or (.json) one JSON array of '
                "such objects")


def read_labels(path: Path) -> Labels:
    """The labels of a file, or of every labels file in a folder (``*.csv``, ``*.jsonl``,
    ``*.ndjson``, ``*.json``, in name order), in the order read. A request (and index) labelled
    twice keeps its last label: a later line or file corrects an earlier one (a label without an
    index and one with index 0 of a one-instance request are the same label: :func:`join`,
    which knows the request's size, keeps the later of the two)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in LABEL_SUFFIXES
                       and p.stat().st_size > 0)
        if not files:
            raise _error(path, "no labels file in the folder",
                         f"put CSV or JSON-lines files of request_id,label[,index] there "
                         f"({', '.join('*' + s for s in LABEL_SUFFIXES)})")
        parts = [_read_labels_file(p) for p in files]
        frame = pd.concat([p.frame for p in parts], ignore_index=True)
        invalid = sum(p.invalid for p in parts)
    else:
        labels = _read_labels_file(path)
        frame, invalid = labels.frame, labels.invalid
    key = frame["index"].fillna(-1.0)
    frame = frame.loc[~pd.DataFrame({"r": frame["request_id"], "i": key})
                      .duplicated(keep="last")].reset_index(drop=True)
    return Labels(frame, invalid)


def _request_id(value) -> str | None:
    """A request id as text: a non-blank string, or an integer; None for anything else."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return str(value)
    return None


def _index(value) -> float | None:
    """An instance index as a float (NaN when absent); None when it is not a whole number >= 0."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return float("nan")
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 and number.is_integer() else None


def _check_record(obj) -> tuple[dict | None, str]:
    """A label record, or None and why it is unreadable."""
    if not isinstance(obj, dict):
        return None, f"not a JSON object but {type(obj).__name__}"
    rid = _request_id(obj.get("request_id"))
    if rid is None:
        return None, ("no request_id" if obj.get("request_id") is None else
                      f"request_id {_shown(obj.get('request_id'))} is not a non-empty string")
    label = obj.get("label")
    if label is None:
        return None, "no label"
    if not isinstance(label, (str, int, float)) or (isinstance(label, str) and not label.strip()):
        return None, f"label {_shown(label)} is not a number, a string or a boolean"
    index = _index(obj.get("index"))
    if index is None:
        return None, f"index {_shown(obj.get('index'))} is not a whole number >= 0"
    return {"request_id": rid, "label": label, "index": index}, ""


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _read_labels_file(path: Path) -> Labels:
    """A CSV (header ``request_id,label[,index]``), JSON-lines, or (``.json``) JSON-array file of
    labels. A file with content but not one readable label is an error naming its first bad
    line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _error(path, f"cannot read the labels file: {exc.strerror or exc}") from None
    if data.startswith(BOM):
        data = data[len(BOM):]
    if not data.strip():
        raise _error(path, "the labels file is empty")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        records, first_bad, invalid = _json_records(path, data)
        frame = pd.DataFrame.from_records(records, columns=["request_id", "label", "index"])
        frame["index"] = frame["index"].astype(float)
    else:
        frame, first_bad, invalid = _csv_records(path, data)
    if frame.empty:
        where = f" ({first_bad})" if first_bad else ""
        raise _error(path, f"no readable label in the file{where}", FORMATS_HINT)
    return Labels(frame.reset_index(drop=True), invalid)


def _json_records(path: Path, data: bytes) -> tuple[list[dict], str, int]:
    items = None
    if path.suffix.lower() == ".json" and data.lstrip().startswith(b"["):
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError:
            document = None  # perhaps JSON lines whose first line is an array
        if isinstance(document, list):
            if not document:
                return [], "the JSON array is empty", 0
            items = ((f"item {n}", item, True) for n, item in enumerate(document, 1))
    if items is None:
        items = ((f"line {n}", line, False) for n, line in enumerate(data.splitlines(), 1)
                 if line.strip())
    records, first_bad, invalid = [], "", 0
    for where, item, parsed in items:
        reason = ""
        if parsed:
            obj = item
        else:
            try:
                obj = orjson.loads(item)
            except orjson.JSONDecodeError:
                obj, reason = None, "not JSON"
        record = None
        if not reason:
            record, reason = _check_record(obj)
        if record is None:
            invalid += 1
            first_bad = first_bad or f"{where}: {reason}"
            continue
        records.append(record)
    return records, first_bad, invalid


def _csv_records(path: Path, data: bytes) -> tuple[pd.DataFrame, str, int]:
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype={"request_id": str}, keep_default_na=False,
                            na_values=[""], skip_blank_lines=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise _error(path, f"not a readable CSV: {exc}") from None
    if "request_id" not in frame.columns or "label" not in frame.columns:
        raise _error(path, f"expected the columns request_id,label[,index]; found "
                     f"{','.join(map(str, frame.columns))}")
    if "index" not in frame.columns:
        frame["index"] = np.nan
    frame = frame[["request_id", "label", "index"]]
    lines = pd.Series(np.arange(len(frame)) + 2, index=frame.index)  # the header is line 1
    blank = frame.isna().all(axis=1)
    frame, lines = frame.loc[~blank], lines.loc[~blank]
    if frame.empty:
        return frame, "a header and no row", 0
    rid = frame["request_id"]
    index = pd.to_numeric(frame["index"], errors="coerce")
    no_id = rid.isna() | (rid.astype(str).str.strip() == "")
    no_label = frame["label"].isna() | (frame["label"].astype(str).str.strip() == "")
    bad_index = frame["index"].notna() & (index.isna() | (index < 0) | (index % 1 != 0))
    bad = no_id | no_label | bad_index
    first_bad = ""
    if bad.any():
        at = bad.idxmax()
        reason = ("no request_id" if no_id[at] else "no label" if no_label[at] else
                  f"index {_shown(frame['index'][at])} is not a whole number >= 0")
        first_bad = f"line {lines[at]}: {reason}"
    frame = frame.loc[~bad].assign(request_id=lambda f: f["request_id"].astype(str),
                                   index=index[~bad].astype(float))
    return frame, first_bad, int(bad.sum())


def _log_request_ids(rows: ModelRows) -> np.ndarray:
    """The log's request ids, None where a line had none (or not a non-empty string): those rows
    never match a label."""
    return np.asarray([r if isinstance(r, str) and r.strip() else None
                       for r in rows.request_ids], dtype=object)


def join(labels: pd.DataFrame, rows: ModelRows) -> tuple[pd.DataFrame, dict[str, int]]:
    """Labels matched to the served version's predictions; counts of what did not match."""
    joined, counts, _ = _join(labels, rows, _log_request_ids(rows))
    return joined, counts


def _join(labels: pd.DataFrame, rows: ModelRows, ids: np.ndarray
          ) -> tuple[pd.DataFrame, dict[str, int], pd.Index]:
    """:func:`join`, and the labels (their index in ``labels``) that a later label of the same
    request and instance corrected. A label without an index is the label of instance 0 of a
    one-instance request, so a later ``index: 0`` corrects it (and the other way round)."""
    has_id = np.asarray(pd.notna(ids), dtype=bool)
    log = pd.DataFrame({"request_id": ids[has_id],
                        "index": np.asarray(rows.index, dtype=float)[has_id],
                        "prediction": rows.frame[PREDICTION].to_numpy()[has_id]})
    log = log.drop_duplicates(["request_id", "index"], keep="last")
    sizes = log.groupby("request_id").size()
    size = labels["request_id"].map(sizes)
    known = size.notna()
    no_index = labels["index"].isna()
    ambiguous = known & no_index & (size > 1)
    filled = labels.assign(index=labels["index"].where(~(no_index & (size == 1)), 0.0))
    candidates = filled.loc[known & ~ambiguous]
    superseded = candidates.duplicated(["request_id", "index"], keep="last")
    candidates = candidates.loc[~superseded]
    joined = candidates.merge(log, on=["request_id", "index"], how="inner")
    counts = {"known": int(known.sum()), "ambiguous": int(ambiguous.sum()),
              "bad_index": int(len(candidates) - len(joined)),
              "superseded": int(superseded.sum())}
    return joined, counts, superseded.index[superseded.to_numpy()]


def _number(value) -> float:
    """A regression label or prediction as a float; NaN for anything that is not a number."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        return math.nan
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


def usable(joined: pd.DataFrame, task: str | None) -> tuple[pd.DataFrame, list[str]]:
    """The joined rows a metric can use, and notes on those left out: for a regression model,
    the rows whose label and prediction are finite numbers (as floats)."""
    if task != "regression" or joined.empty:
        return joined, []
    y_true = joined["label"].map(_number).astype(float)
    y_pred = joined["prediction"].map(_number).astype(float)
    good_true, good_pred = np.isfinite(y_true), np.isfinite(y_pred)
    notes = []
    if (~good_true).any():
        notes.append(f"{int((~good_true).sum())} non-numeric label(s) left out")
    if (good_true & ~good_pred).any():
        notes.append(f"{int((good_true & ~good_pred).sum())} non-numeric prediction(s) left out")
    keep = good_true & good_pred
    return joined.assign(label=y_true, prediction=y_pred).loc[keep].reset_index(drop=True), notes


def score(joined: pd.DataFrame, task: str | None,
          thresholds: dict[str, tuple[float | None, float | None]]) -> tuple[list[MetricCheck],
                                                                              list[str]]:
    """The thresholds' metrics on the joined rows (see :func:`usable`). A metric that cannot be
    computed, or whose value is not a finite number, is skipped with a note: never a check."""
    from mlops_gitops.evaluate.metrics import compute

    joined, skipped = usable(joined, task)
    if task == "regression":
        y_true = joined["label"].to_numpy(float)
        y_pred = joined["prediction"].to_numpy(float)
    else:
        y_true = joined["label"].map(_label_text).to_numpy(object)
        y_pred = joined["prediction"].map(_label_text).to_numpy(object)
    checks = []
    for metric, (low, high) in sorted(thresholds.items()):
        if metric in NEEDS_PROBA:
            skipped.append(f"{metric}: needs probabilities, which the inference log does not "
                           "keep")
            continue
        if not len(y_true):
            skipped.append(f"{metric}: no labelled prediction to compute it on")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. r2 of a single sample
                value = float(compute(metric, y_true, y_pred))
        except (ValueError, TypeError) as exc:
            skipped.append(f"{metric}: {exc}")
            continue
        if not math.isfinite(value):
            skipped.append(f"{metric}: not a number on {len(y_true)} labelled prediction(s) "
                           "(too few, or all labels equal)")
            continue
        checks.append(MetricCheck(metric, value, low, high))
    return checks, skipped


def _label_text(value) -> str:
    """Labels and predictions compared as text; 1 and 1.0 are the same class."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def assess(env: str, labels_file: Path, labels: Labels, rows_by_model: dict[str, ModelRows],
           thresholds_by_model: dict[str, dict[str, tuple[float | None, float | None]]],
           min_samples: int) -> FeedbackReport:
    """Join the labels with each served version's log and check its live metrics. Every verdict
    is decided here, before anything is written anywhere."""
    frame = labels.frame
    matched = pd.Series(False, index=frame.index)
    corrected = pd.Index([])
    ambiguous = bad_index = 0
    models = []
    for name, rows in rows_by_model.items():
        ids = _log_request_ids(rows)
        joined, counts, superseded = _join(frame, rows, ids)
        matched |= frame["request_id"].isin(set(ids[np.asarray(pd.notna(ids), dtype=bool)]))
        corrected = corrected.union(superseded)
        ambiguous += counts["ambiguous"]
        bad_index += counts["bad_index"]
        quality = ModelQuality(name, rows.model.version, HEALTHY, len(joined))
        kept, notes = usable(joined, rows.model.task)
        quality.unusable = len(joined) - len(kept)
        quality.skipped.extend(notes)
        thresholds = thresholds_by_model.get(name, {})
        if not thresholds:
            quality.skipped.append("its policy has no min/max threshold: nothing to check")
        if quality.used < min_samples:
            quality.verdict = NOT_ENOUGH_DATA
        elif thresholds:
            quality.checks, skipped = score(kept, rows.model.task, thresholds)
            quality.skipped.extend(skipped)
            if not quality.checks:
                quality.verdict = NOT_ENOUGH_DATA
            elif any(c.failed for c in quality.checks):
                quality.verdict = DEGRADED
        models.append(quality)
    return FeedbackReport(env, str(labels_file), len(frame) - len(corrected), labels.invalid,
                          int((~matched).sum()), ambiguous, bad_index, min_samples, models)


def degraded_reason(quality: ModelQuality) -> str:
    parts = []
    for c in quality.checks:
        if not c.failed:
            continue
        if c.min is not None and c.value < c.min:
            bound = f">= {c.min:g}"
        else:
            bound = f"<= {c.max:g}"  # failed and not below its min: above its max
        parts.append(f"live {c.metric} {c.value:.4g} (needs {bound})")
    return "; ".join(parts) + f" on {quality.used} labelled prediction(s)"


def text(report: FeedbackReport) -> str:
    lines = [f"environment {report.env}: live quality {report.verdict}"
             f"{' (action needed)' if report.verdict == DEGRADED else ''}",
             f"  labels: {report.file} ({report.labels} read, {report.unknown_request} with an "
             "unknown request id)"]
    for m in report.models:
        lines.append(f"  {m.model}/{m.version}: {m.verdict}, {m.joined} labelled "
                     f"prediction(s){f' ({m.unusable} unusable)' if m.unusable else ''}")
        for c in m.checks:
            bounds = " ".join(b for b in (f"min {c.min:g}" if c.min is not None else "",
                                          f"max {c.max:g}" if c.max is not None else "") if b)
            lines.append(f"    {c.metric:<18} {c.value:>8.4f}  {bounds:<18} "
                         f"{'ok' if c.ok else 'FAILS'}")
    lines.extend(f"  warning: {w}" for w in report.warnings)
    return "\n".join(lines)


def markdown(report: FeedbackReport) -> str:
    out = [f"## Live quality `{report.env}`: {report.verdict}", "",
           f"{report.labels} label(s) from `{report.file}`, {report.unknown_request} with an "
           "unknown request id.", ""]
    for m in report.models:
        out += [f"### {m.model} v{m.version}: {m.verdict} ({m.joined} labelled)", ""]
        if m.checks:
            out += ["| metric | value | min | max | ok |", "|---|---:|---:|---:|---|"]
            out += [f"| {c.metric} | {c.value:.4f} | {'' if c.min is None else f'{c.min:g}'} | "
                    f"{'' if c.max is None else f'{c.max:g}'} | {'yes' if c.ok else '**no**'} |"
                    for c in m.checks]
            out.append("")
    if report.warnings:
        out += ["**Warnings**", ""] + [f"- {w}" for w in report.warnings]
    return "\n".join(out)
