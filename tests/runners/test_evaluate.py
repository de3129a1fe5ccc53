"""End to end: the smoke experiment through Hydra's compose API, on the offline fixture."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from models.registry import fixture_models_dir
from models.fixtures import build_fixture_checkpoints
from nanobeir_ext.languages import MATRIX_LANGUAGES
from runners import evaluate
from tests.helpers import compose

pytestmark = pytest.mark.slow


def smoke_cfg(cache: Path, *extra: str):
    return compose("evaluate", ["experiment=smoke", f"runtime.cache_dir={cache}", "runtime.progress=false", *extra])


@pytest.fixture(scope="module")
def smoke_cache(tmp_path_factory, shared_cache) -> Path:
    """An empty embedding store of its own; the session's built fixture models are shared."""
    build_fixture_checkpoints(fixture_models_dir(shared_cache))
    cache = tmp_path_factory.mktemp("smoke-cache")
    os.symlink(fixture_models_dir(shared_cache), fixture_models_dir(cache))
    return cache


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, smoke_cache):
    out = tmp_path_factory.mktemp("smoke")
    first = evaluate.run(smoke_cfg(smoke_cache), out_dir=out)
    return out, first


def test_smoke_outputs_exist(smoke_run):
    out, summary = smoke_run
    for name in ["config.yaml", "environment.json", "results.csv", "results.parquet", "per_query.parquet", "report.md", "run.json"]:
        assert (out / name).is_file(), name
    # 2 models x 3 subsets x (9 document + 9 query languages) encoder passes on a cold store: 9 corpus
    # passes per subset and model for 81 cells, never 81.
    assert summary["encoded"] == 2 * 3 * 18 and summary["reused"] == 0


def test_results_long_format(smoke_run):
    out, _ = smoke_run
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == ["model", "benchmark", "subset", "doc_lang", "query_lang", "metric", "value"]
    assert set(results["subset"]) == {"NanoFiQA2018", "NanoNFCorpus", "NanoSciFact", "mean"}
    assert set(results["doc_lang"]) == set(MATRIX_LANGUAGES) == set(results["query_lang"])
    assert set(results["model"]) == {"fixture-LFM2-tiny", "fixture-ModernBERT-tiny"}
    for metric in ["ndcg@10", "mrr@10", "map@100", "recall@100", "precision@3", "recall@5", "accuracy@10"]:
        assert metric in set(results["metric"]), metric
    ndcg = results[results["metric"] == "ndcg@10"]
    assert ndcg["value"].between(0, 1).all()
    # 2 models x 81 cells x (3 subsets + mean)
    assert len(ndcg) == 2 * 81 * 4
    # The mean rows are the unweighted mean of the subset rows.
    keyed = ndcg.set_index(["model", "doc_lang", "query_lang", "subset"])["value"]
    cell = ("fixture-LFM2-tiny", "ja", "en")
    subsets = [keyed[cell + (s,)] for s in ["NanoFiQA2018", "NanoNFCorpus", "NanoSciFact"]]
    assert keyed[cell + ("mean",)] == pytest.approx(sum(subsets) / 3, abs=1e-9)
    parquet = pd.read_parquet(out / "results.parquet")
    pd.testing.assert_frame_equal(parquet.reset_index(drop=True), results, check_exact=False, rtol=1e-9)


def test_per_query_and_runs(smoke_run):
    out, _ = smoke_run
    per_query = pd.read_parquet(out / "per_query.parquet")
    assert {"query_id", "metric", "value"} <= set(per_query.columns)
    one_cell = per_query[(per_query["model"] == "fixture-LFM2-tiny") & (per_query["doc_lang"] == "en")
                         & (per_query["query_lang"] == "de") & (per_query["subset"] == "NanoSciFact")
                         & (per_query["metric"] == "ndcg@10")]
    assert len(one_cell) == 8  # every fixture query has a relevant document
    run_files = sorted((out / "runs").rglob("*.trec"))
    assert len(run_files) == 2 * 81 * 3
    first = run_files[0].read_text().splitlines()[0].split()
    assert len(first) == 6 and first[1] == "Q0" and first[3] == "1"


def test_environment_labels(smoke_run):
    out, _ = smoke_run
    env = json.loads((out / "environment.json").read_text())
    assert env["packages"]["torch"] and env["packages"]["transformers"]
    assert env["hardware"]["device"] == "cpu"
    assert {m["weights"] for m in env["models"]} == {"random-init"}
    assert env["benchmark"]["name"] == "fixture"
    assert "commit" in env["git"]


def test_report_tables_and_figures(smoke_run):
    out, _ = smoke_run
    report = (out / "report.md").read_text()
    assert "| Doc \\ Query | ar | de | en | es | fr | it | ja | ko | pt | AVG |" in report
    assert "Delta: fixture-LFM2-tiny minus fixture-ModernBERT-tiny" in report
    assert "Random-init weights" in report
    assert "NanoFiQA2018 ko: 1 empty documents and 0 empty queries not encoded" in report
    assert "empty texts: rule `pylate`" in report and "benchmark.empty_texts=pylate, benchmark.strict=false" in report
    assert "retrieval.padding=mask" in report
    assert "averages cover 81 of 81 cells and 3 of 3 subsets" in report and "Warning" not in report
    assert "texts longer than the model's query length were truncated" in report
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert len(figures) == 3 and any(name.startswith("delta_") for name in figures)


def test_second_run_encodes_nothing_and_is_identical(smoke_run, smoke_cache, tmp_path):
    out, _ = smoke_run
    again = evaluate.run(smoke_cfg(smoke_cache), out_dir=tmp_path)
    assert again["encoded"] == 0 and again["reused"] == 2 * 3 * 18
    assert (tmp_path / "results.csv").read_bytes() == (out / "results.csv").read_bytes()


def test_a_damaged_store_entry_is_detected_and_re_encoded(smoke_run, smoke_cache, tmp_path, caplog):
    out, _ = smoke_run
    entry = sorted((smoke_cache / "store").rglob("*.safetensors"))[5]
    data = bytearray(entry.read_bytes())
    data[-3] ^= 0xFF  # flip a byte inside the vectors
    entry.write_bytes(bytes(data))
    again = evaluate.run(smoke_cfg(smoke_cache), out_dir=tmp_path)
    assert again["encoded"] == 1 and again["reused"] == 2 * 3 * 18 - 1
    assert any("checksum" in r.getMessage() or "damaged" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "results.csv").read_bytes() == (out / "results.csv").read_bytes()


def test_output_folder_with_another_run_is_refused(smoke_run, smoke_cache):
    out, _ = smoke_run
    with pytest.raises(FileExistsError, match="different evaluation"):
        evaluate.run(smoke_cfg(smoke_cache, "retrieval.k=200"), out_dir=out)


def test_padding_and_data_rules_reach_the_plan_and_the_fingerprint(tmp_path):
    default = smoke_cfg(tmp_path)
    plan = evaluate.build_plan(default)
    assert plan.padding == "mask" and plan.data_rules.empty_texts == "pylate" and not plan.data_rules.strict
    changed = smoke_cfg(tmp_path, "retrieval.padding=zero", "benchmark.empty_texts=mteb", "benchmark.strict=true")
    plan = evaluate.build_plan(changed)
    assert plan.padding == "zero" and plan.data_rules.empty_texts == "mteb" and plan.data_rules.strict
    fingerprint = evaluate.run_fingerprint(changed)
    assert fingerprint["retrieval"]["padding"] == "zero" and fingerprint["benchmark"]["empty_texts"] == "mteb"
    assert fingerprint != evaluate.run_fingerprint(default)
    with pytest.raises(ValueError, match=r"retrieval.padding must be one of \['mask', 'zero'\], got 'pad'"):
        evaluate.build_plan(smoke_cfg(tmp_path, "retrieval.padding=pad"))
    with pytest.raises(ValueError, match=r"benchmark.empty_texts must be one of"):
        evaluate.build_plan(smoke_cfg(tmp_path, "benchmark.empty_texts=nope"))
