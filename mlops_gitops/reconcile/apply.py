"""Planning and applying for one environment: lock, read live state, refuse stale plans,
execute the changes one by one with an audit record, stop at the first failure."""

from __future__ import annotations

import datetime
import getpass
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.reconcile.desired import DesiredState
from mlops_gitops.reconcile.diff import diff, env_tag, owned_tags
from mlops_gitops.reconcile.live import LiveState, read_live_state
from mlops_gitops.reconcile.plan import CREATE, DELETE, UPDATE, Change, Plan

LOCK_PREFIX = "mlops-gitops-lock"


def lock_name(project: str, env: str) -> str:
    """The lock is a registered model of this name (one per project and environment)."""
    return f"{LOCK_PREFIX}.{project}.{env}"


def make_plan(desired: DesiredState, live: LiveState, commit: str | None,
              prune: bool = False) -> Plan:
    return Plan(env=desired.env, project=desired.project, changes=tuple(diff(desired, live, prune)),
                live_fingerprint=live.fingerprint(), git_commit=commit, prune=prune)


def actor() -> str:
    """Who applies: the CI actor when there is one, else the local user."""
    for variable in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return {**asdict(self), "ok": self.ok}


@dataclass
class Lock:
    """Terraform-style state lock for one environment, held in the registry itself."""

    registry: object
    project: str
    env: str
    timeout_s: float = 0.0
    held: bool = field(default=False, init=False)

    @property
    def name(self) -> str:
        return lock_name(self.project, self.env)

    def __enter__(self) -> Lock:
        holder = {"mlops.lock.who": actor(), "mlops.lock.host": socket.gethostname(),
                  "mlops.lock.pid": str(os.getpid()), "mlops.lock.since": now_iso()}
        deadline = time.monotonic() + self.timeout_s
        while True:
            current = self.registry.acquire_lock(self.name, holder)
            if current is None:
                self.held = True
                return self
            if time.monotonic() >= deadline:
                who = (f"{current.get('mlops.lock.who', '?')} on "
                       f"{current.get('mlops.lock.host', '?')} (pid "
                       f"{current.get('mlops.lock.pid', '?')}) since "
                       f"{current.get('mlops.lock.since', '?')}")
                raise DiagnosticError([Diagnostic(
                    f"environment {self.env}", code="locked",
                    message=f"another apply holds the lock of environment '{self.env}': {who}",
                    hint=f"wait for it (--lock-timeout SECONDS), or if it died: "
                         f"mlops-gitops force-unlock --env {self.env}")])
            time.sleep(1.0)

    def __exit__(self, *exc_info) -> None:
        if self.held:
            self.registry.release_lock(self.name)
            self.held = False


def _audit(registry, change: Change, env: str, who: str, commit: str | None, when: str) -> None:
    record = {"env": env, "key": change.key, "action": change.action, "before": change.before,
              "after": change.after, "reason": change.reason, "by": who, "commit": commit,
              "at": when}
    registry.set_model_tag(change.model, f"mlops.audit.{env}.{when}",
                           json.dumps(record, sort_keys=True))


def execute(registry, change: Change, env: str, who: str, commit: str | None) -> None:
    """Carry out one change. Alias first, then the promotion record: a crash in between leaves
    an alias without a record, which the next plan repairs."""
    when = now_iso()
    if change.kind == "model":
        after, before = change.after, change.before or {}
        stale = [k for k in owned_tags(before.get("tags", {})) if k not in after["tags"]]
        registry.update_model(change.model, after["description"], after["tags"], stale)
    elif change.action == DELETE:
        registry.delete_alias(change.model, env)
    else:
        version = change.after["version"]
        registry.set_alias(change.model, env, version)
        registry.set_version_tags(change.model, version, {
            env_tag(env, "commit"): commit or "", env_tag(env, "promoted_at"): when,
            env_tag(env, "by"): who})
    _audit(registry, change, env, who, commit, when)


def apply_plan(plan: Plan, registry, commit: str | None,
               progress: Callable[[str], None] = lambda message: None) -> ApplyResult:
    """Apply a plan against the registry as it is now; refuse it if the registry moved on."""
    live = read_live_state(registry, plan.project)
    if live.fingerprint() != plan.live_fingerprint:
        raise DiagnosticError([Diagnostic(
            f"plan for {plan.env}", code="stale-plan",
            message="the plan is stale: the registry changed since it was made",
            hint=f"make a new plan: mlops-gitops plan --env {plan.env}")])
    who, applied = actor(), []
    pending = [c for c in plan.changes if c.action in (CREATE, UPDATE, DELETE)]
    for index, change in enumerate(pending):
        try:
            progress(f"{change.action} {change.key}")
            execute(registry, change, plan.env, who, commit)
        except DiagnosticError as exc:
            return ApplyResult(plan.env, tuple(applied), tuple(pending[index:]),
                               tuple(plan.unresolved), exc.diagnostics[0].message)
        applied.append(change)
    return ApplyResult(plan.env, tuple(applied), (), tuple(plan.unresolved))
