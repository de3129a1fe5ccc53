"""The three empty-text rules (benchmark.empty_texts) on a case where they give three different
NDCG@10 values, each checked against a hand computation (sentence-transformers 5.3's
InformationRetrievalEvaluator formula for ``pylate``) and against pytrec_eval, then end to end
through the pipeline with an encoder whose scores are known."""
from __future__ import annotations

from math import log2
from pathlib import Path

import pytest
import torch

from nanobeir_ext.data import BenchmarkSource, DataRules, load_languages
from nanobeir_ext.evaluation.metrics import QrelsEvaluator
from nanobeir_ext.evaluation.pipeline import data_counts, data_notes, run_evaluation
from nanobeir_ext.evaluation.plan import EvaluationPlan, ModelSpec
from nanobeir_ext.languages import Cell
from nanobeir_ext.protocol import EncodeOutput, ModelLabel
from tests.data.test_benchmark import write_snapshot

# MaxSim scores of the fake encoder below: one 1-d vector per text, the query's is [1].
DOC_SCORES = {"d3": 4.0, "d2": 3.0, "d1": 2.0, "d4": 1.0}
CORPUS = [{"_id": "d1", "text": "one"}, {"_id": "d2", "text": ""}, {"_id": "d3", "text": "three"},
          {"_id": "d4", "text": " "}]  # d2 empty (every rule); d4 whitespace-only (empty except under pylate)
QUERIES = [{"_id": "q1", "text": "x"}, {"_id": "q2", "text": "y"}, {"_id": "q3", "text": ""},
           {"_id": "q4", "text": " "}, {"_id": "q5", "text": "z"}]
QRELS = [{"query-id": "q1", "corpus-id": "d1"}, {"query-id": "q1", "corpus-id": "d2"},  # one relevant doc empty
         {"query-id": "q2", "corpus-id": "d2"},  # its only relevant document is empty
         {"query-id": "q3", "corpus-id": "d3"},  # an empty query
         {"query-id": "q4", "corpus-id": "d1"},  # a whitespace-only query
         {"query-id": "q5", "corpus-id": "d4"}]  # relevant: the whitespace-only document


def dcg(ranks: list[int]) -> float:
    return sum(1 / log2(rank + 1) for rank in ranks)


# Hand computation. Ranking of the encoded documents by score: d3 > d2 > d1 > d4.
HAND = {
    # drop_judgments: encoded d1, d3 (ranks 2, 1); q1 keeps only d1; q2-q5 not evaluated.
    "drop_judgments": {"q1": dcg([2]) / dcg([1])},
    # pylate: encoded d1, d3, d4 (ranks d3 1, d1 2, d4 3); every judgment counts; q3 ("") not evaluated.
    "pylate": {"q1": dcg([2]) / dcg([1, 2]), "q2": 0.0, "q4": dcg([2]) / dcg([1]), "q5": dcg([3]) / dcg([1])},
    # mteb: every text encoded (d3 1, d2 2, d1 3, d4 4); every query evaluated.
    "mteb": {"q1": dcg([2, 3]) / dcg([1, 2]), "q2": dcg([2]) / dcg([1]), "q3": 1.0, "q4": dcg([3]) / dcg([1]),
             "q5": dcg([4]) / dcg([1])},
}


@pytest.fixture
def toy(tmp_path) -> BenchmarkSource:
    tables = {"NanoToy_en": {"corpus": CORPUS, "queries": QUERIES}, "NanoToy_en_qrels": {"qrels": QRELS}}
    return BenchmarkSource(path=str(write_snapshot(tmp_path / "toy", tables)))


def sentence_transformers_ndcg(relevant: set[str], ranked: list[str], k: int = 10) -> float:
    """InformationRetrievalEvaluator.compute_metrics (sentence-transformers 5.3), NDCG@k."""
    predicted = [1 if doc in relevant else 0 for doc in ranked[:k]]
    ideal = [1] * len(relevant)
    score = lambda rel: sum(r / log2(i + 2) for i, r in enumerate(rel[:k]))  # noqa: E731
    return score(predicted) / score(ideal)


@pytest.mark.parametrize("rule", ["drop_judgments", "pylate", "mteb"])
def test_each_rule_matches_the_hand_computation_and_pytrec_eval(toy, rule):
    loaded = load_languages(toy, "NanoToy", ("en",), DataRules(empty_texts=rule))
    qrels, counts = loaded.cell_view("en", "en")
    encoded = loaded.languages["en"].corpus.ids
    run = {query: {doc: DOC_SCORES[doc] for doc in encoded} for query in qrels}
    values = {m.query_id: m.value for m in QrelsEvaluator(qrels, ("ndcg@10",)).evaluate(run)}
    assert values == pytest.approx(HAND[rule], abs=1e-12)
    assert counts.evaluated_queries == len(HAND[rule])
    if rule == "pylate":  # sentence-transformers' own formula agrees query by query
        ranked = sorted(encoded, key=lambda doc: -DOC_SCORES[doc])
        for query, value in values.items():
            relevant = {doc for doc, score in qrels[query].items() if score > 0}
            assert sentence_transformers_ndcg(relevant, ranked) == pytest.approx(value, abs=1e-12)


def test_the_three_rules_give_three_different_means():
    means = {rule: sum(v.values()) / len(v) for rule, v in HAND.items()}
    assert len({round(m, 9) for m in means.values()}) == 3


def test_counts_say_what_each_rule_touched(toy):
    counts = {rule: load_languages(toy, "NanoToy", ("en",), DataRules(empty_texts=rule)).cell_view("en", "en")[1]
              for rule in ("drop_judgments", "pylate", "mteb")}
    # drop_judgments: d2 and d4 empty (q1-d2, q2-d2, q5-d4); q2 and q5 left without a relevant document.
    assert (counts["drop_judgments"].judgments_on_empty_documents, counts["drop_judgments"].queries_only_empty_relevant,
            counts["drop_judgments"].empty_queries) == (3, 2, 2)
    # pylate: only d2 is empty; q2's only relevant document is empty (scored 0); q3 is the empty query.
    assert (counts["pylate"].judgments_on_empty_documents, counts["pylate"].queries_only_empty_relevant,
            counts["pylate"].empty_queries) == (2, 1, 1)
    assert counts["pylate"].rule == "pylate" and counts["pylate"].judgments == 5
    assert counts["mteb"].evaluated_queries == 5 and counts["mteb"].empty_queries == 2


def test_cross_lingual_cells_take_documents_and_judgments_from_one_language_and_queries_from_the_other(tmp_path):
    # Korean documents: d1 empty; English queries: none empty. Korean queries: q1 empty.
    tables = {
        "NanoToy_en": {"corpus": [{"_id": "d1", "text": "one"}, {"_id": "d2", "text": "two"}],
                       "queries": [{"_id": "q1", "text": "x"}, {"_id": "q2", "text": "y"}]},
        "NanoToy_en_qrels": {"qrels": [{"query-id": "q1", "corpus-id": "d1"}, {"query-id": "q2", "corpus-id": "d2"}]},
        "NanoToy_ko": {"corpus": [{"_id": "d1", "text": ""}, {"_id": "d2", "text": "둘"}],
                       "queries": [{"_id": "q1", "text": ""}, {"_id": "q2", "text": "와이"}]},
        "NanoToy_ko_qrels": {"qrels": [{"query-id": "q1", "corpus-id": "d1"}, {"query-id": "q2", "corpus-id": "d2"}]},
    }
    source = BenchmarkSource(path=str(write_snapshot(tmp_path / "x", tables)))
    loaded = load_languages(source, "NanoToy", ("en", "ko"), DataRules(empty_texts="pylate"))
    qrels, counts = loaded.cell_view("ko", "en")  # Korean documents, English queries
    assert qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}  # q1 kept: its relevant Korean document is empty
    assert counts.queries_only_empty_relevant == 1 and counts.empty_queries == 0
    qrels, counts = loaded.cell_view("en", "ko")  # English documents, Korean queries
    assert qrels == {"q2": {"d2": 1}} and counts.empty_queries == 1 and counts.judgments_on_empty_documents == 0


class KnownScores:
    """One 1-d vector per text: documents score DOC_SCORES by their text, queries are [1]."""

    def __init__(self) -> None:
        self.info = ModelLabel(name="known", source="test", revision=None, weights="random-init", dtype="float32",
                               device="cpu")
        self.encoded: list[tuple[str, tuple[str, ...]]] = []

    def encode(self, texts, role, *, progress=True, desc=None) -> EncodeOutput:
        self.encoded.append((role, tuple(texts)))
        by_text = {row["text"]: DOC_SCORES[row["_id"]] for row in CORPUS}
        values = [by_text[t] if role == "document" else 1.0 for t in texts]
        return EncodeOutput(embeddings=[torch.tensor([[v]]) for v in values])

    def cache_identity(self) -> dict:
        return {"name": "known"}


def plan_for(source: BenchmarkSource, rule: str, cache: Path, cells=(Cell("en", "en"),)) -> EvaluationPlan:
    return EvaluationPlan(models=(ModelSpec(key="known", name="known", source="test"),), benchmark="toy", source=source,
                          subsets=("NanoToy",), cells=tuple(cells), metrics=("ndcg@10",), cache_dir=cache, k=10,
                          progress=False, data_rules=DataRules(empty_texts=rule))


@pytest.mark.parametrize("rule", ["drop_judgments", "pylate", "mteb"])
def test_the_pipeline_scores_each_rule_as_computed_by_hand(toy, tmp_path, rule):
    encoder = KnownScores()
    outcome = run_evaluation(plan_for(toy, rule, tmp_path / "cache"), lambda spec, plan: encoder)
    per_query = dict(zip(outcome.per_query["query_id"], outcome.per_query["value"]))
    assert per_query == pytest.approx(HAND[rule], abs=1e-6)
    encoded_docs = next(texts for role, texts in encoder.encoded if role == "document")
    assert ("" in encoded_docs) == (rule == "mteb") and (" " in encoded_docs) == (rule != "drop_judgments")
    notes = data_notes(outcome)
    assert notes[0].startswith(f"empty texts: rule `{rule}`")
    table = data_counts(outcome.data)
    assert list(table["subset"]) == ["NanoToy"]  # the one (subset, cell) the rule touched


def test_a_language_without_documents_is_a_loud_warning_and_its_cells_score_zero(tmp_path, caplog):
    tables = {"NanoToy_en": {"corpus": [{"_id": "d1", "text": ""}], "queries": [{"_id": "q1", "text": "x"}]},
              "NanoToy_en_qrels": {"qrels": [{"query-id": "q1", "corpus-id": "d1"}]}}
    source = BenchmarkSource(path=str(write_snapshot(tmp_path / "x", tables)))
    outcome = run_evaluation(plan_for(source, "pylate", tmp_path / "cache"), lambda spec, plan: KnownScores())
    assert "DATA LOSS: NanoToy en: no documents" in caplog.text
    assert any("NanoToy en: no documents" in w for w in outcome.data.losses)
    assert list(outcome.per_query["value"]) == [0.0]  # pylate: the query still counts, and scores 0
    dropped = run_evaluation(plan_for(source, "drop_judgments", tmp_path / "cache"), lambda spec, plan: KnownScores())
    assert dropped.per_query.empty and any("1 cells" in w and "no query to evaluate" in w for w in dropped.data.losses)
