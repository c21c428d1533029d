"""Golden plans: tests/golden/<case>/{case.json, live.json, specs/ overlay, plan.txt, plan.json}.

Each case is the base project (tests/golden/base) with the case's `specs/` files laid over it,
planned against `live.json` on the fake registry. `{fp:MODEL}` in the files stands for the
model's fingerprint (it depends on the installed scikit-learn version). Regenerate after a
deliberate change with UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from mlops_gitops.diagnostics import DiagnosticError, render_text
from mlops_gitops.reconcile.apply import make_plan
from mlops_gitops.reconcile.desired import desired_state
from mlops_gitops.reconcile.live import read_live_state
from mlops_gitops.reconcile.render import plan_text
from mlops_gitops.spec.project import load_project
from tests.fake_registry import FakeRegistry

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "case.json").is_file())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _project(case: Path, tmp_path: Path, monkeypatch):
    root = tmp_path / "project"
    shutil.copytree(GOLDEN / "base", root)
    if (case / "specs").is_dir():
        shutil.copytree(case / "specs", root, dirs_exist_ok=True)
    monkeypatch.chdir(root)  # file names in diagnostics relative to the project
    project = load_project(root)
    assert project.ok, render_text(project.diagnostics)
    return project


def _fingerprints(project) -> dict[str, str]:
    from mlops_gitops.targets import training_target

    return {item.name: training_target(project, item).fingerprint
            for item in project.loaded if item.kind == "Model"}


def _fill(text: str, fingerprints: dict[str, str], project=None) -> str:
    """``{fp:MODEL}`` -> the model's fingerprint, ``{policy:NAME}`` -> the policy's digest."""
    from mlops_gitops.verdict import policy_digest

    text = re.sub(r"\{fp:([a-z0-9-]+)\}", lambda m: fingerprints[m.group(1)], text)
    return re.sub(r"\{policy:([a-z0-9-]+)\}",
                  lambda m: policy_digest(project.policies[m.group(1)].spec), text)


def _placeholders(text: str, fingerprints: dict[str, str]) -> str:
    for name, fp in fingerprints.items():
        text = text.replace(fp, f"{{fp:{name}}}").replace(fp[:12], f"{{fp12:{name}}}")
    return text


def _check(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual)
    assert path.is_file(), f"{path} missing: run with UPDATE_GOLDEN=1 and review it"
    assert actual == path.read_text()


@pytest.mark.parametrize("name", CASES)
def test_golden_plan(name, tmp_path, monkeypatch):
    case = GOLDEN / name
    settings = json.loads((case / "case.json").read_text())
    project = _project(case, tmp_path, monkeypatch)
    fingerprints = _fingerprints(project)
    registry = FakeRegistry.from_json(_fill((case / "live.json").read_text(), fingerprints,
                                            project))
    try:
        desired = desired_state(project, settings["env"])
        plan = make_plan(desired, read_live_state(registry, project.name,
                                                  [m.name for m in desired.models]),
                         "c0ffee" * 6 + "c0ff", settings["prune"])
    except DiagnosticError as exc:
        _check(case / "error.txt", render_text(exc.diagnostics) + "\n")
        return
    # filtered on the server: this project's models, (names it does not own yet), their versions
    assert registry.calls[0] == "search_models(project)"
    assert "list_models" not in registry.calls and "list_versions" not in registry.calls
    text = plan_text(plan).replace(plan.live_fingerprint[:12], "<live state>")
    _check(case / "plan.txt", _placeholders(text, fingerprints) + "\n")
    plan_json = json.loads(plan.to_json())
    plan_json["live_fingerprint"] = "<live state>"
    _check(case / "plan.json", _placeholders(json.dumps(plan_json, indent=2, sort_keys=True),
                                             fingerprints) + "\n")
