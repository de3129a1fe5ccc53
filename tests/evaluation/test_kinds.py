"""Every kind of retriever through the one pipeline: encoders (ColBERT, BGE-M3, dense) via the store
and exact top-k, rankers (BM25) via their own cached index, scored by the same metrics."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.bm25 import BM25Retriever
from nanobeir_ext.data import BenchmarkSource, DataRules
from nanobeir_ext.data.fixture import BENCHMARK_DIR
from nanobeir_ext.evaluation.pipeline import INDEX_DIR, run_evaluation
from nanobeir_ext.evaluation.plan import EvaluationPlan, ModelSpec, kind_options, shard_units, work_units
from nanobeir_ext.languages import matrix_cells
from nanobeir_ext.protocol import Encoder, EncoderRequest, ModelLabel, Ranker
from nanobeir_ext.retrieval.trec import read_trec_run

LANGS = ("en", "ja", "de")


def bm25_spec(**overrides) -> ModelSpec:
    return ModelSpec(**{"key": "bm25", "name": "BM25", "source": "bm25s", "kind": "bm25", **overrides})


def plan_for(cache: Path, *specs: ModelSpec, shard=None, subsets=("NanoSciFact", "NanoNFCorpus")) -> EvaluationPlan:
    return EvaluationPlan(models=specs, benchmark="fixture", source=BenchmarkSource(path=str(BENCHMARK_DIR)),
                          subsets=subsets, cells=tuple(matrix_cells(LANGS, LANGS)), metrics=("ndcg@10", "recall@100"),
                          cache_dir=cache, k=100, progress=False, shard=shard)


def bm25_factory(built: list | None = None):
    def factory(spec: ModelSpec, plan: EvaluationPlan) -> BM25Retriever:
        retriever = BM25Retriever(name=spec.name)
        if built is not None:
            original = retriever.index

            def counting(*args):
                built.append(args[1:3])
                return original(*args)
            retriever.index = counting  # type: ignore[method-assign]
        return retriever
    return factory


def test_a_ranker_plans_one_index_per_subset_and_document_language():
    plan = plan_for(Path("unused"), bm25_spec(), ModelSpec(key="c", name="C", source="x"))
    units = work_units(plan)
    bm25 = [u for u in units if u.model_key == "bm25"]
    assert [(u.subset, u.language, u.role) for u in bm25] == [(s, lang, "document") for s in plan.subsets
                                                              for lang in plan.doc_langs]
    assert set(plan.doc_langs) == set(LANGS)
    assert len(units) - len(bm25) == 2 * 3 * 2  # the encoder still encodes documents and queries


def test_kinds_and_options_are_checked_and_split_from_the_shared_keys():
    with pytest.raises(ValueError, match=r"models.x.kind='sparse'; valid choices: \['colbert', 'bge_m3', 'dense', 'bm25'\]"):
        ModelSpec(key="x", name="X", source="s", kind="sparse")
    assert ModelSpec(key="x", name="X", source="s").kind == "colbert"  # configs without a kind keep their meaning
    config = {"name": "E5", "source": "intfloat/x", "revision": None, "kind": "dense", "query_prompt": "query: ",
              "batch_size": 8, "architecture": None}
    assert kind_options(config) == {"query_prompt": "query: ", "batch_size": 8}
    assert isinstance(BM25Retriever(), Ranker) and not isinstance(BM25Retriever(), Encoder)


def test_bm25_runs_through_the_pipeline_and_resumes_from_its_indexes(tmp_path):
    built: list = []
    first = run_evaluation(plan_for(tmp_path / "cache", bm25_spec()), bm25_factory(built), runs_dir=tmp_path / "runs")
    assert sorted(set(built)) == sorted((s, lang) for s in ("NanoSciFact", "NanoNFCorpus") for lang in LANGS)
    assert len(first.encoding.encoded) == 6 and not first.encoding.reused
    assert first.models[0].kind == "bm25" and first.model_identities["bm25"]["kind"] == "bm25"
    manifests = sorted((tmp_path / "cache" / INDEX_DIR).rglob("manifest.json"))
    assert len(manifests) == 6
    ndcg = first.results[(first.results["metric"] == "ndcg@10") & (first.results["subset"] == "mean")]
    assert len(ndcg) == 9 and ndcg["value"].between(0, 1).all()
    diagonal = ndcg[ndcg["doc_lang"] == ndcg["query_lang"]]["value"].mean()
    assert diagonal > ndcg[ndcg["doc_lang"] != ndcg["query_lang"]]["value"].mean()  # word overlap needs one language
    # The run files are what was scored: the top document of a query carries the highest score.
    run = read_trec_run(tmp_path / "runs" / "BM25" / "en-en" / "NanoSciFact.trec")
    assert run and all(list(docs.values()) == sorted(docs.values(), reverse=True) for docs in run.values())

    again = run_evaluation(plan_for(tmp_path / "cache", bm25_spec()), bm25_factory())
    assert not again.encoding.encoded and len(again.encoding.reused) == 6
    assert again.results.equals(first.results)


def test_bm25_shards_build_their_indexes_and_the_final_run_builds_none(tmp_path):
    cache = tmp_path / "cache"
    spec = bm25_spec()
    shards = [run_evaluation(plan_for(cache, spec, shard=(i, 4)), bm25_factory()) for i in range(4)]
    assert [len(s.encoding.encoded) for s in shards] == [len(shard_units(work_units(plan_for(cache, spec)), (i, 4)))
                                                          for i in range(4)] == [2, 2, 1, 1]
    assert all(s.per_query.empty and not s.complete for s in shards)
    final = run_evaluation(plan_for(cache, spec), bm25_factory())
    assert not final.encoding.encoded and len(final.encoding.reused) == 6 and final.complete
    fresh = run_evaluation(plan_for(tmp_path / "fresh", spec), bm25_factory())
    assert final.results.equals(fresh.results)


def test_a_language_without_documents_gets_no_index_and_scores_zero(tmp_path):
    from tests.evaluation.test_empty_texts import write_snapshot

    tables = {"NanoToy_en": {"corpus": [{"_id": "d1", "text": ""}], "queries": [{"_id": "q1", "text": "apple"}]},
              "NanoToy_en_qrels": {"qrels": [{"query-id": "q1", "corpus-id": "d1"}]}}
    source = BenchmarkSource(path=str(write_snapshot(tmp_path / "x", tables)))
    plan = EvaluationPlan(models=(bm25_spec(),), benchmark="toy", source=source, subsets=("NanoToy",),
                          cells=tuple(matrix_cells(("en",), ("en",))), metrics=("ndcg@10",), cache_dir=tmp_path / "c",
                          k=10, progress=False, data_rules=DataRules(empty_texts="pylate"))
    outcome = run_evaluation(plan, bm25_factory())
    assert list(outcome.per_query["value"]) == [0.0] and not outcome.encoding.encoded
    assert not (tmp_path / "c" / INDEX_DIR).exists()


def test_a_model_of_the_wrong_shape_for_its_kind_is_refused(tmp_path):
    with pytest.raises(TypeError, match=r"models.bm25 \(kind bm25\) loaded a object, which is not a Ranker"):
        run_evaluation(plan_for(tmp_path, bm25_spec()), lambda spec, plan: object())


def test_bge_m3_and_dense_fixtures_are_scored_like_colbert(tmp_path, shared_cache):
    """The registry loads each kind's fixture; both encoders go through the store and exact top-k."""
    from models.registry import load_encoder

    specs = (ModelSpec(key="m3", name="m3-tiny", source="fixture", fixture="bge_m3", kind="bge_m3", batch_tokens=8192),
             ModelSpec(key="dense", name="dense-tiny", source="fixture", fixture="dense", kind="dense",
                       options={"batch_size": 16}))

    def factory(spec: ModelSpec, plan: EvaluationPlan):
        request = EncoderRequest(name=spec.name, source=spec.source, fixture=spec.fixture, kind=spec.kind,
                                 options=spec.options, batch_tokens=spec.batch_tokens)
        return load_encoder(request, device="cpu", dtype="float32", cache_dir=shared_cache)

    plan = plan_for(tmp_path / "cache", *specs, subsets=("NanoSciFact",))
    outcome = run_evaluation(plan, factory)
    assert [(m.name, m.kind, m.source, m.weights) for m in outcome.models] == [
        ("m3-tiny", "bge_m3", "fixture:bge_m3", "random-init"), ("dense-tiny", "dense", "fixture:dense", "random-init")]
    assert len(outcome.encoding.encoded) == 2 * 3 * 2
    ndcg = outcome.results[(outcome.results["metric"] == "ndcg@10") & (outcome.results["subset"] == "mean")]
    assert len(ndcg) == 2 * 9 and ndcg["value"].between(0, 1).all()
    again = run_evaluation(plan, factory)  # encode once: the store serves the second run
    assert not again.encoding.encoded and again.results.equals(outcome.results)
    with pytest.raises(ValueError, match=r"settings \['k1'\] it does not read"):
        factory(ModelSpec(key="d", name="d", source="fixture", fixture="dense", kind="dense", options={"k1": 1.0}), plan)


def test_environment_records_carry_the_kind():
    label = BM25Retriever().info
    assert ModelLabel.from_dict(json.loads(json.dumps(label.to_dict()))) == label
    old = {k: v for k, v in label.to_dict().items() if k != "kind"}  # environment.json written before kinds
    assert ModelLabel.from_dict(old).kind == "colbert"
    assert label.describe().startswith("bm25: `bm25s`")
