"""The report runner combines separate runs (here: one model each) into one report, encoding nothing."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from runners import evaluate, report
from tests.compare.test_comparisons import make_per_query, make_run
from tests.helpers import compose

SLICE = ["experiment=smoke", "~models.fixture_dense", "~models.fixture_bm25", "benchmark.subsets=[NanoSciFact]", "benchmark.languages=[en,ko]", "runtime.progress=false"]


@pytest.mark.slow
def test_two_single_model_runs_combine_into_one_report(tmp_path, shared_cache):
    cache = [f"runtime.cache_dir={shared_cache}"]
    one_model = ["report.baseline_model=null"]  # a one-model job has no delta table; the combined report names it
    evaluate.run(compose("evaluate", SLICE + cache + one_model + ["~models.fixture_modernbert"]), out_dir=tmp_path / "lfm2")
    evaluate.run(compose("evaluate", SLICE + cache + one_model + ["~models.fixture_lfm2"]), out_dir=tmp_path / "mbert")
    out = tmp_path / "combined"
    report.run(compose("report", [f"runs=[{tmp_path / 'lfm2'},{tmp_path / 'mbert'}]", f"out={out}",
                                  "baseline_model=fixture-ModernBERT-tiny"]))
    text = (out / "report.md").read_text()
    assert "## fixture-LFM2-tiny: ndcg@10" in text and "## fixture-ModernBERT-tiny: ndcg@10" in text
    # The combining report's baseline_model gives the delta table.
    assert "Delta: fixture-LFM2-tiny minus fixture-ModernBERT-tiny" in text
    # Combining changes no value: the combined table is the two runs' tables, row for row.
    combined = pd.read_parquet(out / "results.parquet")
    separate = pd.concat([pd.read_parquet(tmp_path / name / "results.parquet") for name in ("lfm2", "mbert")])
    keys = [c for c in combined.columns if c != "value"]
    combined, separate = (f.astype({k: str for k in keys}).sort_values(keys).reset_index(drop=True)
                          for f in (combined, separate))
    pd.testing.assert_frame_equal(combined, separate)
    assert set(combined["model"]) == {"fixture-LFM2-tiny", "fixture-ModernBERT-tiny"}
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert len(figures) == 4 and "leaderboard_fixture.png" in figures  # two heatmaps, the delta, the leaderboard


def test_report_needs_runs(tmp_path):
    with pytest.raises(ValueError, match="runs="):
        report.run(compose("report", [f"out={tmp_path}"]))
    with pytest.raises(FileNotFoundError, match="no evaluation runs"):
        report.run(compose("report", [f"runs=[{tmp_path}]", f"out={tmp_path / 'x'}"]))


@pytest.mark.parametrize("status", ["running", "failed"])
def test_unfinished_runs_are_refused_naming_the_folder(tmp_path, status):
    done = make_run(tmp_path / "done", make_per_query(("model-a",)))
    unfinished = make_run(tmp_path / "unfinished", make_per_query(("model-b",)))
    (unfinished / "run.json").write_text(json.dumps({"kind": "evaluation", "status": status}))
    with pytest.raises(ValueError, match=f"{unfinished}.*not complete"):
        report.run(compose("report", [f"runs=[{done},{unfinished}]", f"out={tmp_path / 'out'}"]))
    assert not (tmp_path / "out").exists()


def test_runs_with_different_subsets_report_what_they_can_and_name_what_is_missing(tmp_path):
    # Before: a KeyError from the per-subset matrices of the model that lacks NanoB.
    both = make_run(tmp_path / "both", make_per_query(("model-a",), subsets=("NanoA", "NanoB")))
    one = make_run(tmp_path / "one", make_per_query(("model-b",), subsets=("NanoA",), seed=1))
    out = tmp_path / "out"
    report.run(compose("report", [f"runs=[{both},{one}]", f"out={out}", "figures=false"]))
    text = (out / "report.md").read_text()
    head = text[: text.index("## Models")]
    assert "Warning: data missing" in head and "model-b has no results for subsets ['NanoB']" in head
    assert "model-b: averages cover 9 of 9 cells and 1 of 2 subsets" in text
    assert "model-a: averages cover 9 of 9 cells and 2 of 2 subsets" in text
    assert "<details><summary>model-a on NanoB</summary>" in text and "model-b on NanoB" not in text
    assert "NanoA / model-b (9 cells)" in text
