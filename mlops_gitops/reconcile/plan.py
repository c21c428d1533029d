"""The plan: a frozen, serializable value computed from the specs and a read of the registry.

Rendering and applying are separate. Only ``key``, ``action`` and ``after`` steer apply;
``before`` and ``reason`` are for people.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

PLAN_FORMAT = 1

CREATE, UPDATE, DELETE, NOOP = "create", "update", "delete", "no-op"
NEEDS_TRAINING, BLOCKED, ORPHAN = "needs-training", "blocked", "orphan"
MUTATING = (CREATE, UPDATE, DELETE)
UNRESOLVED = (NEEDS_TRAINING, BLOCKED)


@dataclass(frozen=True)
class Change:
    key: str  # "model/NAME" or "alias/NAME@ENV"
    action: str
    before: dict | None = None
    after: dict | None = None
    reason: str = ""

    @property
    def kind(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def model(self) -> str:
        return self.key.split("/", 1)[1].rsplit("@", 1)[0]

    @property
    def alias(self) -> str | None:
        body = self.key.split("/", 1)[1]
        return body.rsplit("@", 1)[1] if self.kind == "alias" else None


def model_key(name: str) -> str:
    return f"model/{name}"


def alias_key(name: str, env: str) -> str:
    return f"alias/{name}@{env}"


@dataclass(frozen=True)
class Plan:
    env: str
    project: str
    changes: tuple[Change, ...]
    live_fingerprint: str
    git_commit: str | None = None
    prune: bool = False
    format: int = PLAN_FORMAT

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action in MUTATING]

    @property
    def unresolved(self) -> list[Change]:
        return [c for c in self.changes if c.action in UNRESOLVED]

    @property
    def has_changes(self) -> bool:
        return bool(self.pending)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        if data.get("format") != PLAN_FORMAT:
            raise ValueError(f"unsupported plan format {data.get('format')!r}")
        changes = tuple(Change(**c) for c in data["changes"])
        return cls(env=data["env"], project=data["project"], changes=changes,
                   live_fingerprint=data["live_fingerprint"], git_commit=data.get("git_commit"),
                   prune=data.get("prune", False))
