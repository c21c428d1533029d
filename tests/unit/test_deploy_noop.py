"""`ci deploy` leaves a service running only under one exact condition: the same bento tag
serves there now, answers healthy, and every served version's recorded health in that
environment is healthy for that bento."""

from __future__ import annotations

import pytest

from mlops_gitops.deploy.release import already_serving
from mlops_gitops.deploy.target import ServiceHealth
from mlops_gitops.reconcile.status import DEGRADED, HEALTHY
from mlops_gitops.registry.ports import ModelVersion
from mlops_gitops.serving.bento import ServedVersion

TAG = "example-dev:abc123"
SERVED = (ServedVersion("iris-classifier", "iris-classifier", 1, "f" * 64, "run-1"),
          ServedVersion("diabetes-regressor", "diabetes-regressor", 3, "e" * 64, "run-3"))
RECORD = {"mlops.health.dev": "healthy", "mlops.health.dev.bento": TAG}


class Target:
    name = "local"

    def __init__(self, health: str = HEALTHY, bento: str | None = TAG):
        self._health = ServiceHealth("dev", "local", health, bento, "http://127.0.0.1:3001",
                                     "/readyz OK")

    def health(self, env):
        assert env == "dev"
        return self._health


class Reader:
    def __init__(self, tags: dict[tuple[str, int], dict[str, str]]):
        self.tags = tags

    def get_version(self, name, number):
        if (name, number) not in self.tags:
            return None
        return ModelVersion(name, number, tags=dict(self.tags[(name, number)]))


def healthy_reader(**changes) -> Reader:
    tags = {(v.name, v.version): dict(RECORD) for v in SERVED}
    for key, value in changes.items():
        tags[("diabetes-regressor", 3)][key.replace("_", ".")] = value
    return Reader(tags)


def test_the_same_healthy_bento_keeps_serving():
    health = already_serving(Target(), "dev", TAG, SERVED, healthy_reader())
    assert health is not None and health.url == "http://127.0.0.1:3001"


@pytest.mark.parametrize("target", [Target(DEGRADED), Target(bento="example-dev:other"),
                                    Target(bento=None), Target("Missing")])
def test_another_bento_or_an_unhealthy_service_is_deployed(target):
    assert already_serving(target, "dev", TAG, SERVED, healthy_reader()) is None


@pytest.mark.parametrize("changes", [{"mlops_health_dev": "degraded"},
                                     {"mlops_health_dev": "deployed"},
                                     {"mlops_health_dev_bento": "example-dev:older"}])
def test_a_recorded_health_that_is_not_healthy_for_this_bento_is_deployed(changes):
    assert already_serving(Target(), "dev", TAG, SERVED, healthy_reader(**changes)) is None


def test_a_served_version_without_a_record_is_deployed():
    reader = healthy_reader()
    del reader.tags[("iris-classifier", 1)]["mlops.health.dev"]
    assert already_serving(Target(), "dev", TAG, SERVED, reader) is None
    del reader.tags[("iris-classifier", 1)]
    assert already_serving(Target(), "dev", TAG, SERVED, reader) is None
