"""Matplotlib figures, saved atomically.

Matplotlib is imported only when a figure is drawn (:func:`pyplot`), and the headless Agg
backend is chosen there, once for the whole harness: importing a reporting module for its
tables never touches matplotlib.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nanobeir_ext.atomic import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@cache
def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def heatmap(table: pd.DataFrame, path: Path, *, title: str, subtitle: str = "", diverging: bool = False,
            value_format: str = "{:.3f}") -> Path:
    """An annotated doc-language x query-language heatmap; ``diverging`` centres the colours on 0."""
    values = table.to_numpy(dtype=float)
    fig, ax = pyplot().subplots(figsize=(1.0 + 0.75 * table.shape[1], 1.3 + 0.6 * table.shape[0]), dpi=120)
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


def save_figure(fig: Figure, path: Path) -> Path:
    """Save atomically (temp file + rename; no partial file on a failed save) and close the figure."""
    try:
        with atomic_path(Path(path)) as tmp:
            fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png")
    finally:
        pyplot().close(fig)
    return Path(path)
