"""The whole lifecycle on a project, as a sequence of steps (what ``mlops-gitops run`` shows)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlops_gitops.diagnostics import has_errors, render_text


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
