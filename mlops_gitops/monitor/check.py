"""The monitoring verdict of an environment: each served version's recent traffic against its
training data.

Per model: every feature and the prediction (against the training target's distribution) get a
drift statistic (:mod:`mlops_gitops.monitor.stats`). The window is **drifted** when at least half
of its columns drift (Evidently's dataset-drift rule, ``DRIFT_SHARE``). Fewer rows than the
spec's ``min_samples`` give **not enough data**: no statistic is computed, the exit code is 0 with
a warning, and the verdict is never "healthy".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.monitor.columns import PREDICTION
from mlops_gitops.monitor.logread import ModelRows, read_log
from mlops_gitops.monitor.reference import Reference
from mlops_gitops.monitor.served import ServedModel
from mlops_gitops.monitor.stats import NO_STATISTIC, ColumnDrift, column_drift, column_kind
from mlops_gitops.spec.models import Drift

DRIFT_SHARE = 0.5
HEALTHY, DRIFTED, NOT_ENOUGH_DATA = "healthy", "drift", "not enough data"
EXIT_OK, EXIT_ERROR, EXIT_ACTION = 0, 1, 2


@dataclass
class ModelVerdict:
    model: str
    spec_name: str
    version: int
    verdict: str
    samples: int  # rows in the window
    logged: int  # rows of the served version in the log
    other_version: int  # lines of other versions (left out)
    reference_source: str
    reference_rows: int
    columns: list[ColumnDrift] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # reference and current values of drifted columns, for the plots (not serialized)
    series: dict[str, tuple[pd.Series, pd.Series]] = field(default_factory=dict, repr=False)

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def compared(self) -> list[ColumnDrift]:
        """The columns with values on both sides (the others have no statistic)."""
        return [c for c in self.columns if c.statistic != NO_STATISTIC]

    @property
    def drift_share(self) -> float:
        compared = self.compared
        return len(self.drifted_columns) / len(compared) if compared else 0.0

    def to_dict(self) -> dict:
        return {"model": self.model, "spec_name": self.spec_name, "version": self.version,
                "verdict": self.verdict, "samples": self.samples, "logged": self.logged,
                "other_version_lines": self.other_version,
                "reference": {"source": self.reference_source, "rows": self.reference_rows},
                "drift_share": round(self.drift_share, 4), "drifted": self.drifted_columns,
                "columns": [c.to_dict() for c in self.columns], "warnings": self.warnings}


@dataclass
class MonitorReport:
    env: str
    method: str
    min_samples: int
    log_folder: str
    files: int
    lines: int
    corrupted: int
    unknown_model: int
    window: int | None
    since: str | None
    models: list[ModelVerdict]
    at: str = ""  # when it ran (UTC, ISO 8601)
    bento: str = ""  # the bento served when it ran

    @property
    def verdict(self) -> str:
        verdicts = {m.verdict for m in self.models}
        if DRIFTED in verdicts:
            return DRIFTED
        if NOT_ENOUGH_DATA in verdicts or not verdicts:
            return NOT_ENOUGH_DATA
        return HEALTHY

    @property
    def exit_code(self) -> int:
        return EXIT_ACTION if self.verdict == DRIFTED else EXIT_OK

    @property
    def warnings(self) -> list[str]:
        notes = []
        if self.corrupted:
            notes.append(f"{self.corrupted} corrupted log line(s) skipped")
        if self.unknown_model:
            notes.append(f"{self.unknown_model} line(s) of models this deployment does not "
                         "serve left out")
        for m in self.models:
            notes.extend(f"{m.model}/{m.version}: {w}" for w in m.warnings)
        return notes

    def to_dict(self) -> dict:
        return {"env": self.env, "at": self.at, "bento": self.bento, "verdict": self.verdict,
                "exit_code": self.exit_code,
                "method": self.method, "min_samples": self.min_samples,
                "drift_share_rule": DRIFT_SHARE,
                "log": {"folder": self.log_folder, "files": self.files, "lines": self.lines,
                        "corrupted_lines": self.corrupted,
                        "unknown_model_lines": self.unknown_model},
                "window": self.window, "since": self.since,
                "models": [m.to_dict() for m in self.models], "warnings": self.warnings}


def check_model(rows: ModelRows, reference: Reference, target: str | None, drift: Drift,
                threshold_set: bool | None = None) -> ModelVerdict:
    """The verdict of one served version's window against its reference."""
    model = rows.model
    samples = len(rows.frame)
    verdict = ModelVerdict(model.name, model.spec_name, model.version, HEALTHY, samples,
                           rows.logged, rows.other_version, reference.source,
                           len(reference.frame))
    if rows.other_version:
        others = ", ".join(f"v{k}: {n}" for k, n in sorted(rows.other_versions.items()))
        verdict.warnings.append(f"{rows.other_version} line(s) of other versions left out "
                                f"({others})")
    if rows.lacking:
        verdict.warnings.append(f"{sum(rows.lacking.values())} line(s) without a feature of "
                                f"this version skipped ({_lacking(rows)})")
    if samples < drift.min_samples:
        verdict.verdict = NOT_ENOUGH_DATA
        verdict.warnings.append(f"not enough data: {samples} prediction(s) in the window, "
                                f"min_samples is {drift.min_samples}; no drift verdict")
        return verdict
    if threshold_set is None:
        threshold_set = "threshold" in drift.model_fields_set
    threshold = drift.threshold if drift.method == "psi" or threshold_set else None
    columns = [(f.name, "feature", f.type) for f in model.features]
    if target is not None and target in reference.frame.columns:
        kind = "string" if model.task == "classification" else "float"
        columns.append((PREDICTION, "prediction", kind))
    else:
        verdict.warnings.append("the training data has no target column: the prediction "
                                "distribution is not compared")
    missing = [name for name, role, _ in columns
               if role == "feature" and name not in reference.frame.columns]
    if missing:
        verdict.warnings.append(f"not in the training data, not compared: {', '.join(missing)}")
    for name, role, declared in columns:
        if name in missing:
            continue
        ref = reference.frame[target if role == "prediction" else name]
        cur = rows.frame[name]
        result = column_drift(name, role, column_kind(declared, ref), ref, cur, drift.method,
                              threshold)
        verdict.columns.append(result)
        if result.drifted:
            verdict.series[name] = (ref, cur)
    empty = [c.column for c in verdict.columns if c.statistic == NO_STATISTIC]
    if empty:
        verdict.warnings.append(f"no usable value (null or not a number) on one side for "
                                f"{', '.join(empty)}: not compared")
    if not verdict.compared:
        verdict.verdict = NOT_ENOUGH_DATA
        verdict.warnings.append("no column could be compared: no drift verdict")
    elif verdict.drift_share >= DRIFT_SHARE:
        verdict.verdict = DRIFTED
    elif verdict.drifted_columns:
        verdict.warnings.append(f"{len(verdict.drifted_columns)} of {len(verdict.columns)} "
                                f"column(s) drifted ({', '.join(verdict.drifted_columns)}), "
                                f"below the {DRIFT_SHARE:.0%} share that marks the window "
                                "drifted")
    return verdict


def _lacking(rows: ModelRows) -> str:
    return ", ".join(f"'{name}' missing in {n}" for name, n in sorted(rows.lacking.items())[:5])


ReferenceFor = Callable[[ServedModel], tuple[Reference, str | None]]


def monitor(env: str, folder: Path, served: list[ServedModel], drift: Drift,
            reference_for: ReferenceFor, window: int | None = None,
            since: pd.Timestamp | None = None) -> MonitorReport:
    """Read the log, then judge each served version (``reference_for(model)`` gives its training
    data and target column)."""
    log = read_log(folder, served, window, since, keep_ids=False)
    verdicts = []
    for model in served:
        rows = log.models[model.name]
        if not rows.logged and rows.lacking:
            raise DiagnosticError([Diagnostic(
                str(folder), code="monitor",
                message=f"no line of {model.name} v{model.version} in the log has its features: "
                        f"{_lacking(rows)}; the served bento and the log disagree",
                hint="check what writes this log, or redeploy the environment "
                     "(mlops-gitops deploy) so that the log and the bento match")])
        if len(rows.frame) < drift.min_samples:  # no need for the reference
            reference = Reference(pd.DataFrame(), "(not loaded: not enough data)", None)
            verdicts.append(check_model(rows, reference, None, drift))
            continue
        reference, target = reference_for(model)
        verdicts.append(check_model(rows, reference, target, drift))
    return MonitorReport(env, drift.method, drift.min_samples, str(folder), log.files, log.lines,
                         log.corrupted, log.unknown_model, window,
                         since.isoformat() if since is not None else None, verdicts,
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         served[0].bento if served else "")
