"""A full disk or a read-only store during ``apply`` (issue 13, item 7): one message naming the
store and what to do, exit 1, and a registry that is never half-applied — every change is either
done with its audit record ``applied``, or not done with at most a ``started`` record, and the
next apply converges.

The MLflow adapter runs on a real SQLite store; the fault is injected at the write site
(OSError ENOSPC / EROFS, or the SQLite messages MLflow and SQLAlchemy pass on). When not root,
the read-only case is also real (chmod).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.identity import (
    AUDIT_PREFIX,
    STATUS_READY,
    TAG_FINGERPRINT,
    TAG_MANAGED,
    TAG_STATUS,
)
from mlops_gitops.reconcile.apply import apply_plan, make_plan
from mlops_gitops.reconcile.desired import desired_state
from mlops_gitops.reconcile.history import history
from mlops_gitops.reconcile.live import read_live_state
from mlops_gitops.spec.project import load_project
from mlops_gitops.targets import training_target
from mlops_gitops.tracking import Tracking

pytestmark = pytest.mark.integration

BASE = Path(__file__).resolve().parents[1] / "golden" / "base"
COMMIT = "abc123" * 6 + "abcd"


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    shutil.copytree(BASE, root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("USER", "alice")
    monkeypatch.delenv("GITHUB_ACTOR", raising=False)
    return load_project(root)


def _store(folder: Path):
    from mlops_gitops.registry.mlflow import MlflowRegistry

    return MlflowRegistry(Tracking(f"sqlite:///{folder / 'mlflow.db'}",
                                   artifact_location=(folder / "artifacts").as_uri()))


@pytest.fixture
def registry(project, tmp_path):
    store = _store(tmp_path / "store")
    for item in (i for i in project.loaded if i.kind == "Model"):
        store.ensure_model(item.name, "", {"mlops.owner": "ml-team", "mlops.project": "example",
                                           TAG_MANAGED: "true"})
        run = store.client.create_run(store.experiment_id(item.name))
        store.client.create_model_version(
            item.name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
            tags={TAG_MANAGED: "true", TAG_STATUS: STATUS_READY,
                  TAG_FINGERPRINT: training_target(project, item).fingerprint})
    return store


def _apply(project, registry):
    desired = desired_state(project, "dev")
    plan = make_plan(desired, read_live_state(registry, "example"), COMMIT)
    return plan, apply_plan(plan, registry, COMMIT, desired=desired)


def _fail_on(registry, monkeypatch, method: str, error: BaseException, after: int = 0):
    """The client's ``method`` raises ``error`` from its ``after``-th call on (0: the first)."""
    real = getattr(registry.client, method)
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > after:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(registry.client, method, failing)


def _audit(registry) -> dict[str, list[str]]:
    """Audit record statuses per change key, oldest first."""
    live = read_live_state(registry, "example")
    found: dict[str, list[str]] = {}
    for record in history(live, "dev"):
        found.setdefault(record.key, []).append(record.status)
    return found


def _disk_full(path) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", str(path))


@pytest.mark.parametrize("method, after", [
    ("set_registered_model_alias", 0), ("set_registered_model_alias", 1),
    ("set_registered_model_tag", 0),  # the first 'started' audit record
    ("set_registered_model_tag", 1),  # the first 'applied' record, after its alias was set
    ("set_registered_model_tag", 2), ("set_registered_model_tag", 3),
], ids=["alias-1", "alias-2", "audit-1", "audit-2", "audit-3", "audit-4"])
def test_full_disk_mid_apply_is_located_and_never_half_applied(project, registry, monkeypatch,
                                                               tmp_path, method, after):
    db = tmp_path / "store" / "mlflow.db"
    _fail_on(registry, monkeypatch, method, _disk_full(db), after)
    plan, result = _apply(project, registry)
    assert len(plan.pending) >= 2 and not result.ok
    assert f"the disk holding {db} is full" in result.error
    monkeypatch.undo()

    # No change is done without an audit record, and no record says 'applied' for a change
    # that is not done.
    live = read_live_state(registry, "example")
    audit = _audit(registry)
    for change in (c for c in plan.pending if c.kind == "alias"):
        done = live.models[change.model].aliases.get("dev") == change.after["version"]
        statuses = audit.get(change.key, [])
        assert not done or statuses, (change.key, statuses)
        assert done or "applied" not in statuses, (change.key, statuses)
        if change in result.applied:
            assert done and statuses[-1] == "applied"

    # the next apply (disk freed) converges and the plan is then empty
    _, again = _apply(project, registry)
    assert again.ok
    fresh = make_plan(desired_state(project, "dev"), read_live_state(registry, "example"), COMMIT)
    assert not fresh.pending


@pytest.mark.parametrize("error", [
    pytest.param("sqlalchemy", id="sqlalchemy-autoflush"),
    pytest.param("mlflow", id="mlflow-exception"),
])
def test_sqlite_full_messages_are_translated(project, registry, monkeypatch, tmp_path, error):
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import OperationalError

    raised = (OperationalError("INSERT INTO registered_model_tags", {},
                               Exception("database or disk is full"))
              if error == "sqlalchemy" else
              MlflowException("(sqlite3.OperationalError) database or disk is full"))
    _fail_on(registry, monkeypatch, "set_registered_model_tag", raised)
    with pytest.raises(DiagnosticError) as caught:
        registry.set_model_tag("iris-classifier", f"{AUDIT_PREFIX}dev.x", "{}")
    [diagnostic] = caught.value.diagnostics
    db = str(tmp_path / "store" / "mlflow.db")
    assert diagnostic.file == db and diagnostic.code == "store-full"
    assert "is full" in diagnostic.message and "df -h" in diagnostic.hint


def test_read_only_store_is_located(project, registry, monkeypatch, tmp_path):
    db = tmp_path / "store" / "mlflow.db"
    if os.geteuid() == 0:  # root writes through chmod: inject what the OS would say
        _fail_on(registry, monkeypatch, "set_registered_model_tag",
                 OSError(errno.EROFS, "Read-only file system", str(db)))
    else:
        for path in (db, db.parent):
            path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        plan, result = _apply(project, registry)
    finally:
        for path in (db.parent, db):
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert plan.pending and not result.ok and result.applied == ()
    assert f"{db} is read-only or not writable" in result.error
    monkeypatch.undo()
    assert all(statuses == ["started"] or statuses == [] for statuses in _audit(registry).values())
    _, again = _apply(project, registry)
    assert again.ok


def test_apply_command_on_a_full_disk_exits_1_with_one_message(project, registry, monkeypatch,
                                                               tmp_path, capsys):
    """The command line: exit 1, the store's path and what to do, no traceback."""
    from mlops_gitops.cli import reconcile_commands
    from mlops_gitops.cli.app import main

    db = tmp_path / "store" / "mlflow.db"
    monkeypatch.setattr(reconcile_commands, "open_registry", lambda project, mode: registry)
    monkeypatch.setattr(reconcile_commands, "git_commit", lambda project: COMMIT)
    _fail_on(registry, monkeypatch, "set_registered_model_alias", _disk_full(db))
    monkeypatch.delenv("MLOPS_GITOPS_DEBUG", raising=False)
    code = main(["apply", "--env", "dev", "--auto-approve"])
    out = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out.out + out.err
    assert f"the disk holding {db} is full" in out.out + out.err
