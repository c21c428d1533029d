"""``ci pr``: the pull-request pipeline as one command.

lint -> data validate -> train what changed -> model tests -> compare -> plan the first
environment -> the Markdown report (to ``--report`` and ``$GITHUB_STEP_SUMMARY``). The report is
written even when a step fails, so the pull request always shows why.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mlops_gitops.diagnostics import DiagnosticError, render_text
from mlops_gitops.lifecycle import run_lifecycle
from mlops_gitops.lifecycle.steps import StepResult

Progress = Callable[[str], None]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1") or "GITHUB_ACTIONS" in os.environ


def scratch_registry(project) -> bool:
    """Whether the project runs against the embedded default store (a throwaway registry when
    it runs on a CI runner)."""
    return not os.environ.get("MLFLOW_TRACKING_URI") and not project.config.tracking_uri


def registry_step(project, action: str) -> StepResult | None:
    """Under CI, say plainly when the registry is a scratch one; refuse it for ``deploy``
    unless the project asks for it (``embedded_registry_in_ci: true``)."""
    if not in_ci() or not scratch_registry(project):
        return None
    message = ("no MLFLOW_TRACKING_URI (a missing secret, or a fork's pull request): this run "
               "uses a scratch SQLite registry on the runner, thrown away after the job")
    if action == "deploy" and not project.config.embedded_registry_in_ci:
        return StepResult("registry", False, "refusing to deploy from a scratch registry",
                          [message, "set the MLFLOW_TRACKING_URI secret, or set "
                           "embedded_registry_in_ci: true in mlops-gitops.yaml"])
    return StepResult("registry", True, "SCRATCH registry: results are not kept", [message])


def ci_pr(root: Path, base: str | None, report: Path | None,
          progress: Progress = lambda message: None) -> list[StepResult]:
    from mlops_gitops.spec.project import load_project

    steps: list[StepResult] = []
    project = load_project(root)
    warning = registry_step(project, "pr")
    if warning:
        steps.append(warning)
    for step in run_lifecycle(root, apply_first=False):
        progress(f"{step.name}: {step.summary}")
        steps.append(step)
    if all(step.ok for step in steps):
        steps.append(_plan_step(project))
    if report is not None or os.environ.get("GITHUB_STEP_SUMMARY"):
        steps.append(_report_step(project, base, report, steps, progress))
    return steps


def _plan_step(project) -> StepResult:
    from mlops_gitops.reconcile.render import plan_text

    order = project.promotion_order()
    if not order:
        return StepResult("plan", True, "no environments")
    env = order[0]
    try:
        plan = _plan(project, env)
    except DiagnosticError as exc:
        return StepResult(f"plan {env}", False, "cannot plan",
                          render_text(exc.diagnostics).splitlines())
    return StepResult(f"plan {env}", not plan.unresolved, plan_text(plan).splitlines()[-1],
                      plan_text(plan).splitlines()[1:-1])


def _plan(project, env: str):
    from mlops_gitops.lineage import git_state
    from mlops_gitops.reconcile.apply import plan_against
    from mlops_gitops.reconcile.desired import desired_state
    from mlops_gitops.registry.rest import registry_reader
    from mlops_gitops.tracking import check_reachable, tracking_for

    tracking = tracking_for(project)
    check_reachable(tracking)
    desired = desired_state(project, env)
    return plan_against(desired, registry_reader(tracking), git_state(project.root)[0])


def _report_step(project, base: str | None, path: Path | None, steps: list[StepResult],
                 progress: Progress) -> StepResult:
    from mlops_gitops.report import facts, github, markdown

    order = project.promotion_order()
    try:
        report = facts.collect(project, base=base, env=order[0] if order else None,
                               progress=progress)
        folder = (path.resolve().parent if path else project.root) / ".mlops" / "report"
        images = markdown.make_plots(report, folder)
        text = markdown.render(report, images, link_base=path.resolve().parent if path else None)
    except DiagnosticError as exc:
        return StepResult("report", False, "the report could not be made",
                          render_text(exc.diagnostics).splitlines())
    failed = [s for s in steps if not s.ok]
    banner = []
    for step in steps:
        if step.name == "registry":
            banner.append(f"> **Warning:** {step.details[0]}.")
    if failed:
        banner.append(f"> **Pipeline failed** at {', '.join(s.name for s in failed)}: "
                      f"{failed[0].summary}.")
    if banner:
        marker, _, rest = text.partition("\n")
        text = "\n".join([marker, *banner, "", rest]) if marker == github.MARKER else \
            "\n".join([*banner, "", text])
    comment = github.fit_comment(text)
    written = []
    if path is not None:
        path.write_text(comment, encoding="utf-8")
        written.append(str(path))
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        written.append(str(github.write_step_summary(text)))
    return StepResult("report", True, f"written to {', '.join(written)}")
