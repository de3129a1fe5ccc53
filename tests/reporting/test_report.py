"""The run report rendered from a small results table whose values are known."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nanobeir_ext.evaluation.results import results_from_per_query
from nanobeir_ext.protocol import ModelLabel
from nanobeir_ext.reporting import figures
from nanobeir_ext.reporting.report import ReportContext, render_report, report_tables, write_report
from tests.compare.test_comparisons import make_per_query
from tests.helpers import REPO_DIR

MODELS = ("model-a", "model-b")


def _results() -> pd.DataFrame:
    a = make_per_query(("model-a",))
    b = a.assign(model="model-b", value=a["value"] - 0.1)  # model-b is 0.1 below model-a everywhere
    return results_from_per_query(pd.concat([a, b], ignore_index=True))


def _context(baseline: str | None = "model-a") -> ReportContext:
    labels = tuple(ModelLabel(name=m, source=f"hub/{m}", revision=None, weights=w, dtype="float32", device="cpu")
                   for m, w in zip(MODELS, ("real", "random-init")))
    return ReportContext(benchmark="fixture", models=labels, baseline_model=baseline, title="T")


def _cell(results: pd.DataFrame, model: str, doc: str, query: str, subset: str = "mean") -> float:
    row = results[(results["model"] == model) & (results["subset"] == subset) & (results["doc_lang"] == doc)
                  & (results["query_lang"] == query) & (results["metric"] == "ndcg@10")]
    return float(row["value"].iloc[0])


def test_render_report_shows_cells_averages_deltas_and_subsets() -> None:
    results = _results()
    md = render_report(results, _context())
    assert md.startswith("# T\n") and "Primary metric: ndcg@10" in md
    assert "**Random-init weights** (model-b)" in md
    # The card table row of doc language de: three cells, then the row average as a percentage.
    de = [_cell(results, "model-a", "de", q) for q in ("de", "en", "fr")]
    row = "| de | " + " | ".join(f"{v:.3f}" for v in de) + f" | {100 * sum(de) / 3:.2f}% |"
    assert row in md
    # The delta table is model-b minus model-a: -0.100 in every cell.
    assert "## Delta: model-b minus model-a (ndcg@10)" in md
    assert "| de | -0.100 | -0.100 | -0.100 | -0.100 |" in md
    assert "mean delta of 9 cells -0.1000" in md
    assert "## Delta: model-a minus" not in md
    a_on_b = _cell(results, "model-a", "en", "fr", subset="NanoB")
    assert "<details><summary>model-a on NanoB</summary>" in md and f"{a_on_b:.3f}" in md
    assert "| ndcg@10 |" in md and "| mrr@10 |" in md  # every metric in the overview


def test_a_baseline_model_not_in_the_results_is_named() -> None:
    md = render_report(_results(), _context(baseline="model-z"))
    assert "_Baseline model 'model-z' is not in this run: no delta table._" in md and "## Delta" not in md


def test_report_tables_build_each_matrix_once_per_model_and_subset() -> None:
    tables = report_tables(_results(), "model-a")
    assert sorted(tables.matrices) == [(m, s) for m in MODELS for s in ("NanoA", "NanoB", "mean")]
    assert list(tables.deltas) == ["model-b"]
    assert (tables.deltas["model-b"].to_numpy() == pytest.approx(-0.1))


def test_write_report_links_figures_relative_to_the_report(tmp_path: Path) -> None:
    write_report(_results(), _context(), tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "![model-a heatmap](figures/heatmap_model-a.png)" in md
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "delta_model-b_vs_model-a.png", "heatmap_model-a.png", "heatmap_model-b.png", "leaderboard_fixture.png"]
    assert "## Leaderboard: fixture (ndcg@10)" in md and "![leaderboard](figures/leaderboard_fixture.png)" in md


def test_a_failed_figure_save_leaves_no_file_behind(tmp_path: Path) -> None:
    fig, _ = figures.pyplot().subplots()
    with pytest.raises(ValueError):
        figures.save_figure(fig, tmp_path / "figure.unknown-format")
    assert list(tmp_path.iterdir()) == []
    assert not figures.pyplot().get_fignums()  # closed all the same


def test_importing_reporting_for_tables_leaves_matplotlib_alone() -> None:
    code = ("import sys; import nanobeir_ext.reporting.report, nanobeir_ext.reporting.tables, "
            "nanobeir_ext.compare.render; print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_DIR, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_warnings_come_first_and_every_table_says_what_its_averages_cover() -> None:
    results = _results()
    counts = pd.DataFrame([{"subset": "NanoA", "doc_lang": "de", "query_lang": "en", "queries evaluated": 11,
                            "judgments on empty docs": 2}])
    context = ReportContext(benchmark="fixture", models=_context().models, baseline_model="model-a", title="T",
                            warnings=("NanoA ko: no documents to evaluate",), data_counts=counts,
                            expected_subsets=("NanoA", "NanoB", "NanoC"))
    md = render_report(results, context)
    assert md.index("> - NanoA ko: no documents to evaluate") < md.index("## Models")
    assert "> - model-a has no results for subsets ['NanoC']" in md
    assert "mean of 9 cells" in md and "averages cover 9 of 9 cells and 2 of 3 subsets" in md
    assert "| NanoA de-en | 11 | 2 |" in md  # the data rule's counts, per subset and cell
    assert "Warning" not in render_report(results, _context())
