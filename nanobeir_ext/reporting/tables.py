"""Plain-text renderings of DataFrames (markdown pipes) without extra dependencies."""
from __future__ import annotations

import math
from typing import Callable

import pandas as pd

Formatter = Callable[[object], str]


def format_number(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(frame: pd.DataFrame, *, index_label: str | None = None, formatter: Formatter | None = None,
                   include_index: bool = True) -> str:
    """Render a DataFrame as a GitHub markdown table (index as the first column)."""
    fmt = formatter or format_number
    header = ([index_label if index_label is not None else (frame.index.name or "")] if include_index else [])
    header += [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for label, row in frame.iterrows():
        cells = ([str(label)] if include_index else []) + [fmt(v) for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
