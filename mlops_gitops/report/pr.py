"""The pull-request report: data validation, what changed in specs and data, training metrics,
model tests, champion vs challenger and the registry plan, as one GitHub comment.

:func:`collect` gathers the facts (the data gate is re-run; training, test and compare results are
read back from the registry, where ``train``, ``test`` and ``compare`` recorded them);
:func:`render` turns them into Markdown; :func:`fit_comment` makes it fit in one comment.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlops_gitops import __version__
from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.identity import ARTIFACT_COMPARE, ARTIFACT_MODEL_TESTS
from mlops_gitops.report.render import compare_markdown, md, num, tests_markdown
from mlops_gitops.spec.project import Project

MARKER = "<!-- mlops-gitops:report -->"
COMMENT_LIMIT = 65_536  # characters in one GitHub comment
SUMMARY_LIMIT = 1_048_576  # bytes of one step's $GITHUB_STEP_SUMMARY
SPEC_DIFF_LINES = 200

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DataChange:
    dataset: str
    path: str
    old_md5: str | None
    new_md5: str | None
    rows: tuple[int, int] | None = None
    rows_added: int | None = None
    rows_removed: int | None = None
    note: str = ""


@dataclass(frozen=True)
class Changes:
    base: str
    merge_base: str
    files: tuple[tuple[str, str], ...]  # (status letter, path)
    data: tuple[DataChange, ...] = ()
    spec_diff: str = ""


@dataclass(frozen=True)
class ModelReport:
    model: str
    registered_name: str
    fingerprint: str
    version: int | None  # the challenger: the ready version for the current spec
    metrics: dict[str, float] = field(default_factory=dict)
    tests: dict | None = None
    tests_note: str = ""
    compare: dict | None = None
    compare_note: str = ""


@dataclass(frozen=True)
class Report:
    project: str
    commit: str | None
    data: tuple = ()  # DataReport
    data_note: str = ""
    changes: Changes | None = None
    changes_note: str = ""
    models: tuple[ModelReport, ...] = ()
    models_note: str = ""
    plan_markdown: str | None = None
    plan_note: str = ""

    def to_dict(self) -> dict:
        out = asdict(self)
        out["data"] = [r.to_dict() for r in self.data]
        return out


# --- collecting ----------------------------------------------------------------------------------

def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def default_base() -> str | None:
    """The pull request's base branch on GitHub Actions (``origin/$GITHUB_BASE_REF``)."""
    ref = os.environ.get("GITHUB_BASE_REF")
    return f"origin/{ref}" if ref else None


def _spec_paths(project: Project) -> list[str]:
    from mlops_gitops.spec.loader import CONFIG_FILE, SPEC_FOLDERS

    return [*SPEC_FOLDERS, CONFIG_FILE]


def collect_changes(project: Project, base: str) -> tuple[Changes | None, str]:
    from mlops_gitops.gitref import checked_revision

    root = project.root
    base = checked_revision(base, "--base")
    merge_base = (_git(root, "merge-base", "--end-of-options", base, "HEAD") or "").strip()
    if not merge_base:
        return None, f"cannot find the merge base of '{base}' and HEAD (is '{base}' fetched?)"
    datasets = [i for i in project.loaded if i.kind == "Dataset"]
    pointers = {f"{d.spec.spec.path}.dvc": d for d in datasets}
    listing = _git(root, "diff", "--name-status", "--no-renames", merge_base, "--",
                   *_spec_paths(project), *pointers) or ""
    files = tuple((line.split("\t", 1)[0], line.split("\t", 1)[1])
                  for line in listing.splitlines() if "\t" in line)
    diff = _git(root, "diff", "--no-color", merge_base, "--", *_spec_paths(project)) or ""
    lines = diff.splitlines()
    if len(lines) > SPEC_DIFF_LINES:
        lines = lines[:SPEC_DIFF_LINES] + [f"... {len(lines) - SPEC_DIFF_LINES} more lines"]
    data = tuple(_data_change(project, pointers[path], merge_base)
                 for _, path in files if path in pointers)
    return Changes(base, merge_base, files, data, "\n".join(lines)), ""


def _data_change(project: Project, dataset, merge_base: str) -> DataChange:
    from mlops_gitops.data.versioning import data_version, pointer_md5

    path = dataset.spec.spec.path
    old_md5 = None
    old_pointer = _git(project.root, "show", f"{merge_base}:{path}.dvc")
    if old_pointer:
        try:
            old_md5 = pointer_md5(old_pointer)
        except ValueError:
            old_md5 = None
    try:
        new_md5 = data_version(project.root, path).md5
    except DiagnosticError as exc:
        return DataChange(dataset.name, path, old_md5, None, note=exc.diagnostics[0].message)
    if old_md5 is None:
        return DataChange(dataset.name, path, None, new_md5, note="new dataset")
    try:
        import io

        import pandas as pd

        from mlops_gitops.data.diff import diff_frames
        from mlops_gitops.data.versioning import ensure_present, read_at_revision

        old = pd.read_csv(io.BytesIO(read_at_revision(project.root, path, merge_base)),
                          low_memory=False)
        new = pd.read_csv(ensure_present(project.root, path, dataset.file), low_memory=False)
        diff = diff_frames(dataset.name, path, (merge_base[:12], "now"), old, new)
    except DiagnosticError as exc:
        return DataChange(dataset.name, path, old_md5, new_md5,
                          note=f"rows not compared: {exc.diagnostics[0].message}")
    return DataChange(dataset.name, path, old_md5, new_md5, diff.rows, diff.rows_added,
                      diff.rows_removed)


def _model_report(project: Project, model, registry) -> ModelReport:
    from mlops_gitops.evaluate.model_tests import tests_digest
    from mlops_gitops.evaluate.versions import default_alias
    from mlops_gitops.targets import training_target
    from mlops_gitops.verdict import RecordedVerdict, policy_digest, stale_reason

    target = training_target(project, model)
    found = registry.find_version(target.registered_name, target.fingerprint)
    number = found.version if found is not None else None
    base = ModelReport(model.name, target.registered_name, target.fingerprint, number)
    if number is None:
        return base
    found = registry.get_version(target.registered_name, number)
    if found is None or not found.run_id:
        return base
    spec = model.spec.spec
    metrics = registry.run_metrics(found.run_id)
    tests = registry.run_json_or_none(found.run_id, ARTIFACT_MODEL_TESTS)
    tests_note = ""
    if tests is None:
        tests_note = "not run for this version: `mlops-gitops test`" if spec.tests else \
            "the spec declares no model tests"
    elif tests.get("tests_digest") != tests_digest(spec.tests):
        tests_note = ("recorded for a different set of tests than the spec declares now: rerun "
                      "`mlops-gitops test`")
    compared = registry.run_json_or_none(found.run_id, ARTIFACT_COMPARE)
    compare_note = ""
    if spec.policy is None:
        compared, compare_note = None, "the spec names no policy"
    elif compared is None:
        compare_note = "not compared yet: `mlops-gitops compare`"
    else:
        policy = project.located("PromotionPolicy", spec.policy).spec.spec
        aliases = registry.model_aliases(target.registered_name) or {}
        recorded = RecordedVerdict.from_record(compared)
        now = aliases.get(recorded.alias or default_alias(project))
        stale = stale_reason(recorded, spec.policy, policy_digest(policy), now)
        if stale:
            compare_note = f"verdict is stale: {stale}: rerun `mlops-gitops compare`"
    return ModelReport(model.name, target.registered_name, target.fingerprint, number, metrics,
                       tests, tests_note, compared, compare_note)


def collect(project: Project, *, base: str | None = None, env: str | None = None,
            plan_file: Path | None = None, registry=None,
            progress: Progress = lambda message: None) -> Report:
    from mlops_gitops.data.gate import validate_dataset
    from mlops_gitops.lineage import git_state

    commit, _ = git_state(project.root)
    progress("report: validating data")
    data, data_note = (), ""
    try:
        data = tuple(validate_dataset(project.root, d) for d in project.loaded
                     if d.kind == "Dataset")
    except DiagnosticError as exc:
        data_note = "; ".join(d.message for d in exc.diagnostics)
    changes, changes_note = None, ""
    base = base or default_base()
    if base is None:
        changes_note = "no base revision to compare with (give --base REF)"
    else:
        progress(f"report: changes since {base}")
        changes, changes_note = collect_changes(project, base)
    models, models_note = (), ""
    progress("report: reading training, test and compare results from the registry")
    try:
        from mlops_gitops.registry.open import open_registry

        registry = registry if registry is not None else open_registry(project, "write")
        models = tuple(_model_report(project, m, registry) for m in project.loaded
                       if m.kind == "Model")
    except DiagnosticError as exc:
        models_note = "; ".join(d.message for d in exc.diagnostics)
    plan, plan_note = _plan(project, env, plan_file, registry, commit, base)
    return Report(project.name, commit, data, data_note, changes, changes_note, models,
                  models_note, plan, plan_note)


def _env_of_base(project: Project, base: str | None) -> str | None:
    if not base:
        return None
    branch = base.removeprefix("origin/")
    for name, env in project.environments.items():
        if (env.spec.branch or f"env/{name}") == branch:
            return name
    return None


def _plan(project: Project, env: str | None, plan_file: Path | None, registry, commit,
          base: str | None) -> tuple[str | None, str]:
    """The reconciler's plan as Markdown: a saved plan file, or one made for ENV (default: the
    environment whose branch the pull request targets)."""
    try:
        from mlops_gitops.reconcile.render import plan_markdown
    except ImportError:  # pragma: no cover - the reconciler ships with the package
        return None, "the reconciler is not installed"
    if plan_file is not None:
        from mlops_gitops.reconcile.plan import Plan

        try:
            return plan_markdown(Plan.from_json(plan_file.read_text(encoding="utf-8"))), ""
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return None, f"cannot read the plan {plan_file}: {exc}"
    env = env or _env_of_base(project, base)
    if env is None:
        return None, ""
    if registry is None:
        return None, "no registry to plan against"
    try:
        from mlops_gitops.reconcile.apply import make_plan
        from mlops_gitops.reconcile.desired import desired_state
        from mlops_gitops.reconcile.live import read_live_state

        desired = desired_state(project, env)
        plan = make_plan(desired, read_live_state(registry, project.name,
                                                  [m.name for m in desired.models]), commit)
    except DiagnosticError as exc:
        return None, f"cannot plan '{env}': {exc.diagnostics[0].message}"
    return plan_markdown(plan), ""


# --- plots ---------------------------------------------------------------------------------------

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
                bounds = _test_bounds(test["threshold"])
                path = plots.metric_by_slice(
                    folder / f"{m.model}-{test['name']}.png", f"{m.model}: {test['name']}",
                    test["detail"].split(" ", 1)[0], labels,
                    [(f"version {m.tests['version']}", [p["value"] for p in test["slices"]])],
                    bounds)
                images.append(Image("tests", m.model, f"{test['name']} by slice", path))
    return images


def _test_bounds(threshold: str) -> tuple[float | None, float | None]:
    """(min, max) back from a metric test's threshold text ('>= 0.7', '<= 3', 'in [a, b]')."""
    try:
        if threshold.startswith(">= "):
            return float(threshold[3:]), None
        if threshold.startswith("<= "):
            return None, float(threshold[3:])
        if threshold.startswith("in ["):
            low, high = threshold[4:-1].split(", ")
            return float(low), float(high)
    except ValueError:
        pass
    return None, None


# --- rendering -----------------------------------------------------------------------------------

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
    """The whole report as GitHub Markdown (uncut; see :func:`fit_comment`)."""
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


def fit_comment(text: str, limit: int = COMMENT_LIMIT) -> str:
    """``text`` cut to at most ``limit`` characters at a line end, with open ``<details>`` blocks
    and code fences closed and a note saying so."""
    if len(text) <= limit:
        return text
    budget = limit
    while True:
        kept = text[:max(0, budget)]
        if "\n" in kept:
            kept = kept[:kept.rindex("\n")]
        closing = "\n```" if kept.count("```") % 2 else ""
        opened = kept.count("<details>") - kept.count("</details>")
        closing += "\n</details>" * max(0, opened)
        note = (f"\n\n> ✂️ This report was cut at {len(kept):,} of {len(text):,} characters to "
                "fit in one GitHub comment; the job summary and `mlops-gitops report` have all "
                "of it.\n")
        out = kept + closing + note
        if len(out) <= limit or budget <= 0:
            return out[:limit]
        budget -= len(out) - limit


def write_step_summary(text: str) -> Path:
    """Append the report to ``$GITHUB_STEP_SUMMARY`` (cut to the summary's size limit)."""
    from mlops_gitops.diagnostics import Diagnostic

    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        raise DiagnosticError([Diagnostic("<command line>", code="usage", message=(
            "--summary needs $GITHUB_STEP_SUMMARY (set by GitHub Actions)"))])
    path = Path(target)
    if len(text.encode("utf-8")) > SUMMARY_LIMIT:
        text = fit_comment(text, SUMMARY_LIMIT // 4)  # a character takes at most 4 bytes
    with path.open("a", encoding="utf-8") as out:
        out.write(text)
    return path
