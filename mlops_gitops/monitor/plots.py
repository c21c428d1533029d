"""PNG histograms, reference vs current, of each drifted column (matplotlib's Agg backend, drawn
locally; nothing is uploaded)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_gitops.monitor.check import MonitorReport
from mlops_gitops.monitor.columns import column_label
from mlops_gitops.monitor.stats import as_categories
from mlops_gitops.report.plots import _pyplot, _save

MAX_POINTS = 50_000  # category shares of a random sample this big look the same


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "column"


def _sample(values: pd.Series, seed: int = 0) -> pd.Series:
    if len(values) <= MAX_POINTS:
        return values
    return values.sample(MAX_POINTS, random_state=seed)


def histogram(path: Path, title: str, reference: pd.Series, current: pd.Series) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ref, cur = reference.dropna(), current.dropna()
    numeric = pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur) and \
        not pd.api.types.is_bool_dtype(ref)
    if numeric:  # counted in numpy over every value, drawn as two step outlines
        values = [v[np.isfinite(v)] for v in (ref.to_numpy(float), cur.to_numpy(float))]
        both = np.concatenate(values)
        edges = np.histogram_bin_edges(both, bins=30) if len(both) else np.linspace(0, 1, 11)
        for part, label in zip(values, ("reference", "current"), strict=True):
            if len(part):
                density, _ = np.histogram(part, bins=edges, density=True)
                ax.stairs(density, edges, fill=True, alpha=0.55, label=label)
    else:
        ref, cur = _sample(ref), _sample(cur)
        ref_share = as_categories(ref).value_counts(normalize=True)
        cur_share = as_categories(cur).value_counts(normalize=True)
        categories = sorted(set(ref_share.index) | set(cur_share.index))[:30]
        x = np.arange(len(categories))
        ax.bar(x - 0.2, ref_share.reindex(categories, fill_value=0), 0.4, label="reference")
        ax.bar(x + 0.2, cur_share.reindex(categories, fill_value=0), 0.4, label="current")
        ax.set_xticks(x, categories, rotation=30, ha="right")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def drift_plots(report: MonitorReport, out: Path) -> dict[tuple[str, str], str]:
    """One PNG per drifted column under ``out/plots``; (model, column) -> path relative to out."""
    written = {}
    for m in report.models:
        for column, (reference, current) in m.series.items():
            name = f"plots/{_safe(m.model)}-v{m.version}-{_safe(column_label(column))}.png"
            histogram(out / name, f"{m.model} v{m.version}: {column_label(column)}", reference,
                      current)
            written[(m.model, column)] = name
    return written
