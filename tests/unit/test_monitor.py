"""``monitor`` and ``monitor feedback`` on synthetic inference logs and a copy of the example
project: a fake deploy record and bento manifest as the deploy code writes them."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from mlops_gitops.examples import iris_frame, write_example
from mlops_gitops.monitor.reference import md5_of
from mlops_gitops.monitor.served import served_models
from mlops_gitops.monitor.stats import column_drift, wasserstein

from .support import call_cli, copy_example_project

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
BENTO = "mlops-example-dev:abc123"


def manifest(md5: str, version: int = 1) -> dict:
    return {"format": 1, "project": "example", "env": "dev", "bento_tag": BENTO, "models": [{
        "name": "iris-classifier", "spec_name": "iris-classifier", "version": version,
        "fingerprint": "f" * 64, "run_id": "r1", "commit": None, "data_md5": md5,
        "task": "classification",
        "features": [{"name": f, "type": "float"} for f in FEATURES]}]}


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = copy_example_project(tmp_path / "project")
    data = write_example("iris", root / "data" / "iris.csv")
    md5 = md5_of(data.read_bytes())
    home = root / ".mlops" / "bentoml"
    monkeypatch.setenv("BENTOML_HOME", str(home))
    source = home / "bentos" / "mlops-example-dev" / "abc123" / "src"
    source.mkdir(parents=True)
    (source / "served.json").write_text(json.dumps(manifest(md5)))
    services = root / ".mlops" / "services" / "dev"
    services.mkdir(parents=True)
    (services / "deployment.json").write_text(json.dumps({
        "env": "dev", "target": "local", "bento": BENTO, "versions": {"iris-classifier": 1}}))
    return root


def log_dir(root: Path) -> Path:
    return root / ".mlops" / "inference" / "dev"


def write_log(root: Path, frame: pd.DataFrame, outputs, version: int = 1, name: str = "a",
              per_request: int = 1, prefix: str = "r", start: float = 1.78e9) -> Path:
    folder = log_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    records = frame[FEATURES].to_dict("records")
    lines = []
    for n, i in enumerate(range(0, len(records), per_request)):
        at = pd.Timestamp(start + n, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.000Z")
        lines.append(orjson.dumps({"time": at, "request_id": f"{prefix}{n}",
                                   "model": "iris-classifier", "version": version,
                                   "inputs": records[i:i + per_request],
                                   "outputs": list(outputs[i:i + per_request])}))
    path = folder / f"dev-1-1-{name}.jsonl"
    with open(path, "ab") as handle:
        handle.write(b"\n".join(lines) + b"\n")
    return path


def sample(n: int, seed: int = 1) -> pd.DataFrame:
    return iris_frame().sample(n, replace=True, random_state=seed).reset_index(drop=True)


def shifted(n: int) -> pd.DataFrame:
    frame = sample(n)
    frame["petal_length"] += 2
    frame["petal_width"] += 2
    return frame


def set_monitoring(root: Path, text: str) -> None:
    path = root / "environments" / "dev.yaml"
    path.write_text(re.sub(r"  monitoring: .*", f"  monitoring: {text}", path.read_text()))


def monitor_json(root: Path, *args: str):
    result = call_cli("monitor", "--env", "dev", "--format", "json", *args, cwd=root)
    assert "Traceback" not in result.output
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


def test_in_distribution_window_is_healthy(project):
    frame = sample(400)
    write_log(project, frame, frame["species"])
    result, report = monitor_json(project)
    assert result.returncode == 0, result.output
    assert report["verdict"] == "healthy"
    [model] = report["models"]
    assert model["samples"] == 400 and model["drifted"] == []
    assert "DVC cache" not in model["reference"]["source"]  # the checked-out file has the md5
    assert "checked out" in model["reference"]["source"]
    out = project / ".mlops" / "monitor" / "dev"
    assert (out / "report.md").is_file() and (out / "drift.prom").is_file()


def test_shifted_window_drifts_and_names_the_shifted_columns(project, tmp_path):
    frame = shifted(400)
    write_log(project, frame, ["virginica"] * len(frame))
    out = tmp_path / "out"
    result = call_cli("monitor", "--env", "dev", "--format", "markdown", "--out", str(out),
                      cwd=project)
    assert result.returncode == 2, result.output
    assert "| petal_length | psi |" in result.stdout and "**yes**" in result.stdout
    report = json.loads((out / "report.json").read_text())
    [model] = report["models"]
    assert model["verdict"] == "drift"
    assert set(model["drifted"]) == {"petal_length", "petal_width", "__prediction__"}
    drifted = {c["column"]: c["drifted"] for c in model["columns"]}
    assert drifted["sepal_length"] is False and drifted["sepal_width"] is False
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert plots == ["iris-classifier-v1-petal_length.png", "iris-classifier-v1-petal_width.png",
                     "iris-classifier-v1-prediction.png"]
    assert (out / "plots" / plots[0]).read_bytes()[:4] == b"\x89PNG"


def test_ks_and_chi_squared_with_a_small_reference(project):
    set_monitoring(project, "{drift: {method: ks, min_samples: 100}}")
    frame = sample(300)
    write_log(project, frame, frame["species"])
    result, report = monitor_json(project)
    assert result.returncode == 0, result.output
    stats = {c["column"]: c["statistic"] for c in report["models"][0]["columns"]}
    assert stats == {**dict.fromkeys(FEATURES, "ks_pvalue"), "__prediction__": "chi2_pvalue"}
    shift = shifted(300)
    write_log(project, shift, ["virginica"] * 300, name="b", start=1.79e9)
    result, report = monitor_json(project, "--window", "300")
    assert result.returncode == 2, result.output
    assert set(report["models"][0]["drifted"]) == {"petal_length", "petal_width",
                                                   "__prediction__"}


@pytest.mark.parametrize("sizes", [(1, 1), (1, 7), (300, 400), (5000, 200_000),
                                   (200_000, 5000)])
@pytest.mark.parametrize("ties", [False, True])
def test_wasserstein_is_scipys(sizes, ties):
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(sum(sizes))
    u, v = rng.normal(0, 1, sizes[0]), rng.normal(0.3, 2, sizes[1])
    if ties:  # many equal values, inside each sample and across the two
        u, v = u.round(1), v.round(1)
    assert wasserstein(u, v) == pytest.approx(wasserstein_distance(u, v), rel=1e-12, abs=1e-15)
    assert wasserstein(u, u.copy()) == 0


def test_small_categorical_references_use_evidentlys_tests():
    """Chi-squared goodness of fit to the reference's proportions (not a contingency table with
    Yates' correction), and the two-proportion z-test for two categories, as Evidently does."""
    from scipy import stats

    ref = pd.Series(["a"] * 500 + ["b"] * 500)
    cur = pd.Series(["a"] * 60 + ["b"] * 40)
    two = column_drift("c", "feature", "categorical", ref, cur, "ks", None)
    pooled = 560 / 1100
    z = (0.5 - 0.6) / np.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 100))
    assert two.statistic == "z_pvalue" and two.value == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert two.value == pytest.approx(0.0565, abs=1e-4) and not two.drifted
    ref3 = pd.Series(["a"] * 300 + ["b"] * 300 + ["c"] * 300)
    cur3 = pd.Series(["a"] * 45 + ["b"] * 30 + ["c"] * 25)
    three = column_drift("c", "feature", "categorical", ref3, cur3, "ks", None)
    expected = stats.chisquare([45, 30, 25], [100 / 3] * 3).pvalue
    assert three.statistic == "chi2_pvalue" and three.value == pytest.approx(expected)
    new = column_drift("c", "feature", "categorical", ref3, pd.Series(["a"] * 99 + ["d"]),
                       "ks", None)
    assert new.value == 0.0 and new.drifted  # a category the training data never had
    same = column_drift("c", "feature", "categorical", pd.Series(["a"] * 10), pd.Series(["a"]),
                        "ks", None)
    assert same.statistic == "z_pvalue" and same.value == 1.0 and not same.drifted


def test_wasserstein_and_jensen_shannon_with_a_large_reference():
    rng = np.random.default_rng(0)
    reference = pd.Series(rng.normal(0, 1, 5000))
    same = column_drift("x", "feature", "numeric", reference, pd.Series(rng.normal(0, 1, 800)),
                        "ks", None)
    moved = column_drift("x", "feature", "numeric", reference,
                         pd.Series(rng.normal(0.5, 1, 800)), "ks", None)
    assert same.statistic == "wasserstein_norm" and not same.drifted
    assert moved.drifted and moved.value == pytest.approx(0.5, abs=0.1)
    cats = pd.Series(rng.choice(["a", "b", "c"], 5000))
    other = pd.Series(rng.choice(["a", "b", "c"], 800, p=[0.7, 0.2, 0.1]))
    js = column_drift("c", "feature", "categorical", cats, other, "js", None)
    assert js.statistic == "jensenshannon" and js.drifted and js.threshold == 0.1


def test_psi_threshold_comes_from_the_spec(project):
    set_monitoring(project, "{drift: {method: psi, threshold: 20.0, min_samples: 100}}")
    frame = shifted(300)
    write_log(project, frame, frame["species"])
    result, report = monitor_json(project)
    columns = report["models"][0]["columns"]
    assert {c["statistic"] for c in columns} == {"psi"} and {c["threshold"] for c in columns} \
        == {20.0}
    petal = next(c for c in columns if c["column"] == "petal_length")
    assert 1.0 < petal["value"] < 20.0 and not petal["drifted"]  # large, but under 20
    assert result.returncode == 0


def test_too_few_samples_is_not_enough_data_never_healthy(project):
    frame = sample(20)
    write_log(project, frame, frame["species"])
    result = call_cli("monitor", "--env", "dev", cwd=project)
    assert result.returncode == 0, result.output
    assert "not enough data" in result.stdout and "healthy" not in result.stdout
    assert "20 prediction(s) in the window, min_samples is 100" in result.stdout
    _, report = monitor_json(project)
    assert report["verdict"] == "not enough data" and report["models"][0]["columns"] == []


def test_corrupted_lines_are_counted_and_other_versions_left_out(project):
    frame = sample(200)
    path = write_log(project, frame, frame["species"])
    shift = shifted(150)
    write_log(project, shift, ["virginica"] * 150, version=2, name="b")  # another version
    with open(path, "ab") as handle:
        handle.write(b'{"time": "2026-11-30T10:00:00.000Z", "request_id": "x", "mod\n')  # cut
        handle.write(b"not json at all\n[1, 2]\n")
        handle.write(b'{"time": "2026-11-30T10:00:00.000Z", "request_id": "y", '
                     b'"model": "iris-classifier", "version": 1, "inputs": [{"a": 1}], '
                     b'"outputs": ["setosa"]}\n')  # missing features
        handle.write(b'{"time": "yesterday", "request_id": "z", "model": "iris-classifier", '
                     b'"version": 1, "inputs": [{"sepal_length": 1, "sepal_width": 1, '
                     b'"petal_length": 1, "petal_width": 1}], "outputs": ["setosa"]}\n')
        handle.write(b'{"time": "2026-11-30T10:00:00.000Z", "request_id": "w", '
                     b'"model": "other-model", "version": 1, "inputs": [], "outputs": []}\n')
    result, report = monitor_json(project)
    assert result.returncode == 0, result.output
    assert report["log"]["corrupted_lines"] == 5
    assert report["log"]["unknown_model_lines"] == 1
    [model] = report["models"]
    assert model["samples"] == 200 and model["other_version_lines"] == 150
    assert model["drifted"] == []
    assert any("150 line(s) of other versions left out (v2: 150)" in w
               for w in report["warnings"])


def test_window_and_since_select_the_latest_predictions(project):
    old = shifted(300)
    write_log(project, old, ["virginica"] * 300, start=1.70e9)
    new = sample(300, seed=3)
    write_log(project, new, new["species"], name="b", start=1.80e9)
    result, report = monitor_json(project, "--window", "300")
    assert result.returncode == 0 and report["models"][0]["samples"] == 300
    result, report = monitor_json(project, "--since", "2027-01-01T00:00:00Z")
    assert result.returncode == 0 and report["models"][0]["samples"] == 300
    result, report = monitor_json(project)  # the whole log: half of it shifted
    assert report["models"][0]["samples"] == 600
    bad = call_cli("monitor", "--env", "dev", "--since", "last tuesday", cwd=project)
    assert bad.returncode == 1 and "not an ISO 8601 time" in bad.stderr


def test_missing_or_empty_log_is_an_error_naming_the_folder(project):
    result = call_cli("monitor", "--env", "dev", cwd=project)
    assert result.returncode == 1
    assert str(log_dir(project)) in result.stderr and "does not exist" in result.stderr
    log_dir(project).mkdir(parents=True)
    (log_dir(project) / "dev-1-1-0001.jsonl").write_bytes(b"")
    result = call_cli("monitor", "--env", "dev", cwd=project)
    assert result.returncode == 1 and "inference log is empty" in result.stderr
    assert "Traceback" not in result.output


def test_unknown_environment_and_nothing_deployed_are_errors(project):
    result = call_cli("monitor", "--env", "staging", cwd=project)
    assert result.returncode == 1 and "unknown environment 'staging'" in result.stderr
    (project / ".mlops" / "services" / "dev" / "deployment.json").unlink()
    result = call_cli("monitor", "--env", "dev", cwd=project)
    assert result.returncode == 1 and "nothing is deployed" in result.stderr
    result = call_cli("monitor", cwd=project)
    assert result.returncode == 1 and "--env ENV is required" in result.stderr
    assert "Traceback" not in result.output


def test_a_forged_bento_tag_never_leads_out_of_the_bento_store(project, tmp_path):
    """An edited deploy record whose tag climbs out of the store to a planted manifest: refused
    before any file is read there."""
    planted = tmp_path / "planted" / "x" / "src"
    planted.mkdir(parents=True)
    (planted / "served.json").write_text(json.dumps(manifest("0" * 32)))
    record = project / ".mlops" / "services" / "dev" / "deployment.json"
    home = project / ".mlops" / "bentoml" / "bentos"
    climb = os.path.relpath(tmp_path / "planted", home)
    for tag in (f"{climb}:x", "mlops-example-dev:../../../../planted", "a:b:c", "UPPER:1", ""):
        record.write_text(json.dumps({"env": "dev", "target": "local", "bento": tag}))
        result = call_cli("monitor", "--env", "dev", cwd=project)
        assert result.returncode == 1, (tag, result.output)
        assert "Traceback" not in result.output
        assert ("is not a bento tag" in result.stderr) if tag else \
            ("nothing is deployed" in result.stderr), (tag, result.stderr)


def test_served_models_from_plain_dicts():
    [model] = served_models("dev", {"bento": BENTO}, manifest("ab" * 16))
    assert model.name == "iris-classifier" and model.version == 1 and model.data_md5 == "ab" * 16
    assert [f.name for f in model.features] == FEATURES and model.bento == BENTO
    with pytest.raises(Exception, match="manifest .* is missing"):
        served_models("dev", {"bento": BENTO}, None)
    with pytest.raises(Exception, match="is damaged: model entry 1: version is None"):
        served_models("dev", {"bento": BENTO}, {"models": [{"name": "x"}]})


@pytest.mark.parametrize("field, value", [
    ("commit", "--output=/tmp/pwned"),  # would reach `git show` as an option
    ("commit", "HEAD"),  # a forged "freshly trained"
    ("data_md5", "ab/dev/zero"),  # would reach a path in the DVC cache
    ("data_md5", 12345),
    ("version", 1.7), ("version", True), ("version", "1"), ("version", 0),
    ("features", {"a": 1}), ("features", []),
    ("features", [{"name": "x", "type": "evil"}]),
    ("features", [{"name": "\x1b[31mred", "type": "float"}]),  # a terminal escape
    ("name", ""), ("task", "clustering"),
])
def test_a_forged_manifest_is_refused_field_by_field(project, field, value):
    """The bento manifest is a file on disk: every field is checked before git, a path or the
    terminal sees it."""
    path = project / ".mlops" / "bentoml" / "bentos" / "mlops-example-dev" / "abc123" / "src" / \
        "served.json"
    forged = json.loads(path.read_text())
    forged["models"][0][field] = value
    path.write_text(json.dumps(forged))
    set_monitoring(project, "{drift: {min_samples: 10}, max_model_age_days: 30}")
    write_log(project, sample(50), ["setosa"] * 50)
    result = call_cli("monitor", "--env", "dev", cwd=project)
    assert result.returncode == 1, result.output
    assert "is damaged: model entry 1:" in result.stderr and "redeploy" in result.stderr
    assert "Traceback" not in result.output and not Path("/tmp/pwned^{commit}").exists()


def test_reference_is_the_pinned_data_version_not_the_checkout(project):
    data = project / "data" / "iris.csv"
    original = data.read_bytes()
    md5 = md5_of(original)
    cache = project / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    cache.parent.mkdir(parents=True)
    cache.write_bytes(original)
    shift = iris_frame()
    shift["petal_length"] += 2  # the checked-out data moved on since training
    shift.to_csv(data, index=False)
    frame = sample(300)
    write_log(project, frame, frame["species"])
    result, report = monitor_json(project)
    assert result.returncode == 0, result.output
    assert report["models"][0]["reference"]["source"].startswith("DVC cache")
    cache.unlink()
    result = call_cli("monitor", "--env", "dev", cwd=project)
    assert result.returncode == 1 and f"(md5 {md5}) is not in the DVC cache" in result.stderr


def test_prometheus_file_for_the_textfile_collector(project):
    frame = shifted(300)
    write_log(project, frame, ["virginica"] * 300)
    result = call_cli("monitor", "--env", "dev", cwd=project)
    assert result.returncode == 2
    prom = (project / ".mlops" / "monitor" / "dev" / "drift.prom").read_text()
    assert "# TYPE mlops_drift_statistic gauge" in prom
    labels = 'env="dev",model="iris-classifier",version="1",feature="petal_length",method="psi"'
    assert re.search(r"^mlops_drift_statistic\{" + re.escape(labels) + r"\} [0-9.e+-]+$", prom,
                     re.M)
    assert f"mlops_drift_detected{{{labels}}} 1" in prom
    assert 'mlops_drift_detected{env="dev",model="iris-classifier",version="1",' \
        'feature="sepal_width",method="psi"} 0' in prom
    assert 'mlops_monitor_samples{env="dev",model="iris-classifier",version="1"} 300' in prom
    assert 'mlops_monitor_verdict{env="dev"} 2' in prom
    from mlops_gitops.monitor.last import last_verdict

    last = last_verdict(project, "dev", BENTO)  # what status shows
    assert last.verdict == "drift" and last.at.endswith("Z") and "petal_length" in last.detail
    assert "STALE" not in last.detail
    redeployed = last_verdict(project, "dev", "mlops-example-dev:newer")
    assert redeployed.detail.startswith(f"STALE: judged {BENTO}, now serving "
                                        "mlops-example-dev:newer (run monitor again)")
    assert last_verdict(project, "prod") is None
    for line in prom.splitlines():  # the exposition format: comments or NAME{LABELS} VALUE
        assert line.startswith("# ") or re.match(r"^[a-z_]+\{[^}]*\} \S+$", line), line


def _line(version=1, inputs=None, rid="x") -> bytes:
    instance = inputs if inputs is not None else dict.fromkeys(FEATURES, 1.0)
    return orjson.dumps({"time": "2026-11-30T10:00:00.000Z", "request_id": rid,
                         "model": "iris-classifier", "version": version, "inputs": [instance],
                         "outputs": ["setosa"]}) + b"\n"


def test_versions_that_are_not_integers_are_corrupted_lines(project):
    frame = sample(200)
    path = write_log(project, frame, frame["species"])
    with open(path, "ab") as handle:
        for version in (1.0, True, None, [1]):  # JSON numbers and booleans are no versions
            handle.write(_line(version))
        handle.write(_line("1"))  # a string of the right number: the same version
        handle.write(_line("2.0"))  # another version
    _, report = monitor_json(project)
    assert report["log"]["corrupted_lines"] == 4
    assert report["models"][0]["samples"] == 201
    assert report["models"][0]["other_version_lines"] == 1


def test_no_value_columns_are_left_out_of_the_share(project):
    """Features that are null (or not numbers) in every line: not compared, said, and out of
    the drift share; nothing left to compare is 'not enough data', never healthy."""
    frame = sample(300)
    write_log(project, frame, frame["species"])
    path = log_dir(project) / "dev-1-1-a.jsonl"
    lines = path.read_bytes().splitlines()
    nulled = [orjson.dumps({**(obj := orjson.loads(line)), "inputs": [
        {**obj["inputs"][0], "petal_width": None, "sepal_width": "abc"}]}) for line in lines]
    path.write_bytes(b"\n".join(nulled) + b"\n")
    result, report = monitor_json(project)
    [model] = report["models"]
    empty = {c["column"] for c in model["columns"] if c["statistic"] == "none"}
    assert empty == {"petal_width", "sepal_width"}
    assert any("no usable value" in w and "petal_width" in w for w in report["warnings"])
    assert model["drift_share"] == 0.0 and model["verdict"] == "healthy"
    every = [orjson.dumps({**(obj := orjson.loads(line)), "inputs": [dict.fromkeys(FEATURES)],
                           "outputs": [None]}) for line in lines]
    path.write_bytes(b"\n".join(every) + b"\n")
    result, report = monitor_json(project)
    assert result.returncode == 0 and report["verdict"] == "not enough data", result.output
    assert any("no column could be compared" in w for w in report["warnings"])
    assert "healthy" not in call_cli("monitor", "--env", "dev", cwd=project).stdout


def test_a_log_without_the_served_features_is_an_error_naming_them(project):
    """The manifest says 'color'; no line has it: not 'not enough data' forever, but exit 1."""
    path = project / ".mlops" / "bentoml" / "bentos" / "mlops-example-dev" / "abc123" / "src" / \
        "served.json"
    served = json.loads(path.read_text())
    served["models"][0]["features"].append({"name": "color", "type": "string"})
    path.write_text(json.dumps(served))
    frame = sample(200)
    write_log(project, frame, frame["species"])
    result = call_cli("monitor", "--env", "dev", cwd=project)
    assert result.returncode == 1, result.output
    assert "no line of iris-classifier v1 in the log has its features: 'color' missing in 200" \
        in result.stderr and "Traceback" not in result.output
    with open(log_dir(project) / "dev-1-1-a.jsonl", "ab") as handle:  # one line has it
        handle.write(_line(inputs={**dict.fromkeys(FEATURES, 1.0), "color": "red"}))
    _, report = monitor_json(project)
    assert report["models"][0]["logged"] == 1
    assert any("200 line(s) without a feature of this version skipped ('color' missing in 200)"
               in w for w in report["warnings"])


@pytest.mark.parametrize("since", ["3000-01-01", "1600-01-01", "now", "today", "", "2026-13-01"])
def test_since_outside_iso_or_the_log_s_range_is_a_usage_error(project, since):
    frame = sample(200)
    write_log(project, frame, frame["species"])
    result = call_cli("monitor", "--env", "dev", "--since", since, cwd=project)
    assert result.returncode == 1 and "is not an ISO 8601 time" in result.stderr, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output


def test_reports_that_cannot_be_written_say_where_and_leave_no_scratch(project, tmp_path):
    frame = sample(200)
    write_log(project, frame, frame["species"])
    out = tmp_path / "out"
    (out / "report.json").mkdir(parents=True)  # in the way
    result = call_cli("monitor", "--env", "dev", "--out", str(out), cwd=project)
    assert result.returncode == 1, result.output
    assert f"{out / 'report.json'}: error: cannot write the report" in result.stderr
    assert not list(out.glob(".*.tmp")) and "Traceback" not in result.output
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    result = call_cli("monitor", "--env", "dev", "--out", str(a_file), cwd=project)
    assert result.returncode == 1 and "--out" in result.stderr and "cannot make the folder" \
        in result.stderr, result.output


def test_model_age_gauges_escape_their_labels():
    from mlops_gitops.monitor.age import ModelAge, prometheus

    text = prometheus('de"v', [ModelAge('m"x\\y', "m", 1, "c" * 40, 30, 45.0, True, "")])
    assert 'mlops_model_age_days{env="de\\"v",model="m\\"x\\\\y",version="1"} 45.0' in text


class FakeRegistry:
    def __init__(self):
        self.tags = {}

    def set_version_tags(self, name, number, tags):
        self.tags[(name, number)] = tags


@pytest.fixture
def registry(monkeypatch):
    fake = FakeRegistry()
    monkeypatch.setattr("mlops_gitops.cli.monitor_commands.open_registry",
                        lambda project, mode: fake)
    return fake


def test_feedback_with_degraded_accuracy_records_degraded(project, registry, tmp_path):
    frame = sample(300)
    write_log(project, frame, frame["species"], per_request=2)  # 150 requests of 2 instances
    labels = ["setosa"] * 300  # two thirds wrong
    rows = [{"request_id": f"r{i // 2}", "index": i % 2, "label": labels[i]} for i in range(300)]
    rows += [{"request_id": "nobody", "index": 0, "label": "setosa"},
             {"request_id": "r3", "label": "setosa"}]  # unknown id; no index, 2 instances
    labels_file = tmp_path / "labels.csv"
    pd.DataFrame(rows).to_csv(labels_file, index=False)
    result = call_cli("monitor", "feedback", "--env", "dev", str(labels_file), "--format",
                      "json", cwd=project)
    assert result.returncode == 2, result.output
    report = json.loads(result.stdout)
    assert report["verdict"] == "degraded" and report["unknown_request_ids"] == 1
    assert report["ambiguous"] == 1
    [model] = report["models"]
    assert model["joined"] == 300
    accuracy = next(m for m in model["metrics"] if m["metric"] == "accuracy")
    expected = float(np.mean(frame["species"].to_numpy() == "setosa"))
    assert accuracy["value"] == pytest.approx(expected) and not accuracy["ok"]
    tags = registry.tags[("iris-classifier", 1)]
    assert tags["mlops.health.dev"] == "degraded" and "live accuracy" in \
        tags["mlops.health.dev.reason"]


def test_feedback_healthy_jsonl_and_not_enough_data(project, registry, tmp_path):
    frame = sample(300)
    write_log(project, frame, frame["species"])
    labels_file = tmp_path / "labels.jsonl"
    labels_file.write_text("\n".join(json.dumps({"request_id": f"r{i}", "label": s})
                                     for i, s in enumerate(frame["species"])) + "\nbroken\n")
    result = call_cli("monitor", "feedback", "--env", "dev", str(labels_file), cwd=project)
    assert result.returncode == 0, result.output
    assert "live quality healthy" in result.stdout and "1 unreadable label line" in result.stdout
    assert registry.tags == {}
    labels_file.write_text(json.dumps({"request_id": "r1", "label": "setosa"}) + "\n")
    result = call_cli("monitor", "feedback", "--env", "dev", str(labels_file), cwd=project)
    assert result.returncode == 0 and "not enough data" in result.stdout
    assert registry.tags == {}


def test_feedback_bad_files_are_explained(project, registry, tmp_path):
    frame = sample(10)
    write_log(project, frame, frame["species"])
    missing = call_cli("monitor", "feedback", "--env", "dev", str(tmp_path / "nope.csv"),
                       cwd=project)
    assert missing.returncode == 1 and "cannot read the labels file" in missing.stderr
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,truth\n1,setosa\n")
    result = call_cli("monitor", "feedback", "--env", "dev", str(wrong), cwd=project)
    assert result.returncode == 1 and "expected the columns request_id,label" in result.stderr
    assert "Traceback" not in missing.output + result.output


def test_feedback_from_a_folder_later_labels_correct_earlier_ones(project, registry, tmp_path):
    frame = sample(300)
    write_log(project, frame, frame["species"])
    folder = tmp_path / "feedback"
    folder.mkdir()
    wrong = pd.DataFrame({"request_id": [f"r{i}" for i in range(300)], "label": "setosa"})
    wrong.to_csv(folder / "2026-11-01.csv", index=False)
    (folder / "empty.jsonl").write_text("")  # a file still being written: skipped
    (folder / "notes.txt").write_text("not labels")
    result = call_cli("monitor", "feedback", "--env", "dev", str(folder), "--format", "json",
                      cwd=project)
    assert result.returncode == 2, result.output
    assert json.loads(result.stdout)["labels"] == 300
    # a later file with the true labels corrects every one of them: no label counted twice
    (folder / "2026-11-02.jsonl").write_text("\n".join(
        json.dumps({"request_id": f"r{i}", "label": s}) for i, s in enumerate(frame["species"])))
    result = call_cli("monitor", "feedback", "--env", "dev", str(folder), "--format", "json",
                      cwd=project)
    assert result.returncode == 0, result.output
    report = json.loads(result.stdout)
    assert report["labels"] == 300 and report["models"][0]["joined"] == 300
    assert report["models"][0]["metrics"][0]["value"] == 1.0
    empty = tmp_path / "none"
    empty.mkdir()
    result = call_cli("monitor", "feedback", "--env", "dev", str(empty), cwd=project)
    assert result.returncode == 1 and "no labels file in the folder" in result.stderr
    assert "Traceback" not in result.output


def test_a_log_read_in_parallel_parts_reads_the_same_rows(project):
    from mlops_gitops.monitor.logread import read_log
    from mlops_gitops.monitor.served import load_served

    frame = sample(500)
    path = write_log(project, frame, frame["species"], per_request=3)
    with open(path, "ab") as handle:
        handle.write(b"garbage\n\n")
    write_log(project, frame.head(50), frame["species"].head(50), version=2, name="b")
    served = load_served(project, "dev")
    one = read_log(log_dir(project), served)
    many = read_log(log_dir(project), served, workers=2, part_bytes=997)  # lines cut anywhere
    assert (many.lines, many.corrupted, many.files) == (one.lines, one.corrupted, one.files) \
        == (218, 1, 2)
    a, b = one.models["iris-classifier"], many.models["iris-classifier"]
    assert b.other_version == a.other_version == 50
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert list(a.request_ids) == list(b.request_ids) and list(a.index) == list(b.index)


def test_categories_compare_the_same_from_json_and_from_csv():
    """The log's JSON gives 1.0 and true where the training CSV gives 1 and True."""
    rng = np.random.default_rng(2)
    reference = pd.Series(rng.choice([1, 2], 400))
    current = pd.Series(rng.choice([1, 2], 400).astype(float))
    for method in ("psi", "ks"):
        result = column_drift("sex", "feature", "categorical", reference, current, method, None)
        assert not result.drifted, result
    flags = pd.Series(rng.choice([True, False], 400))
    logged = pd.Series([bool(v) for v in rng.choice([True, False], 400)], dtype=object)
    assert not column_drift("flag", "feature", "categorical", flags, logged, "ks", None).drifted
