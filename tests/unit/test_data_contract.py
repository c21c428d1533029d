"""The data-contract gate on good and bad CSV files (in-process, no DVC)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_gitops.data.contract import read_csv, validate_frame
from mlops_gitops.spec.models import DatasetSpec

SPEC = DatasetSpec.model_validate({
    "path": "data/x.csv",
    "columns": {
        "a": {"type": "float", "min": 0, "max": 10},
        "b": {"type": "int"},
        "c": {"type": "string", "allowed": ["x", "y"]},
        "flag": {"type": "bool", "nullable": True},
    },
    "checks": {"min_rows": 4, "unique_rows": True},
    "split": {"test_fraction": 0.5, "stratify": "c"},
})
GOOD = "a,b,c,flag\n1,2,x,true\n2,3,y,false\n3,4,x,\n4,5,y,true\n"


def check(tmp_path: Path, content: str | bytes, spec: DatasetSpec = SPEC):
    path = tmp_path / "x.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    frame, failures = read_csv(path, spec)
    if frame is not None:
        failures = validate_frame(frame, spec)
    return failures


def test_good_file_passes(tmp_path):
    assert check(tmp_path, GOOD) == []


# (case, CSV content, expected check, fragment of the message, expected example CSV line)
BAD = [
    ("wrong delimiter", GOOD.replace(",", ";"), "columns", "delimiter", None),
    ("truncated line", GOOD.replace("2,3,y,false", "2,3"), "nulls", "column 'c': 1 missing", 3),
    ("extra field", GOOD.replace("2,3,y,false", "2,3,y,false,9"), "parse",
     "Expected 4 fields in line 3", None),
    ("non-numeric float", GOOD.replace("2,3,y", "abc,3,y"), "type",
     "column 'a': 1 value(s) are not float (e.g. line 3: abc)", 3),
    ("fraction in int", GOOD.replace("3,4,x", "3,4.5,x"), "type", "not whole numbers", 4),
    ("bad bool", GOOD.replace("false", "maybe"), "type", "column 'flag'", 3),
    ("out of range", GOOD.replace("4,5,y", "40,5,y"), "max", "above max 10 (e.g. line 5: 40.0)", 5),
    ("below range", GOOD.replace("1,2,x", "-1,2,x"), "min", "below min 0", 2),
    ("unknown category", GOOD.replace("3,4,x", "3,4,q"), "allowed", "line 4: q", 4),
    ("nulls", GOOD.replace("2,3,y", ",3,y"), "nulls", "column 'a': 1 missing value(s)", 3),
    ("duplicated rows", GOOD + "4,5,y,true\n", "duplicates", "1 duplicated row(s)", 6),
    ("empty file", "", "empty", "file is empty", None),
    ("header only", "a,b,c,flag\n", "rows", "0 rows, fewer than min_rows (4)", None),
    ("missing column", "a,b,c\n1,2,x\n2,3,y\n3,4,x\n4,5,y\n", "columns",
     "missing column(s): flag", None),
    ("unexpected column", "a,b,c,flag,z\n1,2,x,true,0\n2,3,y,true,0\n3,4,x,true,0\n4,5,y,true,0\n",
     "columns", "unexpected column(s): z", None),
    ("not utf-8", b"a,b,c,flag\n1,2,\xff\xfe,true\n", "encoding", "not valid UTF-8", None),
    ("infinite float", GOOD.replace("2,3,y", "inf,3,y"), "finite",
     "column 'a': 1 value(s) are not finite (inf or -inf) (e.g. line 3: inf)", 3),
    ("infinite int", GOOD.replace("3,4,x", "3,-inf,x").replace("4,5,y", "4,Infinity,y"),
     "finite", "column 'b': 2 value(s) are not finite", 4),
    ("rare stratum", GOOD.replace("4,5,y", "4,5,x").replace("2,3,y", "2,3,x") + "5,6,y,true\n",
     "split", "fewer than 2 rows", None),
]


@pytest.mark.parametrize("case,content,check_name,fragment,line", BAD, ids=[b[0] for b in BAD])
def test_bad_file_is_reported(tmp_path, case, content, check_name, fragment, line):
    failures = check(tmp_path, content)
    matching = [f for f in failures if f.check == check_name]
    assert matching, f"{case}: no '{check_name}' failure in {failures}"
    assert any(fragment in f.message for f in matching), [f.message for f in matching]
    if line is not None:
        assert any(f.examples and f.examples[0][0] == line for f in matching), matching


def test_every_failure_is_reported_at_once(tmp_path):
    content = "a,b,c,flag\n-1,2,x,true\n20,3,q,true\n,4,x,true\n4,5.5,y,true\n"
    checks = {f.check for f in check(tmp_path, content)}
    assert {"min", "max", "allowed", "nulls", "type"} <= checks


def test_counts_and_examples_are_bounded(tmp_path):
    rows = "".join(f"{50 + i},{i},x,true\n" for i in range(100))
    [failure] = [f for f in check(tmp_path, "a,b,c,flag\n" + rows) if f.check == "max"]
    assert failure.count == 100
    assert len(failure.examples) == 5
    assert failure.examples[0] == (2, "50.0")


def test_file_over_size_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "x.csv"
    with open(path, "wb") as handle:  # 1 GB sparse file: instant, takes no disk
        handle.truncate(1024 ** 3)
    frame, failures = read_csv(path, SPEC)
    assert frame is None
    assert failures[0].check == "size" and "1024 MB" in failures[0].message


def test_unique_column(tmp_path):
    spec = SPEC.model_copy(update={"columns": {**SPEC.columns, "b": SPEC.columns["b"].model_copy(
        update={"unique": True})}})
    failures = check(tmp_path, GOOD.replace("3,4,x", "3,2,x"), spec)
    assert any(f.check == "unique" and f.column == "b" for f in failures)


def _project(tmp_path: Path, csv: str, dataset_path: str = "data/x.csv") -> Path:
    (tmp_path / "specs").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text(csv)
    (tmp_path / "specs" / "x.yaml").write_text(f"""apiVersion: mlops-gitops/v1
kind: Dataset
metadata: {{name: x}}
spec:
  path: {dataset_path}
  columns:
    a: {{type: float, min: 0, max: 10}}
    c: {{type: string, allowed: [x, y]}}
""")
    return tmp_path


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run([sys.executable, "-m", "mlops_gitops", *args], cwd=root, env=env,
                          capture_output=True, text=True)


def test_cli_reports_failure_with_exit_1(tmp_path):
    root = _project(tmp_path, "a,c\n1,x\n99,z\n")
    result = _cli(root, "data", "validate", "--format", "github")
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "::error file=data/x.csv,line=3,col=1" in result.stdout
    assert "above max 10" in result.stdout


def test_cli_json_and_markdown(tmp_path):
    import json

    root = _project(tmp_path, "a,c\n1,x\n2,y\n")
    result = _cli(root, "data", "validate", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    [report] = json.loads(result.stdout)
    import hashlib

    assert report["ok"] and report["rows"] == 2
    assert report["md5"] == hashlib.md5((root / "data" / "x.csv").read_bytes()).hexdigest()
    markdown = _cli(root, "data", "validate", "--format", "markdown").stdout
    assert "| x | `data/x.csv` | 2 |" in markdown


def test_data_path_outside_repository_is_refused(tmp_path):
    root = _project(tmp_path, "a,c\n1,x\n", dataset_path="../outside.csv")
    result = _cli(root, "data", "validate")
    assert result.returncode == 1
    assert "relative path inside the repository" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_symlink_out_of_repository_is_refused(tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text("a,c\n1,x\n")
    root = tmp_path / "repo"
    root.mkdir()
    _project(root, "a,c\n1,x\n")
    (root / "data" / "x.csv").unlink()
    (root / "data" / "x.csv").symlink_to(outside)
    result = _cli(root, "data", "validate")
    assert result.returncode == 1
    assert "leaves the repository" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_untracked_file_says_what_to_do(tmp_path):
    root = _project(tmp_path, "a,c\n1,x\n")
    (root / "data" / "x.csv").unlink()
    result = _cli(root, "data", "validate")
    assert result.returncode == 1
    assert "does not exist and is not tracked by DVC" in result.stderr
    assert "dvc add data/x.csv" in result.stderr


def test_split_leaving_too_few_train_rows_for_the_classes(tmp_path):
    spec = SPEC.model_copy(update={"split": SPEC.split.model_copy(
        update={"test_fraction": 0.6})})
    failures = check(tmp_path, GOOD, spec)
    expected = "train split of 1 rows cannot hold all 2 classes"
    assert any(f.check == "split" and expected in f.message for f in failures)


def test_text_column_keeps_leading_zeros(tmp_path):
    from mlops_gitops.data.contract import parse_csv

    spec = DatasetSpec.model_validate({"path": "x.csv", "columns": {
        "code": {"type": "string", "allowed": ["01", "02"]}}})
    path = tmp_path / "x.csv"
    path.write_text("code\n01\n02\n")
    frame, failures = parse_csv(path, spec)
    assert failures == [] and list(frame["code"]) == ["01", "02"]
    assert validate_frame(frame, spec) == []
