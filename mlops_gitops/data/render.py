"""Data reports as text and GitHub Markdown."""

from __future__ import annotations

from mlops_gitops.data.contract import DataReport
from mlops_gitops.data.diff import DataDiff


def _md(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def reports_text(reports: list[DataReport]) -> str:
    lines = []
    for report in reports:
        status = "ok" if report.ok else f"{len(report.failures)} failure(s)"
        lines.append(f"{report.dataset}: {report.path} ({report.rows} rows, {report.columns} "
                     f"columns, md5 {report.md5 or 'untracked'}): {status}")
        for failure in report.failures:
            lines.append(f"  - [{failure.check}] {failure.message}")
    return "\n".join(lines)


def reports_markdown(reports: list[DataReport]) -> str:
    lines = ["### Data validation", "", "| dataset | file | rows | md5 | result |",
             "|---|---|---:|---|---|"]
    for r in reports:
        result = "✅ passed" if r.ok else f"❌ {len(r.failures)} failure(s)"
        lines.append(f"| {r.dataset} | `{r.path}` | {r.rows} | `{(r.md5 or 'untracked')[:12]}` "
                     f"| {result} |")
    failures = [(r, f) for r in reports for f in r.failures]
    if failures:
        lines += ["", "| dataset | column | check | rows | detail |", "|---|---|---|---:|---|"]
        lines += [f"| {r.dataset} | {_md(f.column or '')} | {f.check} | {f.count} | "
                  f"{_md(f.message)} |" for r, f in failures]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def diff_text(diff: DataDiff) -> str:
    a, b = diff.revs
    lines = [f"{diff.dataset}: {diff.path} {a} -> {b}",
             f"  rows: {diff.rows[0]} -> {diff.rows[1]} (+{diff.rows_added} / "
             f"-{diff.rows_removed})"]
    if diff.columns_added:
        lines.append(f"  columns added: {', '.join(diff.columns_added)}")
    if diff.columns_removed:
        lines.append(f"  columns removed: {', '.join(diff.columns_removed)}")
    for column, (old, new) in diff.type_changes.items():
        lines.append(f"  type of {column}: {old} -> {new}")
    lines.append("  drift:")
    for d in diff.drift:
        if d.kind == "numeric":
            lines.append(f"    {d.column:<20} PSI {_fmt(d.psi):>8}  KS {_fmt(d.ks_statistic):>8} "
                         f"(p={_fmt(d.ks_pvalue)})")
        else:
            lines.append(f"    {d.column:<20} JS  {_fmt(d.js_distance):>8}  chi2 "
                         f"p={_fmt(d.chi2_pvalue)}")
    return "\n".join(lines)


def diff_markdown(diff: DataDiff) -> str:
    a, b = diff.revs
    lines = [f"### Data change: `{diff.dataset}` ({a} → {b})", "",
             f"Rows {diff.rows[0]} → {diff.rows[1]} (+{diff.rows_added} / -{diff.rows_removed})"]
    if diff.columns_added or diff.columns_removed:
        lines.append(f"Columns added: {', '.join(diff.columns_added) or '–'}; removed: "
                     f"{', '.join(diff.columns_removed) or '–'}")
    for column, (old, new) in diff.type_changes.items():
        lines.append(f"Type of `{_md(column)}`: {old} → {new}")
    lines += ["", "| column | kind | PSI | KS | KS p | JS | χ² p |",
              "|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {_md(d.column)} | {d.kind} | {_fmt(d.psi)} | {_fmt(d.ks_statistic)} | "
              f"{_fmt(d.ks_pvalue)} | {_fmt(d.js_distance)} | {_fmt(d.chi2_pvalue)} |"
              for d in diff.drift]
    return "\n".join(lines)
