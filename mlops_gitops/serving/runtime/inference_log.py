"""The inference log: one JSON line per logged request, written off the hot path.

A request only appends a small tuple to a deque; a daemon thread wakes a few times a second,
encodes what is queued and appends it in one write, rotating the file at a size limit. Each
worker process writes its own files (``<env>-<pid>-<start>-<n>.jsonl``), so lines of two
workers never interleave. A full queue drops the record and counts it rather than slowing
requests down.
"""

from __future__ import annotations

import atexit
import collections
import os
import random
import threading
import time
from pathlib import Path

import orjson

QUEUE_LIMIT = 100_000


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"


def _plain(value):
    """What orjson cannot encode by itself (numpy string arrays, numpy scalars)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(type(value).__name__)


class InferenceLog:
    def __init__(self, folder: Path, env: str, sample_rate: float, rotate_bytes: int,
                 interval_s: float = 0.2, on_drop=lambda count: None):
        self.folder = folder
        self.env = env
        self.sample_rate = sample_rate
        self.rotate_bytes = rotate_bytes
        self.interval_s = interval_s
        self.dropped = 0
        self.on_drop = on_drop  # e.g. a Prometheus counter's inc: dropped records are visible
        self._pending: collections.deque = collections.deque()
        self._prefix = f"{env}-{os.getpid()}-{int(time.time())}"
        self._index = 0
        self._file = None
        self._size = 0
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._write_forever, name="inference-log",
                                        daemon=True)
        self._thread.start()
        atexit.register(self.flush)  # a stopping worker (redeploy, undeploy) writes its queue

    def record(self, request_id: str, model: str, version: int, instances: list,
               predictions: list) -> None:
        """Queue one record: an append to a deque, nothing else on the request's path."""
        if self.sample_rate < 1.0 and random.random() >= self.sample_rate:
            return
        if len(self._pending) >= QUEUE_LIMIT:
            self._drop(1)
            return
        self._pending.append((time.time(), request_id, model, version, instances, predictions))

    def flush(self, timeout: float = 5.0) -> None:
        """Write what is queued now (tests and shutdown)."""
        self._wake.set()
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._index += 1
        path = self.folder / f"{self._prefix}-{self._index:04d}.jsonl"
        self._file = open(path, "ab")  # noqa: SIM115 - kept open across batches
        self._size = self._file.tell()

    def _write_forever(self) -> None:
        # Wake a few times a second and write everything queued in one go: one GIL hand-off
        # and one write per batch, not per request.
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            lines = []
            while self._pending:
                at, request_id, model, version, instances, predictions = self._pending.popleft()
                try:
                    lines.append(orjson.dumps({
                        "time": _iso(at), "request_id": request_id, "model": model,
                        "version": version, "inputs": instances, "outputs": predictions,
                    }, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY
                        | orjson.OPT_APPEND_NEWLINE))
                except (TypeError, ValueError):  # never let one odd value stop the writer
                    self._drop(1)
            if lines:
                self._write(b"".join(lines), len(lines))

    def _drop(self, count: int) -> None:
        self.dropped += count
        self.on_drop(count)

    def _write(self, data: bytes, records: int) -> None:
        """Append one batch, or drop it whole (counted): a failed write leaves no half line."""
        try:
            if self._file is None or self._size + len(data) > self.rotate_bytes:
                if self._file is not None:
                    self._file.close()
                self._open()
            self._file.write(data)
            self._file.flush()
            self._size += len(data)
        except OSError:  # a full or read-only disk must not stop serving
            self._drop(records)
            if self._file is not None:
                try:
                    self._file.truncate(self._size)  # cut what the failed write left behind
                    self._file.close()
                except OSError:
                    pass
            self._file = None
