"""Plans and apply results for people: text like ``terraform plan``, and GitHub Markdown."""

from __future__ import annotations

from mlops_gitops.reconcile.plan import (
    BLOCKED,
    CREATE,
    DELETE,
    NEEDS_TRAINING,
    NOOP,
    ORPHAN,
    UPDATE,
    Change,
    Plan,
)

SYMBOL = {CREATE: "+", UPDATE: "~", DELETE: "-", NEEDS_TRAINING: "!", BLOCKED: "x",
          ORPHAN: "?", NOOP: " "}


def _describe(change: Change) -> list[str]:
    kind, model = change.kind, change.model
    before, after = change.before or {}, change.after or {}
    if kind == "alias":
        name = f"alias {model}@{change.alias}"
        if change.action == CREATE or (after and before.get("version") is None):
            head = f"{name} -> version {after['version']}"
        elif change.action in (DELETE, ORPHAN):
            head = f"{name} (version {before.get('version')})"
        elif before.get("version") != after.get("version") and after:
            head = f"{name}: version {before.get('version')} -> {after['version']}"
        else:
            head = f"{name} (version {after.get('version', before.get('version'))})"
        return [head]
    lines = [f"model {model}"]
    if change.action == UPDATE:
        if before.get("description") != after.get("description"):
            lines.append(f"    description: {before.get('description')!r} -> "
                         f"{after.get('description')!r}")
        old, new = before.get("tags", {}), after.get("tags", {})
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                lines.append(f"    tags.{key}: {old.get(key)!r} -> {new.get(key)!r}")
    return lines


def summary(plan: Plan) -> str:
    counts = {a: sum(c.action == a for c in plan.changes) for a in SYMBOL}
    text = (f"Plan: {counts[CREATE]} to add, {counts[UPDATE]} to change, "
            f"{counts[DELETE]} to delete.")
    extra = [f"{counts[a]} {label}" for a, label in ((NEEDS_TRAINING, "need training"),
                                                     (BLOCKED, "blocked"),
                                                     (ORPHAN, "orphaned (--prune deletes)"))
             if counts[a]]
    return text + (f" {', '.join(extra)}." if extra else "")


def plan_text(plan: Plan, show_unchanged: bool = False) -> str:
    commit = plan.git_commit[:12] if plan.git_commit else "none: not a git repository"
    lines = [f"Environment '{plan.env}' (live state {plan.live_fingerprint[:12]}, commit "
             f"{commit})", ""]
    shown = [c for c in plan.changes if show_unchanged or c.action != NOOP]
    if not shown:
        lines.append("No changes. The registry matches the specs.")
    for change in shown:
        head, *rest = _describe(change)
        lines.append(f"  {SYMBOL[change.action]} {head}")
        lines += [f"  {line}" for line in rest]
        if change.reason:
            lines.append(f"      # {change.reason}")
    lines += ["", summary(plan)]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def plan_markdown(plan: Plan) -> str:
    lines = [f"### Registry plan: `{plan.env}`", ""]
    shown = [c for c in plan.changes if c.action != NOOP]
    if not shown:
        lines.append("No changes: the registry matches the specs.")
    else:
        lines += ["| | resource | change | reason |", "|---|---|---|---|"]
        for change in shown:
            head, *rest = _describe(change)
            detail = "<br>".join(_cell(r.strip()) for r in rest)
            lines.append(f"| `{SYMBOL[change.action]}` | {_cell(head)} | "
                         f"{change.action}{'<br>' + detail if detail else ''} | "
                         f"{_cell(change.reason)} |")
    lines += ["", summary(plan)]
    return "\n".join(lines)
