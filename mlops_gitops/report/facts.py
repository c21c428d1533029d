"""The pull-request report's facts: data validation, what changed in specs and data, training
metrics, model tests, champion vs challenger and the registry plan, as typed values.

:func:`collect` gathers them (the data gate is re-run; training, test and compare results are read
back from the registry, where ``train``, ``test`` and ``compare`` recorded them);
:mod:`mlops_gitops.report.markdown` renders them and :mod:`mlops_gitops.report.github` fits the
result into GitHub's comment and job summary.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.identity import ARTIFACT_COMPARE, ARTIFACT_MODEL_TESTS
from mlops_gitops.spec.project import Project

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
    # (min, max) of each metric test, from the spec whose tests digest the results carry
    test_bounds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)


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
    from mlops_gitops.spec.models import MetricTest
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
    bounds = {t.name: (t.min, t.max) for t in spec.tests if isinstance(t, MetricTest)}
    return ModelReport(model.name, target.registered_name, target.fingerprint, number, metrics,
                       tests, tests_note, compared, compare_note, bounds)


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
        from mlops_gitops.reconcile.apply import plan_against
        from mlops_gitops.reconcile.desired import desired_state

        plan = plan_against(desired_state(project, env), registry, commit)
    except DiagnosticError as exc:
        return None, f"cannot plan '{env}': {exc.diagnostics[0].message}"
    return plan_markdown(plan), ""
