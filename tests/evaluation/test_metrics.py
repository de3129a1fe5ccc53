from __future__ import annotations

import math

import pytest

from nanobeir_ext.evaluation.metrics import (
    DEFAULT_METRICS,
    PRIMARY_METRIC,
    QrelsEvaluator,
    QueryMetric,
    evaluate_run,
    metric_cutoff,
    to_trec_eval,
)

# q1 has graded labels; q2 is judged but absent from the run; q3 is in the run but not judged.
QRELS = {
    "q1": {"d1": 2, "d2": 1, "d3": 0, "d5": 1},
    "q2": {"d7": 1},
}
# Ranking of q1 (no ties): 1 d4 (unjudged), 2 d1 (2), 3 d3 (0), 4 d2 (1), 5 d6 (unjudged); d5 not retrieved.
RUN = {
    "q1": {"d4": 0.9, "d1": 0.8, "d3": 0.7, "d2": 0.6, "d6": 0.5},
    "q3": {"d1": 1.0},
}


def values(rows: list[QueryMetric], query_id: str) -> dict[str, float]:
    return {row.metric: row.value for row in rows if row.query_id == query_id}


def test_translation_table():
    assert to_trec_eval("ndcg@10") == "ndcg_cut_10"
    assert to_trec_eval("map@100") == "map_cut_100"
    assert to_trec_eval("recall@5") == "recall_5"
    assert to_trec_eval("precision@3") == "P_3"
    assert to_trec_eval("accuracy@1") == "success_1"
    assert to_trec_eval("mrr@10") == "recip_rank"  # computed on the run cut at 10


@pytest.mark.parametrize("bad", ["ndcg", "nDCG@10", "ndcg@0", "foo@3", "ndcg_cut_10", "P@5"])
def test_unknown_metric_error_lists_the_accepted_syntax(bad):
    with pytest.raises(ValueError) as error:
        to_trec_eval(bad)
    message = str(error.value)
    assert repr(bad) in message
    assert "'<measure>@<k>'" in message
    assert "accuracy, map, mrr, ndcg, precision, recall" in message


def test_default_metrics():
    assert DEFAULT_METRICS[0] == PRIMARY_METRIC == "ndcg@10"
    for k in (1, 3, 5, 10):
        assert {f"precision@{k}", f"recall@{k}", f"accuracy@{k}"} <= set(DEFAULT_METRICS)
    assert {"mrr@10", "map@100", "recall@100"} <= set(DEFAULT_METRICS)
    assert len(set(DEFAULT_METRICS)) == len(DEFAULT_METRICS)
    for metric in DEFAULT_METRICS:
        to_trec_eval(metric)


def test_ndcg_uses_graded_gains_by_hand():
    rows = evaluate_run(QRELS, RUN, ["ndcg@10", "ndcg@3"])
    # DCG@k = sum over ranks r <= k of gain(r) / log2(r + 1), gain = the graded label.
    dcg_10 = 2 / math.log2(2 + 1) + 1 / math.log2(4 + 1)
    dcg_3 = 2 / math.log2(2 + 1)
    # Ideal ranking of q1's labels: 2, 1, 1.
    idcg = 2 / math.log2(1 + 1) + 1 / math.log2(2 + 1) + 1 / math.log2(3 + 1)
    assert values(rows, "q1")["ndcg@10"] == pytest.approx(dcg_10 / idcg, abs=1e-12)
    assert values(rows, "q1")["ndcg@3"] == pytest.approx(dcg_3 / idcg, abs=1e-12)


def test_binary_measures_by_hand():
    metrics = [f"{name}@{k}" for name in ("precision", "recall", "accuracy", "mrr") for k in (1, 3, 5, 10)] + ["map@100"]
    got = values(evaluate_run(QRELS, RUN, metrics), "q1")
    # Relevant (label >= 1): d1 at rank 2, d2 at rank 4, d5 never retrieved; R = 3.
    expected = {
        "precision@1": 0, "precision@3": 1 / 3, "precision@5": 2 / 5, "precision@10": 2 / 10,
        "recall@1": 0, "recall@3": 1 / 3, "recall@5": 2 / 3, "recall@10": 2 / 3,
        "accuracy@1": 0, "accuracy@3": 1, "accuracy@5": 1, "accuracy@10": 1,
        "mrr@1": 0, "mrr@3": 1 / 2, "mrr@5": 1 / 2, "mrr@10": 1 / 2,
        "map@100": (1 / 2 + 2 / 4) / 3,
    }  # fmt: skip
    assert got == pytest.approx(expected, abs=1e-12)


def test_relevance_level_applies_to_binary_measures():
    got = values(evaluate_run(QRELS, RUN, ["precision@3", "recall@3", "mrr@10"], relevance_level=2), "q1")
    # Only d1 (label 2) is relevant now.
    assert got == pytest.approx({"precision@3": 1 / 3, "recall@3": 1.0, "mrr@10": 1 / 2}, abs=1e-12)


def test_every_judged_query_gets_every_metric_and_missing_queries_score_zero():
    rows = evaluate_run(QRELS, RUN)
    assert [(row.query_id, row.metric) for row in rows] == [(q, m) for q in ("q1", "q2") for m in DEFAULT_METRICS]
    assert all(row.value == 0.0 for row in rows if row.query_id == "q2")
    assert any(row.value > 0 for row in rows if row.query_id == "q1")
    # An empty run and a run with an empty ranking behave the same.
    assert all(row.value == 0.0 for row in evaluate_run(QRELS, {}))
    assert evaluate_run(QRELS, {"q1": {}, "q2": {}}) == evaluate_run(QRELS, {})


def test_mrr_cut_follows_trec_eval_tie_order():
    qrels = {"q": {"a": 1}}
    run = {"q": {"a": 1.0, "z": 1.0}}  # tied: trec_eval ranks z (larger id) first
    got = values(evaluate_run(qrels, run, ["mrr@1", "accuracy@1", "mrr@2"]), "q")
    assert got == {"mrr@1": 0.0, "accuracy@1": 0.0, "mrr@2": 0.5}


def test_one_evaluator_scores_many_runs_as_fresh_ones_would():
    evaluator = QrelsEvaluator(QRELS, DEFAULT_METRICS)
    reversed_run = {q: {d: -score for d, score in docs.items()} for q, docs in RUN.items()}
    for run in (RUN, reversed_run, {}, RUN):
        assert evaluator.evaluate(run) == evaluate_run(QRELS, run, DEFAULT_METRICS)
    assert evaluator.evaluate(RUN) != evaluator.evaluate(reversed_run)
    assert len(evaluator) == 2
    assert QrelsEvaluator({}, DEFAULT_METRICS).evaluate(RUN) == []


def test_metric_cutoff():
    assert [metric_cutoff(m) for m in ("ndcg@10", "mrr@3", "recall@100")] == [10, 3, 100]
    with pytest.raises(ValueError, match="unknown metric"):
        metric_cutoff("ndcg")


def test_metrics_must_be_a_sequence_of_names():
    with pytest.raises(TypeError, match="sequence of metric names"):
        evaluate_run(QRELS, RUN, "ndcg@10")
