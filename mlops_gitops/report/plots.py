"""PNG plots for the report, drawn locally with matplotlib's Agg backend (no display, no upload
service) from the recorded results: confusion matrices, residual histograms, metric by slice."""

from __future__ import annotations

from pathlib import Path

DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def confusion_matrices(path: Path, title: str, panels: list[tuple[str, dict]]) -> Path:
    """One heat map per model (label, {"labels", "matrix"}), side by side."""
    import numpy as np

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), squeeze=False)
    for ax, (label, confusion) in zip(axes[0], panels, strict=True):
        matrix = np.asarray(confusion["matrix"])
        labels = confusion["labels"]
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(label)
        top = matrix.max() if matrix.size else 0
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center",
                    color="white" if top and count > top / 2 else "black")
    fig.suptitle(title)
    return _save(fig, path)


def residual_histograms(path: Path, title: str, panels: list[tuple[str, dict]]) -> Path:
    """Residuals (true - predicted) of each model on shared bins, overlaid."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, histogram in panels:
        edges = np.asarray(histogram["edges"])
        ax.stairs(histogram["counts"], edges, label=label, fill=False, linewidth=2)
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_xlabel("residual (true - predicted)")
    ax.set_ylabel("test rows")
    ax.legend()
    ax.set_title(title)
    return _save(fig, path)


def metric_by_slice(path: Path, title: str, metric: str, labels: list[str],
                    series: list[tuple[str, list[float | None]]],
                    bounds: tuple[float | None, float | None] = (None, None)) -> Path:
    """Grouped bars: the metric on each slice for each series (a missing value is no bar)."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(labels) * max(1, len(series))), 3.6))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(labels))
    for i, (name, values) in enumerate(series):
        heights = [np.nan if v is None else v for v in values]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width, label=name)
    for bound, style in zip(bounds, ("--", ":"), strict=True):
        if bound is not None:
            ax.axhline(bound, color="red", linestyle=style, linewidth=1,
                       label=f"{'min' if style == '--' else 'max'} {bound:g}")
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend(fontsize="small")
    return _save(fig, path)
