"""What every deploy target offers (``deploy``, ``health``, ``stop``) and the values they pass.

A target puts a built bento somewhere and answers for it; the smoke test and the health record
are the same for every target, so a new target (BentoCloud, KServe) is one new module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol

from mlops_gitops.reconcile.diff import HEALTH_FAILED, HEALTH_PASSED
from mlops_gitops.reconcile.status import Health
from mlops_gitops.serving.bento import ServedVersion
from mlops_gitops.spec.models import EnvironmentSpec

# The outcome a deploy records on each served version (mlops.health.ENV).
RECORD_HEALTHY, RECORD_DEGRADED, RECORD_DEPLOYED = HEALTH_PASSED, HEALTH_FAILED, "deployed"

Progress = Callable[[str], None]

PROXY_CONTROL_PATH = "/__mlops__/proxy"  # the local target's proxy: where it routes, in flight


@dataclass(frozen=True)
class Release:
    """What a deploy puts on a target: one bento and the versions baked into it."""

    project: str
    env: str
    bento_tag: str
    versions: tuple[ServedVersion, ...]
    commit: str | None


@dataclass(frozen=True)
class SmokeResult:
    ok: bool
    detail: str
    checks: tuple[str, ...] = ()


SmokeTest = Callable[[str], SmokeResult]  # base URL of a ready service -> result


@dataclass(frozen=True)
class Deployment:
    """The outcome of ``deploy``: what serves now, and whether the smoke test passed."""

    env: str
    target: str
    bento_tag: str
    outcome: str  # healthy | degraded | deployed (no smoke test possible, e.g. manifests only)
    url: str | None
    detail: str = ""
    smoke: tuple[str, ...] = ()
    location: str | None = None  # where manifests were written

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ServiceHealth:
    """Live health of an environment's service (Argo CD's words)."""

    env: str
    target: str
    health: Health
    bento_tag: str | None = None
    url: str | None = None
    detail: str = ""
    deployed_at: str | None = None
    versions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class DeployTarget(Protocol):
    name: str

    def deploy(self, release: Release, spec: EnvironmentSpec, smoke: SmokeTest,
               progress: Progress) -> Deployment:
        """Put the release on the target. A failed smoke test leaves the previous deployment
        serving and returns outcome ``degraded``."""

    def health(self, env: str) -> ServiceHealth: ...

    def stop(self, env: str) -> bool:
        """Stop what deploy started; False when nothing was running."""
