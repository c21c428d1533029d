"""``make demo``: the GitOps story played on a copy of the example project.

A scratch git repository under ``.mlops/demo/`` (its own embedded registry, DVC remote and
services on free ports) goes through what a team does, calling the commands the workflows call:
the first model released to prod; a pull request that tunes a hyperparameter, merged and
promoted through dev, test and prod; a worse model that the pull request and the prod deploy
both refuse; a rollback by ``git revert``; prod's traffic monitored, a shift in it detected and a
retraining proposed. Each step prints the command, its outcome, what each environment serves and
the time; a table of the environments ends it, and the services stop.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ENVS = ("dev", "test", "prod")
MODEL = "iris-classifier"
IRIS = {"sepal_length": 6.3, "sepal_width": 2.8, "petal_length": 5.1, "petal_width": 1.5}


class StoryFailed(Exception):
    pass


class Story:
    def __init__(self, source: Path, folder: Path):
        self.source = source
        self.folder = folder
        self.repo = folder / "repo"
        self.ports: dict[str, int] = {}
        self.env = {**os.environ, "GIT_AUTHOR_NAME": "demo",
                    "GIT_AUTHOR_EMAIL": "demo@example.com",
                    "GIT_COMMITTER_NAME": "demo", "GIT_COMMITTER_EMAIL": "demo@example.com",
                    "DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
                    "BENTOML_DO_NOT_TRACK": "true"}
        for variable in ("MLFLOW_TRACKING_URI", "BENTOML_HOME"):
            self.env.pop(variable, None)

    # --- running things --------------------------------------------------------------------

    def sh(self, *cmd: str, expect: int = 0) -> subprocess.CompletedProcess:
        done = subprocess.run(cmd, cwd=self.repo, env=self.env, capture_output=True, text=True)
        if done.returncode != expect:
            raise StoryFailed(f"{' '.join(cmd)} exited {done.returncode} (expected {expect}):\n"
                              f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def git(self, *args: str) -> str:
        return self.sh("git", *args).stdout.strip()

    def step(self, title: str, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
        """One command of the story, printed with its outcome, what is served, and its time."""
        start = time.monotonic()
        print(f"\n$ mlops-gitops {' '.join(args)}    # {title}", flush=True)
        done = self.sh(sys.executable, "-m", "mlops_gitops", *args, expect=expect)
        lines, failing = [], False
        for line in done.stdout.splitlines():
            if line.startswith("["):
                failing = line.startswith("[FAIL]")
                lines.append(line)
            elif failing and line.strip():
                lines.append(line)  # why a step refused
        for line in lines or done.stdout.splitlines()[:12]:
            print(f"  {line}")
        outcome = "ok" if done.returncode == 0 else f"refused (exit {done.returncode}), as expected"
        print(f"  -> {outcome} in {time.monotonic() - start:.1f} s; serving: {self.serving()}",
              flush=True)
        return done

    def traffic(self, env: str, shift: float, requests: int = 12, rows: int = 50) -> None:
        """Requests of the example data's rows to an environment, the iris petals lengthened
        by ``shift`` cm."""
        import csv
        import random

        pick = random.Random(7)
        for model, data, target in (("iris-classifier", "iris.csv", "species"),
                                    ("diabetes-regressor", "diabetes.csv", "progression")):
            with (self.repo / "data" / data).open() as handle:
                table = [{k: float(v) for k, v in row.items() if k != target}
                         for row in csv.DictReader(handle)]
            for _ in range(requests):
                instances = [dict(row) for row in pick.choices(table, k=rows)]
                if model == MODEL:
                    for row in instances:
                        row["petal_length"] += shift
                        row["petal_width"] += shift / 2
                body = json.dumps({"model": model, "instances": instances}).encode()
                urllib.request.urlopen(urllib.request.Request(
                    f"http://127.0.0.1:{self.ports[env]}/predict", data=body, method="POST"),
                    timeout=30).read()
        time.sleep(1.0)  # the inference log is written in batches, 5 times a second
        print(f"\n(sent {requests * rows} predictions of each model to {env}"
              f"{f', iris petals {shift:+.1f} cm' if shift else ', like the training data'})",
              flush=True)

    def served(self, env: str) -> str | None:
        body = json.dumps({"model": MODEL, "instances": [IRIS]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.ports[env]}/predict",
                                         data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())["version"]
        except (OSError, ValueError, KeyError):
            return None

    def serving(self) -> str:
        return ", ".join(f"{env} v{self.served(env) or '-'}" for env in ENVS)

    # --- the repository --------------------------------------------------------------------

    def setup(self) -> None:
        from mlops_gitops.examples import write_example

        if self.folder.exists():
            self.stop_services()
            shutil.rmtree(self.folder)
        self.repo.mkdir(parents=True)
        for name in ("specs", "policies", "environments"):
            shutil.copytree(self.source / name, self.repo / name)
        config = (self.source / "mlops-gitops.yaml").read_text()
        (self.repo / "mlops-gitops.yaml").write_text(
            config.replace("name: example", "name: demo")
            + "  embedded_registry_in_ci: true   # the demo's registry is a scratch one\n")
        (self.repo / ".gitignore").write_text(".mlops/\nreport.md\n")
        for env in ENVS:
            self.ports[env] = _free_port()
            path = self.repo / "environments" / f"{env}.yaml"
            text = path.read_text()
            start = text.index("port: ") + 6
            end = start + len(text[start:].split(",")[0].split("}")[0])
            path.write_text(text[:start] + str(self.ports[env]) + text[end:])
        write_example("iris", self.repo / "data" / "iris.csv")
        write_example("diabetes", self.repo / "data" / "diabetes.csv")
        self.git("init", "-q", "-b", "main")
        dvc = (sys.executable, "-m", "dvc")
        self.sh(*dvc, "init", "-q")
        self.sh(*dvc, "remote", "add", "-d", "local", str(self.folder / "dvc-remote"))
        self.sh(*dvc, "add", "-q", "data/iris.csv", "data/diabetes.csv")
        self.sh(*dvc, "push", "-q")
        self.git("add", "-A")
        self.git("commit", "-qm", "The example project")
        for env in ENVS:
            self.git("branch", f"env/{env}")
        print(f"A scratch GitOps repository: {self.repo}")
        print("branches main, env/dev, env/test, env/prod; services on "
              + ", ".join(f"{env} :{port}" for env, port in self.ports.items()))

    def set_c(self, value: str) -> None:
        path = self.repo / "specs" / "models" / "iris-classifier.yaml"
        text = path.read_text()
        start = text.index("C: ") + 3
        path.write_text(text[:start] + value + text[text.index(",", start):])

    def merge(self, branch: str, into: str, how: str = "--no-ff") -> str:
        self.git("checkout", "-q", into)
        self.git("merge", "-q", how, *(("--no-edit",) if how == "--no-ff" else ()), branch)
        print(f"\n$ git checkout {into} && git merge {branch}", flush=True)
        return self.git("rev-parse", "HEAD")

    def release(self) -> str:
        """main -> env/dev -> env/test -> env/prod, deployed at each stage."""
        self.merge("main", "env/dev")
        self.step("the push to env/dev deploys dev", "ci", "deploy", "--env", "dev")
        for source, target in (("dev", "test"), ("test", "prod")):
            self.step(f"a promotion pull request {source} -> {target}", "ci", "promote",
                      "--from", source, "--to", target)
            head = self.merge(f"promote/{source}-to-{target}", f"env/{target}", "--ff-only")
            self.step(f"the merge into env/{target} deploys {target}", "ci", "deploy", "--env",
                      target)
        return head

    def pull_request(self, branch: str, c: str, expect: int) -> None:
        self.git("checkout", "-q", "-b", branch, "main")
        self.set_c(c)
        self.git("commit", "-qam", f"iris-classifier: C={c}")
        print(f"\n$ git checkout -b {branch} && (edit specs/models/iris-classifier.yaml: C={c})",
              flush=True)
        self.step(f"the pull request's checks (C={c})", "ci", "pr", "--base", "main",
                  "--report", "report.md", expect=expect)

    def play(self) -> None:
        print("\n== 1. The first model is released to prod")
        self.step("the pull request's checks", "ci", "pr", "--base", "main")
        self.release()
        print("\n== 2. A data scientist tunes a hyperparameter in a pull request")
        self.pull_request("tune", "0.5", expect=0)
        self.merge("tune", "main")
        good = self.release()
        print("\n== 3. A clearly worse model: refused by the pull request, and by prod when "
              "forced through")
        self.pull_request("worse", "0.2", expect=1)
        self.merge("worse", "env/prod")
        self.step("forced onto env/prod: the gates refuse it, prod keeps serving", "ci",
                  "deploy", "--env", "prod", expect=1)
        print("\n== 4. Rollback by git revert on env/prod")
        self.git("revert", "--no-edit", "-m", "1", "HEAD")
        print("\n$ git revert -m 1 HEAD    # the forced merge", flush=True)
        self.step("prod deploys the reverted branch", "ci", "deploy", "--env", "prod")
        self.git("revert", "--no-edit", "-m", "1", good)
        print(f"\n$ git revert -m 1 {good[:10]}    # the last good promotion", flush=True)
        self.step("prod rolls back to the version before it", "ci", "deploy", "--env", "prod")
        print("\n== 5. Monitoring prod's traffic: a shift in it proposes a retraining")
        self.traffic("prod", shift=0.0)
        self.step("traffic like the training data: no drift", "monitor", "--env", "prod",
                  "--window", "600")
        self.traffic("prod", shift=2.5)
        self.step("the petals grew: drift, and a retraining proposal", "monitor",
                  "--env", "prod", "--window", "600", "--propose", expect=2)
        subject = self.git("log", "-1", "--format=%s", f"retrain/{MODEL}")
        print(f"  branch retrain/{MODEL}: {subject}", flush=True)

    def table(self) -> None:
        done = subprocess.run([sys.executable, "-m", "mlops_gitops", "status", "--format",
                               "json"], cwd=self.repo, env=self.env, capture_output=True,
                              text=True)
        print(f"\n{'ENVIRONMENT':<12} {'MODEL':<20} {'VERSION':<8} {'HEALTH':<10} SERVICE")
        for row in json.loads(done.stdout):
            print(f"{row['env']:<12} {row['model']:<20} {row['live_version'] or '-'!s:<8} "
                  f"{row['health']:<10} {row['service']['health']} "
                  f"{row['service']['bento_tag'] or ''}")

    def stop_services(self) -> None:
        if not self.repo.exists():
            return
        for env in ENVS:
            subprocess.run([sys.executable, "-m", "mlops_gitops", "undeploy", "--env", env],
                           cwd=self.repo, env=self.env, capture_output=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    root = Path.cwd()
    story = Story(root, root / ".mlops" / "demo")
    started = time.monotonic()
    try:
        story.setup()
        story.play()
        story.table()
    except StoryFailed as exc:
        print(f"\nThe demo stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        story.stop_services()
    print(f"\nThe story took {time.monotonic() - started:.0f} s; the services are stopped. "
          f"The repository stays in {story.repo} (git log --all --graph shows the story).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
