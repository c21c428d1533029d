"""``history``: who changed what in an environment, when, from which commit, and why — read
back from the audit records ``apply`` writes on each registered model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from mlops_gitops.reconcile.apply import AUDIT_PREFIX
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

    def to_dict(self) -> dict:
        return asdict(self)


def history(live: LiveState, env: str, model: str | None = None) -> list[AuditRecord]:
    """The environment's audit records, oldest first; unreadable ones are shown as such."""
    records = []
    prefix = f"{AUDIT_PREFIX}{env}."
    for name, registered in sorted(live.models.items()):
        if model is not None and name != model:
            continue
        for tag, value in registered.tags.items():
            if not tag.startswith(prefix):
                continue
            try:
                data = json.loads(value)
                if not isinstance(data, dict):
                    raise ValueError("not an object")
            except ValueError:
                data = {"reason": f"unreadable audit record {tag}"}
            records.append(AuditRecord(
                name, str(data.get("at") or tag[len(prefix):]), str(data.get("by") or "?"),
                str(data.get("commit") or ""), str(data.get("action") or "?"),
                str(data.get("key") or "?"), data.get("before"), data.get("after"),
                # records from before the status field were written after their change
                str(data.get("reason") or ""), str(data.get("status") or "applied"),
                tag[len(prefix):]))
    return sorted(records, key=lambda r: (r.sequence, r.model))
