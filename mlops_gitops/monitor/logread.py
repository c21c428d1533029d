"""Read an environment's inference log (``.mlops/inference/ENV/*.jsonl``) into one frame per served
model: one row per predicted instance, its input features and the prediction.

Lines that are not a JSON object of the expected shape are skipped and counted (``corrupted``);
lines of another version of a served model are counted and left out (``other_version``), as are
lines of a model the deployment does not serve. Files are read in batches and each batch is
turned into columns at once (orjson per line, pandas per batch), so a million lines stay well
under a few hundred MB.
"""

from __future__ import annotations

import gc
import itertools
import operator
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.monitor.columns import PREDICTION
from mlops_gitops.monitor.served import ServedModel

BATCH_BYTES = 32 * 1024 * 1024
PART_BYTES = 48 * 1024 * 1024  # a log this big or bigger is read in parts, in parallel
PARALLEL_BYTES = 64 * 1024 * 1024
MAX_WORKERS = 4
NAT = np.iinfo(np.int64).min  # pandas' NaT as int64 nanoseconds


@dataclass
class ModelRows:
    """The served version's logged rows, oldest first (after ``--since`` / ``--window``)."""

    model: ServedModel
    frame: pd.DataFrame  # feature columns + PREDICTION
    request_ids: np.ndarray
    index: np.ndarray  # the instance's position in its request
    times: np.ndarray  # datetime64[ns] (UTC)
    logged: int = 0  # rows of the served version before --since / --window
    other_version: int = 0  # lines of another version of this model
    other_versions: dict[str, int] = field(default_factory=dict)
    lacking: dict[str, int] = field(default_factory=dict)  # lines without feature NAME


@dataclass
class LogRead:
    folder: Path
    files: int
    lines: int
    corrupted: int
    unknown_model: int
    models: dict[str, ModelRows]


def _error(folder: Path, message: str, hint: str) -> DiagnosticError:
    return DiagnosticError([Diagnostic(str(folder), code="monitor", message=message, hint=hint)])


def log_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise _error(folder, "no inference log: the folder does not exist",
                     "deploy the environment and send it requests (the service writes one JSON "
                     "line per prediction there)")
    files = sorted(p for p in folder.glob("*.jsonl") if p.is_file())
    if not files or all(p.stat().st_size == 0 for p in files):
        raise _error(folder, "the inference log is empty: no *.jsonl file with a line",
                     "send the service some requests first, or check "
                     "spec.monitoring.inference_log.sample_rate is above 0")
    return files


class _Collector:
    """Rows of one served model, gathered per batch and turned into columns per batch. Times and
    request ids are kept once per line and repeated per row when a batch is closed."""

    def __init__(self, model: ServedModel, keep_ids: bool = True):
        self.model = model
        self.keep_ids = keep_ids
        names = [f.name for f in model.features]
        self.names = names
        self.numeric = all(f.type in ("float", "int") for f in model.features)
        if len(names) == 1:
            only = names[0]
            self.getter = lambda instance: (instance[only],)
        else:
            self.getter = operator.itemgetter(*names)
        self.rows: list = []
        self.outputs: list = []
        self.times: list = []  # per line
        self.rids: list = []  # per line
        self.counts: list = []  # rows per line
        self.chunks: list[tuple] = []
        self.other_version = 0
        self.other_versions: dict[str, int] = {}
        self.lacking: dict[str, int] = {}  # feature name -> lines of this version without it

    def add(self, obj: dict) -> bool:
        inputs, outputs, at = obj.get("inputs"), obj.get("outputs"), obj.get("time")
        if type(inputs) is not list or type(outputs) is not list or not inputs or \
                len(inputs) != len(outputs) or type(at) is not str:
            return False
        getter = self.getter
        try:
            if len(inputs) == 1:  # most requests: no list to build
                self.rows.append(getter(inputs[0]))
                self.outputs.append(outputs[0])
            else:
                rows = [getter(instance) for instance in inputs]
                self.rows += rows
                self.outputs += outputs
        except KeyError as exc:  # a line of this version without one of its features
            key = str(exc.args[0])[:80] if exc.args else "?"
            self.lacking[key] = self.lacking.get(key, 0) + 1
            return False
        except (TypeError, IndexError):
            return False
        self.times.append(at)
        if self.keep_ids:
            self.rids.append(obj.get("request_id"))
        self.counts.append(len(inputs))
        return True

    def close_batch(self) -> None:
        if not self.rows:
            return
        frame = None
        if self.numeric:  # one C conversion when every value is a number
            width = len(self.names)
            try:
                values = np.fromiter(itertools.chain.from_iterable(self.rows), dtype=float,
                                     count=len(self.rows) * width).reshape(-1, width)
            except (TypeError, ValueError):  # a None, a string: column by column below
                values = None
            if values is not None:
                frame = pd.DataFrame(values, columns=self.names, copy=False)
        if frame is None:
            frame = pd.DataFrame.from_records(self.rows, columns=self.names)
        frame[PREDICTION] = pd.Series(self.outputs, dtype=object) if any(
            isinstance(v, str) for v in self.outputs[:50]) else pd.Series(self.outputs)
        counts = np.asarray(self.counts, dtype=np.int64)
        parsed = pd.to_datetime(pd.Series(self.times, dtype=object), utc=True,
                                format="ISO8601", errors="coerce")
        times = pd.DatetimeIndex(parsed).as_unit("ns").tz_convert(None).asi8  # int64, NaT = min
        rids = np.asarray([r if type(r) is str else None for r in self.rids], dtype=object) \
            if self.keep_ids else \
            np.full(len(counts), None, dtype=object)
        starts = np.cumsum(counts) - counts
        index = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)
        self.chunks.append((frame, np.repeat(rids, counts), index, np.repeat(times, counts)))
        self.rows, self.outputs, self.times, self.rids, self.counts = [], [], [], [], []

    def result(self, since, window: int | None) -> tuple[ModelRows, int]:
        """The rows (oldest first) and the number of lines dropped for an unreadable time."""
        self.close_batch()
        names = self.names + [PREDICTION]
        if not self.chunks:
            empty = pd.DataFrame({n: pd.Series(dtype=float) for n in names})
            return ModelRows(self.model, empty, np.array([], dtype=object),
                             np.array([], dtype=np.int64),
                             np.array([], dtype="datetime64[ns]"), 0,
                             self.other_version, self.other_versions, self.lacking), 0
        frame = pd.concat([c[0] for c in self.chunks], ignore_index=True) \
            if len(self.chunks) > 1 else self.chunks[0][0]
        rids = np.concatenate([c[1] for c in self.chunks])
        index = np.concatenate([c[2] for c in self.chunks])
        stamps = np.concatenate([c[3] for c in self.chunks])
        self.chunks = []
        bad_time = stamps == NAT
        bad_lines = int(np.sum(bad_time & (index == 0)))
        if bad_lines or since is not None or window is not None:
            keep = ~bad_time
            if np.all(stamps[1:] >= stamps[:-1]):
                order = np.arange(len(stamps))
            else:
                order = np.argsort(stamps, kind="stable")
            order = order[keep[order]]
            logged = len(order)
            if since is not None:
                order = order[stamps[order] >= since.as_unit("ns").value]
            if window is not None:
                order = order[-window:] if window > 0 else order[:0]
        else:  # every row, in the order read (drift does not depend on it)
            order = None
            logged = len(stamps)
        if order is not None and (len(order) != len(frame) or
                                  not np.all(order[1:] > order[:-1])):
            frame = frame.iloc[order].reset_index(drop=True)
            rids, index, stamps = rids[order], index[order], stamps[order]
        return ModelRows(self.model, frame, rids, index, stamps.view("datetime64[ns]"), logged,
                         self.other_version, self.other_versions, self.lacking), bad_lines


def _read_part(path: Path, start: int, end: int, collectors: dict, versions: dict,
               counts: dict) -> None:
    """The lines of a log file that start in bytes [start, end), batch by batch: each line is
    parsed and its values taken at once, so the parsed objects are freed as it goes."""
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    lines = corrupted = unknown = 0
    with open(path, "rb") as handle:
        position = start
        if start > 0:  # the line that began before start belongs to the previous part
            handle.seek(start - 1)
            position = start - 1 + len(handle.readline())
        done = position >= end
        while not done:
            batch = handle.readlines(BATCH_BYTES)
            if not batch:
                break
            for line in batch:
                if position >= end:
                    done = True
                    break
                position += len(line)
                try:
                    obj = loads(line)
                except decode_error:
                    if line.strip():
                        lines += 1
                        corrupted += 1
                    continue
                lines += 1
                if type(obj) is not dict:
                    corrupted += 1
                    continue
                name = obj.get("model")
                if type(name) is not str:
                    corrupted += 1
                    continue
                collector = collectors.get(name)
                if collector is None:
                    unknown += 1
                    continue
                version = obj.get("version")
                if type(version) is not int or version != versions[name]:
                    if type(version) not in (int, str):  # 1.0 and true are no version numbers
                        corrupted += 1
                        continue
                    if str(version) != str(versions[name]):
                        collector.other_version += 1
                        key = str(version)
                        collector.other_versions[key] = collector.other_versions.get(key, 0) + 1
                        continue
                if not collector.add(obj):
                    corrupted += 1
            for collector in collectors.values():
                collector.close_batch()
    counts["lines"] += lines
    counts["corrupted"] += corrupted
    counts["unknown"] += unknown


def _read_parts(parts: list[tuple[Path, int, int]], models: list[ServedModel],
                keep_ids: bool = True) -> tuple:
    """Read some parts of the log (in this process or in a worker): per model its column chunks
    and its other-version counts, and the line counts."""
    collectors = {m.name: _Collector(m, keep_ids) for m in models}
    versions = {m.name: m.version for m in models}
    counts = {"lines": 0, "corrupted": 0, "unknown": 0}
    enabled = gc.isenabled()
    gc.disable()  # millions of short-lived containers: the cyclic collector only slows this down
    try:
        for path, start, end in parts:
            _read_part(path, start, end, collectors, versions, counts)
    finally:
        if enabled:
            gc.enable()
    return ({name: (c.chunks, c.other_version, c.other_versions, c.lacking)
             for name, c in collectors.items()}, counts)


def _parts(files: list[Path], part_bytes: int) -> list[tuple[Path, int, int]]:
    parts = []
    for path in files:
        size = path.stat().st_size
        parts += [(path, start, min(start + part_bytes, size))
                  for start in range(0, size, part_bytes)]
    return parts


def _workers(total_bytes: int) -> int:
    if total_bytes < PARALLEL_BYTES:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cpus or 1, MAX_WORKERS))


def read_log(folder: Path, models: list[ServedModel], window: int | None = None,
             since: pd.Timestamp | None = None, workers: int | None = None,
             part_bytes: int = PART_BYTES, keep_ids: bool = True) -> LogRead:
    """The log's rows per served model. ``window``: the last N predictions (rows) of each model;
    ``since``: only rows logged at or after this time (UTC); ``keep_ids``: keep each row's
    request id (the labels' join needs them, drift does not). A large log is read by a few worker
    processes (one per core, by byte ranges of its files), the parts joined in file order."""
    files = log_files(folder)
    parts = _parts(files, part_bytes)
    workers = workers or _workers(sum(end - start for _, start, end in parts))
    if workers > 1 and len(parts) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(workers, len(parts)), mp_context=context) as pool:
            # each part's chunks are kept with the part, so the join keeps the file order
            results = list(pool.map(_read_parts, [[p] for p in parts], [models] * len(parts),
                                    [keep_ids] * len(parts)))
    else:
        results = [_read_parts(parts, models, keep_ids)]
    collectors = {m.name: _Collector(m) for m in models}
    lines = corrupted = unknown = 0
    for per_model, counts in results:
        lines += counts["lines"]
        corrupted += counts["corrupted"]
        unknown += counts["unknown"]
        for name, (chunks, other, others, lacking) in per_model.items():
            collector = collectors[name]
            collector.chunks.extend(chunks)
            collector.other_version += other
            for key, n in others.items():
                collector.other_versions[key] = collector.other_versions.get(key, 0) + n
            for key, n in lacking.items():
                collector.lacking[key] = collector.lacking.get(key, 0) + n
    results = None
    rows_by_model = {}
    for name, collector in collectors.items():
        rows, bad = collector.result(since, window)
        corrupted += bad
        rows_by_model[name] = rows
    return LogRead(folder, len(files), lines, corrupted, unknown, rows_by_model)


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ].*)?")


def parse_time(text: str) -> pd.Timestamp:
    """A ``--since`` value: ISO 8601 (a date, or a date and time; UTC unless it says otherwise)."""
    stamp = None
    if ISO_DATE.fullmatch(text.strip()):
        try:
            stamp = pd.Timestamp(text.strip())
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
            stamp = stamp.as_unit("ns")  # the log's times are nanoseconds: 1677 to 2262
        except (ValueError, TypeError, OverflowError):  # OutOfBoundsDatetime is a ValueError
            stamp = None
    if stamp is None or stamp is pd.NaT:
        raise DiagnosticError([Diagnostic("<command line>", code="usage",
                                          message=f"--since: '{text[:80]}' is not an ISO 8601 "
                                                  "time between the years 1678 and 2261",
                                          hint="e.g. 2026-11-30 or 2026-11-30T08:00:00Z")])
    return stamp
