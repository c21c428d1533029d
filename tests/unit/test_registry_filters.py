"""The filter strings for MLflow's registry searches, and the fallback for unquotable values."""

from __future__ import annotations

from mlops_gitops.reconcile.live import read_live_state
from mlops_gitops.registry.filters import NAMES_PER_SEARCH, model_filters, name_filters
from mlops_gitops.registry.ports import RegisteredModel
from tests.fake_registry import FakeRegistry


def test_project_and_name_filters():
    assert model_filters("team-a", None) == ["tags.`mlops.project` = 'team-a'"]
    assert model_filters(None, ["a", "b"]) == ["name IN ('a', 'b')"]
    assert model_filters(None, []) == []
    names = [f"m{i}" for i in range(NAMES_PER_SEARCH + 1)]
    assert len(name_filters(names)) == 2  # chunks keep each GET short


def test_a_value_that_cannot_be_quoted_lists_everything_and_filters_here():
    assert model_filters("it's", None) == [None]
    assert model_filters(None, ["a", "b'c"]) == [None]
    assert name_filters(["x`y"]) is None


def test_live_state_asks_about_names_only_when_they_are_not_ours():
    fake = FakeRegistry()
    tags = {"mlops.managed": "true", "mlops.project": "p"}
    fake.models["p-a"] = RegisteredModel("p-a", tags=tags)
    fake.models["p-b"] = RegisteredModel("p-b", tags={**tags, "mlops.project": "q"})
    live = read_live_state(fake, "p", ["p-a"])
    assert fake.calls == ["search_models(project)", "search_versions"]
    fake.calls.clear()
    live = read_live_state(fake, "p", ["p-a", "p-b"])
    assert fake.calls == ["search_models(project)", "search_models(names)", "search_versions"]
    assert set(live.models) == {"p-a"} and live.foreign == {"p-b"}
