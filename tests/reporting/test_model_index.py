"""model-index YAML: structure, values, and huggingface_hub's own parser reading it back."""
from __future__ import annotations

import pytest
import yaml
from huggingface_hub.repocard_data import model_index_to_eval_results

from nanobeir_ext.reporting.model_index import dataset_config, metric_type, model_index_yaml
from nanobeir_ext.evaluation.results import results_from_per_query
from tests.compare.test_comparisons import make_per_query

REVISION = "8a4be55eb80b3ed4d2e9a423a5212228c217d426"


@pytest.fixture(scope="module")
def results():
    return results_from_per_query(make_per_query(("model-a", "model-b"), benchmark="nanobeir-extended", n_queries=4))


def test_block_has_one_result_per_subset_and_language_pair(results) -> None:
    text = model_index_yaml(results, "model-a", name="LiquidAI/LFM2-ColBERT-350M", dataset_revision=REVISION)
    parsed = yaml.safe_load(text)
    assert list(parsed) == ["model-index"]
    (entry,) = parsed["model-index"]
    assert entry["name"] == "LiquidAI/LFM2-ColBERT-350M"
    assert len(entry["results"]) == (2 + 1) * 9  # (NanoA, NanoB, mean) x 3 x 3 cells
    first, last = entry["results"][0], entry["results"][-1]
    assert first["task"] == {"type": "retrieval"}
    assert first["dataset"] == {"name": "LiquidAI/nanobeir-multilingual-extended",
                                "type": "LiquidAI/nanobeir-multilingual-extended",
                                "config": "NanoA_docs-de_queries-de", "split": "test", "revision": REVISION}
    assert last["dataset"]["config"] == "NanoBEIR_mean_docs-fr_queries-fr"
    expected = results[(results["model"] == "model-a") & (results["subset"] == "NanoA") & (results["doc_lang"] == "de")
                       & (results["query_lang"] == "de") & (results["metric"] == "ndcg@10")]["value"].iloc[0]
    assert first["metrics"] == [{"type": "ndcg_at_10", "value": float(expected)}]


def test_huggingface_hub_reads_it_back(results) -> None:
    parsed = yaml.safe_load(model_index_yaml(results, "model-b", metrics=("ndcg@10", "mrr@10"), include_mean=False))
    name, evals = model_index_to_eval_results(parsed["model-index"])
    assert name == "model-b"
    assert len(evals) == 2 * 9 * 2
    assert {e.task_type for e in evals} == {"retrieval"}
    assert {e.metric_type for e in evals} == {"ndcg_at_10", "mrr_at_10"}
    assert {e.dataset_config for e in evals} == {dataset_config(s, d, q) for s in ("NanoA", "NanoB")
                                                 for d in ("de", "en", "fr") for q in ("de", "en", "fr")}
    rows = results[(results["model"] == "model-b") & (results["subset"] != "mean")]
    by_key = {(r.subset, r.doc_lang, r.query_lang, metric_type(r.metric)): r.value for r in rows.itertuples()}
    for e in evals:
        subset, docs, queries = e.dataset_config.split("_")
        assert e.metric_value == by_key[(subset, docs.removeprefix("docs-"), queries.removeprefix("queries-"),
                                         e.metric_type)]


def test_other_benchmarks_keep_their_own_dataset_name() -> None:
    fixture = results_from_per_query(make_per_query(benchmark="fixture", n_queries=2))
    entry = yaml.safe_load(model_index_yaml(fixture, "model-a"))["model-index"][0]
    assert {r["dataset"]["name"] for r in entry["results"]} == {"fixture"}
    assert "revision" not in entry["results"][0]["dataset"]


def test_errors_name_the_choices(results) -> None:
    with pytest.raises(KeyError, match="models present"):
        model_index_yaml(results, "nope")
    with pytest.raises(KeyError, match="metrics \\['map@100'\\] not in"):
        model_index_yaml(results, "model-a", metrics=("map@100",))
    with pytest.raises(KeyError, match="no results on benchmark"):
        model_index_yaml(results, "model-a", benchmark="fixture")
