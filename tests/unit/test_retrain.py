"""The five retraining triggers and the proposal they end in, in real git repositories (tmp
folders), with no network: a fake ``gh`` on PATH and a local HTTP server standing in for the
GitHub REST API prove that a second trigger updates the open pull request instead of opening
another."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from mlops_gitops.identity import fingerprint
from mlops_gitops.spec.loader import load_file
from mlops_gitops.spec.project import load_project

from .support import call_cli, copy_example_project
from .test_monitor import manifest, sample, shifted, write_log

GIT = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.com"}
BRANCH = "retrain/iris-classifier"
SPEC = "specs/models/iris-classifier.yaml"


def git(root: Path, *args: str, env: dict | None = None) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT, **(env or {})}).stdout.strip()


def commit_all(root: Path, message: str = "example", env: dict | None = None) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message, env=env)
    return git(root, "rev-parse", "HEAD")


def no_traceback(result) -> None:
    assert "Traceback" not in result.output and "internal error" not in result.output


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    for name in ("GH_TOKEN", "GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_API_URL", "CI",
                 "GITHUB_ACTIONS", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    for key, value in GIT.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def repo(tmp_path) -> Path:
    """The example project as a git repository on 'main', with its data tracked by a .dvc
    pointer."""
    root = copy_example_project(tmp_path / "project")
    (root / ".gitignore").write_text(".mlops/\n")
    (root / "data").mkdir()
    (root / "data" / "iris.csv.dvc").write_text(
        "outs:\n- md5: 11111111111111111111111111111111\n  size: 10\n  path: iris.csv\n")
    git(root, "init", "-q", "-b", "main")
    commit_all(root)
    return root


def show(root: Path, ref: str, path: str = SPEC) -> str:
    return git(root, "show", f"{ref}:{path}")


def retrain(root: Path, *args: str):
    result = call_cli("retrain", *args, cwd=root)
    no_traceback(result)
    return result


def test_on_request_without_token_makes_a_branch_and_prints_the_command(repo):
    before = (repo / SPEC).read_text()
    result = retrain(repo, "iris-classifier", "--reason", "new labelled data from the field")
    assert result.returncode == 0, result.output
    assert f"gh pr create --base main --head {BRANCH}" in result.stdout
    assert "--body-file" in result.stdout
    spec = show(repo, BRANCH)
    assert 'retrain: {generation: 1, trigger: "request", reason: "new labelled data from the ' \
        'field"}' in spec
    # only the retrain line is added: comments and every other line are kept
    assert [line for line in spec.splitlines() if not line.lstrip().startswith("retrain:")] == \
        before.splitlines()
    assert (repo / SPEC).read_text() == before  # the checkout is not touched
    assert git(repo, "branch", "--show-current") == "main"
    assert git(repo, "rev-list", "--count", f"main..{BRANCH}") == "1"
    assert "Mlops-Gitops-Retrain: iris-classifier" in git(repo, "log", "-1", "--format=%B",
                                                          BRANCH)
    body = (repo / ".mlops" / "retrain" / "iris-classifier.md").read_text()
    assert "trigger: request" in body and "from 0 to 1" in body
    assert "`data/iris.csv` (md5 `11111111111111111111111111111111`)" in body


def _fingerprint_at(root: Path, ref: str, tmp_path: Path) -> str:
    path = tmp_path / f"{ref.replace('/', '-')}.yaml"
    path.write_text(show(root, ref))
    [model], problems = load_file(path, SPEC)
    assert not problems
    dataset = load_project(root).datasets["iris"]
    return fingerprint(model.spec, dataset, "11111111111111111111111111111111")


def test_the_proposal_changes_the_fingerprint_so_ci_pr_retrains(repo, tmp_path):
    assert retrain(repo, "iris-classifier", "--reason", "r").returncode == 0
    assert _fingerprint_at(repo, "main", tmp_path) != _fingerprint_at(repo, BRANCH, tmp_path)


def test_reason_and_schedule_fields_leave_the_fingerprint_alone(repo):
    project = load_project(repo)
    model, dataset = project.models["iris-classifier"], project.datasets["iris"]
    plain = fingerprint(model, dataset, "x")
    assert model.spec.retrain is None  # the example: fingerprints of old specs stand
    from mlops_gitops.spec.models import Retrain

    for fields, same in [({"max_age_days": 30}, True), ({"reason": "why", "trigger": "drift"},
                                                        True),
                         ({"generation": 0}, True), ({"generation": 2}, False)]:
        changed = model.model_copy(update={"spec": model.spec.model_copy(
            update={"retrain": Retrain(**fields)})})
        assert (fingerprint(changed, dataset, "x") == plain) is same, fields


def test_a_second_trigger_updates_the_same_branch_never_a_second_one(repo):
    assert retrain(repo, "iris-classifier", "--reason", "first").returncode == 0
    first = git(repo, "rev-parse", BRANCH)
    again = retrain(repo, "iris-classifier", "--reason", "second", "--trigger", "drift",
                    "--format", "json")
    assert again.returncode == 0, again.output
    proposal = json.loads(again.stdout)
    assert proposal["mode"] == "rebuilt" and proposal["generation"] == 1
    assert git(repo, "rev-parse", BRANCH) != first
    assert git(repo, "rev-list", "--count", f"main..{BRANCH}") == "1"
    assert 'trigger: "drift", reason: "second"' in show(repo, BRANCH)
    assert [b for b in git(repo, "branch", "--format=%(refname:short)").split()
            if b.startswith("retrain/")] == [BRANCH]
    same = json.loads(retrain(repo, "iris-classifier", "--reason", "second", "--trigger",
                              "drift", "--format", "json").stdout)
    assert same["mode"] == "unchanged" and same["commit"] == git(repo, "rev-parse", BRANCH)


def test_the_base_moving_on_rebuilds_from_the_newest_base(repo):
    assert retrain(repo, "iris-classifier", "--reason", "first").returncode == 0
    (repo / "data" / "iris.csv.dvc").write_text(
        "outs:\n- md5: 22222222222222222222222222222222\n  size: 10\n  path: iris.csv\n")
    commit_all(repo, "newer data")
    result = json.loads(retrain(repo, "iris-classifier", "--reason", "again", "--format",
                                "json").stdout)
    assert result["mode"] == "rebuilt" and "22222222222222222222222222222222" in result["data"]
    assert git(repo, "merge-base", BRANCH, "main") == git(repo, "rev-parse", "main")


def test_peoples_commits_on_the_proposal_are_kept(repo):
    assert retrain(repo, "iris-classifier", "--reason", "first").returncode == 0
    git(repo, "checkout", "-q", BRANCH)
    (repo / "data" / "iris.csv.dvc").write_text(
        "outs:\n- md5: 33333333333333333333333333333333\n  size: 10\n  path: iris.csv\n")
    mine = commit_all(repo, "add the newest data")
    git(repo, "checkout", "-q", "main")
    result = json.loads(retrain(repo, "iris-classifier", "--reason", "drift again", "--format",
                                "json").stdout)
    assert result["mode"] == "appended" and result["generation"] == 1
    assert git(repo, "rev-parse", f"{BRANCH}~1") == mine
    assert "33333333333333333333333333333333" in result["data"]
    assert "has `spec.retrain.generation` 1" in result["description"]
    same = json.loads(retrain(repo, "iris-classifier", "--reason", "drift again", "--format",
                              "json").stdout)
    assert same["mode"] == "unchanged" and same["commit"] == result["commit"]
    assert git(repo, "rev-list", "--count", f"main..{BRANCH}") == "3"


def test_a_merged_proposal_makes_the_next_one_bump_again(repo):
    assert retrain(repo, "iris-classifier", "--reason", "first").returncode == 0
    git(repo, "merge", "-q", "--ff-only", BRANCH)
    result = json.loads(retrain(repo, "iris-classifier", "--reason", "later", "--format",
                                "json").stdout)
    assert result["generation"] == 2 and "from 1 to 2" in result["description"]


def test_bad_input_is_one_message_and_exit_1(repo, tmp_path):
    cases = []
    cases.append((retrain(repo, "iris-clasifier", "--reason", "x"), "unknown model "
                  "'iris-clasifier'"))
    cases.append((retrain(repo, "iris-classifier"), "the following arguments are required: "
                  "--reason"))
    cases.append((retrain(repo, "iris-classifier", "--reason", "   "), "a reason is required"))
    cases.append((retrain(repo, "iris-classifier", "--reason", "x", "--base", "trunk"),
                  "base branch 'trunk' does not exist"))
    (repo / SPEC).write_text((repo / SPEC).read_text().replace("C: 1.0", "C: 0.5"))
    cases.append((retrain(repo, "iris-classifier", "--reason", "x"), "uncommitted changes"))
    git(repo, "checkout", "-q", "--", SPEC)
    git(repo, "checkout", "-q", "-b", BRANCH)
    (repo / "notes.txt").write_text("someone else's work\n")
    commit_all(repo, "unrelated")
    git(repo, "checkout", "-q", "main")
    cases.append((retrain(repo, "iris-classifier", "--reason", "x"), "already exists with "
                  "other content"))
    plain = copy_example_project(tmp_path / "plain")
    cases.append((retrain(plain, "iris-classifier", "--reason", "x"), "is not a git "
                  "repository"))
    for result, message in cases:
        no_traceback(result)
        assert result.returncode == 1 and message in result.stderr, (message, result.output)
    assert git(repo, "rev-list", "--count", f"main..{BRANCH}") == "1"  # left as it was


# --- the pull request: gh, then the REST API ------------------------------------------------------

@pytest.fixture
def origin(repo, tmp_path):
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "origin", "main")
    return bare


FAKE_GH = """#!{python}
import json, os, sys
state = os.environ["FAKE_GH_STATE"]
calls = json.load(open(state)) if os.path.exists(state) else []
calls.append(sys.argv[1:])
json.dump(calls, open(state, "w"))
args = sys.argv[1:]
opened = [c for c in calls[:-1] if c[:2] == ["pr", "create"]]
if args[:2] == ["pr", "list"]:
    print(json.dumps([{{"url": "https://github.test/o/r/pull/1"}}] if opened else []))
elif args[:2] == ["pr", "create"]:
    print("https://github.test/o/r/pull/1")
"""


def test_with_gh_the_pull_request_is_opened_then_updated(repo, origin, tmp_path, monkeypatch):
    state = fake_gh(tmp_path, monkeypatch)
    first = retrain(repo, "iris-classifier", "--reason", "first")
    assert first.returncode == 0, first.output
    assert "pull request: https://github.test/o/r/pull/1" in first.stdout
    pushed = git(origin, "rev-parse", BRANCH)
    second = retrain(repo, "iris-classifier", "--reason", "second", "--trigger", "quality")
    assert second.returncode == 0, second.output
    calls = json.loads(state.read_text())
    verbs = [c[:2] for c in calls]
    assert verbs == [["pr", "list"], ["pr", "create"], ["pr", "list"], ["pr", "edit"]]
    assert calls[1][calls[1].index("--head") + 1] == BRANCH
    assert calls[1][calls[1].index("--base") + 1] == "main"
    edit = calls[3]
    assert edit[2] == "https://github.test/o/r/pull/1"
    assert "trigger: quality" in edit[edit.index("--body") + 1]
    assert "**Reason:** second" in edit[edit.index("--body") + 1]
    assert git(origin, "rev-parse", BRANCH) != pushed  # force-updated, one commit on main
    assert git(origin, "rev-list", "--count", f"main..{BRANCH}") == "1"


class FakeGitHub(BaseHTTPRequestHandler):
    pulls: list = []
    calls: list = []

    def _answer(self, value) -> None:
        data = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

    def do_GET(self):  # noqa: N802
        self.calls.append(("GET", self.path, None, self.headers["Authorization"]))
        self._answer([p for p in self.pulls if p["state"] == "open"])

    def do_POST(self):  # noqa: N802
        body = self._body()
        self.calls.append(("POST", self.path, body, self.headers["Authorization"]))
        pull = {"number": len(self.pulls) + 1, "state": "open", **body,
                "html_url": f"https://github.test/o/r/pull/{len(self.pulls) + 1}"}
        self.pulls.append(pull)
        self._answer(pull)

    def do_PATCH(self):  # noqa: N802
        body = self._body()
        self.calls.append(("PATCH", self.path, body, self.headers["Authorization"]))
        number = int(self.path.rsplit("/", 1)[1])
        self.pulls[number - 1].update(body)
        self._answer(self.pulls[number - 1])

    def log_message(self, *args):
        pass


def test_with_the_rest_api_the_pull_request_is_opened_then_updated(repo, origin, monkeypatch):
    FakeGitHub.pulls, FakeGitHub.calls = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr("mlops_gitops.pipeline.promote.shutil",
                            SimpleNamespace(which=lambda name: None))  # no gh installed
        monkeypatch.setenv("GITHUB_TOKEN", "not-a-real-token")
        monkeypatch.setenv("GITHUB_REPOSITORY", "o/r")
        monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{server.server_port}")
        for reason in ("first", "second"):
            result = retrain(repo, "iris-classifier", "--reason", reason)
            assert result.returncode == 0, result.output
            assert "pull request: https://github.test/o/r/pull/1" in result.stdout
    finally:
        server.shutdown()
        server.server_close()
    methods = [(c[0], c[1].split("?")[0]) for c in FakeGitHub.calls]
    assert methods == [("GET", "/repos/o/r/pulls"), ("POST", "/repos/o/r/pulls"),
                       ("GET", "/repos/o/r/pulls"), ("PATCH", "/repos/o/r/pulls/1")]
    assert f"head=o:{BRANCH}" in FakeGitHub.calls[0][1] and "base=main" in FakeGitHub.calls[0][1]
    assert FakeGitHub.calls[1][2]["head"] == BRANCH
    assert len(FakeGitHub.pulls) == 1 and "**Reason:** second" in FakeGitHub.pulls[0]["body"]
    assert all(c[3] == "Bearer not-a-real-token" for c in FakeGitHub.calls)


# --- monitor: drift, schedule, quality ------------------------------------------------------------

@pytest.fixture
def deployed(repo, monkeypatch):
    """``repo`` with a fake local deployment of iris-classifier v1 in dev (as test_monitor's)."""
    from mlops_gitops.examples import write_example
    from mlops_gitops.monitor.reference import md5_of

    data = write_example("iris", repo / "data" / "iris.csv")
    md5 = md5_of(data.read_bytes())
    (repo / "data" / "iris.csv.dvc").write_text(
        f"outs:\n- md5: {md5}\n  size: {data.stat().st_size}\n  path: iris.csv\n")
    (repo / ".gitignore").write_text(".mlops/\ndata/iris.csv\n")
    commit_all(repo, "data")
    home = repo / ".mlops" / "bentoml"
    monkeypatch.setenv("BENTOML_HOME", str(home))
    source = home / "bentos" / "mlops-example-dev" / "abc123" / "src"
    source.mkdir(parents=True)
    (source / "served.json").write_text(json.dumps(manifest(md5)))
    services = repo / ".mlops" / "services" / "dev"
    services.mkdir(parents=True)
    (services / "deployment.json").write_text(json.dumps({
        "env": "dev", "target": "local", "bento": "mlops-example-dev:abc123",
        "versions": {"iris-classifier": 1}}))
    return repo


def test_on_drift_monitor_proposes_with_its_report(deployed):
    frame = shifted(400)
    write_log(deployed, frame, ["virginica"] * len(frame))
    result = call_cli("monitor", "--env", "dev", "--propose", cwd=deployed)
    no_traceback(result)
    assert result.returncode == 2, result.output
    assert f"retraining proposal for iris-classifier (drift): branch {BRANCH} created" in \
        result.stdout
    assert "gh pr create" in result.stdout
    spec = show(deployed, BRANCH)
    assert re.search(r'retrain: \{generation: 1, trigger: "drift", reason: "drift in dev: v1 '
                     r'drifted on [^"]*petal_length', spec)
    body = (deployed / ".mlops" / "retrain" / "iris-classifier.md").read_text()
    assert "<summary>Monitor report</summary>" in body and "| petal_length | psi |" in body
    assert "**the same data this branch names**" in body
    again = call_cli("monitor", "--env", "dev", "--propose", cwd=deployed)
    assert again.returncode == 2 and "unchanged" in again.stdout, again.output
    assert git(deployed, "rev-list", "--count", f"main..{BRANCH}") == "1"


def test_proposals_are_in_the_json_and_markdown_reports(deployed):
    frame = shifted(400)
    write_log(deployed, frame, ["virginica"] * len(frame))
    result = call_cli("monitor", "--env", "dev", "--propose", "--format", "json", cwd=deployed)
    assert result.returncode == 2, result.output
    report = json.loads(result.stdout)  # stdout is one JSON document, proposals included
    [proposal] = report["proposals"]
    assert proposal["branch"] == BRANCH and proposal["mode"] == "created"
    assert proposal["trigger"] == "drift" and proposal["commit"] == git(deployed, "rev-parse",
                                                                        BRANCH)
    assert "description" not in proposal and proposal["description_file"].endswith(
        "iris-classifier.md")
    assert f"branch {BRANCH} created" in result.stderr  # a line for the job's log
    result = call_cli("monitor", "--env", "dev", "--propose", "--format", "markdown",
                      cwd=deployed)
    assert result.returncode == 2, result.output
    assert "### Retraining proposals" in result.stdout
    assert f"branch `{BRANCH}` (no token: not pushed), unchanged" in result.stdout


def test_a_proposal_that_cannot_be_made_still_reports_then_exits_1(deployed):
    frame = shifted(400)
    write_log(deployed, frame, ["virginica"] * len(frame))
    git(deployed, "branch", BRANCH)  # someone's branch of that name, not a proposal
    (deployed / "NOTES.md").write_text("theirs\n")
    git(deployed, "checkout", "-q", BRANCH)
    commit_all(deployed, "their work")
    git(deployed, "checkout", "-q", "main")
    result = call_cli("monitor", "--env", "dev", "--propose", "--format", "json", cwd=deployed)
    no_traceback(result)
    assert result.returncode == 1, result.output
    assert json.loads(result.stdout)["verdict"] == "drift"  # the report is not lost
    assert json.loads(result.stdout)["proposals"] == []
    assert "already exists with other content" in result.stderr


def test_healthy_traffic_proposes_nothing(deployed):
    frame = sample(400)
    write_log(deployed, frame, frame["species"])
    result = call_cli("monitor", "--env", "dev", "--propose", cwd=deployed)
    assert result.returncode == 0, result.output
    assert "retraining proposal" not in result.output
    assert git(deployed, "branch", "--list", "retrain/*") == ""


def _old_training_commit(root: Path, days: int) -> str:
    """Re-point the fake bento's manifest at a training commit made ``days`` days ago."""
    when = f"{int(pd.Timestamp.now(tz='UTC').timestamp()) - days * 86400} +0000"
    (root / "NOTES.md").write_text("trained\n")
    sha = commit_all(root, "trained long ago", env={"GIT_COMMITTER_DATE": when,
                                                   "GIT_AUTHOR_DATE": when})
    path = root / ".mlops" / "bentoml" / "bentos" / "mlops-example-dev" / "abc123" / "src" / \
        "served.json"
    served = json.loads(path.read_text())
    served["models"][0]["commit"] = sha
    path.write_text(json.dumps(served))
    return sha


def set_env_monitoring(root: Path, text: str) -> None:
    path = root / "environments" / "dev.yaml"
    path.write_text(re.sub(r"  monitoring: .*", f"  monitoring: {text}", path.read_text()))


def test_on_schedule_a_too_old_version_is_proposed(deployed):
    set_env_monitoring(deployed, "{drift: {min_samples: 100}, max_model_age_days: 30}")
    commit_all(deployed, "max age")
    _old_training_commit(deployed, 45)
    frame = sample(400)
    write_log(deployed, frame, frame["species"])
    result = call_cli("monitor", "--env", "dev", "--format", "json", cwd=deployed)
    no_traceback(result)
    assert result.returncode == 2, result.output
    report = json.loads(result.stdout)
    assert report["verdict"] == "healthy" and report["exit_code"] == 2
    [age] = report["model_age"]
    assert age["overdue"] and 44.9 < age["age_days"] < 45.1 and age["max_age_days"] == 30
    prom = (deployed / ".mlops" / "monitor" / "dev" / "drift.prom").read_text()
    assert 'mlops_model_age_days{env="dev",model="iris-classifier",version="1"} 45' in prom
    from mlops_gitops.monitor.last import last_verdict

    assert "iris-classifier/1 trained 45 day(s) ago (max 30): retraining due" in \
        last_verdict(deployed, "dev").detail  # what status shows
    proposed = call_cli("monitor", "--env", "dev", "--propose", cwd=deployed)
    assert proposed.returncode == 2, proposed.output
    assert "TOO OLD" in proposed.stdout
    assert 'trigger: "schedule", reason: "v1 in dev was trained 45 day(s) ago' in \
        show(deployed, BRANCH)
    # a model's own maximum overrides the environment's
    spec = deployed / SPEC
    spec.write_text(spec.read_text().replace("  seed: 42", "  retrain: {max_age_days: 365}\n"
                                             "  seed: 42"))
    commit_all(deployed, "a model that ages slowly")
    relaxed = call_cli("monitor", "--env", "dev", cwd=deployed)
    assert relaxed.returncode == 0 and "max 365: ok" in relaxed.stdout, relaxed.output


def test_on_schedule_an_unknown_training_commit_is_a_warning(deployed):
    set_env_monitoring(deployed, "{drift: {min_samples: 100}, max_model_age_days: 30}")
    frame = sample(400)
    write_log(deployed, frame, frame["species"])
    result = call_cli("monitor", "--env", "dev", cwd=deployed)
    assert result.returncode == 0, result.output
    assert "age unknown (fetch the whole history: fetch-depth: 0)" in result.stdout


def test_on_degraded_quality_feedback_proposes(deployed, monkeypatch, tmp_path):
    recorded = {}
    monkeypatch.setattr("mlops_gitops.cli.monitor_commands.open_registry", lambda project, mode:
                        SimpleNamespace(set_version_tags=lambda n, v, t: recorded.update(t)))
    frame = sample(300)
    write_log(deployed, frame, frame["species"])
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": [f"r{i}" for i in range(300)],
                  "label": ["setosa"] * 300}).to_csv(labels, index=False)
    result = call_cli("monitor", "feedback", "--env", "dev", str(labels), "--propose",
                      cwd=deployed)
    no_traceback(result)
    assert result.returncode == 2, result.output
    assert recorded["mlops.health.dev"] == "degraded"
    assert f"retraining proposal for iris-classifier (quality): branch {BRANCH}" in result.stdout
    assert 'trigger: "quality", reason: "live quality in dev: v1 live accuracy' in \
        show(deployed, BRANCH)
    body = (deployed / ".mlops" / "retrain" / "iris-classifier.md").read_text()
    assert "accuracy" in body and "<summary>Monitor report</summary>" in body


def test_on_new_data_the_changed_md5_changes_the_fingerprint(repo):
    """The new-data trigger needs no command: a commit that changes a dataset's .dvc md5 gives
    every model on that dataset a new fingerprint, so its pull request's `ci pr` trains them."""
    project = load_project(repo)
    model, dataset = project.models["iris-classifier"], project.datasets["iris"]
    from mlops_gitops.data.versioning import data_version

    old = data_version(repo, "data/iris.csv").md5
    (repo / "data" / "iris.csv.dvc").write_text(
        "outs:\n- md5: 44444444444444444444444444444444\n  size: 10\n  path: iris.csv\n")
    new = data_version(repo, "data/iris.csv").md5
    assert old != new
    assert fingerprint(model, dataset, old) != fingerprint(model, dataset, new)


def dvc(root: Path, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, check=True,
                          capture_output=True, text=True,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1"}).stdout


@pytest.fixture
def imported(repo, tmp_path) -> tuple[Path, Path, Path]:
    """``repo`` whose iris data is a ``dvc import-url`` of a file outside it (where a data
    pipeline exports), with a local DVC remote; (repo, source file, remote folder)."""
    from mlops_gitops.examples import iris_frame

    source = tmp_path / "exports" / "iris.csv"
    source.parent.mkdir()
    iris_frame().head(120).to_csv(source, index=False)
    (repo / "data" / "iris.csv.dvc").unlink()
    dvc(repo, "init", "-q")
    dvc(repo, "remote", "add", "-d", "local", str(tmp_path / "remote"))
    dvc(repo, "import-url", "-q", str(source), "data/iris.csv")
    dvc(repo, "push", "-q")
    commit_all(repo, "iris imported from the exports")
    return repo, source, tmp_path / "remote"


def test_a_proposal_fetches_the_newest_version_of_imported_data(imported):
    """The 'newest data version' of an import is at its source: the proposal runs `dvc update`
    on its branch, commits the new md5 with the spec and pushes the data for CI to pull."""
    from mlops_gitops.data.versioning import data_version
    from mlops_gitops.examples import iris_frame

    repo, source, remote = imported
    old_md5 = data_version(repo, "data/iris.csv").md5
    iris_frame().to_csv(source, index=False)  # the export grew: 150 rows
    result = retrain(repo, "iris-classifier", "--reason", "new labelled rows")
    assert result.returncode == 0, result.output
    assert "dvc update data/iris.csv" in result.stderr
    pointer = show(repo, BRANCH, "data/iris.csv.dvc")
    new_md5 = hashlib.md5(source.read_bytes()).hexdigest()
    assert f"md5: {new_md5}" in pointer and new_md5 != old_md5
    assert (remote / "files" / "md5" / new_md5[:2] / new_md5[2:]).is_file()  # CI can pull it
    assert data_version(repo, "data/iris.csv").md5 == old_md5  # the checkout is untouched
    assert git(repo, "status", "--porcelain") == ""
    body = (repo / ".mlops" / "retrain" / "iris-classifier.md").read_text()
    assert f"md5 `{old_md5}` -> `{new_md5}`" in body and f"(md5 `{new_md5}`)" in body
    again = retrain(repo, "iris-classifier", "--reason", "new labelled rows")
    assert again.returncode == 0 and "unchanged" in again.stdout, again.output
    # once merged, nothing is newer at the source than what main names: the proposal says so
    git(repo, "merge", "-q", "--ff-only", BRANCH)
    later = retrain(repo, "iris-classifier", "--reason", "scheduled")
    assert later.returncode == 0, later.output
    assert show(repo, BRANCH, "data/iris.csv.dvc") == show(repo, "main", "data/iris.csv.dvc")
    assert "found no newer version" in (repo / ".mlops" / "retrain" /
                                        "iris-classifier.md").read_text()


def test_an_unreachable_import_source_still_proposes_on_the_recorded_data(imported):
    repo, source, _ = imported
    source.unlink()
    result = retrain(repo, "iris-classifier", "--reason", "drift", "--format", "json")
    assert result.returncode == 0, result.output
    proposal = json.loads(result.stdout)
    assert "'dvc update' failed" in proposal["data_update"]
    assert str(source) in proposal["data_update"] and "does not exist" in proposal["data_update"]
    assert show(repo, BRANCH, "data/iris.csv.dvc") == show(repo, "main", "data/iris.csv.dvc")
    assert "was not updated" in proposal["description"]


def test_a_block_retrain_with_a_schedule_is_rewritten_in_place(repo):
    spec = repo / SPEC
    spec.write_text(spec.read_text().replace(
        "  seed: 42", "  retrain:\n    max_age_days: 30   # monthly\n    generation: 4\n\n"
        "  seed: 42  # the seed"))
    commit_all(repo, "monthly")
    result = json.loads(retrain(repo, "iris-classifier", "--reason", 'say "why"\n twice',
                                "--format", "json").stdout)
    assert result["generation"] == 5
    text = show(repo, BRANCH)
    assert '  retrain: {max_age_days: 30.0, generation: 5, trigger: "request", reason: ' \
        '"say \\"why\\" twice"}\n\n  seed: 42  # the seed' in text
    [loaded], problems = load_file(repo / SPEC, SPEC)  # the checkout: still the block form
    assert not problems and loaded.spec.spec.retrain.generation == 4


def test_the_description_compares_the_served_data_with_the_branch():
    from mlops_gitops.pipeline.retrain import served_note

    assert "the same data this branch names" in served_note(("`m` v1 in `prod`", "a"), "a")
    assert "this branch trains on newer data" in served_note(("`m` v1 in `prod`", "a"), "b")
    assert served_note(None, "a") == ""


def test_a_model_in_a_file_of_several_documents(repo):
    dataset, model = repo / "specs" / "datasets" / "iris.yaml", repo / SPEC
    both = repo / "specs" / "models" / "both.yaml"
    both.write_text(dataset.read_text() + "---\n" + model.read_text())
    dataset.unlink()
    model.unlink()
    commit_all(repo, "one file")
    result = retrain(repo, "iris-classifier", "--reason", "x", "--format", "json")
    assert result.returncode == 0, result.output
    assert json.loads(result.stdout)["spec_file"] == "specs/models/both.yaml"
    text = show(repo, BRANCH, "specs/models/both.yaml")
    assert text.count("retrain: {generation: 1") == 1
    assert text.index("kind: Model") < text.index("retrain:")  # in the Model's spec


# --- review: never overwrite work on origin, amended proposals, hostile reasons ------------------

def fake_gh(tmp_path: Path, monkeypatch) -> Path:
    """A fake ``gh`` on PATH and a token; the file its calls are recorded in."""
    tools = tmp_path / "bin"
    tools.mkdir(exist_ok=True)
    gh = tools / "gh"
    gh.write_text(FAKE_GH.format(python=sys.executable))
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    state = tmp_path / "gh-calls.json"
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GH_STATE", str(state))
    monkeypatch.setenv("GH_TOKEN", "not-a-real-token")
    return state


def colleague_pushes(origin: Path, tmp_path: Path, name: str = "colleague") -> str:
    """A second clone commits newer data on the proposal branch and pushes it; its sha."""
    clone = tmp_path / name
    if not clone.exists():
        subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    git(clone, "fetch", "-q", "origin")
    git(clone, "checkout", "-q", "-B", BRANCH, f"origin/{BRANCH}")
    (clone / "data" / "iris.csv.dvc").write_text(
        "outs:\n- md5: 55555555555555555555555555555555\n  size: 10\n  path: iris.csv\n")
    sha = commit_all(clone, f"{name}: newer data")
    git(clone, "push", "-q", "origin", BRANCH)
    return sha


def test_a_colleagues_commit_on_origin_is_kept_not_force_pushed_away(repo, origin, tmp_path,
                                                                     monkeypatch):
    fake_gh(tmp_path, monkeypatch)
    assert retrain(repo, "iris-classifier", "--reason", "first").returncode == 0
    theirs = colleague_pushes(origin, tmp_path)
    git(repo, "fetch", "-q", "origin")  # the local branch is stale, origin's is newer
    result = retrain(repo, "iris-classifier", "--reason", "x", "--format", "json")
    assert result.returncode == 0, result.output
    proposal = json.loads(result.stdout)
    assert proposal["mode"] == "appended"
    assert "55555555555555555555555555555555" in proposal["data"]
    assert git(origin, "rev-parse", f"{BRANCH}~1") == theirs  # their commit is kept
    assert git(origin, "rev-parse", BRANCH) == git(repo, "rev-parse", BRANCH) == \
        proposal["commit"]


def test_diverged_local_and_origin_branches_are_refused_and_left_alone(repo, origin, tmp_path,
                                                                     monkeypatch):
    fake_gh(tmp_path, monkeypatch)
    assert retrain(repo, "iris-classifier", "--reason", "first").returncode == 0
    colleague_pushes(origin, tmp_path)
    git(repo, "fetch", "-q", "origin")
    git(repo, "checkout", "-q", BRANCH)
    (repo / "notes.txt").write_text("my own work, not pushed yet\n")
    mine = commit_all(repo, "mine")
    git(repo, "checkout", "-q", "main")
    theirs = git(origin, "rev-parse", BRANCH)
    result = retrain(repo, "iris-classifier", "--reason", "x")
    assert result.returncode == 1, result.output
    assert "retrain:" in result.stderr and "diverged" in result.stderr
    assert f"git pull origin {BRANCH}" in result.stderr
    assert git(repo, "rev-parse", BRANCH) == mine and git(origin, "rev-parse", BRANCH) == theirs


def test_my_unpushed_commit_on_the_branch_is_appended_to_and_pushed(repo, origin, tmp_path,
                                                                   monkeypatch):
    fake_gh(tmp_path, monkeypatch)
    assert retrain(repo, "iris-classifier", "--reason", "first").returncode == 0
    git(repo, "checkout", "-q", BRANCH)
    (repo / "notes.txt").write_text("my own work\n")
    mine = commit_all(repo, "mine")
    git(repo, "checkout", "-q", "main")
    result = retrain(repo, "iris-classifier", "--reason", "x", "--format", "json")
    assert result.returncode == 0, result.output
    assert json.loads(result.stdout)["mode"] == "appended"
    assert git(origin, "rev-parse", f"{BRANCH}~1") == mine


def test_a_push_to_origin_after_the_branch_was_examined_is_never_overwritten(repo, origin,
                                                                            tmp_path,
                                                                            monkeypatch):
    """The lease is the sha that was examined, not whatever the remote-tracking ref says at push
    time (a background fetch may have moved it over a colleague's commit)."""
    from mlops_gitops.diagnostics import DiagnosticError
    from mlops_gitops.pipeline.retrain import propose

    fake_gh(tmp_path, monkeypatch)
    assert retrain(repo, "iris-classifier", "--reason", "first").returncode == 0
    raced = {}

    def meanwhile(message: str) -> None:
        if message.startswith("pushing") and not raced:
            raced["sha"] = colleague_pushes(origin, tmp_path)
            git(repo, "fetch", "-q", "origin")  # e.g. an editor's background fetch

    with pytest.raises(DiagnosticError) as caught:
        propose(repo, "iris-classifier", "request", "again", progress=meanwhile, open_pr=True)
    problem = caught.value.diagnostics[0]
    assert problem.file == "retrain" and "changed on origin" in problem.message
    assert git(origin, "rev-parse", BRANCH) == raced["sha"]


def test_a_push_that_was_never_fetched_is_not_overwritten(repo, origin, tmp_path, monkeypatch):
    fake_gh(tmp_path, monkeypatch)
    assert retrain(repo, "iris-classifier", "--reason", "first").returncode == 0
    theirs = colleague_pushes(origin, tmp_path)  # this clone has not fetched it
    result = retrain(repo, "iris-classifier", "--reason", "x")
    assert result.returncode == 1, result.output
    assert "changed on origin" in result.stderr and "git fetch" in result.stderr
    assert git(origin, "rev-parse", BRANCH) == theirs


def test_an_amended_proposal_commit_is_peoples_work(repo):
    assert retrain(repo, "iris-classifier", "--reason", "first").returncode == 0
    git(repo, "checkout", "-q", BRANCH)
    (repo / "data" / "extra-data.txt").write_text("more rows\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--amend", "--no-edit")
    amended = git(repo, "rev-parse", BRANCH)
    git(repo, "checkout", "-q", "main")
    result = json.loads(retrain(repo, "iris-classifier", "--reason", "again", "--format",
                                "json").stdout)
    assert result["mode"] == "appended"
    assert git(repo, "rev-parse", f"{BRANCH}~1") == amended
    assert show(repo, BRANCH, "data/extra-data.txt") == "more rows"


def test_an_amended_spec_edit_in_the_proposal_commit_is_kept(repo):
    assert retrain(repo, "iris-classifier", "--reason", "first").returncode == 0
    git(repo, "checkout", "-q", BRANCH)
    (repo / SPEC).write_text((repo / SPEC).read_text().replace("C: 1.0", "C: 0.5"))
    git(repo, "commit", "-q", "-a", "--amend", "--no-edit")
    git(repo, "checkout", "-q", "main")
    result = json.loads(retrain(repo, "iris-classifier", "--reason", "again", "--format",
                                "json").stdout)
    assert result["mode"] == "appended"
    assert "C: 0.5" in show(repo, BRANCH)


@pytest.mark.parametrize("given, kept", [
    ("bad \udcff", "bad"),  # a byte that is not UTF-8 in argv (surrogate-escaped)
    ("x\x7fy", "xy"),  # DEL
    ("a\x9bb", "ab"),  # a C1 control (CSI)
    ("\x1b[31mred\x1b[0m", "[31mred[0m"),  # a terminal escape
    ("a\x01b", "ab"),
    ("safe \u202etxt.exe", "safe txt.exe"),  # a bidi override
    ("zero\u200bwidth", "zerowidth"),  # format characters
    ("private \ue000 use", "private use"),
    ("unassigned \uffff", "unassigned"),
    ("tab\tand\nnewline", "tab and newline"),  # whitespace still becomes one space
])
def test_control_and_invisible_characters_are_dropped_from_the_reason(given, kept):
    from mlops_gitops.pipeline.retrain import clean_reason

    assert clean_reason(given) == kept


@pytest.mark.parametrize("given", ["bad \udcff", "x\x7fy", "a\x9bb", "\x1b]0;title\x07ok",
                                   "\u202edrift"])
def test_a_hostile_reason_makes_a_clean_proposal(repo, given):
    result = retrain(repo, "iris-classifier", "--reason", given)
    assert result.returncode == 0, result.output
    message = git(repo, "log", "-1", "--format=%B", BRANCH)
    body = (repo / ".mlops" / "retrain" / "iris-classifier.md").read_text()
    for text in (show(repo, BRANCH), message, body, result.stdout, result.stderr):
        assert not any(ch in text for ch in "\x7f\x9b\x1b\x07\u202e\udcff"), repr(text)


def test_a_reason_of_control_characters_only_is_no_reason(repo):
    result = retrain(repo, "iris-classifier", "--reason", "\x01\u202e\x1b")
    assert result.returncode == 1 and "a reason is required" in result.stderr, result.output


def test_without_github_repository_nothing_is_pushed_and_retrain_says_so(repo, origin,
                                                                       monkeypatch):
    monkeypatch.setattr("mlops_gitops.pipeline.promote.shutil",
                        SimpleNamespace(which=lambda name: None))  # no gh installed
    monkeypatch.setenv("GITHUB_TOKEN", "not-a-real-token")
    result = retrain(repo, "iris-classifier", "--reason", "x")
    assert result.returncode == 1, result.output
    assert "GITHUB_REPOSITORY" in result.stderr
    assert "retrain:" in result.stderr and "ci promote" not in result.stderr
    assert subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{BRANCH}"],
                          cwd=origin).returncode != 0  # checked before anything was pushed


def test_without_an_origin_remote_retrain_says_so(repo, tmp_path, monkeypatch):
    fake_gh(tmp_path, monkeypatch)
    result = retrain(repo, "iris-classifier", "--reason", "x")
    assert result.returncode == 1, result.output
    assert "retrain:" in result.stderr and "origin" in result.stderr


def test_a_failed_dvc_push_keeps_dvcs_message_and_the_credential_hint(tmp_path, monkeypatch):
    from mlops_gitops.data import versioning

    pointer = tmp_path / "data" / "iris.csv.dvc"
    pointer.parent.mkdir()
    pointer.write_text("outs:\n- md5: 11111111111111111111111111111111\n  path: iris.csv\n")
    seen = []

    def fake_dvc(root, *args, timeout=None):
        seen.append(args)
        if args[0] == "update":
            pointer.write_text("outs:\n- md5: 22222222222222222222222222222222\n  path: "
                               "iris.csv\n")
            return subprocess.CompletedProcess(args, 0, "", "")
        return subprocess.CompletedProcess(args, 1, "", "ERROR: failed to push data to the "
                                           "cloud - Unable to locate credentials\n")

    monkeypatch.setattr(versioning, "run_dvc", fake_dvc)
    monkeypatch.setattr(versioning, "default_remote", lambda root: "s3://bucket/dvc")
    update = versioning.update_import(tmp_path, "data/iris.csv")
    assert update.after == "22222222222222222222222222222222"
    assert "Unable to locate credentials" in update.problem
    assert "AWS_ACCESS_KEY_ID" in update.problem
    assert all("--quiet" not in args for args in seen)
