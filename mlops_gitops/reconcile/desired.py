"""Desired state of one environment, computed from the specs of the checked-out branch alone."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError, did_you_mean
from mlops_gitops.identity import owned_model_tags
from mlops_gitops.spec.loader import LoadedSpec
from mlops_gitops.spec.models import Environment, Gate
from mlops_gitops.spec.project import Project
from mlops_gitops.verdict import policy_digest


@dataclass(frozen=True)
class DesiredModel:
    name: str  # registered model name
    spec_name: str
    description: str
    tags: dict[str, str]  # the tags mlops-gitops owns on the registered model
    fingerprint: str
    served: bool  # listed by the environment
    pinned: int | None = None
    pin_source: Diagnostic | None = None  # where the pin is written, for "no such version"
    gate: Gate | None = None
    policy: str | None = None
    policy_digest: str | None = None  # a verdict judged under another policy spec is stale
    champion_alias: str | None = None  # the alias that names the champion (the last env)


@dataclass(frozen=True)
class DesiredState:
    env: str
    project: str
    models: tuple[DesiredModel, ...] = field(default_factory=tuple)


def environment(project: Project, env: str) -> LoadedSpec[Environment]:
    environments = {i.name: i for i in project.loaded if i.kind == "Environment"}
    if env not in environments:
        raise DiagnosticError([Diagnostic(
            "<command line>", code="usage", message=f"unknown environment '{env}'",
            hint=did_you_mean(env, environments) or
            f"environments: {', '.join(sorted(environments)) or 'none defined'}")])
    return environments[env]


def desired_state(project: Project, env: str) -> DesiredState:
    from mlops_gitops.targets import training_target

    env_item = environment(project, env)
    served = {m.name: (i, m) for i, m in enumerate(env_item.spec.spec.models)}
    promotes_from = env_item.spec.spec.promotes_from
    order = project.promotion_order()
    policies = project.policies
    md5s: dict[str, str] = {}
    models = []
    for item in (i for i in project.loaded if i.kind == "Model"):
        target = training_target(project, item, md5s)
        policy_name = item.spec.spec.policy
        gate = None
        if policy_name is not None:
            gate = policies[policy_name].spec.gates.get(env)
        if gate is None and promotes_from is not None:
            gate = Gate(healthy_in=promotes_from)  # no open door into a gated environment
        index, entry = served.get(item.name, (None, None))
        pin = entry.version if entry else None
        models.append(DesiredModel(
            name=target.registered_name, spec_name=item.name,
            description=item.spec.metadata.description or "",
            tags=owned_model_tags(project.name, item.spec),
            fingerprint=target.fingerprint, served=entry is not None, pinned=pin,
            pin_source=env_item.diagnostic(("spec", "models", index, "version"), "", code="pin")
            if pin is not None else None,
            gate=gate, policy=policy_name,
            policy_digest=policy_digest(policies[policy_name].spec) if policy_name else None,
            champion_alias=order[-1] if order else None))
    return DesiredState(env, project.name, tuple(sorted(models, key=lambda m: m.name)))
