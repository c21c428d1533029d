"""plan / apply / status against a real `mlflow server` (no fakes)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.integration.conftest import (
    BACKENDS,
    backend_server,
    clean_env,
    cli,
    free_port,
    run,
    start_mlflow,
    stop,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=BACKENDS)
def mlflow_server(request) -> str:
    """Every test here runs against a server on SQLite and one on PostgreSQL."""
    return backend_server(request)


def ok(repo, *args):
    result = cli(repo, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def project_name(repo) -> str:
    from mlops_gitops.spec.project import load_project

    return load_project(repo).name


def client(uri):
    from mlflow import MlflowClient

    return MlflowClient(uri, uri)


def aliases(uri, name) -> dict:
    return {k: int(v) for k, v in client(uri).get_registered_model(name).aliases.items()}


def names(repo):
    prefix = project_name(repo) + "-"
    return prefix + "iris-classifier", prefix + "diabetes-regressor"


def test_first_apply_then_noop_then_status(server_repo, mlflow_server):
    ok(server_repo, "train")
    plan = cli(server_repo, "plan", "--env", "dev", "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "Plan: 2 to add, 0 to change, 0 to delete." in plan.stdout
    applied = ok(server_repo, "apply", "--env", "dev", "--auto-approve")
    assert "Apply complete! 2 change(s) applied to 'dev'." in applied.stdout
    iris, diabetes = names(server_repo)
    assert aliases(mlflow_server, iris) == {"dev": 1}
    version = client(mlflow_server).get_model_version(iris, "1")
    assert version.tags["mlops.env.dev.commit"] == run(server_repo, "git", "rev-parse",
                                                       "HEAD").stdout.strip()
    audit = [json.loads(v) for k, v in client(mlflow_server).get_registered_model(iris)
             .tags.items() if k.startswith("mlops.audit.dev.")]
    assert audit and audit[0]["action"] == "create" and audit[0]["by"]

    assert cli(server_repo, "plan", "--env", "dev", "--detailed-exitcode").returncode == 0
    again = ok(server_repo, "apply", "--env", "dev", "--auto-approve")
    assert "0 change(s) applied" in again.stdout
    status = ok(server_repo, "status", "--env", "dev", "--format", "json")
    rows = json.loads(status.stdout)
    assert {(r["sync"], r["health"]) for r in rows} == {("Synced", "Healthy")}


def test_hand_edit_shows_out_of_sync_and_apply_heals(server_repo, mlflow_server):
    ok(server_repo, "train")
    ok(server_repo, "train", "iris-classifier", "--force")  # version 2, same fingerprint
    ok(server_repo, "apply", "--env", "dev", "--auto-approve")
    iris, _ = names(server_repo)
    assert aliases(mlflow_server, iris)["dev"] == 2
    client(mlflow_server).set_registered_model_alias(iris, "dev", "1")  # by hand, in the UI
    status = cli(server_repo, "status", "--env", "dev")
    assert status.returncode == 1
    assert "OutOfSync" in status.stdout
    assert "alias 'dev' points at version 1; the specs want 2" in status.stdout
    healed = ok(server_repo, "apply", "--env", "dev", "--auto-approve")
    assert "Apply complete!" in healed.stdout
    assert aliases(mlflow_server, iris)["dev"] == 2


def test_prune_deletes_only_with_the_flag(server_repo, mlflow_server):
    ok(server_repo, "train")
    ok(server_repo, "apply", "--env", "dev", "--auto-approve")
    env = server_repo / "environments" / "dev.yaml"
    env.write_text("".join(line for line in env.read_text().splitlines(keepends=True)
                           if "diabetes-regressor" not in line))
    _, diabetes = names(server_repo)
    plan = ok(server_repo, "plan", "--env", "dev")
    assert f"? alias {diabetes}@dev (version 1)" in plan.stdout
    ok(server_repo, "apply", "--env", "dev", "--auto-approve")
    assert aliases(mlflow_server, diabetes) == {"dev": 1}
    pruned = ok(server_repo, "apply", "--env", "dev", "--auto-approve", "--prune")
    assert f"delete alias/{diabetes}@dev" in pruned.stderr
    assert aliases(mlflow_server, diabetes) == {}


def test_stale_plan_is_refused(server_repo, mlflow_server, tmp_path):
    ok(server_repo, "train")
    saved = tmp_path / "plan.json"
    ok(server_repo, "plan", "--env", "dev", "--out", str(saved))
    iris, _ = names(server_repo)
    client(mlflow_server).set_registered_model_alias(iris, "dev", "1")
    result = cli(server_repo, "apply", "--env", "dev", str(saved))
    assert result.returncode == 1
    assert "the plan is stale" in result.stderr and "Traceback" not in result.stderr
    fresh = tmp_path / "fresh.json"
    ok(server_repo, "plan", "--env", "dev", "--out", str(fresh))
    ok(server_repo, "apply", "--env", "dev", str(fresh))
    assert aliases(mlflow_server, names(server_repo)[1]) == {"dev": 1}


def test_hand_edited_saved_plan_cannot_pass_a_gate(server_repo, mlflow_server, tmp_path):
    ok(server_repo, "train")
    saved = tmp_path / "prod.json"
    planned = cli(server_repo, "plan", "--env", "prod", "--out", str(saved))
    assert planned.returncode == 1 and "x alias" in planned.stdout  # blocked by the gates
    data = json.loads(saved.read_text())
    for change in data["changes"]:
        if change["action"] == "blocked":
            change["action"] = "create"
    saved.write_text(json.dumps(data))
    result = cli(server_repo, "apply", "--env", "prod", str(saved))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Apply complete" not in result.stdout and "Traceback" not in result.stderr
    iris, diabetes = names(server_repo)
    assert (f"change alias/{iris}@prod: plan says create (version 1), the specs and registry "
            "say blocked (version 1)") in result.stderr
    assert aliases(mlflow_server, iris) == {} and aliases(mlflow_server, diabetes) == {}


def test_two_applies_at_once_are_serialized_by_the_lock(server_repo, mlflow_server):
    from mlops_gitops.reconcile.apply import Lock
    from mlops_gitops.registry.mlflow import MlflowRegistry
    from mlops_gitops.tracking import Tracking

    ok(server_repo, "train")
    registry = MlflowRegistry(Tracking(mlflow_server))
    lock = Lock(registry, project_name(server_repo), "dev").__enter__()
    try:
        blocked = cli(server_repo, "apply", "--env", "dev", "--auto-approve")
        assert blocked.returncode == 1
        assert "another apply holds the lock of environment 'dev'" in blocked.stderr
        assert "force-unlock --env dev" in blocked.stderr
        threading.Timer(3.0, lock.__exit__, (None, None, None)).start()
        waited = ok(server_repo, "apply", "--env", "dev", "--auto-approve",
                    "--lock-timeout", "60")
        assert "Apply complete! 2 change(s)" in waited.stdout
    finally:
        lock.__exit__(None, None, None)


def test_rollback_is_a_git_revert(server_repo, mlflow_server):
    ok(server_repo, "train")
    ok(server_repo, "apply", "--env", "dev", "--auto-approve")
    spec = server_repo / "specs" / "models" / "iris-classifier.yaml"
    spec.write_text(spec.read_text().replace("C: 1.0", "C: 0.5"))
    run(server_repo, "git", "commit", "-qam", "smaller C")
    ok(server_repo, "train", "iris-classifier")
    ok(server_repo, "apply", "--env", "dev", "--auto-approve")
    iris, _ = names(server_repo)
    assert aliases(mlflow_server, iris)["dev"] == 2
    run(server_repo, "git", "revert", "--no-edit", "HEAD")
    plan = ok(server_repo, "plan", "--env", "dev")
    assert f"~ alias {iris}@dev: version 2 -> 1" in plan.stdout
    ok(server_repo, "apply", "--env", "dev", "--auto-approve")
    assert aliases(mlflow_server, iris)["dev"] == 1


def test_pin_to_a_missing_version_is_a_plan_error(server_repo):
    ok(server_repo, "train")
    env = server_repo / "environments" / "dev.yaml"
    env.write_text(env.read_text().replace("- {name: iris-classifier}",
                                           "- {name: iris-classifier, version: 42}"))
    result = cli(server_repo, "plan", "--env", "dev")
    assert result.returncode == 1
    assert "environments/dev.yaml:8:31:" in result.stderr
    assert "version 42 of" in result.stderr and "does not exist in the registry" in result.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_server_unreachable_mid_apply_then_converges(example_repo, tmp_path, backend, request):
    from mlops_gitops.reconcile.apply import apply_plan, make_plan
    from mlops_gitops.reconcile.desired import desired_state
    from mlops_gitops.reconcile.live import read_live_state
    from mlops_gitops.registry.mlflow import MlflowRegistry
    from mlops_gitops.spec.project import load_project
    from mlops_gitops.tracking import Tracking

    folder, port = tmp_path / "own-server", free_port()
    folder.mkdir()
    uri = f"http://127.0.0.1:{port}"
    store = (None if backend == "sqlite" else
             request.getfixturevalue("postgres").create_database(f"restart_{port}"))
    server = start_mlflow(folder, port, store)
    try:
        config = example_repo / "mlops-gitops.yaml"
        config.write_text(config.read_text().replace("tracking_uri: null", f"tracking_uri: {uri}"))
        ok(example_repo, "train")
        project = load_project(example_repo)
        registry = MlflowRegistry(Tracking(uri))
        plan = make_plan(desired_state(project, "dev"), read_live_state(registry, project.name),
                         "c0ffee", False)
        seen = []

        def progress(message):
            seen.append(message)
            if len(seen) == 2:  # the first change is done: the server goes away
                stop(server)

        result = apply_plan(plan, registry, "c0ffee", progress,
                            desired=desired_state(project, "dev"))
        assert not result.ok
        assert "cannot reach the MLflow tracking server" in result.error
        assert len(result.applied) == 1 and len(result.not_applied) == 1
        server = start_mlflow(folder, port, store)  # the same store: a restart
        ok(example_repo, "apply", "--env", "dev", "--auto-approve")
        assert aliases(uri, "iris-classifier") == {"dev": 1}
        assert aliases(uri, "diabetes-regressor") == {"dev": 1}
        assert cli(example_repo, "plan", "--env", "dev", "--detailed-exitcode").returncode == 0
    finally:
        stop(server)


def test_killed_apply_leaves_a_lock_and_the_next_apply_converges(server_repo, mlflow_server):
    ok(server_repo, "train")
    c = client(mlflow_server)
    c.create_registered_model("not-managed-" + project_name(server_repo))
    iris, diabetes = names(server_repo)
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_gitops", "apply", "--env", "dev", "--auto-approve"],
        cwd=server_repo, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    for line in process.stderr:  # progress lines: "  create alias/NAME@dev"
        if "create alias/" in line:
            break
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (aliases(mlflow_server, diabetes) or
                                               aliases(mlflow_server, iris)):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    locked = cli(server_repo, "apply", "--env", "dev", "--auto-approve")
    assert locked.returncode == 1 and "holds the lock" in locked.stderr
    lock_id = re.search(r"lock id ([0-9a-f]+)", locked.stderr).group(1)
    wrong = cli(server_repo, "force-unlock", "--env", "dev", "0" * 16)
    assert wrong.returncode == 1 and f"lock id {lock_id}" in wrong.stderr
    released = json.loads(ok(server_repo, "force-unlock", "--env", "dev", lock_id,
                             "--format", "json").stdout)
    assert released["released"] and released["id"] == lock_id
    assert released["pid"] == str(process.pid) and released["host"] and released["since"]
    assert released["holder"] and "token" not in json.dumps(released)
    ok(server_repo, "apply", "--env", "dev", "--auto-approve")
    assert aliases(mlflow_server, iris) == {"dev": 1}
    assert aliases(mlflow_server, diabetes) == {"dev": 1}
    assert cli(server_repo, "plan", "--env", "dev", "--detailed-exitcode").returncode == 0
    untouched = c.get_registered_model("not-managed-" + project_name(server_repo))
    assert untouched.aliases == {} and untouched.tags == {}


def lock_exists(uri, repo) -> bool:
    from mlops_gitops.reconcile.lock import lock_name

    found = client(uri).search_registered_models(f"name = '{lock_name(project_name(repo), 'dev')}'")
    return bool(found)


def test_sigterm_during_apply_releases_the_lock_and_a_rerun_converges(server_repo, mlflow_server,
                                                                       tmp_path):
    ok(server_repo, "train")
    marker = tmp_path / "paused"
    env = {**clean_env(), "MLOPS_GITOPS_TEST_PAUSE_AFTER_CHANGE": "1",
           "MLOPS_GITOPS_TEST_PAUSE_MARKER": str(marker)}
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_gitops", "apply", "--env", "dev", "--auto-approve"],
        cwd=server_repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():  # apply blocks after its first change, then writes this
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "apply never reached its pause"
            time.sleep(0.05)
        assert lock_exists(mlflow_server, server_repo)
        process.send_signal(signal.SIGTERM)  # what a CI cancel sends
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 143, out + err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    assert not lock_exists(mlflow_server, server_repo)  # released on the way out
    iris, diabetes = names(server_repo)
    assert len(aliases(mlflow_server, iris)) + len(aliases(mlflow_server, diabetes)) == 1
    rerun = ok(server_repo, "apply", "--env", "dev", "--auto-approve")
    assert "Apply complete! 1 change(s)" in rerun.stdout
    assert aliases(mlflow_server, iris) == {"dev": 1}
    assert aliases(mlflow_server, diabetes) == {"dev": 1}
    assert cli(server_repo, "plan", "--env", "dev", "--detailed-exitcode").returncode == 0
