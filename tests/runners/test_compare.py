"""The compare runner through Hydra's compose API, plus one real command-line invocation."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runners.compare import run
from tests.helpers import REPO_DIR, compose
from tests.compare.test_comparisons import make_latency, make_per_query, make_run, plant

FAST = ["significance.n_resamples=2000", "progress=false"]


def _report(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())


def test_identical_runs_exit_zero_and_write_both_reports(tmp_path: Path) -> None:
    per_query = make_per_query(("model-a", "model-b"))
    run_dir, base_dir = make_run(tmp_path / "run", per_query), make_run(tmp_path / "base", per_query)
    assert run(compose("compare", [f"run={run_dir}", f"baseline={base_dir}", *FAST])) == 0
    out = run_dir / "compare-base"
    report = _report(out)
    assert report["verdict"] == "pass" and report["exit_code"] == 0
    assert report["identity"]["baseline"] == str(base_dir.resolve())
    assert all(c["p_value"] == 1.0 for c in report["cells"] if c["metric"] == "ndcg@10")
    assert (out / "report.md").read_text().startswith("# Regression report: `run` vs baseline `base`")
    assert {"deltas_cells.csv", "deltas_subsets.csv", "significance_languages.csv"} <= {p.name for p in out.iterdir()}


def test_planted_drop_exits_nonzero(tmp_path: Path) -> None:
    per_query = make_per_query()
    run_dir = make_run(tmp_path / "run", plant(per_query, "en", "fr", -0.2))
    base_dir = make_run(tmp_path / "base", per_query)
    out = tmp_path / "report"
    assert run(compose("compare", [f"run={run_dir}", f"baseline={base_dir}", f"out={out}", *FAST])) == 1
    report = _report(out)
    assert report["summary"]["regressed_cells"] == 1
    worst = report["summary"]["worst_cells"][0]
    assert (worst["doc_lang"], worst["query_lang"], worst["significant"]) == ("en", "fr", True)


def test_latency_regression_exits_nonzero_and_tolerance_comes_from_config(tmp_path: Path) -> None:
    per_query = make_per_query()
    run_dir = make_run(tmp_path / "run", per_query, latency=make_latency(scale=1.3))
    base_dir = make_run(tmp_path / "base", per_query, latency=make_latency())
    assert run(compose("compare", [f"run={run_dir}", f"baseline={base_dir}", *FAST])) == 1
    assert _report(run_dir / "compare-base")["summary"]["latency_regressions"] == 4
    loose = ["tolerance.latency_increase_rel=0.5", "overwrite=true"]
    assert run(compose("compare", [f"run={run_dir}", f"baseline={base_dir}", *FAST, *loose])) == 0


def test_mismatch_exits_two(tmp_path: Path) -> None:
    per_query = make_per_query()
    run_dir = make_run(tmp_path / "run", per_query[per_query["subset"] != "NanoB"])
    base_dir = make_run(tmp_path / "base", per_query)
    assert run(compose("compare", [f"run={run_dir}", f"baseline={base_dir}", *FAST])) == 2
    assert _report(run_dir / "compare-base")["coverage_problems"]


def test_save_baseline_then_compare_against_it(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run", make_per_query(seed=4))
    baseline = tmp_path / "reports" / "baselines" / "smoke"
    assert run(compose("compare", [f"run={run_dir}", f"save_baseline={baseline}"])) == 0
    assert (baseline / "baseline.json").is_file() and not (run_dir / "compare-published").exists()
    assert run(compose("compare", [f"run={run_dir}", f"baseline={baseline}", *FAST])) == 0
    assert _report(run_dir / "compare-smoke")["verdict"] == "pass"


def test_a_different_comparison_is_never_overwritten_silently(tmp_path: Path) -> None:
    per_query = make_per_query()
    run_dir = make_run(tmp_path / "run", per_query)
    base_a, base_b = make_run(tmp_path / "a", per_query), make_run(tmp_path / "b", per_query)
    out = tmp_path / "shared-out"
    assert run(compose("compare", [f"run={run_dir}", f"baseline={base_a}", f"out={out}", *FAST])) == 0
    assert run(compose("compare", [f"run={run_dir}", f"baseline={base_a}", f"out={out}", *FAST])) == 0  # same: fine
    with pytest.raises(FileExistsError, match="different comparison"):
        run(compose("compare", [f"run={run_dir}", f"baseline={base_b}", f"out={out}", *FAST]))
    assert run(compose("compare", [f"run={run_dir}", f"baseline={base_b}", f"out={out}", "overwrite=true", *FAST])) == 0
    assert _report(out)["identity"]["baseline"] == str(base_b.resolve())


def test_random_init_fixture_against_published_is_labelled(tmp_path: Path) -> None:
    per_query = make_per_query(("fixture-LFM2-tiny", "unmapped-model"), benchmark="fixture")
    run_dir = make_run(tmp_path / "smoke", per_query, weights="random-init")
    code = run(compose("compare", [f"run={run_dir}", "progress=false"]))  # baseline=published by default
    report = _report(run_dir / "compare-published")
    assert code == 1 and report["verdict"] == "not reproduced"
    (model,) = report["models"]
    assert (model["run_model"], model["reference_model"], model["weights"]) == \
        ("fixture-LFM2-tiny", "LFM2-ColBERT-350M", "random-init")
    assert len(model["cells"]) == 9 and len(model["missing_cells"]) == 72
    assert report["without_reference"] == ["unmapped-model"]
    md = (run_dir / "compare-published" / "report.md").read_text()
    assert "RANDOM-INIT WEIGHTS" in md and "benchmark `fixture`, not the published `nanobeir-extended`" in md


def test_command_line_exit_status(tmp_path: Path) -> None:
    per_query = make_per_query()
    run_dir = make_run(tmp_path / "run", plant(per_query, "de", "de", -0.3))
    base_dir = make_run(tmp_path / "base", per_query)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_DIR)}
    done = subprocess.run([sys.executable, "-m", "runners.compare", f"run={run_dir}", f"baseline={base_dir}", *FAST],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "regression (exit 1)" in done.stdout + done.stderr
    assert _report(run_dir / "compare-base")["verdict"] == "regression"
    # Hydra writes nothing of its own (no .hydra/, no log file) into the working directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "run"]
