"""The long results table every report renders from, and its pivots.

Long format, one row per value: ``model, benchmark, subset, doc_lang, query_lang, metric, value``.
Rows with ``subset == "mean"`` are the unweighted mean over subsets (the model card's
convention: each NanoBEIR subset counts once, whatever its number of queries).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from nanobeir_ext.evaluation.metrics import PRIMARY_METRIC
from nanobeir_ext.languages import ordered

RESULT_COLUMNS: tuple[str, ...] = ("model", "benchmark", "subset", "doc_lang", "query_lang", "metric", "value")
PER_QUERY_COLUMNS: tuple[str, ...] = ("model", "benchmark", "subset", "doc_lang", "query_lang", "query_id", "metric", "value")
MEAN_SUBSET = "mean"
AVG = "AVG"
_KEYS = ["model", "benchmark", "subset", "doc_lang", "query_lang", "metric"]


def sort_long(frame: pd.DataFrame) -> pd.DataFrame:
    """Deterministic row order (so the same run writes byte-identical files)."""
    keys = [c for c in frame.columns if c != "value"]
    return frame.sort_values(keys, kind="mergesort").reset_index(drop=True)


def results_from_per_query(per_query: pd.DataFrame) -> pd.DataFrame:
    """Mean over queries per subset and cell, plus ``subset == "mean"`` rows (mean over subsets)."""
    missing = set(PER_QUERY_COLUMNS) - set(per_query.columns)
    if missing:
        raise ValueError(f"per-query table lacks columns {sorted(missing)}")
    by_subset = per_query.groupby(_KEYS, sort=True, observed=True)["value"].mean().reset_index()
    over_subsets = (
        by_subset.groupby([k for k in _KEYS if k != "subset"], sort=True, observed=True)["value"].mean().reset_index()
    )
    over_subsets.insert(2, "subset", MEAN_SUBSET)
    out = pd.concat([by_subset, over_subsets], ignore_index=True)[list(RESULT_COLUMNS)]
    return sort_long(out)


def models_of(results: pd.DataFrame) -> list[str]:
    return sorted(results["model"].unique().tolist())


def subsets_of(results: pd.DataFrame) -> list[str]:
    return sorted(s for s in results["subset"].unique().tolist() if s != MEAN_SUBSET)


def matrix(results: pd.DataFrame, model: str, metric: str = PRIMARY_METRIC, subset: str = MEAN_SUBSET) -> pd.DataFrame:
    """Rows = document language, columns = query language (the model card's "Doc / Query")."""
    rows = results[(results["model"] == model) & (results["metric"] == metric) & (results["subset"] == subset)]
    if rows.empty:
        raise KeyError(f"no {metric} values for model {model!r}, subset {subset!r}")
    table = rows.pivot_table(index="doc_lang", columns="query_lang", values="value", aggfunc="first")
    table = table.reindex(index=list(ordered(table.index)), columns=list(ordered(table.columns)))
    table.index.name, table.columns.name = "doc_lang", "query_lang"
    return table


def with_averages(table: pd.DataFrame) -> pd.DataFrame:
    """Add the card's row AVG (mean over query languages) and column AVG (mean over document languages)."""
    out = table.copy()
    out[AVG] = table.mean(axis=1)
    out.loc[AVG] = list(table.mean(axis=0)) + [float("nan")]
    return out


@dataclass(frozen=True)
class MatrixSummary:
    all_cells: float
    diagonal: float | None
    off_diagonal: float | None
    n_cells: int


def summarize(table: pd.DataFrame) -> MatrixSummary:
    """Means over all cells, the diagonal (same language) and the off-diagonal (cross-lingual)."""
    values, diag, off = [], [], []
    for doc in table.index:
        for query in table.columns:
            v = table.at[doc, query]
            if pd.isna(v):
                continue
            values.append(float(v))
            (diag if doc == query else off).append(float(v))
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return MatrixSummary(all_cells=mean(values) or 0.0, diagonal=mean(diag), off_diagonal=mean(off), n_cells=len(values))


def delta_matrix(results: pd.DataFrame, model: str, baseline: str, metric: str = PRIMARY_METRIC,
                 subset: str = MEAN_SUBSET) -> pd.DataFrame:
    """``model`` minus ``baseline``, cell by cell."""
    return matrix(results, model, metric, subset) - matrix(results, baseline, metric, subset)


def combine(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate result tables of separate jobs; the same key twice with different values is an error."""
    if not frames:
        raise ValueError("no result tables to combine")
    keys = [c for c in frames[0].columns if c != "value"]
    merged = pd.concat(frames, ignore_index=True)
    dup = merged[merged.duplicated(keys, keep=False)]
    conflicting = dup.groupby(keys, observed=True)["value"].nunique()
    conflicting = conflicting[conflicting > 1]
    if len(conflicting):
        first = conflicting.index[0]
        raise ValueError(f"{len(conflicting)} result keys appear in several runs with different values, e.g. {first}")
    return sort_long(merged.drop_duplicates(keys))
