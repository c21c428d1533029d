"""Blessing, as TFX's Evaluator does it: a challenger is blessed when every value threshold
(``min``/``max``) and every change threshold against the champion (``absolute``/``relative``, in
the metric's better direction) passes, overall and on every slice.

Pure functions over metric values: no registry, no models, no printing. A metric that is missing
fails its thresholds with the reason. With no champion, change thresholds are skipped (and said
to be) while value thresholds still apply.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

from mlops_gitops.spec import catalog
from mlops_gitops.spec.models import PolicySpec, Threshold

# Comparisons allow this much for floating-point rounding (0.9 - 0.8 is 0.09999999999999998).
EPSILON = 1e-9

MIN, MAX, ABSOLUTE, RELATIVE = "min", "max", "change.absolute", "change.relative"
PASS, FAIL, SKIPPED = "pass", "fail", "skipped"


@dataclass(frozen=True)
class Scores:
    """One model's metric values, overall (slice ``None``) and per slice key (``column=value``).

    ``missing`` holds, for a metric that could not be computed, the reason."""

    values: Mapping[str | None, Mapping[str, float]]
    missing: Mapping[str | None, Mapping[str, str]] = field(default_factory=dict)

    def get(self, slice_key: str | None, metric: str) -> tuple[float | None, str]:
        value = self.values.get(slice_key, {}).get(metric)
        if value is not None:
            return value, ""
        reason = self.missing.get(slice_key, {}).get(metric)
        if reason:
            return None, reason
        where = "overall" if slice_key is None else f"on slice {slice_key}"
        return None, f"{metric} was not computed {where}"

    def to_dict(self) -> dict:
        return {"values": {_key(k): dict(v) for k, v in self.values.items()},
                "missing": {_key(k): dict(v) for k, v in self.missing.items()}}


def _key(slice_key: str | None) -> str:
    return "" if slice_key is None else slice_key


@dataclass(frozen=True)
class Check:
    """One threshold on one slice: the line a reviewer reads."""

    metric: str
    slice: str | None  # None: overall
    kind: str  # min | max | change.absolute | change.relative
    threshold: float
    higher_is_better: bool
    challenger: float | None
    champion: float | None = None
    passed: bool | None = None  # None: skipped
    note: str = ""

    @property
    def status(self) -> str:
        return SKIPPED if self.passed is None else PASS if self.passed else FAIL

    @property
    def delta(self) -> float | None:
        """challenger - champion."""
        if self.challenger is None or self.champion is None:
            return None
        return self.challenger - self.champion

    @property
    def relative_delta(self) -> float | None:
        """(challenger - champion) / |champion|."""
        delta = self.delta
        if delta is None:
            return None
        return _ratio(delta, self.champion)

    def describe(self) -> str:
        """The threshold in words: '>= 0.85', 'change >= -0.01 (higher is better)'."""
        if self.kind == MIN:
            return f">= {self.threshold:g}"
        if self.kind == MAX:
            return f"<= {self.threshold:g}"
        better = "higher" if self.higher_is_better else "lower"
        amount = f"{self.threshold:+g}" if self.kind == ABSOLUTE else f"{self.threshold:+.4g} " \
            f"({self.threshold * 100:+.3g}%)"
        return f"{'relative ' if self.kind == RELATIVE else ''}improvement >= {amount} " \
            f"({better} is better)"

    def to_dict(self) -> dict:
        return {**asdict(self), "status": self.status, "delta": self.delta,
                "relative_delta": self.relative_delta, "description": self.describe()}


@dataclass(frozen=True)
class Verdict:
    policy: str
    checks: tuple[Check, ...]
    has_champion: bool
    notes: tuple[str, ...] = ()

    @property
    def blessed(self) -> bool:
        return not any(c.passed is False for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.passed is False)

    @property
    def skipped(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.passed is None)

    def summary(self) -> str:
        judged = [c for c in self.checks if c.passed is not None]
        text = f"{sum(bool(c.passed) for c in judged)}/{len(judged)} passed"
        return text + (f", {len(self.skipped)} skipped" if self.skipped else "")

    def to_dict(self) -> dict:
        return {"policy": self.policy, "blessed": self.blessed,
                "verdict": "blessed" if self.blessed else "not blessed",
                "has_champion": self.has_champion, "summary": self.summary(),
                "notes": list(self.notes), "checks": [c.to_dict() for c in self.checks]}


def direction(metric: str, threshold: Threshold | None = None) -> bool:
    """Whether higher is better: the threshold's explicit setting, else the metric's nature."""
    if threshold is not None and threshold.higher_is_better is not None:
        return threshold.higher_is_better
    return catalog.higher_is_better(metric)


def _ratio(delta: float, base: float) -> float:
    if base == 0:
        return 0.0 if delta == 0 else math.copysign(math.inf, delta)
    return delta / abs(base)


def improvement(challenger: float, champion: float, higher_is_better: bool) -> float:
    """How much better the challenger is, in the metric's better direction."""
    return challenger - champion if higher_is_better else champion - challenger


def judge(name: str, policy: PolicySpec, challenger: Scores, champion: Scores | None, *,
          slice_keys: tuple[str, ...] = (), champion_problem: str = "") -> Verdict:
    """Every threshold of the policy, overall and on every slice.

    ``champion`` None with no ``champion_problem``: there is no champion yet (change thresholds
    skipped). With a ``champion_problem``: there is one but it could not be evaluated (change
    thresholds fail, with that reason).
    """
    checks: list[Check] = []
    for slice_key in (None, *slice_keys):
        for metric, threshold in policy.thresholds.items():
            checks += _checks(metric, threshold, slice_key, challenger, champion, champion_problem)
    notes = []
    if not policy.thresholds:
        notes.append(f"policy '{name}' has no thresholds: nothing to check")
    if champion is None and not champion_problem:
        notes.append("no champion: change thresholds are skipped, value thresholds still apply")
    elif champion_problem:
        notes.append(f"the champion could not be evaluated: {champion_problem}")
    return Verdict(name, tuple(checks), champion is not None or bool(champion_problem),
                   tuple(notes))


def _checks(metric: str, threshold: Threshold, slice_key: str | None, challenger: Scores,
            champion: Scores | None, champion_problem: str) -> list[Check]:
    higher = direction(metric, threshold)
    value, missing = challenger.get(slice_key, metric)
    base, base_missing = (None, "") if champion is None else champion.get(slice_key, metric)
    out = []
    for kind, bound in ((MIN, threshold.min), (MAX, threshold.max)):
        if bound is None:
            continue
        if value is None:
            out.append(Check(metric, slice_key, kind, bound, higher, None, base, passed=False,
                             note=f"missing: {missing}"))
            continue
        passed = value >= bound - EPSILON if kind == MIN else value <= bound + EPSILON
        out.append(Check(metric, slice_key, kind, bound, higher, value, base, passed=passed))
    change = threshold.change
    if change is None:
        return out
    for kind, bound in ((ABSOLUTE, change.absolute), (RELATIVE, change.relative)):
        if bound is None:
            continue
        if champion is None and not champion_problem:
            out.append(Check(metric, slice_key, kind, bound, higher, value, passed=None,
                             note="no champion"))
        elif value is None:
            out.append(Check(metric, slice_key, kind, bound, higher, None, base, passed=False,
                             note=f"missing: {missing}"))
        elif base is None:
            why = f"champion not evaluated: {champion_problem}" if champion is None else \
                f"champion value missing: {base_missing}"
            out.append(Check(metric, slice_key, kind, bound, higher, value, None, passed=False,
                             note=why))
        else:
            gain = improvement(value, base, higher)
            measured = gain if kind == ABSOLUTE else _ratio(gain, base)
            note = "champion is 0: the relative change is undefined, only its sign counts" \
                if kind == RELATIVE and base == 0 else ""
            out.append(Check(metric, slice_key, kind, bound, higher, value, base,
                             passed=measured >= bound - EPSILON, note=note))
    return out


# --- bootstrap -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeltaInterval:
    """A paired bootstrap interval of ``challenger - champion`` on the primary metric."""

    metric: str
    observed: float  # challenger - champion on all test rows
    low: float
    high: float
    confidence: float
    resamples: int  # resamples where the metric was defined for both models
    requested: int
    rows: int
    seed: int
    higher_is_better: bool

    @property
    def reading(self) -> str:
        """'better', 'worse' or 'noise': whether the whole interval is on one side of 0."""
        low, high = self.low, self.high
        if not self.higher_is_better:
            low, high = -high, -low
        if low > 0:
            return "better"
        if high < 0:
            return "worse"
        return "noise"

    def describe(self) -> str:
        meaning = {"better": "the challenger is better beyond resampling noise",
                   "worse": "the challenger is worse beyond resampling noise",
                   "noise": "the difference is within resampling noise"}[self.reading]
        return (f"{self.metric} delta {self.observed:+.4g}, {self.confidence:.0%} interval "
                f"[{self.low:+.4g}, {self.high:+.4g}] ({self.resamples} paired resamples of "
                f"{self.rows} rows): {meaning}")

    def to_dict(self) -> dict:
        return {**asdict(self), "reading": self.reading, "description": self.describe()}


Statistic = Callable[["object"], tuple["object", "object"]]


def bootstrap_delta(metric: str, statistic: Statistic, rows: int, *, observed: float,
                    higher_is_better: bool, resamples: int = 1000, seed: int = 0,
                    confidence: float = 0.95, max_cells: int = 4_000_000) -> DeltaInterval | None:
    """Percentile interval of the metric's delta over paired resamples of the test rows.

    ``statistic(idx)`` gets an array of shape (b, rows) of row positions (one resample per row)
    and returns the challenger's and the champion's metric on each resample. Resamples where
    either is undefined (NaN) are dropped. The same seed gives the same interval.
    """
    import numpy as np

    if rows < 2 or resamples < 1:
        return None
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, max_cells // rows))
    deltas = []
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        idx = rng.integers(0, rows, size=(size, rows))
        challenger, champion = statistic(idx)
        deltas.append(np.asarray(challenger, dtype=float) - np.asarray(champion, dtype=float))
        done += size
    values = np.concatenate(deltas)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return DeltaInterval(metric, observed, float(low), float(high), confidence, len(values),
                         resamples, rows, seed, higher_is_better)
