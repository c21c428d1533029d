"""The schedule trigger: how old each served version is, against the maximum model age.

A version's age is the time since the commit it was trained from (its lineage commit, baked
into the bento manifest): a retraining proposal makes a new commit, so the version it trains is
young again. The maximum comes from the model's ``spec.retrain.max_age_days``, else from the
environment's ``monitoring.max_model_age_days``; with neither, nothing is checked (and git is
not called).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

DAY_S = 86_400.0


@dataclass(frozen=True)
class ModelAge:
    model: str  # registered name
    spec_name: str
    version: int
    commit: str | None
    max_age_days: float
    age_days: float | None  # None when the commit is not in this clone
    overdue: bool
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def commit_time(root: Path, commit: str) -> float | None:
    try:
        done = subprocess.run(["git", "show", "-s", "--format=%ct", f"{commit}^{{commit}}"],
                              cwd=root, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    try:
        return float(done.stdout.strip()) if done.returncode == 0 else None
    except ValueError:
        return None


def model_ages(root: Path, project, env_max: float | None, served, now: float | None = None
               ) -> list[ModelAge]:
    now = time.time() if now is None else now
    ages = []
    for model in served:
        spec = project.models.get(model.spec_name)
        retrain = spec.spec.retrain if spec is not None else None
        limit = retrain.max_age_days if retrain and retrain.max_age_days else env_max
        if not limit:
            continue
        when = commit_time(root, model.commit) if model.commit else None
        if when is None:
            ages.append(ModelAge(model.name, model.spec_name, model.version, model.commit, limit,
                                 None, False, "training commit "
                                 f"{(model.commit or 'unknown')[:12]} is not in this clone: "
                                 "age unknown (fetch the whole history: fetch-depth: 0)"))
            continue
        age = (now - when) / DAY_S
        ages.append(ModelAge(model.name, model.spec_name, model.version, model.commit, limit,
                             round(age, 2), age > limit))
    return ages


def text(ages: list[ModelAge]) -> list[str]:
    lines = []
    for a in ages:
        if a.age_days is None:
            lines.append(f"  {a.model}/{a.version}: warning: {a.note}")
        else:
            lines.append(f"  {a.model}/{a.version}: trained {a.age_days:.1f} day(s) ago, "
                         f"max {a.max_age_days:g}: "
                         + ("TOO OLD (retraining due)" if a.overdue else "ok"))
    return lines


def markdown(ages: list[ModelAge]) -> str:
    if not ages:
        return ""
    out = ["### Model age (schedule)", "", "| model | version | age (days) | max (days) | due |",
           "|---|---|---:|---:|---|"]
    for a in ages:
        age = "unknown" if a.age_days is None else f"{a.age_days:.1f}"
        out.append(f"| {a.model} | {a.version} | {age} | {a.max_age_days:g} | "
                   f"{'**yes**' if a.overdue else 'no'} |")
    notes = [f"- {a.model}/{a.version}: {a.note}" for a in ages if a.note]
    return "\n".join(out + ([""] + notes if notes else [])) + "\n"


def prometheus(env: str, ages: list[ModelAge]) -> str:
    from mlops_gitops.monitor.render import prometheus_labels

    lines = [f"mlops_model_age_days{prometheus_labels(env=env, model=a.model, version=a.version)}"
             f" {a.age_days}" for a in ages if a.age_days is not None]
    if not lines:
        return ""
    return ("# HELP mlops_model_age_days Days since the commit the served version was trained "
            "from.\n# TYPE mlops_model_age_days gauge\n" + "\n".join(lines) + "\n")
