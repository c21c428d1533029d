"""Apply on the fake registry: idempotence, staleness, faults, locks, prune, audit."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from mlops_gitops.deploy.release import record_health
from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.reconcile.apply import Lock, apply_plan, make_plan
from mlops_gitops.reconcile.desired import desired_state
from mlops_gitops.reconcile.live import read_live_state
from mlops_gitops.reconcile.lock import force_unlock, lock_name
from mlops_gitops.reconcile.plan import Plan
from mlops_gitops.reconcile.status import environment_status, worst_health
from mlops_gitops.registry.ports import RegisteredModel
from mlops_gitops.spec.project import load_project
from mlops_gitops.targets import training_target
from tests.fake_registry import FakeRegistry

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


@pytest.fixture
def registry(project):
    fake = FakeRegistry()
    for item in (i for i in project.loaded if i.kind == "Model"):
        fake.add_version(item.name, 1, training_target(project, item).fingerprint)
        fake.ensure_model(item.name, "", {"mlops.owner": "ml-team", "mlops.project": "example", **(
            {"mlops.label.team": "botany"} if item.name == "iris-classifier" else {})})
    fake.models["not-ours"] = RegisteredModel("not-ours", "", {}, {"dev": 9})
    fake.models["other-project"] = RegisteredModel(
        "other-project", "", {"mlops.managed": "true", "mlops.project": "other"}, {"dev": 2})
    fake.calls.clear()
    fake.writes = 0
    return fake


def plan_for(project, registry, env="dev", prune=False) -> Plan:
    return make_plan(desired_state(project, env), read_live_state(registry, "example"), COMMIT,
                     prune)


def apply(project, plan, registry):
    """apply_plan with the desired state of the project the plan was made from."""
    return apply_plan(plan, registry, COMMIT, desired=desired_state(project, plan.env))


def test_apply_converges_and_second_apply_is_a_noop(project, registry):
    plan = plan_for(project, registry)
    assert [c.key for c in plan.pending] == ["alias/diabetes-regressor@dev",
                                            "alias/iris-classifier@dev"]
    result = apply(project, plan, registry)
    assert result.ok and len(result.applied) == 2
    assert registry.models["iris-classifier"].aliases == {"dev": 1}
    again = plan_for(project, registry)
    assert not again.has_changes
    assert apply(project, again, registry).applied == ()


def test_promotion_record_and_audit_trail(project, registry):
    apply(project, plan_for(project, registry), registry)
    tags = registry.versions[("iris-classifier", 1)].tags
    assert tags["mlops.env.dev.commit"] == COMMIT and tags["mlops.env.dev.by"] == "alice"
    assert tags["mlops.env.dev.promoted_at"].endswith("Z")
    audits = [json.loads(v) for k, v in registry.models["iris-classifier"].tags.items()
              if k.startswith("mlops.audit.dev.")]
    assert len(audits) == 1
    assert audits[0]["by"] == "alice" and audits[0]["commit"] == COMMIT
    assert audits[0]["action"] == "create" and audits[0]["after"] == {"version": 1}
    assert audits[0]["reason"].startswith("trained from the current spec")


def test_every_change_of_one_apply_keeps_its_own_audit_record(project, registry):
    from mlops_gitops.reconcile.history import history

    apply(project, plan_for(project, registry), registry)
    model = project.root / "specs" / "models" / "iris-classifier.yaml"
    model.write_text(model.read_text().replace("labels: {team: botany}", "labels: {team: flora}"))
    changed = load_project(project.root)
    version = registry.versions[("iris-classifier", 1)]
    registry.versions[("iris-classifier", 1)] = dataclasses.replace(version, tags={
        k: v for k, v in version.tags.items() if k != "mlops.env.dev.promoted_at"})
    plan = plan_for(changed, registry)
    assert [c.key for c in plan.pending] == ["model/iris-classifier",
                                             "alias/iris-classifier@dev"]
    apply(changed, plan, registry)  # two changes of one model within the same second
    records = [r for r in history(read_live_state(registry, "example"), "dev")
               if r.model == "iris-classifier"]
    assert [(r.action, r.key) for r in records] == [
        ("create", "alias/iris-classifier@dev"), ("update", "model/iris-classifier"),
        ("update", "alias/iris-classifier@dev")]
    assert {r.status for r in records} == {"applied"} and {r.by for r in records} == {"alice"}
    assert records[1].commit == COMMIT and "labels changed" in records[1].reason


def test_history_filters_by_model_and_environment(project, registry):
    from mlops_gitops.reconcile.history import history

    apply(project, plan_for(project, registry), registry)
    shown = history(read_live_state(registry, "example"), "dev", "diabetes-regressor")
    assert [r.model for r in shown] == ["diabetes-regressor"]
    assert history(read_live_state(registry, "example"), "prod") == []


def test_unmanaged_models_are_never_touched(project, registry):
    apply(project, plan_for(project, registry, prune=True), registry)
    assert not [c for c in registry.calls if "not-ours" in c or "other-project" in c]
    assert registry.models["not-ours"].aliases == {"dev": 9}
    assert registry.models["other-project"].aliases == {"dev": 2}


def test_stale_plan_is_refused(project, registry):
    plan = plan_for(project, registry)
    registry.set_alias("iris-classifier", "dev", 1)  # someone changed the registry meanwhile
    with pytest.raises(DiagnosticError, match="the plan is stale"):
        apply(project, plan, registry)


def test_saved_plan_round_trips(project, registry):
    plan = plan_for(project, registry)
    assert Plan.from_json(plan.to_json()) == plan


def test_failure_mid_apply_stops_reports_and_next_apply_converges(project, registry):
    registry.fail_after_writes = 4  # audit, alias, record, audit of the first change, then down
    result = apply(project, plan_for(project, registry), registry)
    assert not result.ok and "cannot reach the registry" in result.error
    assert [c.key for c in result.applied] == ["alias/diabetes-regressor@dev"]
    assert [c.key for c in result.not_applied] == ["alias/iris-classifier@dev"]
    registry.fail_after_writes = None
    retry = plan_for(project, registry)
    assert [c.key for c in retry.pending] == ["alias/iris-classifier@dev"]
    assert apply(project, retry, registry).ok
    assert not plan_for(project, registry).has_changes


def test_crash_between_alias_and_record_is_repaired(project, registry):
    registry.fail_after_writes = 2  # the audit record and the alias are set, nothing else
    apply(project, plan_for(project, registry), registry)
    assert registry.models["diabetes-regressor"].aliases == {"dev": 1}
    [attempt] = [json.loads(v) for k, v in registry.models["diabetes-regressor"].tags.items()
                 if k.startswith("mlops.audit.dev.")]
    assert attempt["status"] == "started"  # what was attempted is on record, never nothing
    registry.fail_after_writes = None
    repair = plan_for(project, registry)
    [change] = [c for c in repair.pending if c.model == "diabetes-regressor"]
    assert change.reason == "promotion record missing on the version"
    apply(project, repair, registry)
    assert "mlops.env.dev.promoted_at" in registry.versions[("diabetes-regressor", 1)].tags
    assert not plan_for(project, registry).has_changes


def test_hand_edit_is_drift_and_apply_heals_it(project, registry):
    apply(project, plan_for(project, registry), registry)
    registry.add_version("iris-classifier", 2, "some-other-fingerprint")
    registry.set_alias("iris-classifier", "dev", 2)  # moved by hand in the MLflow UI
    rows = {r.model: r for r in environment_status(desired_state(project, "dev"),
                                                   read_live_state(registry, "example"))}
    assert rows["iris-classifier"].sync == "OutOfSync"
    assert "points at version 2; the specs want 1" in rows["iris-classifier"].reason
    apply(project, plan_for(project, registry), registry)
    assert registry.models["iris-classifier"].aliases["dev"] == 1
    rows = environment_status(desired_state(project, "dev"), read_live_state(registry, "example"))
    assert {r.sync for r in rows} == {"Synced"} and worst_health(rows) == "Healthy"


def test_status_never_says_synced_while_plan_has_changes(project, registry):
    apply(project, plan_for(project, registry), registry)
    version = registry.versions[("iris-classifier", 1)]  # the record deleted by hand
    registry.versions[("iris-classifier", 1)] = dataclasses.replace(version, tags={
        k: v for k, v in version.tags.items() if k != "mlops.env.dev.promoted_at"})
    model = project.root / "specs" / "models" / "diabetes-regressor.yaml"
    model.write_text(model.read_text().replace("owner: ml-team", "owner: data-team"))
    changed = load_project(project.root)
    plan = plan_for(changed, registry)
    assert {c.model for c in plan.pending} == {"iris-classifier", "diabetes-regressor"}
    rows = {r.model: r for r in environment_status(desired_state(changed, "dev"),
                                                   read_live_state(registry, "example"))}
    assert rows["iris-classifier"].sync == "OutOfSync"
    assert "promotion record missing" in rows["iris-classifier"].reason
    assert rows["diabetes-regressor"].sync == "OutOfSync"
    assert "owner/labels changed" in rows["diabetes-regressor"].reason
    apply(changed, plan_for(changed, registry), registry)
    rows = environment_status(desired_state(changed, "dev"), read_live_state(registry, "example"))
    assert {r.sync for r in rows} == {"Synced"}


def test_prune_only_when_asked(project, registry):
    registry.set_alias("iris-classifier", "dev", 1)
    registry.set_alias("diabetes-regressor", "dev", 1)
    env = project.root / "environments" / "dev.yaml"
    env.write_text("\n".join(line for line in env.read_text().splitlines()
                             if "diabetes-regressor" not in line) + "\n")
    smaller = load_project(project.root)
    without = plan_for(smaller, registry)
    assert [c.action for c in without.changes if c.model == "diabetes-regressor"][-1] == "orphan"
    apply(smaller, without, registry)
    assert "dev" in registry.models["diabetes-regressor"].aliases
    apply(smaller, plan_for(smaller, registry, prune=True), registry)
    assert "dev" not in registry.models["diabetes-regressor"].aliases


def test_degraded_version_is_reported(project, registry):
    apply(project, plan_for(project, registry), registry)
    registry.set_version_tags("iris-classifier", 1, {"mlops.health.dev": "degraded"})
    rows = environment_status(desired_state(project, "dev"), read_live_state(registry, "example"))
    assert worst_health(rows) == "Degraded"


def test_lock_names_the_holder_and_is_released(registry):
    with Lock(registry, "example", "dev") as held:
        with pytest.raises(DiagnosticError) as raised:
            with Lock(registry, "example", "dev"):
                pass
        message = raised.value.diagnostics[0].message
        assert "another apply holds the lock of environment 'dev'" in message
        assert "alice" in message and "pid" in message
        assert "force-unlock --env dev" in raised.value.diagnostics[0].hint
        assert f"lock id {held.id}" in message
        assert raised.value.diagnostics[0].hint.endswith(f"--env dev {held.id}")
        with Lock(registry, "example", "test"):  # other environments are independent
            pass
    with Lock(registry, "example", "dev"):
        pass


def test_lock_timeout_waits_for_the_holder(registry):
    first = Lock(registry, "example", "dev").__enter__()
    threading.Timer(1.5, first.__exit__, (None, None, None)).start()
    started = time.monotonic()
    with Lock(registry, "example", "dev", timeout_s=10):
        assert time.monotonic() - started >= 1.0


def served(name: str, version: int):
    from mlops_gitops.serving.bento import ServedVersion

    return ServedVersion(name, name, version, "f" * 64, None)


def verdict(project, policy: str, champion: str) -> dict[str, str]:
    """The tags compare records with a blessed verdict."""
    from mlops_gitops.verdict import policy_digest

    return {"mlops.verdict": "blessed", "mlops.verdict.policy": policy,
            "mlops.verdict.policy_digest": policy_digest(project.policies[policy].spec),
            "mlops.verdict.champion": champion, "mlops.verdict.alias": "prod"}


def test_gates_block_prod_until_blessed_and_healthy_in_test(project, registry):
    blocked = plan_for(project, registry, env="prod")
    assert {c.action for c in blocked.changes if c.kind == "alias"} == {"blocked"}
    test_before_dev = plan_for(project, registry, env="test")
    assert {c.action for c in test_before_dev.changes if c.kind == "alias"} == {"blocked"}
    apply(project, plan_for(project, registry, env="dev"), registry)
    # Promoted to dev is not enough: healthy_in needs a deploy whose smoke test passed there.
    promoted_only = plan_for(project, registry, env="test")
    assert {c.action for c in promoted_only.changes if c.kind == "alias"} == {"blocked"}
    assert all("has not been deployed and smoke-tested in 'dev'" in c.reason
               for c in promoted_only.changes if c.kind == "alias")
    for name in ("iris-classifier", "diabetes-regressor"):
        record_health(registry, "dev", (served(name, 1),), "degraded", "b:1", COMMIT)
    smoke_failed = plan_for(project, registry, env="test")
    assert all("failed its smoke test in 'dev'" in c.reason
               for c in smoke_failed.changes if c.kind == "alias")
    for name in ("iris-classifier", "diabetes-regressor"):
        record_health(registry, "dev", (served(name, 1),), "healthy", "b:2", COMMIT)
    apply(project, plan_for(project, registry, env="test"), registry)
    assert registry.models["iris-classifier"].aliases == {"dev": 1, "test": 1}
    not_blessed = plan_for(project, registry, env="prod")
    assert {c.action for c in not_blessed.changes if c.kind == "alias"} == {"blocked"}
    assert all("not blessed" in c.reason for c in not_blessed.changes if c.kind == "alias")
    assert all("smoke-tested in 'test'" in c.reason for c in not_blessed.changes
               if c.kind == "alias")
    for name in ("iris-classifier", "diabetes-regressor"):
        record_health(registry, "test", (served(name, 1),), "healthy", "b:3", COMMIT)
    for name in ("iris-classifier", "diabetes-regressor"):
        registry.set_version_tags(name, 1, {"mlops.verdict": "blessed"})  # a bare, forged tag
    forged = plan_for(project, registry, env="prod")
    assert all("stale: the policy changed" in c.reason for c in forged.changes
               if c.kind == "alias")
    for name, policy in (("iris-classifier", "classification"),
                         ("diabetes-regressor", "regression")):
        registry.set_version_tags(name, 1, verdict(project, policy, champion="3"))
    moved = plan_for(project, registry, env="prod")
    assert all("the champion moved since this verdict (then version 3, now none)" in c.reason
               for c in moved.changes if c.kind == "alias")
    for name, policy in (("iris-classifier", "classification"),
                         ("diabetes-regressor", "regression")):
        registry.set_version_tags(name, 1, verdict(project, policy, champion="none"))
    ready = plan_for(project, registry, env="prod")
    assert [c.action for c in ready.changes if c.kind == "alias"] == ["create", "create"]


def edited(plan: Plan, key: str, **fields) -> Plan:
    """The plan with one change edited by hand (what an attacker does to a saved plan.json)."""
    data = json.loads(plan.to_json())
    for change in data["changes"]:
        if change["key"] == key:
            change.update(fields)
    return Plan.from_json(json.dumps(data))


def test_hand_edited_plan_cannot_bypass_a_gate(project, registry):
    saved = plan_for(project, registry, env="prod")
    key = "alias/iris-classifier@prod"
    assert {c.key: c.action for c in saved.changes}[key] == "blocked"
    attack = edited(saved, key, action="create", reason="trust me")
    with pytest.raises(DiagnosticError) as raised:
        apply(project, attack, registry)
    [problem] = raised.value.diagnostics
    assert problem.code == "plan-mismatch"
    assert (f"change {key}: plan says create (version 1), the specs and registry say blocked "
            "(version 1)") in problem.message
    assert "plan --env prod" in problem.hint
    assert "prod" not in registry.models["iris-classifier"].aliases


def test_hand_edited_version_or_extra_change_is_refused(project, registry):
    registry.add_version("iris-classifier", 2, "not-the-spec")
    saved = plan_for(project, registry)
    wrong_version = edited(saved, "alias/iris-classifier@dev", after={"version": 2})
    with pytest.raises(DiagnosticError, match="plan says create \\(version 2\\), the specs and "
                                              "registry say create \\(version 1\\)"):
        apply(project, wrong_version, registry)
    data = json.loads(saved.to_json())
    data["changes"].append({"key": "alias/iris-classifier@prod", "action": "create",
                            "before": None, "after": {"version": 2}, "reason": ""})
    with pytest.raises(DiagnosticError, match="change alias/iris-classifier@prod: plan says "
                                              "create \\(version 2\\), the specs and registry "
                                              "say nothing"):
        apply(project, Plan.from_json(json.dumps(data)), registry)
    duplicated = json.loads(saved.to_json())
    duplicated["changes"].append(duplicated["changes"][-1])
    with pytest.raises(DiagnosticError, match="duplicated or out of order"):
        apply(project, Plan.from_json(json.dumps(duplicated)), registry)
    assert registry.models["iris-classifier"].aliases == {}


def test_plan_of_another_commit_or_project_is_refused(project, registry):
    saved = plan_for(project, registry)
    with pytest.raises(DiagnosticError, match=f"made at commit {COMMIT}, the checkout is at "
                                              "f00d"):
        apply_plan(saved, registry, "f00d", desired=desired_state(project, "dev"))
    data = json.loads(saved.to_json())
    data["project"] = "other"
    with pytest.raises(DiagnosticError, match="the plan is for project 'other'"):
        apply(project, Plan.from_json(json.dumps(data)), registry)
    assert registry.models["iris-classifier"].aliases == {}


def test_saved_reason_never_reaches_the_audit_trail(project, registry):
    saved = edited(plan_for(project, registry), "alias/iris-classifier@dev",
                   reason="approved by the CTO", before={"version": 7})
    assert apply(project, saved, registry).ok
    [audit] = [json.loads(v) for k, v in registry.models["iris-classifier"].tags.items()
               if k.startswith("mlops.audit.dev.")]
    assert audit["reason"].startswith("trained from the current spec")
    assert audit["before"] is None and audit["commit"] == COMMIT


def test_alias_moved_by_hand_is_not_certified_by_a_record_repair(project, registry):
    registry.set_alias("iris-classifier", "prod", 1)  # by hand, past the gates
    plan = plan_for(project, registry, env="prod")
    [change] = [c for c in plan.changes if c.key == "alias/iris-classifier@prod"]
    assert change.action == "blocked" and "not blessed" in change.reason
    apply(project, plan, registry)
    assert "mlops.env.prod.promoted_at" not in registry.versions[("iris-classifier", 1)].tags


LOCK = lock_name("example", "dev")


def test_a_force_unlocked_holder_never_releases_the_next_holders_lock(registry):
    first = Lock(registry, "example", "dev").__enter__()  # A holds the lock and hangs
    force_unlock(registry, "example", "dev", first.id)
    second = Lock(registry, "example", "dev").__enter__()  # B takes it
    first.__exit__(None, None, None)  # A finishes at last
    assert registry.models[LOCK].tags["mlops.lock.id"] == second.id  # B's lock is still there
    with pytest.raises(DiagnosticError, match="another apply holds the lock"):
        Lock(registry, "example", "dev").__enter__()
    second.__exit__(None, None, None)
    assert LOCK not in registry.models


def test_force_unlock_needs_the_current_lock_id(registry):
    with pytest.raises(DiagnosticError, match="environment 'dev' has no apply lock"):
        force_unlock(registry, "example", "dev", "abc")
    held = Lock(registry, "example", "dev").__enter__()
    with pytest.raises(DiagnosticError) as raised:
        force_unlock(registry, "example", "dev", None)
    assert "environment 'dev' is locked by alice on" in raised.value.diagnostics[0].message
    assert raised.value.diagnostics[0].hint.endswith(f"force-unlock --env dev {held.id}")
    with pytest.raises(DiagnosticError) as raised:
        force_unlock(registry, "example", "dev", "not-" + held.id)
    assert f"lock id 'not-{held.id}' is not the current lock" in \
        raised.value.diagnostics[0].message
    assert "held by alice on" in raised.value.diagnostics[0].message
    assert LOCK in registry.models
    info = force_unlock(registry, "example", "dev", held.id)
    assert (info.id, info.holder) == (held.id, "alice") and info.pid.isdigit()
    assert "token" not in json.dumps(info.to_dict()) and held.token not in str(info)
    assert LOCK not in registry.models


def test_a_failed_lock_release_never_masks_the_original_error(registry):
    from mlops_gitops.diagnostics import Diagnostic

    lock = Lock(registry, "example", "dev")
    with pytest.raises(DiagnosticError) as raised:
        with lock:
            registry.fail_after_writes = 0  # the server goes down
            raise DiagnosticError([Diagnostic("x", message="the original problem")])
    first, second = raised.value.diagnostics
    assert first.message == "the original problem"
    assert second.code == "lock-release" and "could not be released" in second.message
    assert second.hint.endswith(f"force-unlock --env dev {lock.id}")
    with pytest.raises(KeyboardInterrupt) as interrupted:
        with Lock(registry, "other", "dev"):
            raise KeyboardInterrupt
    assert "could not be released" in interrupted.value.__notes__[0]


def test_a_failed_lock_release_after_success_is_an_error(registry):
    lock = Lock(registry, "example", "dev")
    with pytest.raises(DiagnosticError, match="could not be released"):
        with lock:
            registry.fail_after_writes = 0


def test_a_train_lock_names_itself_not_an_environment(registry):
    from mlops_gitops.reconcile.lock import train_lock_name

    name = train_lock_name("iris-classifier", "f" * 64)
    with Lock(registry, "example", "", resource=name):
        with pytest.raises(DiagnosticError) as raised:
            with Lock(registry, "example", "", resource=name):
                pass
        [problem] = raised.value.diagnostics
        assert f"another train holds the lock '{name}'" in problem.message
        assert "force-unlock" not in problem.hint and name in problem.hint
    assert name not in registry.models
    with pytest.raises(DiagnosticError) as raised:
        with Lock(registry, "example", "", resource=name):
            registry.fail_after_writes = 0  # the server goes down before the release
    [problem] = raised.value.diagnostics
    assert f"the lock of '{name}' could not be released" in problem.message
    assert "force-unlock" not in problem.hint
