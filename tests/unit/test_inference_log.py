"""The inference log: every queued record lands as one JSON line, files rotate by size, a
read-only folder never raises into the service."""

from __future__ import annotations

import json

import numpy as np

from mlops_gitops.serving.runtime.inference_log import InferenceLog


def lines(folder):
    return [json.loads(line) for path in sorted(folder.glob("*.jsonl"))
            for line in path.read_text().splitlines()]


def test_records_are_written_as_json_lines(tmp_path):
    log = InferenceLog(tmp_path, "dev", 1.0, 10_000_000, interval_s=0.05)
    for i in range(100):
        log.record(f"r{i}", "iris", 3, [{"a": i}], np.array(["setosa"]))
    log.flush()
    found = lines(tmp_path)
    assert [r["request_id"] for r in found] == [f"r{i}" for i in range(100)]
    assert found[7]["inputs"] == [{"a": 7}] and found[7]["outputs"] == ["setosa"]
    assert found[0]["version"] == 3 and found[0]["time"].endswith("Z")
    assert log.dropped == 0


def test_files_rotate_at_the_size_limit(tmp_path):
    log = InferenceLog(tmp_path, "dev", 1.0, 2_000, interval_s=0.01)
    for i in range(60):
        log.record(f"r{i}", "iris", 1, [{"x": "y" * 40}], [1.0])
        if i % 10 == 9:
            log.flush()
    log.flush()
    files = sorted(tmp_path.glob("dev-*.jsonl"))
    assert len(files) > 2
    assert all(p.stat().st_size <= 2_000 for p in files[:-1])
    assert len(lines(tmp_path)) == 60


def test_sampling_keeps_about_the_rate(tmp_path):
    log = InferenceLog(tmp_path, "dev", 0.25, 10_000_000, interval_s=0.05)
    for i in range(4000):
        log.record(str(i), "m", 1, [], [])
    log.flush()
    assert 700 < len(lines(tmp_path)) < 1300


def test_an_unwritable_folder_drops_records_instead_of_failing(tmp_path):
    blocked = tmp_path / "inference"
    blocked.write_text("a file where the log folder should be")
    counted = []
    log = InferenceLog(blocked, "dev", 1.0, 1_000_000, interval_s=0.5, on_drop=counted.append)
    for i in range(5):
        log.record(f"r{i}", "m", 1, [], [])
    log.flush()
    assert log.dropped == 5 and sum(counted) == 5  # the whole batch, and the metric hears it
    assert log._thread.is_alive()


def test_records_queued_at_exit_are_written(tmp_path):
    import subprocess
    import sys

    script = ("import sys; from pathlib import Path; "
              "from mlops_gitops.serving.runtime.inference_log import InferenceLog; "
              "log = InferenceLog(Path(sys.argv[1]), 'dev', 1.0, 10**6, interval_s=60); "
              "[log.record(f'r{i}', 'm', 1, [], []) for i in range(3)]")
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=60)
    assert [r["request_id"] for r in lines(tmp_path)] == ["r0", "r1", "r2"]
