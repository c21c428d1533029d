"""Drift statistics between a reference and a current frame, per column.

Numeric columns: population stability index (PSI, on the reference's deciles) and the two-sample
Kolmogorov-Smirnov test. Categorical columns: chi-squared test of the category counts and the
Jensen-Shannon distance of the category frequencies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

PSI_BINS = 10
EPSILON = 1e-6


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # numeric | categorical
    psi: float | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    chi2_pvalue: float | None = None
    js_distance: float | None = None

    def score(self, method: str) -> float | None:
        """The statistic a monitoring threshold compares with (psi, ks or js)."""
        return {"psi": self.psi, "ks": self.ks_statistic, "js": self.js_distance}[method]

    def to_dict(self) -> dict:
        return asdict(self)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index over the reference's quantile bins."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # constant reference: one bin for its value, one for the rest
        same_ref = np.mean(reference == edges[0])
        same_cur = np.mean(current == edges[0])
        expected, actual = np.array([same_ref, 1 - same_ref]), np.array([same_cur, 1 - same_cur])
    else:
        edges[0], edges[-1] = -np.inf, np.inf
        expected = np.histogram(reference, edges)[0] / len(reference)
        actual = np.histogram(current, edges)[0] / len(current)
    expected, actual = np.clip(expected, EPSILON, None), np.clip(actual, EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def column_drift(name: str, reference: pd.Series, current: pd.Series) -> ColumnDrift:
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    ref, cur = reference.dropna(), current.dropna()
    if len(ref) == 0 or len(cur) == 0:
        return ColumnDrift(name, "empty")
    if pd.api.types.is_numeric_dtype(ref) and not pd.api.types.is_bool_dtype(ref) and \
            pd.api.types.is_numeric_dtype(cur):
        ref_values, cur_values = ref.to_numpy(float), cur.to_numpy(float)
        ks = stats.ks_2samp(ref_values, cur_values)
        return ColumnDrift(name, "numeric", psi=psi(ref_values, cur_values),
                           ks_statistic=float(ks.statistic), ks_pvalue=float(ks.pvalue))
    categories = sorted(set(ref.astype(str)) | set(cur.astype(str)))
    ref_counts = ref.astype(str).value_counts().reindex(categories, fill_value=0).to_numpy()
    cur_counts = cur.astype(str).value_counts().reindex(categories, fill_value=0).to_numpy()
    if len(categories) > 1:
        chi2 = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]) + 0.5)
        chi2_p = float(chi2.pvalue)
    else:
        chi2_p = 1.0
    js = float(jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum(), base=2))
    expected = np.clip(ref_counts / ref_counts.sum(), EPSILON, None)
    actual = np.clip(cur_counts / cur_counts.sum(), EPSILON, None)
    return ColumnDrift(name, "categorical", psi=float(np.sum((actual - expected) *
                                                            np.log(actual / expected))),
                       chi2_pvalue=chi2_p, js_distance=js)


def frame_drift(reference: pd.DataFrame, current: pd.DataFrame,
                columns: list[str] | None = None) -> list[ColumnDrift]:
    """Drift of every column present in both frames (or of ``columns``)."""
    names = columns or [c for c in reference.columns if c in current.columns]
    return [column_drift(str(c), reference[c], current[c]) for c in names]
