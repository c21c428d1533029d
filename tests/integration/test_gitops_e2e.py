"""The whole GitOps story in a real git repository, with the session's real mlflow server and
real `bentoml serve` processes, calling the commands the workflows call:

pull request -> `ci pr` -> merge to main -> merge into env/dev -> `ci deploy --env dev` ->
`ci promote` dev to test -> merge -> `ci deploy --env test` -> the same to prod; then a worse
model: `ci pr` refuses it, forced onto env/prod `ci deploy` refuses it and prod keeps serving;
then a rollback by `git revert` on env/prod.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from .conftest import cli, free_port, make_example_repo, run, use_server

pytestmark = pytest.mark.integration

ENVS = ("dev", "test", "prod")
IRIS = {"sepal_length": 6.3, "sepal_width": 2.8, "petal_length": 5.1, "petal_width": 1.5}
MODEL = "gitops-iris-classifier"


def git(repo: Path, *args: str) -> str:
    return run(repo, "git", *args).stdout.strip()


def served_version(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/predict", body=json.dumps({"model": MODEL,
                                                            "instances": [IRIS]}))
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 200, body
    return body["version"]


def ci(repo: Path, *args: str, expect: int = 0):
    result = cli(repo, "ci", *args)
    assert result.returncode == expect, (f"ci {' '.join(args)} exited {result.returncode}\n"
                                         f"{result.stdout}\n{result.stderr}")
    return result


def set_c(repo: Path, value: str) -> None:
    path = repo / "specs" / "models" / "iris-classifier.yaml"
    text = path.read_text()
    start = text.index("C: ") + 3
    path.write_text(text[:start] + value + text[text.index(",", start):])


def pull_request(repo: Path, branch: str, c: str, expect: int) -> str:
    """A pull request off main that changes a hyperparameter; `ci pr` on it; its report."""
    git(repo, "checkout", "-q", "-b", branch, "main")
    set_c(repo, c)
    git(repo, "commit", "-qam", f"iris: C={c}")
    result = ci(repo, "pr", "--base", "main", "--report", "report.md", expect=expect)
    report = (repo / "report.md").read_text()
    (repo / "report.md").unlink()
    assert "<!-- mlops-gitops:report -->" in report
    return result.stdout + report


def deploy(repo: Path, env: str, expect: int = 0):
    git(repo, "checkout", "-q", f"env/{env}")
    return ci(repo, "deploy", "--env", env, expect=expect)


def promote(repo: Path, source: str, target: str) -> None:
    """`ci promote`, then the pull request it prepared is merged."""
    result = ci(repo, "promote", "--from", source, "--to", target, "--format", "json")
    promotion = json.loads(result.stdout)
    assert promotion["branch"] == f"promote/{source}-to-{target}"
    git(repo, "checkout", "-q", f"env/{target}")
    git(repo, "merge", "-q", "--ff-only", promotion["branch"])
    return promotion


def release_to_prod(repo: Path, ports: dict[str, int], version: str) -> str:
    """main -> env/dev -> env/test -> env/prod, each deployed; returns env/prod's commit."""
    git(repo, "checkout", "-q", "env/dev")
    git(repo, "merge", "-q", "--no-ff", "--no-edit", "main")
    deploy(repo, "dev")
    assert served_version(ports["dev"]) == version
    promotion = promote(repo, "dev", "test")
    if promotion["changed"]:  # (the first time, every branch starts at the same commit)
        moves = {m["model"]: m for m in promotion["moves"]}
        assert moves[MODEL]["proposed"] == int(version), promotion
        assert moves[MODEL]["health"] == "healthy" and moves[MODEL]["tests"] == "passed"
        assert f"| {MODEL} |" in promotion["description"]
    deploy(repo, "test")
    assert served_version(ports["test"]) == version
    promote(repo, "test", "prod")
    merge = git(repo, "rev-parse", "HEAD")
    deploy(repo, "prod")
    assert served_version(ports["prod"]) == version
    return merge


def test_pull_request_to_prod_refusal_and_rollback(tmp_path_factory, mlflow_server):
    repo = make_example_repo(tmp_path_factory.mktemp("gitops"))
    use_server(repo, mlflow_server, "gitops")
    ports = {env: free_port() for env in ENVS}
    for env, port in ports.items():
        path = repo / "environments" / f"{env}.yaml"
        text = path.read_text()
        start = text.index("port: ") + 6
        end = start + len(text[start:].split(",")[0].split("}")[0])
        path.write_text(text[:start] + str(port) + text[end:])
    (repo / ".gitignore").write_text(".mlops/\nreport.md\n")
    git(repo, "commit", "-qam", "ports for this test")
    for env in ENVS:
        git(repo, "branch", f"env/{env}")
    try:
        # The first model goes all the way to prod.
        first = ci(repo, "pr", "--base", "main")
        assert "[ok  ] compare" in first.stdout
        release_to_prod(repo, ports, "1")

        # A data scientist tunes a hyperparameter in a pull request.
        report = pull_request(repo, "tune", "0.5", expect=0)
        assert "blessed" in report and "not blessed" not in report
        git(repo, "checkout", "-q", "main")
        git(repo, "merge", "-q", "--no-ff", "--no-edit", "tune")
        good_promotion = release_to_prod(repo, ports, "2")
        status = json.loads(cli(repo, "status", "--env", "prod", "--format", "json").stdout)
        assert {(r["sync"], r["health"], r["service"]["health"]) for r in status} == \
            {("Synced", "Healthy", "Healthy")}

        # A clearly worse model: the pull request says so and fails.
        report = pull_request(repo, "worse", "0.2", expect=1)
        assert "not blessed" in report
        # Forced through to env/prod anyway: the deploy refuses, prod keeps serving version 2.
        git(repo, "checkout", "-q", "env/prod")
        git(repo, "merge", "-q", "--no-ff", "--no-edit", "worse")
        refused = deploy(repo, "prod", expect=1)
        assert "[FAIL] gates prod" in refused.stdout
        assert "not blessed" in refused.stdout
        assert "has not been deployed and smoke-tested in 'test'" in refused.stdout
        assert served_version(ports["prod"]) == "2"

        # Rollback: revert the forced merge, then the last good promotion.
        git(repo, "revert", "--no-edit", "-m", "1", "HEAD")
        deploy(repo, "prod")
        assert served_version(ports["prod"]) == "2"
        git(repo, "revert", "--no-edit", "-m", "1", good_promotion)
        rolled_back = deploy(repo, "prod")
        assert served_version(ports["prod"]) == "1", rolled_back.stdout
        history = cli(repo, "status", "--env", "prod", "--format", "json")
        assert {r["live_version"] for r in json.loads(history.stdout)
                if r["model"] == MODEL} == {1}

        # Two deploys of one environment never overlap: the second names the holder.
        from mlops_gitops.reconcile.apply import Lock
        from mlops_gitops.registry.mlflow import MlflowRegistry
        from mlops_gitops.tracking import resolve_tracking

        registry = MlflowRegistry(resolve_tracking(repo, mlflow_server))
        with Lock(registry, "gitops", "prod") as held:
            busy = cli(repo, "ci", "deploy", "--env", "prod", "--lock-timeout", "1")
        assert busy.returncode == 1 and "[FAIL] registry" in busy.stdout
        assert f"lock id {held.id}" in busy.stdout
        assert served_version(ports["prod"]) == "1"
    finally:
        for env in ENVS:
            cli(repo, "undeploy", "--env", env)
