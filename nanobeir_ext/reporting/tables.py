"""Plain-text renderings of DataFrames (markdown pipes) and the one set of number formatters
every report uses (run report, comparison reports, latency report)."""
from __future__ import annotations

from typing import Callable

import pandas as pd

Formatter = Callable[[object], str]
MISSING = "–"  # how an absent value (None, NaN) is shown


def is_missing(value: object) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def format_number(value: object, digits: int = 3) -> str:
    """Integers as they are, floats with ``digits`` decimals, anything else as text."""
    if is_missing(value):
        return MISSING
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_fixed(value: object, digits: int = 3, *, missing: str = MISSING) -> str:
    """Any number as a float with ``digits`` decimals: ``0.663``."""
    return missing if is_missing(value) else f"{float(value):.{digits}f}"


def format_signed(value: object, digits: int = 3, *, missing: str = MISSING) -> str:
    """A difference, always signed: ``+0.012``, ``-0.200``."""
    return missing if is_missing(value) else f"{float(value):+.{digits}f}"


def format_percent(value: object, digits: int = 2, *, missing: str = MISSING) -> str:
    """A fraction as a percentage: ``0.5123`` -> ``51.23%`` (the model card's averages)."""
    return missing if is_missing(value) else f"{100 * float(value):.{digits}f}%"


def format_p_value(value: object) -> str:
    """Four decimals, or scientific notation below 1e-4 so a tiny p-value never reads as 0."""
    if is_missing(value):
        return MISSING
    return f"{float(value):.4f}" if float(value) >= 1e-4 else f"{float(value):.1e}"


def format_magnitude(value: object) -> str:
    """Measurements of any size: thousands separators from 10,000 (counts) and from 100 (floats),
    three significant digits below 1, two decimals in between."""
    if isinstance(value, float) and value.is_integer():  # counts upcast to float by a numeric row
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if value < 1 else f"{value:.2f}"
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
