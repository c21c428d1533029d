"""Training speed, whole process, on the example iris model with the embedded MLflow store.

1. No-op `mlops-gitops train` (fingerprint already registered) against a no-op `dvc repro` of an
   equivalent one-stage pipeline; target (issue 4): at most 1.5x dvc repro's time.
2. A real `mlops-gitops train --force` against the bare work it wraps: read the CSV, fit the same
   pipeline, `mlflow.sklearn.log_model` and register, in one plain script.
Prints its figures.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from _common import ENV, MLOPS, copy_example, sh, timed  # benchmarks/ is on sys.path

BARE = """
import sys, mlflow, pandas as pd
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
mlflow.set_tracking_uri(sys.argv[1])
frame = pd.read_csv("data/iris.csv")
features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
train, test = train_test_split(frame, test_size=0.3, random_state=42, stratify=frame["species"])
pipe = Pipeline([("s", StandardScaler()), ("e", LogisticRegression(C=1.0, max_iter=500))])
pipe.fit(train[features], train["species"])
with mlflow.start_run() as run:
    mlflow.log_metric("accuracy", pipe.score(test[features], test["species"]))
    info = mlflow.sklearn.log_model(pipe, name="model", input_example=test[features].head(3),
                                    pip_requirements=["scikit-learn"])
client = MlflowClient()
try:
    client.create_registered_model("bare")
except Exception:
    pass
client.create_model_version("bare", info.model_uri, run.info.run_id, model_id=info.model_id)
"""

STAGE_SCRIPT = """
import pickle, pandas as pd
from sklearn.linear_model import LogisticRegression
frame = pd.read_csv("data/iris.csv")
model = LogisticRegression(max_iter=500).fit(frame.iloc[:, :4], frame["species"])
pickle.dump(model, open("model.pkl", "wb"))
"""


def main() -> None:
    mlops = MLOPS
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_example(Path(tmp) / "repo")
        (root / ".gitignore").write_text(".mlops/\ndata/*.csv\nmodel.pkl\n")
        (root / "stage.py").write_text(STAGE_SCRIPT)
        (root / "dvc.yaml").write_text("stages:\n  train:\n    cmd: python stage.py\n"
                                       "    deps: [data/iris.csv, stage.py, "
                                       "specs/models/iris-classifier.yaml]\n"
                                       "    outs: [model.pkl]\n")
        sh(root, sys.executable, "-m", "dvc", "init", "-q")
        sh(root, sys.executable, "-m", "dvc", "add", "-q", "data/iris.csv", "data/diabetes.csv")
        env_path = f"{Path(sys.executable).parent}{os.pathsep}{ENV['PATH']}"
        ENV["PATH"] = env_path  # `python` in the DVC stage is this venv's
        sh(root, sys.executable, "-m", "dvc", "repro", "-q")
        sh(root, "git", "add", "-A")
        sh(root, "git", "commit", "-qm", "bench")
        sh(root, mlops, "train", "iris-classifier")

        noop = timed(root, [mlops, "train", "iris-classifier"], 7)
        repro = timed(root, [sys.executable, "-m", "dvc", "repro", "-q"], 7)
        dvc_bin = Path(sys.executable).parent / "dvc"
        repro_bin = timed(root, [str(dvc_bin), "repro", "-q"], 7)
        real = timed(root, [mlops, "train", "iris-classifier", "--force"], 3)
        bare_uri = f"sqlite:///{Path(tmp) / 'bare.db'}"
        (Path(tmp) / "bare.py").write_text(BARE)
        bare = timed(root, [sys.executable, str(Path(tmp) / "bare.py"), bare_uri], 3)
    print(f"no-op mlops-gitops train:  {noop:.3f} s")
    print(f"no-op dvc repro:           {min(repro, repro_bin):.3f} s")
    print(f"ratio train/dvc repro:     {noop / min(repro, repro_bin):.2f}x  (target <= 1.5x)")
    print(f"real train --force:        {real:.2f} s")
    print(f"bare fit + log_model + register: {bare:.2f} s")
    print(f"overhead of train:         {real - bare:+.2f} s ({real / bare:.2f}x)")


if __name__ == "__main__":
    main()
