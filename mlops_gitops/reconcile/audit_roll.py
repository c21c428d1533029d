"""Keep the audit trail bounded: older ``mlops.audit.ENV.*`` tags of a registered model are
rolled into an archive (JSON Lines artifacts in the registry's tracking store), the newest stay
as tags.

A roll is two steps: (1) write the records, exactly as their tags hold them, into a new archive
chunk; (2) delete those tags. A crash after (1) leaves each record in both places and ``history``
shows it once (the tag key identifies a record); a crash before (1) changes nothing. The next
roll repeats the work. So a record is never lost and never shown twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from mlops_gitops.identity import AUDIT_PREFIX
from mlops_gitops.registry.ports import AuditArchive

KEEP_TAGS = 50  # newest records per model and environment kept as tags
ROLL_AT = 100  # a roll starts when a model holds more than this many records of one environment


def _prefix(env: str) -> str:
    return f"{AUDIT_PREFIX}{env}."


def records_to_roll(tags: dict[str, str], env: str, keep: int = KEEP_TAGS,
                    roll_at: int = ROLL_AT) -> list[str]:
    """Tag keys of the records to roll: all but the newest ``keep``, once over ``roll_at``."""
    keys = sorted(k for k in tags if k.startswith(_prefix(env)))
    if len(keys) <= roll_at:
        return []
    return keys[:len(keys) - keep]


def chunk_name(env: str, keys: list[str]) -> str:
    """The archive file of a roll, named by its first and last record (a repeated roll of the
    same records writes the same file)."""
    prefix = _prefix(env)
    return f"{keys[0][len(prefix):]}--{keys[-1][len(prefix):]}.jsonl"


def encode(tags: dict[str, str], keys: Iterable[str]) -> str:
    return "".join(json.dumps({"tag": key, "value": tags[key]}, sort_keys=True) + "\n"
                   for key in keys)


def decode(text: str) -> list[tuple[str, str]]:
    """(tag key, tag value) of each archived record; a damaged line is kept as unreadable."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            found.append((str(entry["tag"]), str(entry["value"])))
        except (ValueError, KeyError, TypeError):
            found.append((f"unreadable-line-{number}", line))
    return found


def roll(registry: AuditArchive, model: str, env: str, tags: dict[str, str], keep: int = KEEP_TAGS,
         roll_at: int = ROLL_AT, between: Callable[[], None] = lambda: None) -> int:
    """Roll the model's older audit records of ``env`` into the archive; the number rolled.
    ``between`` runs after the archive is written and before the tags go (tests crash there)."""
    keys = records_to_roll(tags, env, keep, roll_at)
    if not keys:
        return 0
    registry.archive_audit(model, env, chunk_name(env, keys), encode(tags, keys))
    between()
    registry.delete_model_tags(model, keys)
    return len(keys)


def archived(registry: object, model: str, env: str) -> list[tuple[str, str]]:
    """Every archived (tag key, value) of the model in ``env``; nothing when the registry keeps
    no archive."""
    if not isinstance(registry, AuditArchive):
        return []
    return [entry for text in registry.read_audit_archive(model, env) for entry in decode(text)]
