"""The ``local`` deploy target (the embedded default): the environment's bento served by a
background ``bentoml serve``, behind a small proxy that owns the environment's port.

Everything it runs is recorded under ``.mlops/services/ENV/``: ``deployment.json`` (what serves,
pids, ports, the last smoke test), ``backend.json`` (where the proxy routes), the logs. A
re-deploy starts the new bento on a free port, waits for ``/readyz``, smoke-tests it, switches
the proxy and only then stops the old backend, once its in-flight requests are answered: no
request is lost, and a bento that fails any step never takes traffic. The records may be stale
or edited: a pid is only signalled after its command line proves it is the process we started.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from mlops_gitops.deploy.target import (
    PROXY_CONTROL_PATH,
    RECORD_DEGRADED,
    RECORD_HEALTHY,
    Deployment,
    Progress,
    Release,
    ServiceHealth,
    SmokeTest,
)
from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.reconcile.status import DEGRADED, HEALTHY, MISSING, PROGRESSING
from mlops_gitops.spec.models import EnvironmentSpec
from mlops_gitops.tracking import STATE_DIR

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
HOST = "127.0.0.1"
INFERENCE_DIR = "inference"
WORKER_MODULE = "_bentoml_impl.worker.service"  # how bentoml serve starts its workers


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(env: str, message: str, hint: str = "", code: str = "deploy") -> DiagnosticError:
    return DiagnosticError([Diagnostic(f"environment {env}", code=code, message=message,
                                       hint=hint)])


def _write_json(path: Path, data: dict) -> None:
    """Atomically: a reader sees the old or the new record, never half of one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _cmdline(pid: int) -> list[str] | None:
    """The command line of a live process (None when it is gone or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return None
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except (OSError, IndexError):
        return None


def _is_ours(pid, *markers: str) -> bool:
    """Whether ``pid`` is alive and its command line holds every marker (a recorded pid may
    have been reused by another program since)."""
    if not isinstance(pid, int) or pid <= 1:
        return False
    line = _cmdline(pid)
    return line is not None and all(m in line for m in markers)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (bentoml's workers run in sessions of their own, so a
    process group does not reach them)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _stop(pids: list[int], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the processes (servers finish the requests they hold), then SIGKILL whatever is
    left after ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        alive = [pid for pid in pids if _cmdline(pid) is not None]
        if not alive:
            return
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for pid in alive:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
            if all(_cmdline(pid) is None for pid in alive):
                return
            time.sleep(0.1)


def _stop_group(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop a process and everything it started."""
    _stop([pid, *descendants(pid)], timeout)


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, ValueError):
        return 0, b""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host if host != "0.0.0.0" else HOST, port)) == 0


def _local_url(host: str, port) -> str:
    """Where this machine reaches a service listening on host:port."""
    return f"http://{HOST if host in ('0.0.0.0', '') else host}:{port}"


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


class LocalTarget:
    name = "local"

    def __init__(self, root: Path, bentoml_home: Path):
        self.root = root
        self.bentoml_home = bentoml_home

    # --- records ---------------------------------------------------------------------------

    def folder(self, env: str) -> Path:
        return self.root / STATE_DIR / "services" / env

    def record(self, env: str) -> dict | None:
        return _read_json(self.folder(env) / "deployment.json")

    def inference_dir(self, env: str) -> Path:
        return self.root / STATE_DIR / INFERENCE_DIR / env

    @contextlib.contextmanager
    def _lock(self, env: str, timeout: float):
        """One deploy of an environment at a time (a second waits, then refuses)."""
        folder = self.folder(env)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "deploy.lock", "a+") as handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        handle.seek(0)
                        holder = handle.read().strip() or "another process"
                        raise _error(env, f"another deploy of environment '{env}' is running "
                                     f"({holder})", "wait for it to finish, then deploy again",
                                     code="locked") from None
                    time.sleep(0.2)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {now_iso()}")
            handle.flush()
            try:
                yield
            finally:
                handle.seek(0)
                handle.truncate()

    # --- processes -------------------------------------------------------------------------

    def _proxy_alive(self, record: dict | None, port: int) -> bool:
        return bool(record) and record.get("port") == port and _is_ours(
            record.get("proxy_pid"), "mlops_gitops.deploy.proxy", str(port))

    def _backend_alive(self, record: dict | None) -> bool:
        return bool(record) and _is_ours(record.get("backend_pid"), "serve",
                                         str(record.get("bento")),
                                         str(record.get("backend_port")))

    def _backend_pids(self, record: dict | None) -> list[int]:
        """The recorded backend and its workers, as far as they provably still are ours (the
        workers outlive a killed arbiter: they are recorded at deploy time)."""
        if not record:
            return []
        pids = []
        if self._backend_alive(record):
            pids = [record["backend_pid"], *descendants(record["backend_pid"])]
        for worker in record.get("worker_pids") or []:
            if worker not in pids and _is_ours(worker, WORKER_MODULE, str(record.get("bento"))):
                pids.append(worker)
        return pids

    def _start_backend(self, release: Release, port: int, log: Path) -> subprocess.Popen:
        env = {**os.environ, "BENTOML_HOME": str(self.bentoml_home),
               "BENTOML_DO_NOT_TRACK": "true",
               "MLOPS_INFERENCE_LOG_DIR": str(self.inference_dir(release.env))}
        with open(log, "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "bentoml", "serve", release.bento_tag, "--host", HOST,
                 "--port", str(port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=self.root, start_new_session=True)

    def _wait_ready(self, url: str, process: subprocess.Popen, log: Path, env: str,
                    timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise _error(env, f"the new service exited ({process.returncode}) before it "
                             f"was ready; the previous deployment keeps serving. Log "
                             f"({log}):\n{_tail(log)}")
            if _get(url + "/readyz")[0] == 200:
                return
            time.sleep(0.25)
        raise _error(env, f"the new service was not ready within {timeout:.0f} s; the previous "
                     f"deployment keeps serving. Log ({log}):\n{_tail(log)}")

    def _start_proxy(self, env: str, host: str, port: int, timeout_s: float) -> int:
        folder = self.folder(env)
        log = folder / "proxy.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "mlops_gitops.deploy.proxy", "--host", host, "--port",
                 str(port), "--backend-file", str(folder / "backend.json"), "--timeout",
                 str(timeout_s)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        control = _local_url(host, port) + PROXY_CONTROL_PATH
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise _error(env, f"cannot listen on {host}:{port}:\n{_tail(log, 3)}",
                             "free the port, or change spec.service.port of the environment")
            if _get(control)[0] == 200:
                return process.pid
            time.sleep(0.1)
        _stop_group(process.pid)
        raise _error(env, f"the proxy did not start listening on {host}:{port}: {_tail(log, 3)}")

    def _switch(self, env: str, host: str, port: int, proxy_pid: int, generation: int) -> None:
        """Tell the running proxy to route to the new backend, and wait until it does."""
        os.kill(proxy_pid, signal.SIGHUP)
        control = _local_url(host, port) + PROXY_CONTROL_PATH
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status, body = _get(control)
            if status == 200 and json.loads(body).get("generation") == generation:
                return
            time.sleep(0.05)
        raise _error(env, "the proxy did not switch to the new service")

    def _drain(self, host: str, port: int, url: str, timeout: float) -> None:
        """Wait until the proxy has no request in flight to the old backend."""
        control = _local_url(host, port) + PROXY_CONTROL_PATH
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = _get(control)
            if status != 200 or not json.loads(body).get("in_flight", {}).get(url):
                return
            time.sleep(0.05)

    # --- the protocol ----------------------------------------------------------------------

    def deploy(self, release: Release, spec: EnvironmentSpec, smoke: SmokeTest,
               progress: Progress, host: str = HOST, lock_timeout: float = 600.0) -> Deployment:
        env, port = release.env, spec.service.port
        with self._lock(env, lock_timeout):
            folder = self.folder(env)
            previous = self.record(env)
            proxy_up = self._proxy_alive(previous, port)
            if not proxy_up and port_in_use(host, port):
                raise _error(env, f"port {port} is in use by another program",
                             f"free it, or change spec.service.port of environment '{env}'")
            generation = int((previous or {}).get("generation") or 0) + 1
            backend_port = free_port()
            log = folder / f"bento-{generation}.log"
            progress(f"starting {release.bento_tag} on {HOST}:{backend_port}")
            process = self._start_backend(release, backend_port, log)
            url = f"http://{HOST}:{backend_port}"
            try:
                self._wait_ready(url, process, log, env)
                progress("smoke test")
                result = smoke(url)
            except BaseException:
                _stop_group(process.pid)
                raise
            if not result.ok:
                _stop_group(process.pid)
                return Deployment(env, self.name, release.bento_tag, RECORD_DEGRADED,
                                  None, f"smoke test failed: {result.detail}; the previous "
                                  "deployment keeps serving", result.checks)
            _write_json(folder / "backend.json", {"url": url, "generation": generation,
                                                  "env": env})
            try:
                if proxy_up:
                    proxy_pid = previous["proxy_pid"]
                    self._switch(env, host, port, proxy_pid, generation)
                else:
                    proxy_pid = self._start_proxy(env, host, port, spec.service.timeout_s)
            except BaseException:
                if previous:  # route back to what served before
                    _write_json(folder / "backend.json", {
                        "url": f"http://{HOST}:{previous.get('backend_port')}",
                        "generation": previous.get("generation"), "env": env})
                _stop_group(process.pid)
                raise
            public = _local_url(host, port)
            record = {"env": env, "target": self.name, "bento": release.bento_tag,
                      "versions": {v.name: v.version for v in release.versions},
                      "commit": release.commit, "host": host, "port": port,
                      "proxy_pid": proxy_pid, "backend_pid": process.pid,
                      "backend_port": backend_port, "generation": generation,
                      "worker_pids": descendants(process.pid),
                      "deployed_at": now_iso(), "smoke": {"ok": True, "detail": result.detail},
                      "log": str(log)}
            _write_json(folder / "deployment.json", record)
            old = [pid for pid in self._backend_pids(previous) if pid != process.pid]
            if old:
                progress(f"stopping the previous service ({previous.get('bento')})")
                self._drain(host, port, f"http://{HOST}:{previous.get('backend_port')}",
                            spec.service.timeout_s + 5)
                _stop(old)
            return Deployment(env, self.name, release.bento_tag, RECORD_HEALTHY, public,
                              result.detail, result.checks)

    def health(self, env: str) -> ServiceHealth:
        record = self.record(env)
        if record is None:
            return ServiceHealth(env, self.name, MISSING, detail="not deployed")
        port = record.get("port")
        host = record.get("host") or HOST
        url = _local_url(host, port)
        base = {"bento_tag": record.get("bento"), "url": url,
                "deployed_at": record.get("deployed_at"),
                "versions": dict(record.get("versions") or {})}
        if not self._proxy_alive(record, port):
            return ServiceHealth(env, self.name, MISSING, **base,
                                 detail="the service's proxy is not running (run deploy)")
        if not self._backend_alive(record):
            return ServiceHealth(env, self.name, DEGRADED, **base,
                                 detail="the bento's process is not running (run deploy)")
        status, _ = _get(url + "/readyz")
        if status == 200:
            return ServiceHealth(env, self.name, HEALTHY, **base,
                                 detail=f"/readyz OK; smoke test: "
                                        f"{(record.get('smoke') or {}).get('detail', '?')}")
        if status == 503:
            return ServiceHealth(env, self.name, PROGRESSING, **base,
                                 detail="/readyz: not ready yet")
        return ServiceHealth(env, self.name, DEGRADED, **base,
                             detail=f"/readyz answered {status or 'nothing'}")

    def stop(self, env: str) -> bool:
        with self._lock(env, 60.0):
            record = self.record(env)
            if record is None:
                return False
            stopped = False
            if self._proxy_alive(record, record.get("port")):
                _stop_group(record["proxy_pid"])
                stopped = True
            backend = self._backend_pids(record)
            if backend:
                _stop(backend)
                stopped = True
            (self.folder(env) / "deployment.json").unlink(missing_ok=True)
            return stopped
