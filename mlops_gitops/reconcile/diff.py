"""Desired vs live, aligned by resource key, normalized on both sides -> the list of changes."""

from __future__ import annotations

import dataclasses

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.identity import (
    STATUS_READY,
    TAG_FINGERPRINT,
    TAG_STATUS,
    TAG_TESTS,
    TESTS_FAILED,
    VERDICT_BLESSED,
    is_owned_tag,
)
from mlops_gitops.reconcile.desired import DesiredModel, DesiredState
from mlops_gitops.reconcile.live import LiveState
from mlops_gitops.reconcile.plan import (
    BLOCKED,
    CREATE,
    DELETE,
    NEEDS_TRAINING,
    NOOP,
    ORPHAN,
    UPDATE,
    Change,
    alias_key,
    model_key,
)
from mlops_gitops.registry.ports import ModelVersion
from mlops_gitops.verdict import RecordedVerdict, stale_reason


def env_tag(env: str, field: str) -> str:
    """Promotion record on a version: mlops.env.ENV.{commit,promoted_at,by}."""
    return f"mlops.env.{env}.{field}"


def health_tag(env: str) -> str:
    """Health record on a version: mlops.health.ENV = healthy | degraded | deployed (with
    .at, .bento and .commit beside it)."""
    return f"mlops.health.{env}"


HEALTH_PASSED, HEALTH_FAILED = "healthy", "degraded"


def owned_tags(tags: dict[str, str]) -> dict[str, str]:
    """The registered-model tags mlops-gitops owns (audit and others' tags are left alone)."""
    return {k: v for k, v in tags.items() if is_owned_tag(k)}


def ready_version(live: LiveState, name: str, fingerprint: str) -> ModelVersion | None:
    found = [v for v in live.versions.get(name, ()) if v.tags.get(TAG_FINGERPRINT) == fingerprint
             and v.tags.get(TAG_STATUS) == STATUS_READY]
    return found[-1] if found else None


def health_problem(version: ModelVersion, env: str) -> str:
    """Why the version's health record does not show it passing in ``env`` ('' when it does).

    ``deploy`` writes the record after its smoke test; it stays with the version when the
    environment moves on, so a version that once passed stays eligible (rollback by revert).
    """
    if version.tags.get(TAG_TESTS) == TESTS_FAILED:
        return f"version {version.version} failed its model tests"
    record = version.tags.get(health_tag(env))
    when = version.tags.get(f"{health_tag(env)}.at", "?")
    if record == HEALTH_PASSED:
        return ""
    if record is None:
        return (f"version {version.version} has not been deployed and smoke-tested in "
                f"'{env}' (run 'mlops-gitops deploy --env {env}' there first)")
    if record == HEALTH_FAILED:
        return f"version {version.version} failed its smoke test in '{env}' (at {when})"
    return f"version {version.version} is '{record}' in '{env}' (at {when}), not healthy"


def verdict_problem(desired: DesiredModel, live: LiveState, version: ModelVersion) -> str:
    """Why the version's verdict does not bless it now ('' when it does): not blessed, or
    blessed under another policy or against another champion than today's."""
    recorded = RecordedVerdict.from_tags(version.tags)
    if recorded.verdict != VERDICT_BLESSED:
        return (f"version {version.version} is not blessed ({recorded.verdict or 'no verdict'}; "
                "run 'mlops-gitops compare')")
    model = live.models.get(desired.name)
    alias = recorded.alias or desired.champion_alias
    champion_now = model.aliases.get(alias) if model and alias else None
    stale = stale_reason(recorded, desired.policy, desired.policy_digest, champion_now)
    if stale:
        return (f"the verdict of version {version.version} is stale: {stale}; run "
                "'mlops-gitops compare'")
    return ""


def served_before(version: ModelVersion, env: str) -> str | None:
    """When the version was promoted to ``env`` before (its promotion record), if it was."""
    return version.tags.get(env_tag(env, "promoted_at"))


def gate_problems(desired: DesiredModel, live: LiveState, version: ModelVersion,
                  env: str) -> list[str]:
    gate = desired.gate
    if gate is None:
        return []
    problems = []
    if gate.healthy_in:
        problem = health_problem(version, gate.healthy_in)
        if problem:
            problems.append(problem)
    # A rollback (a version that served in this environment before, back by `git revert`)
    # needs no fresh verdict: its promotion record proves it passed then.
    if gate.blessed and not served_before(version, env):
        problem = verdict_problem(desired, live, version)
        if problem:
            problems.append(problem)
    return problems


def _model_change(desired: DesiredModel, live: LiveState) -> Change:
    key = model_key(desired.name)
    current = live.models.get(desired.name)
    if current is None and desired.name in live.foreign:
        return Change(key, BLOCKED, None, None,
                      f"a registered model '{desired.name}' exists but is not managed by project "
                      f"'{desired.tags['mlops.project']}': it is never touched; choose another "
                      "registered_model (or model_prefix), or tag it mlops.managed=true and "
                      f"mlops.project={desired.tags['mlops.project']} to adopt it")
    if current is None:
        return Change(key, NEEDS_TRAINING, None, None,
                      f"'{desired.name}' has no registered version yet: run "
                      f"'mlops-gitops train {desired.spec_name}'")
    want = {"description": desired.description, "tags": desired.tags}
    have = {"description": current.description, "tags": owned_tags(current.tags)}
    if want == have:
        return Change(key, NOOP, have, want)
    return Change(key, UPDATE, have, want, "description or owner/labels changed in the spec")


def target_version(desired: DesiredModel, live: LiveState) -> tuple[ModelVersion | None, str]:
    if desired.pinned is not None:
        version = live.version(desired.name, desired.pinned)
        if version is None:
            source = desired.pin_source or Diagnostic("environment spec", code="pin")
            raise DiagnosticError([dataclasses.replace(
                source, message=f"version {desired.pinned} of '{desired.name}' does not exist "
                f"in the registry", hint="pin an existing version, or remove the pin to serve "
                "the version trained from the spec")])
        return version, f"pinned to version {desired.pinned} in the environment spec"
    version = ready_version(live, desired.name, desired.fingerprint)
    return version, f"trained from the current spec (fingerprint {desired.fingerprint[:12]})"


def _alias_change(desired: DesiredModel, live: LiveState, env: str) -> Change:
    key = alias_key(desired.name, env)
    model = live.models.get(desired.name)
    current = model.aliases.get(env) if model else None
    before = {"version": current} if current is not None else None
    version, why = target_version(desired, live)
    if version is None:
        return Change(key, NEEDS_TRAINING, before, None,
                      f"no ready version has fingerprint {desired.fingerprint[:12]}: run "
                      f"'mlops-gitops train {desired.spec_name}'")
    after = {"version": version.version}
    recorded = env_tag(env, "promoted_at") in version.tags
    # Every alias change passes the gates, a repair of a missing promotion record too (an alias
    # moved by hand must not be certified by apply).
    problems = gate_problems(desired, live, version, env) \
        if current != version.version or not recorded else []
    if problems:
        return Change(key, BLOCKED, before, after,
                      f"gate '{env}' of policy '{desired.policy}': {'; '.join(problems)}")
    if current == version.version:
        if not recorded:
            return Change(key, UPDATE, before, after, "promotion record missing on the version")
        return Change(key, NOOP, before, after, why)
    if recorded and desired.gate is not None and desired.gate.blessed:
        why = (f"rollback to version {version.version} (served in {env} since "
               f"{served_before(version, env)}; no fresh verdict needed); {why}")
    return Change(key, CREATE if current is None else UPDATE, before, after, why)


def diff(desired: DesiredState, live: LiveState, prune: bool = False) -> list[Change]:
    changes: list[Change] = []
    declared = {m.name for m in desired.models if m.served}
    for model in desired.models:
        change = _model_change(model, live)
        changes.append(change)
        if model.served and change.action not in (NEEDS_TRAINING, BLOCKED):
            changes.append(_alias_change(model, live, desired.env))
    for name, registered in sorted(live.models.items()):
        if desired.env in registered.aliases and name not in declared:
            before = {"version": registered.aliases[desired.env]}
            reason = "no longer served by the environment spec"
            changes.append(Change(alias_key(name, desired.env), DELETE if prune else ORPHAN,
                                  before, None,
                                  reason if prune else reason + " (apply --prune deletes it)"))
    return changes
