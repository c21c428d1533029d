"""Lint speed, whole process: one spec file, and 1,000 spec files against check-jsonschema.

Targets (issue 2): one file under 0.25 s; 1,000 files under 0.6 s and at most 0.3x the time of
check-jsonschema validating the same files against the exported schemas. Prints its figures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from _common import BIN, timed  # benchmarks/ is on sys.path

DATASET = """apiVersion: mlops-gitops/v1
kind: Dataset
metadata: {{name: data-{i}, owner: bench}}
spec:
  path: data/d{i}.csv
  columns:
    a: {{type: float, min: 0, max: 10}}
    b: {{type: float}}
    c: {{type: int, min: 0}}
    label: {{type: string, allowed: [x, y, z]}}
  checks: {{min_rows: 10, max_null_fraction: 0.0}}
  split: {{test_fraction: 0.2, seed: {i}, stratify: label}}
"""
MODEL = """apiVersion: mlops-gitops/v1
kind: Model
metadata: {{name: model-{i}, owner: bench}}
spec:
  dataset: data-{i}
  task: classification
  target: label
  features: [a, b, c]
  steps:
    - class: sklearn.preprocessing.StandardScaler
  estimator:
    class: sklearn.linear_model.LogisticRegression
    params: {{C: 1.0, max_iter: 200}}
  seed: {i}
  metrics: [accuracy, f1_macro]
  tests:
    - {{name: floor, metric: accuracy, min: 0.8}}
    - {{name: noise, type: invariance, column: a, noise: 0.05, max_flip_rate: 0.1}}
"""


def make_project(root: Path, pairs: int) -> None:
    for folder in ("specs/datasets", "specs/models"):
        (root / folder).mkdir(parents=True)
    for i in range(pairs):
        (root / f"specs/datasets/d{i}.yaml").write_text(DATASET.format(i=i))
        (root / f"specs/models/m{i}.yaml").write_text(MODEL.format(i=i))


def main() -> None:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    os.environ.update(env)
    lint = [str(BIN / "mlops-gitops"), "lint"]
    with tempfile.TemporaryDirectory() as tmp:
        one, many = Path(tmp, "one"), Path(tmp, "many")
        one.mkdir()
        (one / "specs").mkdir()
        (one / "specs" / "d.yaml").write_text(DATASET.format(i=0))
        make_project(many, 500)
        schemas = Path(tmp, "schemas")
        subprocess.run([*lint[:1], "schema", "--out", str(schemas)], check=True,
                       capture_output=True)
        check = shutil.which("check-jsonschema", path=str(BIN)) or "check-jsonschema"

        t_one = timed(one, lint, 15)
        t_many = timed(many, lint, 7)
        t_check = sum(
            timed(many, [check, "--schemafile", str(schemas / f"{kind}.schema.json"),
                   *sorted(str(p) for p in (many / "specs" / folder).glob("*.yaml"))], 3)
            for kind, folder in (("dataset", "datasets"), ("model", "models"))
        )
    print(f"lint, 1 spec file:        {t_one:.3f} s  (target < 0.25 s)")
    print(f"lint, 1,000 spec files:   {t_many:.3f} s  (target < 0.6 s)")
    print(f"check-jsonschema, same:   {t_check:.3f} s  (2 runs, one per kind)")
    print(f"ratio lint/check-jsonschema: {t_many / t_check:.2f}x  (target <= 0.3x)")


if __name__ == "__main__":
    main()
