"""The live read filters on the server: only this project's models come back from a shared
`mlflow server` that holds other projects' models (SQLite and PostgreSQL backends)."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.conftest import BACKENDS, backend_server

pytestmark = pytest.mark.integration


@pytest.fixture(params=BACKENDS)
def mlflow_server(request) -> str:
    return backend_server(request)


@pytest.fixture
def shared(mlflow_server):
    """A registry shared with other projects: ours (2 managed models with versions), another
    project's, an untagged model, and a model that takes one of our names without being ours."""
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server, mlflow_server)
    tag = uuid.uuid4().hex[:8]
    ours, theirs = f"ours-{tag}", f"theirs-{tag}"
    managed = {"mlops.managed": "true"}
    made = {"ours": [f"{ours}-a", f"{ours}-b"], "theirs": [f"{theirs}-a", f"{theirs}-b"],
            "untagged": [f"free-{tag}"], "squatter": f"{ours}-c"}
    for name in made["ours"]:
        client.create_registered_model(name, tags={**managed, "mlops.project": ours})
    for name in made["theirs"]:
        client.create_registered_model(name, tags={**managed, "mlops.project": theirs})
    client.create_registered_model(made["untagged"][0])
    client.create_registered_model(made["squatter"], tags={**managed, "mlops.project": theirs})
    for name in [*made["ours"], *made["theirs"], made["squatter"]]:
        client.create_model_version(name, source=f"s3://bucket/{tag}/model",
                                    tags={"mlops.status": "ready"})
    client.create_model_version(made["ours"][0], source=f"s3://bucket/{tag}/model2")
    return mlflow_server, ours, made


def _readers(uri):
    from mlops_gitops.registry.mlflow import MlflowRegistry
    from mlops_gitops.registry.rest import RestRegistryReader
    from mlops_gitops.tracking import Tracking

    return [RestRegistryReader(Tracking(uri)), MlflowRegistry(Tracking(uri))]


def test_the_server_returns_only_this_projects_models(shared):
    from mlops_gitops.registry.filters import name_filters, project_filter
    from mlops_gitops.registry.rest import RestRegistryReader
    from mlops_gitops.tracking import Tracking

    uri, ours, made = shared
    rest = RestRegistryReader(Tracking(uri))
    # the filter strings themselves, as the server applies them (no client-side selection)
    raw = rest._pages("registered-models/search", "registered_models", 1000,
                      filter=project_filter(ours))
    assert sorted(m["name"] for m in raw) == made["ours"]
    raw = rest._pages("model-versions/search", "model_versions", 1000,
                      filter=name_filters(made["ours"])[0])
    assert sorted((v["name"], v["version"]) for v in raw) == [
        (made["ours"][0], "1"), (made["ours"][0], "2"), (made["ours"][1], "1")]
    for reader in _readers(uri):
        assert sorted(m.name for m in reader.search_models(project=ours)) == made["ours"]
        found = reader.search_models(names=[made["squatter"], made["untagged"][0], "nope"])
        assert sorted(m.name for m in found) == sorted([made["squatter"], made["untagged"][0]])
        assert {v.name for v in reader.search_versions([made["theirs"][0]])} == \
            {made["theirs"][0]}


def test_live_state_reads_only_this_project_and_the_names_it_asks_about(shared):
    from mlops_gitops.reconcile.live import read_live_state

    uri, ours, made = shared
    for reader in _readers(uri):
        live = read_live_state(reader, ours, [*made["ours"], made["squatter"], f"{ours}-new"])
        assert sorted(live.models) == made["ours"]
        assert {n: [v.version for v in vs] for n, vs in live.versions.items()} == {
            made["ours"][0]: [1, 2], made["ours"][1]: [1]}
        assert live.foreign == {made["squatter"]}  # taken: the plan blocks, never touches it
