"""Sync and health per model and environment (Argo CD's vocabulary)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.identity import STATUS_READY, TAG_STATUS, TAG_TESTS, TESTS_FAILED
from mlops_gitops.reconcile.desired import DesiredState
from mlops_gitops.reconcile.diff import diff, health_tag, target_version
from mlops_gitops.reconcile.live import LiveState
from mlops_gitops.reconcile.plan import DELETE, MUTATING


class Sync(StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    UNKNOWN = "Unknown"


class Health(StrEnum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    MISSING = "Missing"


SYNCED, OUT_OF_SYNC, UNKNOWN = Sync.SYNCED, Sync.OUT_OF_SYNC, Sync.UNKNOWN
HEALTHY, PROGRESSING, DEGRADED, MISSING = (Health.HEALTHY, Health.PROGRESSING, Health.DEGRADED,
                                           Health.MISSING)
HEALTH_ORDER = (HEALTHY, PROGRESSING, MISSING, DEGRADED)  # worst last


@dataclass(frozen=True)
class ResourceStatus:
    env: str
    model: str
    sync: Sync
    health: Health
    desired_version: int | None
    live_version: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _health(live: LiveState, name: str, env: str, number: int | None) -> tuple[Health, str]:
    if number is None:
        return MISSING, f"no '{env}' alias"
    version = live.version(name, number)
    if version is None:
        return MISSING, f"the '{env}' alias points at version {number}, which does not exist"
    if version.tags.get(health_tag(env)) == "degraded":
        return DEGRADED, f"version {number} is marked degraded in '{env}'"
    if version.tags.get(TAG_TESTS) == TESTS_FAILED:
        return DEGRADED, f"version {number} failed its model tests"
    if version.tags.get(TAG_STATUS) != STATUS_READY:
        return PROGRESSING, f"version {number} is not completely registered yet"
    return HEALTHY, ""


def _pending(desired: DesiredState, live: LiveState) -> dict[str, str]:
    """What ``plan`` would change, by model: status and plan read one diff, so a model that
    plan would touch (labels, description, a missing promotion record) is never Synced."""
    try:
        changes = diff(desired, live)
    except DiagnosticError:
        return {}
    pending: dict[str, str] = {}
    for change in changes:
        if change.action in MUTATING and change.action != DELETE:
            pending.setdefault(change.model, f"plan: {change.action} {change.key} "
                                              f"({change.reason})")
    return pending


def environment_status(desired: DesiredState, live: LiveState) -> list[ResourceStatus]:
    env, rows = desired.env, []
    declared = set()
    pending = _pending(desired, live)
    for model in (m for m in desired.models if m.served):
        declared.add(model.name)
        registered = live.models.get(model.name)
        current = registered.aliases.get(env) if registered else None
        health, why_health = _health(live, model.name, env, current)
        try:
            target, _ = target_version(model, live)
        except DiagnosticError as exc:
            rows.append(ResourceStatus(env, model.name, UNKNOWN, health, model.pinned, current,
                                       exc.diagnostics[0].message))
            continue
        wanted = target.version if target else None
        if wanted is None:
            sync, reason = UNKNOWN, (f"no ready version has fingerprint "
                                     f"{model.fingerprint[:12]} (needs training)")
        elif current == wanted and model.name in pending:
            sync, reason = OUT_OF_SYNC, pending[model.name]
        elif current == wanted:
            sync, reason = SYNCED, ""
        else:
            sync = OUT_OF_SYNC
            reason = (f"alias '{env}' is missing; the specs want version {wanted}"
                      if current is None else
                      f"alias '{env}' points at version {current}; the specs want {wanted}")
        if current is None:  # the sync reason already says the alias is missing
            why_health = ""
        rows.append(ResourceStatus(env, model.name, sync, health, wanted, current,
                                   "; ".join(r for r in (reason, why_health) if r)))
    for name, registered in sorted(live.models.items()):
        if env in registered.aliases and name not in declared:
            number = registered.aliases[env]
            health, why = _health(live, name, env, number)
            rows.append(ResourceStatus(env, name, OUT_OF_SYNC, health, None, number,
                                       f"alias '{env}' is not declared by the specs "
                                       f"(apply --prune deletes it){'; ' + why if why else ''}"))
    return rows


def worst_health(rows: list[ResourceStatus]) -> str:
    if not rows:
        return HEALTHY
    return max((r.health for r in rows), key=HEALTH_ORDER.index)
