"""The whole lifecycle on a project, as a sequence of steps (what ``mlops-gitops run`` shows)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlops_gitops.diagnostics import DiagnosticError, has_errors, render_text


@dataclass(frozen=True)
class StepResult:
    name: str
    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def run_lifecycle(root: Path) -> Iterator[StepResult]:
    """Yield each step's result; stop after the first failing step."""
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

    from mlops_gitops.data.gate import validate_dataset

    datasets = [item for item in project.loaded if item.kind == "Dataset"]
    try:
        reports = [validate_dataset(root, dataset) for dataset in datasets]
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

    from mlops_gitops.train.trainer import train_model

    models = [item for item in project.loaded if item.kind == "Model"]
    try:
        results = [train_model(project, model) for model in models]
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
