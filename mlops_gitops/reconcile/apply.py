"""Planning and applying for one environment: read live state, refuse stale or edited plans,
execute the changes one by one with an audit record, stop at the first failure."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.identity import AUDIT_PREFIX
from mlops_gitops.reconcile.desired import DesiredState
from mlops_gitops.reconcile.diff import diff, env_tag, owned_tags
from mlops_gitops.reconcile.live import LiveState, read_live_state
from mlops_gitops.reconcile.lock import Lock, actor, lock_name, now_iso
from mlops_gitops.reconcile.plan import DELETE, Change, Plan
from mlops_gitops.registry.ports import AuditArchive, Registry, RegistryReader

__all__ = ["ApplyResult", "Lock", "apply_plan", "check_saved_plan", "execute", "lock_name",
           "make_plan", "plan_against", "plan_differences"]


def make_plan(desired: DesiredState, live: LiveState, commit: str | None,
              prune: bool = False) -> Plan:
    return Plan(env=desired.env, project=desired.project, changes=tuple(diff(desired, live, prune)),
                live_fingerprint=live.fingerprint(), git_commit=commit, prune=prune)


def plan_against(desired: DesiredState, reader: RegistryReader, commit: str | None,
                 prune: bool = False) -> Plan:
    """The plan for the specs against the registry as it is now (this project's part of it,
    and the names the specs use)."""
    names = [m.name for m in desired.models]
    return make_plan(desired, read_live_state(reader, desired.project, names), commit, prune)


@dataclass(frozen=True)
class ApplyResult:
    env: str
    applied: tuple[Change, ...] = ()
    not_applied: tuple[Change, ...] = ()
    unresolved: tuple[Change, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.unresolved

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "ok": self.ok}


def audit_key(env: str, index: int) -> str:
    """A key no other record can take: microseconds, then the change's place in its apply."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{AUDIT_PREFIX}{env}.{stamp}.{index:03d}"


def _audit(registry: Registry, key: str, change: Change, env: str, who: str, commit: str | None,
           when: str, status: str) -> None:
    record = {"env": env, "key": change.key, "action": change.action, "before": change.before,
              "after": change.after, "reason": change.reason, "by": who, "commit": commit,
              "at": when, "status": status}
    registry.set_model_tag(change.model, key, json.dumps(record, sort_keys=True))


def execute(registry: Registry, change: Change, env: str, who: str, commit: str | None,
            index: int = 0) -> None:
    """Carry out one change, its audit record written first (``started``) and completed after
    (``applied``): a crash in between leaves the record of what was attempted, never nothing.
    Alias first, then the promotion record: a crash in between leaves an alias without a
    record, which the next plan repairs."""
    when = now_iso()
    key = audit_key(env, index)
    _audit(registry, key, change, env, who, commit, when, "started")
    if change.kind == "model":
        after, before = change.after or {}, change.before or {}
        stale = [k for k in owned_tags(before.get("tags", {})) if k not in after["tags"]]
        registry.update_model(change.model, after["description"], after["tags"], stale)
    elif change.action == DELETE:
        registry.delete_alias(change.model, env)
    else:
        version = (change.after or {})["version"]
        registry.set_alias(change.model, env, version)
        registry.set_version_tags(change.model, version, {
            env_tag(env, "commit"): commit or "", env_tag(env, "promoted_at"): when,
            env_tag(env, "by"): who})
    _audit(registry, key, change, env, who, commit, when, "applied")


def _steering(change: Change) -> tuple[str, str, str]:
    return change.key, change.action, json.dumps(change.after, sort_keys=True)


def _says(change: Change | None) -> str:
    if change is None:
        return "nothing"
    if change.kind == "alias" and change.after and "version" in change.after:
        return f"{change.action} (version {change.after['version']})"
    if change.after is not None:
        return f"{change.action} ({json.dumps(change.after, sort_keys=True)})"
    return change.action


def plan_differences(saved: Plan, fresh: Plan) -> list[str]:
    """How a saved plan differs from the plan the specs and the registry give now, in what
    steers apply (key, action, after); empty when they agree."""
    if [_steering(c) for c in saved.changes] == [_steering(c) for c in fresh.changes]:
        return []
    old = {c.key: c for c in saved.changes}
    new = {c.key: c for c in fresh.changes}
    found = [f"change {key}: plan says {_says(old.get(key))}, the specs and registry say "
             f"{_says(new.get(key))}" for key in sorted(old.keys() | new.keys())
             if key not in old or key not in new or _steering(old[key]) != _steering(new[key])]
    return found or ["the plan's changes are duplicated or out of order"]


def check_saved_plan(plan: Plan, fresh: Plan) -> None:
    """Refuse a plan made for another project, environment or commit, or edited by hand."""
    where = f"plan for {plan.env}"
    remake = f"make a new plan: mlops-gitops plan --env {fresh.env} --out FILE"
    if plan.project != fresh.project or plan.env != fresh.env:
        raise DiagnosticError([Diagnostic(
            where, code="plan", message=f"the plan is for project '{plan.project}', environment "
            f"'{plan.env}', not project '{fresh.project}', environment '{fresh.env}'",
            hint=remake)])
    if plan.git_commit != fresh.git_commit:
        raise DiagnosticError([Diagnostic(
            where, code="plan", message=f"the plan was made at commit {plan.git_commit or 'none'}"
            f", the checkout is at {fresh.git_commit or 'none'}",
            hint=f"check out the plan's commit, or {remake}")])
    if plan.live_fingerprint != fresh.live_fingerprint:
        raise DiagnosticError([Diagnostic(
            where, code="stale-plan",
            message="the plan is stale: the registry changed since it was made",
            hint=f"make a new plan: mlops-gitops plan --env {plan.env}")])
    differences = plan_differences(plan, fresh)
    if differences:
        raise DiagnosticError([Diagnostic(
            where, code="plan-mismatch", message=f"the plan does not match the specs and the "
            f"registry: {difference}", hint=f"a saved plan cannot be edited; {remake}")
            for difference in differences])


def apply_plan(plan: Plan, registry: Registry, commit: str | None,
               progress: Callable[[str], None] = lambda message: None, *,
               desired: DesiredState,
               after_change: Callable[[int], None] = lambda number: None) -> ApplyResult:
    """Apply a plan against the registry as it is now. The plan is recomputed from ``desired``
    (the specs as checked out at ``commit``) and the live state, gates included, and refused
    unless it is exactly what was saved: a plan is never trusted, only checked."""
    fresh = plan_against(desired, registry, commit, plan.prune)
    check_saved_plan(plan, fresh)
    who, applied = actor(), list[Change]()
    pending = fresh.pending  # the recomputed changes: before and reason are not the file's
    for index, change in enumerate(pending):
        try:
            progress(f"{change.action} {change.key}")
            execute(registry, change, fresh.env, who, fresh.git_commit, index)
        except DiagnosticError as exc:
            return ApplyResult(fresh.env, tuple(applied), tuple(pending[index:]),
                               tuple(fresh.unresolved), exc.diagnostics[0].message)
        applied.append(change)
        after_change(len(applied))
    roll_audit(registry, fresh.env, sorted({c.model for c in applied}), progress)
    return ApplyResult(fresh.env, tuple(applied), (), tuple(fresh.unresolved))


def roll_audit(registry: Registry, env: str, models: list[str],
               progress: Callable[[str], None] = lambda message: None) -> int:
    """Keep each model's audit tags bounded (older records go to the archive). A roll that
    fails leaves every record where it was, so it never fails the apply: the next one rolls."""
    from mlops_gitops.reconcile.audit_roll import roll

    if not isinstance(registry, AuditArchive):
        return 0
    rolled = 0
    for name in models:
        try:
            current = registry.get_model(name)
            if current is not None:
                rolled += roll(registry, name, env, current.tags)
        except DiagnosticError as exc:
            progress(f"audit records of {name} not rolled (the next apply will): "
                     f"{exc.diagnostics[0].message}")
    if rolled:
        progress(f"rolled {rolled} older audit record(s) into the archive")
    return rolled
