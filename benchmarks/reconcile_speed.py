"""Reconciler speed against a real `mlflow server` (SQLite backend) on 127.0.0.1.

1. A registry of 1,000 registered models x 3 versions: `mlops-gitops plan` whole process, and the
   number of registry calls it makes; against the naive read (one get_registered_model and one
   version search per model) measured in the same run.
   Targets (issue 6): plan under 3 s whole process, at most 4 registry calls.
2. `mlops-gitops status` on 300 models against `gto show` on a git repository with 300
   artifacts x 5 version tags. Target: at least 3x faster than gto.
Prints its figures.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ENV, timed  # benchmarks/ is on sys.path (and puts the repository there)

from tests.integration.conftest import free_port, start_mlflow, stop

DATA_MD5 = "0123456789abcdef0123456789abcdef"

DATASET = """apiVersion: mlops-gitops/v1
kind: Dataset
metadata: {name: shared}
spec:
  path: data/shared.csv
  columns:
    a: {type: float}
    b: {type: float}
    label: {type: string}
"""
MODEL = """apiVersion: mlops-gitops/v1
kind: Model
metadata: {{name: model-{i:04d}, owner: bench}}
spec:
  dataset: shared
  task: classification
  target: label
  features: [a, b]
  estimator: {{class: sklearn.linear_model.LogisticRegression, params: {{C: 1.0}}}}
  seed: {i}
  metrics: [accuracy]
"""


def make_project(root: Path, count: int, uri: str) -> None:
    for folder in ("specs/datasets", "specs/models", "environments", "data"):
        (root / folder).mkdir(parents=True)
    (root / "mlops-gitops.yaml").write_text(
        f"apiVersion: mlops-gitops/v1\nkind: Project\nmetadata: {{name: bench{count}}}\n"
        f"spec: {{tracking_uri: '{uri}'}}\n")
    (root / "data" / "shared.csv.dvc").write_text(
        f"outs:\n- md5: {DATA_MD5}\n  size: 1\n  hash: md5\n  path: shared.csv\n")
    (root / "specs/datasets/shared.yaml").write_text(DATASET)
    for i in range(count):
        (root / f"specs/models/m{i:04d}.yaml").write_text(MODEL.format(i=i))
    models = "".join(f"    - {{name: model-{i:04d}}}\n" for i in range(count))
    (root / "environments" / "dev.yaml").write_text(
        f"apiVersion: mlops-gitops/v1\nkind: Environment\nmetadata: {{name: dev}}\nspec:\n"
        f"  models:\n{models}")


def populate(db: Path, root: Path) -> None:
    """Write the registry straight into the server's database (fast, before it starts)."""
    from mlflow.entities.model_registry import ModelVersionTag, RegisteredModelTag
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    from mlops_gitops.identity import owned_model_tags
    from mlops_gitops.spec.project import load_project
    from mlops_gitops.targets import training_target

    project = load_project(root)
    store = SqlAlchemyStore(f"sqlite:///{db}")
    for item in (i for i in project.loaded if i.kind == "Model"):
        fingerprint = training_target(project, item).fingerprint
        tags = owned_model_tags(project.name, item.spec)
        store.create_registered_model(item.name, [RegisteredModelTag(k, v)
                                                  for k, v in tags.items()])
        for number, fp in ((1, "old-a"), (2, "old-b"), (3, fingerprint)):
            store.create_model_version(item.name, f"s3://bench/{item.name}/{number}", tags=[
                ModelVersionTag("mlops.managed", "true"), ModelVersionTag("mlops.fingerprint", fp),
                ModelVersionTag("mlops.status", "ready"),
                ModelVersionTag("mlops.env.dev.promoted_at", "2026-01-01T00:00:00Z")])
        store.set_registered_model_alias(item.name, "dev", 3 if int(item.name[-4:]) % 10 else 2)


def count_plan_calls(root: Path, uri: str) -> tuple[int, int]:
    """HTTP requests to the registry made by one plan (counted on urllib), and the changes."""
    import urllib.request

    from mlops_gitops.reconcile.apply import make_plan
    from mlops_gitops.reconcile.desired import desired_state
    from mlops_gitops.reconcile.live import read_live_state
    from mlops_gitops.registry.rest import registry_reader
    from mlops_gitops.spec.project import load_project
    from mlops_gitops.tracking import Tracking

    calls = []
    real_urlopen = urllib.request.urlopen

    def counting_urlopen(request, *args, **kwargs):
        calls.append(getattr(request, "full_url", request))
        return real_urlopen(request, *args, **kwargs)

    urllib.request.urlopen = counting_urlopen
    try:
        project = load_project(root)
        registry = registry_reader(Tracking(uri))
        plan = make_plan(desired_state(project, "dev"), read_live_state(registry, project.name),
                         None)
    finally:
        urllib.request.urlopen = real_urlopen
    return len(calls), len(plan.pending)


def naive_read(uri: str, count: int) -> float:
    from mlflow import MlflowClient

    client = MlflowClient(uri, uri)
    start = time.perf_counter()
    for i in range(count):
        client.get_registered_model(f"model-{i:04d}")
        client.search_model_versions(f"name = 'model-{i:04d}'")
    return time.perf_counter() - start


def gto_repo(root: Path, artifacts: int, versions: int) -> None:
    root.mkdir()
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    (root / "README").write_text("gto benchmark\n")
    subprocess.run([*git, "add", "README"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=root, check=True)
    for a in range(artifacts):
        for v in range(1, versions + 1):
            name = f"model-{a:04d}@v0.0.{v}"
            subprocess.run([*git, "tag", "-a", name, "-m",
                            f"Registering artifact model-{a:04d} version v0.0.{v}"],
                           cwd=root, check=True)


def main() -> None:
    mlops = str(Path(sys.executable).parent / "mlops-gitops")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = {}
        for count in (1000, 300):
            server_dir, root = tmp / f"server{count}", tmp / f"project{count}"
            server_dir.mkdir()
            port = free_port()
            uri = f"http://127.0.0.1:{port}"
            make_project(root, count, uri)
            started = time.perf_counter()
            populate(server_dir / "mlflow.db", root)
            fill = time.perf_counter() - started
            server = start_mlflow(server_dir, port)
            try:
                if count == 1000:
                    plan_s = timed(root, [mlops, "plan", "--env", "dev"], 5)
                    calls, pending = count_plan_calls(root, uri)
                    naive = naive_read(uri, count)
                    results["plan"] = (plan_s, calls, pending, naive, fill)
                else:
                    results["status"] = timed(root, [mlops, "status", "--env", "dev"], 5,
                                              ok_codes=(0, 1))
            finally:
                stop(server)
        gto_root = tmp / "gto"
        gto_repo(gto_root, 300, 5)
        gto = str(Path(sys.executable).parent / "gto")
        gto_s = timed(gto_root, [gto, "show"], 3)
    plan_s, calls, pending, naive, fill = results["plan"]
    print(f"registry: 1,000 models x 3 versions (filled in {fill:.0f} s)")
    print(f"plan, whole process:        {plan_s:.2f} s  (target < 3 s); {pending} change(s)")
    print(f"registry calls in a plan:   {calls}  (target <= 4)")
    print(f"naive per-model read:       {naive:.2f} s  (2,000 calls) -> plan is "
          f"{naive / plan_s:.1f}x faster than the naive read alone")
    print(f"status, 300 models:         {results['status']:.2f} s")
    ratio = gto_s / results["status"]
    print(f"gto show, 300 x 5 tags:     {gto_s:.2f} s  -> status is {ratio:.1f}x faster "
          "(target >= 3x)")


if __name__ == "__main__":
    os.environ.update(ENV)
    main()
