"""``deploy`` / ``undeploy`` / service health of an environment: build the bento, put it on the
environment's target, smoke-test it there, and record the outcome on each served version.

The health record (version tags ``mlops.health.ENV``, ``.at``, ``.bento``, ``.commit``) is what
the ``healthy_in: ENV`` gate reads: it stays with the version, so a version that once passed in
``test`` stays eligible for ``prod`` after ``test`` has moved on (rollback by ``git revert``).
"""

from __future__ import annotations

from mlops_gitops.deploy.local import LocalTarget, now_iso
from mlops_gitops.deploy.target import (
    RECORD_DEGRADED,
    RECORD_DEPLOYED,
    RECORD_HEALTHY,
    Deployment,
    DeployTarget,
    Progress,
    Release,
    ServiceHealth,
)
from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.reconcile.desired import environment
from mlops_gitops.reconcile.diff import health_tag
from mlops_gitops.reconcile.status import HEALTHY
from mlops_gitops.serving.bento import ServedVersion, bentoml_home, build, read_manifest
from mlops_gitops.spec.project import Project

RECORDED = (RECORD_HEALTHY, RECORD_DEGRADED, RECORD_DEPLOYED)
UNCHANGED = "unchanged"  # the same bento already serves, healthy: nothing was restarted


def health_tags(env: str, outcome: str, bento: str, commit: str | None) -> dict[str, str]:
    prefix = health_tag(env)
    return {prefix: outcome, f"{prefix}.at": now_iso(), f"{prefix}.bento": bento,
            f"{prefix}.commit": commit or ""}


def record_health(registry, env: str, versions: tuple[ServedVersion, ...], outcome: str,
                  bento: str, commit: str | None) -> None:
    for version in versions:
        registry.set_version_tags(version.name, version.version,
                                  health_tags(env, outcome, bento, commit))


def target_for(project: Project, env: str, name: str | None = None) -> DeployTarget:
    spec = environment(project, env).spec.spec
    chosen = name or spec.deploy.target
    if chosen == "local":
        return LocalTarget(project.root, bentoml_home(project.root))
    if chosen == "kubernetes":
        from mlops_gitops.deploy.kubernetes_target import KubernetesTarget

        return KubernetesTarget(project.root, project.name)
    raise DiagnosticError([Diagnostic("<command line>", code="usage",
                                      message=f"unknown deploy target '{chosen}'",
                                      hint="targets: local, kubernetes")])


def deploy_environment(project: Project, env: str, reader_factory, writer_factory,
                       commit: str | None, target: DeployTarget,
                       progress: Progress = lambda message: None, require_alias: bool = True,
                       record: bool = True, keep_serving: bool = False
                       ) -> tuple[Deployment, tuple[ServedVersion, ...]]:
    """Build (or reuse) the environment's bento, deploy it and record the outcome (unless
    ``record`` is off: the caller records it after applying its plan). With ``keep_serving``,
    a bento that is already serving there (:func:`already_serving`) is left running: the
    outcome is ``unchanged`` and nothing is restarted or recorded.

    ``reader_factory()`` gives a registry reader, ``writer_factory()`` the MLflow adapter
    (opened only when a model must be imported or a record written).
    """
    from mlops_gitops.deploy.smoke import run_smoke, smoke_requests

    spec = environment(project, env).spec.spec
    reader = reader_factory()
    built = build(project, env, reader, writer_factory, commit, progress, require_alias)
    if keep_serving:
        serving = already_serving(target, env, built.bento_tag, built.models, reader)
        if serving is not None:
            progress(f"{built.bento_tag} already serves, healthy: nothing to restart")
            return Deployment(env, target.name, built.bento_tag, UNCHANGED, serving.url,
                              f"already serving, healthy ({serving.detail})"), built.models
    home = bentoml_home(project.root)
    manifest = read_manifest(home, built.bento_tag)
    bodies = smoke_requests(project, manifest)
    release = Release(project.name, env, built.bento_tag, built.models, commit)
    deployment = target.deploy(release, spec, lambda url: run_smoke(url, manifest, bodies),
                               progress)
    if record and deployment.outcome in RECORDED:
        progress(f"recording '{deployment.outcome}' on the served versions")
        record_health(writer_factory(), env, built.models, deployment.outcome,
                      built.bento_tag, commit)
    return deployment, built.models


def already_serving(target: DeployTarget, env: str, bento_tag: str,
                    versions: tuple[ServedVersion, ...], reader) -> ServiceHealth | None:
    """The target's health when exactly this bento serves there now, answers healthy, and every
    served version's recorded health in ``env`` is healthy for this bento; else None."""
    health = target.health(env)
    if health.health != HEALTHY or health.bento_tag != bento_tag:
        return None
    prefix = health_tag(env)
    for served in versions:
        found = reader.get_version(served.name, served.version)
        tags = found.tags if found is not None else {}
        if tags.get(prefix) != RECORD_HEALTHY or tags.get(f"{prefix}.bento") != bento_tag:
            return None
    return health


def failed(deployment: Deployment) -> bool:
    return deployment.outcome == RECORD_DEGRADED


def service_health(project: Project, env: str) -> ServiceHealth:
    return target_for(project, env).health(env)


def undeploy(project: Project, env: str) -> bool:
    return target_for(project, env).stop(env)

