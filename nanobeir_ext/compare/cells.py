"""What a comparison calls a cell, the keys it pairs rows on, and the scopes its means run over.

A *cell* is one (model, benchmark, doc_lang, query_lang) of the ``subset == "mean"`` rows.
"""
from __future__ import annotations

import pandas as pd

CELL_KEYS = ["model", "benchmark", "doc_lang", "query_lang"]
RESULT_KEYS = ["model", "benchmark", "subset", "doc_lang", "query_lang", "metric"]
QUERY_KEYS = ["model", "benchmark", "subset", "doc_lang", "query_lang", "query_id"]
EXAMPLES = 5  # keys quoted in an error or a coverage problem


def by_scope(cells: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The cells of each scope a mean is reported over: all, same language, cross-lingual."""
    diagonal = cells["doc_lang"] == cells["query_lang"]
    return {"all": cells, "diagonal": cells[diagonal], "off-diagonal": cells[~diagonal]}


def key_text(row: pd.Series, keys: list[str]) -> str:
    return "(" + ", ".join(f"{k}={row[k]}" for k in keys) + ")"
