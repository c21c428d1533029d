"""One registry for a whole ``run``: a fast reader for what is read, the MLflow adapter opened
once (only when something must be written or loaded), and each loaded model kept for the run.

The fast reader is the stdlib one for the tracking location (SQLite read directly, or REST for a
server; :func:`mlops_gitops.registry.rest.registry_reader`), so a run in which every step is a
no-op never imports MLflow.
"""

from __future__ import annotations

from typing import Any

from mlops_gitops.registry.ports import RegistryReader
from mlops_gitops.tracking import Tracking


class _ModelCache:
    """The MLflow adapter, with each version's loaded model kept (versions are immutable: the
    test and compare steps load the challenger once)."""

    def __init__(self, registry: Any) -> None:
        self._registry = registry
        self._models: dict[tuple[str, int], tuple[Any, int]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)

    def load_version_model(self, name: str, number: int) -> tuple[Any, int]:
        key = (name, int(number))
        if key not in self._models:
            self._models[key] = self._registry.load_version_model(name, number)
        return self._models[key]


class RunSession:
    def __init__(self, tracking: Tracking) -> None:
        self.tracking = tracking
        self._reader: RegistryReader | None = None
        self._registry: _ModelCache | None = None

    @property
    def reader(self) -> Any:
        """The cheapest reader (never writes): REST for a server, the SQLite file read directly,
        else (another store, or a SQLite schema not recognised) the MLflow adapter itself."""
        if self._reader is None:
            if self.tracking.is_http:
                from mlops_gitops.registry.rest import RestRegistryReader

                self._reader = RestRegistryReader(self.tracking)
            elif self.tracking.sqlite_path is not None:
                from mlops_gitops.registry.ports import LookupUnavailable
                from mlops_gitops.registry.sqlite import SqliteRegistryReader

                try:
                    self._reader = SqliteRegistryReader(self.tracking)
                except LookupUnavailable:
                    return self.registry()
            else:
                return self.registry()
        return self._reader

    def registry(self) -> Any:
        """The MLflow adapter (reads and writes), opened on first use and kept for the run."""
        if self._registry is None:
            from mlops_gitops.registry.mlflow import MlflowRegistry
            from mlops_gitops.tracking import check_reachable

            check_reachable(self.tracking)
            self._registry = _ModelCache(MlflowRegistry(self.tracking))
        return self._registry

    def factory(self, tracking: Tracking) -> Any:
        """A ``registry_factory`` for :func:`mlops_gitops.train.trainer.train_model`."""
        return self.registry()

    def close(self) -> None:
        close = getattr(self._reader, "close", None)
        if close is not None:
            close()
