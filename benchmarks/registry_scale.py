"""Cost of `plan`, `status` and a no-op `apply` as a shared registry grows (issue 15 item 5,
issue 14 item 5).

A real `mlflow server` on PostgreSQL (a throw-away cluster, as the integration fixtures start it)
and on SQLite holds this project's 3 models (3 versions each) beside 1,000 and then 10,000
registered models of 20 other projects (3 versions, tags and an alias each, bulk-inserted into
the server's database). For each size: whole-process wall time (median of 3) and HTTP requests of
`plan --env dev`, `status --env dev` and a no-op `apply --env dev --auto-approve`; and the live
read alone, filtered on the server (this project's tag, ``name IN (...)``) against the whole
listing filtered on the client (what `read_live_state` did before).

    python benchmarks/registry_scale.py [--sizes 1000,10000] [--backends postgresql,sqlite]

Prints its figures; no targets are asserted.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ENV  # benchmarks/ is on sys.path (and puts the repository there)
from reconcile_speed import make_project

from tests.integration.conftest import Postgres, free_port, missing_postgres, start_mlflow, stop

OWN_MODELS = 3
OTHER_PROJECTS = 20
VERSIONS = 3
COUNTER = Path(__file__).with_name("_http_count.py")


def fill_own(uri: str, root: Path) -> None:
    """This project's models as training would leave them: 3 versions, the newest trained from
    the current spec (fingerprint), through the server's REST API."""
    from mlflow import MlflowClient

    from mlops_gitops.identity import owned_model_tags

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from mlops_gitops.spec.project import load_project
    from mlops_gitops.targets import training_target

    client = MlflowClient(uri, uri)
    project = load_project(root)
    for item in (i for i in project.loaded if i.kind == "Model"):
        fingerprint = training_target(project, item).fingerprint
        client.create_registered_model(item.name, tags=owned_model_tags(project.name, item.spec))
        for number, fp in enumerate(("old-a", "old-b", fingerprint), 1):
            client.create_model_version(item.name, f"s3://bench/{item.name}/{number}", tags={
                "mlops.managed": "true", "mlops.fingerprint": fp, "mlops.status": "ready"})


def fill_others(db_uri: str, start: int, stop_at: int) -> float:
    """Registered models ``start..stop_at-1`` of other projects, bulk-inserted (one
    transaction) into the server's database; returns the seconds it took."""
    from mlflow.store.model_registry.dbmodels.models import (
        SqlModelVersion,
        SqlModelVersionTag,
        SqlRegisteredModel,
        SqlRegisteredModelAlias,
        SqlRegisteredModelTag,
    )
    from sqlalchemy import create_engine, insert

    began = time.perf_counter()
    now = int(time.time() * 1000)
    models, model_tags, versions, version_tags, aliases = [], [], [], [], []
    for i in range(start, stop_at):
        team = f"team-{i % OTHER_PROJECTS:02d}"
        name = f"{team}-model-{i:05d}"
        models.append({"name": name, "creation_time": now, "last_updated_time": now,
                       "description": f"model {i} of {team}"})
        model_tags += [{"name": name, "key": "mlops.managed", "value": "true"},
                       {"name": name, "key": "mlops.project", "value": team},
                       {"name": name, "key": "mlops.owner", "value": team}]
        for v in range(1, VERSIONS + 1):
            versions.append({"name": name, "version": v, "creation_time": now,
                             "last_updated_time": now, "current_stage": "None",
                             "source": f"s3://bench/{name}/{v}", "status": "READY"})
            version_tags += [{"name": name, "version": v, "key": k, "value": val} for k, val in
                             (("mlops.managed", "true"), ("mlops.status", "ready"),
                              ("mlops.fingerprint", f"{i:05d}-{v}"))]
        aliases.append({"name": name, "alias": "prod", "version": VERSIONS})
    engine = create_engine(db_uri)
    with engine.begin() as connection:
        for table, rows in ((SqlRegisteredModel, models), (SqlRegisteredModelTag, model_tags),
                            (SqlModelVersion, versions), (SqlModelVersionTag, version_tags),
                            (SqlRegisteredModelAlias, aliases)):
            connection.execute(insert(table.__table__), rows)
    if engine.dialect.name == "postgresql":  # fresh statistics, as autovacuum would keep them
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    return time.perf_counter() - began


def command(root: Path, *args: str, runs: int = 3, ok: tuple[int, ...] = (0,)
            ) -> tuple[float, int]:
    """Median wall time of the whole process, and its HTTP requests."""
    times, count = [], 0
    counted = root / ".http-count"
    for _ in range(runs):
        began = time.perf_counter()
        result = subprocess.run([sys.executable, str(COUNTER), *args], cwd=root,
                                env={**ENV, "HTTP_COUNT_FILE": str(counted)},
                                capture_output=True, text=True)
        times.append(time.perf_counter() - began)
        if result.returncode not in ok:
            raise SystemExit(f"mlops-gitops {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        count = int(counted.read_text())
    return statistics.median(times), count


class _ListEverything:
    """The reader as before the server-side filter: no ``search_models``, the whole registry."""

    def __init__(self, reader):
        self.list_models, self.list_versions = reader.list_models, reader.list_versions


def live_read(uri: str, project: str, names: list[str]) -> dict[str, tuple[float, int, int]]:
    """The live read alone, in this process: seconds (median of 3), HTTP requests, models seen."""
    import urllib.request

    from mlops_gitops.reconcile.live import read_live_state
    from mlops_gitops.registry.rest import RestRegistryReader
    from mlops_gitops.tracking import Tracking

    calls = []
    real = urllib.request.urlopen

    def counting(request, *args, **kwargs):
        calls.append(1)
        return real(request, *args, **kwargs)

    urllib.request.urlopen = counting
    figures = {}
    try:
        for label, reader in (("filtered on the server", RestRegistryReader(Tracking(uri))),
                              ("whole listing, client-side filter",
                               _ListEverything(RestRegistryReader(Tracking(uri))))):
            times = []
            for _ in range(3):
                calls.clear()
                began = time.perf_counter()
                live = read_live_state(reader, project, names)
                times.append(time.perf_counter() - began)
            assert len(live.models) == len(names), live.models
            figures[label] = (statistics.median(times), len(calls), len(live.models))
    finally:
        urllib.request.urlopen = real
    return figures


def bench_backend(backend: str, sizes: list[int], tmp: Path) -> list[str]:
    lines = []
    pg = None
    server_dir = tmp / f"server-{backend}"
    server_dir.mkdir()
    if backend == "postgresql":
        pg = Postgres(free_port())
        pg.start()
        db_uri = pg.create_database("mlflow")
    else:
        db_uri = f"sqlite:///{server_dir / 'mlflow.db'}"
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    root = tmp / f"project-{backend}"
    make_project(root, OWN_MODELS, uri)
    server = start_mlflow(server_dir, port, db_uri if backend == "postgresql" else None)
    try:
        fill_own(uri, root)
        from mlops_gitops.spec.project import load_project

        project = load_project(root)
        names = [i.name for i in project.loaded if i.kind == "Model"]
        command(root, "apply", "--env", "dev", "--auto-approve", runs=1)  # synced from here
        filled = 0
        for size in sizes:
            seconds = fill_others(db_uri, filled, size)
            lines.append(f"[{backend}] {size:,} other models x {VERSIONS} versions "
                         f"(+{size - filled:,} bulk-inserted in {seconds:.1f} s), "
                         f"this project: {OWN_MODELS} models")
            filled = size
            for label, args, ok in (
                    ("plan --env dev", ("plan", "--env", "dev", "--detailed-exitcode"), (0,)),
                    ("status --env dev", ("status", "--env", "dev"), (0, 1)),
                    ("apply --env dev (no-op)", ("apply", "--env", "dev", "--auto-approve"),
                     (0,))):
                seconds, requests = command(root, *args, ok=ok)
                lines.append(f"  {label:26} {seconds:6.2f} s  {requests:4d} HTTP requests")
            for label, (seconds, requests, _) in live_read(uri, project.name, names).items():
                lines.append(f"  live read, {label:34} {seconds:6.3f} s  {requests:4d} HTTP "
                             "requests")
    finally:
        stop(server)
        if pg is not None:
            pg.stop()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--backends", default="postgresql,sqlite")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    report = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            if backend == "postgresql" and missing_postgres():
                report.append(f"[postgresql] skipped: {missing_postgres()}")
                continue
            report += bench_backend(backend, sizes, Path(tmp))
            print("\n".join(report), flush=True)
            report.clear()
    print("\n".join(report))


if __name__ == "__main__":
    os.environ.update(ENV)
    main()
