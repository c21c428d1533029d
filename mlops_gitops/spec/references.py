"""Checks across spec files: names are unique, references resolve, promotion order is sound."""

from __future__ import annotations

from mlops_gitops.diagnostics import Diagnostic, did_you_mean
from mlops_gitops.spec.loader import LoadedSpec
from mlops_gitops.spec.models import DirectionalTest, InvarianceTest, MetricTest


def check_references(loaded: list[LoadedSpec],
                     broken: frozenset[tuple[str, str]] = frozenset()) -> list[Diagnostic]:
    """``broken``: (kind, name) of documents that exist but failed validation; references to
    them are not reported again (the real error is in their own file)."""
    diagnostics: list[Diagnostic] = []
    by_kind: dict[str, dict[str, LoadedSpec]] = {}
    for item in loaded:
        seen = by_kind.setdefault(item.kind, {})
        if item.name in seen:
            first = seen[item.name]
            diagnostics.append(item.diagnostic(("metadata", "name"),
                                               f"{item.kind} '{item.name}' is already defined in "
                                               f"{first.file}", code="duplicate"))
        else:
            seen[item.name] = item
    datasets = by_kind.get("Dataset", {})
    models = by_kind.get("Model", {})
    policies = by_kind.get("PromotionPolicy", {})
    environments = by_kind.get("Environment", {})
    for project in list(by_kind.get("Project", {}).values())[1:]:
        diagnostics.append(project.diagnostic(("kind",), "only one Project config is allowed",
                                              code="duplicate"))

    def missing(item: LoadedSpec, path: tuple, kind: str, name: str, known: dict) -> None:
        if (kind, name) in broken or ("*", name) in broken:  # "*": a broken doc of any kind
            return
        hint = did_you_mean(name, known) or (f"defined: {', '.join(sorted(known))}" if known else
                                             f"no {kind} is defined")
        diagnostics.append(item.diagnostic(path, f"unknown {kind} '{name}'", hint))

    registered: dict[str, LoadedSpec] = {}
    for model in models.values():
        spec = model.spec.spec
        reg = model.spec.registered_name
        if reg in registered:
            diagnostics.append(model.diagnostic(("spec", "registered_model"),
                                                f"registered model '{reg}' is also used by "
                                                f"{registered[reg].file}", code="duplicate"))
        registered.setdefault(reg, model)
        if spec.policy is not None and spec.policy not in policies:
            missing(model, ("spec", "policy"), "PromotionPolicy", spec.policy, policies)
        dataset = datasets.get(spec.dataset)
        if dataset is None:
            missing(model, ("spec", "dataset"), "Dataset", spec.dataset, datasets)
            continue
        columns = dataset.spec.spec.columns
        used = [(("spec", "target"), spec.target, "target")]
        used += [(("spec", "features", i), f, "feature") for i, f in enumerate(spec.features)]
        used += [(("spec", "tests", i, "slice"), t.slice, "slice") for i, t in enumerate(spec.tests)
                 if isinstance(t, MetricTest) and t.slice]
        for path, name, role in used:
            if name not in columns:
                diagnostics.append(model.diagnostic(
                    path, f"{role} '{name}' is not a column of dataset '{spec.dataset}'",
                    did_you_mean(name, columns) or f"columns: {', '.join(columns)}"))
        for i, test in enumerate(spec.tests):
            if isinstance(test, (InvarianceTest, DirectionalTest)):
                if test.column not in spec.features:
                    diagnostics.append(model.diagnostic(
                        ("spec", "tests", i, "column"),
                        f"test column '{test.column}' is not one of the model's features",
                        did_you_mean(test.column, spec.features)))
                elif columns[test.column].type not in NUMERIC:
                    diagnostics.append(model.diagnostic(
                        ("spec", "tests", i, "column"), f"test column '{test.column}' is a "
                        f"{columns[test.column].type} column; {test.type} tests change numbers"))
        diagnostics += _slice_types(model, columns)
        if spec.policy in policies:
            for i, name in enumerate(policies[spec.policy].spec.spec.slices):
                policy = policies[spec.policy]
                if name not in columns:
                    diagnostics.append(policy.diagnostic(
                        ("spec", "slices", i), f"slice '{name}' is not a column of dataset "
                        f"'{spec.dataset}' (used by model '{model.name}')",
                        did_you_mean(name, columns)))
                elif columns[name].type == "float":
                    diagnostics.append(policy.diagnostic(
                        ("spec", "slices", i), f"slice '{name}' is a float column of dataset "
                        f"'{spec.dataset}' (used by model '{model.name}'): one slice per value",
                        "slice policies by a categorical column; a model test with bins checks "
                        "numeric ranges"))
            diagnostics += _policy_fits_model(policies[spec.policy], model)

    for policy in policies.values():
        for env_name, gate in policy.spec.spec.gates.items():
            if environments and env_name not in environments:
                missing(policy, ("spec", "gates", env_name), "Environment", env_name, environments)
            if gate.healthy_in and environments and gate.healthy_in not in environments:
                missing(policy, ("spec", "gates", env_name, "healthy_in"), "Environment",
                        gate.healthy_in, environments)

    branches: dict[str, LoadedSpec] = {}
    for env in environments.values():
        if env.spec.branch in branches:
            diagnostics.append(env.diagnostic(("spec", "branch"), f"branch '{env.spec.branch}' is "
                                              f"also used by {branches[env.spec.branch].file}",
                                              code="duplicate"))
        branches.setdefault(env.spec.branch, env)
        gated = env.spec.spec.promotes_from
        for i, served in enumerate(env.spec.spec.models):
            if served.name not in models:
                missing(env, ("spec", "models", i, "name"), "Model", served.name, models)
            elif gated and models[served.name].spec.spec.policy is None:
                diagnostics.append(env.diagnostic(
                    ("spec", "models", i, "name"), f"model '{served.name}' has no policy, but "
                    f"environment '{env.name}' is gated (it promotes from '{gated}')",
                    f"give the model a PromotionPolicy (spec.policy in "
                    f"{models[served.name].file}) whose gates say what '{env.name}' requires"))
    order_problems = _promotion_order(environments, broken)
    diagnostics += order_problems
    if not order_problems:
        diagnostics += _gate_order(policies, environments)
    return diagnostics


def _gate_order(policies: dict[str, LoadedSpec],
                environments: dict[str, LoadedSpec]) -> list[Diagnostic]:
    """A gate's healthy_in must come earlier in the promotion order, or it can never pass."""
    order = promotion_order(environments)
    diagnostics = []
    for policy in policies.values():
        for env, gate in policy.spec.spec.gates.items():
            target = gate.healthy_in
            if target in order and env in order and order.index(target) >= order.index(env):
                diagnostics.append(policy.diagnostic(
                    ("spec", "gates", env, "healthy_in"), f"gate '{env}' requires health in "
                    f"'{target}', which does not come before '{env}' in the promotion order "
                    f"({' -> '.join(order)}): the gate could never pass",
                    f"name an environment before '{env}'"))
    return diagnostics


NUMERIC = ("float", "int")


def _slice_types(model: LoadedSpec, columns: dict) -> list[Diagnostic]:
    """Sliced metric tests: a float column needs bins, bins need a numeric column."""
    diagnostics = []
    for i, test in enumerate(model.spec.spec.tests):
        if not isinstance(test, MetricTest) or test.slice not in columns:
            continue
        kind = columns[test.slice].type
        if test.bins is None and kind == "float":
            diagnostics.append(model.diagnostic(
                ("spec", "tests", i, "slice"), f"slice '{test.slice}' is a float column: one "
                "slice per distinct value", "give bins, e.g. bins: [0, 10, 20, 50]"))
        elif test.bins is not None and kind not in NUMERIC:
            diagnostics.append(model.diagnostic(
                ("spec", "tests", i, "bins"), f"bins need a numeric slice column; '{test.slice}' "
                f"is a {kind} column", "remove bins to get one slice per value"))
    return diagnostics


def _policy_fits_model(policy: LoadedSpec, model: LoadedSpec) -> list[Diagnostic]:
    """The policy judges metrics the model computes, and no model test contradicts it."""
    diagnostics = []
    spec, rules = model.spec.spec, policy.spec.spec
    computed = ", ".join(spec.metrics)
    hint = f"add it to spec.metrics of {model.file}, or use another policy"
    if rules.primary not in spec.metrics:
        diagnostics.append(policy.diagnostic(
            ("spec", "primary"), f"primary metric '{rules.primary}' is not computed by model "
            f"'{model.name}' (its metrics: {computed})", hint))
    for metric in rules.thresholds:
        if metric not in spec.metrics:
            diagnostics.append(policy.diagnostic(
                ("spec", "thresholds", metric), f"threshold metric '{metric}' is not computed "
                f"by model '{model.name}' (its metrics: {computed})", hint))
    for i, test in enumerate(spec.tests):
        threshold = rules.thresholds.get(getattr(test, "metric", None))
        if not isinstance(test, MetricTest) or test.slice or threshold is None:
            continue
        if test.max is not None and threshold.min is not None and test.max < threshold.min:
            field, clash = "max", (f"test '{test.name}' requires {test.metric} <= {test.max:g}",
                                   f"requires {test.metric} >= {threshold.min:g}")
        elif test.min is not None and threshold.max is not None and test.min > threshold.max:
            field, clash = "min", (f"test '{test.name}' requires {test.metric} >= {test.min:g}",
                                   f"requires {test.metric} <= {threshold.max:g}")
        else:
            continue
        diagnostics.append(model.diagnostic(
            ("spec", "tests", i, field), f"{clash[0]} but policy '{policy.name}' {clash[1]}: no "
            "version can pass both", f"see {policy.file}"))
    return diagnostics


def _promotion_order(environments: dict[str, LoadedSpec],
                     broken: frozenset[tuple[str, str]] = frozenset()) -> list[Diagnostic]:
    """Environments form one chain (dev -> test -> prod): no gaps, no cycles, no forks."""
    diagnostics: list[Diagnostic] = []
    parents = {name: env.spec.spec.promotes_from for name, env in environments.items()}
    for name, parent in parents.items():
        env = environments[name]
        if parent is None:
            continue
        if parent == name:
            diagnostics.append(env.diagnostic(("spec", "promotes_from"),
                                              f"environment '{name}' promotes from itself"))
        elif parent not in environments and not {("Environment", parent), ("*", parent)} & broken:
            hint = did_you_mean(parent, environments) or f"environments: {', '.join(environments)}"
            diagnostics.append(env.diagnostic(("spec", "promotes_from"),
                                              f"unknown environment '{parent}' (gap in the "
                                              "promotion order)", hint))
    if diagnostics:
        return diagnostics
    for name in parents:
        seen = [name]
        current = parents[name]
        while current is not None and current not in seen:
            seen.append(current)
            current = parents[current]
        if current is not None and current == name:
            chain = " -> ".join(reversed(seen + [name]))
            diagnostics.append(environments[name].diagnostic(
                ("spec", "promotes_from"), f"promotion order has a cycle: {chain}"))
    if diagnostics:
        return diagnostics
    roots = sorted(n for n, p in parents.items() if p is None)
    if len(roots) > 1:
        for name in roots[1:]:
            diagnostics.append(environments[name].diagnostic(
                ("spec",), f"environments {', '.join(roots)} all start the promotion order",
                "set promotes_from so the environments form one chain"))
    children: dict[str, list[str]] = {}
    for name, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(name)
    for parent, kids in children.items():
        for name in sorted(kids)[1:]:
            diagnostics.append(environments[name].diagnostic(
                ("spec", "promotes_from"), f"environments {', '.join(sorted(kids))} all promote "
                f"from '{parent}'", "the promotion order must be a single chain"))
    return diagnostics


def promotion_order(environments: dict[str, LoadedSpec]) -> list[str]:
    """Environment names from first to last (assumes :func:`check_references` found no errors)."""
    parents = {name: env.spec.spec.promotes_from for name, env in environments.items()}
    order = [n for n, p in parents.items() if p is None][:1]
    while order:
        nxt = [n for n, p in parents.items() if p == order[-1]]
        if not nxt:
            break
        order.append(nxt[0])
    return order
