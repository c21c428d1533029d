"""Skip what is already known: a recorded model-test result or champion/challenger verdict that
still holds, read from the version's tags through a fast reader (no MLflow, scikit-learn or
pandas import).

A recorded result holds only when everything it depends on is what it was:

- model tests: the version (found by the current fingerprint, ready and managed), the digest of
  the declared tests, the test split (the split the result was recorded on is the one recorded
  at training; the fingerprint covers the data's md5 and the dataset spec, so the split is the
  current one) and a passing result for exactly the declared tests;
- comparison: the version, the policy (name and digest of its spec), the champion alias and the
  version it points at now (which must exist), the test split, and a blessed verdict whose
  summary (and, with a champion, interval) was recorded.

Every recorded value is untrusted: anything missing, malformed or different (a forged or
half-written tag) answers None, and the caller runs the step as if nothing were recorded. Only
passing results are reused; a failure is evaluated again (and reported in full).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_gitops.identity import (
    STATUS_READY,
    TAG_FINGERPRINT,
    TAG_MANAGED,
    TAG_STATUS,
    TAG_TEST_PREFIX,
    TAG_TESTS,
    TAG_TESTS_DIGEST,
    TAG_TESTS_SPLIT,
    TAG_TRAIN_SPLIT,
    TAG_VERDICT,
    TAG_VERDICT_PREFIX,
    TESTS_PASSED,
    VERDICT_BLESSED,
)
from mlops_gitops.registry.ports import ModelVersion
from mlops_gitops.verdict import (
    TAG_ALIAS,
    TAG_VERDICT_INTERVAL,
    TAG_VERDICT_SPLIT,
    RecordedVerdict,
    policy_digest,
    stale_reason,
)

TAG_CHECKS = f"{TAG_VERDICT_PREFIX}checks"


@dataclass(frozen=True)
class KnownComparison:
    details: tuple[str, ...]  # the lines compare would print
    blessed: bool | None  # None: the model names no policy


def _ours(version: ModelVersion | None, fingerprint: str) -> bool:
    """A complete, managed version registered for this fingerprint, with its training split."""
    if version is None:
        return False
    tags = version.tags
    return (tags.get(TAG_MANAGED) == "true" and tags.get(TAG_FINGERPRINT) == fingerprint
            and tags.get(TAG_STATUS) == STATUS_READY and bool(tags.get(TAG_TRAIN_SPLIT)))


def known_tests(model, version: ModelVersion | None, fingerprint: str) -> str | None:
    """The line ``test`` would print when the recorded result still holds, else None."""
    from mlops_gitops.evaluate.model_tests import tests_digest

    tests = model.spec.spec.tests
    if not tests or not _ours(version, fingerprint):
        return None
    tags = version.tags
    if tags.get(TAG_TESTS) != TESTS_PASSED or tags.get(TAG_TESTS_DIGEST) != tests_digest(tests):
        return None
    if tags.get(TAG_TESTS_SPLIT) != tags[TAG_TRAIN_SPLIT]:
        return None
    recorded = {k[len(TAG_TEST_PREFIX):]: v for k, v in tags.items()
                if k.startswith(TAG_TEST_PREFIX)}
    if recorded != {t.name: "pass" for t in tests}:
        return None
    return f"{version.name}/{version.version}: {len(tests)}/{len(tests)} model tests passed"


def known_comparison(project, model, version: ModelVersion | None, fingerprint: str,
                     reader) -> KnownComparison | None:
    """What ``compare`` would report when the recorded verdict still holds, else None."""
    from mlops_gitops.evaluate.versions import default_alias

    if not _ours(version, fingerprint):
        return None
    ref = f"{version.name}/{version.version}"
    policy_name = model.spec.spec.policy
    if policy_name is None:
        return KnownComparison((f"{ref}: no policy, no verdict",), None)
    tags = version.tags
    if tags.get(TAG_VERDICT) != VERDICT_BLESSED:
        return None
    policy = project.located("PromotionPolicy", policy_name).spec.spec
    alias = default_alias(project)
    if tags.get(TAG_ALIAS) != alias or tags.get(TAG_VERDICT_SPLIT) != tags[TAG_TRAIN_SPLIT]:
        return None
    current = reader.get_model(version.name)
    if current is None:
        return None
    champion = current.aliases.get(alias)
    if champion is not None and reader.get_version(version.name, champion) is None:
        return None  # compare reports the dangling alias as an error
    try:
        recorded = RecordedVerdict.from_tags(tags)
    except (TypeError, ValueError, AttributeError):
        return None
    if recorded.champion is None and tags.get(f"{TAG_VERDICT_PREFIX}champion") != "none":
        return None
    if stale_reason(recorded, policy_name, policy_digest(policy), champion):
        return None
    checks = tags.get(TAG_CHECKS)
    if not checks:
        return None
    against = f"champion {champion}" if champion is not None else "no champion"
    lines = [f"{ref}: blessed against {against} under '{policy_name}' ({checks})"]
    if champion is not None:
        interval = tags.get(TAG_VERDICT_INTERVAL)
        if not interval:
            return None
        lines.append(f"  {interval}")
    return KnownComparison(tuple(lines), True)
