"""Data-contract gate on a 1,000,000-row, 20-column CSV: wall time and peak memory of
`mlops-gitops data validate`, against a plain `pandas.read_csv` of the same file (the floor).

Target (issue 3): under 10 s and under 2 GB on these machines. Prints its figures.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS, FLOAT_COLUMNS = 1_000_000, 18


def make_project(root: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"f{i}": rng.normal(50, 10, ROWS).round(4) for i in range(FLOAT_COLUMNS)})
    frame["count"] = rng.integers(0, 1000, ROWS)
    frame["label"] = rng.choice(["red", "green", "blue"], ROWS)
    (root / "data").mkdir()
    frame.to_csv(root / "data" / "big.csv", index=False)
    columns = "\n".join(f"    f{i}: {{type: float, min: -1000, max: 1000}}"
                        for i in range(FLOAT_COLUMNS))
    (root / "specs").mkdir()
    (root / "specs" / "big.yaml").write_text(f"""apiVersion: mlops-gitops/v1
kind: Dataset
metadata: {{name: big}}
spec:
  path: data/big.csv
  columns:
{columns}
    count: {{type: int, min: 0}}
    label: {{type: string, allowed: [red, green, blue]}}
  checks: {{min_rows: 1000, max_null_fraction: 0.0}}
  split: {{test_fraction: 0.2, seed: 1, stratify: label}}
""")


def measure(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{result.stdout}\n{result.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before) / 1024


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_project(root)
        size = (root / "data" / "big.csv").stat().st_size / 1024 / 1024
        # The floor runs first so that the gate's peak RSS is not hidden by it (max over children).
        floor_s, floor_mb = measure([sys.executable, "-c",
                                     "import pandas; pandas.read_csv('data/big.csv')"], root)
        gate_s, gate_mb = measure([sys.executable, "-m", "mlops_gitops", "data", "validate"], root)
    print(f"file: {ROWS:,} rows x {FLOAT_COLUMNS + 2} columns, {size:.0f} MB")
    print(f"pandas.read_csv (floor):  {floor_s:6.2f} s  peak {floor_mb:6.0f} MB")
    print(f"mlops-gitops data validate: {gate_s:6.2f} s  peak {gate_mb:6.0f} MB "
          f"(target < 10 s, < 2048 MB)")
    print(f"overhead over the floor:  {gate_s / floor_s:.2f}x time")


if __name__ == "__main__":
    main()
