"""The inference log: one JSON line per logged request, written off the hot path.

A request only puts a small tuple on a queue; a daemon thread encodes and appends the lines, and
rotates the file at a size limit. Each worker process writes its own files
(``<env>-<pid>-<start>-<n>.jsonl``), so lines of two workers never interleave. A full queue drops
the record and counts it rather than slowing requests down.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from pathlib import Path

import orjson

QUEUE_LIMIT = 100_000


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"


class InferenceLog:
    def __init__(self, folder: Path, env: str, sample_rate: float, rotate_bytes: int):
        self.folder = folder
        self.env = env
        self.sample_rate = sample_rate
        self.rotate_bytes = rotate_bytes
        self.dropped = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0
        self._prefix = f"{env}-{os.getpid()}-{int(time.time())}"
        self._index = 0
        self._file = None
        self._size = 0
        self._thread = threading.Thread(target=self._write_forever, name="inference-log",
                                        daemon=True)
        self._thread.start()

    def record(self, request_id: str, model: str, version: int, instances: list,
               predictions: list) -> None:
        if self.sample_rate < 1.0 and random.random() >= self.sample_rate:
            return
        if self._pending >= QUEUE_LIMIT:
            self.dropped += 1
            return
        self._pending += 1
        self._queue.put((time.time(), request_id, model, version, instances, predictions))

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued record is on disk (tests and shutdown)."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def _open(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        self._index += 1
        path = self.folder / f"{self._prefix}-{self._index:04d}.jsonl"
        self._file = open(path, "ab")  # noqa: SIM115 - kept open across records
        self._size = self._file.tell()

    def _write_forever(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, threading.Event):
                if self._file is not None:
                    self._file.flush()
                item.set()
                continue
            self._pending -= 1
            at, request_id, model, version, instances, predictions = item
            line = orjson.dumps({
                "time": _iso(at),
                "request_id": request_id, "model": model, "version": version,
                "inputs": instances, "outputs": predictions,
            }, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
            try:
                if self._file is None or self._size + len(line) > self.rotate_bytes:
                    if self._file is not None:
                        self._file.close()
                    self._open()
                self._file.write(line)
                self._size += len(line)
                if self._queue.empty():
                    self._file.flush()
            except OSError:
                self.dropped += 1  # a full or read-only disk must not stop serving
                self._file = None
