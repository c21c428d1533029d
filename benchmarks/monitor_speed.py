"""`mlops-gitops monitor` on a 1,000,000-prediction window x 20 features: wall time and peak memory
of the real command in a child process (fake deploy record and bento manifest, a 5,000-row
reference: Wasserstein / Jensen-Shannon), beside a floor that only parses the log's lines with
orjson.

Target (issue 12): under 10 s and under 2 GB on these machines. Prints its figures.
With --evidently, Evidently's DataDriftPreset runs on the same reference and window (the same
columns, predictions included) in a virtualenv of its own (installed with uv from the package
index; Evidently is not a dependency of mlops-gitops).
Run: python benchmarks/monitor_speed.py [--rows N] [--per-request K] [--evidently]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FEATURES = 20
REFERENCE_ROWS = 5_000
MEASURE = """
import json, os, resource, subprocess, sys, time


def tree(pid):
    pids = [pid]
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                for child in handle.read().split():
                    pids += tree(int(child))
        except OSError:
            pass
    return pids


def rss_mb(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as handle:
                total += next(int(l.split()[1]) for l in handle if l.startswith("VmRSS"))
        except (OSError, StopIteration):
            pass
    return total / 1024


start = time.perf_counter()
errors = open("measure-stderr.txt", "w+")  # a file, not a pipe nobody reads while it runs
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=errors)
tree_peak = 0.0
while child.poll() is None:
    try:
        tree_peak = max(tree_peak, rss_mb(child.pid))
    except OSError:
        pass
    time.sleep(0.05)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": child.returncode, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                  "peak_mb": usage.ru_maxrss / 1024, "tree_peak_mb": tree_peak,
                  "load": os.getloadavg()[0], "stderr": open("measure-stderr.txt").read()[-800:]}))
"""
FLOOR = """
import orjson, pathlib, sys
n = 0
for path in sorted(pathlib.Path(sys.argv[1]).glob('*.jsonl')):
    with open(path, 'rb') as handle:
        for line in handle:
            orjson.loads(line); n += 1
"""


EVIDENTLY = "evidently==0.7.23"
# its 0.7 line imports a pandas helper that pandas 3 removed
EVIDENTLY_PINS = ("pandas<3",)
EVIDENTLY_RUN = """
import json, sys
import numpy as np, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
folder = sys.argv[1]
names = json.load(open(f"{folder}/columns.json"))
reference = pd.read_csv(f"{folder}/reference.csv").rename(columns={"label": "prediction"})
current = pd.DataFrame(np.load(f"{folder}/current.npy"), columns=names)
current["prediction"] = np.load(f"{folder}/labels.npy", allow_pickle=False).astype(str)
result = Report([DataDriftPreset()]).run(current, reference)
drifted = [m for m in result.dict()["metrics"] if "DriftedColumnsCount" in m.get("metric_id", "")]
print(json.dumps(drifted, default=str)[:300])
"""


def evidently_venv(folder: Path) -> Path:
    """A virtualenv with Evidently (uv from the package index), or exit with the reason."""
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    done = subprocess.run([str(uv) if uv.exists() else "uv", "pip", "install", "--quiet",
                           "--python", str(folder / "bin" / "python"), EVIDENTLY, *EVIDENTLY_PINS],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"Evidently does not install here: {done.stderr.strip()[-500:]}")
    return folder / "bin" / "python"


def make_project(root: Path, rows: int, per_request: int) -> int:
    import hashlib

    import numpy as np
    import orjson
    import pandas as pd

    names = [f"f{i}" for i in range(FEATURES)]
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({n: rng.normal(50, 10, REFERENCE_ROWS).round(4) for n in names})
    reference["label"] = rng.choice(["red", "green", "blue"], REFERENCE_ROWS)
    (root / "data").mkdir(parents=True)
    reference.to_csv(root / "data" / "bench.csv", index=False)
    md5 = hashlib.md5((root / "data" / "bench.csv").read_bytes()).hexdigest()
    (root / "mlops-gitops.yaml").write_text(
        "apiVersion: mlops-gitops/v1\nkind: Project\nmetadata: {name: bench}\nspec: {}\n")
    for folder in ("specs", "environments"):
        (root / folder).mkdir()
    columns = "\n".join(f"    {n}: {{type: float}}" for n in names)
    (root / "specs" / "bench-data.yaml").write_text(f"""apiVersion: mlops-gitops/v1
kind: Dataset
metadata: {{name: bench-data}}
spec:
  path: data/bench.csv
  columns:
{columns}
    label: {{type: string}}
""")
    (root / "specs" / "bench.yaml").write_text(f"""apiVersion: mlops-gitops/v1
kind: Model
metadata: {{name: bench}}
spec:
  dataset: bench-data
  task: classification
  target: label
  features: [{", ".join(names)}]
  estimator: {{class: sklearn.linear_model.LogisticRegression}}
  metrics: [accuracy]
""")
    (root / "environments" / "dev.yaml").write_text("""apiVersion: mlops-gitops/v1
kind: Environment
metadata: {name: dev}
spec:
  models: [{name: bench}]
  monitoring: {drift: {method: ks, min_samples: 1000}}
""")
    bento = "mlops-bench-dev:bench"
    source = root / ".mlops" / "bentoml" / "bentos" / "mlops-bench-dev" / "bench" / "src"
    source.mkdir(parents=True)
    (source / "served.json").write_text(json.dumps({"models": [{
        "name": "bench", "spec_name": "bench", "version": 1, "data_md5": md5, "commit": None,
        "task": "classification", "features": [{"name": n, "type": "float"} for n in names]}]}))
    services = root / ".mlops" / "services" / "dev"
    services.mkdir(parents=True)
    (services / "deployment.json").write_text(json.dumps({"bento": bento}))
    # The window: the first 4 features shifted by one standard deviation.
    current = {n: rng.normal(60 if i < 4 else 50, 10, rows).round(4) for i, n in enumerate(names)}
    labels = rng.choice(["red", "green", "blue"], rows)
    frames = root / "frames"  # the same data for Evidently
    frames.mkdir()
    reference.to_csv(frames / "reference.csv", index=False)
    np.save(frames / "current.npy", np.column_stack([current[n] for n in names]))
    np.save(frames / "labels.npy", labels.astype("U8"))
    (frames / "columns.json").write_text(json.dumps(names))
    folder = root / ".mlops" / "inference" / "dev"
    folder.mkdir(parents=True)
    chunk = 100_000
    for part, begin in enumerate(range(0, rows, chunk)):
        frame = pd.DataFrame({n: v[begin:begin + chunk] for n, v in current.items()})
        records = frame.to_dict("records")
        outputs = labels[begin:begin + chunk].tolist()
        lines = []
        for k in range(0, len(records), per_request):
            n = (begin + k) // per_request
            lines.append(orjson.dumps({
                "time": f"2026-11-30T{n // 3_600_000 % 24:02d}:{n // 60_000 % 60:02d}:"
                        f"{n // 1000 % 60:02d}.{n % 1000:03d}Z",
                "request_id": f"r{n}", "model": "bench", "version": 1,
                "inputs": records[k:k + per_request], "outputs": outputs[k:k + per_request]}))
        (folder / f"dev-1-1-{part:04d}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return sum(p.stat().st_size for p in folder.glob("*.jsonl"))


def measure(cmd: list[str], cwd: Path) -> dict:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "BENTOML_DO_NOT_TRACK": "true",
           "BENTOML_HOME": str(cwd / ".mlops" / "bentoml")}
    done = subprocess.run([sys.executable, "-c", MEASURE, *cmd], cwd=cwd, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--per-request", type=int, default=1,
                        help="instances per logged request (default 1: one line per row)")
    parser.add_argument("--evidently", action="store_true",
                        help=f"also time {EVIDENTLY}'s DataDriftPreset on the same data")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        size = make_project(root, args.rows, args.per_request)
        written = time.perf_counter() - start
        floor = measure([sys.executable, "-c", FLOOR, str(root / ".mlops/inference/dev")], root)
        run = measure([sys.executable, "-m", "mlops_gitops", "monitor", "--env", "dev"], root)
        report = json.loads((root / ".mlops" / "monitor" / "dev" / "report.json").read_text())
        evidently = None
        if args.evidently:
            python = evidently_venv(root / "evidently-venv")
            evidently = measure([str(python), "-c", EVIDENTLY_RUN, str(root / "frames")], root)
    [model] = report["models"]
    print(f"log: {args.rows:,} predictions x {FEATURES} features, {args.per_request} per request, "
          f"{size / 1e6:.0f} MB (written in {written:.1f} s); reference {REFERENCE_ROWS:,} rows")
    print(f"machine: {os.cpu_count()} cores, load average {run['load']:.1f} during the run")
    print(f"floor (orjson.loads of every line, one process): wall {floor['wall']:6.2f} s  "
          f"cpu {floor['cpu']:6.2f} s  peak {floor['peak_mb']:5.0f} MB")
    print(f"mlops-gitops monitor:  wall {run['wall']:6.2f} s  cpu {run['cpu']:6.2f} s (all its "
          f"processes)  peak {run['peak_mb']:5.0f} MB (largest process), "
          f"{run['tree_peak_mb']:5.0f} MB (all processes, sampled)  exit {run['code']}")
    if evidently is not None:
        print(f"{EVIDENTLY} DataDriftPreset: wall {evidently['wall']:6.2f} s  cpu "
              f"{evidently['cpu']:6.2f} s  peak {evidently['peak_mb']:5.0f} MB  exit "
              f"{evidently['code']} (same reference and window, already in memory as numpy)")
        if evidently["code"]:
            print(f"  Evidently failed: {evidently['stderr'].strip()}")
    print("target: under 10 s and under 2048 MB")
    print(f"verdict {report['verdict']}: {model['samples']:,} samples, drifted "
          f"{', '.join(model['drifted'])}")


if __name__ == "__main__":
    main()
