"""Serving speed: the environment's bento against `mlflow models serve` on the same model.

The example project is trained and applied to `dev` in a temporary folder; then, one server at a
time, wrk (Debian's package) sends POST requests from a separate process: 1 thread, 16
connections, 15 s, one row per request (and 64 rows per request). Servers, one worker each:

  mlflow        mlflow models serve -m models:/iris-classifier@dev --env-manager local
  bento         bentoml serve <bento>                (inference log off)
  bento+log     bentoml serve <bento>                (inference log on: its cost)
  deployed      mlops-gitops deploy: the bento behind the local target's proxy, log on

Prints requests/s, p50/p99 latency and errors per server, and the ratios the serving issue
targets (bento >= 2x mlflow's requests/s, <= 1/2 its p99). Needs `wrk` on PATH.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import BIN, ENV, MLOPS, copy_example, sh

DURATION_S = int(os.environ.get("BENCH_SECONDS", "15"))
CONNECTIONS = 16
IRIS = {"sepal_length": 5.9, "sepal_width": 3.0, "petal_length": 4.2, "petal_width": 1.5}
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"server for {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.25)
    raise SystemExit(f"{url} not ready within {seconds} s")


def stop(process: subprocess.Popen) -> None:
    """The server and its workers (bentoml's run in sessions of their own)."""
    from mlops_gitops.deploy.local import descendants

    workers = descendants(process.pid)
    for pid in (process.pid, *workers):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 15)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)


def wrk(url: str, body: dict, folder: Path) -> dict:
    script = folder / "post.lua"
    script.write_text(LUA.format(body=json.dumps(body)))
    warm = subprocess.run(["wrk", "-t1", "-c4", "-d2s", "-s", str(script), url],
                          capture_output=True, text=True)
    if warm.returncode != 0:
        raise SystemExit(warm.stderr)
    out = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def latency(percent: str) -> float:
        value, unit = re.search(rf"\s{percent}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {"rps": rps, "p50": latency("50"), "p99": latency("99"), "errors": errors}


def serve(cmd: list[str], env: dict, ready: str, cwd: Path) -> subprocess.Popen:
    log = open(cwd / f"server-{len(list(cwd.glob('server-*.log')))}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    wait_ready(ready, process)
    return process


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        project = copy_example(folder / "project")
        sh(project, MLOPS, "run")
        bento = json.loads(sh(project, MLOPS, "build", "--env", "dev", "--format",
                              "json").stdout)["bento"]
        home = project / ".mlops" / "bentoml"
        base_env = {**ENV, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
        one = {"model": "iris-classifier", "instances": [IRIS]}
        many = {"model": "iris-classifier", "instances": [IRIS] * 64}
        columns = list(IRIS)
        mlflow_one = {"dataframe_split": {"columns": columns, "data": [list(IRIS.values())]}}
        mlflow_many = {"dataframe_split": {"columns": columns,
                                           "data": [list(IRIS.values())] * 64}}
        results = {}

        port = free_port()
        mlflow_env = {**ENV, "PATH": f"{BIN}{os.pathsep}{ENV.get('PATH', '')}",  # uvicorn
                      "MLFLOW_TRACKING_URI": f"sqlite:///{project / '.mlops' / 'mlflow.db'}"}
        process = serve([str(BIN / "mlflow"), "models", "serve", "-m",
                         "models:/iris-classifier@dev", "--env-manager", "local", "--host",
                         "127.0.0.1", "--port", str(port), "--workers", "1"],
                        mlflow_env, f"http://127.0.0.1:{port}/ping", folder)
        try:
            results["mlflow"] = wrk(f"http://127.0.0.1:{port}/invocations", mlflow_one, folder)
            results["mlflow 64 rows"] = wrk(f"http://127.0.0.1:{port}/invocations",
                                            mlflow_many, folder)
        finally:
            stop(process)

        for name, log_dir in (("bento", None), ("bento+log", folder / "inference")):
            port = free_port()
            env = {**base_env, **({"MLOPS_INFERENCE_LOG_DIR": str(log_dir)} if log_dir else {})}
            process = serve([sys.executable, "-m", "bentoml", "serve", bento, "--host",
                             "127.0.0.1", "--port", str(port)], env,
                            f"http://127.0.0.1:{port}/readyz", folder)
            try:
                results[name] = wrk(f"http://127.0.0.1:{port}/predict", one, folder)
                results[f"{name} 64 rows"] = wrk(f"http://127.0.0.1:{port}/predict", many,
                                                 folder)
            finally:
                stop(process)

        port = free_port()
        spec = project / "environments" / "dev.yaml"
        spec.write_text(spec.read_text().replace("port: 3001", f"port: {port}"))
        sh(project, MLOPS, "deploy", "--env", "dev")
        try:
            results["deployed"] = wrk(f"http://127.0.0.1:{port}/predict", one, folder)
        finally:
            sh(project, MLOPS, "undeploy", "--env", "dev")

    print(f"iris model, {CONNECTIONS} connections, {DURATION_S} s, wrk from another process, "
          "one worker per server")
    print(f"{'server':<20} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in results.items():
        print(f"{name:<20} {r['rps']:>11.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} "
              f"{r['errors']:>7}")
    base, ours = results["mlflow"], results["bento+log"]
    print(f"bento (log on) vs mlflow: {ours['rps'] / base['rps']:.2f}x requests/s (target >= 2), "
          f"p99 {ours['p99'] / base['p99']:.2f}x (target <= 0.5)")
    log_cost = 1 - results["bento+log"]["rps"] / results["bento"]["rps"]
    print(f"inference log cost: {log_cost:+.1%} requests/s")


if __name__ == "__main__":
    main()
