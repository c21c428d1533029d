"""The audit trail stays bounded (issue 13, item 6): older records roll into an archive, and
``history`` shows every record exactly once, also after a crash between the roll's steps."""

from __future__ import annotations

import json

import pytest

from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.identity import TAG_MANAGED, TAG_PROJECT
from mlops_gitops.reconcile.apply import AUDIT_PREFIX, roll_audit
from mlops_gitops.reconcile.audit_roll import KEEP_TAGS, ROLL_AT, decode, roll
from mlops_gitops.reconcile.history import history
from mlops_gitops.reconcile.live import read_live_state
from tests.fake_registry import FakeRegistry

PROJECT, MODEL, ENV = "proj", "iris", "prod"


class Crash(Exception):
    pass


def _registry(records: int, env: str = ENV) -> FakeRegistry:
    fake = FakeRegistry()
    fake.add_version(MODEL, 1, "fp1")
    tags = {TAG_MANAGED: "true", TAG_PROJECT: PROJECT}
    for i in range(records):
        clock = f"{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}"
        key = f"{AUDIT_PREFIX}{env}.20261130T{clock}.000000Z.000"
        tags[key] = json.dumps({"env": env, "key": f"{MODEL}@{env}", "action": "update",
                                "before": {"version": i}, "after": {"version": i + 1},
                                "reason": f"change {i}", "by": "ci", "commit": f"c{i}",
                                "at": f"t{i}", "status": "applied"})
    fake.models[MODEL] = fake.models[MODEL].__class__(MODEL, "", tags)
    return fake


def _audit_tags(fake: FakeRegistry, env: str = ENV) -> list[str]:
    return sorted(k for k in fake.models[MODEL].tags if k.startswith(f"{AUDIT_PREFIX}{env}."))


def _shown(fake: FakeRegistry, env: str = ENV) -> list[str]:
    return [r.reason for r in history(read_live_state(fake, PROJECT), env, archive=fake)]


def _expected(n: int) -> list[str]:
    return [f"change {i}" for i in range(n)]


def test_nothing_rolls_up_to_the_threshold():
    fake = _registry(ROLL_AT)
    assert roll(fake, MODEL, ENV, fake.models[MODEL].tags) == 0
    assert len(_audit_tags(fake)) == ROLL_AT and fake.audit_archive == {}


def test_roll_keeps_the_newest_and_archives_the_rest():
    fake = _registry(ROLL_AT + 7)
    rolled = roll(fake, MODEL, ENV, fake.models[MODEL].tags)
    assert rolled == ROLL_AT + 7 - KEEP_TAGS
    assert len(_audit_tags(fake)) == KEEP_TAGS
    [chunk] = fake.audit_archive[(MODEL, ENV)].values()
    assert len(decode(chunk)) == rolled
    assert _shown(fake) == _expected(ROLL_AT + 7)  # every record once, oldest first


def test_other_environments_are_left_alone():
    fake = _registry(ROLL_AT + 1)
    extra = _registry(5, env="dev").models[MODEL].tags
    tags = {**fake.models[MODEL].tags, **{k: v for k, v in extra.items() if ".dev." in k}}
    fake.models[MODEL] = fake.models[MODEL].__class__(MODEL, "", tags)
    roll(fake, MODEL, ENV, fake.models[MODEL].tags)
    assert len(_audit_tags(fake, "dev")) == 5
    assert _shown(fake, "dev") == _expected(5)


def test_crash_after_archiving_shows_every_record_once_and_the_next_roll_finishes():
    fake = _registry(ROLL_AT + 10)

    def crash():
        raise Crash

    with pytest.raises(Crash):
        roll(fake, MODEL, ENV, fake.models[MODEL].tags, between=crash)
    assert len(_audit_tags(fake)) == ROLL_AT + 10  # tags still there, and archived too
    assert _shown(fake) == _expected(ROLL_AT + 10)

    assert roll(fake, MODEL, ENV, fake.models[MODEL].tags) == ROLL_AT + 10 - KEEP_TAGS
    assert len(_audit_tags(fake)) == KEEP_TAGS
    assert _shown(fake) == _expected(ROLL_AT + 10)


def test_crash_midway_through_deleting_tags():
    fake = _registry(ROLL_AT + 10)
    fake.fail_after_writes = fake.writes + 1 + 17  # the archive, then 17 of the tag deletions
    with pytest.raises(DiagnosticError):
        roll(fake, MODEL, ENV, fake.models[MODEL].tags)
    assert len(_audit_tags(fake)) == ROLL_AT + 10 - 17
    assert _shown(fake) == _expected(ROLL_AT + 10)

    # already under the threshold: bounded, and the next roll (when over it) takes the rest
    fake.fail_after_writes = None
    assert roll(fake, MODEL, ENV, fake.models[MODEL].tags) == 0
    assert _shown(fake) == _expected(ROLL_AT + 10)
    assert roll(fake, MODEL, ENV, fake.models[MODEL].tags, roll_at=KEEP_TAGS) > 0
    assert len(_audit_tags(fake)) == KEEP_TAGS
    assert _shown(fake) == _expected(ROLL_AT + 10)


def test_crash_before_archiving_changes_nothing():
    fake = _registry(ROLL_AT + 10)
    fake.fail_after_writes = fake.writes  # the archive write fails
    with pytest.raises(DiagnosticError):
        roll(fake, MODEL, ENV, fake.models[MODEL].tags)
    assert len(_audit_tags(fake)) == ROLL_AT + 10 and fake.audit_archive == {}
    assert _shown(fake) == _expected(ROLL_AT + 10)


def test_repeated_rolls_stay_bounded_and_complete():
    fake = _registry(0)
    total = 0
    for _ in range(5):
        more = _registry(total + 60).models[MODEL].tags
        fake.models[MODEL] = fake.models[MODEL].__class__(
            MODEL, "", {**fake.models[MODEL].tags,
                        **{k: v for k, v in more.items() if k not in fake.models[MODEL].tags
                           and k.startswith(AUDIT_PREFIX)
                           and json.loads(v)["reason"] not in _shown(fake)}})
        total += 60
        roll(fake, MODEL, ENV, fake.models[MODEL].tags)
        assert len(_audit_tags(fake)) <= ROLL_AT
        assert _shown(fake) == _expected(total)


def test_a_failing_roll_never_fails_the_apply():
    fake = _registry(ROLL_AT + 3)
    fake.fail_after_writes = fake.writes
    said: list[str] = []
    assert roll_audit(fake, ENV, [MODEL], said.append) == 0
    assert "not rolled (the next apply will)" in said[0]
    fake.fail_after_writes = None
    assert roll_audit(fake, ENV, [MODEL], said.append) == ROLL_AT + 3 - KEEP_TAGS
    assert _shown(fake) == _expected(ROLL_AT + 3)


def test_a_damaged_archive_line_is_shown_not_dropped():
    fake = _registry(ROLL_AT + 1)
    roll(fake, MODEL, ENV, fake.models[MODEL].tags)
    chunks = fake.audit_archive[(MODEL, ENV)]
    name = next(iter(chunks))
    chunks[name] += "{not json\n"
    shown = _shown(fake)
    assert len(shown) == ROLL_AT + 2
    assert any("unreadable audit record" in reason for reason in shown)
