"""One contract, every registry implementation (issue 13): the same behavioural tests run
against the test fake, the MLflow adapter on an embedded SQLite store, the MLflow adapter on a
real `mlflow server`, and the stdlib REST and SQLite readers reading what the adapter wrote. A
fake or a fast reader can never drift from the real thing unnoticed.

To add an implementation, add a factory to IMPLEMENTATIONS: it
returns a ``Pair`` of a writer (the MLflow adapter, or the fake) and the reader under test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from mlops_gitops.identity import (
    AUDIT_PREFIX,
    STATUS_READY,
    TAG_FINGERPRINT,
    TAG_MANAGED,
    TAG_STATUS,
)
from mlops_gitops.reconcile.audit_roll import roll
from mlops_gitops.reconcile.history import history
from mlops_gitops.reconcile.live import build_live_state
from mlops_gitops.tracking import Tracking
from tests.fake_registry import FakeRegistry

pytestmark = pytest.mark.integration


@dataclass
class Pair:
    writer: object
    reader: object
    add_version: Callable[[str, str], int]  # (model, fingerprint) -> new version number


def _mlflow_add_version(registry) -> Callable[[str, str], int]:
    def add(name: str, fingerprint: str) -> int:
        client = registry.client
        experiment = registry.experiment_id(name)
        run = client.create_run(experiment)
        client.set_terminated(run.info.run_id)
        version = client.create_model_version(
            name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
            tags={TAG_MANAGED: "true", TAG_FINGERPRINT: fingerprint, TAG_STATUS: STATUS_READY})
        return int(version.version)
    return add


def _fake(request, tmp_path) -> Pair:
    fake = FakeRegistry()

    def add(name: str, fingerprint: str) -> int:
        number = 1 + max((n for m, n in fake.versions if m == name), default=0)
        fake.add_version(name, number, fingerprint)
        return number
    return Pair(fake, fake, add)


def _mlflow_sqlite(request, tmp_path) -> Pair:
    from mlops_gitops.registry.mlflow import MlflowRegistry

    registry = MlflowRegistry(Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}",
                                       artifact_location=(tmp_path / "artifacts").as_uri()))
    return Pair(registry, registry, _mlflow_add_version(registry))


def _mlflow_server(request, tmp_path) -> Pair:
    from mlops_gitops.registry.mlflow import MlflowRegistry

    registry = MlflowRegistry(Tracking(request.getfixturevalue("mlflow_server_sqlite")))
    return Pair(registry, registry, _mlflow_add_version(registry))


def _rest_reader(request, tmp_path) -> Pair:
    from mlops_gitops.registry.mlflow import MlflowRegistry
    from mlops_gitops.registry.rest import RestRegistryReader

    tracking = Tracking(request.getfixturevalue("mlflow_server_sqlite"))
    writer = MlflowRegistry(tracking)
    return Pair(writer, RestRegistryReader(tracking), _mlflow_add_version(writer))


def _sqlite_reader(request, tmp_path) -> Pair:
    """The fast reader of the embedded store (stdlib sqlite3) reading what the adapter wrote."""
    from mlops_gitops.registry.mlflow import MlflowRegistry
    from mlops_gitops.registry.sqlite import SqliteRegistryReader

    tracking = Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}",
                        artifact_location=(tmp_path / "artifacts").as_uri())
    writer = MlflowRegistry(tracking)
    return Pair(writer, SqliteRegistryReader(tracking), _mlflow_add_version(writer))


IMPLEMENTATIONS = {
    "fake": _fake,
    "mlflow-sqlite": _mlflow_sqlite,
    "mlflow-server": _mlflow_server,
    "rest-reader": _rest_reader,
    "sqlite-reader": _sqlite_reader,
}
WRITERS = ["fake", "mlflow-sqlite", "mlflow-server"]  # where writes themselves are the contract


@pytest.fixture(params=list(IMPLEMENTATIONS))
def pair(request, tmp_path) -> Pair:
    return IMPLEMENTATIONS[request.param](request, tmp_path)


@pytest.fixture(params=WRITERS)
def writer_pair(request, tmp_path) -> Pair:
    return IMPLEMENTATIONS[request.param](request, tmp_path)


def _name(what: str) -> str:
    return f"contract-{what}-{uuid.uuid4().hex[:8]}"


def test_model_tags_and_description(pair):
    name = _name("tags")
    pair.writer.ensure_model(name, "first", {TAG_MANAGED: "true", "a": "1", "b": "2"})
    pair.writer.update_model(name, "second", {"a": "10", "c": "3"}, ["b"])
    model = pair.reader.get_model(name)
    assert model.description == "second"
    assert {k: v for k, v in model.tags.items() if k in "abc"} == {"a": "10", "c": "3"}
    assert name in {m.name for m in pair.reader.list_models()}
    assert pair.reader.get_model(_name("missing")) is None


def test_versions_are_ints_and_found_by_fingerprint(pair):
    name = _name("versions")
    pair.writer.ensure_model(name, "", {TAG_MANAGED: "true"})
    first = pair.add_version(name, "fp-a")
    second = pair.add_version(name, "fp-b")
    assert (first, second) == (1, 2)
    found = pair.reader.find_version(name, "fp-b")
    assert found is not None and found.version == 2 and isinstance(found.version, int)
    assert pair.reader.find_version(name, "fp-none") is None
    version = pair.reader.get_version(name, 1)
    assert version.version == 1 and version.tags[TAG_FINGERPRINT] == "fp-a"
    assert pair.reader.get_version(name, 99) is None
    listed = [v for v in pair.reader.list_versions() if v.name == name]
    assert sorted(v.version for v in listed) == [1, 2]
    assert all(isinstance(v.version, int) for v in listed)


def test_version_tags(pair):
    name = _name("vtags")
    pair.writer.ensure_model(name, "", {TAG_MANAGED: "true"})
    pair.add_version(name, "fp")
    pair.writer.set_version_tags(name, 1, {"mlops.env.dev.commit": "abc"})
    assert pair.reader.get_version(name, 1).tags["mlops.env.dev.commit"] == "abc"


def test_aliases(pair):
    name = _name("alias")
    pair.writer.ensure_model(name, "", {TAG_MANAGED: "true"})
    pair.add_version(name, "fp-a")
    pair.add_version(name, "fp-b")
    pair.writer.set_alias(name, "prod", 1)
    pair.writer.set_alias(name, "prod", 2)
    pair.writer.set_alias(name, "dev", 1)
    assert pair.reader.get_model(name).aliases == {"prod": 2, "dev": 1}
    listed = next(m for m in pair.reader.list_models() if m.name == name)
    assert listed.aliases == {"prod": 2, "dev": 1}
    pair.writer.delete_alias(name, "dev")
    assert pair.reader.get_model(name).aliases == {"prod": 2}


def test_lock_acquire_and_release_by_token(writer_pair):
    registry = writer_pair.writer
    name = _name("lock")
    assert registry.acquire_lock(name, {"mlops.lock.token": "A", "mlops.lock.pid": "1"}) is None
    held = registry.acquire_lock(name, {"mlops.lock.token": "B"})
    assert held is not None and held.get("mlops.lock.token") == "A"
    assert registry.release_lock(name, "mlops.lock.token", "B") is False  # not the holder
    assert registry.acquire_lock(name, {"mlops.lock.token": "C"})["mlops.lock.token"] == "A"
    assert registry.release_lock(name, "mlops.lock.token", "A") is True
    assert registry.release_lock(name, "mlops.lock.token", "A") is False  # already gone
    assert registry.acquire_lock(name, {"mlops.lock.token": "D"}) is None
    assert registry.release_lock(name, "mlops.lock.token", "D") is True


def test_audit_records_roll_and_read_back(pair, monkeypatch):
    """Audit tags written, rolled into the archive (the writer's), and history over the reader's
    live state and the writer's archive shows each record once, oldest first."""
    name = _name("audit")
    pair.writer.ensure_model(name, "", {TAG_MANAGED: "true", "mlops.project": "contract"})
    for i in range(7):
        key = f"{AUDIT_PREFIX}prod.20261130T0000{i:02d}.000000Z.000"
        pair.writer.set_model_tag(name, key, json.dumps({"reason": f"change {i}", "at": str(i),
                                                          "status": "applied"}))
    tags = pair.reader.get_model(name).tags
    assert roll(pair.writer, name, "prod", tags, keep=3, roll_at=5) == 4
    tags = pair.reader.get_model(name).tags
    assert len([k for k in tags if k.startswith(f"{AUDIT_PREFIX}prod.")]) == 3
    live = build_live_state([pair.reader.get_model(name)], [], "contract")
    shown = [r.reason for r in history(live, "prod", archive=pair.writer)]
    assert shown == [f"change {i}" for i in range(7)]


def test_history_command_shows_archived_records(tmp_path, monkeypatch):
    """`mlops-gitops history` reads the tags and the archive: every record once, oldest first."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from mlops_gitops.registry.mlflow import MlflowRegistry

    root = tmp_path / "project"
    shutil.copytree(Path(__file__).resolve().parents[1] / "golden" / "base", root)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = MlflowRegistry(Tracking(uri, artifact_location=(tmp_path / "art").as_uri()))
    registry.ensure_model("iris-classifier", "", {TAG_MANAGED: "true", "mlops.project": "example"})
    for i in range(8):
        registry.set_model_tag("iris-classifier", f"{AUDIT_PREFIX}dev.20261130T0000{i:02d}.000000Z"
                               ".000", json.dumps({"reason": f"change {i}", "status": "applied",
                                                   "at": f"2026-11-30T00:00:{i:02d}"}))
    assert roll(registry, "iris-classifier", "dev", registry.get_model("iris-classifier").tags,
                keep=2, roll_at=3) == 6
    env = {k: v for k, v in __import__("os").environ.items() if k != "MLOPS_GITOPS_DEBUG"}
    env.update(MLFLOW_TRACKING_URI=uri, MLFLOW_DISABLE_TELEMETRY="true")
    done = subprocess.run([sys.executable, "-m", "mlops_gitops", "history", "--env", "dev",
                           "--format", "json"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [r["reason"] for r in json.loads(done.stdout)] == [f"change {i}" for i in range(8)]
