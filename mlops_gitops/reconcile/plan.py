"""The plan: a frozen, serializable value computed from the specs and a read of the registry.

Rendering and applying are separate. Only ``key``, ``action`` and ``after`` steer apply;
``before`` and ``reason`` are for people.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

PLAN_FORMAT = 1


class Action(StrEnum):
    """What a plan does to one registry object (a saved plan holds the value)."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    NOOP = "no-op"
    NEEDS_TRAINING = "needs-training"  # no ready version for the spec's fingerprint yet
    BLOCKED = "blocked"  # a promotion gate refuses the version
    ORPHAN = "orphan"  # an alias no spec serves (deleted with --prune)


CREATE, UPDATE, DELETE, NOOP = Action.CREATE, Action.UPDATE, Action.DELETE, Action.NOOP
NEEDS_TRAINING, BLOCKED, ORPHAN = Action.NEEDS_TRAINING, Action.BLOCKED, Action.ORPHAN
MUTATING = (CREATE, UPDATE, DELETE)
UNRESOLVED = (NEEDS_TRAINING, BLOCKED)


@dataclass(frozen=True)
class Change:
    key: str  # "model/NAME" or "alias/NAME@ENV"
    action: Action
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
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
        changes = tuple(Change(**{**c, "action": Action(c["action"])}) for c in data["changes"])
        return cls(env=data["env"], project=data["project"], changes=changes,
                   live_fingerprint=data["live_fingerprint"], git_commit=data.get("git_commit"),
                   prune=data.get("prune", False))
