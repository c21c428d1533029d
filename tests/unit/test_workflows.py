"""The GitHub Actions workflows: this repository's and the ones `init` scaffolds. Valid, calling
real commands, pinned, least privilege, and clean under zizmor (offline)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from mlops_gitops.cli.app import build_parser
from mlops_gitops.scaffold import scaffold

from .support import REPO

WORKFLOWS = ("pr.yml", "deploy.yml", "promote.yml", "monitor.yml")
PLACES = ("repository", "scaffold")
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scaffold")
    scaffold(root)
    return root


@pytest.fixture(scope="module")
def folders(scaffolded) -> dict[str, Path]:
    return {"repository": REPO / ".github/workflows",
            "scaffold": scaffolded / ".github/workflows"}


def _load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on` as True
    return workflow


def _steps(workflow: dict):
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, step


def _parser_tree() -> dict[str, tuple[set[str], dict]]:
    """Command -> (its option strings, its subcommands), read from the real parser."""
    def walk(parser):
        tree = {}
        if parser._subparsers is None:
            return tree
        for action in parser._subparsers._group_actions:
            for name, sub in (getattr(action, "choices", None) or {}).items():
                options = {o for a in sub._actions for o in a.option_strings}
                tree[name] = (options, walk(sub))
        return tree
    return walk(build_parser())


def _calls(run: str) -> list[list[str]]:
    """The argument lists of every `mlops-gitops ...` in a `run:` script."""
    calls = []
    for rest in re.findall(r"(?<![\w-])mlops-gitops[ \t]+([^\n|;&>#]*)", run):
        calls.append(shlex.split(rest))
    return calls


OPTIONAL_SUBCOMMANDS = {"monitor"}  # `monitor --env ENV` runs; `monitor feedback ...` too


def _check_call(tree: dict, args: list[str]) -> str | None:
    """None when ``mlops-gitops ARGS`` names a real command with real options, else why not."""
    words = [a for a in args if not a.startswith("-")]
    if not words or words[0] not in tree:
        return f"unknown command 'mlops-gitops {' '.join(args)}'"
    options, subcommands = tree[words[0]]
    name = words[0]
    if subcommands and name in OPTIONAL_SUBCOMMANDS and \
            (len(words) < 2 or words[1] not in subcommands):
        pass  # the command itself, with its own options
    elif subcommands:
        if len(words) < 2 or words[1] not in subcommands:
            return f"'mlops-gitops {name}' has no subcommand in {args}"
        options, _ = subcommands[words[1]]
        name = f"{name} {words[1]}"
    for option in (a.split("=", 1)[0] for a in args if a.startswith("-")):
        if option not in options:
            return f"'mlops-gitops {name}' has no option {option}"
    return None


def test_the_command_check_catches_mistakes():
    tree = _parser_tree()
    assert _check_call(tree, ["ci", "pr", "--base", "origin/main", "--report", "r.md"]) is None
    assert _check_call(tree, ["ci", "promote", "--from", "dev", "--to", "test", "--open-pr"]) \
        is None
    assert _check_call(tree, ["data", "validate", "--format", "github"]) is None
    assert _check_call(tree, ["status", "--env", "dev"]) is None
    assert _check_call(tree, ["ci", "deploy", "--env", "dev", "--lock-timeout=600"]) is None
    assert "unknown command" in _check_call(tree, ["watch", "--env", "dev"])
    assert _check_call(tree, ["monitor", "--env", "dev", "--format", "markdown"]) is None
    assert _check_call(tree, ["monitor", "feedback", "--env", "dev", "labels.csv"]) is None
    assert _check_call(tree, ["monitor", "--env", "dev", "--propose", "--base", "main"]) is None
    assert _check_call(tree, ["monitor", "feedback", "--env", "dev", "l.csv", "--propose"]) \
        is None
    assert _check_call(tree, ["retrain", "iris", "--reason", "x", "--trigger", "drift"]) is None
    assert "no option --window" in _check_call(tree, ["monitor", "feedback", "--window", "3"])
    assert "no subcommand" in _check_call(tree, ["ci", "release"])
    assert "no subcommand" in _check_call(tree, ["ci", "--env", "dev"])
    assert "no option --base" in _check_call(tree, ["ci", "deploy", "--base", "x"])
    assert _calls('x="mlops-gitops-$(date)"\nmlops-gitops ci pr --base "$B" # note') == \
        [["ci", "pr", "--base", "$B"]]


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_matches_the_github_schema(folders, place, name):
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                             "vendor.github-workflows", str(folders[place] / name)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_calls_only_real_commands_and_options(folders, place, name):
    tree = _parser_tree()
    calls = [args for _, step in _steps(_load(folders[place] / name))
             for args in _calls(step.get("run", ""))]
    assert calls, "the workflow runs no mlops-gitops command"
    for args in calls:
        problem = _check_call(tree, args)
        assert problem is None, f"{place} {name}: {problem}"


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_is_pinned_bounded_and_least_privilege(folders, place, name):
    path = folders[place] / name
    text = path.read_text(encoding="utf-8")
    workflow = _load(path)
    assert workflow["permissions"] == {"contents": "read"}, "top-level permissions"
    for line in text.splitlines():
        if line.strip().startswith(("- uses:", "uses:")):
            ref, _, comment = line.split("uses:", 1)[1].partition("#")
            assert SHA_PIN.match(ref.strip()), f"not pinned by commit SHA: {line.strip()}"
            assert re.match(r"^ v\d+\.\d+\.\d+$", comment), f"no version comment: {line.strip()}"
    for job_name, job in workflow["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{job_name}: no timeout-minutes"
        assert "permissions" in job, f"{job_name}: no explicit permissions"
    for job_name, step in _steps(workflow):
        assert "${{" not in step.get("run", ""), f"{job_name}: expression inside run:"
        if step.get("uses", "").startswith("actions/checkout@"):
            persist = step.get("with", {}).get("persist-credentials")
            assert persist is False or (persist is True and "pushes" in text), \
                f"{job_name}: checkout keeps credentials without saying why"
    assert "zizmor: ignore" not in text


def test_this_repository_runs_the_scaffolded_workflows(folders):
    """The same files, except for how this repository installs itself and its example data."""
    for name in WORKFLOWS:
        scaffolded = (folders["scaffold"] / name).read_text(encoding="utf-8")
        ours = (folders["repository"] / name).read_text(encoding="utf-8")
        ours = ours.replace("python -m pip install -c constraints.txt -e '.[all]'",
                            "python -m pip install -r requirements.txt")
        ours = ours.replace("cache-dependency-path: |\n            pyproject.toml\n"
                            "            constraints.txt",
                            "cache-dependency-path: requirements.txt")
        ours = ours.replace("      - name: Example data (this repository's DVC remote is a local "
                            "folder)\n        run: python -m mlops_gitops.examples\n", "")
        assert ours == scaffolded, f"{name}: this repository's copy drifted from the scaffold's"


def _zizmor() -> str:
    """The zizmor binary (the `dev` extra installs it next to this interpreter)."""
    found = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    if found is None:
        pytest.fail("zizmor is not installed: pip install -c constraints.txt -e '.[dev]'")
    try:
        probe = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:  # e.g. a wheel for another platform: the binary cannot execute here
        print(f"zizmor cannot run on this platform: {exc}")
        pytest.skip(f"zizmor cannot run on this platform: {exc}")
    if probe.returncode != 0:
        print(f"zizmor cannot run on this platform: {probe.stderr.strip()}")
        pytest.skip(f"zizmor cannot run on this platform: {probe.stderr.strip()}")
    return found


@pytest.mark.parametrize("place", PLACES)
def test_zizmor_finds_nothing_offline(folders, place):
    files = [str(folders[place] / name) for name in WORKFLOWS]
    result = subprocess.run([_zizmor(), "--offline", "--format", "json", *files],
                            capture_output=True, text=True, timeout=120)
    findings = json.loads(result.stdout or "[]")
    described = [f"{f['ident']}: {f['desc']}" for f in findings]
    assert findings == [], "\n".join(described)
    assert result.returncode == 0, result.stderr


def test_pr_workflow_comments_once_by_the_report_marker_from_a_job_without_pr_code(folders):
    from mlops_gitops.report.github import MARKER

    for place in PLACES:
        path = folders[place] / "pr.yml"
        assert MARKER in path.read_text(encoding="utf-8")
        workflow = _load(path)
        assert workflow["concurrency"]["cancel-in-progress"] is True
        assert "pull_request.number" in workflow["concurrency"]["group"]
        jobs = workflow["jobs"]
        writers = {n for n, j in jobs.items()
                   if "write" in (j.get("permissions") or {}).values()}
        assert writers == {"comment"}
        assert jobs["comment"]["permissions"] == {"pull-requests": "write"}
        assert not any("checkout" in s.get("uses", "") for s in jobs["comment"]["steps"])
        step = next(s for s in jobs["pipeline"]["steps"] if "ci pr" in s.get("run", ""))
        assert step["env"] == {"BASE_REF": "${{ github.base_ref }}"}
        uses = [s.get("uses", "") for s in jobs["pipeline"]["steps"]]
        assert any(u.startswith("actions/cache@") for u in uses)
        setup = next(s for s in jobs["pipeline"]["steps"]
                     if s.get("uses", "").startswith("actions/setup-python@"))
        assert setup["with"]["cache"] == "pip"


def test_deploy_workflow_is_one_environment_at_a_time_with_a_checked_name(folders):
    for place in PLACES:
        workflow = _load(folders[place] / "deploy.yml")
        assert workflow["on"] == {"push": {"branches": ["env/**"]}}
        assert workflow["concurrency"]["cancel-in-progress"] is False
        assert "github.ref_name" in workflow["concurrency"]["group"]
        jobs = workflow["jobs"]
        assert jobs["deploy"]["environment"] == "${{ needs.environment.outputs.name }}"
        check = jobs["environment"]["steps"][0]["run"]
        assert "^[a-z0-9-]+$" in check and "GITHUB_REF_NAME" in check
        writers = {n for n, j in jobs.items() if "write" in (j.get("permissions") or {}).values()}
        assert writers == {"promote"}


@pytest.mark.parametrize("name", ["a", "dev", "team-2"])
def test_deploy_environment_check_accepts(folders, name):
    assert _environment_check(folders, f"env/{name}") == (0, f"name={name}")


@pytest.mark.parametrize("ref", ["env/Prod", "env/a b", "env/a;b", "env/$(id)", "env/", "main",
                                 "env/a/b"])
def test_deploy_environment_check_refuses(folders, ref):
    assert _environment_check(folders, ref)[0] != 0


def _environment_check(folders, ref: str) -> tuple[int, str]:
    """Run the deploy workflow's branch check the way the runner does (bash -e)."""
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    script = _load(folders["scaffold"] / "deploy.yml")["jobs"]["environment"]["steps"][0]["run"]
    with tempfile.NamedTemporaryFile("r", suffix=".out") as out:
        env = {"PATH": os.environ["PATH"], "GITHUB_REF_NAME": ref, "GITHUB_OUTPUT": out.name}
        done = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True,
                              text=True)
        first = out.read().splitlines()[:1]
    return done.returncode, first[0] if first else ""


def test_promote_workflow_only_goes_up_one_step(folders):
    for place in PLACES:
        workflow = _load(folders[place] / "promote.yml")
        inputs = workflow["on"]["workflow_dispatch"]["inputs"]
        assert inputs["from"]["options"] == ["dev", "test"]
        assert inputs["to"]["options"] == ["test", "prod"]
        job = workflow["jobs"]["promote"]
        assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
        check = job["steps"][0]["run"]
        for source, target, ok in [("dev", "test", 0), ("test", "prod", 0), ("dev", "prod", 1),
                                   ("test", "dev", 1), ("prod", "test", 1)]:
            done = subprocess.run(["bash", "-e", "-c", check], capture_output=True, text=True,
                                  env={"FROM_ENV": source, "TO_ENV": target})
            assert (done.returncode != 0) == bool(ok), (source, target, done.stdout)


def test_monitor_workflow_is_scheduled_and_calls_no_missing_command(folders):
    for place in PLACES:
        workflow = _load(folders[place] / "monitor.yml")
        assert "schedule" in workflow["on"] and "workflow_dispatch" in workflow["on"]
        runs = " ".join(s.get("run", "") for _, s in _steps(workflow))
        assert "mlops-gitops status" in runs
        assert 'mlops-gitops monitor --env "$ENV_NAME" --format markdown --propose >> ' \
            '"$GITHUB_STEP_SUMMARY"' in runs
        job = workflow["jobs"]["monitor"]
        assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
        assert job["strategy"]["max-parallel"] == 1  # one push of a retrain/MODEL at a time
        checkout = next(s for _, s in _steps(workflow) if s.get("uses", "").startswith(
            "actions/checkout@"))
        assert checkout["with"]["fetch-depth"] == 0  # main, and the training commits' dates
        steps = [s for _, s in _steps(workflow) if "--propose" in s.get("run", "")]
        assert len(steps) == 2  # drift and age; live quality
        for step in steps:
            assert step["if"] == "${{ !cancelled() }}" and "GH_TOKEN" in step["env"]


def test_monitor_workflow_checks_live_quality_when_labels_are_there(folders, tmp_path):
    """The feedback step's script, run with a stand-in mlops-gitops on PATH: no labels folder
    is a note and exit 0; labels there are checked (and an exit 2 fails the step)."""
    workflow = _load(folders["repository"] / "monitor.yml")
    [script] = [s["run"] for _, s in _steps(workflow) if "monitor feedback" in s.get("run", "")]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "mlops-gitops"
    fake.write_text('#!/bin/sh\necho "$@" > "$CALLS"\nexit "${FAKE_EXIT:-0}"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "ENV_NAME": "prod", "CALLS": str(tmp_path / "calls"),
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "no labels in .mlops/feedback/prod" in done.stdout
    assert not (tmp_path / "calls").exists()
    (tmp_path / ".mlops" / "feedback" / "prod").mkdir(parents=True)
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path,
                          env={**env, "FAKE_EXIT": "2"}, capture_output=True, text=True)
    assert done.returncode == 2
    assert (tmp_path / "calls").read_text().split() == [
        "monitor", "feedback", "--env", "prod", ".mlops/feedback/prod", "--format", "markdown",
        "--propose"]
