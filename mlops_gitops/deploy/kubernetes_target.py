"""The ``kubernetes`` deploy target: the environment's manifests written to a folder, and with
``--apply`` applied by ``kubectl`` and followed until the rollout finishes.

No smoke test runs from here (the cluster's readiness probe on ``/readyz`` gates the rolling
update instead), so an applied rollout is recorded as ``deployed``, never ``healthy``: the
``healthy_in`` gates need a smoke test that passed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from mlops_gitops.deploy import kubernetes
from mlops_gitops.deploy.target import (
    RECORD_DEPLOYED,
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

RECORD = "release.json"
ROLLOUT_TIMEOUT_S = 600
WRITTEN = "written"  # manifests only: nothing was deployed, nothing is recorded on versions


class KubernetesTarget:
    name = "kubernetes"

    def __init__(self, root: Path, project: str):
        self.root = root
        self.project = project
        self.out: Path | None = None
        self.apply = False

    def configure(self, out: Path | None, apply: bool) -> None:
        self.out = out
        self.apply = apply

    def folder(self, env: str) -> Path:
        return self.out or self.root / STATE_DIR / "deploy" / env / "kubernetes"

    def deploy(self, release: Release, spec: EnvironmentSpec, smoke: SmokeTest,
               progress: Progress) -> Deployment:
        kube_release = kubernetes.KubernetesRelease(
            self.project, release.env, release.bento_tag,
            tuple((v.name, v.version) for v in release.versions), release.commit)
        docs = kubernetes.manifests(kube_release, spec)
        folder = self.folder(release.env)
        kubernetes.write_manifests(docs, folder)
        record = {"env": release.env, "bento": release.bento_tag, "name": kube_release.name,
                  "namespace": spec.deploy.kubernetes.namespace, "applied": False,
                  "versions": {v.name: v.version for v in release.versions}}
        outcome, detail = WRITTEN, (f"manifests written; build the image with 'bentoml "
                                    f"containerize {release.bento_tag}' and apply them with "
                                    f"'kubectl apply -k {folder}' (or deploy --apply)")
        if self.apply:
            progress(f"kubectl apply -k {folder}")
            kubernetes.kubectl_apply(folder)
            progress("waiting for the rollout")
            _kubectl(["rollout", "status", f"deployment/{kube_release.name}", "-n",
                      record["namespace"], f"--timeout={ROLLOUT_TIMEOUT_S}s"], folder)
            record["applied"] = True
            outcome, detail = RECORD_DEPLOYED, "rollout finished (readiness on /readyz)"
        (folder / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        return Deployment(release.env, self.name, release.bento_tag, outcome, None, detail,
                          location=str(folder))

    def health(self, env: str) -> ServiceHealth:
        try:
            record = json.loads((self.folder(env) / RECORD).read_text())
        except (OSError, ValueError):
            return ServiceHealth(env, self.name, MISSING, detail="not deployed")
        base = {"bento_tag": record.get("bento"), "versions": dict(record.get("versions", {}))}
        if not record.get("applied"):
            return ServiceHealth(env, self.name, MISSING, **base,
                                 detail="manifests written, not applied")
        if shutil.which("kubectl") is None:
            return ServiceHealth(env, self.name, PROGRESSING, **base,
                                 detail="kubectl is not installed: cannot read the rollout")
        try:
            out = _kubectl(["get", "deployment", str(record.get("name")), "-n",
                            str(record.get("namespace")), "-o", "json"], self.folder(env))
            status = json.loads(out).get("status", {})
        except (DiagnosticError, ValueError) as exc:
            return ServiceHealth(env, self.name, DEGRADED, **base, detail=str(exc)[:200])
        ready, wanted = status.get("readyReplicas", 0), status.get("replicas", 0)
        health = HEALTHY if wanted and ready >= wanted else PROGRESSING if ready else DEGRADED
        return ServiceHealth(env, self.name, health, **base,
                             detail=f"{ready}/{wanted} replicas ready")

    def stop(self, env: str) -> bool:
        folder = self.folder(env)
        try:
            record = json.loads((folder / RECORD).read_text())
        except (OSError, ValueError):
            return False
        if record.get("applied"):
            _kubectl(["delete", "-k", str(folder)], folder)
        (folder / RECORD).unlink(missing_ok=True)
        return True


def _kubectl(args: list[str], folder: Path) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise DiagnosticError([Diagnostic(str(folder), code="kubectl-missing",
                                          message="kubectl is not installed (not found on PATH)",
                                          hint="install kubectl and configure the cluster")])
    done = subprocess.run([kubectl, *args], capture_output=True, text=True,
                          timeout=ROLLOUT_TIMEOUT_S + 30, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise DiagnosticError([Diagnostic(str(folder), code="kubectl-failed",
                                          message=f"kubectl {args[0]} failed: "
                                                  f"{(done.stderr or done.stdout).strip()[:500]}")])
    return done.stdout
