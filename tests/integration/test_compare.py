"""Model tests, champion vs challenger and the pull-request report against a real `mlflow server`:
real trained versions (a good and a deliberately worse challenger), real tags and artifacts."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import cli, run

pytestmark = pytest.mark.integration

SPEC = "specs/models/iris-classifier.yaml"
GOOD = "class: sklearn.linear_model.LogisticRegression\n    params: {C: 1.0, max_iter: 500}"
WORSE = "class: sklearn.dummy.DummyClassifier\n    params: {strategy: most_frequent}"
BETTER = "class: sklearn.linear_model.LogisticRegression\n    params: {C: 0.9, max_iter: 500}"


def ok(repo, *args):
    result = cli(repo, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def fails(repo, *args):
    result = cli(repo, *args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result


def edit(repo, path, old, new):
    file = repo / path
    text = file.read_text()
    assert old in text, (old, path)
    file.write_text(text.replace(old, new))


def prefix(repo) -> str:
    from mlops_gitops.spec.project import load_project

    return load_project(repo).config.model_prefix


def client(uri):
    from mlflow import MlflowClient

    return MlflowClient(uri, uri)


def tags(uri, name, version) -> dict:
    return dict(client(uri).get_model_version(name, str(version)).tags)


def artifact(uri, name, version, path) -> dict:
    import mlflow

    mlflow.set_tracking_uri(uri)
    run_id = client(uri).get_model_version(name, str(version)).run_id
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}")


def test_good_and_worse_challengers_verdicts_tags_and_report(server_repo, mlflow_server,
                                                             tmp_path):
    iris, diabetes = prefix(server_repo) + "iris-classifier", prefix(server_repo) + \
        "diabetes-regressor"
    # the lifecycle trains, tests and compares; nothing is served in prod yet
    lifecycle = ok(server_repo, "run")
    assert "[ok  ] test: 2 model(s) pass their tests" in lifecycle.stdout
    assert "[ok  ] compare: 2 challenger(s) blessed" in lifecycle.stdout
    first = tags(mlflow_server, iris, 1)
    assert first["mlops.tests"] == "passed" and first["mlops.tests.per-species-recall"] == "pass"
    assert first["mlops.verdict"] == "blessed" and first["mlops.verdict.champion"] == "none"
    recorded = artifact(mlflow_server, iris, 1, "model_tests.json")
    assert recorded["passed"] and [t["name"] for t in recorded["tests"]] == [
        "accuracy-floor", "per-species-recall", "noise-invariance", "latency", "size"]
    no_champion = ok(server_repo, "compare", "diabetes-regressor")
    assert "no champion: change thresholds are skipped, value thresholds still apply" in \
        no_champion.stdout

    # version 1 becomes the champion (what `apply --env prod` will do, set by hand here)
    client(mlflow_server).set_registered_model_alias(iris, "prod", "1")
    client(mlflow_server).set_registered_model_alias(diabetes, "prod", "1")

    # a deliberately worse challenger: tests fail, not blessed, and the version says so
    edit(server_repo, SPEC, GOOD, WORSE)
    ok(server_repo, "train", "iris-classifier")
    tested = fails(server_repo, "test", "iris-classifier")
    assert "FAIL accuracy-floor" in tested.stdout
    worse = json.loads(fails(server_repo, "compare", "iris-classifier", "--format",
                             "json").stdout)[0]
    assert worse["verdict"] == "not blessed" and worse["challenger"]["version"] == 2
    assert worse["champion"]["version"] == 1 and worse["same_rows"] is True
    failed = {(c["metric"], c["kind"]) for c in worse["judgement"]["checks"]
              if c["status"] == "fail"}
    assert failed == {("accuracy", "min"), ("f1_macro", "min"), ("f1_macro", "change.absolute")}
    assert worse["interval"]["reading"] == "worse"
    second = tags(mlflow_server, iris, 2)
    assert second["mlops.tests"] == "failed" and second["mlops.tests.accuracy-floor"] == "fail"
    assert second["mlops.verdict"] == "not_blessed"
    assert second["mlops.verdict.champion"] == "1"
    assert second["mlops.verdict.failed"] == ("accuracy min; f1_macro min; f1_macro "
                                              "change.absolute")
    assert artifact(mlflow_server, iris, 2, "compare.json")["verdict"] == "not blessed"

    # a good challenger: blessed against the same champion, with an interval on f1_macro
    edit(server_repo, SPEC, WORSE, BETTER)
    ok(server_repo, "train", "iris-classifier")
    ok(server_repo, "test", "iris-classifier")
    better = ok(server_repo, "compare", "iris-classifier")
    assert "iris-classifier: BLESSED under policy 'classification' (3/3 passed)" in \
        better.stdout
    assert f"challenger {iris}/3 vs champion {iris}/1 (alias 'prod')" in better.stdout
    assert "f1_macro delta" in better.stdout and "95% interval" in better.stdout
    third = tags(mlflow_server, iris, 3)
    assert third["mlops.verdict"] == "blessed" and third["mlops.verdict.champion"] == "1"
    assert third["mlops.verdict.primary_delta"].startswith("f1_macro ")

    # the pull-request report: marker, sections, plots, plan, step summary; and the cut
    summary = tmp_path / "summary.md"
    out = server_repo / "report.md"
    result = run(server_repo, "env", f"GITHUB_STEP_SUMMARY={summary}", "GITHUB_BASE_REF=",
                 *cli_args("report", "--base", "HEAD", "--env", "prod", "--summary", "--out",
                           str(out)))
    assert result.returncode == 0, result.stdout + result.stderr
    report = out.read_text()
    assert report.startswith("<!-- mlops-gitops:report -->\n")
    for heading in ("### Data validation", "### What changed", "### Training", "### Model tests",
                    "### Champion vs challenger", "### Registry plan: `prod`"):
        assert heading in report, heading
    assert "| `specs/models/iris-classifier.yaml` | modified |" in report
    assert "#### iris-classifier: ✅ blessed" in report
    assert f"| iris-classifier | {iris}/3 | ✅ 5/5 | ✅ blessed vs v1 |" in report
    assert f"alias {iris}@prod: version 1 -> 3" in report
    assert summary.read_text() == report
    plots = sorted(p.name for p in (server_repo / ".mlops" / "report").iterdir())
    assert plots == ["diabetes-regressor-residuals.png", "iris-classifier-confusion.png",
                     "iris-classifier-per-species-recall.png"]
    assert "](.mlops/report/iris-classifier-confusion.png)" in report
    assert len(report) < 65_536
    cut = ok(server_repo, "report", "--base", "HEAD", "--max-chars", "3000", "--no-plots").stdout
    assert len(cut) <= 3000 and cut.startswith("<!-- mlops-gitops:report -->")
    assert "cut at" in cut and "fit in one GitHub comment" in cut
    assert cut.count("<details>") == cut.count("</details>")


def cli_args(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "mlops_gitops", *args]


def test_bad_inputs_are_clear_messages(server_repo, mlflow_server):
    iris = prefix(server_repo) + "iris-classifier"
    untrained = fails(server_repo, "compare", "iris-classifier")
    assert "train first" in untrained.stderr and "run 'mlops-gitops train iris-classifier'" in \
        untrained.stderr
    assert fails(server_repo, "test", "iris-classifier").stderr.count("train first") == 1

    # a champion trained on other features: reported, and each model uses its own features
    edit(server_repo, SPEC, "features: [sepal_length, sepal_width, petal_length, petal_width]",
         "features: [sepal_length, sepal_width]")
    ok(server_repo, "train", "iris-classifier")
    client(mlflow_server).set_registered_model_alias(iris, "prod", "1")
    edit(server_repo, SPEC, "features: [sepal_length, sepal_width]",
         "features: [sepal_length, sepal_width, petal_length, petal_width]")
    ok(server_repo, "train", "iris-classifier")
    compared = json.loads(ok(server_repo, "compare", "iris-classifier", "-f", "json").stdout)[0]
    assert compared["champion"]["features"] == ["sepal_length", "sepal_width"]
    assert any("the champion was trained on different features (added petal_length, "
               "petal_width)" in note for note in compared["notes"])
    assert compared["verdict"] == "blessed"

    # an alias that is not set
    unknown = fails(server_repo, "compare", "iris-classifier", "--champion", "canary")
    assert f"alias 'canary' is not set on registered model '{iris}'" in unknown.stderr
    assert "aliases of" in unknown.stderr and "prod" in unknown.stderr

    # the champion's version is deleted: MLflow removes the alias with it
    client(mlflow_server).delete_model_version(iris, "1")
    assert "prod" not in client(mlflow_server).get_registered_model(iris).aliases
    gone = fails(server_repo, "compare", "iris-classifier", "--champion", "prod")
    assert f"alias 'prod' is not set on registered model '{iris}'" in gone.stderr
    default = ok(server_repo, "compare", "iris-classifier")
    assert "(or its version was deleted, which removes the alias)" in default.stdout

    # a policy naming a metric the model does not compute
    policy = "policies/classification.yaml"
    original = (server_repo / policy).read_text()
    edit(server_repo, policy, "accuracy: {min: 0.85}", "accuracy: {min: 0.85}\n    "
         "roc_auc_ovr: {min: 0.9}")
    metric = fails(server_repo, "compare", "iris-classifier")
    assert "policies/classification.yaml:9:" in metric.stderr
    assert "threshold metric 'roc_auc_ovr' is not computed by model 'iris-classifier'" in \
        metric.stderr

    # thresholds that contradict each other, and a model test that contradicts the policy
    (server_repo / policy).write_text(original.replace("accuracy: {min: 0.85}",
                                                       "accuracy: {min: 0.9, max: 0.8}"))
    contradiction = fails(server_repo, "compare", "iris-classifier")
    assert "min (0.9) is greater than max (0.8): no value can pass" in contradiction.stderr
    (server_repo / policy).write_text(original)
    edit(server_repo, SPEC, "{name: accuracy-floor, metric: accuracy, min: 0.85}",
         "{name: accuracy-floor, metric: accuracy, max: 0.8}")
    clash = fails(server_repo, "test", "iris-classifier")
    assert "no version can pass both" in clash.stderr and f"{SPEC}:" in clash.stderr
