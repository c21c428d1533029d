"""Live quality: ground-truth labels that arrive later, joined with the inference log by request id
(and the instance's ``index`` for requests of several instances), scored with the model's metrics
and checked against its PromotionPolicy's value thresholds (``min`` / ``max``).
"""

from __future__ import annotations

import io
import math
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
    invalid: int  # lines/rows without a request id or a label


@dataclass(frozen=True)
class MetricCheck:
    metric: str
    value: float
    min: float | None
    max: float | None

    @property
    def ok(self) -> bool:
        if math.isnan(self.value):
            return False
        return (self.min is None or self.value >= self.min) and \
            (self.max is None or self.value <= self.max)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


@dataclass
class ModelQuality:
    model: str
    version: int
    verdict: str
    joined: int
    checks: list[MetricCheck] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"model": self.model, "version": self.version, "verdict": self.verdict,
                "joined": self.joined, "metrics": [c.to_dict() for c in self.checks],
                "skipped": self.skipped}


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
            if m.verdict == NOT_ENOUGH_DATA:
                notes.append(f"{m.model}/{m.version}: not enough data: {m.joined} labelled "
                             f"prediction(s), min_samples is {self.min_samples}")
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


def read_labels(path: Path) -> Labels:
    """The labels of a file, or of every labels file in a folder (``*.csv``, ``*.jsonl``,
    ``*.ndjson``, ``*.json``, in name order). A request (and index) labelled twice keeps its last
    label: a later line or file corrects an earlier one."""
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


def _read_labels_file(path: Path) -> Labels:
    """A CSV (header ``request_id,label[,index]``) or JSON-lines file of labels."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _error(path, f"cannot read the labels file: {exc.strerror or exc}") from None
    if not data.strip():
        raise _error(path, "the labels file is empty")
    invalid = 0
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        records = []
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                invalid += 1
                continue
            if not isinstance(obj, dict):
                invalid += 1
                continue
            records.append({"request_id": obj.get("request_id"), "label": obj.get("label"),
                            "index": obj.get("index")})
        frame = pd.DataFrame.from_records(records, columns=["request_id", "label", "index"])
    else:
        try:
            frame = pd.read_csv(io.BytesIO(data), dtype={"request_id": str}, keep_default_na=False,
                                na_values=[""])
        except (ValueError, pd.errors.ParserError) as exc:
            raise _error(path, f"not a readable CSV: {exc}") from None
        if "request_id" not in frame.columns or "label" not in frame.columns:
            raise _error(path, f"expected the columns request_id,label[,index]; found "
                         f"{','.join(map(str, frame.columns))}")
        if "index" not in frame.columns:
            frame["index"] = np.nan
        frame = frame[["request_id", "label", "index"]]
    index = pd.to_numeric(frame["index"], errors="coerce")
    bad = frame["request_id"].isna() | frame["label"].isna() | \
        (frame["index"].notna() & (index.isna() | (index < 0) | (index % 1 != 0)))
    invalid += int(bad.sum())
    frame = frame.loc[~bad].assign(request_id=lambda f: f["request_id"].astype(str),
                                   index=index[~bad])
    return Labels(frame.reset_index(drop=True), invalid)


def join(labels: pd.DataFrame, rows: ModelRows) -> tuple[pd.DataFrame, dict[str, int]]:
    """Labels matched to the served version's predictions; counts of what did not match."""
    log = pd.DataFrame({"request_id": rows.request_ids.astype(str),
                        "index": rows.index.astype(float),
                        "prediction": rows.frame[PREDICTION].to_numpy()})
    log = log.drop_duplicates(["request_id", "index"], keep="last")
    sizes = log.groupby("request_id").size()
    size = labels["request_id"].map(sizes)
    known = size.notna()
    no_index = labels["index"].isna()
    ambiguous = known & no_index & (size > 1)
    filled = labels.assign(index=labels["index"].where(~(no_index & (size == 1)), 0.0))
    candidates = filled.loc[known & ~ambiguous]
    joined = candidates.merge(log, on=["request_id", "index"], how="inner")
    counts = {"known": int(known.sum()), "ambiguous": int(ambiguous.sum()),
              "bad_index": int(len(candidates) - len(joined))}
    return joined, counts


def score(joined: pd.DataFrame, task: str | None,
          thresholds: dict[str, tuple[float | None, float | None]]) -> tuple[list[MetricCheck],
                                                                              list[str]]:
    from mlops_gitops.evaluate.metrics import compute

    skipped = []
    if task == "regression":
        y_true = pd.to_numeric(joined["label"], errors="coerce").to_numpy(float)
        y_pred = pd.to_numeric(joined["prediction"], errors="coerce").to_numpy(float)
        keep = np.isfinite(y_true) & np.isfinite(y_pred)
        if not keep.all():
            skipped.append(f"{int((~keep).sum())} non-numeric label(s) left out")
        y_true, y_pred = y_true[keep], y_pred[keep]
    else:
        y_true = joined["label"].map(_label_text).to_numpy(object)
        y_pred = joined["prediction"].map(_label_text).to_numpy(object)
    checks = []
    for metric, (low, high) in sorted(thresholds.items()):
        if metric in NEEDS_PROBA:
            skipped.append(f"{metric}: needs probabilities, which the inference log does not "
                           "keep")
            continue
        try:
            value = compute(metric, y_true, y_pred) if len(y_true) else float("nan")
        except ValueError as exc:
            skipped.append(f"{metric}: {exc}")
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
    """Join the labels with each served version's log and check its live metrics."""
    frame = labels.frame
    matched = pd.Series(False, index=frame.index)
    ambiguous = bad_index = 0
    models = []
    for name, rows in rows_by_model.items():
        joined, counts = join(frame, rows)
        matched |= frame["request_id"].isin(set(rows.request_ids.astype(str)))
        ambiguous += counts["ambiguous"]
        bad_index += counts["bad_index"]
        quality = ModelQuality(name, rows.model.version, HEALTHY, len(joined))
        thresholds = thresholds_by_model.get(name, {})
        if not thresholds:
            quality.skipped.append("its policy has no min/max threshold: nothing to check")
        if len(joined) < min_samples:
            quality.verdict = NOT_ENOUGH_DATA
        elif thresholds:
            quality.checks, skipped = score(joined, rows.model.task, thresholds)
            quality.skipped.extend(skipped)
            if any(not c.ok for c in quality.checks):
                quality.verdict = DEGRADED
        models.append(quality)
    return FeedbackReport(env, str(labels_file), len(frame), labels.invalid,
                          int((~matched).sum()), ambiguous, bad_index, min_samples, models)


def degraded_reason(quality: ModelQuality) -> str:
    failed = [c for c in quality.checks if not c.ok]
    parts = []
    for c in failed:
        bound = f">= {c.min:g}" if c.min is not None and c.value < c.min else f"<= {c.max:g}"
        parts.append(f"live {c.metric} {c.value:.4g} (needs {bound})")
    return "; ".join(parts) + f" on {quality.joined} labelled prediction(s)"


def text(report: FeedbackReport) -> str:
    lines = [f"environment {report.env}: live quality {report.verdict}"
             f"{' (action needed)' if report.verdict == DEGRADED else ''}",
             f"  labels: {report.file} ({report.labels} read, {report.unknown_request} with an "
             "unknown request id)"]
    for m in report.models:
        lines.append(f"  {m.model}/{m.version}: {m.verdict}, {m.joined} labelled "
                     "prediction(s)")
        for c in m.checks:
            bounds = " ".join(b for b in (f"min {c.min:g}" if c.min is not None else "",
                                          f"max {c.max:g}" if c.max is not None else "") if b)
            lines.append(f"    {c.metric:<18} {c.value:>8.4f}  {bounds:<18} "
                         f"{'ok' if c.ok else 'BELOW THRESHOLD'}")
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
