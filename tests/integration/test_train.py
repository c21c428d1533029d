"""Training against a real `mlflow server` and the embedded default (no mocks)."""

from __future__ import annotations

import json
import sys
import time

import pytest

from tests.integration.conftest import BACKENDS, backend_server, cli, dvc, free_port, run

pytestmark = pytest.mark.integration


@pytest.fixture(params=BACKENDS)
def mlflow_server(request) -> str:
    """Every test here that uses a server runs against SQLite and PostgreSQL backends."""
    return backend_server(request)


def train(repo, *args):
    result = cli(repo, "train", "--format", "json", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return {r["model"]: r for r in json.loads(result.stdout)}


def test_train_registers_loads_back_and_is_a_noop_the_second_time(server_repo, mlflow_server):
    first = train(server_repo)
    iris = first["iris-classifier"]
    assert iris["status"] == "trained" and iris["version"] == 1
    assert iris["metrics"]["accuracy"] > 0.85
    assert first["diabetes-regressor"]["metrics"]["r2"] > 0.3

    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server, mlflow_server)
    name = iris["registered_name"]
    version = client.get_model_version(name, "1")
    assert version.tags["mlops.fingerprint"] == iris["fingerprint"]
    assert version.tags["mlops.status"] == "ready" and version.tags["mlops.managed"] == "true"
    assert client.get_registered_model(name).tags["mlops.managed"] == "true"
    run_data = client.get_run(version.run_id).data
    assert run_data.tags["mlops.data_md5"] and run_data.tags["mlops.git_commit"]
    assert run_data.tags["mlops.git_dirty"] == "false"
    assert run_data.params["estimator"] == "sklearn.linear_model.LogisticRegression"
    assert run_data.metrics["accuracy"] == pytest.approx(iris["metrics"]["accuracy"])
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(mlflow_server)  # earlier in-process tests may have set another
    lineage = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/lineage.json")
    assert lineage["dataset"]["test_split_hash"] == iris["test_split_hash"]
    assert lineage["spec_files"]["specs/models/iris-classifier.yaml"]

    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
    sample = pd.DataFrame([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]],
                          columns=["sepal_length", "sepal_width", "petal_length", "petal_width"])
    assert list(loaded.predict(sample)) == ["setosa", "virginica"]

    # MLflow's own conventions, so its UI shows what users look for
    assert run_data.tags["mlflow.source.git.commit"] == run_data.tags["mlops.git_commit"]
    assert run_data.tags["mlflow.source.name"] == "mlops-gitops train iris-classifier"
    assert run_data.tags["mlflow.runName"] == f"iris-classifier-{iris['fingerprint'][:12]}"
    (dataset_input,) = client.get_run(version.run_id).inputs.dataset_inputs
    assert dataset_input.dataset.name == "iris"
    assert dataset_input.dataset.digest == run_data.tags["mlops.data_md5"]
    assert json.loads(dataset_input.dataset.source) == {"uri": "data/iris.csv"}
    assert "iris-classifier.yaml at commit" in version.description
    # the signature is typed by the dataset contract: diabetes's `sex` is an int column, and a
    # CSV read by pandas predicts as it is (int64 was once refused against a double signature)
    regressor = first["diabetes-regressor"]["registered_name"]
    diabetes = mlflow.pyfunc.load_model(f"models:/{regressor}/1")
    inputs = {c.name: c.type.name for c in diabetes.metadata.get_input_schema().inputs}
    assert inputs["sex"] == "long" and inputs["bmi"] == "double"
    frame = pd.read_csv(server_repo / "data" / "diabetes.csv")
    assert len(diabetes.predict(frame[list(inputs)])) == len(frame)

    second = train(server_repo)
    assert second["iris-classifier"]["status"] == "cached"
    assert second["iris-classifier"]["version"] == 1


def test_force_retrains_with_identical_metrics(server_repo):
    first = train(server_repo, "iris-classifier")["iris-classifier"]
    again = train(server_repo, "iris-classifier", "--force")["iris-classifier"]
    assert again["status"] == "trained" and again["version"] == first["version"] + 1
    assert again["metrics"] == first["metrics"]
    assert again["fingerprint"] == first["fingerprint"]
    assert again["test_split_hash"] == first["test_split_hash"]


def test_changed_hyperparameter_is_a_new_fingerprint(server_repo):
    first = train(server_repo, "iris-classifier")["iris-classifier"]
    spec = server_repo / "specs" / "models" / "iris-classifier.yaml"
    spec.write_text(spec.read_text().replace("C: 1.0", "C: 0.5"))
    second = train(server_repo, "iris-classifier")["iris-classifier"]
    assert second["fingerprint"] != first["fingerprint"]
    assert second["status"] == "trained" and second["version"] == first["version"] + 1


def test_owner_change_keeps_the_fingerprint(server_repo):
    first = train(server_repo, "iris-classifier")["iris-classifier"]
    spec = server_repo / "specs" / "models" / "iris-classifier.yaml"
    spec.write_text(spec.read_text().replace("owner: ml-team", "owner: another-team"))
    assert train(server_repo, "iris-classifier")["iris-classifier"]["status"] == "cached"
    assert first["status"] == "trained"


def test_fast_lookup_agrees_with_the_mlflow_client(server_repo, mlflow_server):
    from mlops_gitops.registry.lookup import find_ready_version
    from mlops_gitops.registry.mlflow import MlflowRegistry
    from mlops_gitops.tracking import Tracking

    result = train(server_repo, "iris-classifier")["iris-classifier"]
    tracking = Tracking(mlflow_server)
    name, fingerprint = result["registered_name"], result["fingerprint"]
    assert find_ready_version(tracking, name, fingerprint) == result["version"]
    assert MlflowRegistry(tracking).find_version(name, fingerprint).version == result["version"]
    assert find_ready_version(tracking, name, "0" * 64) is None


def test_version_not_marked_ready_is_not_reused(server_repo, mlflow_server):
    from mlflow import MlflowClient

    first = train(server_repo, "iris-classifier")["iris-classifier"]
    client = MlflowClient(mlflow_server, mlflow_server)
    client.delete_model_version_tag(first["registered_name"], str(first["version"]),
                                    "mlops.status")
    again = train(server_repo, "iris-classifier")["iris-classifier"]
    assert again["status"] == "trained" and again["version"] == first["version"] + 1


def test_server_down_fails_fast_with_the_uri(example_repo):
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run(example_repo, "env", f"MLFLOW_TRACKING_URI={uri}", sys.executable, "-m",
                 "mlops_gitops", "train", "iris-classifier", check=False)
    assert result.returncode == 1
    assert f"cannot reach the MLflow tracking server at {uri}" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert time.monotonic() - started < 60


def test_embedded_default_store(example_repo):
    result = train(example_repo, "iris-classifier")["iris-classifier"]
    assert result["status"] == "trained"
    assert (example_repo / ".mlops" / "mlflow.db").is_file()
    assert train(example_repo, "iris-classifier")["iris-classifier"]["status"] == "cached"


@pytest.mark.parametrize("old,new,fragment,field", [
    ("C: 1.0", "C: -1.0", "hyperparameter rejected: The 'C' parameter of LogisticRegression",
     "spec.estimator.params.C"),
    ("max_iter: 500", "max_itr: 500", "LogisticRegression has no parameter 'max_itr'",
     "spec.estimator.params.max_itr"),
])
def test_bad_hyperparameter_names_the_spec_field(example_repo, old, new, fragment, field):
    spec = example_repo / "specs" / "models" / "iris-classifier.yaml"
    spec.write_text(spec.read_text().replace(old, new))
    result = cli(example_repo, "train", "iris-classifier")
    assert result.returncode == 1
    assert "specs/models/iris-classifier.yaml:" in result.stderr
    assert fragment in result.stderr and field in result.stderr
    assert "Traceback" not in result.stderr


def test_single_class_training_set(example_repo):
    data = example_repo / "data" / "iris.csv"
    lines = data.read_text().splitlines(keepends=True)
    data.write_text("".join(lines[:51]))  # header + the 50 setosa rows
    dvc(example_repo, "add", "-q", "data/iris.csv")  # a new data version, recorded
    spec = example_repo / "specs" / "datasets" / "iris.yaml"
    spec.write_text(spec.read_text().replace("min_rows: 100", "min_rows: 10")
                    .replace(", stratify: species", ""))
    result = cli(example_repo, "train", "iris-classifier")
    assert result.returncode == 1
    assert "single class of 'species'" in result.stderr
    assert "specs/models/iris-classifier.yaml:" in result.stderr


def test_contract_failure_stops_training(example_repo):
    data = example_repo / "data" / "iris.csv"
    data.write_text(data.read_text().replace("setosa", "setoza", 1))
    dvc(example_repo, "add", "-q", "data/iris.csv")  # recorded, yet it breaks the contract
    result = cli(example_repo, "train", "iris-classifier")
    assert result.returncode == 1
    assert "dataset 'iris' breaks its contract" in result.stderr
    assert not (example_repo / ".mlops" / "mlflow.db").exists()


def test_verify_retrains_from_lineage_even_after_the_data_moved_on(server_repo):
    trained = train(server_repo, "iris-classifier")["iris-classifier"]
    data = server_repo / "data" / "iris.csv"
    lines = data.read_text().splitlines(keepends=True)
    data.write_text("".join(lines[:-5]))  # a newer data version in the working tree
    dvc(server_repo, "add", "-q", "data/iris.csv")
    result = cli(server_repo, "verify", "iris-classifier", "--version", str(trained["version"]),
                 "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["data_source"].startswith("git ")
    assert report["reproduced"] == pytest.approx(trained["metrics"], abs=1e-12)


def test_verify_unknown_version(server_repo):
    train(server_repo, "iris-classifier")
    result = cli(server_repo, "verify", "iris-classifier", "--version", "99")
    assert result.returncode == 1
    assert "iris-classifier/99 does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_never_takes_over_another_projects_model(server_repo, mlflow_server):
    from mlflow import MlflowClient

    from mlops_gitops.spec.project import load_project

    name = load_project(server_repo).name + "-iris-classifier"
    client = MlflowClient(mlflow_server, mlflow_server)
    client.create_registered_model(name, tags={"mlops.managed": "true",
                                               "mlops.project": "other-team"})
    result = cli(server_repo, "train", "iris-classifier")
    assert result.returncode == 1
    assert f"registered model '{name}' exists but is not managed by project" in result.stderr
    assert "specs/models/iris-classifier.yaml:" in result.stderr
    model = client.get_registered_model(name)
    assert model.tags["mlops.project"] == "other-team"
    assert client.search_model_versions(f"name = '{name}'") == []


def test_two_concurrent_trains_of_one_fingerprint_register_one_version(server_repo, mlflow_server,
                                                                       tmp_path):
    import subprocess

    from mlflow import MlflowClient

    from tests.integration.conftest import clean_env

    barrier = tmp_path / "barrier"
    barrier.mkdir()  # both trains pass their "already registered?" check, fit, then wait here
    env = {**clean_env(), "MLOPS_GITOPS_TEST_TRAIN_BARRIER": f"{barrier}:2"}
    command = [sys.executable, "-m", "mlops_gitops", "train", "iris-classifier", "--format",
               "json"]
    processes = [subprocess.Popen(command, cwd=server_repo, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert len(list(barrier.iterdir())) == 2  # both really raced for the registration
    results = [json.loads(out)[0] for out, _ in outputs]
    assert sorted(r["status"] for r in results) == ["cached", "trained"]
    assert results[0]["version"] == results[1]["version"]
    name = results[0]["registered_name"]
    versions = MlflowClient(mlflow_server, mlflow_server).search_model_versions(
        f"name = '{name}'")
    assert [v.version for v in versions] == [str(results[0]["version"])]
    from mlops_gitops.reconcile.lock import LOCK_PREFIX

    leftovers = MlflowClient(mlflow_server, mlflow_server).search_registered_models(
        f"name LIKE '{LOCK_PREFIX}.train.{name}%'")
    assert leftovers == []
