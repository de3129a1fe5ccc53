"""The run report: markdown tables in the model card's orientation, plus heatmaps.

Everything renders from the long results table. Each matrix (model, subset) and each delta
against the baseline model is built once (:func:`report_tables`), and both the markdown and
the figures render from those. With two or more models the report opens with the leaderboard
(``reporting/leaderboard.py``: ranking, ranx-style significance marks from the per-query
scores, one figure); the per-model matrices follow.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nanobeir_ext.atomic import write_text
from nanobeir_ext.evaluation.metrics import PRIMARY_METRIC
from nanobeir_ext.evaluation.significance import SignificanceSettings
from nanobeir_ext.evaluation.results import (MEAN_SUBSET, delta_matrix, matrix, models_of, subsets_of, summarize,
                                             with_averages)
from nanobeir_ext.protocol import ModelLabel, slug
from nanobeir_ext.reporting import figures
from nanobeir_ext.reporting.leaderboard import draw_leaderboard, leaderboard_section, leaderboard_table
from nanobeir_ext.reporting.tables import format_fixed, format_number, format_percent, format_signed, markdown_table


@dataclass(frozen=True)
class ReportContext:
    benchmark: str
    models: tuple[ModelLabel, ...]
    baseline_model: str | None = None
    title: str = "nanobeir-ext evaluation"
    data_notes: tuple[str, ...] = ()
    run_notes: tuple[str, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = ()  # data lost or missing: shown first, loudly
    data_counts: pd.DataFrame | None = None  # what the data rules did per (subset, cell) (pipeline.data_counts)
    expected_subsets: tuple[str, ...] = ()  # what the averages should cover; () = whatever any model has
    expected_cells: tuple[tuple[str, str], ...] = ()  # (doc_lang, query_lang)
    per_query: pd.DataFrame | None = None  # per-query scores: the leaderboard's significance tests
    significance: SignificanceSettings = field(default_factory=SignificanceSettings)


LEADERBOARD_FIGURE = "leaderboard:"  # figure_paths key prefix, followed by the benchmark


def has_leaderboard(results: pd.DataFrame) -> bool:
    """A leaderboard ranks two or more models."""
    return len(models_of(results)) >= 2 and bool(((results["subset"] == MEAN_SUBSET)
                                                  & (results["metric"] == PRIMARY_METRIC)).any())


@dataclass(frozen=True)
class ReportTables:
    """The primary metric's matrices, built once: per (model, subset) (``MEAN_SUBSET`` = the
    mean over subsets) and, when the baseline model is in the results, each other model's delta."""

    matrices: dict[tuple[str, str], pd.DataFrame]
    deltas: dict[str, pd.DataFrame]


def report_tables(results: pd.DataFrame, baseline_model: str | None) -> ReportTables:
    models = models_of(results)
    present = set(map(tuple, results[results["metric"] == PRIMARY_METRIC][["model", "subset"]]
                      .drop_duplicates().itertuples(index=False, name=None)))
    matrices = {(model, subset): matrix(results, model, PRIMARY_METRIC, subset)
                for model in models for subset in (MEAN_SUBSET, *subsets_of(results)) if (model, subset) in present}
    deltas = ({model: delta_matrix(results, model, baseline_model, PRIMARY_METRIC)
               for model in models if model != baseline_model and (model, MEAN_SUBSET) in present}
              if (baseline_model, MEAN_SUBSET) in present else {})
    return ReportTables(matrices=matrices, deltas=deltas)


@dataclass(frozen=True)
class Coverage:
    """What one model's averages cover: cells, and subsets per cell."""

    cells: tuple[tuple[str, str], ...]
    subsets: tuple[str, ...]
    subsets_per_cell: dict[tuple[str, str], int]
    expected_cells: tuple[tuple[str, str], ...]
    expected_subsets: tuple[str, ...]

    def missing_cells(self) -> list[tuple[str, str]]:
        return [c for c in self.expected_cells if c not in self.cells]

    def missing_subsets(self) -> list[str]:
        return [s for s in self.expected_subsets if s not in self.subsets]

    def describe(self) -> str:
        cells, expected = len(self.cells), len(self.expected_cells)
        text = f"averages cover {cells} of {expected} cells and {len(self.subsets)} of {len(self.expected_subsets)} subsets"
        short = {cell: n for cell, n in self.subsets_per_cell.items() if n < len(self.expected_subsets)}
        if short:
            text += (f"; {len(short)} cells average fewer subsets ("
                     + ", ".join(f"{d}-{q}: {n}" for (d, q), n in list(short.items())[:8])
                     + (" ..." if len(short) > 8 else "") + ")")
        return text


def coverage(results: pd.DataFrame, model: str, context: ReportContext) -> Coverage:
    rows = results[(results["metric"] == PRIMARY_METRIC) & (results["subset"] != MEAN_SUBSET)]
    every_cell = tuple(dict.fromkeys(zip(rows["doc_lang"], rows["query_lang"])))
    own = rows[rows["model"] == model]
    per_cell = own.groupby(["doc_lang", "query_lang"], observed=True)["subset"].nunique()
    return Coverage(cells=tuple(per_cell.index), subsets=tuple(sorted(own["subset"].unique())),
                    subsets_per_cell={cell: int(n) for cell, n in per_cell.items()},
                    expected_cells=context.expected_cells or every_cell,
                    expected_subsets=context.expected_subsets or tuple(subsets_of(results)))


def coverage_warnings(results: pd.DataFrame, context: ReportContext) -> list[str]:
    """Models whose averages miss cells or subsets the run should cover."""
    found = []
    for model in models_of(results):
        cover = coverage(results, model, context)
        missing_subsets, missing_cells = cover.missing_subsets(), cover.missing_cells()
        if missing_subsets:
            found.append(f"{model} has no results for subsets {missing_subsets}: its averages are over "
                         f"{len(cover.subsets)} of {len(cover.expected_subsets)} subsets")
        if missing_cells:
            found.append(f"{model} has no results for {len(missing_cells)} cells "
                         f"({', '.join(f'{d}-{q}' for d, q in missing_cells[:8])}{' ...' if len(missing_cells) > 8 else ''})")
    return found


def _card_table(table: pd.DataFrame) -> str:
    """Cells as 0.xxx, averages as percentages, like the model card."""
    shown = with_averages(table).astype(object)
    for col in shown.columns:
        for idx in shown.index:
            v = shown.at[idx, col]
            shown.at[idx, col] = (format_percent(v, missing="") if col == "AVG" or idx == "AVG"
                                  else format_fixed(v, missing=""))
    return markdown_table(shown, index_label="Doc \\ Query", formatter=str)


def _summary_line(table: pd.DataFrame) -> str:
    s = summarize(table)
    parts = [f"mean of {s.n_cells} cells {format_number(s.all_cells, 4)}"]
    if s.diagonal is not None:
        parts.append(f"diagonal (same language) {format_number(s.diagonal, 4)}")
    if s.off_diagonal is not None:
        parts.append(f"off-diagonal (cross-lingual) {format_number(s.off_diagonal, 4)}")
    return "; ".join(parts)


def _metric_overview(results: pd.DataFrame) -> pd.DataFrame:
    mean_rows = results[results["subset"] == MEAN_SUBSET]
    overview = mean_rows.groupby(["metric", "model"], observed=True)["value"].mean().unstack("model")
    return overview.sort_index()


def _subset_overview(results: pd.DataFrame, tables: ReportTables) -> pd.DataFrame:
    rows = {}
    for model in models_of(results):
        for subset in subsets_of(results):
            if (model, subset) not in tables.matrices:
                continue
            s = summarize(tables.matrices[(model, subset)])
            rows[(subset, model, s.n_cells)] = {"all cells": s.all_cells, "diagonal": s.diagonal,
                                                "off-diagonal": s.off_diagonal}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index = [f"{subset} / {model} ({cells} cells)" for subset, model, cells in frame.index]
    return frame


def render_report(results: pd.DataFrame, context: ReportContext, figure_paths: dict[str, Path] | None = None, *,
                  tables: ReportTables | None = None) -> str:
    metric = PRIMARY_METRIC
    tables = tables or report_tables(results, context.baseline_model)
    labels = {m.name: m for m in context.models}
    lines = [f"# {context.title}", ""]
    warnings = [*context.warnings, *coverage_warnings(results, context)]
    if warnings:
        lines += ["> **Warning: data missing from these results.**", ">"]
        lines += [f"> - {warning}" for warning in warnings] + [""]
    lines.append(f"Benchmark: **{context.benchmark}**; subsets: {', '.join(subsets_of(results))}. "
                 f"Primary metric: {metric} (pytrec_eval), mean over subsets; "
                 "rows = document language, columns = query language, as on the LFM2-ColBERT-350M model card.")
    lines.append("")
    random_models = [m.name for m in context.models if m.weights not in ("real", "lexical")]  # BM25: no weights
    if random_models:
        lines += [f"> **Random-init weights** ({', '.join(random_models)}): these numbers exercise the pipeline "
                  "and say nothing about the real models.", ""]
    lines += ["## Models", ""]
    lines += [f"- **{m.name}**: {m.describe()}" for m in context.models] + [""]
    if has_leaderboard(results):
        boards = {key[len(LEADERBOARD_FIGURE):]: path for key, path in (figure_paths or {}).items()
                  if key.startswith(LEADERBOARD_FIGURE)}
        lines += [leaderboard_section(results, context.per_query, context.significance, boards)]
    for model in models_of(results):
        if (model, MEAN_SUBSET) not in tables.matrices:
            continue
        table = tables.matrices[(model, MEAN_SUBSET)]
        lines += [f"## {model}: {metric}", ""]
        if model in labels:
            lines += [labels[model].describe(), ""]
        lines += [_card_table(table), "", _summary_line(table) + f"; {coverage(results, model, context).describe()}", ""]
        if figure_paths and model in figure_paths:
            lines += [f"![{model} heatmap]({figure_paths[model].as_posix()})", ""]
    baseline = context.baseline_model
    for model, delta in tables.deltas.items():
        lines += [f"## Delta: {model} minus {baseline} ({metric})", ""]
        lines += [markdown_table(with_averages(delta), index_label="Doc \\ Query",
                                 formatter=lambda v: format_signed(v, missing="")), ""]
        lines += [_summary_line(delta).replace("mean", "mean delta", 1), ""]
        key = f"delta:{model}"
        if figure_paths and key in figure_paths:
            lines += [f"![delta heatmap]({figure_paths[key].as_posix()})", ""]
    if baseline and baseline not in models_of(results):
        lines += [f"_Baseline model {baseline!r} is not in this run: no delta table._", ""]
    lines += [f"## Per subset ({metric})", "", "Each row averages the number of cells it names.", "",
              markdown_table(_subset_overview(results, tables), index_label="subset / model"), ""]
    for model in models_of(results):
        for subset in subsets_of(results):
            if (model, subset) not in tables.matrices:
                continue
            lines += [f"<details><summary>{model} on {subset}</summary>", "",
                      _card_table(tables.matrices[(model, subset)]), "", "</details>", ""]
    lines += ["## All metrics (mean over cells and subsets)", "", markdown_table(_metric_overview(results), index_label="metric"), ""]
    lines += [f"- {model}: {coverage(results, model, context).describe()}" for model in models_of(results)] + [""]
    if context.data_notes:
        lines += ["## Data", ""] + [f"- {note}" for note in context.data_notes] + [""]
    if context.data_counts is not None and len(context.data_counts):
        counts = context.data_counts.set_index(["subset", "doc_lang", "query_lang"])
        counts.index = [f"{s} {d}-{q}" for s, d, q in counts.index]
        lines += ["<details><summary>What the empty-text rule touched, per subset and cell "
                  f"({len(counts)} cells)</summary>", "",
                  markdown_table(counts, index_label="subset doc-query", formatter=lambda v: str(int(v))), "",
                  "</details>", ""]
    if context.run_notes:
        lines += ["## Run", ""] + [f"- {note}" for note in context.run_notes] + [""]
    return "\n".join(lines)


def draw_figures(results: pd.DataFrame, context: ReportContext, figures_dir: Path, *,
                 tables: ReportTables | None = None) -> dict[str, Path]:
    """One heatmap per model, one per delta against the baseline and, with two or more models, one
    leaderboard figure per benchmark; returns paths by key."""
    metric = PRIMARY_METRIC
    tables = tables or report_tables(results, context.baseline_model)
    labels = {m.name: m for m in context.models}
    paths: dict[str, Path] = {}
    for model in models_of(results):
        if (model, MEAN_SUBSET) not in tables.matrices:
            continue
        label = labels.get(model)
        subtitle = f"{context.benchmark}, {label.weights} weights, {label.dtype} on {label.device}" if label else context.benchmark
        paths[model] = figures.heatmap(tables.matrices[(model, MEAN_SUBSET)], figures_dir / f"heatmap_{slug(model)}.png",
                                       title=f"{model}: {metric}", subtitle=subtitle)
    if has_leaderboard(results):
        for benchmark in leaderboard_table(results):
            paths[f"{LEADERBOARD_FIGURE}{benchmark}"] = draw_leaderboard(
                results, figures_dir / f"leaderboard_{slug(benchmark)}.png", benchmark=benchmark)
    baseline = context.baseline_model
    for model, delta in tables.deltas.items():
        paths[f"delta:{model}"] = figures.heatmap(
            delta, figures_dir / f"delta_{slug(model)}_vs_{slug(baseline)}.png",
            title=f"{model} minus {baseline}: {metric}", subtitle=context.benchmark, diverging=True,
            value_format="{:+.3f}")
    return paths


def write_report(results: pd.DataFrame, context: ReportContext, out_dir: Path, *, figures_enabled: bool = True) -> Path:
    """Write ``report.md`` (and ``figures/*.png``) into ``out_dir``; figure links are relative."""
    out_dir = Path(out_dir)
    tables = report_tables(results, context.baseline_model)
    paths = draw_figures(results, context, out_dir / "figures", tables=tables) if figures_enabled else {}
    relative = {k: p.relative_to(out_dir) for k, p in paths.items()}
    return write_text(out_dir / "report.md", render_report(results, context, relative, tables=tables))
