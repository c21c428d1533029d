"""More user mistakes, end to end through the CLI: a message with what to do, exit 1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return cli_with(cwd, {}, *args)


def cli_with(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The command line in a subprocess (no inherited tracking URI, plus ``env``): never a
    traceback, never an internal error."""
    base = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    result = subprocess.run([sys.executable, "-m", "mlops_gitops", *args], cwd=cwd,
                            env={**base, "MLFLOW_DISABLE_TELEMETRY": "true", **env},
                            capture_output=True, text=True)
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr
    return result


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("specs", "policies", "environments"):
        shutil.copytree(REPO / name, root / name)
    shutil.copy(REPO / "mlops-gitops.yaml", root)
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("value", ['""', '"."'])
def test_empty_data_path(project, value):
    edit(project / "specs/datasets/iris.yaml", "path: data/iris.csv", f"path: {value}")
    result = cli(project, "lint")
    assert result.returncode == 1
    assert "specs/datasets/iris.yaml:9:3:" in result.stdout and "[spec.path]" in result.stdout


def test_an_invalid_dataset_is_not_also_reported_as_unknown(project):
    edit(project / "specs/datasets/iris.yaml", "sepal_length: {type: float, min: 0, max: 10}",
         "sepal_length: {type: float, min: 20, max: 10}")
    result = cli(project, "lint")
    assert result.returncode == 1
    assert "min (20.0) is greater than max (10.0)" in result.stdout
    assert "unknown Dataset 'iris'" not in result.stdout
    assert "1 error(s)" in result.stdout


def test_a_gate_that_can_never_pass(project):
    edit(project / "policies/classification.yaml", "test: {healthy_in: dev}",
         "test: {healthy_in: prod}")
    result = cli(project, "lint")
    assert result.returncode == 1
    assert "policies/classification.yaml:" in result.stdout
    assert "gate 'test' requires health in 'prod'" in result.stdout


def test_a_model_without_policy_in_a_gated_environment_is_a_lint_error(project):
    edit(project / "specs/models/iris-classifier.yaml", "  policy: classification\n", "")
    result = cli(project, "lint")
    assert result.returncode == 1
    assert "environments/test.yaml:" in result.stdout
    assert "model 'iris-classifier' has no policy, but environment 'test' is gated " \
        "(it promotes from 'dev')" in result.stdout
    assert "environments/dev.yaml:" not in result.stdout  # dev promotes from nowhere


@pytest.mark.parametrize("field,value", [("registered_model", "a/b"), ("labels", "{'a?b': x}")])
def test_registry_names_are_checked_by_lint(project, field, value):
    edit(project / "specs/models/iris-classifier.yaml", "  dataset: iris\n",
         f"  dataset: iris\n  {field}: {value}\n" if field == "registered_model" else
         "  dataset: iris\n")
    if field == "labels":
        edit(project / "specs/models/iris-classifier.yaml", "labels: {team: botany}",
             f"labels: {value}")
    result = cli(project, "lint")
    assert result.returncode == 1
    assert "specs/models/iris-classifier.yaml:" in result.stdout


def test_no_specs_at_all(tmp_path):
    result = cli(tmp_path, "lint")
    assert result.returncode == 1
    assert "no spec files found" in result.stdout


def test_usage_errors_exit_1_not_2(project):
    for args in (["bogus"], ["lint", "--format", "xml"], ["plan"],
                 ["apply", "--env", "dev", "--lock-timeout", "nan"],
                 ["apply", "--env", "dev", "--lock-timeout", "-5"]):
        result = cli(project, *args)
        assert result.returncode == 1, args
        assert "usage:" in result.stderr


def test_force_unlock_of_an_unknown_environment(project):
    result = cli(project, "force-unlock", "--env", "staging")
    assert result.returncode == 1
    assert "unknown environment 'staging'" in result.stderr


def test_schema_check_needs_a_folder(project):
    result = cli(project, "schema", "--check")
    assert result.returncode == 1
    assert "--check needs --out DIR" in result.stderr


def test_unwritable_output_is_a_message(project):
    result = cli(project, "schema", "--out", "/proc/nope")
    assert result.returncode == 1
    assert result.stderr.startswith("error:")


def test_bad_plan_file(project, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text("[]")
    result = cli(project, "apply", "--env", "dev", str(plan))
    assert result.returncode == 1
    assert "not a readable plan file" in result.stderr


def test_data_that_differs_from_its_dvc_version(project):
    from mlops_gitops.examples import write_example

    path = write_example("iris", project / "data" / "iris.csv")
    (project / "data" / "iris.csv.dvc").write_text(
        "outs:\n- md5: 00000000000000000000000000000000\n  size: 1\n  hash: md5\n"
        "  path: iris.csv\n")
    result = cli(project, "data", "validate", "iris")
    assert result.returncode == 1
    assert "'data/iris.csv' differs from the version recorded in data/iris.csv.dvc" in \
        result.stdout
    assert "dvc add data/iris.csv" in result.stdout
    trained = cli(project, "train", "iris-classifier")
    assert trained.returncode == 1
    assert "differs from the version recorded" in trained.stderr
    assert path.is_file()


@pytest.fixture
def with_data(tmp_path) -> Path:
    """A project whose data files exist (the golden base project)."""
    root = tmp_path / "with-data"
    shutil.copytree(REPO / "tests" / "golden" / "base", root)
    return root


@pytest.mark.parametrize("command", [["status"], ["plan", "--env", "dev"]])
def test_mistyped_sqlite_store_is_an_error_not_an_empty_registry(with_data, tmp_path, command):
    project = with_data
    typo = tmp_path / "typo" / "mlflow.db"  # neither the folder nor the file exist
    result = cli_with(project, {"MLFLOW_TRACKING_URI": f"sqlite:///{typo}"}, *command)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"the SQLite tracking store '{typo}' does not exist" in result.stderr
    assert "MLFLOW_TRACKING_URI" in result.stderr
    assert not typo.parent.exists()
    (tmp_path / "typo").mkdir()  # the folder exists, the file does not
    result = cli_with(project, {"MLFLOW_TRACKING_URI": f"sqlite:///{typo}"}, *command)
    assert result.returncode == 1 and "does not exist" in result.stderr
    assert not typo.exists()


def test_corrupt_sqlite_store_is_one_clear_message(with_data):
    project = with_data
    store = project / ".mlops" / "mlflow.db"
    store.parent.mkdir()
    store.write_bytes(b"\x00garbage, not a database\xff" * 40)
    result = cli_with(project, {}, "status")
    assert result.returncode == 1
    assert f"{store}: error: the tracking store '{store}' is not a SQLite database" in \
        result.stderr
    assert "1 error(s)" in result.stderr


def test_a_database_tracking_uri_without_a_server_is_refused(project):
    edit(project / "mlops-gitops.yaml", "tracking_uri: null",
         "tracking_uri: postgresql://mlflow@db.invalid/mlflow")
    result = cli(project, "force-unlock", "--env", "dev")
    assert result.returncode == 1
    assert "mlops-gitops.yaml: error: tracking URI 'postgresql://mlflow@db.invalid/mlflow'" \
        in result.stderr
    assert "mlflow server" in result.stderr
    assert not (project / "mlruns").exists()


@pytest.mark.parametrize("old,new,rule", [
    ("  dataset: iris\n", "  dataset: iris\n  registered_model: a/b\n",
     "registry names use letters, digits, '.', '_' and '-', starting with a letter or digit"),
    ("labels: {team: botany}", "labels: {'a?b': x}",
     "label keys are segments of letters, digits, '.', '_' and '-' (each starting with a letter "
     "or digit) separated by single '/'"),
])
def test_naming_errors_state_the_rule_of_their_field(project, old, new, rule):
    edit(project / "specs/models/iris-classifier.yaml", old, new)
    result = cli(project, "lint")
    assert result.returncode == 1
    assert rule in result.stdout
    assert "DNS label" not in result.stdout


@pytest.mark.parametrize("old,new,cause", [
    ("kind: Model", "kind: Modle", "unknown kind 'Modle'"),
    ("  target: species", "  target: [species", "invalid YAML"),
    ("  name: iris-classifier", "  name: Iris Classifier", "names use lowercase letters"),
])
def test_one_broken_model_file_is_reported_once(project, old, new, cause):
    edit(project / "specs/models/iris-classifier.yaml", old, new)
    result = cli(project, "lint")
    assert result.returncode == 1
    assert cause in result.stdout
    assert "unknown Model" not in result.stdout  # no cascade into the environment files
    assert "1 error(s)" in result.stdout


def test_lint_never_reads_a_pipe_or_a_device(project, tmp_path):
    fifo = project / "specs" / "models" / "pipe.yaml"
    os.mkfifo(fifo)
    whole = subprocess.run([sys.executable, "-m", "mlops_gitops", "lint"], cwd=project,
                           capture_output=True, text=True, timeout=60)
    assert whole.returncode == 0  # discovery only lists regular files
    result = subprocess.run([sys.executable, "-m", "mlops_gitops", "lint", str(fifo)],
                            cwd=project, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "pipe.yaml" in result.stdout
    assert "not a regular file" in result.stdout
    fifo.unlink()
    result = subprocess.run([sys.executable, "-m", "mlops_gitops", "lint", "/dev/zero"],
                            cwd=project, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "not a regular file" in result.stdout


def test_a_folder_name_the_registry_refuses_is_made_safe(tmp_path):
    from mlops_gitops.spec.project import load_project

    root = tmp_path / "team:ml project"
    shutil.copytree(REPO / "tests" / "golden" / "base", root)
    (root / "mlops-gitops.yaml").unlink(missing_ok=True)
    assert load_project(root).name == "team-ml-project"


def test_report_with_an_unreachable_registry_is_written_but_fails(project, tmp_path):
    edit(project / "mlops-gitops.yaml", "tracking_uri: null", "tracking_uri: http://127.0.0.1:9")
    out = tmp_path / "report.md"
    result = cli(project, "report", "--out", str(out), "--no-plots")
    assert result.returncode == 1 and "the report is incomplete" in result.stderr
    assert "cannot reach" in result.stderr and out.is_file()
