"""``history``: who changed what in an environment, when, from which commit, and why — read
back from the audit records ``apply`` writes on each registered model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from mlops_gitops.identity import AUDIT_PREFIX
from mlops_gitops.reconcile.audit_roll import archived
from mlops_gitops.reconcile.live import LiveState


@dataclass(frozen=True)
class AuditRecord:
    model: str
    at: str
    by: str
    commit: str
    action: str
    key: str
    before: object
    after: object
    reason: str
    status: str  # applied | started (the apply stopped during this change)
    sequence: str  # the record's key: time to the microsecond, then its place in the apply

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _record(model: str, prefix: str, tag: str, value: str) -> AuditRecord:
    try:
        data = json.loads(value)
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except ValueError:
        data = {"reason": f"unreadable audit record {tag}"}
    return AuditRecord(
        model, str(data.get("at") or tag[len(prefix):]), str(data.get("by") or "?"),
        str(data.get("commit") or ""), str(data.get("action") or "?"),
        str(data.get("key") or "?"), data.get("before"), data.get("after"),
        # records from before the status field were written after their change
        str(data.get("reason") or ""), str(data.get("status") or "applied"),
        tag[len(prefix):])


def history(live: LiveState, env: str, model: str | None = None,
            archive: object = None) -> list[AuditRecord]:
    """The environment's audit records, oldest first; unreadable ones are shown as such.

    Records still held as tags and records rolled into the archive of ``archive`` (a registry
    that keeps one) are shown together, each once: a record caught between the two steps of a
    roll is in both places, and its tag key identifies it."""
    records = []
    prefix = f"{AUDIT_PREFIX}{env}."
    for name, registered in sorted(live.models.items()):
        if model is not None and name != model:
            continue
        found = {tag: value for tag, value in registered.tags.items() if tag.startswith(prefix)}
        if archive is not None:
            for tag, value in archived(archive, name, env):
                found.setdefault(tag if tag.startswith(prefix) else prefix + tag, value)
        records += [_record(name, prefix, tag, value) for tag, value in found.items()]
    return sorted(records, key=lambda r: (r.sequence, r.model))
