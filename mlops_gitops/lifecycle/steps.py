"""A step's result, and the ``test`` and ``compare`` steps of ``mlops-gitops run``
(:mod:`mlops_gitops.lifecycle`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mlops_gitops.diagnostics import DiagnosticError, render_text


@dataclass(frozen=True)
class StepResult:
    name: str
    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _recorded(session, trained, model):
    """(the version as registered now, its fingerprint) for a model trained in this run, read
    through the session's fast reader; (None, '') when it cannot be read that way."""
    from mlops_gitops.registry.ports import LookupUnavailable

    result = (trained or {}).get(model.name)
    if session is None or result is None:
        return None, ""
    try:
        return session.reader.get_version(result.registered_name, result.version), \
            result.fingerprint
    except LookupUnavailable:
        return None, ""


def _each_unless_known(models, session, trained, evaluate, recorded):
    """({model name: what ``recorded(model, version, fingerprint)`` found still holding},
    [``evaluate(model, registry)`` of each other model]), in the models' order."""
    known, results = {}, []
    for model in models:
        version, fingerprint = _recorded(session, trained, model)
        found = recorded(model, version, fingerprint)
        if found is not None:
            known[model.name] = found
        else:
            results.append(evaluate(model, session.registry() if session is not None else None))
    return known, results


def test_step(project, models, session=None, trained=None) -> StepResult:
    """Model tests of each model's challenger. With a run's ``session`` and ``trained`` results
    (by model name), a recorded result that still holds is reused
    (:mod:`mlops_gitops.evaluate.known`)."""
    from mlops_gitops.evaluate.known import known_tests

    def evaluate(model, registry):
        from mlops_gitops.evaluate.model_tests import run_model_tests

        return run_model_tests(project, model, registry=registry)

    try:
        known, runs = _each_unless_known(models, session, trained, evaluate,
                                         lambda model, version, fingerprint:
                                         known_tests(model, version, fingerprint))
    except DiagnosticError as exc:
        return StepResult("test", False, "model tests could not run",
                          render_text(exc.diagnostics).splitlines())
    details = []
    by_model = {run.model: run for run in runs}
    for model in models:
        if model.name in known:
            details.append(known[model.name])
            continue
        run = by_model[model.name]
        total = len(run.outcomes)
        details.append(f"{run.registered_name}/{run.version}: {total - len(run.failed)}/{total} "
                       "model tests passed" if total else
                       f"{run.registered_name}/{run.version}: no model tests declared")
        details += [f"  - {o.name}: {o.threshold}, got {o.value if o.value is not None else '-'}"
                    f" ({o.detail})" for o in run.outcomes if not o.passed]
    failed = [run.model for run in runs if not run.passed]
    reused = f" ({len(known)} recorded result(s) still hold)" if known else ""
    return StepResult("test", not failed, f"model tests failed: {', '.join(failed)}" if failed
                      else f"{len(models)} model(s) pass their tests{reused}", details)


def compare_step(project, models, session=None, trained=None) -> StepResult:
    """Champion/challenger comparison of each model; like :func:`test_step`, a recorded
    verdict that still holds is reused."""
    from mlops_gitops.evaluate.known import known_comparison
    from mlops_gitops.registry.ports import LookupUnavailable

    def recorded(model, version, fingerprint):
        if version is None:
            return None
        try:
            return known_comparison(project, model, version, fingerprint, session.reader)
        except LookupUnavailable:
            return None

    def evaluate(model, registry):
        from mlops_gitops.evaluate.compare import compare_model

        return compare_model(project, model, registry=registry)

    try:
        known, results = _each_unless_known(models, session, trained, evaluate, recorded)
    except DiagnosticError as exc:
        return StepResult("compare", False, "comparison failed",
                          render_text(exc.diagnostics).splitlines())
    details = []
    by_model = {c.model: c for c in results}
    for model in models:
        if model.name in known:
            details += known[model.name].details
            continue
        c = by_model[model.name]
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
    blessed = sum(c.blessed is True for c in results) + \
        sum(k.blessed is True for k in known.values())
    reused = f" ({len(known)} recorded verdict(s) still hold)" if known else ""
    return StepResult("compare", not refused, f"not blessed: {', '.join(refused)}" if refused
                      else f"{blessed} challenger(s) blessed{reused}", details)
