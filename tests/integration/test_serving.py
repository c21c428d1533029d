"""Serving for real: train and apply on the session's mlflow server, build the bento, deploy it
with the local target (a real `bentoml serve` behind the proxy), and call it over HTTP.

One deployed repository for the module (the bento starts in seconds, training takes longer);
the tests run in file order and each leaves the service serving for the next.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from .conftest import cli, free_port, make_example_repo, run, use_server

pytestmark = pytest.mark.integration

IRIS = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def ok(result) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def set_port(repo: Path, env: str, port: int) -> None:
    path = repo / "environments" / f"{env}.yaml"
    text = path.read_text()
    start = text.index("port: ") + len("port: ")
    end = start + len(text[start:].split(",")[0].split("}")[0])
    path.write_text(text[:start] + str(port) + text[end:])


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, mlflow_server):
    """The example project trained, applied to dev and deployed there on a free port."""
    repo = make_example_repo(tmp_path_factory.mktemp("serving"))
    use_server(repo, mlflow_server, "serving")
    set_port(repo, "dev", free_port())
    run(repo, "git", "commit", "-qam", "free port for dev")
    ok(cli(repo, "run"))
    result = cli(repo, "deploy", "--env", "dev", "--format", "json")
    try:
        ok(result)
        yield repo, json.loads(result.stdout)
    finally:
        cli(repo, "undeploy", "--env", "dev")
        for env in ("test", "prod"):
            cli(repo, "undeploy", "--env", env)


def call(url: str, method: str, path: str, body=None, headers=None, raw: bytes | None = None):
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    connection.request(method, path, body=data, headers=headers or {})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    try:
        return response.status, json.loads(payload), response.headers
    except ValueError:
        return response.status, payload.decode(errors="replace"), response.headers


def record(repo: Path, env: str = "dev") -> dict:
    return json.loads((repo / ".mlops" / "services" / env / "deployment.json").read_text())


def test_deploy_serves_the_applied_versions_and_records_health(deployed, mlflow_server):
    repo, deployment = deployed
    assert deployment["outcome"] == "healthy" and deployment["target"] == "local"
    status, body, headers = call(deployment["url"], "POST", "/predict",
                                 {"model": "serving-iris-classifier", "instances": [IRIS]},
                                 {"X-Request-ID": "req-1"})
    assert status == 200, body
    assert body == {"model": "serving-iris-classifier", "version": "1",
                    "predictions": ["setosa"], "request_id": "req-1"}
    assert headers["x-request-id"] == "req-1"
    status, models, _ = call(deployment["url"], "GET", "/models")
    served = {m["name"]: m for m in models["models"]}
    assert set(served) == {"serving-iris-classifier", "serving-diabetes-regressor"}
    assert served["serving-iris-classifier"]["bento"] == deployment["bento_tag"]
    assert len(served["serving-iris-classifier"]["fingerprint"]) == 64
    assert served["serving-iris-classifier"]["data_md5"]
    # the health record the healthy_in gate reads
    status_rows = json.loads(cli(repo, "status", "--env", "dev", "--format", "json").stdout)
    assert {r["service"]["health"] for r in status_rows} == {"Healthy"}
    plan = cli(repo, "plan", "--env", "test")
    assert "blocked" not in plan.stdout, plan.stdout


def test_probabilities_invocations_and_metrics(deployed):
    url = deployed[1]["url"]
    status, body, _ = call(url, "POST", "/predict", {"model": "serving-iris-classifier",
                                                     "instances": [IRIS], "probabilities": True})
    assert status == 200 and abs(sum(body["probabilities"][0].values()) - 1) < 1e-9
    split = {"dataframe_split": {"columns": list(IRIS), "data": [list(IRIS.values())]}}
    status, body, _ = call(url, "POST", "/invocations?model=serving-iris-classifier", split)
    assert (status, body) == (200, {"predictions": ["setosa"]})
    status, text, _ = call(url, "GET", "/metrics")
    assert status == 200
    assert 'mlops_predictions_total{model="serving-iris-classifier",outcome="ok",version="1"}' \
        in text
    for probe in ("/readyz", "/livez"):
        assert call(url, "GET", probe)[0] == 200


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"model": "serving-iris-classifier", "instances": [{**IRIS, "petal_length": "x"}]}, 422,
     "instances[0].petal_length"),
    ({"model": "serving-iris-classifier", "instances": [{**IRIS, "colour": 1}]}, 422,
     "instances[0].colour"),
    ({"model": "serving-iris-classifier", "instances": [{"sepal_length": 1}]}, 422,
     "instances[0].sepal_width"),
    ({"model": "serving-iris-classifier", "instances": []}, 422, "instances"),
    ({"model": "no-such-model", "instances": [IRIS]}, 422, "model"),
    ({"instances": [IRIS]}, 422, "model"),
    (b"{not json", 400, ""),
    (b"x" * (1024 * 1024 + 10), 413, ""),
])
def test_bad_requests_get_a_4xx_naming_the_field(deployed, body, status, field):
    raw = body if isinstance(body, bytes) else None
    got, answer, _ = call(deployed[1]["url"], "POST", "/predict",
                          None if raw else body, raw=raw)
    assert got == status, answer
    assert answer["field"] == field and "Traceback" not in json.dumps(answer)
    assert answer["error"].startswith(field) if field else answer["error"]


def test_inference_log_keys_predictions_by_request_id(deployed):
    repo, deployment = deployed
    call(deployment["url"], "POST", "/predict", {"model": "serving-iris-classifier",
                                                 "instances": [IRIS, IRIS]},
         {"X-Request-ID": "logged-42"})
    folder = repo / ".mlops" / "inference" / "dev"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(line) for path in folder.glob("*.jsonl")
                 for line in path.read_text().splitlines()]
        found = [line for line in lines if line["request_id"] == "logged-42"]
        if found:
            break
        time.sleep(0.2)
    assert found, f"no log line in {sorted(folder.glob('*'))}"
    assert found[0]["model"] == "serving-iris-classifier" and found[0]["version"] == 1
    assert found[0]["inputs"] == [IRIS, IRIS] and found[0]["outputs"] == ["setosa", "setosa"]


def _send(url: str, frame, prefix: str, clients: int = 4) -> None:
    """One request of one instance per row, on keep-alive connections; all must answer 200."""
    host, port = url.removeprefix("http://").split(":")
    rows = frame[list(IRIS)].to_dict("records")
    failures = []

    def client(part: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        for i in range(part, len(rows), clients):
            body = json.dumps({"model": "serving-iris-classifier", "instances": [rows[i]]})
            connection.request("POST", "/predict", body=body,
                               headers={"X-Request-ID": f"{prefix}-{i}"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures.append(response.status)
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures[:5]


def _logged(repo: Path, prefix: str, expected: int) -> None:
    """Wait until the service's log thread has written every request of ``prefix``."""
    folder = repo / ".mlops" / "inference" / "dev"
    deadline, count = time.monotonic() + 30, 0
    while time.monotonic() < deadline:
        count = sum(line.count(f'"{prefix}-') for path in folder.glob("*.jsonl")
                    for line in path.read_text().splitlines())
        if count >= expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"{count} of {expected} {prefix} requests logged")


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + \
        f".{int(time.time() * 1000) % 1000:03d}Z"


def test_monitor_real_traffic_then_drift_proposes_retraining_once(deployed):
    """2,000 in-distribution requests: healthy (exit 0); 2,000 shifted ones: drift on the
    shifted columns only (exit 2) and a retraining proposal; a second run leaves the same
    branch as it is; degraded feedback labels update it (never a second branch)."""
    from mlops_gitops.examples import iris_frame

    repo, deployment = deployed
    iris = iris_frame()
    normal = iris.sample(2000, replace=True, random_state=7).reset_index(drop=True)
    since = _utc_now()
    _send(deployment["url"], normal, "normal")
    _logged(repo, "normal", 2000)
    healthy = cli(repo, "monitor", "--env", "dev", "--since", since, "--format", "json")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    report = json.loads(healthy.stdout)
    [iris_report] = [m for m in report["models"] if m["spec_name"] == "iris-classifier"]
    assert iris_report["verdict"] == "healthy" and iris_report["samples"] == 2000
    assert iris_report["drifted"] == []

    time.sleep(0.01)
    since = _utc_now()
    shifted = iris.sample(2000, replace=True, random_state=8).reset_index(drop=True)
    shifted["petal_length"] += 2
    shifted["petal_width"] += 2
    _send(deployment["url"], shifted, "shifted")
    _logged(repo, "shifted", 2000)
    drifted = cli(repo, "monitor", "--env", "dev", "--since", since, "--format", "json",
                  "--propose")
    assert drifted.returncode == 2, drifted.stdout + drifted.stderr
    report = json.loads(drifted.stdout)
    [iris_report] = [m for m in report["models"] if m["spec_name"] == "iris-classifier"]
    assert iris_report["verdict"] == "drift" and iris_report["samples"] == 2000
    assert {"petal_length", "petal_width"} <= set(iris_report["drifted"])
    assert not {"sepal_length", "sepal_width"} & set(iris_report["drifted"])
    assert "Traceback" not in drifted.stderr
    branch = "retrain/iris-classifier"
    assert f"branch {branch} created" in drifted.stderr, drifted.stderr
    [proposal] = report["proposals"]
    assert proposal["branch"] == branch and proposal["trigger"] == "drift"
    spec = run(repo, "git", "show", f"{branch}:specs/models/iris-classifier.yaml").stdout
    assert 'retrain: {generation: 1, trigger: "drift"' in spec and "petal_length" in spec
    body = (repo / ".mlops" / "retrain" / "iris-classifier.md").read_text()
    assert "| petal_length |" in body and "trained on data md5" in body and "v1 in `dev`" in body
    again = cli(repo, "monitor", "--env", "dev", "--since", since, "--propose")
    assert again.returncode == 2 and f"branch {branch} unchanged" in again.stdout, again.stdout
    assert run(repo, "git", "rev-list", "--count", f"main..{branch}").stdout.strip() == "1"
    assert run(repo, "git", "branch", "--list", "retrain/*").stdout.split() == [branch]

    # ground truth arrives: a third of it agrees with the model -> Degraded, exit 2, and the
    # same proposal updated (trigger quality), still one commit on main
    labels = repo.parent / "labels.csv"
    labels.write_text("request_id,label\n" + "".join(f"shifted-{i},setosa\n"
                                                      for i in range(2000)))
    degraded = cli(repo, "monitor", "feedback", "--env", "dev", str(labels), "--propose",
                   "--format", "json")
    assert degraded.returncode == 2, degraded.stdout + degraded.stderr
    feedback = json.loads(degraded.stdout)
    [quality] = [m for m in feedback["models"] if m["model"] == "serving-iris-classifier"]
    assert quality["verdict"] == "degraded" and quality["joined"] == 2000
    assert f"branch {branch} rebuilt" in degraded.stderr, degraded.stderr
    assert 'trigger: "quality"' in run(repo, "git", "show",
                                       f"{branch}:specs/models/iris-classifier.yaml").stdout
    assert run(repo, "git", "rev-list", "--count", f"main..{branch}").stdout.strip() == "1"
    shown = cli(repo, "status", "--env", "dev")
    assert "Degraded" in shown.stdout, shown.stdout


class Load:
    """Clients on keep-alive connections sending /predict until stopped; every answer counted."""

    def __init__(self, url: str, clients: int = 6):
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.statuses: dict[object, int] = {}
        self.versions: set[str] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(clients)]

    def client(self) -> None:
        body = json.dumps({"model": "serving-iris-classifier", "instances": [IRIS]})
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        while not self.stop.is_set():
            try:
                connection.request("POST", "/predict", body=body)
                response = connection.getresponse()
                answer = json.loads(response.read())
                key = response.status
                version = answer.get("version")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                key, version = type(exc).__name__, None
                connection.close()
                connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            with self.lock:
                self.statuses[key] = self.statuses.get(key, 0) + 1
                if version:
                    self.versions.add(version)
        connection.close()

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def test_redeploy_under_load_loses_no_request(deployed):
    repo, deployment = deployed
    model = repo / "specs" / "models" / "iris-classifier.yaml"
    model.write_text(model.read_text().replace("C: 1.0", "C: 0.5"))
    run(repo, "git", "commit", "-qam", "iris: C=0.5")
    ok(cli(repo, "train", "iris-classifier"))
    ok(cli(repo, "apply", "--env", "dev", "--auto-approve"))
    with Load(deployment["url"]) as load:
        time.sleep(1.0)
        result = cli(repo, "deploy", "--env", "dev", "--format", "json")
        time.sleep(1.0)
    ok(result)
    again = json.loads(result.stdout)
    assert again["bento_tag"] != deployment["bento_tag"] and again["outcome"] == "healthy"
    assert set(load.statuses) == {200}, load.statuses
    assert sum(load.statuses.values()) > 50
    assert load.versions == {"1", "2"}, load.versions
    assert record(repo)["generation"] == 2
    # a second deploy of the same bento is the same bento: nothing rebuilt
    status, body, _ = call(deployment["url"], "POST", "/predict",
                           {"model": "serving-iris-classifier", "instances": [IRIS]})
    assert body["version"] == "2"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_9_shows_degraded_then_missing_and_deploy_recovers(deployed):
    repo, deployment = deployed
    killed = record(repo)
    assert killed["worker_pids"]
    os.kill(killed["backend_pid"], signal.SIGKILL)  # the supervisor dies; its worker lives on
    time.sleep(0.5)
    shown = cli(repo, "status", "--env", "dev")
    assert shown.returncode == 1 and "Degraded" in shown.stdout, shown.stdout
    for worker in killed["worker_pids"]:
        os.kill(worker, signal.SIGKILL)
    time.sleep(0.5)
    status, body, _ = call(deployment["url"], "POST", "/predict",
                           {"model": "serving-iris-classifier", "instances": [IRIS]})
    assert status == 503 and "not running" in body["error"]
    os.kill(killed["proxy_pid"], signal.SIGKILL)
    time.sleep(0.5)
    rows = json.loads(cli(repo, "status", "--env", "dev", "--format", "json").stdout)
    assert {r["service"]["health"] for r in rows} == {"Missing"}
    ok(cli(repo, "deploy", "--env", "dev"))
    rows = json.loads(cli(repo, "status", "--env", "dev", "--format", "json").stdout)
    assert {r["service"]["health"] for r in rows} == {"Healthy"}
    assert call(deployment["url"], "GET", "/readyz")[0] == 200


def test_redeploy_stops_workers_a_dead_supervisor_left_behind(deployed):
    repo, deployment = deployed
    before = record(repo)
    os.kill(before["backend_pid"], signal.SIGKILL)
    time.sleep(0.5)
    assert all(alive(w) for w in before["worker_pids"])
    model = repo / "environments" / "dev.yaml"
    model.write_text(model.read_text().replace("workers: 1}", "workers: 1, max_batch_size: 32}"))
    ok(cli(repo, "deploy", "--env", "dev"))  # a new bento: the settings changed
    run(repo, "git", "checkout", "--", "environments")
    assert not any(alive(w) for w in before["worker_pids"])
    assert record(repo)["bento"] != before["bento"]
    assert call(deployment["url"], "GET", "/readyz")[0] == 200


def test_forged_record_never_signals_a_foreign_process(deployed):
    repo, deployment = deployed
    path = repo / ".mlops" / "services" / "dev" / "deployment.json"
    saved = path.read_text()
    forged = {**json.loads(saved), "backend_pid": os.getpid(), "proxy_pid": 1}
    path.write_text(json.dumps(forged))
    try:
        rows = json.loads(cli(repo, "status", "--env", "dev", "--format", "json").stdout)
        assert {r["service"]["health"] for r in rows} == {"Missing"}
    finally:
        path.write_text(saved)
    path.write_text("{half a record")
    try:
        rows = json.loads(cli(repo, "status", "--env", "dev", "--format", "json").stdout)
        assert {r["service"]["health"] for r in rows} == {"Missing"}
    finally:
        path.write_text(saved)
    assert call(deployment["url"], "GET", "/readyz")[0] == 200


def test_port_in_use_and_no_models_are_clear_errors_and_dev_keeps_serving(deployed):
    repo, deployment = deployed
    ok(cli(repo, "apply", "--env", "test", "--auto-approve"))  # healthy in dev -> eligible
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        set_port(repo, "test", squatter.getsockname()[1])
        result = cli(repo, "deploy", "--env", "test")
    assert result.returncode == 1 and "is in use by another program" in result.stderr
    assert "Traceback" not in result.stderr
    env = repo / "environments" / "test.yaml"
    text = env.read_text()
    start, end = text.index("  models:"), text.index("  service:")
    env.write_text(text[:start] + "  models: []\n" + text[end:])
    result = cli(repo, "deploy", "--env", "test")
    assert result.returncode == 1 and "serves no models" in result.stderr
    run(repo, "git", "checkout", "--", "environments")
    assert call(deployment["url"], "GET", "/readyz")[0] == 200


def test_kubernetes_target_without_kubectl(deployed, tmp_path):
    repo, _ = deployed
    out = tmp_path / "manifests"
    result = cli(repo, "deploy", "--env", "dev", "--target", "kubernetes", "--out", str(out))
    ok(result)
    assert {p.name for p in out.iterdir()} >= {"deployment.yaml", "service.yaml", "hpa.yaml",
                                                "kustomization.yaml"}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = shutil.which("git")
    (bin_dir / "git").symlink_to(python)
    env_path = os.environ["PATH"]
    os.environ["PATH"] = str(bin_dir)
    try:
        result = cli(repo, "deploy", "--env", "dev", "--target", "kubernetes", "--out",
                     str(out), "--apply")
    finally:
        os.environ["PATH"] = env_path
    assert result.returncode == 1 and "kubectl is not installed" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_runs_in_the_foreground_until_sigterm(deployed):
    import subprocess
    import sys

    from .conftest import clean_env, wait_http

    repo, _ = deployed
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "mlops_gitops", "serve", "--env", "dev",
                                "--port", str(port)], cwd=repo, env=clean_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", 120, process)
        workers = [p for p in Path("/proc").glob("[0-9]*")
                   if alive(int(p.name)) and str(process.pid) ==
                   (p / "stat").read_text().rsplit(")", 1)[1].split()[1]]
        status, body, _ = call(f"http://127.0.0.1:{port}", "POST", "/predict",
                               {"model": "serving-iris-classifier", "instances": [IRIS]})
        assert status == 200 and body["predictions"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert not any(alive(int(w.name)) for w in workers)
    busy = cli(repo, "serve", "--env", "dev", "--port", str(deployed[1]["url"].split(":")[-1]))
    assert busy.returncode == 1 and "in use" in busy.stderr


def test_a_version_the_registry_lost_is_refused_and_dev_keeps_serving(deployed, mlflow_server):
    from mlflow import MlflowClient

    repo, deployment = deployed
    before = record(repo)["bento"]
    # The registry URI too: in-process MLflow use by earlier tests leaves a global one behind.
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    client.delete_model_version("serving-iris-classifier", "2")
    result = cli(repo, "deploy", "--env", "dev")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "serving-iris-classifier" in result.stderr and "train" in result.stderr
    assert record(repo)["bento"] == before
    status, body, _ = call(deployment["url"], "POST", "/predict",
                           {"model": "serving-iris-classifier", "instances": [IRIS]})
    assert status == 200 and body["version"] == "2"  # baked into the running bento
