"""scikit-learn's bundled data sets written as the example project's CSV files (no download)."""

from __future__ import annotations

from pathlib import Path

IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def iris_frame():
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.data.copy()
    frame.columns = IRIS_COLUMNS
    frame["species"] = bunch.target.map(dict(enumerate(bunch.target_names))).astype(str)
    return frame


def diabetes_frame():
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(as_frame=True, scaled=False)
    frame = bunch.data.copy()
    frame["sex"] = frame["sex"].astype(int)
    frame["progression"] = bunch.target
    return frame


EXAMPLES = {"iris": iris_frame, "diabetes": diabetes_frame}


def write_example(name: str, path: Path) -> Path:
    """Write the named example data set as CSV; byte-identical on every machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    EXAMPLES[name]().to_csv(path, index=False, lineterminator="\n", float_format="%.6g")
    return path


def prepare_example_data(root: Path) -> list[str]:
    """Recreate the example project's DVC-tracked files from scikit-learn and fill the DVC remote.

    The set-up step of a fresh clone: the embedded default remote is a local folder that a clone
    does not carry. Refuses to go on if a recreated file differs from its tracked version.
    """
    import hashlib
    import subprocess
    import sys

    from mlops_gitops.data.versioning import data_version

    messages = []
    for name in EXAMPLES:
        relative = f"data/{name}.csv"
        version = data_version(root, relative)
        if version.md5 is None:
            continue
        path = root / relative
        if not path.exists():
            write_example(name, path)
            messages.append(f"wrote {relative} from scikit-learn's bundled {name} data set")
        md5 = hashlib.md5(path.read_bytes()).hexdigest()
        if md5 != version.md5:
            raise SystemExit(f"{relative}: md5 {md5} differs from the tracked {version.md5}")
    result = subprocess.run([sys.executable, "-m", "dvc", "push", "--quiet"], cwd=root,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"dvc push failed: {result.stderr.strip()}")
    messages.append("DVC remote holds the example data")
    return messages


def demo_predictions(root: Path, env: str, rows: int = 3) -> list[str]:
    """Send a few test-split rows of each served model to the environment's running service
    (what ``make demo`` shows after deploying) and describe the answers."""
    import json
    import urllib.request

    from mlops_gitops.deploy.local import LocalTarget
    from mlops_gitops.deploy.smoke import smoke_requests
    from mlops_gitops.serving.bento import bentoml_home, read_manifest
    from mlops_gitops.spec.project import load_project

    project = load_project(root)
    target = LocalTarget(root, bentoml_home(root))
    health = target.health(env)
    if health.url is None or health.bento_tag is None:
        raise SystemExit(f"environment '{env}' is not deployed: {health.detail}")
    manifest = read_manifest(bentoml_home(root), health.bento_tag)
    out = []
    for body in smoke_requests(project, manifest, rows):
        request = urllib.request.Request(f"{health.url}/predict", method="POST",
                                         data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        out.append(f"POST {health.url}/predict {json.dumps(body)[:90]}...")
        out.append(f"  -> {answer['model']} version {answer['version']}: "
                   f"{answer['predictions']}")
    return out


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["predict"]:
        lines = demo_predictions(Path.cwd(), sys.argv[2] if len(sys.argv) > 2 else "dev")
    else:
        lines = prepare_example_data(Path.cwd())
    for line in lines:
        print(line)
