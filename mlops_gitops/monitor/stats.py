"""Drift of one column: the statistic chosen by column type, reference size and the Environment
spec's ``monitoring.drift.method``, the way Evidently's drift preset chooses it.

``method: psi``: the population stability index on every column (10 quantile bins of the
reference, epsilon for empty bins; categories for categorical columns), drifted at or above the
spec's ``threshold``.

``method: ks`` or ``js``: Evidently's defaults. With at most 1,000 reference rows, a test:
Kolmogorov-Smirnov (numeric), or for categories chi-squared goodness of fit to the reference's
proportions (more than two categories) or the two-proportion z-test (two), drifted when
p < 0.05. Above, a
distance: the Wasserstein distance normalized by the reference's standard deviation (numeric) or
the Jensen-Shannon distance of the category frequencies (categorical), drifted at or above 0.1
(or the spec's ``threshold`` when it sets one).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from mlops_gitops.data.drift import EPSILON, psi

SMALL_REFERENCE = 1000
P_VALUE = 0.05
DISTANCE = 0.1
NO_STATISTIC = "none"  # a side without a single usable value
CATEGORICAL_MAX_VALUES = 5  # an int column with this few values counts as categorical


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    role: str  # feature | prediction
    kind: str  # numeric | categorical
    statistic: str  # psi | ks_pvalue | chi2_pvalue | z_pvalue | wasserstein_norm | jensenshannon
    value: float
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int

    @property
    def p_value(self) -> bool:
        return self.statistic.endswith("_pvalue")

    def to_dict(self) -> dict:
        return asdict(self)


def column_kind(declared: str, reference: pd.Series) -> str:
    if declared in ("string", "bool"):
        return "categorical"
    if declared == "int" and reference.nunique(dropna=True) <= CATEGORICAL_MAX_VALUES:
        return "categorical"
    if not pd.api.types.is_numeric_dtype(reference) or pd.api.types.is_bool_dtype(reference):
        return "categorical"
    return "numeric"


def _text_of(value) -> str:
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def as_categories(series: pd.Series) -> pd.Series:
    """Category labels as text, the same on both sides: the log's JSON gives 1.0 or true where the
    training CSV gives 1 or True, so integral numbers and booleans become '1' / '0'."""
    if pd.api.types.is_bool_dtype(series):
        series = series.astype(np.int64)
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(float)
        integral = np.isfinite(values) & (values % 1 == 0)
        text = values.astype(str).astype(object)
        text[integral] = values[integral].astype(np.int64).astype(str)
        return pd.Series(text, index=series.index)
    if pd.api.types.infer_dtype(series, skipna=True) == "string":
        return series.astype(str)
    return series.map(_text_of)


def _counts(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    ref, cur = as_categories(reference).value_counts(), as_categories(current).value_counts()
    categories = sorted(set(ref.index) | set(cur.index))
    return (ref.reindex(categories, fill_value=0).to_numpy(float),
            cur.reindex(categories, fill_value=0).to_numpy(float))


def _category_psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    expected = np.clip(ref_counts / ref_counts.sum(), EPSILON, None)
    actual = np.clip(cur_counts / cur_counts.sum(), EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _numeric(series: pd.Series) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(float)
    return values[np.isfinite(values)]


def wasserstein(u: np.ndarray, v: np.ndarray) -> float:
    """The first Wasserstein distance of two samples (the area between their empirical CDFs), as
    ``scipy.stats.wasserstein_distance`` computes it, in two sorts and no merge sort: the smaller
    sample's values are placed into the larger sorted one by binary search, and each CDF on the
    merged points is a running count of where the values came from."""
    if len(u) > len(v):
        u, v = v, u  # the distance is symmetric: insert the smaller sample
    u, v = np.sort(u), np.sort(v)
    n = len(u) + len(v)
    from_u = np.zeros(n, dtype=bool)
    from_u[np.searchsorted(v, u, "right") + np.arange(len(u))] = True
    points = np.empty(n)
    points[from_u] = u
    points[~from_u] = v
    # between two distinct neighbours, every value <= the left one is at or before it (ties sit
    # between equal points, where the width is 0), so the running counts are the CDFs
    u_count = np.cumsum(from_u)[:-1]
    v_count = np.arange(1, n) - u_count
    return float(np.sum(np.abs(u_count / len(u) - v_count / len(v)) * np.diff(points)))


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """The Jensen-Shannon distance (natural log) of two count vectors, as
    ``scipy.spatial.distance.jensenshannon`` computes it."""
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        inside = a > 0
        return float(np.sum(a[inside] * np.log(a[inside] / m[inside])))

    return float(np.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


def chi_squared_pvalue(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Pearson's chi-squared goodness of fit of the current counts to the reference's
    proportions (Evidently's ``chisquare`` test); a category the reference never had gives 0."""
    from scipy import stats

    expected = ref_counts * (cur_counts.sum() / ref_counts.sum())
    if np.any((expected == 0) & (cur_counts > 0)):
        return 0.0
    keep = expected > 0
    return float(stats.chisquare(cur_counts[keep], expected[keep]).pvalue)


def proportions_z_pvalue(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """The two-sided z-test of the difference of two proportions (pooled), for a column of at
    most two categories (Evidently's ``z`` test): 1.0 when both sides hold the same one value."""
    from scipy import stats

    n_ref, n_cur = ref_counts.sum(), cur_counts.sum()
    p_ref, p_cur = ref_counts[0] / n_ref, cur_counts[0] / n_cur
    pooled = (ref_counts[0] + cur_counts[0]) / (n_ref + n_cur)
    spread = pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur)
    if spread == 0:
        return 1.0  # one value on both sides
    z = (p_ref - p_cur) / np.sqrt(spread)
    return float(2 * stats.norm.sf(abs(z)))


def column_drift(column: str, role: str, kind: str, reference: pd.Series, current: pd.Series,
                 method: str, threshold: float | None) -> ColumnDrift:
    """``threshold``: PSI's (method psi), or the distances' when the spec set one (else 0.1)."""
    if kind == "numeric":
        ref, cur = _numeric(reference), _numeric(current)
    else:
        ref, cur = reference.dropna(), current.dropna()
    n_ref, n_cur = len(ref), len(cur)

    def result(statistic: str, value: float, limit: float, drifted: bool) -> ColumnDrift:
        return ColumnDrift(column, role, kind, statistic, float(value), float(limit),
                           bool(drifted), n_ref, n_cur)

    if n_ref == 0 or n_cur == 0:
        return result(NO_STATISTIC, float("nan"), float("nan"), False)
    if method == "psi":
        limit = threshold if threshold is not None else 0.2
        if kind == "numeric":
            value = psi(ref, cur)
        else:
            value = _category_psi(*_counts(ref, cur))
        return result("psi", value, limit, value >= limit)
    distance = threshold if threshold is not None else DISTANCE
    if kind == "numeric":
        if n_ref <= SMALL_REFERENCE:
            from scipy import stats

            p = float(stats.ks_2samp(ref, cur).pvalue)
            return result("ks_pvalue", p, P_VALUE, p < P_VALUE)
        norm = max(float(np.std(ref)), 0.001)
        value = wasserstein(ref, cur) / norm
        return result("wasserstein_norm", value, distance, value >= distance)
    ref_counts, cur_counts = _counts(ref, cur)
    if n_ref <= SMALL_REFERENCE:
        if len(ref_counts) <= 2:
            p = proportions_z_pvalue(ref_counts, cur_counts)
            return result("z_pvalue", p, P_VALUE, p < P_VALUE)
        p = chi_squared_pvalue(ref_counts, cur_counts)
        return result("chi2_pvalue", p, P_VALUE, p < P_VALUE)
    value = jensen_shannon(ref_counts, cur_counts)
    return result("jensenshannon", value, distance, value >= distance)
