"""The report runner combines separate runs (here: one model each) into one report, encoding nothing."""
from __future__ import annotations

import pandas as pd
import pytest

from runners import evaluate, report
from tests.helpers import compose

pytestmark = pytest.mark.slow

SLICE = ["experiment=smoke", "benchmark.subsets=[NanoSciFact]", "benchmark.languages=[en,ko]", "runtime.progress=false"]


def test_two_single_model_runs_combine_into_one_report(tmp_path, shared_cache):
    cache = [f"runtime.cache_dir={shared_cache}"]
    evaluate.run(compose("evaluate", SLICE + cache + ["~models.fixture_modernbert"]), out_dir=tmp_path / "lfm2")
    evaluate.run(compose("evaluate", SLICE + cache + ["~models.fixture_lfm2"]), out_dir=tmp_path / "mbert")
    out = tmp_path / "combined"
    report.run(compose("report", [f"runs=[{tmp_path / 'lfm2'},{tmp_path / 'mbert'}]", f"out={out}"]))
    text = (out / "report.md").read_text()
    assert "## fixture-LFM2-tiny: ndcg@10" in text and "## fixture-ModernBERT-tiny: ndcg@10" in text
    # The runs' own baseline setting (the smoke experiment's) gives the delta table.
    assert "Delta: fixture-LFM2-tiny minus fixture-ModernBERT-tiny" in text
    combined = pd.read_csv(out / "results.csv")
    separate = pd.concat([pd.read_csv(tmp_path / name / "results.csv") for name in ("lfm2", "mbert")])
    assert len(combined) == len(separate)
    assert set(combined["model"]) == {"fixture-LFM2-tiny", "fixture-ModernBERT-tiny"}
    assert len(list((out / "figures").glob("*.png"))) == 3


def test_report_needs_runs(tmp_path):
    with pytest.raises(ValueError, match="runs="):
        report.run(compose("report", [f"out={tmp_path}"]))
    with pytest.raises(FileNotFoundError, match="no evaluation runs"):
        report.run(compose("report", [f"runs=[{tmp_path}]", f"out={tmp_path / 'x'}"]))
