"""Is a recorded champion/challenger verdict still about the present? One rule, used by the
``blessed`` gate (reading the verdict's version tags) and by the pull-request report (reading
the recorded ``compare.json``).

A verdict holds for the policy it was judged under (name and digest of its spec) and for the
champion it was judged against (the version the champion alias pointed at then). When either
has changed since, the verdict is stale: ``compare`` must run again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mlops_gitops.identity import TAG_VERDICT, TAG_VERDICT_PREFIX, canonical_json

TAG_POLICY = f"{TAG_VERDICT_PREFIX}policy"
TAG_POLICY_DIGEST = f"{TAG_VERDICT_PREFIX}policy_digest"
TAG_CHAMPION = f"{TAG_VERDICT_PREFIX}champion"  # a version number, or "none"
TAG_ALIAS = f"{TAG_VERDICT_PREFIX}alias"  # the alias that named the champion
TAG_VERDICT_INTERVAL = f"{TAG_VERDICT_PREFIX}interval"  # the primary delta's interval, in words
TAG_VERDICT_SPLIT = f"{TAG_VERDICT_PREFIX}split_hash"  # the test split the verdict is for


def policy_digest(policy_spec) -> str:
    """Digest of a PromotionPolicy's spec: a verdict recorded under another one is stale."""
    text = canonical_json(policy_spec.model_dump(mode="json", by_alias=True))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RecordedVerdict:
    verdict: str | None
    policy: str | None
    policy_digest: str | None
    alias: str | None
    champion: int | None  # None: judged with no champion

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> RecordedVerdict:
        champion = tags.get(TAG_CHAMPION, "none")
        return cls(tags.get(TAG_VERDICT), tags.get(TAG_POLICY), tags.get(TAG_POLICY_DIGEST),
                   tags.get(TAG_ALIAS), int(champion) if champion.isdigit() else None)

    @classmethod
    def from_record(cls, record: dict) -> RecordedVerdict:
        """From a comparison as ``compare`` records it (``compare.json``)."""
        champion = (record.get("champion") or {}).get("version")
        verdict = record.get("verdict")
        return cls(verdict.replace(" ", "_") if isinstance(verdict, str) else None,
                   record.get("policy"), record.get("policy_digest"), record.get("alias"),
                   int(champion) if isinstance(champion, int) else None)


def stale_reason(recorded: RecordedVerdict, policy: str | None, digest: str | None,
                 champion_now: int | None) -> str:
    """Why the verdict no longer holds ('' when it does)."""
    if recorded.policy != policy or recorded.policy_digest != digest:
        return "the policy changed since this verdict"
    if recorded.champion != champion_now:
        then = "none" if recorded.champion is None else f"version {recorded.champion}"
        now = "none" if champion_now is None else f"version {champion_now}"
        return f"the champion moved since this verdict (then {then}, now {now})"
    return ""
