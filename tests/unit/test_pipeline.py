"""The pipeline commands' bad paths, without servers: each ends with one clear message naming
the gate or setting, exit 1, and nothing deployed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mlops_gitops.pipeline.promote import Move, describe
from tests.unit.support import copy_example_project, run_cli

GIT = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.com"}


def clean(result) -> None:
    assert "Traceback" not in result.output and "internal error" not in result.output


@pytest.fixture(autouse=True)
def own_tracking(monkeypatch):
    """The project's own tracking settings, outside CI: in-process MLflow use elsewhere in the
    session exports MLFLOW_TRACKING_URI, and the CI that runs this suite sets CI=true (which
    refuses deploys from a scratch registry); the commands run here would inherit both."""
    for name in ("MLFLOW_TRACKING_URI", "CI", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path) -> Path:
    return copy_example_project(tmp_path / "project")


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={**os.environ, **GIT})


def test_ci_deploy_refuses_specs_with_errors(project):
    model = project / "specs" / "models" / "iris-classifier.yaml"
    model.write_text(model.read_text().replace("seed: 42", "seed: [42"))
    result = run_cli("ci", "deploy", "--env", "dev", cwd=project)
    clean(result)
    assert result.returncode == 1 and "[FAIL] lint" in result.stdout
    assert "iris-classifier.yaml" in result.stdout


def test_ci_deploy_names_an_unknown_environment(project):
    result = run_cli("ci", "deploy", "--env", "staging", cwd=project)
    clean(result)
    assert result.returncode == 1 and "unknown environment 'staging'" in result.stdout


def test_ci_deploy_refuses_data_that_breaks_its_contract(project):
    from mlops_gitops.examples import write_example

    data = write_example("iris", project / "data" / "iris.csv")
    data.write_text(data.read_text().replace("setosa", "setosaa", 1))
    result = run_cli("ci", "deploy", "--env", "dev", cwd=project)
    clean(result)
    assert result.returncode == 1 and "[FAIL] data validate" in result.stdout


def test_ci_deploy_with_an_unreachable_registry_says_which(project):
    from mlops_gitops.examples import write_example

    write_example("iris", project / "data" / "iris.csv")
    write_example("diabetes", project / "data" / "diabetes.csv")
    config = project / "mlops-gitops.yaml"
    config.write_text(config.read_text().replace("tracking_uri: null",
                                                 "tracking_uri: http://127.0.0.1:9"))
    result = run_cli("ci", "deploy", "--env", "dev", cwd=project)
    clean(result)
    assert result.returncode == 1 and "[FAIL] registry" in result.stdout
    assert "cannot reach the MLflow tracking server at http://127.0.0.1:9" in result.stdout


def test_under_ci_a_scratch_registry_is_refused_for_deploy_and_flagged_for_pr(project,
                                                                               monkeypatch):
    from mlops_gitops.pipeline.pr import registry_step
    from mlops_gitops.spec.project import load_project

    monkeypatch.setenv("CI", "true")
    loaded = load_project(project)
    refused = registry_step(loaded, "deploy")
    assert not refused.ok and "embedded_registry_in_ci" in refused.details[1]
    flagged = registry_step(loaded, "pr")
    assert flagged.ok and "SCRATCH" in flagged.summary
    config = project / "mlops-gitops.yaml"
    config.write_text(config.read_text() + "  embedded_registry_in_ci: true\n")
    assert registry_step(load_project(project), "deploy").ok
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert registry_step(load_project(project), "deploy") is None
    monkeypatch.delenv("CI")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert registry_step(load_project(project), "deploy") is None


def test_ci_promote_checks_the_promotion_order_and_branches(project):
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "example")
    wrong = run_cli("ci", "promote", "--from", "dev", "--to", "prod", cwd=project)
    clean(wrong)
    assert wrong.returncode == 1 and "'prod' promotes from 'test', not from 'dev'" in wrong.stderr
    missing = run_cli("ci", "promote", "--from", "dev", "--to", "test", cwd=project)
    clean(missing)
    assert missing.returncode == 1 and "branch 'env/test' does not exist" in missing.stderr
    assert "init --branches" in missing.stderr


def test_ci_promote_prepares_a_branch_without_touching_the_checkout(project):
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "example")
    git(project, "branch", "env/test")
    git(project, "checkout", "-q", "-b", "env/dev")
    (project / "specs" / "models" / "iris-classifier.yaml").write_text(
        (project / "specs" / "models" / "iris-classifier.yaml").read_text()
        .replace("C: 1.0", "C: 0.5"))
    git(project, "commit", "-qam", "tune")
    result = run_cli("ci", "promote", "--from", "dev", "--to", "test", "--format", "json",
                     cwd=project)
    clean(result)
    assert result.returncode == 0, result.output
    promotion = json.loads(result.stdout)
    assert promotion["branch"] == "promote/dev-to-test" and promotion["changed"]
    shown = subprocess.run(["git", "show", "promote/dev-to-test:specs/models/iris-classifier.yaml"],
                           cwd=project, capture_output=True, text=True).stdout
    assert "C: 0.5" in shown
    head = subprocess.run(["git", "branch", "--show-current"], cwd=project,
                          capture_output=True, text=True).stdout.strip()
    assert head == "env/dev"
    again = run_cli("ci", "promote", "--from", "dev", "--to", "test", "--open-pr", cwd=project)
    clean(again)
    assert again.returncode == 1 and "GH_TOKEN or GITHUB_TOKEN" in again.stderr


def test_promotion_description_says_what_moves():
    text = describe("test", "prod", "env/test", "env/prod", [
        Move("iris", 1, 2, "passed", "blessed", "healthy"),
        Move("diabetes", 3, 3, "passed", "blessed", "healthy"),
        Move("new-model", None, None)], [])
    assert "| iris | 1 | 2 | passed | blessed | healthy |" in text
    assert "| diabetes | 3 | 3 (unchanged) |" in text
    assert "| new-model | none | needs training |" in text
