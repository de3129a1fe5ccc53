"""The N-model leaderboard: models ranked by the mean of the primary metric over the matrix,
with diagonal, off-diagonal, per-query-language and per-document-language means, paired
significance between every two models, and one figure comparing them all.

Significance is marked as ranx's ``Report`` marks it: each model gets a letter (a, b, c, ...
in rank order) and its mean carries the superscript letters of the models it is
significantly better than. The test (``evaluation/significance.py``) is a two-sided paired
randomization test over per-query scores, each query weighted by 1 / (queries of its subset
and cell), so its statistic is exactly the difference of the leaderboard means (each
(subset, cell) counts once, as in the results table); p-values are corrected over the
model pairs (Holm by default).

API: :func:`build_leaderboard` (the computation), :func:`render_leaderboard` (markdown),
:func:`leaderboard_section` (both, one section per benchmark), :func:`draw_leaderboard` (the figure).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from nanobeir_ext.evaluation.metrics import PRIMARY_METRIC
from nanobeir_ext.evaluation.results import MEAN_SUBSET
from nanobeir_ext.evaluation.significance import SignificanceSettings, adjust, correction_name, paired_randomization_test
from nanobeir_ext.languages import ordered
from nanobeir_ext.reporting import figures
from nanobeir_ext.reporting.tables import format_fixed, format_p_value, format_signed, markdown_table

# ranx's labels (ranx/data_structures/report.py): letters and their superscripts, in model order.
LETTERS = "abcdefghijklmnopqrstuvwxyz"
SUPERSCRIPTS = "ᵃᵇᶜᵈᵉᶠᵍʰᶦʲᵏˡᵐⁿᵒᵖ۹ʳˢᵗᵘᵛʷˣʸᶻ"
SCOPES: tuple[str, ...] = ("mean", "diagonal", "off-diagonal")
_STRATUM = ["subset", "doc_lang", "query_lang"]
_QUERY_KEYS = ["benchmark", "subset", "doc_lang", "query_lang", "query_id"]


@dataclass(frozen=True)
class Leaderboard:
    """One benchmark's ranking. ``table``: index = model in rank order; columns ``letter``,
    ``n_cells``, ``mean``, ``diagonal``, ``off-diagonal``, ``query:<lang>``, ``doc:<lang>``.
    ``pairs``: model_a, model_b, n_queries, delta (a - b, weighted as the means), p_value,
    p_adjusted, significant, better (the significantly better model, or None)."""

    benchmark: str
    metric: str
    table: pd.DataFrame
    pairs: pd.DataFrame
    settings: SignificanceSettings
    notes: tuple[str, ...] = ()

    @property
    def models(self) -> list[str]:
        return list(self.table.index)

    def better_than(self, model: str) -> list[str]:
        """Models that ``model`` is significantly better than, in rank order."""
        beaten = set(self.pairs.loc[self.pairs["better"] == model, "model_a"]) | set(
            self.pairs.loc[self.pairs["better"] == model, "model_b"])
        return [m for m in self.models if m in beaten and m != model]

    def marks(self, model: str) -> str:
        """ranx's superscript letters of the models ``model`` is significantly better than."""
        return "".join(SUPERSCRIPTS[self.models.index(m)] for m in self.better_than(model))


def leaderboard_table(results: pd.DataFrame, metric: str = PRIMARY_METRIC) -> dict[str, pd.DataFrame]:
    """Per benchmark, the ranked means (no tests): each cell is a ``subset == "mean"`` row (the
    unweighted mean over subsets), each scope the unweighted mean of its cells. Only the cells
    every model has are used, so every model is ranked on the same ground."""
    rows = results[(results["subset"] == MEAN_SUBSET) & (results["metric"] == metric)]
    if rows.empty:
        raise ValueError(f"no {metric} rows with subset {MEAN_SUBSET!r} to rank models by")
    return {str(b): _ranked(part, _common_cells(part)) for b, part in rows.groupby("benchmark", sort=True)}


def build_leaderboard(results: pd.DataFrame, per_query: pd.DataFrame | None, settings: SignificanceSettings,
                      *, benchmark: str | None = None, metric: str = PRIMARY_METRIC) -> Leaderboard:
    """Rank the models of one benchmark and test every pair on their per-query scores."""
    tables = leaderboard_table(results, metric)
    if benchmark is None:
        if len(tables) != 1:
            raise ValueError(f"results hold several benchmarks {sorted(tables)}; name one")
        benchmark = next(iter(tables))
    if benchmark not in tables:
        raise KeyError(f"no {metric} results for benchmark {benchmark!r}; benchmarks: {sorted(tables)}")
    table, notes = tables[benchmark], []
    cells = _common_cells(results[(results["benchmark"] == benchmark) & (results["subset"] == MEAN_SUBSET)
                                  & (results["metric"] == metric)])
    excluded = _excluded_cells(results, benchmark, metric, cells)
    if excluded:
        notes.append(f"{excluded} cells that not every model has are left out of every mean.")
    pairs = _pair_tests(per_query, benchmark, table, cells, settings, notes)
    return Leaderboard(benchmark=benchmark, metric=metric, table=table, pairs=pairs, settings=settings,
                       notes=tuple(notes))


def render_leaderboard(board: Leaderboard, figure_path: Path | None = None) -> str:
    """Markdown: the ranking (ranx-style marks on the mean), per-language means, the pair tests."""
    t, s = board.table, board.settings
    tested = len(board.pairs) > 0 and board.pairs["p_value"].notna().any()
    lines = [f"## Leaderboard: {board.benchmark} ({board.metric})", ""]
    main = pd.DataFrame({"#": t["letter"], "model": t.index,
                         "mean": [format_fixed(v, 4) + board.marks(m) for m, v in zip(t.index, t["mean"])],
                         "diagonal": t["diagonal"].map(lambda v: format_fixed(v, 4)),
                         "off-diagonal": t["off-diagonal"].map(lambda v: format_fixed(v, 4)),
                         "cells": t["n_cells"].astype(int).astype(str)})
    main.insert(0, "rank", [str(i + 1) for i in range(len(t))])
    lines += [markdown_table(main, include_index=False, formatter=str), ""]
    if tested:
        lines += [f"Superscripts (as in ranx): the mean is significantly higher than that of the models with those "
                  f"letters (paired randomization test on per-query {s.metric}, {correction_name(s.correction)} over "
                  f"the {len(board.pairs)} model pair{'' if len(board.pairs) == 1 else 's'}, adjusted p < {s.alpha:g}).", ""]
    elif len(t) > 1:
        lines += ["No significance marks: per-query scores are missing.", ""]
    if figure_path is not None:
        lines += [f"![leaderboard]({Path(figure_path).as_posix()})", ""]
    for axis, title in (("query", "query language"), ("doc", "document language")):
        columns = [c for c in t.columns if c.startswith(f"{axis}:")]
        frame = t[columns].rename(columns=lambda c: c.split(":", 1)[1])
        lines += [f"### Mean {board.metric} per {title} (over the other language)", "",
                  markdown_table(frame, index_label="model", formatter=lambda v: format_fixed(v, 4)), ""]
    if tested:
        pairs = board.pairs
        shown = pd.DataFrame({"model a": pairs["model_a"], "model b": pairs["model_b"],
                              "queries": pairs["n_queries"].astype(int).astype(str),
                              "Δ (a − b)": pairs["delta"].map(lambda v: format_signed(v, 4)),
                              "p": pairs["p_value"].map(format_p_value),
                              "p (adj.)": pairs["p_adjusted"].map(format_p_value),
                              "better": pairs["better"].map(lambda m: m if isinstance(m, str) else "–")})
        lines += ["<details><summary>Pairwise tests</summary>", "",
                  markdown_table(shown, include_index=False, formatter=str), "", "</details>", ""]
    lines += [f"- Note: {note}" for note in board.notes]
    if board.notes:
        lines.append("")
    lines += [f"Means are unweighted over cells, each cell the unweighted mean over subsets. The paired test weights "
              f"each query by 1 / (queries of its subset and cell), so its statistic is the difference of the means "
              f"above; {s.n_resamples} sign patterns (exact enumeration when 2^n ≤ that), seed {s.seed}.", ""]
    return "\n".join(lines)


def leaderboard_section(results: pd.DataFrame, per_query: pd.DataFrame | None, settings: SignificanceSettings,
                        figure_paths: dict[str, Path] | None = None) -> str:
    """One leaderboard section per benchmark in ``results``; ``figure_paths``: benchmark -> figure link."""
    sections = []
    for benchmark in leaderboard_table(results):
        board = build_leaderboard(results, per_query, settings, benchmark=benchmark)
        sections.append(render_leaderboard(board, (figure_paths or {}).get(benchmark)))
    return "\n".join(sections)


def draw_leaderboard(results: pd.DataFrame, path: Path, *, benchmark: str | None = None,
                     metric: str = PRIMARY_METRIC) -> Path:
    """Dot plot, one row per model in rank order: mean, diagonal and off-diagonal side by side."""
    tables = leaderboard_table(results, metric)
    benchmark = benchmark or next(iter(tables))
    table = tables[benchmark]
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.45 * len(table)), dpi=120)
    y = np.arange(len(table))[::-1]
    for scope, marker in zip(SCOPES, ("o", "s", "^")):
        ax.scatter(table[scope].to_numpy(dtype=float), y, marker=marker, s=40, label=scope, zorder=3)
    for row, (_, values) in zip(y, table.iterrows()):
        span = [float(values[s]) for s in SCOPES if pd.notna(values[s])]
        ax.hlines(row, min(span), max(span), color="0.75", zorder=1)
    ax.set_yticks(y, [f"{letter}  {model}" for letter, model in zip(table["letter"], table.index)])
    ax.set_xlabel(metric)
    ax.set_title(f"{benchmark}: models ranked by mean {metric}", fontsize=10)
    ax.grid(axis="x", color="0.9")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return figures.save_figure(fig, Path(path))


def _common_cells(rows: pd.DataFrame) -> set[tuple[str, str]]:
    per_model = [set(zip(part["doc_lang"], part["query_lang"])) for _, part in rows.groupby("model", sort=True)]
    return set.intersection(*per_model) if per_model else set()


def _excluded_cells(results: pd.DataFrame, benchmark: str, metric: str, cells: set[tuple[str, str]]) -> int:
    rows = results[(results["benchmark"] == benchmark) & (results["subset"] == MEAN_SUBSET) & (results["metric"] == metric)]
    return len(set(zip(rows["doc_lang"], rows["query_lang"])) - cells)


def _ranked(rows: pd.DataFrame, cells: set[tuple[str, str]]) -> pd.DataFrame:
    keep = [(d, q) in cells for d, q in zip(rows["doc_lang"], rows["query_lang"])]
    rows = rows[keep]
    queries, docs = ordered(rows["query_lang"].unique()), ordered(rows["doc_lang"].unique())
    records = {}
    for model, part in rows.groupby("model", sort=True):
        diagonal = part["doc_lang"] == part["query_lang"]
        record = {"n_cells": len(part), "mean": part["value"].mean(),
                  "diagonal": part.loc[diagonal, "value"].mean() if diagonal.any() else np.nan,
                  "off-diagonal": part.loc[~diagonal, "value"].mean() if (~diagonal).any() else np.nan}
        record.update({f"query:{q}": part.loc[part["query_lang"] == q, "value"].mean() for q in queries})
        record.update({f"doc:{d}": part.loc[part["doc_lang"] == d, "value"].mean() for d in docs})
        records[str(model)] = record
    table = pd.DataFrame.from_dict(records, orient="index")
    # Highest mean first; the model name breaks ties so the order is deterministic.
    table = table.assign(_name=table.index).sort_values(["mean", "_name"], ascending=[False, True], kind="mergesort")
    table = table.drop(columns="_name")
    if len(table) > len(LETTERS):
        raise ValueError(f"the leaderboard labels models a-z: at most {len(LETTERS)} models, got {len(table)}")
    table.insert(0, "letter", list(LETTERS[:len(table)]))
    table.index.name = "model"
    return table


def _pair_tests(per_query: pd.DataFrame | None, benchmark: str, table: pd.DataFrame, cells: set[tuple[str, str]],
                settings: SignificanceSettings, notes: list[str]) -> pd.DataFrame:
    columns = ["model_a", "model_b", "n_queries", "delta", "p_value", "p_adjusted", "significant", "better"]
    models = list(table.index)
    if len(models) < 2:
        return pd.DataFrame(columns=columns)
    scores = None if per_query is None else per_query[(per_query["metric"] == settings.metric)
                                                      & (per_query["benchmark"] == benchmark)]
    if scores is None or scores.empty:
        notes.append(f"no per-query {settings.metric} scores: models are ranked but not tested.")
        return pd.DataFrame(columns=columns)
    keep = [(d, q) in cells for d, q in zip(scores["doc_lang"], scores["query_lang"])]
    by_model = {m: part.set_index(_QUERY_KEYS)["value"] for m, part in scores[keep].groupby("model", sort=True)}
    rows = []
    for a, b in combinations(models, 2):
        if a not in by_model or b not in by_model:
            notes.append(f"no per-query scores for {a if a not in by_model else b}: pair ({a}, {b}) not tested.")
            continue
        both = pd.concat({"a": by_model[a], "b": by_model[b]}, axis=1, join="inner").reset_index()
        if len(both) < max(len(by_model[a]), len(by_model[b])):
            notes.append(f"({a}, {b}): tested on the {len(both)} queries both models have.")
        # Each (subset, cell) weighs the same, whatever its number of queries: the statistic is then
        # exactly the difference of the leaderboard means.
        weights = 1.0 / both.groupby(_STRATUM, observed=True)["a"].transform("size").to_numpy()
        p_value, delta = paired_randomization_test(both["a"].to_numpy(), both["b"].to_numpy(),
                                                   n_resamples=settings.n_resamples, seed=settings.seed,
                                                   weights=weights)
        rows.append({"model_a": a, "model_b": b, "n_queries": len(both), "delta": delta, "p_value": p_value})
    pairs = pd.DataFrame(rows, columns=["model_a", "model_b", "n_queries", "delta", "p_value"])
    pairs["p_adjusted"] = adjust(pairs["p_value"].to_numpy(), settings.correction) if len(pairs) else []
    pairs["significant"] = pairs["p_adjusted"] < settings.alpha
    pairs["better"] = [(a if d > 0 else b) if sig and d != 0 else None
                       for a, b, d, sig in zip(pairs["model_a"], pairs["model_b"], pairs["delta"], pairs["significant"])]
    return pairs[columns]
