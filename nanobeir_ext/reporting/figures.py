"""Matplotlib figures (Agg backend: no display needed)."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def heatmap(table: pd.DataFrame, path: Path, *, title: str, subtitle: str = "", diverging: bool = False,
            value_format: str = "{:.3f}") -> Path:
    """An annotated doc-language x query-language heatmap; ``diverging`` centres the colours on 0."""
    values = table.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * table.shape[1], 1.3 + 0.6 * table.shape[0]), dpi=120)
    if diverging:
        bound = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
        bound = bound or 1.0
        image = ax.imshow(values, cmap="RdBu", vmin=-bound, vmax=bound)
    else:
        image = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=max(1e-9, float(np.nanmax(values))))
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(table.shape[0]), [str(i) for i in table.index])
    ax.set_xlabel("query language")
    ax.set_ylabel("document language")
    ax.set_title(title + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    norm_values = image.norm(values)
    for (i, j), v in np.ndenumerate(values):
        if np.isnan(v):
            continue
        # Dark text on light cells, light text on dark ones.
        rgba = image.cmap(norm_values[i, j])
        luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
        ax.text(j, i, value_format.format(v), ha="center", va="center", fontsize=7,
                color="black" if luminance > 0.5 else "white")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig: "plt.Figure", path: Path) -> Path:
    """Save atomically (temp file + rename) and close the figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fig.savefig(tmp, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    os.replace(tmp, path)
    return path
