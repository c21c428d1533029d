"""The one way to open a project's registry, for reading or for writing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, overload

from mlops_gitops.registry.ports import RegistryReader
from mlops_gitops.tracking import check_reachable, check_sqlite_store, tracking_for

if TYPE_CHECKING:
    from mlops_gitops.registry.mlflow import MlflowRegistry
    from mlops_gitops.spec.project import Project

Mode = Literal["read", "write"]


@overload
def open_registry(project: Project, mode: Literal["read"]) -> RegistryReader: ...


@overload
def open_registry(project: Project, mode: Literal["write"]) -> MlflowRegistry: ...


def open_registry(project: Project, mode: Mode) -> RegistryReader | MlflowRegistry:
    """The project's registry, after checking that its server answers and that an embedded store
    is a usable SQLite file. ``read``: the cheapest reader (REST for a server, SQLite read
    directly for the embedded store, else MLflow), and the store must exist; ``write``: the MLflow
    adapter (versions, aliases, tags, lock, runs and artifacts), which creates the embedded store
    when there is none yet."""
    tracking = tracking_for(project)
    check_reachable(tracking)
    check_sqlite_store(tracking, must_exist=mode == "read")
    if mode == "read":
        from mlops_gitops.registry.rest import registry_reader

        return registry_reader(tracking)
    from mlops_gitops.registry.mlflow import MlflowRegistry

    return MlflowRegistry(tracking)
