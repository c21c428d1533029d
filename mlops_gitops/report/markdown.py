"""The pull-request report in Markdown, with its PNG plots (from :mod:`mlops_gitops.report.facts`),
marked so that the workflow finds the one comment to update."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlops_gitops import __version__
from mlops_gitops.report.facts import Report
from mlops_gitops.report.github import MARKER
from mlops_gitops.report.render import compare_markdown, md, num, tests_markdown


@dataclass(frozen=True)
class Image:
    section: str  # "tests" | "compare"
    model: str
    alt: str
    path: Path


def make_plots(report: Report, folder: Path) -> list[Image]:
    """PNG files for the report: confusion matrices or residual histograms, metric by slice."""
    from mlops_gitops.report import plots

    images = []
    for m in report.models:
        c = m.compare
        if c and c.get("judgement"):
            sides = [(f"challenger v{c['challenger']['version']}", c["challenger"])]
            if c.get("champion"):
                sides.append((f"champion v{c['champion']['version']}", c["champion"]))
            confusion = [(label, s["confusion"]) for label, s in sides if s.get("confusion")]
            residuals = [(label, s["residuals"]) for label, s in sides if s.get("residuals")]
            if confusion:
                path = plots.confusion_matrices(folder / f"{m.model}-confusion.png",
                                                f"{m.model}: confusion on the test split",
                                                confusion)
                images.append(Image("compare", m.model, "confusion matrix", path))
            if residuals:
                path = plots.residual_histograms(folder / f"{m.model}-residuals.png",
                                                 f"{m.model}: residuals on the test split",
                                                 residuals)
                images.append(Image("compare", m.model, "residuals", path))
            primary, keys = c.get("primary"), c.get("slices") or []
            if keys and primary:
                series = []
                for label, side in sides:
                    values = ((side.get("scores") or {}).get("values") or {})
                    series.append((label, [values.get(k, {}).get(primary) for k in keys]))
                path = plots.metric_by_slice(folder / f"{m.model}-{primary}-by-slice.png",
                                             f"{m.model}: {primary} by slice", primary, keys,
                                             series)
                images.append(Image("compare", m.model, f"{primary} by slice", path))
        for test in (m.tests or {}).get("tests", []):
            if test["slices"]:
                labels = [p["label"] for p in test["slices"]]
                bounds = m.test_bounds.get(test["name"], (None, None))
                path = plots.metric_by_slice(
                    folder / f"{m.model}-{test['name']}.png", f"{m.model}: {test['name']}",
                    test["detail"].split(" ", 1)[0], labels,
                    [(f"version {m.tests['version']}", [p["value"] for p in test["slices"]])],
                    bounds)
                images.append(Image("tests", m.model, f"{test['name']} by slice", path))
    return images


def _icon(ok: bool) -> str:
    return "✅" if ok else "❌"


def _summary_table(report: Report) -> list[str]:
    lines = ["| model | version | model tests | verdict |", "|---|---|---|---|"]
    for m in report.models:
        version = "not trained" if m.version is None else f"{m.registered_name}/{m.version}"
        tests = "–"
        if m.tests is not None:
            total = len(m.tests["tests"])
            tests = f"{_icon(m.tests['passed'])} {total - len(m.tests['failed'])}/{total}"
        verdict = "–"
        judgement = (m.compare or {}).get("judgement")
        if judgement is not None:
            champion = (m.compare.get("champion") or {}).get("version")
            verdict = f"{_icon(judgement['blessed'])} {judgement['verdict']}" + \
                (f" vs v{champion}" if champion else " (no champion)")
        stale = " ⚠️" if m.tests_note.startswith("recorded") or "changed" in m.compare_note \
            else ""
        lines.append(f"| {m.model} | {version} | {tests} | {verdict}{stale} |")
    return lines


def _data_section(report: Report) -> list[str]:
    from mlops_gitops.data.render import reports_markdown

    if report.data_note:
        return ["### Data validation", "", f"❌ {md(report.data_note)}"]
    if not report.data:
        return ["### Data validation", "", "No datasets."]
    return [reports_markdown(list(report.data))]


def _changes_section(report: Report) -> list[str]:
    lines = ["### What changed", ""]
    changes = report.changes
    if changes is None:
        return lines + [f"_{md(report.changes_note)}_"]
    lines.append(f"Against `{changes.base}` (merge base `{changes.merge_base[:12]}`).")
    if not changes.files:
        return lines + ["", "No spec or data changes."]
    names = {"A": "added", "M": "modified", "D": "deleted", "T": "type changed"}
    lines += ["", "| file | change |", "|---|---|"]
    lines += [f"| `{md(path)}` | {names.get(status[:1], status)} |"
              for status, path in changes.files]
    if changes.data:
        lines += ["", "| dataset | md5 | rows | added | removed | note |",
                  "|---|---|---:|---:|---:|---|"]
        for d in changes.data:
            rows = f"{d.rows[0]} → {d.rows[1]}" if d.rows else "–"
            lines.append(f"| {d.dataset} | `{(d.old_md5 or '–')[:8]}` → `{(d.new_md5 or '–')[:8]}`"
                         f" | {rows} | {'–' if d.rows_added is None else d.rows_added} | "
                         f"{'–' if d.rows_removed is None else d.rows_removed} | {md(d.note)} |")
    if changes.spec_diff:
        lines += ["", "<details><summary>spec diff</summary>", "", "```diff", changes.spec_diff,
                  "```", "", "</details>"]
    return lines


def _training_section(report: Report) -> list[str]:
    lines = ["### Training", ""]
    if report.models_note:
        return lines + [f"❌ registry not readable: {md(report.models_note)}"]
    lines += ["| model | version | fingerprint | metrics (test split) |", "|---|---|---|---|"]
    for m in report.models:
        if m.version is None:
            lines.append(f"| {m.model} | ❌ not trained for this spec (`mlops-gitops train "
                         f"{m.model}`) | `{m.fingerprint[:12]}` | – |")
            continue
        metrics = ", ".join(f"{k} {num(v)}" for k, v in sorted(m.metrics.items()))
        lines.append(f"| {m.model} | {m.registered_name}/{m.version} | `{m.fingerprint[:12]}` | "
                     f"{metrics or '–'} |")
    return lines


def _link(path: Path, base: Path | None, url: str | None) -> str:
    if url:
        return f"{url.rstrip('/')}/{path.name}"
    if base is not None:
        return Path(os.path.relpath(path, base)).as_posix()
    return path.as_posix()


def render(report: Report, images: list[Image] = (), *, link_base: Path | None = None,
           assets_url: str | None = None) -> str:
    """The whole report as GitHub Markdown (uncut; see
    :func:`mlops_gitops.report.github.fit_comment`)."""
    def pictures(section: str) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for image in images:
            if image.section == section:
                out.setdefault(image.model, []).append(
                    (image.alt, _link(image.path, link_base, assets_url)))
        return out

    lines = [MARKER, f"## mlops-gitops report: {md(report.project)}", ""]
    if report.models:
        lines += _summary_table(report) + [""]
    lines += _data_section(report) + [""]
    lines += _changes_section(report) + [""]
    lines += _training_section(report) + [""]
    lines += ["### Model tests", ""]
    test_images = pictures("tests")
    for m in report.models:
        if m.tests is not None:
            lines.append(tests_markdown([m.tests], heading="####"))
            lines += [f"![{md(alt)}]({link})" for alt, link in test_images.get(m.model, [])]
            if m.tests_note:
                lines.append(f"⚠️ {md(m.tests_note)}")
        else:
            lines.append(f"#### {m.model}: –\n\n_{md(m.tests_note or 'not trained')}_")
        lines.append("")
    lines += ["### Champion vs challenger", ""]
    compare_images = pictures("compare")
    for m in report.models:
        if m.compare is not None:
            lines.append(compare_markdown([m.compare], heading="####", images=compare_images))
            if m.compare_note:
                lines.append(f"⚠️ {md(m.compare_note)}")
        else:
            lines.append(f"#### {m.model}: –\n\n_{md(m.compare_note or 'not trained')}_")
        lines.append("")
    if report.plan_markdown:
        lines += [report.plan_markdown, ""]
    elif report.plan_note:
        lines += ["### Registry plan", "", f"_{md(report.plan_note)}_", ""]
    commit = f" at `{report.commit[:12]}`" if report.commit else ""
    lines.append(f"<sub>mlops-gitops {__version__}{commit}</sub>")
    return "\n".join(lines) + "\n"
