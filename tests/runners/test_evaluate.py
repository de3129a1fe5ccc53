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


# The smoke models: two ColBERT fixtures and a dense fixture encode 3 subsets x (9 document + 9 query
# languages); BM25 builds one index per subset and document language (3 x 9), encodes no query.
SMOKE_MODELS = {"fixture-LFM2-tiny": "colbert", "fixture-ModernBERT-tiny": "colbert", "fixture-dense-tiny": "dense",
                "fixture-BM25": "bm25"}
ENCODER_PASSES = 3 * 3 * 18
INDEXES = 3 * 9
UNITS = ENCODER_PASSES + INDEXES


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
    # On a cold store: 9 corpus passes (or BM25 indexes) per subset and model for 81 cells, never 81.
    assert summary["encoded"] == UNITS and summary["reused"] == 0


def test_results_long_format(smoke_run):
    out, _ = smoke_run
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == ["model", "benchmark", "subset", "doc_lang", "query_lang", "metric", "value"]
    assert set(results["subset"]) == {"NanoFiQA2018", "NanoNFCorpus", "NanoSciFact", "mean"}
    assert set(results["doc_lang"]) == set(MATRIX_LANGUAGES) == set(results["query_lang"])
    assert set(results["model"]) == set(SMOKE_MODELS)
    for metric in ["ndcg@10", "mrr@10", "map@100", "recall@100", "precision@3", "recall@5", "accuracy@10"]:
        assert metric in set(results["metric"]), metric
    ndcg = results[results["metric"] == "ndcg@10"]
    assert ndcg["value"].between(0, 1).all()
    # 4 models x 81 cells x (3 subsets + mean)
    assert len(ndcg) == len(SMOKE_MODELS) * 81 * 4
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
    assert len(run_files) == len(SMOKE_MODELS) * 81 * 3
    bm25 = (out / "runs" / "fixture-BM25" / "en-en" / "NanoSciFact.trec").read_text().splitlines()
    assert bm25 and bm25[0].split()[5] == "fixture-BM25"
    first = run_files[0].read_text().splitlines()[0].split()
    assert len(first) == 6 and first[1] == "Q0" and first[3] == "1"


def test_environment_labels(smoke_run):
    out, _ = smoke_run
    env = json.loads((out / "environment.json").read_text())
    assert env["packages"]["torch"] and env["packages"]["transformers"]
    assert env["hardware"]["device"] == "cpu"
    assert {m["name"]: m["kind"] for m in env["models"]} == SMOKE_MODELS
    assert {m["name"]: m["weights"] for m in env["models"]} == {
        name: "lexical" if kind == "bm25" else "random-init" for name, kind in SMOKE_MODELS.items()}
    dense = next(m for m in env["models"] if m["kind"] == "dense")
    # A fixture's label and cache identity do not name the cache folder; its weights hash does identify it.
    assert dense["source"] == "fixture:dense" and dense["weights_hash"] and dense["identity"]["kind"] == "dense"
    assert {"fixture_bm25 NanoSciFact ja documents"} <= set(env["encoding"]["encoded"])
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
    # A heatmap per model, a delta per non-baseline model, one leaderboard.
    assert len(figures) == 4 + 3 + 1 and "leaderboard_fixture.png" in figures
    assert "## Leaderboard: fixture (ndcg@10)" in report and "![leaderboard](figures/leaderboard_fixture.png)" in report
    assert report.index("## Leaderboard") < report.index("## fixture-LFM2-tiny: ndcg@10")  # matrices stay, after it
    assert "- **fixture-BM25**: bm25: `bm25s`" in report and "- **fixture-dense-tiny**: dense: `fixture:dense`" in report
    assert "(fixture-LFM2-tiny, fixture-ModernBERT-tiny, fixture-dense-tiny)" in report  # BM25 has no weights


def test_second_run_encodes_nothing_and_is_identical(smoke_run, smoke_cache, tmp_path):
    out, _ = smoke_run
    again = evaluate.run(smoke_cfg(smoke_cache), out_dir=tmp_path)
    assert again["encoded"] == 0 and again["reused"] == UNITS
    assert (tmp_path / "results.csv").read_bytes() == (out / "results.csv").read_bytes()


def test_a_damaged_store_entry_is_detected_and_re_encoded(smoke_run, smoke_cache, tmp_path, caplog):
    out, _ = smoke_run
    entry = sorted((smoke_cache / "store").rglob("*.safetensors"))[5]
    data = bytearray(entry.read_bytes())
    data[-3] ^= 0xFF  # flip a byte inside the vectors
    entry.write_bytes(bytes(data))
    again = evaluate.run(smoke_cfg(smoke_cache), out_dir=tmp_path)
    assert again["encoded"] == 1 and again["reused"] == UNITS - 1
    assert any("checksum" in r.getMessage() or "damaged" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "results.csv").read_bytes() == (out / "results.csv").read_bytes()


def test_a_damaged_bm25_index_is_rebuilt_with_identical_results(smoke_run, smoke_cache, tmp_path, caplog):
    out, _ = smoke_run
    manifest = sorted((smoke_cache / "indexes").rglob("manifest.json"))[4]
    manifest.write_text("{not json", encoding="utf-8")
    again = evaluate.run(smoke_cfg(smoke_cache), out_dir=tmp_path)
    assert again["encoded"] == 0 and again["reused"] == UNITS  # the damage shows when the index is read
    assert any("does not load" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "results.csv").read_bytes() == (out / "results.csv").read_bytes()
    assert json.loads(manifest.read_text(encoding="utf-8"))["doc_ids"]  # rebuilt in place


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


def test_leaderboard_experiment_composes_into_a_plan_of_every_kind(tmp_path):
    """The hub run cannot happen offline; its config must still compose into a plan."""
    cfg = compose("evaluate", ["experiment=leaderboard", f"runtime.cache_dir={tmp_path}"])
    plan = evaluate.build_plan(cfg)
    kinds = {spec.name: spec.kind for spec in plan.models}
    assert kinds == {"LFM2-ColBERT-350M": "colbert", "LFM2.5-ColBERT-350M": "colbert", "GTE-ModernColBERT-v1": "colbert",
                     "BGE-M3-multivector": "bge_m3", "multilingual-e5-small": "dense", "BM25": "bm25"}
    assert [spec.trust_remote_code for spec in plan.models if spec.name.startswith("LFM2.5")] == [True]
    assert len(plan.cells) == 81 and len(plan.subsets) == 13
    e5 = next(spec for spec in plan.models if spec.kind == "dense")
    assert e5.options["query_prompt"] == "query: " and e5.options["document_prompt"] == "passage: "
    assert e5.revision and len(e5.revision) == 40
    bm25 = next(spec for spec in plan.models if spec.kind == "bm25")
    assert bm25.options == {"k1": 1.5, "b": 0.75, "method": "lucene", "delta": 0.5} and bm25.ranks_directly
    from nanobeir_ext.evaluation.plan import work_units

    units = work_units(plan)
    # Five encoders x 13 subsets x 18 passes, BM25 13 x 9 indexes.
    assert len(units) == 5 * 13 * 18 + 13 * 9
    assert {u.role for u in units if u.model_key == "bm25"} == {"document"}


def test_an_unknown_kind_is_refused_before_any_model_loads(tmp_path):
    with pytest.raises(ValueError, match=r"models.fixture_bm25.kind='sparse'; valid choices: \['colbert'"):
        evaluate.build_plan(smoke_cfg(tmp_path, "models.fixture_bm25.kind=sparse"))


def test_a_moving_revision_is_named_in_the_report_notes():
    from types import SimpleNamespace

    from nanobeir_ext.data.records import BenchmarkSource
    from nanobeir_ext.protocol import ModelLabel
    from runners.evaluate import unpinned_notes

    pinned, moving = "370cc1088cb5722499830bab3ff37a39c963fcd7", "c1647d10d6edc6f70837f42f0a978f2df53f51dd"
    plan = SimpleNamespace(models=(SimpleNamespace(key="a", revision=pinned), SimpleNamespace(key="b", revision="main")),
                           source=BenchmarkSource(layout="nanobeir-extended", repo_id="", revision=None, path="/local"))
    labels = tuple(ModelLabel(name=n, source="org/x", revision=r, weights="real", dtype="float32", device="cpu")
                   for n, r in (("A", pinned), ("B", moving)))
    assert unpinned_notes(plan, SimpleNamespace(models=labels)) == [
        f"NOT PINNED: B read {moving} for models.b.revision=main"]
