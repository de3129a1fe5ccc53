"""One reader for run folders and committed baseline folders: the same record, types and checks."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nanobeir_ext.outputs.baseline import write_baseline
from nanobeir_ext.outputs.folders import find_runs, read_folder
from nanobeir_ext.protocol import ModelLabel
from tests.compare.test_comparisons import make_per_query, make_run


@pytest.mark.parametrize("status", ["running", "failed"])
def test_unfinished_run_is_refused_naming_the_folder(tmp_path: Path, status: str) -> None:
    run_dir = make_run(tmp_path / "run", make_per_query())
    (run_dir / "run.json").write_text(json.dumps({"kind": "evaluation", "status": status}))
    with pytest.raises(ValueError, match=f"{run_dir}.*not complete.*{status}"):
        read_folder(run_dir)


def test_reader_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither a run folder.*shard"):
        read_folder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no evaluation runs"):
        find_runs([tmp_path / "empty"])


def test_run_and_baseline_read_back_to_the_same_record(tmp_path: Path) -> None:
    per_query = make_per_query(("model-a", "model-b"))
    run_dir = make_run(tmp_path / "run", per_query)
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "overrides.yaml").write_text("- retrieval.k=10\n")
    (run_dir / "run.json").write_text(json.dumps({"kind": "evaluation", "status": "complete"}))
    run = read_folder(run_dir)
    baseline = read_folder(write_baseline(run_dir, tmp_path / "smoke"))
    assert (run.kind, run.name, run.status, run.overrides) == ("run", "run", "complete", ("retrieval.k=10",))
    assert (baseline.kind, baseline.name, baseline.status, baseline.overrides) == ("baseline", "smoke", None, ())
    # Keys as text and values as float64 on both sides, so they merge and compare exactly.
    pd.testing.assert_frame_equal(run.results, baseline.results.sort_values(list(run.results.columns[:-1]))
                                  .reset_index(drop=True), check_like=False)
    assert run.per_query.dtypes.to_dict() == baseline.per_query.dtypes.to_dict()
    assert [m.name for m in run.labels] == ["model-a", "model-b"] == [m.name for m in baseline.labels]
    assert all(isinstance(m, ModelLabel) and m.weights == "real" for m in run.labels)


def test_a_damaged_results_file_or_run_record_is_an_error_naming_it(tmp_path):
    from nanobeir_ext.outputs.folders import find_runs, read_folder

    run = tmp_path / "run"
    run.mkdir()
    (run / "results.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(ValueError, match=r"results\.parquet cannot be read"):
        read_folder(run)
    (run / "run.json").write_text("{ half written")
    with pytest.raises(ValueError, match=r"run\.json cannot be read"):
        read_folder(run)
    # a failed sweep job without results is found, so reading it says why instead of vanishing
    failed = tmp_path / "sweep" / "1"
    failed.mkdir(parents=True)
    (failed / "run.json").write_text('{"status": "failed"}')
    assert find_runs([tmp_path / "sweep"]) == [failed]
    with pytest.raises(ValueError, match="not complete"):
        read_folder(failed)
