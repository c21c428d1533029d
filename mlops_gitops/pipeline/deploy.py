"""``ci deploy --env ENV``: what a push to an environment branch runs.

lint -> data validate -> (under the environment's registry lock) plan through the policy's
gates -> build -> deploy and smoke-test -> apply the plan -> record health.

The registry moves only after the new service passed its smoke test, and nothing moves when a
gate refuses: the running service keeps its previous version, and the step that refused says
which gate and why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlops_gitops.diagnostics import DiagnosticError, has_errors, render_text
from mlops_gitops.lifecycle.steps import StepResult

Progress = Callable[[str], None]


def _failed(name: str, summary: str, exc: DiagnosticError | None = None,
            details: list[str] | None = None) -> StepResult:
    lines = render_text(exc.diagnostics).splitlines() if exc else []
    return StepResult(name, False, summary, lines + (details or []))


def ci_deploy(root: Path, env: str, lock_timeout: float = 600.0,
              progress: Progress = lambda message: None) -> list[StepResult]:
    from mlops_gitops.pipeline.pr import registry_step
    from mlops_gitops.reconcile.desired import environment
    from mlops_gitops.spec.project import load_project

    steps: list[StepResult] = []
    project = load_project(root)
    if has_errors(project.diagnostics):
        return [_failed("lint", "specs have errors",
                        details=render_text(project.diagnostics).splitlines())]
    try:
        environment(project, env)
    except DiagnosticError as exc:
        return [_failed("lint", f"no environment '{env}'", exc)]
    steps.append(StepResult("lint", True, "specs are valid"))
    guard = registry_step(project, "deploy")
    if guard:
        steps.append(guard)
        if not guard.ok:
            return steps
    steps.append(_data_step(project, env))
    if not steps[-1].ok:
        return steps
    progress("data valid; planning")
    steps += _deliver(project, env, lock_timeout, progress)
    return steps


def _data_step(project, env: str) -> StepResult:
    """The contracts of the datasets the environment's models train on."""
    from mlops_gitops.data.gate import validate_dataset

    served = {m.name for m in project.environments[env].spec.models}
    names = {project.models[m].spec.dataset for m in served if m in project.models}
    datasets = [d for d in project.loaded if d.kind == "Dataset" and d.name in names]
    try:
        reports = [validate_dataset(project.root, d) for d in datasets]
    except DiagnosticError as exc:
        return _failed("data validate", "data is not available", exc)
    broken = [r for r in reports if not r.ok]
    if broken:
        return StepResult("data validate", False, "contracts broken: "
                          + ", ".join(r.dataset for r in broken),
                          [f"{r.dataset}: {f.message}" for r in broken for f in r.failures])
    return StepResult("data validate", True, f"{len(reports)} dataset(s) meet their contracts")


def _deliver(project, env: str, lock_timeout: float, progress: Progress) -> list[StepResult]:
    from mlops_gitops.reconcile.apply import Lock
    from mlops_gitops.registry.open import open_registry

    try:
        registry = open_registry(project, "write")
        with Lock(registry, project.name, env, lock_timeout):
            return _locked(project, env, registry, progress)
    except DiagnosticError as exc:
        return [_failed("registry", "the registry cannot be used", exc)]


def _locked(project, env: str, registry, progress: Progress) -> list[StepResult]:
    from mlops_gitops.deploy.release import (
        RECORDED,
        UNCHANGED,
        deploy_environment,
        failed,
        record_health,
        target_for,
    )
    from mlops_gitops.lineage import git_state
    from mlops_gitops.reconcile.apply import apply_plan, plan_against
    from mlops_gitops.reconcile.desired import desired_state

    commit = git_state(project.root)[0]
    desired = desired_state(project, env)
    plan = plan_against(desired, registry, commit)
    if plan.unresolved:
        return [_failed(f"gates {env}", "refused: nothing was deployed, the running service "
                        "keeps its version",
                        details=[f"{c.key}: {c.reason}" for c in plan.unresolved])]
    steps = [StepResult(f"gates {env}", True, f"every served version passes the gates of "
                        f"'{env}'")]
    try:
        deployment, versions = deploy_environment(
            project, env, lambda: registry, lambda: registry, commit, target_for(project, env),
            progress, require_alias=False, record=False, keep_serving=True)
    except DiagnosticError as exc:
        return steps + [_failed("deploy", "the service was not deployed; the running service "
                                "keeps its version", exc)]
    if failed(deployment):
        record_health(registry, env, versions, deployment.outcome, deployment.bento_tag, commit)
        return steps + [StepResult("deploy", False, deployment.detail, list(deployment.smoke))]
    served = ", ".join(f"{v.name}/{v.version}" for v in versions)
    steps.append(StepResult("deploy", True, f"{deployment.bento_tag} {deployment.outcome} "
                            f"({served}){' at ' + deployment.url if deployment.url else ''}",
                            list(deployment.smoke)))
    result = apply_plan(plan, registry, commit, progress, desired=desired)
    if not result.ok:
        return steps + [StepResult(f"apply {env}", False, result.error or "did not converge",
                                   [f"{c.key}: {c.reason}" for c in result.unresolved])]
    if deployment.outcome in RECORDED:
        record_health(registry, env, versions, deployment.outcome, deployment.bento_tag,
                      commit)
    recorded = "; health recorded" if deployment.outcome in RECORDED else \
        "; the recorded health stands" if deployment.outcome == UNCHANGED else ""
    return steps + [StepResult(f"apply {env}", True, f"{len(result.applied)} registry "
                               f"change(s) applied{recorded}",
                               [f"{c.action} {c.key}" for c in result.applied])]
