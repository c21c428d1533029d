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
    """Recreate the example project's DVC-tracked files from scikit-learn, put them in the DVC
    cache and push them to the DVC remote, so that ``dvc status`` and ``dvc status -c`` are clean.

    The set-up step of a fresh clone: the embedded default remote is a local folder that a clone
    does not carry. Refuses to go on if a recreated file differs from its tracked version (the
    tracked ``.dvc`` files are never rewritten).
    """
    import hashlib

    from mlops_gitops.data.versioning import (
        data_version,
        default_remote,
        dvc_reason,
        run_dvc,
    )

    messages, tracked = [], []
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
            raise SystemExit(f"{relative}: md5 {md5} differs from the tracked {version.md5}; "
                             f"delete it and run this again to recreate it, or record the "
                             f"change with 'dvc add {relative}'")
        tracked.append(relative)
    if not tracked:
        return messages
    # the files match their .dvc records: store them in the cache without touching the records
    for action, args in (("dvc commit", ("commit", "--force", *tracked)),
                         ("dvc push", ("push", *tracked)),
                         ("dvc status --cloud", ("status", "--cloud", "--quiet", *tracked))):
        result = run_dvc(root, *args)
        if result.returncode != 0:
            raise SystemExit(f"{action} failed: {dvc_reason(result)}")
    remote = default_remote(root) or "no default remote"
    messages.append(f"the DVC cache and remote ({remote}) hold {', '.join(tracked)}")
    return messages


if __name__ == "__main__":
    for line in prepare_example_data(Path.cwd()):
        print(line)
