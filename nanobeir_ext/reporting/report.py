"""The run report: markdown tables in the model card's orientation, plus heatmaps.

Everything renders from the long results table. Each matrix (model, subset) and each delta
against the baseline model is built once (:func:`report_tables`), and both the markdown and
the figures render from those.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nanobeir_ext.atomic import write_text
from nanobeir_ext.evaluation.metrics import PRIMARY_METRIC
from nanobeir_ext.evaluation.results import (MEAN_SUBSET, delta_matrix, matrix, models_of, subsets_of, summarize,
                                             with_averages)
from nanobeir_ext.protocol import ModelLabel, slug
from nanobeir_ext.reporting import figures
from nanobeir_ext.reporting.tables import format_fixed, format_number, format_percent, format_signed, markdown_table


@dataclass(frozen=True)
class ReportContext:
    benchmark: str
    models: tuple[ModelLabel, ...]
    baseline_model: str | None = None
    title: str = "nanobeir-ext evaluation"
    data_notes: tuple[str, ...] = ()
    run_notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ReportTables:
    """The primary metric's matrices, built once: per (model, subset) (``MEAN_SUBSET`` = the
    mean over subsets) and, when the baseline model is in the results, each other model's delta."""

    matrices: dict[tuple[str, str], pd.DataFrame]
    deltas: dict[str, pd.DataFrame]


def report_tables(results: pd.DataFrame, baseline_model: str | None) -> ReportTables:
    models = models_of(results)
    matrices = {(model, subset): matrix(results, model, PRIMARY_METRIC, subset)
                for model in models for subset in (MEAN_SUBSET, *subsets_of(results))}
    deltas = ({model: delta_matrix(results, model, baseline_model, PRIMARY_METRIC)
               for model in models if model != baseline_model} if baseline_model in models else {})
    return ReportTables(matrices=matrices, deltas=deltas)


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
            s = summarize(tables.matrices[(model, subset)])
            rows[(subset, model)] = {"all cells": s.all_cells, "diagonal": s.diagonal, "off-diagonal": s.off_diagonal}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index = [f"{subset} / {model}" for subset, model in frame.index]
    return frame


def render_report(results: pd.DataFrame, context: ReportContext, figure_paths: dict[str, Path] | None = None, *,
                  tables: ReportTables | None = None) -> str:
    metric = PRIMARY_METRIC
    tables = tables or report_tables(results, context.baseline_model)
    labels = {m.name: m for m in context.models}
    lines = [f"# {context.title}", ""]
    lines.append(f"Benchmark: **{context.benchmark}**; subsets: {', '.join(subsets_of(results))}. "
                 f"Primary metric: {metric} (pytrec_eval), mean over subsets; "
                 "rows = document language, columns = query language, as on the LFM2-ColBERT-350M model card.")
    lines.append("")
    random_models = [m.name for m in context.models if m.weights != "real"]
    if random_models:
        lines += [f"> **Random-init weights** ({', '.join(random_models)}): these numbers exercise the pipeline "
                  "and say nothing about the real models.", ""]
    lines += ["## Models", ""]
    lines += [f"- **{m.name}**: {m.describe()}" for m in context.models] + [""]
    for model in models_of(results):
        table = tables.matrices[(model, MEAN_SUBSET)]
        lines += [f"## {model}: {metric}", ""]
        if model in labels:
            lines += [labels[model].describe(), ""]
        lines += [_card_table(table), "", _summary_line(table), ""]
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
    lines += [f"## Per subset ({metric})", "", markdown_table(_subset_overview(results, tables),
                                                             index_label="subset / model"), ""]
    for model in models_of(results):
        for subset in subsets_of(results):
            lines += [f"<details><summary>{model} on {subset}</summary>", "",
                      _card_table(tables.matrices[(model, subset)]), "", "</details>", ""]
    lines += ["## All metrics (mean over cells and subsets)", "", markdown_table(_metric_overview(results), index_label="metric"), ""]
    if context.data_notes:
        lines += ["## Data", ""] + [f"- {note}" for note in context.data_notes] + [""]
    if context.run_notes:
        lines += ["## Run", ""] + [f"- {note}" for note in context.run_notes] + [""]
    return "\n".join(lines)


def draw_figures(results: pd.DataFrame, context: ReportContext, figures_dir: Path, *,
                 tables: ReportTables | None = None) -> dict[str, Path]:
    """One heatmap per model and one per delta against the baseline; returns paths by key."""
    metric = PRIMARY_METRIC
    tables = tables or report_tables(results, context.baseline_model)
    labels = {m.name: m for m in context.models}
    paths: dict[str, Path] = {}
    for model in models_of(results):
        label = labels.get(model)
        subtitle = f"{context.benchmark}, {label.weights} weights, {label.dtype} on {label.device}" if label else context.benchmark
        paths[model] = figures.heatmap(tables.matrices[(model, MEAN_SUBSET)], figures_dir / f"heatmap_{slug(model)}.png",
                                       title=f"{model}: {metric}", subtitle=subtitle)
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
