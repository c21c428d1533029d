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
