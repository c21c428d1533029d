"""``monitor feedback`` against hostile or unusual label files: non-numeric regression labels, a
label corrected with an index, JSON documents, byte-order marks, files with no readable label,
empty request ids, and log lines without a request id."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from mlops_gitops.examples import diabetes_frame, write_example
from mlops_gitops.monitor import feedback
from mlops_gitops.monitor.reference import md5_of

from . import test_monitor
from .support import call_cli, copy_example_project
from .test_monitor import BENTO, log_dir, manifest, sample, write_log

project = test_monitor.project  # fixtures
registry = test_monitor.registry

DIABETES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


@pytest.fixture
def both(tmp_path, monkeypatch):
    """The example project serving iris-classifier and diabetes-regressor (version 1 each)."""
    root = copy_example_project(tmp_path / "project")
    iris = write_example("iris", root / "data" / "iris.csv")
    diabetes = write_example("diabetes", root / "data" / "diabetes.csv")
    home = root / ".mlops" / "bentoml"
    monkeypatch.setenv("BENTOML_HOME", str(home))
    source = home / "bentos" / "mlops-example-dev" / "abc123" / "src"
    source.mkdir(parents=True)
    served = manifest(md5_of(iris.read_bytes()))
    served["models"].append({
        "name": "diabetes-regressor", "spec_name": "diabetes-regressor", "version": 1,
        "fingerprint": "d" * 64, "run_id": "r2", "commit": None,
        "data_md5": md5_of(diabetes.read_bytes()), "task": "regression",
        "features": [{"name": f, "type": "float"} for f in DIABETES]})
    (source / "served.json").write_text(json.dumps(served))
    services = root / ".mlops" / "services" / "dev"
    services.mkdir(parents=True)
    (services / "deployment.json").write_text(json.dumps({
        "env": "dev", "target": "local", "bento": BENTO,
        "versions": {"iris-classifier": 1, "diabetes-regressor": 1}}))
    return root


def write_regression_log(root: Path, n: int, prediction: float = 150.0) -> pd.DataFrame:
    frame = diabetes_frame().head(n)
    folder = log_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [orjson.dumps({"time": f"2026-05-29T00:00:{i % 60:02d}Z", "request_id": f"d{i}",
                           "model": "diabetes-regressor", "version": 1,
                           "inputs": [{c: float(row[c]) for c in DIABETES}],
                           "outputs": [prediction]})
             for i, (_, row) in enumerate(frame.iterrows())]
    (folder / "dev-1-1-d.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return frame


def feedback_json(root: Path, path: Path, *args: str):
    result = call_cli("monitor", "feedback", "--env", "dev", str(path), "--format", "json",
                      *args, cwd=root)
    assert "Traceback" not in result.output and "internal error" not in result.output, \
        result.output
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


def regressor(report: dict) -> dict:
    return next(m for m in report["models"] if m["model"] == "diabetes-regressor")


def labels_csv(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


# 1. regression labels that are not numbers

def test_non_numeric_regression_labels_are_not_enough_data_not_a_crash(both, registry,
                                                                       tmp_path):
    write_regression_log(both, 300)
    labels = labels_csv(tmp_path / "labels.csv",
                        [{"request_id": f"d{i}", "label": "high"} for i in range(300)])
    result, report = feedback_json(both, labels)
    assert result.returncode == 0, result.output
    model = regressor(report)
    assert model["verdict"] == "not enough data" and report["verdict"] == "not enough data"
    assert model["unusable"] == 300 and model["metrics"] == []
    assert any("300 non-numeric label(s)" in w for w in report["warnings"]), report["warnings"]
    assert registry.tags == {}
    text = call_cli("monitor", "feedback", "--env", "dev", str(labels), cwd=both)
    assert text.returncode == 0 and "not enough data" in text.stdout, text.output


def test_non_numeric_labels_are_dropped_before_min_samples(both, registry, tmp_path):
    frame = write_regression_log(both, 300)
    rows = [{"request_id": f"d{i}", "label": "high"} for i in range(220)]
    rows += [{"request_id": f"d{i}", "label": float(frame["progression"][i])}
             for i in range(220, 300)]  # 80 usable: under min_samples 100
    result, report = feedback_json(both, labels_csv(tmp_path / "labels.csv", rows))
    assert result.returncode == 0, result.output
    model = regressor(report)
    assert model["verdict"] == "not enough data" and model["joined"] == 300
    assert model["unusable"] == 220
    assert any("80 usable" in w and "min_samples is 100" in w for w in report["warnings"])
    assert registry.tags == {}


def test_regression_degraded_with_min_only_and_max_only_thresholds(both, registry, tmp_path):
    write_regression_log(both, 300, prediction=1000.0)  # far off: r2 far below 0.3, mae > 60
    frame = sample(300)
    write_log(both, frame, ["setosa"] * 300)  # iris degraded too
    rows = [{"request_id": f"d{i}", "label": 150.0 + i % 7} for i in range(300)]
    rows += [{"request_id": f"r{i}", "label": s} for i, s in enumerate(frame["species"])]
    result, report = feedback_json(both, labels_csv(tmp_path / "labels.csv", rows))
    assert result.returncode == 2, result.output
    verdicts = {m["model"]: m["verdict"] for m in report["models"]}
    assert verdicts == {"iris-classifier": "degraded", "diabetes-regressor": "degraded"}
    reason = registry.tags[("diabetes-regressor", 1)]["mlops.health.dev.reason"]
    assert "live r2" in reason and "needs >= 0.3" in reason
    assert "live mae" in reason and "needs <= 60" in reason
    assert registry.tags[("iris-classifier", 1)]["mlops.health.dev"] == "degraded"


def test_every_verdict_and_reason_is_computed_before_the_first_registry_write(
        both, registry, tmp_path, monkeypatch):
    write_regression_log(both, 300, prediction=1000.0)
    frame = sample(300)
    write_log(both, frame, ["setosa"] * 300)
    rows = [{"request_id": f"d{i}", "label": 150.0} for i in range(300)]
    rows += [{"request_id": f"r{i}", "label": s} for i, s in enumerate(frame["species"])]
    real = feedback.degraded_reason
    calls = []

    def second_fails(quality):
        calls.append(quality.model)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return real(quality)

    monkeypatch.setattr(feedback, "degraded_reason", second_fails)
    result = call_cli("monitor", "feedback", "--env", "dev",
                      str(labels_csv(tmp_path / "labels.csv", rows)), cwd=both)
    assert result.returncode == 1 and len(calls) == 2
    assert registry.tags == {}  # nothing half-applied


def test_a_nan_metric_never_makes_degraded():
    nan = feedback.MetricCheck("r2", float("nan"), 0.3, None)
    assert not nan.failed
    low = feedback.MetricCheck("r2", 0.1, 0.3, None)
    high = feedback.MetricCheck("mae", 80.0, None, 60.0)
    both_ok = feedback.MetricCheck("mae", 50.0, 10.0, 60.0)
    assert low.failed and high.failed and not both_ok.failed
    quality = feedback.ModelQuality("m", 1, feedback.DEGRADED, 10, [nan, low, high, both_ok])
    reason = feedback.degraded_reason(quality)
    assert reason == "live r2 0.1 (needs >= 0.3); live mae 80 (needs <= 60) on 10 labelled " \
        "prediction(s)"


def test_a_metric_that_cannot_be_computed_is_skipped_not_failed(both):
    from mlops_gitops.monitor.logread import read_log
    from mlops_gitops.monitor.served import load_served

    write_regression_log(both, 1, prediction=150.0)
    log = read_log(log_dir(both), load_served(both, "dev"))
    labels = feedback.Labels(pd.DataFrame({"request_id": ["d0"], "index": [np.nan],
                                           "label": [150.0]}), 0)
    report = feedback.assess("dev", Path("l.csv"), labels,
                             {"diabetes-regressor": log.models["diabetes-regressor"]},
                             {"diabetes-regressor": {"r2": (0.3, None), "mae": (None, 60.0)}}, 1)
    [model] = report.models
    assert model.verdict == "healthy", model  # r2 of one sample is not a number: not a failure
    assert [c.metric for c in model.checks] == ["mae"]
    assert any(s.startswith("r2:") for s in model.skipped)


# 2. a label without an index corrected by one with index 0

@pytest.mark.parametrize("order", ["no index first", "index first"])
def test_a_label_and_its_correction_with_index_0_count_once(project, registry, tmp_path, order):
    frame = sample(400)
    write_log(project, frame, frame["species"])
    wrong = [{"request_id": f"r{i}", "label": "setosa"} for i in range(400)]
    right = [{"request_id": f"r{i}", "label": s, "index": 0}
             for i, s in enumerate(frame["species"])]
    if order == "index first":
        wrong, right = ([{**r, "index": 0} for r in wrong],
                        [{k: v for k, v in r.items() if k != "index"} for r in right])
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in wrong + right) + "\n")
    result, report = feedback_json(project, path)
    assert result.returncode == 0, result.output
    [model] = report["models"]
    assert model["joined"] == 400 and report["labels"] == 400
    assert model["metrics"][0]["value"] == 1.0  # the later label won


def test_a_correction_with_index_0_in_a_later_file_of_a_folder(project, registry, tmp_path):
    frame = sample(400)
    write_log(project, frame, frame["species"])
    folder = tmp_path / "labels"
    folder.mkdir()
    labels_csv(folder / "1.csv", [{"request_id": f"r{i}", "label": "setosa"} for i in range(400)])
    labels_csv(folder / "2.csv", [{"request_id": f"r{i}", "label": s, "index": 0}
                                  for i, s in enumerate(frame["species"])])
    result, report = feedback_json(project, folder)
    assert result.returncode == 0, result.output
    assert report["models"][0]["joined"] == 400 and report["labels"] == 400
    assert report["models"][0]["metrics"][0]["value"] == 1.0


# 3. files that yield nothing, JSON documents, byte-order marks

def test_a_json_file_holding_one_array_of_objects(project, registry, tmp_path):
    frame = sample(300)
    write_log(project, frame, frame["species"])
    path = tmp_path / "labels.json"
    path.write_text(json.dumps([{"request_id": f"r{i}", "label": s}
                                for i, s in enumerate(frame["species"])] + [42], indent=2))
    result, report = feedback_json(project, path)
    assert result.returncode == 0, result.output
    assert report["verdict"] == "healthy" and report["labels"] == 300
    assert report["invalid"] == 1  # the 42


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_a_byte_order_mark_loses_no_label(project, registry, tmp_path, suffix):
    frame = sample(300)
    write_log(project, frame, frame["species"])
    path = tmp_path / f"labels{suffix}"
    if suffix == ".csv":
        body = "request_id,label\n" + "".join(f"r{i},{s}\n" for i, s in
                                              enumerate(frame["species"]))
    else:
        body = "".join(json.dumps({"request_id": f"r{i}", "label": s}) + "\n"
                       for i, s in enumerate(frame["species"]))
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    result, report = feedback_json(project, path)
    assert result.returncode == 0, result.output
    assert report["labels"] == 300 and report["invalid"] == 0
    assert report["models"][0]["joined"] == 300


@pytest.mark.parametrize("name, body, where", [
    ("labels.jsonl", b"hello\nworld\n", "line 1"),
    ("labels.jsonl", b'\n{"request_id": "r1"}\n', "line 2"),
    ("labels.json", b"[1, 2, 3]", "item 1"),
    ("labels.json", b'{"request_id": ""  , "label": "x"}', "line 1"),
    ("labels.json", b"[]", ""),
    ("labels.csv", b"request_id,label\nr1,\n,setosa\n", "line 2"),
    ("labels.csv", b"request_id,label\n", ""),
    ("labels.csv", b"request_id,label,index\nr1,setosa,-1\n", "line 2"),
])
def test_a_file_with_content_but_no_readable_label_is_an_error(project, registry, tmp_path,
                                                               name, body, where):
    frame = sample(10)
    write_log(project, frame, frame["species"])
    path = tmp_path / name
    path.write_bytes(body)
    result, _ = feedback_json(project, path)
    assert result.returncode == 1, result.output
    assert str(path) in result.stderr and "no readable label" in result.stderr, result.stderr
    assert where in result.stderr
    assert registry.tags == {}


def test_a_folder_with_one_file_of_no_readable_label_is_an_error(project, registry, tmp_path):
    frame = sample(300)
    write_log(project, frame, frame["species"])
    folder = tmp_path / "labels"
    folder.mkdir()
    labels_csv(folder / "1.csv", [{"request_id": f"r{i}", "label": "setosa"} for i in range(300)])
    (folder / "2.jsonl").write_text("garbage\n")
    result, _ = feedback_json(project, folder)
    assert result.returncode == 1 and str(folder / "2.jsonl") in result.stderr, result.output
    assert "line 1" in result.stderr and registry.tags == {}


# 4. empty request ids, log lines without a request id

def test_an_empty_request_id_is_an_invalid_label(project, registry, tmp_path):
    frame = sample(300)
    write_log(project, frame, frame["species"])
    rows = [{"request_id": f"r{i}", "label": s} for i, s in enumerate(frame["species"])]
    rows += [{"request_id": "", "label": "setosa"}, {"request_id": "   ", "label": "setosa"},
             {"label": "setosa"}, {"request_id": None, "label": "setosa"},
             {"request_id": ["r1"], "label": "setosa"}, {"request_id": "r1", "label": None},
             {"request_id": "r2", "label": {"a": 1}}, {"request_id": True, "label": "setosa"}]
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result, report = feedback_json(project, path)
    assert result.returncode == 0, result.output
    assert report["invalid"] == 8 and report["labels"] == 300
    assert report["models"][0]["joined"] == 300


def test_log_rows_without_a_request_id_never_match(project):
    from mlops_gitops.monitor.logread import read_log
    from mlops_gitops.monitor.served import load_served

    frame = sample(4)
    write_log(project, frame, frame["species"])
    rows = read_log(log_dir(project), load_served(project, "dev")).models["iris-classifier"]
    ids = np.asarray([None, "r1", "", np.nan], dtype=object)  # None: a line without one
    rows = dataclasses.replace(rows, request_ids=ids)
    labels = pd.DataFrame({"request_id": ["None", "r1", "", "nan"], "index": np.nan,
                           "label": "setosa"})
    joined, counts = feedback.join(labels, rows)
    assert list(joined["request_id"]) == ["r1"]
    report = feedback.assess("dev", Path("l.csv"), feedback.Labels(labels, 0),
                             {"iris-classifier": rows}, {}, 1)
    assert report.unknown_request == 3


def test_a_label_for_request_id_none_does_not_match_log_lines_without_one(project, registry,
                                                                          tmp_path):
    frame = sample(300)
    path = write_log(project, frame, frame["species"])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines:
        del line["request_id"]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\n" + "None,setosa\n" * 300)
    result, report = feedback_json(project, labels)
    assert result.returncode == 0, result.output
    assert report["models"][0]["joined"] == 0 and report["unknown_request_ids"] == 1
