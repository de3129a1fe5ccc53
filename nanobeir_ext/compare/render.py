"""The three renderings every comparison has (ranx's Report shape): ``to_markdown`` (CI-comment
friendly), ``to_dict`` (report.json) and ``to_tables`` (CSV files), and ``write_comparison``.

Markdown puts the summary first (verdict, counts, the worst cells), then tables in the model card's
orientation (rows = document language, columns = query language), then a footer naming the
test, resamples, seed, correction and thresholds.
"""
from __future__ import annotations

from functools import singledispatch
from pathlib import Path
from typing import Any, Mapping, Union

import pandas as pd

from nanobeir_ext.atomic import write_csv, write_json, write_text
from nanobeir_ext.compare.regression import RunComparison
from nanobeir_ext.compare.reproduction import ModelReproduction, PublishedComparison
from nanobeir_ext.evaluation.significance import correction_name
from nanobeir_ext.languages import ordered
from nanobeir_ext.reporting.tables import (format_fixed, format_p_value, format_percent, format_signed, is_missing,
                                           markdown_table)

Comparison = Union[RunComparison, PublishedComparison]

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
_WORST = 5
NOT_PUBLISHED = "n/p"  # a cell or scope the source does not publish (never shown as 0)
_VERDICT_BADGE = {"pass": "✅ PASS", "regression": "❌ REGRESSION", "mismatch": "⚠️ COVERAGE MISMATCH",
                  "reproduced": "✅ reproduced", "not reproduced": "❌ not reproduced",
                  "nothing to compare": "⚠️ nothing to compare"}


def _text_table(frame: pd.DataFrame, index_label: str = "") -> str:
    return markdown_table(frame, index_label=index_label, formatter=str)


def _matrix(cells: pd.DataFrame, render: Any, *, averages: pd.DataFrame | None = None,
            render_average: Any = None, blank: str = "") -> str:
    """Doc-language rows x query-language columns of strings; optional AVG column and row;
    ``blank`` fills the positions ``cells`` has no row for."""
    docs, queries = ordered(cells["doc_lang"].unique()), ordered(cells["query_lang"].unique())
    table = pd.DataFrame(blank, index=list(docs), columns=list(queries), dtype=object)
    for row in cells.itertuples(index=False):
        table.at[row.doc_lang, row.query_lang] = render(row)
    if averages is not None:
        by_axis = {(r.axis, r.lang): r for r in averages.itertuples(index=False)}
        table["AVG"] = [render_average(by_axis[("doc", d)]) if ("doc", d) in by_axis else "" for d in docs]
        table.loc["AVG"] = [render_average(by_axis[("query", q)]) if ("query", q) in by_axis else "" for q in queries] + [""]
    return _text_table(table, "Doc \\ Query")


@singledispatch
def to_markdown(comparison: Comparison) -> str:
    """report.md: verdict and counts first, then tables, then a footer naming the test and thresholds."""
    raise TypeError(f"no markdown rendering for {type(comparison).__name__}")


@singledispatch
def to_dict(comparison: Comparison) -> dict[str, Any]:
    """report.json's body: JSON-able, every table as records (NaN as null)."""
    raise TypeError(f"no JSON rendering for {type(comparison).__name__}")


@singledispatch
def to_tables(comparison: Comparison) -> dict[str, pd.DataFrame]:
    """CSV file name -> table."""
    raise TypeError(f"no table rendering for {type(comparison).__name__}")


# ----------------------------------------------------------------------------- run vs run


@to_markdown.register
def _run_markdown(comparison: RunComparison) -> str:
    c, s = comparison, comparison.settings
    cells, counts = c.cells, c.counts
    gated = cells[cells["metric"].isin(s.rule.gate_metrics)]
    lines = [f"# Regression report: `{c.run_name}` vs baseline `{c.baseline_name}`", "",
             f"**Verdict: {_VERDICT_BADGE[c.verdict]}**", ""]
    mean_drops = c.means[c.means["regressed"]]
    tested = cells[cells["p_adjusted"].notna()]
    drift = s.tolerances.any_change_abs
    lines += [f"- Regressed cells: **{counts['regressed_cells']}** of {len(cells)} cell values: "
              f"{counts['gate_regressed_cells']} of {counts['gated_cells']} by the cell rule "
              f"({', '.join(s.rule.gate_metrics)}; drop > {s.tolerances.cell_drop_abs:g}"
              f"{' and significant' if s.rule.require_significance else ''})"
              + (f"; {counts['drifted_cells']} by the drift gate (any metric moved by more than {drift:g}), "
                 f"plus {counts['drifted_subsets']} per-subset values" if drift is not None else ""),
              f"- Mean drops beyond {s.tolerances.mean_drop_abs:g}: " + (
                  ", ".join(f"{r.model} {r.metric} {format_signed(r.delta, 4)}" for r in mean_drops.itertuples())
                  if len(mean_drops) else "none"),
              "- Latency: " + ("not compared" if c.latency is None else
                               f"{counts['latency_regressions']} of {len(c.latency)} rows slower than "
                               f"+{100 * s.tolerances.latency_increase_rel:g}%"),
              f"- Significant {s.significance.metric} changes (adjusted p < {s.significance.alpha:g}, either "
              f"direction): {int(tested['significant'].sum())} of {len(tested)} tested cells"]
    lines += [f"- Note: {note}" for note in c.notes]
    if c.coverage_problems:
        lines += ["", "## Coverage mismatch", "",
                  "The run and the baseline do not measure the same things; deltas below cover only the overlap.", ""]
        lines += [f"- {problem}" for problem in c.coverage_problems]
    lines += ["", "## Worst cells", ""]
    regressed = c.regressed_cells
    drops = gated[gated["delta"] < 0].sort_values("delta", kind="mergesort")
    if len(regressed):
        lines += [_worst_table(regressed.head(_WORST)), ""]
    elif len(drops):
        lines += ["No regressed cells; the largest drops:", "", _worst_table(drops.head(_WORST)), ""]
    else:
        lines += ["No cell dropped.", ""]
    lines += ["## Means over cells", "", _means_table(c.means[c.means["metric"].isin(s.rule.gate_metrics)]), ""]
    for (model, benchmark), group in gated.groupby(["model", "benchmark"], sort=True):
        for metric, part in group.groupby("metric", sort=True):
            lines += [f"## {model} ({benchmark}): Δ {metric} per cell (run − baseline)", "",
                      _matrix(part, _delta_with_marks), "",
                      "`▼` regressed, `*` significant after correction.", ""]
        langs = c.languages[(c.languages["model"] == model) & (c.languages["benchmark"] == benchmark)]
        if len(langs):
            lines += [f"### {model}: by language ({s.significance.metric}, queries pooled over cells)", "",
                      _languages_table(langs), ""]
    if c.latency is not None:
        lines += ["## Latency", "", _latency_table(c.latency), ""]
    others = cells[~cells["metric"].isin(s.rule.gate_metrics)]
    if len(others):
        lines += ["<details><summary>Δ per cell for every other metric (reported, not gated)</summary>", ""]
        lines += ["", _means_table(c.means[~c.means["metric"].isin(s.rule.gate_metrics)]), ""]
        for (model, benchmark, metric), part in others.groupby(["model", "benchmark", "metric"], sort=True):
            lines += [f"#### {model} ({benchmark}): Δ {metric}", "", _matrix(part, lambda r: format_signed(r.delta)), ""]
        lines += ["</details>", ""]
    lines += ["Per-subset deltas of every metric: `deltas_subsets.csv`; per-cell: `deltas_cells.csv`.", ""]
    lines += ["---", "", _run_footer(comparison)]
    return "\n".join(lines) + "\n"


def _delta_with_marks(row: Any) -> str:
    marks = ("▼" if row.regressed else "") + ("*" if row.significant else "")
    return format_signed(row.delta) + (f" {marks}" if marks else "")


def _worst_table(frame: pd.DataFrame) -> str:
    table = pd.DataFrame({"model": frame["model"], "metric": frame["metric"], "doc": frame["doc_lang"],
                          "query": frame["query_lang"], "run": frame["run"].map(format_fixed), "baseline": frame["baseline"].map(format_fixed),
                          "Δ": frame["delta"].map(format_signed), "p (adj.)": frame["p_adjusted"].map(format_p_value),
                          "regressed": frame["regressed"].map(lambda x: "yes" if x else "no")})
    return _text_table(table.set_index("model"), "model")


def _means_table(means: pd.DataFrame) -> str:
    if means.empty:
        return "(none)"
    rows = []
    for (model, benchmark, metric), group in means.groupby(["model", "benchmark", "metric"], sort=True):
        by_scope = group.set_index("scope")
        overall = by_scope.loc["all"]
        rows.append({"model": model, "benchmark": benchmark, "metric": metric, "cells": int(overall["n_cells"]),
                     "run": format_fixed(overall["run"], 4), "baseline": format_fixed(overall["baseline"], 4),
                     "Δ all": format_signed(overall["delta"], 4),
                     "Δ diagonal": format_signed(by_scope["delta"].get("diagonal"), 4),
                     "Δ off-diagonal": format_signed(by_scope["delta"].get("off-diagonal"), 4),
                     "verdict": "❌ drop beyond tolerance" if bool(overall["regressed"]) else "ok"})
    return _text_table(pd.DataFrame(rows).set_index("model"), "model")


def _languages_table(langs: pd.DataFrame) -> str:
    table = pd.DataFrame({"axis": langs["axis"].map({"query_lang": "query language", "doc_lang": "doc language"}),
                          "lang": langs["lang"], "queries": langs["n_queries"].astype(int).astype(str),
                          "run": langs["run"].map(lambda v: format_fixed(v, 4)), "baseline": langs["baseline"].map(lambda v: format_fixed(v, 4)),
                          "Δ": langs["delta"].map(lambda v: format_signed(v, 4)), "p": langs["p_value"].map(format_p_value),
                          "p (adj.)": langs["p_adjusted"].map(format_p_value),
                          "significant": langs["significant"].map(lambda x: "yes" if x else "no")})
    return _text_table(table.set_index("axis"), "axis")


def _latency_table(latency: pd.DataFrame) -> str:
    table = pd.DataFrame({"model": latency["model"], "role": latency["role"], "batch": latency["batch_size"].astype(str),
                          "seq_len": latency["seq_len"].astype(str), "device": latency["device"],
                          "metric": latency["latency_metric"], "run": latency["run"].map(lambda v: format_fixed(v, 2)),
                          "baseline": latency["baseline"].map(lambda v: format_fixed(v, 2)),
                          "slowdown": latency["increase_rel"].map(lambda v: f"{100 * v:+.1f}%"),
                          "verdict": latency["regressed"].map(lambda x: "❌ slower" if x else "ok")})
    return _text_table(table.set_index("model"), "model")


def _run_footer(comparison: RunComparison) -> str:
    s = comparison.settings
    sig = s.significance
    return (f"**Test:** two-sided paired randomization (sign-flip) test of the mean per-query {sig.metric} "
            f"difference; queries are paired by (subset, query id) within a cell and by (doc language, query "
            f"language, subset, query id) for language aggregates; {sig.n_resamples} resamples (exact enumeration "
            f"when 2^n ≤ resamples), seed {sig.seed}. **Correction:** {correction_name(sig.correction)}, applied "
            f"within each model's family of cells and, separately, of language aggregates; α = {sig.alpha:g}. "
            f"**Thresholds:** cell drop {s.tolerances.cell_drop_abs:g}, mean drop {s.tolerances.mean_drop_abs:g}, "
            f"latency increase {100 * s.tolerances.latency_increase_rel:g}%. **Rule:** {s.describe_rule()} "
            f"Deltas are run − baseline; a cell is the unweighted mean over subsets.")


@to_dict.register
def _run_dict(comparison: RunComparison) -> dict[str, Any]:
    c, s = comparison, comparison.settings
    return {"kind": "run-vs-baseline", "run": c.run_name, "baseline": c.baseline_name, "verdict": c.verdict,
            "exit_code": c.exit_code, "coverage_problems": list(c.coverage_problems), "notes": list(c.notes),
            "summary": {**c.counts, "worst_cells": _records(c.regressed_cells.head(_WORST))},
            "settings": {"tolerances": vars(s.tolerances), "significance": vars(s.significance),
                         "rule": {**vars(s.rule), "text": s.describe_rule()}},
            "means": _records(c.means), "cells": _records(c.cells), "languages": _records(c.languages),
            "latency": None if c.latency is None else _records(c.latency),
            "files": {"subset_deltas": "deltas_subsets.csv", "cell_deltas": "deltas_cells.csv"}}


@to_tables.register
def _run_tables(comparison: RunComparison) -> dict[str, pd.DataFrame]:
    return {"deltas_cells.csv": comparison.cells, "deltas_subsets.csv": comparison.subsets,
            "significance_languages.csv": comparison.languages}


# ----------------------------------------------------------------------------- run vs published


@to_markdown.register
def _published_markdown(comparison: PublishedComparison) -> str:
    c = comparison
    tol = c.tolerance
    lines = [f"# Reproduction report: `{c.run_name}` vs published numbers", "",
             f"**Verdict: {_VERDICT_BADGE[c.verdict]}** (|run − published| ≤ {tol:g} {c.metric} in every compared "
             f"cell)", ""]
    for m in c.models:
        if m.weights != "real":
            lines += [f"> ⚠️ **{m.run_model}: {m.weights.upper()} WEIGHTS.** " + (
                "Its numbers exercise the pipeline and say nothing about the published model." if m.weights == "random-init"
                else "environment.json does not say whether the weights are real.")]
        if m.run_benchmark != m.reference_benchmark and m.reference_benchmark:
            lines += [f"> ⚠️ {m.run_model} was evaluated on benchmark `{m.run_benchmark}`, not the published "
                      f"`{m.reference_benchmark}`."]
    lines += ["", _published_summary(c), ""]
    if c.without_reference:
        lines += [f"Run models with no published reference (not compared): {', '.join(c.without_reference)}.", ""]
    for m in c.models:
        lines += _model_section(m, c.metric)
    flagged = c.printed_averages[~c.printed_averages["agrees"]]
    lines += ["## Published averages that disagree with their own cells", ""]
    if len(flagged):
        table = pd.DataFrame({"model": flagged["model"],
                              "average": [f"{'row' if a == 'doc' else 'column'} AVG {lang.upper()}"
                                          for a, lang in zip(flagged["axis"], flagged["lang"])],
                              "printed": flagged["printed_percent"].map(lambda v: f"{v:.2f}%"),
                              "from cells": flagged["recomputed_percent"].map(lambda v: f"{v:.2f}%"),
                              "difference": flagged["difference_pp"].map(lambda v: f"{v:+.2f} pp"),
                              "tolerance": flagged["tolerance_pp"].map(lambda v: f"±{v:.3f} pp")})
        lines += [_text_table(table.set_index("model"), "model"), "",
                  "These printed values are not used: every average in this report is recomputed from cells.", ""]
    else:
        lines += ["None.", ""]
    lines += ["---", "", _published_footer(c)]
    return "\n".join(lines) + "\n"


def _published_summary(c: PublishedComparison) -> str:
    rows = []
    for m in c.models:
        summary = m.summary.set_index("scope")["delta"] if len(m.summary) else pd.Series(dtype=float)
        largest = m.largest
        rows.append({"run model": m.run_model, "published": m.reference_model,
                     "weights": m.weights if m.weights == "real" else f"**{m.weights}**",
                     "coverage": m.coverage,
                     "benchmark": m.run_benchmark, "cells": str(len(m.cells)),
                     "within ±tol": f"{int(m.cells['within'].sum())}/{len(m.cells)}",
                     "Δ mean": format_signed(summary.get("all"), 4, missing=NOT_PUBLISHED),
                     "Δ diagonal": format_signed(summary.get("diagonal"), 4, missing=NOT_PUBLISHED),
                     "Δ off-diagonal": format_signed(summary.get("off-diagonal"), 4, missing=NOT_PUBLISHED),
                     "largest |Δ|": "–" if largest is None else
                     f"{format_signed(largest['delta'])} ({largest['doc_lang']}/{largest['query_lang']})",
                     "verdict": _VERDICT_BADGE[m.verdict]})
    if not rows:
        return "No run model maps to a published table (see `reference_models`)."
    return _text_table(pd.DataFrame(rows).set_index("run model"), "run model")


def _model_section(m: ModelReproduction, metric: str) -> list[str]:
    label = "" if m.weights == "real" else f" [{m.weights.upper()}]"
    lines = [f"## {m.run_model}{label} vs published {m.reference_model}", ""]
    if m.missing_cells:
        lines += [f"{len(m.missing_cells)} published cells are not in the run (e.g. "
                  f"{', '.join(f'{d}/{q}' for d, q in m.missing_cells[:_WORST])}); compared {len(m.cells)}.", ""]
    if m.unpublished_cells:
        lines += [f"{len(m.unpublished_cells)} run cells are not published by the source (`{NOT_PUBLISHED}` below; "
                  f"e.g. {', '.join(f'{d}/{q}' for d, q in m.unpublished_cells[:_WORST])}): they are not compared.", ""]
    if len(m.cells) and m.cells["from_subsets"].any():
        derived = m.cells[m.cells["from_subsets"]]
        lines += [f"Published cells {', '.join(f'{d}/{q}' for d, q in zip(derived['doc_lang'], derived['query_lang']))} "
                  "are the unweighted means of the source's per-subset values (the source prints no mean for them).", ""]
    if len(m.cells):
        tol = m.tolerance
        lines += [f"### Δ {metric} (run − published), rows = document language, columns = query language", "",
                  _matrix(m.cells, lambda r: format_signed(r.delta) + ("" if r.within else " ✗"), averages=m.averages,
                          render_average=lambda r: format_signed(r.delta), blank=NOT_PUBLISHED), "",
                  f"`✗` outside ±{tol:g}; `{NOT_PUBLISHED}` not published by the source. AVG: difference of the "
                  "averages recomputed from the compared cells.", "",
                  "### Run", "", _matrix(m.cells, lambda r: format_fixed(r.run), averages=m.averages,
                                         render_average=lambda r: format_percent(r.run), blank=NOT_PUBLISHED), "",
                  "### Published (cells as printed; AVG recomputed from the cells)", "",
                  _matrix(m.cells, lambda r: format_fixed(r.published), averages=m.averages,
                          render_average=lambda r: format_percent(r.published_recomputed) + ("" if r.printed_agrees else
                                                                                    f" ⚠ printed {format_percent(r.published_printed)}"),
                          blank=NOT_PUBLISHED),
                  "", "### Means", "", _text_table(pd.DataFrame({
                      "scope": m.summary["scope"], "cells": m.summary["n_cells"].astype(str),
                      "run": m.summary["run"].map(lambda v: format_fixed(v, 4)),
                      "published": m.summary["published"].map(lambda v: format_fixed(v, 4)),
                      "Δ": m.summary["delta"].map(lambda v: format_signed(v, 4))}).set_index("scope"), "scope"), ""]
    if len(m.subsets):
        langs = ", ".join(ordered(m.subsets["language"].unique()))
        lines += [f"### Per subset, same language for queries and documents ({langs}; the source's per-subset values)", "",
                  _text_table(pd.DataFrame({"subset": m.subsets["subset"], "language": m.subsets["language"],
                                            "run": m.subsets["run"].map(lambda v: format_fixed(v, 4)),
                                            "published": m.subsets["published"].map(lambda v: format_fixed(v, 5)),
                                            "Δ": m.subsets["delta"].map(lambda v: format_signed(v, 4)),
                                            "within": m.subsets["within"].map(lambda x: "✓" if x else "✗")}
                                           ).set_index("subset"), "subset"), ""]
    return lines


def _published_footer(c: PublishedComparison) -> str:
    sources = " ".join(f"[{i + 1}] {s}" for i, s in enumerate(c.sources))
    return (f"**Tolerance:** |run − published| ≤ {c.tolerance:g} per cell (`tolerance.published_abs`); published "
            f"cells are printed with 3 decimals, so ±0.0005 of any delta is rounding. A printed average is flagged "
            f"when it differs from the mean of its own printed cells by more than half a unit of the cells' last "
            f"digit plus half a unit of its own. Deltas are run − published; rows are document languages, columns "
            f"query languages (the card's \"Doc / Query\"). **Sources:** {sources}")


@to_dict.register
def _published_dict(comparison: PublishedComparison) -> dict[str, Any]:
    c = comparison
    return {"kind": "run-vs-published", "run": c.run_name, "verdict": c.verdict, "exit_code": c.exit_code,
            "metric": c.metric, "tolerance": c.tolerance, "sources": list(c.sources),
            "without_reference": list(c.without_reference),
            "models": [{"run_model": m.run_model, "reference_model": m.reference_model, "weights": m.weights,
                        "run_benchmark": m.run_benchmark, "reference_benchmark": m.reference_benchmark,
                        "verdict": m.verdict, "n_outside": m.n_outside,
                        "largest": None if m.largest is None else _records(m.largest.to_frame().T)[0],
                        "missing_cells": [list(x) for x in m.missing_cells], "summary": _records(m.summary),
                        "averages": _records(m.averages), "cells": _records(m.cells), "subsets": _records(m.subsets)}
                       for m in c.models],
            "printed_averages": _records(c.printed_averages)}


@to_tables.register
def _published_tables(comparison: PublishedComparison) -> dict[str, pd.DataFrame]:
    frames = [m.cells.assign(run_model=m.run_model, reference_model=m.reference_model, weights=m.weights)
              for m in comparison.models]
    cells = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return {"deltas_cells.csv": cells, "printed_averages_check.csv": comparison.printed_averages}


# ----------------------------------------------------------------------------- writing


def write_comparison(out_dir: Path, comparison: Comparison, identity: Mapping[str, Any]) -> Path:
    """Write report.md, report.json (with ``identity`` on top) and the CSV tables, each atomically.

    Claiming the folder first (a different comparison is never overwritten silently) is the
    caller's job: ``nanobeir_ext.outputs.rundir.claim``.
    """
    out_dir = Path(out_dir)
    for name, frame in to_tables(comparison).items():
        write_csv(out_dir / name, frame)
    write_json(out_dir / REPORT_JSON, {"identity": dict(identity), **to_dict(comparison)})
    write_text(out_dir / REPORT_MD, to_markdown(comparison))
    return out_dir


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-able rows: numpy scalars to Python, NaN to None."""
    out = []
    for record in frame.to_dict("records"):
        clean = {}
        for key, value in record.items():
            if hasattr(value, "item"):
                value = value.item()
            if isinstance(value, float) and is_missing(value):
                value = None
            clean[str(key)] = value
        out.append(clean)
    return out

