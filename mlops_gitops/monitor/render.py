"""The monitoring report as text, JSON, Markdown and a Prometheus text exposition file."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.monitor.check import MonitorReport
from mlops_gitops.monitor.columns import column_label
from mlops_gitops.monitor.stats import ColumnDrift

VERDICT_TEXT = {"healthy": "healthy", "drift": "DRIFT (action needed)",
                "not enough data": "not enough data"}


def _value(column: ColumnDrift) -> str:
    return "n/a" if math.isnan(column.value) else f"{column.value:.4g}"


def _rule(column: ColumnDrift) -> str:
    if column.statistic == "none":
        return "no values"
    return f"{'<' if column.p_value else '>='} {column.threshold:g}"


def text(report: MonitorReport) -> str:
    lines = [f"environment {report.env}: {VERDICT_TEXT[report.verdict]}",
             f"  log: {report.log_folder} ({report.files} file(s), {report.lines} line(s), "
             f"{report.corrupted} corrupted)"]
    for m in report.models:
        lines.append(f"  {m.model}/{m.version}: {VERDICT_TEXT[m.verdict]}  "
                     f"{m.samples} prediction(s) in the window"
                     + (f", drifted {len(m.drifted_columns)}/{len(m.compared)}"
                        if m.compared else "")
                     + (f": {', '.join(map(column_label, m.drifted_columns))}"
                        if m.drifted_columns else ""))
        for c in m.columns:
            lines.append(f"    {column_label(c.column):<24} {c.statistic:<17} "
                         f"{_value(c):>10}  {_rule(c):<8} {'DRIFTED' if c.drifted else 'ok'}")
    lines.extend(f"  warning: {w}" for w in report.warnings)
    return "\n".join(lines)


def as_json(report: MonitorReport) -> str:
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(report.to_dict()), indent=2)


def markdown(report: MonitorReport, plots: dict[tuple[str, str], str] | None = None) -> str:
    """``plots``: (model, column) -> the PNG's path relative to the report."""
    plots = plots or {}
    icon = {"healthy": "✅", "drift": "⚠️", "not enough data": "❔"}[report.verdict]
    out = [f"## Monitoring `{report.env}`: {icon} {report.verdict}", "",
           f"Method `{report.method}`, min_samples {report.min_samples}; the window is drifted "
           "when at least half of its columns drift. Log `{}`: {} file(s), {} line(s), {} "
           "corrupted.".format(report.log_folder, report.files, report.lines,
                               report.corrupted), ""]
    for m in report.models:
        out += [f"### {m.model} v{m.version}: {m.verdict}", "",
                f"{m.samples} prediction(s) in the window ({m.logged} logged for this version); "
                f"reference: {m.reference_rows} training row(s) from {m.reference_source}.", ""]
        if m.columns:
            out += ["| column | statistic | value | threshold | drifted |",
                    "|---|---|---:|---|---|"]
            out += [f"| {column_label(c.column)} | {c.statistic} | {_value(c)} | {_rule(c)} | "
                    f"{'**yes**' if c.drifted else 'no'} |" for c in m.columns]
            out.append("")
        for column in m.drifted_columns:
            if (m.model, column) in plots:
                out.append(f"![{column_label(column)}]({plots[(m.model, column)]})")
        if m.drifted_columns:
            out.append("")
    if report.warnings:
        out += ["**Warnings**", ""] + [f"- {w}" for w in report.warnings] + [""]
    return "\n".join(out)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_labels(**labels: object) -> str:
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def prometheus(report: MonitorReport, now: float | None = None) -> str:
    """Gauges for node_exporter's textfile collector (``--collector.textfile.directory``)."""
    now = time.time() if now is None else now
    stat, detected, samples, dataset = [], [], [], []
    for m in report.models:
        base = {"env": report.env, "model": m.model, "version": m.version}
        samples.append(f"mlops_monitor_samples{prometheus_labels(**base)} {m.samples}")
        dataset.append(f"mlops_drift_dataset_detected{prometheus_labels(**base)} "
                       f"{1 if m.verdict == 'drift' else 0}")
        for c in m.columns:
            labels = prometheus_labels(**base, feature=c.column, method=c.statistic)
            stat.append(f"mlops_drift_statistic{labels} {_number(c.value)}")
            detected.append(f"mlops_drift_detected{labels} {1 if c.drifted else 0}")
    verdict = {"healthy": 0, "not enough data": 1, "drift": 2}[report.verdict]
    blocks = [
        ("mlops_drift_statistic", "Drift statistic of a column (p-value for *_pvalue methods, "
         "else a distance or PSI).", stat),
        ("mlops_drift_detected", "1 when the column drifted in the last monitored window.",
         detected),
        ("mlops_drift_dataset_detected", "1 when at least half of the model's columns drifted.",
         dataset),
        ("mlops_monitor_samples", "Predictions in the last monitored window.", samples),
        ("mlops_monitor_verdict", "0 healthy, 1 not enough data, 2 drift.",
         [f"mlops_monitor_verdict{prometheus_labels(env=report.env)} {verdict}"]),
        ("mlops_monitor_last_run_timestamp_seconds", "When monitor last ran.",
         [f"mlops_monitor_last_run_timestamp_seconds{prometheus_labels(env=report.env)} "
          f"{now:.3f}"]),
    ]
    out = []
    for name, help_text, lines in blocks:
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *lines]
    return "\n".join(out) + "\n"


def write_atomic(path: Path, text_content: str) -> Path:
    """Write through a temporary file and a rename: a collector never reads half a file."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch.write_text(text_content, encoding="utf-8")
        os.replace(scratch, path)
    except OSError as exc:
        scratch.unlink(missing_ok=True)
        raise DiagnosticError([Diagnostic(str(path), code="write", message=(
            f"cannot write the report: {exc.strerror or exc}"),
            hint="choose another folder with --out, or free the path")]) from None
    return path
