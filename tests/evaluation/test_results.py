import pandas as pd
import pytest

from nanobeir_ext.evaluation.results import (PER_QUERY_COLUMNS, combine, delta_matrix, matrix, results_from_per_query,
                                  summarize, with_averages)


def per_query_frame(rows):
    return pd.DataFrame(rows, columns=list(PER_QUERY_COLUMNS))


ROWS = [
    # model, benchmark, subset, doc, query, qid, metric, value
    ("M", "b", "S1", "en", "en", "q1", "ndcg@10", 1.0),
    ("M", "b", "S1", "en", "en", "q2", "ndcg@10", 0.0),
    ("M", "b", "S2", "en", "en", "q1", "ndcg@10", 0.2),
    ("M", "b", "S1", "en", "de", "q1", "ndcg@10", 0.4),
    ("M", "b", "S2", "en", "de", "q1", "ndcg@10", 0.6),
    ("M", "b", "S1", "de", "en", "q1", "ndcg@10", 0.1),
    ("M", "b", "S2", "de", "en", "q1", "ndcg@10", 0.3),
    ("M", "b", "S1", "de", "de", "q1", "ndcg@10", 0.9),
    ("M", "b", "S2", "de", "de", "q1", "ndcg@10", 0.7),
]


def test_subset_mean_is_unweighted_over_subsets():
    results = results_from_per_query(per_query_frame(ROWS))
    row = results[(results.subset == "mean") & (results.doc_lang == "en") & (results.query_lang == "en")]
    # S1 mean 0.5 (two queries), S2 0.2 -> (0.5 + 0.2) / 2, not the query-weighted 0.4.
    assert row["value"].item() == pytest.approx(0.35)


def test_matrix_orientation_and_averages():
    results = results_from_per_query(per_query_frame(ROWS))
    table = matrix(results, "M")
    assert list(table.index) == ["de", "en"] and list(table.columns) == ["de", "en"]
    assert table.at["en", "de"] == pytest.approx(0.5)  # doc en, query de
    assert table.at["de", "en"] == pytest.approx(0.2)
    full = with_averages(table)
    assert full.at["en", "AVG"] == pytest.approx((0.5 + 0.35) / 2)
    assert full.at["AVG", "en"] == pytest.approx((0.2 + 0.35) / 2)
    s = summarize(table)
    assert s.diagonal == pytest.approx((0.8 + 0.35) / 2)
    assert s.off_diagonal == pytest.approx((0.5 + 0.2) / 2)


def test_delta_matrix():
    rows = ROWS + [("B",) + r[1:7] + (r[7] - 0.1,) for r in ROWS]
    results = results_from_per_query(per_query_frame(rows))
    delta = delta_matrix(results, "M", "B")
    assert (delta.round(9) == 0.1).all().all()


def test_combine_rejects_conflicting_values():
    a = per_query_frame(ROWS[:2])
    b = per_query_frame([ROWS[0][:7] + (0.5,)])
    with pytest.raises(ValueError, match="different values"):
        combine([a, b])
    assert len(combine([a, per_query_frame(ROWS[:1])])) == 2


def test_missing_model_is_an_error():
    results = results_from_per_query(per_query_frame(ROWS))
    with pytest.raises(KeyError, match="no ndcg@10 values for model 'X'"):
        matrix(results, "X")
