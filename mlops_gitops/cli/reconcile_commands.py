"""``plan``, ``apply``, ``status`` and ``force-unlock``: the reconciler on the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlops_gitops.cli.common import git_commit
from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.registry.open import open_registry


def _make_plan(project, env: str, registry, prune: bool):
    from mlops_gitops.reconcile.apply import plan_against
    from mlops_gitops.reconcile.desired import desired_state

    desired = desired_state(project, env)  # specs first: spec mistakes need no registry
    return plan_against(desired, registry, git_commit(project), prune)


def _print_plan(plan, fmt: str) -> None:
    from mlops_gitops.reconcile.render import plan_markdown, plan_text

    if fmt == "json":
        print(plan.to_json())
    else:
        print(plan_markdown(plan) if fmt == "markdown" else plan_text(plan))


def cmd_plan(args: argparse.Namespace, project) -> int:
    registry = open_registry(project, "read")
    plan = _make_plan(project, args.env, registry, args.prune)
    if args.out:
        args.out.write_text(plan.to_json() + "\n", encoding="utf-8")
    _print_plan(plan, args.format)
    if plan.unresolved:
        return 1
    return 2 if args.detailed_exitcode and plan.has_changes else 0


def _load_plan(path: Path, env: str):
    from mlops_gitops.reconcile.plan import Plan

    try:
        plan = Plan.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DiagnosticError([Diagnostic(str(path), code="plan",
                                          message=f"not a readable plan file: {exc}")]) from None
    if plan.env != env:
        raise DiagnosticError([Diagnostic(str(path), code="plan", message=f"the plan is for "
                                          f"environment '{plan.env}', not '{env}'")])
    return plan


def _confirm(plan) -> bool:
    if not sys.stdin.isatty():
        raise DiagnosticError([Diagnostic("<command line>", code="usage",
                                          message="no terminal to confirm the plan on",
                                          hint="review the plan, then pass --auto-approve")])
    print(f"\nApply these changes to '{plan.env}'? Only 'yes' will be accepted.")
    return input("  Enter a value: ").strip() == "yes"


def _pause_hook():
    """A deterministic pause for tests of interrupted applies: with
    MLOPS_GITOPS_TEST_PAUSE_AFTER_CHANGE=N, apply writes the file named by
    MLOPS_GITOPS_TEST_PAUSE_MARKER after change N and then blocks until it is signalled."""
    import os
    import time

    after = os.environ.get("MLOPS_GITOPS_TEST_PAUSE_AFTER_CHANGE")
    marker = os.environ.get("MLOPS_GITOPS_TEST_PAUSE_MARKER")
    if not after or not marker:
        return lambda number: None

    def pause(number: int) -> None:
        if number == int(after):
            Path(marker).write_text(f"paused after change {number}\n", encoding="utf-8")
            while True:
                time.sleep(3600)

    return pause


def _print_result(result, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(result.to_dict(), indent=2))
        return
    if result.error:
        print(f"Apply stopped: {result.error}")
        print(f"  applied: {', '.join(c.key for c in result.applied) or 'nothing'}")
        print(f"  not applied: {', '.join(c.key for c in result.not_applied)}")
        if "cannot reach" in result.error:
            print("  Run apply again once the registry answers: it converges from where "
                  "it stopped.")
    else:
        print(f"Apply complete! {len(result.applied)} change(s) applied to '{result.env}'.")
    for change in result.unresolved:
        print(f"  not converged: {change.key}: {change.reason}")


def cmd_apply(args: argparse.Namespace, project) -> int:
    from mlops_gitops.reconcile.apply import Lock, apply_plan, plan_against
    from mlops_gitops.reconcile.desired import desired_state
    from mlops_gitops.reconcile.render import plan_text

    saved = _load_plan(args.plan, args.env) if args.plan is not None else None
    desired = desired_state(project, args.env)  # specs first: spec mistakes need no registry
    commit = git_commit(project)
    registry = open_registry(project, "write")
    progress = (lambda m: print(f"  {m}", file=sys.stderr)) if args.format == "text" else \
        (lambda m: None)
    with Lock(registry, project.name, args.env, args.lock_timeout):
        plan = saved
        if plan is None:
            plan = plan_against(desired, registry, commit, args.prune)
            if args.format == "text":
                print(plan_text(plan))
            if plan.has_changes and not args.auto_approve and not _confirm(plan):
                print("Apply cancelled.")
                return 1
        result = apply_plan(plan, registry, commit, progress, desired=desired,
                            after_change=_pause_hook())
        _print_result(result, args.format)  # before the lock is released: never masked by it
    return 0 if result.ok else 1


def cmd_status(args: argparse.Namespace, project) -> int:
    from mlops_gitops.deploy.release import service_health
    from mlops_gitops.reconcile.desired import desired_state
    from mlops_gitops.reconcile.live import read_live_state
    from mlops_gitops.reconcile.status import DEGRADED, SYNCED, environment_status

    envs = [args.env] if args.env else project.promotion_order()
    desired = [desired_state(project, env) for env in envs]
    live = read_live_state(open_registry(project, "read"), project.name,
                           [m.name for state in desired for m in state.models])
    rows = [row for state in desired for row in environment_status(state, live)]
    services = {env: service_health(project, env) for env in envs}
    if args.format == "json":
        print(json.dumps([{**r.to_dict(), "service": services[r.env].to_dict()} for r in rows],
                         indent=2))
    else:
        print(f"{'ENVIRONMENT':<12} {'MODEL':<32} {'SYNC':<10} {'HEALTH':<12} {'VERSION':<9} "
              "REASON")
        for r in rows:
            version = f"{r.live_version if r.live_version is not None else 'none'}"
            if r.desired_version is not None and r.desired_version != r.live_version:
                version += f"->{r.desired_version}"
            print(f"{r.env:<12} {r.model:<32} {r.sync:<10} {r.health:<12} {version:<9} "
                  f"{r.reason}")
        print(f"\n{'ENVIRONMENT':<12} {'SERVICE':<36} {'TARGET':<10} {'HEALTH':<12} DETAIL")
        for env, s in services.items():
            served = ", ".join(f"{n}/{v}" for n, v in sorted(s.versions.items()))
            detail = "; ".join(x for x in (s.url, served, s.detail) if x)
            print(f"{env:<12} {s.bento_tag or '-':<36} {s.target:<10} {s.health:<12} {detail}")
        from mlops_gitops.monitor.last import last_verdict

        verdicts = [v for v in (last_verdict(project.root, env, services[env].bento_tag
                                             if env in services else None) for env in envs) if v]
        if verdicts:
            print(f"\n{'ENVIRONMENT':<12} {'MONITORING':<16} {'AT':<21} DETAIL")
            for v in verdicts:
                print(f"{v.env:<12} {v.verdict:<16} {v.at or '-':<21} {v.detail}")
    degraded = any(s.health == DEGRADED for s in services.values())
    return 0 if all(r.sync == SYNCED and r.health != DEGRADED for r in rows) and not degraded \
        else 1


def cmd_force_unlock(args: argparse.Namespace, project) -> int:
    from mlops_gitops.reconcile.desired import environment
    from mlops_gitops.reconcile.lock import force_unlock, lock_name

    environment(project, args.env)  # an unknown environment is a usage error
    info = force_unlock(open_registry(project, "write"), project.name, args.env, args.lock_id)
    if args.format == "json":
        print(json.dumps({"env": args.env, "lock": lock_name(project.name, args.env),
                          "released": True, **info.to_dict()}))
    else:
        print(f"Released the apply lock of environment '{args.env}' held by "
              f"{info.describe()}.")
    return 0


def cmd_history(args: argparse.Namespace, project) -> int:
    from mlops_gitops.reconcile.desired import environment
    from mlops_gitops.reconcile.history import history
    from mlops_gitops.reconcile.live import read_live_state

    environment(project, args.env)  # an unknown environment is a usage error

    live = read_live_state(open_registry(project, "read"), project.name)
    # older records were rolled into the archive (artifacts in the tracking store)
    records = history(live, args.env, args.model, archive=open_registry(project, "write"))
    if args.format == "json":
        print(json.dumps([r.to_dict() for r in records], indent=2))
        return 0
    if not records:
        print(f"No recorded changes in '{args.env}'.")
    for r in records:
        before = (r.before or {}).get("version") if isinstance(r.before, dict) else None
        after = (r.after or {}).get("version") if isinstance(r.after, dict) else None
        moved = f" {before or '-'} -> {after or '-'}" if before or after else ""
        flag = "" if r.status == "applied" else f"  [{r.status}]"
        print(f"{r.at}  {r.by:<12} {r.commit[:10] or '-':<10} {r.action:<7} {r.key}{moved}"
              f"{flag}\n{'':22}why: {r.reason or '-'}")
    return 0


def _seconds(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds >= 0")
    return value


def add_commands(add, load_project) -> None:
    """Register the reconciler's commands with the CLI's ``command`` helper."""
    def command(name, func, help, formats=("text", "json")):
        return add(name, lambda args: func(args, load_project(args)), help, formats)

    def env_option(sub, required: bool = True) -> None:
        sub.add_argument("--env", "-e", required=required, metavar="ENV",
                         help="environment name" + ("" if required else " (default: all)"))

    plan = command("plan", cmd_plan, "Show what apply would change in the registry for an "
                   "environment (like terraform plan).", ("text", "json", "markdown"))
    env_option(plan)
    plan.add_argument("--out", type=Path, metavar="FILE", help="save the plan for apply")
    plan.add_argument("--detailed-exitcode", action="store_true",
                      help="exit 0 when there are no changes, 2 when changes are pending")
    plan.add_argument("--prune", action="store_true",
                      help="plan deleting aliases the specs no longer declare")
    apply = command("apply", cmd_apply, "Apply a saved plan, or plan and apply after "
                    "confirmation.")
    env_option(apply)
    apply.add_argument("plan", nargs="?", type=Path, metavar="PLAN",
                       help="a plan saved by 'plan --out' (applied exactly, refused if stale)")
    apply.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    apply.add_argument("--prune", action="store_true",
                       help="delete aliases the specs no longer declare")
    apply.add_argument("--lock-timeout", type=_seconds, default=0.0, metavar="SECONDS",
                       help="wait this long for another apply's lock (default: 0)")
    history = command("history", cmd_history, "Who changed what in an environment, when, from "
                      "which commit, and why (the audit records apply writes).")
    env_option(history)
    history.add_argument("--model", "-m", default=None, metavar="NAME",
                         help="only this registered model")
    status = command("status", cmd_status, "Sync (Synced/OutOfSync/Unknown) and health "
                     "(Healthy/Progressing/Degraded/Missing) per model and environment.")
    env_option(status, required=False)
    unlock = command("force-unlock", cmd_force_unlock, "Release an environment's apply lock "
                     "left behind by a dead apply (like terraform force-unlock).")
    env_option(unlock)
    unlock.add_argument("lock_id", nargs="?", metavar="LOCK_ID",
                        help="the id of the lock to release (named by the 'holds the lock' "
                             "error; without it, the current holder is shown)")
