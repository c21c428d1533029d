"""Champion vs challenger under the model's PromotionPolicy, on the same test rows.

The challenger is the ready version trained from the current spec (its fingerprint); the champion
is the version the last environment's alias (``prod``) points at, or a named alias. Both are
evaluated on the current test split, so the rows are the same by construction; the recorded
test-split hashes say whether the champion was trained with the same split.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.evaluate.policy import (
    DeltaInterval,
    Scores,
    Verdict,
    bootstrap_delta,
    direction,
    judge,
)
from mlops_gitops.identity import (
    ARTIFACT_COMPARE,
    TAG_VERDICT,
    TAG_VERDICT_PREFIX,
    VERDICT_BLESSED,
    VERDICT_NOT_BLESSED,
)
from mlops_gitops.spec.loader import LoadedSpec
from mlops_gitops.spec.project import Project
from mlops_gitops.verdict import TAG_ALIAS, TAG_POLICY_DIGEST, TAG_VERDICT_INTERVAL, policy_digest

Progress = Callable[[str], None]
RESAMPLES = 1000
SEED = 0
MAX_CONFUSION_LABELS = 25
RESIDUAL_BINS = 20


@dataclass(frozen=True)
class Side:
    """One model of the comparison and what it scored."""

    version: int
    fingerprint: str | None
    features: tuple[str, ...]
    recorded_split_hash: str | None
    scores: Scores | None  # None when it could not be evaluated
    problem: str = ""
    confusion: Mapping[str, Any] | None = None  # {"labels": [...], "matrix": [[...]]}
    residuals: Mapping[str, Any] | None = None  # {"edges": [...], "counts": [...]}

    def to_dict(self) -> dict:
        out = asdict(self)
        out["features"] = list(self.features)
        out["scores"] = self.scores.to_dict() if self.scores is not None else None
        return out


@dataclass(frozen=True)
class Comparison:
    model: str
    registered_name: str
    policy: str | None
    primary: str | None
    alias: str
    champion_note: str
    challenger: Side
    champion: Side | None
    split_hash: str
    rows: int
    same_rows: bool | None  # the champion was trained with this test split (None: unknown)
    slice_keys: tuple[str, ...] = ()
    verdict: Verdict | None = None  # None: the model has no policy
    interval: DeltaInterval | None = None
    notes: tuple[str, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    policy_digest: str = ""  # the policy spec judged by (a recorded verdict is stale otherwise)

    @property
    def blessed(self) -> bool | None:
        return None if self.verdict is None else self.verdict.blessed

    def to_dict(self) -> dict:
        return {
            "model": self.model, "registered_name": self.registered_name, "policy": self.policy,
            "primary": self.primary, "alias": self.alias, "champion_note": self.champion_note,
            "verdict": None if self.verdict is None else
            ("blessed" if self.verdict.blessed else "not blessed"),
            "challenger": self.challenger.to_dict(),
            "champion": None if self.champion is None else self.champion.to_dict(),
            "split_hash": self.split_hash, "rows": self.rows, "same_rows": self.same_rows,
            "slices": list(self.slice_keys),
            "judgement": None if self.verdict is None else self.verdict.to_dict(),
            "interval": None if self.interval is None else self.interval.to_dict(),
            "notes": list(self.notes), "timings": dict(self.timings),
            "policy_digest": self.policy_digest,
        }


def _needed_metrics(policy) -> list[str]:
    names = list(policy.thresholds)
    return names + ([policy.primary] if policy.primary not in names else [])


@dataclass
class _Evaluated:
    side: Side
    predictions: Any = None


def _evaluate(loaded, split, target: str, task: str, metrics: list[str], parts: list,
              problem: str) -> _Evaluated:
    from mlops_gitops.evaluate.scoring import needs_proba, predict, score

    def side(scores=None, why="") -> Side:
        return Side(loaded.version, loaded.fingerprint, loaded.features, loaded.split_hash,
                    scores, why)

    if problem:
        return _Evaluated(side(why=problem))
    try:
        predictions = predict(loaded.model, split.frame[list(loaded.features)],
                              proba=needs_proba(metrics))
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        return _Evaluated(side(why=f"{loaded.ref} failed to predict: {exc}"))
    y = split.frame[target].to_numpy()
    values, missing = {}, {}
    values[None], missing[None] = score(metrics, y, predictions)
    for part in parts:
        values[part.key], missing[part.key] = score(metrics, y, predictions, part.rows)
    return _Evaluated(side(Scores(values, missing)), predictions)


def _plot_data(task: str, y, evaluated: list[_Evaluated]) -> list[Side]:
    """Confusion matrices (classification) or residual histograms (regression), on shared
    labels or bins so that the two models can be drawn side by side."""
    import numpy as np

    scored = [e for e in evaluated if e.predictions is not None]
    if not scored:
        return [e.side for e in evaluated]
    if task == "classification":
        from sklearn.metrics import confusion_matrix

        labels = sorted(set(np.unique(np.asarray(y).astype(str)).tolist()).union(
            *(np.unique(np.asarray(e.predictions.values).astype(str)).tolist() for e in scored)))
        if len(labels) > MAX_CONFUSION_LABELS:
            return [e.side for e in evaluated]
        truth = np.asarray(y).astype(str)
        extra = {id(e): {"confusion": {"labels": labels, "matrix": confusion_matrix(
            truth, np.asarray(e.predictions.values).astype(str), labels=labels).tolist()}}
            for e in scored}
    else:
        truth = np.asarray(y, dtype=float)
        residuals = {id(e): truth - np.asarray(e.predictions.values, dtype=float) for e in scored}
        edges = np.histogram_bin_edges(np.concatenate(list(residuals.values())),
                                       bins=RESIDUAL_BINS)
        extra = {key: {"residuals": {"edges": edges.tolist(),
                                     "counts": np.histogram(r, bins=edges)[0].tolist()}}
                 for key, r in residuals.items()}
    return [dataclasses.replace(e.side, **extra.get(id(e), {})) for e in evaluated]


def compare_model(project: Project, model: LoadedSpec, *, champion_alias: str | None = None,
                  registry=None, record: bool = True, resamples: int = RESAMPLES,
                  progress: Progress = lambda message: None) -> Comparison:
    from mlops_gitops.evaluate import versions
    from mlops_gitops.evaluate.scoring import resample_metric, slices

    timings: dict[str, float] = {}
    started = time.perf_counter()
    if registry is None:
        from mlops_gitops.registry.open import open_registry

        registry = open_registry(project, "write")
    spec = model.spec.spec
    target, number = versions.challenger(project, model, registry)
    name = target.registered_name
    alias = champion_alias or versions.default_alias(project)
    policy_name = spec.policy
    if policy_name is None:
        side = Side(number, target.fingerprint, tuple(spec.features), None, None)
        return Comparison(model.name, name, None, None, alias, "", side, None, "", 0, None,
                          notes=(f"model '{model.name}' names no policy: nothing to judge",))
    policy = project.located("PromotionPolicy", policy_name).spec.spec
    champion_number, champion_note = versions.champion_version(
        registry, name, alias, explicit=champion_alias is not None)
    progress(f"{model.name}: loading challenger {name}/{number}" + (
        f" and champion {name}/{champion_number}" if champion_number else ""))
    challenger = versions.load_version(registry, name, number)
    champion = None
    if champion_number is not None:
        champion = challenger if champion_number == number else \
            versions.load_version(registry, name, champion_number)
    split = versions.load_test_split(project, target.dataset, target.data_md5)
    problem = versions.unusable(challenger, split, spec.target, spec.task)
    if problem:
        raise DiagnosticError([model.diagnostic(("spec", "features"),
                                                f"cannot evaluate the challenger: {problem}")])
    metrics = _needed_metrics(policy)
    columns = split.dataset.spec.spec.columns
    parts = []
    for column in policy.slices:
        declared = columns.get(column)
        parts += slices(split.frame, column,
                        expected=getattr(declared, "allowed", None))[0]
    timings["load"] = time.perf_counter() - started

    started = time.perf_counter()
    progress(f"{model.name}: evaluating on {split.rows} test rows")
    evaluated = [_evaluate(challenger, split, spec.target, spec.task, metrics, parts, "")]
    if evaluated[0].side.problem:
        raise DiagnosticError([model.diagnostic(("spec", "estimator"), "cannot evaluate the "
                                                f"challenger: {evaluated[0].side.problem}")])
    notes = []
    if champion is not None:
        champion_problem = versions.unusable(champion, split, spec.target, spec.task)
        evaluated.append(_evaluate(champion, split, spec.target, spec.task, metrics, parts,
                                   champion_problem))
        if champion is challenger:
            notes.append(f"'{alias}' already serves {name}/{number}: the challenger is the "
                         "champion")
        if not champion.has_lineage:
            notes.append(f"{champion.ref} has no recorded lineage: its features come from the "
                         "model itself")
        change = versions.feature_change(champion, challenger)
        if change:
            notes.append(change)
    y = split.frame[spec.target].to_numpy()
    sides = _plot_data(spec.task, y, evaluated)
    challenger_side = sides[0]
    champion_side = sides[1] if len(sides) > 1 else None
    same_rows = None
    if champion is not None:
        if champion.split_hash is None:
            notes.append(f"{champion.ref} records no test-split hash: both models are evaluated "
                         "on the current test split")
        elif champion.split_hash == split.hash:
            same_rows = True
            notes.append(f"same test rows: the champion was trained with this test split "
                         f"({split.hash[:12]})")
        else:
            same_rows = False
            notes.append(f"the data or its split changed since the champion was trained (test "
                         f"split {champion.split_hash[:12]} then, {split.hash[:12]} now): both "
                         "models are evaluated on the new test split; the champion may have "
                         "trained on some of these rows")
    champion_scores = champion_side.scores if champion_side is not None else None
    champion_problem_text = champion_side.problem if champion_side is not None else ""
    verdict = judge(policy_name, policy, challenger_side.scores, champion_scores,
                    slice_keys=tuple(p.key for p in parts), champion_problem=champion_problem_text)
    interval = None
    primary = policy.primary
    if champion_scores is not None:
        ours, _ = challenger_side.scores.get(None, primary)
        theirs, _ = champion_scores.get(None, primary)
        if ours is not None and theirs is not None:
            a, b = evaluated[0].predictions, evaluated[1].predictions
            interval = bootstrap_delta(
                primary, lambda idx: (resample_metric(primary, y, a, idx),
                                      resample_metric(primary, y, b, idx)),
                split.rows, observed=ours - theirs,
                higher_is_better=direction(primary, policy.thresholds.get(primary)),
                resamples=resamples, seed=SEED)
        else:
            notes.append(f"no interval for {primary}: it is missing for "
                         f"{'the challenger' if ours is None else 'the champion'}")
    timings["predict"] = time.perf_counter() - started
    comparison = Comparison(
        model.name, name, policy_name, primary, alias, champion_note, challenger_side,
        champion_side, split.hash, split.rows, same_rows, tuple(p.key for p in parts), verdict,
        interval, tuple(notes), timings, policy_digest(policy))
    if record:
        started = time.perf_counter()
        record_comparison(registry, challenger, comparison)
        timings["record"] = time.perf_counter() - started
    return comparison


def verdict_tags(comparison: Comparison) -> dict[str, str]:
    verdict = comparison.verdict
    failed = "; ".join(f"{c.metric}{f'[{c.slice}]' if c.slice else ''} {c.kind}"
                       for c in verdict.failed)
    tags = {
        TAG_VERDICT: VERDICT_BLESSED if verdict.blessed else VERDICT_NOT_BLESSED,
        f"{TAG_VERDICT_PREFIX}champion": str(comparison.champion.version)
        if comparison.champion is not None else "none",
        f"{TAG_VERDICT_PREFIX}policy": verdict.policy,
        f"{TAG_VERDICT_PREFIX}checks": verdict.summary(),
        f"{TAG_VERDICT_PREFIX}failed": (failed[:497] + "...") if len(failed) > 500 else
        (failed or "none"),
        f"{TAG_VERDICT_PREFIX}split_hash": comparison.split_hash,
        TAG_POLICY_DIGEST: comparison.policy_digest,
        TAG_ALIAS: comparison.alias,
    }
    if comparison.interval is not None:
        i = comparison.interval
        tags[f"{TAG_VERDICT_PREFIX}primary_delta"] = (
            f"{i.metric} {i.observed:+.4g} [{i.low:+.4g}, {i.high:+.4g}] {i.reading}")
        tags[TAG_VERDICT_INTERVAL] = i.describe()[:5000]
    return tags


def record_comparison(registry, challenger, comparison: Comparison) -> None:
    tags = verdict_tags(comparison)
    stale = [k for k in challenger.tags if k.startswith(TAG_VERDICT_PREFIX) and k not in tags]
    registry.set_version_tags(comparison.registered_name, comparison.challenger.version, tags)
    if stale:
        registry.delete_version_tags(comparison.registered_name, comparison.challenger.version,
                                     stale)
    if challenger.run_id:
        registry.log_run_json(challenger.run_id, comparison.to_dict(), ARTIFACT_COMPARE)
