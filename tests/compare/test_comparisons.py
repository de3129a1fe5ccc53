"""Run-vs-run and run-vs-published comparisons on synthetic runs whose answers are known."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nanobeir_ext.atomic import write_csv, write_json, write_parquet
from nanobeir_ext.outputs.baseline import write_baseline
from nanobeir_ext.outputs.folders import RunFolder, read_folder
from nanobeir_ext.compare.regression import compare_runs
from nanobeir_ext.compare.render import to_dict, to_markdown, to_tables
from nanobeir_ext.compare.reproduction import compare_to_published
from nanobeir_ext.compare.settings import (EXIT_MISMATCH, EXIT_PASS, EXIT_REGRESSION, CompareSettings, RegressionRule,
                                           SignificanceSettings, Tolerances)
from nanobeir_ext.compare.reference import load_reference
from nanobeir_ext.evaluation.results import PER_QUERY_COLUMNS, results_from_per_query
from nanobeir_ext.protocol import ModelLabel

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "reports" / "reference"
LANGS = ("de", "en", "fr")
SUBSETS = ("NanoA", "NanoB")
FAST = CompareSettings(significance=SignificanceSettings(n_resamples=2000, seed=0))


def make_per_query(models=("model-a",), *, langs=LANGS, subsets=SUBSETS, n_queries=12, seed=0,
                   benchmark="fixture") -> pd.DataFrame:
    """Per-query ndcg@10 in [0.3, 1] and an mrr@10 derived from it; the same seed gives the same run."""
    rng = np.random.default_rng(seed)
    rows = []
    for model in models:
        for subset in subsets:
            for doc in langs:
                for query in langs:
                    for q in range(n_queries):
                        value = float(rng.uniform(0.3, 1.0))
                        key = (model, benchmark, subset, doc, query, f"{subset}-q{q}")
                        rows += [(*key, "ndcg@10", value), (*key, "mrr@10", min(1.0, value + 0.05))]
    return pd.DataFrame(rows, columns=list(PER_QUERY_COLUMNS))


def make_run(path: Path, per_query: pd.DataFrame, *, weights: str = "real",
             latency: pd.DataFrame | None = None) -> Path:
    """A run folder in the evaluation runner's layout."""
    results = results_from_per_query(per_query)
    write_parquet(path / "results.parquet", results)
    write_csv(path / "results.csv", results)
    write_parquet(path / "per_query.parquet", per_query)
    write_json(path / "environment.json", {"models": [label(m, weights) for m in per_query["model"].unique()]})
    (path / "config.yaml").write_text("benchmark: fixture\n")
    if latency is not None:
        write_csv(path / "latency.csv", latency)
    return path


def label(name: str, weights: str = "real") -> dict:
    """A model's environment.json record, as the evaluation runner writes it."""
    return ModelLabel(name=name, source=f"hub/{name}", revision=None, weights=weights, dtype="float32",
                      device="cpu").to_dict()


def make_latency(models=("model-a",), scale: float = 1.0) -> pd.DataFrame:
    rows = []
    for model in models:
        for role, seq_len in (("query", 32), ("document", 256)):
            for batch in (1, 8):
                p50 = 2.0 * batch * (seq_len / 32) * scale
                rows.append({"model": model, "role": role, "batch_size": batch, "seq_len": seq_len,
                             "texts_per_s": 1000 * batch / p50, "tokens_per_s": 1000 * batch * seq_len / p50,
                             "p50_ms": p50, "p95_ms": 1.2 * p50, "device": "cpu", "dtype": "float32",
                             "weights": "random-init"})
    return pd.DataFrame(rows)


def plant(per_query: pd.DataFrame, doc: str, query: str, shift, metric: str = "ndcg@10") -> pd.DataFrame:
    out = per_query.copy()
    mask = (out["doc_lang"] == doc) & (out["query_lang"] == query) & (out["metric"] == metric)
    out.loc[mask, "value"] = out.loc[mask, "value"] + (shift(mask.sum()) if callable(shift) else shift)
    return out


def cell(comparison, doc: str, query: str, metric: str = "ndcg@10") -> pd.Series:
    c = comparison.cells
    rows = c[(c["doc_lang"] == doc) & (c["query_lang"] == query) & (c["metric"] == metric)]
    assert len(rows) == 1
    return rows.iloc[0]


# ----------------------------------------------------------------------------- run vs run


def test_identical_runs_pass_with_p_one_everywhere(tmp_path: Path) -> None:
    per_query = make_per_query(("model-a", "model-b"))
    run = read_folder(make_run(tmp_path / "run", per_query))
    base = read_folder(make_run(tmp_path / "base", per_query.copy()))
    comparison = compare_runs(run, base, FAST, progress=False)
    assert comparison.verdict == "pass" and comparison.exit_code == EXIT_PASS
    assert comparison.coverage_problems == ()
    assert len(comparison.cells) == 2 * 9 * 2  # models x cells x metrics
    assert (comparison.cells["delta"] == 0).all() and (comparison.subsets["delta"] == 0).all()
    tested = comparison.cells[comparison.cells["metric"] == "ndcg@10"]
    assert (tested["p_value"] == 1.0).all() and (tested["p_adjusted"] == 1.0).all()
    assert comparison.cells[comparison.cells["metric"] == "mrr@10"]["p_value"].isna().all()
    assert len(comparison.languages) == 2 * 2 * 3 and (comparison.languages["p_adjusted"] == 1.0).all()
    assert not comparison.means["regressed"].any()
    assert not any("too few" in n for n in comparison.notes)


def test_too_few_resamples_for_the_family_are_flagged(tmp_path: Path) -> None:
    per_query = make_per_query()
    run = read_folder(make_run(tmp_path / "run", plant(per_query, "en", "en", -0.2)))
    few = CompareSettings(significance=SignificanceSettings(n_resamples=100))
    comparison = compare_runs(run, read_folder(make_run(tmp_path / "base", per_query)), few, progress=False)
    assert any("raise significance.n_resamples above 180" in n for n in comparison.notes)


def test_planted_drop_in_one_cell_is_found_significant_and_fails(tmp_path: Path) -> None:
    base_q = make_per_query()
    run = read_folder(make_run(tmp_path / "run", plant(base_q, "fr", "de", -0.2)))
    base = read_folder(make_run(tmp_path / "base", base_q))
    comparison = compare_runs(run, base, FAST, progress=False)
    assert comparison.verdict == "regression" and comparison.exit_code == EXIT_REGRESSION
    hit = cell(comparison, "fr", "de")
    assert hit["delta"] == pytest.approx(-0.2)
    assert hit["significant"] and hit["regressed"] and hit["p_adjusted"] < 0.05
    others = comparison.cells[~((comparison.cells["doc_lang"] == "fr") & (comparison.cells["query_lang"] == "de"))]
    assert not others["regressed"].any() and not others["significant"].any()
    assert comparison.regressed_cells[["doc_lang", "query_lang"]].values.tolist() == [["fr", "de"]]
    langs = comparison.languages.set_index(["axis", "lang"])
    assert langs.loc[("query_lang", "de"), "significant"] and langs.loc[("doc_lang", "fr"), "significant"]
    assert not langs.loc[("query_lang", "en"), "significant"]
    # 0.2 / 9 cells = 0.022 > mean tolerance 0.01
    mean = comparison.means.set_index(["metric", "scope"]).loc[("ndcg@10", "all")]
    assert mean["delta"] == pytest.approx(-0.2 / 9) and mean["regressed"]


def test_significant_drop_within_tolerance_passes(tmp_path: Path) -> None:
    base_q = make_per_query()
    run = read_folder(make_run(tmp_path / "run", plant(base_q, "en", "en", -0.01)))
    comparison = compare_runs(run, read_folder(make_run(tmp_path / "base", base_q)), FAST, progress=False)
    hit = cell(comparison, "en", "en")
    assert hit["significant"] and not hit["drop_beyond"] and not hit["regressed"]
    assert comparison.verdict == "pass"


def test_noisy_drop_beyond_tolerance_needs_significance(tmp_path: Path) -> None:
    base_q = make_per_query()
    base_q.loc[base_q["metric"] == "ndcg@10", "value"] = 0.5
    noisy = plant(base_q, "de", "fr", lambda n: np.tile([-0.5, 0.44], n // 2))  # mean -0.03, signs split
    run = read_folder(make_run(tmp_path / "run", noisy))
    base = read_folder(make_run(tmp_path / "base", base_q))
    strict = compare_runs(run, base, FAST, progress=False)
    hit = cell(strict, "de", "fr")
    assert hit["delta"] == pytest.approx(-0.03) and hit["drop_beyond"]
    assert hit["p_value"] > 0.5 and not hit["regressed"] and strict.verdict == "pass"
    lenient = CompareSettings(significance=FAST.significance, rule=RegressionRule(require_significance=False))
    assert cell(compare_runs(run, base, lenient, progress=False), "de", "fr")["regressed"]


def test_gate_metrics_decide_which_drops_fail(tmp_path: Path) -> None:
    base_q = make_per_query()
    run = read_folder(make_run(tmp_path / "run", plant(base_q, "en", "de", -0.3, metric="mrr@10")))
    base = read_folder(make_run(tmp_path / "base", base_q))
    assert compare_runs(run, base, FAST, progress=False).verdict == "pass"  # mrr@10 reported, not gated
    gated = CompareSettings(significance=FAST.significance, rule=RegressionRule(gate_metrics=("ndcg@10", "mrr@10")))
    comparison = compare_runs(run, base, gated, progress=False)
    hit = cell(comparison, "en", "de", metric="mrr@10")
    # No per-query test on mrr@10 (the significance metric is ndcg@10): the drop alone decides.
    assert np.isnan(hit["p_value"]) and hit["regressed"] and comparison.verdict == "regression"


@pytest.mark.parametrize("scale, verdict", [(1.25, "regression"), (1.05, "pass"), (0.5, "pass")])
def test_latency_increase_beyond_tolerance_fails(tmp_path: Path, scale: float, verdict: str) -> None:
    per_query = make_per_query()
    run = read_folder(make_run(tmp_path / "run", per_query, latency=make_latency(scale=scale)))
    base = read_folder(make_run(tmp_path / "base", per_query, latency=make_latency()))
    settings = CompareSettings(significance=FAST.significance,
                               rule=RegressionRule(latency_metrics=("p50_ms", "texts_per_s")))
    comparison = compare_runs(run, base, settings, progress=False)
    assert comparison.verdict == verdict
    assert comparison.latency["increase_rel"].to_numpy() == pytest.approx(scale - 1)
    assert comparison.latency["regressed"].all() == (verdict == "regression")


def test_latency_on_one_side_only_is_a_note_not_a_failure(tmp_path: Path) -> None:
    per_query = make_per_query()
    run = read_folder(make_run(tmp_path / "run", per_query, latency=make_latency(scale=3.0)))
    comparison = compare_runs(run, read_folder(make_run(tmp_path / "base", per_query)), FAST, progress=False)
    assert comparison.latency is None and comparison.verdict == "pass"
    assert any("No latency comparison" in n for n in comparison.notes)


@pytest.mark.parametrize("change, message", [
    (lambda q: q[~((q["doc_lang"] == "fr") & (q["query_lang"] == "en"))], "result rows"),
    (lambda q: q[q["query_id"] != "NanoA-q3"], "per-query ndcg@10 rows"),
    (lambda q: pd.concat([q, q.assign(model="model-z")]), "models differ"),
    (lambda q: pd.concat([q, q.iloc[:2]]), "duplicated per-query ndcg@10 keys"),
])
def test_runs_that_cover_different_ground_fail_as_mismatch(tmp_path: Path, change, message) -> None:
    base_q = make_per_query()
    run = read_folder(make_run(tmp_path / "run", change(base_q)))
    comparison = compare_runs(run, read_folder(make_run(tmp_path / "base", base_q)), FAST, progress=False)
    assert comparison.verdict == "mismatch" and comparison.exit_code == EXIT_MISMATCH
    assert any(message in p for p in comparison.coverage_problems), comparison.coverage_problems


def test_latency_on_another_device_is_a_mismatch(tmp_path: Path) -> None:
    per_query = make_per_query()
    run = read_folder(make_run(tmp_path / "run", per_query, latency=make_latency().assign(device="cuda")))
    base = read_folder(make_run(tmp_path / "base", per_query, latency=make_latency()))
    comparison = compare_runs(run, base, FAST, progress=False)
    assert comparison.verdict == "mismatch"
    assert any("different device" in p for p in comparison.coverage_problems)


def test_run_report_summary_first_and_footer_names_the_test(tmp_path: Path) -> None:
    base_q = make_per_query()
    run = read_folder(make_run(tmp_path / "run", plant(base_q, "fr", "de", -0.2)))
    comparison = compare_runs(run, read_folder(make_run(tmp_path / "base", base_q)), FAST, progress=False)
    md = to_markdown(comparison)
    lines = md.splitlines()
    assert lines[0] == "# Regression report: `run` vs baseline `base`"
    assert lines[2] == "**Verdict: ❌ REGRESSION**"
    assert "Regressed cells: **1** of 18 cell values: 1 of 9 by the cell rule" in md
    assert md.index("## Worst cells") < md.index("## Means over cells") < md.index("\n---\n")
    footer = md[md.index("\n---\n"):]
    for needle in ("paired randomization", "2000 resamples", "seed 0", "Holm-Bonferroni", "α = 0.05",
                   "cell drop 0.02", "mean drop 0.01", "latency increase 10%", "A regression is"):
        assert needle in footer, needle
    assert "-0.200 ▼*" in md
    payload = to_dict(comparison)
    json.dumps(payload)  # JSON-able
    assert payload["verdict"] == "regression" and payload["exit_code"] == 1
    assert payload["summary"]["regressed_cells"] == 1
    assert payload["summary"]["worst_cells"][0]["doc_lang"] == "fr"
    tables = to_tables(comparison)
    assert set(tables) == {"deltas_cells.csv", "deltas_subsets.csv", "significance_languages.csv"}
    assert tables["deltas_cells.csv"]["regressed"].sum() == payload["summary"]["regressed_cells"]


def test_settings_reject_unknown_choices() -> None:
    with pytest.raises(ValueError, match="valid choices"):
        SignificanceSettings(correction="bonferroni")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="valid choices"):
        RegressionRule(latency_metrics=("median",))
    with pytest.raises(ValueError, match="cell_drop_abs"):
        Tolerances(cell_drop_abs=-1)


# ----------------------------------------------------------------------------- committed baselines


def test_baseline_folder_round_trips_exactly(tmp_path: Path) -> None:
    per_query = make_per_query(("model-a", "model-b"), seed=3)
    run_dir = make_run(tmp_path / "run", per_query, latency=make_latency(("model-a", "model-b")))
    out = write_baseline(run_dir, tmp_path / "baselines" / "smoke")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["baseline.json", "config.yaml", "environment.json", "latency.csv", "per_query_ndcg.csv",
                     "results.csv"]
    stored = pd.read_csv(out / "per_query_ndcg.csv", dtype=str)
    assert "metric" not in stored.columns and len(stored) == len(per_query) // 2
    baseline = read_folder(out)
    assert baseline.kind == "baseline" and baseline.name == "smoke"
    assert set(baseline.per_query["metric"]) == {"ndcg@10"}
    run = read_folder(run_dir)
    pd.testing.assert_frame_equal(baseline.results.sort_values(list(baseline.results.columns[:-1])).reset_index(drop=True),
                                  run.results.sort_values(list(run.results.columns[:-1])).reset_index(drop=True))
    comparison = compare_runs(run, baseline, FAST, progress=False)
    assert comparison.verdict == "pass" and (comparison.cells["delta"] == 0).all()
    assert (comparison.cells.dropna(subset=["p_value"])["p_value"] == 1.0).all()
    assert (comparison.latency["increase_rel"] == 0).all()


def test_baseline_refresh_drops_stale_files_and_refuses_unrelated_folders(tmp_path: Path) -> None:
    per_query = make_per_query()
    out = write_baseline(make_run(tmp_path / "run1", per_query, latency=make_latency()), tmp_path / "b")
    assert (out / "latency.csv").exists()
    write_baseline(make_run(tmp_path / "run2", per_query), out)
    assert not (out / "latency.csv").exists()
    assert json.loads((out / "baseline.json").read_text())["source_run"].endswith("run2")
    unrelated = tmp_path / "unrelated"
    unrelated.mkdir()
    (unrelated / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="refusing"):
        write_baseline(tmp_path / "run1", unrelated)


def test_without_per_query_scores_drops_are_judged_by_tolerance_alone(tmp_path: Path) -> None:
    per_query = make_per_query()
    run = read_folder(make_run(tmp_path / "run", plant(per_query, "en", "de", -0.05)))
    base_dir = make_run(tmp_path / "base", per_query)
    (base_dir / "per_query.parquet").unlink()
    comparison = compare_runs(run, read_folder(base_dir), FAST, progress=False)
    assert comparison.languages.empty and comparison.cells["p_value"].isna().all()
    assert any("No significance test" in n and "baseline base" in n for n in comparison.notes)
    assert cell(comparison, "en", "de")["regressed"] and comparison.verdict == "regression"


# ----------------------------------------------------------------------------- run vs published


@pytest.fixture(scope="module")
def reference():
    return load_reference(REFERENCE_DIR)


def published_as_run(reference, mapping: dict[str, str], *, weights: str = "real", shift=None) -> RunFolder:
    """A run whose cells are the published ones (optionally one cell shifted)."""
    frames = []
    for run_model, ref_model in mapping.items():
        rows = reference.results[(reference.results["model"] == ref_model)].copy()
        # The English model-index mean is its own number (0.66123); the run's en/en mean is the cell.
        rows = rows[(rows["benchmark"] == "nanobeir-extended") | (rows["subset"] != "mean")]
        rows["model"] = run_model
        rows["benchmark"] = "nanobeir-extended"
        frames.append(rows)
    results = pd.concat(frames, ignore_index=True)
    if shift:
        (doc, query), amount = shift
        mask = (results["doc_lang"] == doc) & (results["query_lang"] == query) & (results["subset"] == "mean")
        results.loc[mask, "value"] += amount
    env = {"models": [label(m, weights) for m in mapping]}
    return RunFolder(path=Path("synthetic"), kind="run", results=results, per_query=None,
                   latency=None, environment=env)


def test_published_numbers_reproduce_themselves(reference) -> None:
    mapping = {"LFM2-ColBERT-350M": "LFM2-ColBERT-350M", "GTE-ModernColBERT-v1": "GTE-ModernColBERT-v1"}
    comparison = compare_to_published(published_as_run(reference, mapping), reference, mapping, tolerance=0.01)
    assert comparison.verdict == "reproduced" and comparison.exit_code == EXIT_PASS
    for m in comparison.models:
        assert len(m.cells) == 81 and (m.cells["delta"] == 0).all() and m.cells["within"].all()
        assert m.summary.set_index("scope")["n_cells"].to_dict() == {"all": 81, "diagonal": 9, "off-diagonal": 72}
    lfm2 = comparison.models[1]
    assert lfm2.run_model == "LFM2-ColBERT-350M"
    # The English per-subset table, including the published mean once all 13 subsets are present.
    assert len(lfm2.subsets) == 14 and (lfm2.subsets["delta"].iloc[:13] == 0).all()
    assert lfm2.subsets.iloc[13]["subset"] == "mean"
    assert lfm2.subsets.iloc[13]["delta"] == pytest.approx(0.661 - 0.66123) and lfm2.subsets["within"].all()
    gte = comparison.models[0].averages.set_index(["axis", "lang"])
    assert not gte.loc[("doc", "fr"), "printed_agrees"] and gte.loc[("doc", "fr"), "published_recomputed"] == pytest.approx(0.335444, abs=1e-6)
    assert gte.loc[("doc", "fr"), "published_printed"] == pytest.approx(0.3335)
    assert lfm2.averages["printed_agrees"].all()


def test_one_cell_off_is_not_reproduced_and_named(reference) -> None:
    mapping = {"LFM2-ColBERT-350M": "LFM2-ColBERT-350M"}
    run = published_as_run(reference, mapping, shift=(("ja", "ko"), -0.05))
    comparison = compare_to_published(run, reference, mapping, tolerance=0.01)
    m = comparison.models[0]
    assert comparison.verdict == "not reproduced" and comparison.exit_code == EXIT_REGRESSION
    assert int((~m.cells["within"]).sum()) == 1
    assert (m.largest["doc_lang"], m.largest["query_lang"]) == ("ja", "ko")
    assert m.largest["delta"] == pytest.approx(-0.05)
    assert m.summary.set_index("scope").loc["all", "delta"] == pytest.approx(-0.05 / 81)
    assert m.summary.set_index("scope").loc["diagonal", "delta"] == pytest.approx(0.0)


def test_random_init_and_unmapped_models_are_labelled(reference) -> None:
    mapping = {"fixture-LFM2-tiny": "LFM2-ColBERT-350M", "extra-model": "GTE-ModernColBERT-v1"}
    run = published_as_run(reference, mapping, weights="random-init")
    comparison = compare_to_published(run, reference, {"fixture-LFM2-tiny": "LFM2-ColBERT-350M"}, tolerance=0.01)
    assert comparison.without_reference == ("extra-model",)
    assert comparison.models[0].weights == "random-init"
    md = to_markdown(comparison)
    assert "fixture-LFM2-tiny: RANDOM-INIT WEIGHTS" in md
    assert "## fixture-LFM2-tiny [RANDOM-INIT] vs published LFM2-ColBERT-350M" in md
    assert "no published reference (not compared): extra-model" in md
    # The GTE averages check is always reported, with the recomputed values.
    assert "row AVG FR | 33.35% | 33.54%" in md and "column AVG PT | 34.24% | 34.52%" in md
    payload = to_dict(comparison)
    json.dumps(payload)
    assert payload["models"][0]["weights"] == "random-init"
    assert set(to_tables(comparison)) == {"deltas_cells.csv", "printed_averages_check.csv"}
    with pytest.raises(ValueError, match="no published table"):
        compare_to_published(run, reference, {"fixture-LFM2-tiny": "Unknown-Model"}, tolerance=0.01)


def test_published_report_flags_printed_averages_in_the_published_matrix(reference) -> None:
    mapping = {"GTE-ModernColBERT-v1": "GTE-ModernColBERT-v1"}
    md = to_markdown(
        compare_to_published(published_as_run(reference, mapping), reference, mapping, tolerance=0.01))
    assert "33.54% ⚠ printed 33.35%" in md and "34.52% ⚠ printed 34.24%" in md
    assert md.count("⚠ printed") == 3
    assert "**Verdict: ✅ reproduced**" in md


def test_diagonal_only_reference_compares_the_diagonal_and_says_not_published(reference) -> None:
    # A full 9x9 run (the LFM2 card's cells, under another label) against hakari-bench's BM25 diagonal.
    run = published_as_run(reference, {"BM25": "LFM2-ColBERT-350M"})
    comparison = compare_to_published(run, reference, {"BM25": "BM25 (hakari-bench)"}, tolerance=0.01)
    m = comparison.models[0]
    assert m.coverage == "diagonal" and len(m.cells) == 9
    assert (m.cells["doc_lang"] == m.cells["query_lang"]).all()
    assert len(m.unpublished_cells) == 72 and not m.missing_cells
    assert set(m.summary["scope"]) == {"all", "diagonal"}  # no off-diagonal mean is invented
    ar = m.cells.set_index("doc_lang").loc["ar"]
    assert ar["run"] == 0.490 and ar["published"] == 0.4412 and ar["delta"] == pytest.approx(0.490 - 0.4412)
    # English: the run's 13 per-subset model-index rows against hakari's 13 task values.
    assert set(m.subsets["language"]) == {"en"} and len(m.subsets) == 13
    md = to_markdown(comparison)
    assert "72 run cells are not published by the source" in md
    assert "| BM25 | BM25 (hakari-bench) | real | diagonal | nanobeir-extended | 9 | " in md
    assert "| +0.0735 | +0.0735 | n/p |" in md  # Δ mean, Δ diagonal, Δ off-diagonal: not published
    assert "| ar | +0.049 ✗ | n/p | n/p |" in md  # the matrix's other cells: not published, never 0
    assert "hakari-bench/hakari-bench" in md and "Conditions: Diagonal only" in md  # source and conditions cited


def test_drift_gate_fails_any_small_change_either_way(tmp_path: Path) -> None:
    base_q = make_per_query()
    run = read_folder(make_run(tmp_path / "run", plant(base_q, "de", "fr", +0.001)))
    base = read_folder(make_run(tmp_path / "base", base_q))
    assert compare_runs(run, base, FAST, progress=False).verdict == "pass"  # an improvement, within tolerance
    strict = CompareSettings(tolerances=Tolerances(any_change_abs=1e-6),
                             significance=SignificanceSettings(n_resamples=2000, seed=0))
    comparison = compare_runs(run, base, strict, progress=False)
    assert comparison.verdict == "regression"
    assert cell(comparison, "de", "fr")["drifted"] and cell(comparison, "de", "fr")["regressed"]
    assert not cell(comparison, "en", "en")["drifted"]
    assert "drift gate" in strict.describe_rule()
    same = compare_runs(read_folder(make_run(tmp_path / "same", base_q.copy())), base, strict, progress=False)
    assert same.verdict == "pass"


def test_drift_only_failure_counts_the_same_in_markdown_and_json(tmp_path: Path) -> None:
    base_q = make_per_query()
    # Up by 0.001 in one cell: no cell rule fires, only the drift gate (the CI gate's case).
    run = read_folder(make_run(tmp_path / "run", plant(base_q, "de", "fr", +0.001, metric="mrr@10")))
    strict = CompareSettings(tolerances=Tolerances(any_change_abs=1e-6), significance=FAST.significance)
    comparison = compare_runs(run, read_folder(make_run(tmp_path / "base", base_q)), strict, progress=False)
    assert comparison.verdict == "regression" and not comparison.cells["gate_regressed"].any()
    summary = to_dict(comparison)["summary"]
    md = to_markdown(comparison)
    shown = int(re.search(r"Regressed cells: \*\*(\d+)\*\*", md).group(1))
    assert shown == summary["regressed_cells"] == summary["drifted_cells"] == 1
    assert summary["gate_regressed_cells"] == 0 and summary["drifted_subsets"] == 2
    assert "0 of 9 by the cell rule" in md and "1 by the drift gate" in md and "plus 2 per-subset values" in md
    assert "No regressed cells" not in md and "| de | fr |" in md  # the drifted cell is listed among the worst


def test_tested_deltas_match_the_reported_mean_over_subsets(tmp_path: Path) -> None:
    base_q = make_per_query()
    # NanoB keeps half its queries: a pooled (query-weighted) mean would differ from the subset mean.
    base_q = base_q[~((base_q["subset"] == "NanoB") & base_q["query_id"].str.endswith(tuple("6789")))]
    shifted = base_q.copy()
    mask = ((shifted["subset"] == "NanoA") & (shifted["doc_lang"] == "fr") & (shifted["query_lang"] == "de")
            & (shifted["metric"] == "ndcg@10"))
    shifted.loc[mask, "value"] -= 0.3
    comparison = compare_runs(read_folder(make_run(tmp_path / "run", shifted)), read_folder(make_run(tmp_path / "base", base_q)),
                              FAST, progress=False)
    assert cell(comparison, "fr", "de")["delta"] == pytest.approx(-0.15)  # (-0.3 + 0) / 2 subsets
    langs = comparison.languages.set_index(["axis", "lang"])
    assert langs.loc[("query_lang", "de"), "delta"] == pytest.approx(-0.05)  # mean of its 3 cells
    assert langs.loc[("doc_lang", "fr"), "delta"] == pytest.approx(-0.05)
