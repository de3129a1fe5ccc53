"""The run report: markdown tables in the model card's orientation, plus heatmaps.

Everything here renders from the long results table; nothing is computed twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nanobeir_ext.reporting import figures
from nanobeir_ext.atomic import write_text
from nanobeir_ext.protocol import ModelLabel, slug
from nanobeir_ext.evaluation.results import MEAN_SUBSET, matrix, models_of, subsets_of, summarize, with_averages
from nanobeir_ext.reporting.tables import format_number, markdown_table


@dataclass(frozen=True)
class ReportContext:
    benchmark: str
    models: tuple[ModelLabel, ...]
    baseline_model: str | None = None
    primary_metric: str = "ndcg@10"
    title: str = "nanobeir-ext evaluation"
    data_notes: tuple[str, ...] = ()
    run_notes: tuple[str, ...] = field(default_factory=tuple)


def _pct(value: object) -> str:
    return "–" if value is None or pd.isna(value) else f"{100 * float(value):.2f}%"


def _card_table(table: pd.DataFrame) -> str:
    """Cells as 0.xxx, averages as percentages, like the model card."""
    shown = with_averages(table).astype(object)
    for col in shown.columns:
        for idx in shown.index:
            v = shown.at[idx, col]
            shown.at[idx, col] = _pct(v) if (col == "AVG" or idx == "AVG") and not pd.isna(v) else (
                "" if pd.isna(v) else f"{float(v):.3f}")
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


def _subset_overview(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    rows = {}
    for model in models_of(results):
        for subset in subsets_of(results):
            s = summarize(matrix(results, model, metric, subset))
            rows[(subset, model)] = {"all cells": s.all_cells, "diagonal": s.diagonal, "off-diagonal": s.off_diagonal}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index = [f"{subset} / {model}" for subset, model in frame.index]
    return frame


def render_report(results: pd.DataFrame, context: ReportContext, figure_paths: dict[str, Path] | None = None) -> str:
    metric = context.primary_metric
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
        table = matrix(results, model, metric)
        lines += [f"## {model}: {metric}", ""]
        if model in labels:
            lines += [labels[model].describe(), ""]
        lines += [_card_table(table), "", _summary_line(table), ""]
        if figure_paths and model in figure_paths:
            lines += [f"![{model} heatmap]({figure_paths[model].as_posix()})", ""]
    baseline = context.baseline_model
    if baseline and baseline in models_of(results):
        for model in models_of(results):
            if model == baseline:
                continue
            delta = matrix(results, model, metric) - matrix(results, baseline, metric)
            lines += [f"## Delta: {model} minus {baseline} ({metric})", ""]
            lines += [markdown_table(with_averages(delta), index_label="Doc \\ Query",
                                     formatter=lambda v: "" if pd.isna(v) else f"{float(v):+.3f}"), ""]
            lines += [_summary_line(delta).replace("mean", "mean delta", 1), ""]
            key = f"delta:{model}"
            if figure_paths and key in figure_paths:
                lines += [f"![delta heatmap]({figure_paths[key].as_posix()})", ""]
    elif baseline:
        lines += [f"_Baseline model {baseline!r} is not in this run: no delta table._", ""]
    lines += [f"## Per subset ({metric})", "", markdown_table(_subset_overview(results, metric), index_label="subset / model"), ""]
    for model in models_of(results):
        for subset in subsets_of(results):
            lines += [f"<details><summary>{model} on {subset}</summary>", "",
                      _card_table(matrix(results, model, metric, subset)), "", "</details>", ""]
    lines += ["## All metrics (mean over cells and subsets)", "", markdown_table(_metric_overview(results), index_label="metric"), ""]
    if context.data_notes:
        lines += ["## Data", ""] + [f"- {note}" for note in context.data_notes] + [""]
    if context.run_notes:
        lines += ["## Run", ""] + [f"- {note}" for note in context.run_notes] + [""]
    return "\n".join(lines)


def draw_figures(results: pd.DataFrame, context: ReportContext, figures_dir: Path) -> dict[str, Path]:
    """One heatmap per model and one per delta against the baseline; returns paths by key."""
    metric = context.primary_metric
    labels = {m.name: m for m in context.models}
    paths: dict[str, Path] = {}
    for model in models_of(results):
        label = labels.get(model)
        subtitle = f"{context.benchmark}, {label.weights} weights, {label.dtype} on {label.device}" if label else context.benchmark
        paths[model] = figures.heatmap(matrix(results, model, metric), figures_dir / f"heatmap_{slug(model)}.png",
                                       title=f"{model}: {metric}", subtitle=subtitle)
    baseline = context.baseline_model
    if baseline and baseline in models_of(results):
        for model in models_of(results):
            if model != baseline:
                delta = matrix(results, model, metric) - matrix(results, baseline, metric)
                paths[f"delta:{model}"] = figures.heatmap(
                    delta, figures_dir / f"delta_{slug(model)}_vs_{slug(baseline)}.png",
                    title=f"{model} minus {baseline}: {metric}", subtitle=context.benchmark, diverging=True,
                    value_format="{:+.3f}")
    return paths


def write_report(results: pd.DataFrame, context: ReportContext, out_dir: Path, *, figures_enabled: bool = True) -> Path:
    """Write ``report.md`` (and ``figures/*.png``) into ``out_dir``; figure links are relative."""
    out_dir = Path(out_dir)
    paths = draw_figures(results, context, out_dir / "figures") if figures_enabled else {}
    relative = {k: p.relative_to(out_dir) for k, p in paths.items()}
    return write_text(out_dir / "report.md", render_report(results, context, relative))
