"""The ``test`` and ``compare`` steps of ``mlops-gitops run`` (:mod:`mlops_gitops.lifecycle`)."""

from __future__ import annotations

from mlops_gitops.diagnostics import DiagnosticError, render_text
from mlops_gitops.lifecycle import StepResult


def test_step(project, models) -> StepResult:
    from mlops_gitops.evaluate.model_tests import run_model_tests

    try:
        runs = [run_model_tests(project, model) for model in models]
    except DiagnosticError as exc:
        return StepResult("test", False, "model tests could not run",
                          render_text(exc.diagnostics).splitlines())
    details = []
    for run in runs:
        total = len(run.outcomes)
        details.append(f"{run.registered_name}/{run.version}: {total - len(run.failed)}/{total} "
                       "model tests passed" if total else
                       f"{run.registered_name}/{run.version}: no model tests declared")
        details += [f"  - {o.name}: {o.threshold}, got {o.value if o.value is not None else '-'}"
                    f" ({o.detail})" for o in run.outcomes if not o.passed]
    failed = [run.model for run in runs if not run.passed]
    return StepResult("test", not failed, f"model tests failed: {', '.join(failed)}" if failed
                      else f"{len(runs)} model(s) pass their tests", details)


def compare_step(project, models) -> StepResult:
    from mlops_gitops.evaluate.compare import compare_model

    try:
        results = [compare_model(project, model) for model in models]
    except DiagnosticError as exc:
        return StepResult("compare", False, "comparison failed",
                          render_text(exc.diagnostics).splitlines())
    details = []
    for c in results:
        ref = f"{c.registered_name}/{c.challenger.version}"
        if c.verdict is None:
            details.append(f"{ref}: no policy, no verdict")
            continue
        against = f"champion {c.champion.version}" if c.champion else "no champion"
        details.append(f"{ref}: {'blessed' if c.blessed else 'NOT blessed'} against {against} "
                       f"under '{c.policy}' ({c.verdict.summary()})")
        details += [f"  - {k.metric}{f' [{k.slice}]' if k.slice else ''} {k.describe()}: "
                    f"{k.note or f'got {k.challenger:.4g}'}" for k in c.verdict.failed]
        if c.interval is not None:
            details.append(f"  {c.interval.describe()}")
    refused = [c.model for c in results if c.blessed is False]
    return StepResult("compare", not refused, f"not blessed: {', '.join(refused)}" if refused
                      else f"{sum(c.blessed is True for c in results)} challenger(s) blessed",
                      details)
