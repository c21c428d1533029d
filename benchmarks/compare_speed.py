"""`compare` speed on the example models (embedded MLflow store): wall time split into loading
(registry lookups, downloading and loading both models, reading and splitting the data),
predicting (predictions, metrics overall and per slice, 1000 paired bootstrap resamples) and
reporting (recording tags and compare.json on the challenger, rendering text and Markdown).

Sets up its own temporary repository: trains both example models, makes version 1 the champion
(alias prod), changes a hyperparameter and trains the challenger. Prints its figures.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ENV, REPO, copy_example, sh  # benchmarks/ is on sys.path

RUNS = 5


def setup(root: Path, mlops: str) -> None:
    copy_example(root)
    sh(root, mlops, "train")
    script = ("from mlflow import MlflowClient; c = MlflowClient('sqlite:///.mlops/mlflow.db'); "
              "[c.set_registered_model_alias(n, 'prod', '1') for n in "
              "('iris-classifier', 'diabetes-regressor')]")
    sh(root, sys.executable, "-c", script)
    for model, old, new in (("iris-classifier", "C: 1.0", "C: 0.9"),
                            ("diabetes-regressor", "alpha: 1.0", "alpha: 2.0")):
        spec = root / "specs" / "models" / f"{model}.yaml"
        spec.write_text(spec.read_text().replace(old, new))
    sh(root, mlops, "train")


def measure(root: Path) -> None:
    """In a fresh process: every model compared RUNS + 1 times; prints JSON figures (the first
    round is cold: it pays for importing MLflow, scikit-learn and skops)."""
    import json

    os.chdir(root)
    started = time.perf_counter()
    from mlops_gitops.evaluate.compare import compare_model
    from mlops_gitops.registry.open import open_registry
    from mlops_gitops.report.render import compare_markdown, compare_text
    from mlops_gitops.spec.project import load_project

    project = load_project(root)
    registry = open_registry(project, "write")
    setup_s = time.perf_counter() - started
    rounds = []
    for _ in range(RUNS + 1):
        figures = {}
        for item in (i for i in project.loaded if i.kind == "Model"):
            result = compare_model(project, item, registry=registry)
            started = time.perf_counter()
            data = result.to_dict()
            compare_text([data])
            compare_markdown([data])
            render = time.perf_counter() - started
            figures[item.name] = {"load": result.timings["load"],
                                  "predict": result.timings["predict"],
                                  "report": result.timings["record"] + render}
        rounds.append(figures)
    print(json.dumps({"setup": setup_s, "rounds": rounds}))


def row(label: str, load: float, predict: float, report: float) -> str:
    return (f"  {label:<28} {load * 1000:>7.0f} ms {predict * 1000:>8.0f} ms "
            f"{report * 1000:>7.0f} ms {(load + predict + report) * 1000:>6.0f} ms")


def main() -> None:
    import json

    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        measure(Path(sys.argv[2]))
        return
    mlops = str(Path(sys.executable).parent / "mlops-gitops")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        setup(root, mlops)
        whole = []
        for _ in range(3):
            started = time.perf_counter()
            sh(root, mlops, "compare")
            whole.append(time.perf_counter() - started)
        samples = []
        for _ in range(3):
            done = subprocess.run([sys.executable, __file__, "--measure", str(root)], env=ENV,
                                  capture_output=True, text=True, cwd=REPO)
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
    med = statistics.median
    print(f"compare, both example models, whole process (median of 3): {med(whole):.2f} s")
    print(f"  of which loading the project and opening the registry (imports MLflow): "
          f"{med(s['setup'] for s in samples) * 1000:.0f} ms")
    print(f"  {'per model':<28} {'loading':>9} {'predicting':>11} {'reporting':>10} "
          f"{'total':>9}")
    models = list(samples[0]["rounds"][0])
    first = models[0]
    cold = [s["rounds"][0][first] for s in samples]
    print(row(f"{first} (cold)", *(med(c[k] for c in cold) for k in ("load", "predict",
                                                                       "report"))))
    for model in models:
        warm = [r[model] for s in samples for r in s["rounds"][1:]]
        print(row(f"{model} (warm)", *(med(w[k] for w in warm) for k in ("load", "predict",
                                                                           "report"))))
    print("  loading: registry lookups, both models downloaded and loaded, data read and split")
    print("    (cold: the first model also pays for importing scikit-learn and skops);")
    print("  predicting: predictions, metrics, 1000 paired bootstrap resamples;")
    print("  reporting: tags and compare.json recorded, text and Markdown rendered.")
    print(f"  medians of 3 processes x {RUNS} warm rounds")


if __name__ == "__main__":
    main()
