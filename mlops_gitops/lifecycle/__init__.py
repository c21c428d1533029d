"""The whole lifecycle on a project, as a sequence of steps (what ``mlops-gitops run`` shows)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mlops_gitops.diagnostics import DiagnosticError, has_errors, render_text
from mlops_gitops.lifecycle.steps import StepResult


def run_lifecycle(root: Path, apply_first: bool = True) -> Iterator[StepResult]:
    """Yield each step's result; stop after the first failing step. ``apply_first=False`` stops
    before applying the first environment (what a pull request runs)."""
    from mlops_gitops.spec.project import load_project

    project = load_project(root)
    counts = {kind: 0 for kind in ("Dataset", "Model", "PromotionPolicy", "Environment")}
    for item in project.loaded:
        if item.kind in counts:
            counts[item.kind] += 1
    if has_errors(project.diagnostics):
        yield StepResult("lint", False, "specs have errors",
                         render_text(project.diagnostics).splitlines())
        return
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    yield StepResult("lint", True, f"specs are valid ({summary})")

    from mlops_gitops.data.validated import validate_cached

    datasets = [item for item in project.loaded if item.kind == "Dataset"]
    try:  # a dataset that met its contract with the same md5 and spec is not read again
        reports = [validate_cached(root, dataset) for dataset in datasets]
    except DiagnosticError as exc:
        yield StepResult("data validate", False, "data is not available",
                         render_text(exc.diagnostics).splitlines())
        return
    details = [f"{r.dataset}: {r.rows} rows, md5 {r.md5 or 'untracked'}, "
               f"{'ok' if r.ok else f'{len(r.failures)} failure(s)'}" for r in reports]
    details += [f"  - {f.message}" for r in reports for f in r.failures]
    failed = [r.dataset for r in reports if not r.ok]
    yield StepResult("data validate", not failed,
                     f"contracts broken: {', '.join(failed)}" if failed else
                     f"{len(reports)} dataset(s) meet their contracts", details)
    if failed:
        return

    from mlops_gitops.registry.session import RunSession
    from mlops_gitops.tracking import tracking_for

    # one registry for the run: a fast reader, and MLflow opened once if anything is written
    session = RunSession(tracking_for(project))
    try:
        yield from _registry_steps(project, session, apply_first)
    finally:
        session.close()


def _registry_steps(project, session, apply_first: bool) -> Iterator[StepResult]:
    from mlops_gitops.train.trainer import train_model

    models = [item for item in project.loaded if item.kind == "Model"]
    try:
        results = [train_model(project, model, registry_factory=session.factory)
                   for model in models]
    except DiagnosticError as exc:
        yield StepResult("train", False, "training failed", render_text(exc.diagnostics)
                         .splitlines())
        return
    details = []
    for r in results:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in r.metrics.items())
        state = "trained" if r.status == "trained" else "unchanged (fingerprint hit)"
        details.append(f"{r.model}: {state} -> {r.registered_name}/{r.version}"
                       f"{'  ' + metrics if metrics else ''}")
    trained = sum(r.status == "trained" for r in results)
    yield StepResult("train", True, f"{trained} trained, {len(results) - trained} unchanged",
                     details)

    from mlops_gitops.lifecycle.steps import compare_step, test_step

    trained = {r.model: r for r in results}
    for step in (test_step, compare_step):
        result = step(project, models, session, trained)
        yield result
        if not result.ok:
            return

    order = project.promotion_order()
    if order and apply_first:
        yield apply_step(project, order[0], session)


def apply_step(project, env: str, session=None) -> StepResult:
    """Plan and apply the first environment of the promotion order (what a merge into its
    branch does in CI); later environments are promoted by merges, not by ``run``. A plan
    with nothing to do, read through the run's fast reader, is the whole step: no lock, no
    MLflow."""
    from mlops_gitops.lineage import git_state
    from mlops_gitops.reconcile.apply import Lock, apply_plan, plan_against
    from mlops_gitops.reconcile.desired import desired_state
    from mlops_gitops.reconcile.render import summary
    from mlops_gitops.registry.ports import LookupUnavailable

    name = f"apply {env}"
    try:
        commit = git_state(project.root)[0]
        desired = desired_state(project, env)
        if session is not None:
            try:
                plan = plan_against(desired, session.reader, commit)
            except LookupUnavailable:
                plan = None
            if plan is not None and not plan.has_changes and not plan.unresolved:
                return StepResult(name, True, f"{summary(plan)} registry already matches the "
                                  "specs", [])
            registry = session.registry()
        else:
            from mlops_gitops.registry.open import open_registry

            registry = open_registry(project, "write")
        with Lock(registry, project.name, env):
            plan = plan_against(desired, registry, commit)
            result = apply_plan(plan, registry, commit, desired=desired)
    except DiagnosticError as exc:
        return StepResult(name, False, "apply failed", render_text(exc.diagnostics).splitlines())
    details = [f"{c.action} {c.key}" for c in result.applied]
    details += [f"not converged: {c.key}: {c.reason}" for c in result.unresolved]
    if result.error:
        details.append(f"stopped: {result.error}")
    done = (f"{len(result.applied)} change(s) applied" if result.applied else
            "registry already matches the specs")
    return StepResult(name, result.ok, f"{summary(plan)} {done}" if result.ok else
                      "did not converge", details)
