"""The N-model leaderboard: ranking, hand-computed means, ranx-style marks, Holm over the pairs."""
from __future__ import annotations

import pandas as pd
import pytest

from nanobeir_ext.evaluation.results import MEAN_SUBSET, results_from_per_query
from nanobeir_ext.evaluation.significance import SignificanceSettings, holm
from nanobeir_ext.reporting.leaderboard import (SUPERSCRIPTS, build_leaderboard, draw_leaderboard, leaderboard_section,
                                                leaderboard_table, render_leaderboard)

CELLS = [("en", "en"), ("de", "de"), ("en", "de"), ("de", "en")]  # (doc, query)


def result_rows(values: dict[str, list[float]]) -> pd.DataFrame:
    """``subset == "mean"`` rows: one value per cell of CELLS, per model."""
    return pd.DataFrame([{"model": model, "benchmark": "tiny", "subset": MEAN_SUBSET, "doc_lang": d, "query_lang": q,
                          "metric": "ndcg@10", "value": v}
                         for model, cell_values in values.items() for (d, q), v in zip(CELLS, cell_values)])


def per_query_rows(scores: dict[str, list[float]], queries_per_stratum: tuple[int, int] = (2, 2)) -> pd.DataFrame:
    """Per-query ndcg@10 over two subsets x CELLS; scores are consumed in stratum order."""
    rows = []
    for model, values in scores.items():
        it = iter(values)
        for subset, n in zip(("S1", "S2"), queries_per_stratum):
            for d, q in CELLS:
                for i in range(n):
                    rows.append({"model": model, "benchmark": "tiny", "subset": subset, "doc_lang": d,
                                 "query_lang": q, "query_id": f"{subset}-{i}", "metric": "ndcg@10", "value": next(it)})
        assert next(it, None) is None
    return pd.DataFrame(rows)


def test_ranking_and_every_column_equal_hand_computed_means():
    results = result_rows({"low": [0.2, 0.4, 0.1, 0.3], "high": [0.9, 0.7, 0.5, 0.3], "mid": [0.5, 0.5, 0.5, 0.5]})
    table = leaderboard_table(results)["tiny"]
    assert list(table.index) == ["high", "mid", "low"]
    assert list(table["letter"]) == ["a", "b", "c"]
    high = table.loc["high"]
    assert high["mean"] == pytest.approx((0.9 + 0.7 + 0.5 + 0.3) / 4)
    assert high["diagonal"] == pytest.approx((0.9 + 0.7) / 2)
    assert high["off-diagonal"] == pytest.approx((0.5 + 0.3) / 2)
    # query:en averages the cells whose query language is en: (en,en) and (de,en).
    assert high["query:en"] == pytest.approx((0.9 + 0.3) / 2)
    assert high["query:de"] == pytest.approx((0.7 + 0.5) / 2)
    assert high["doc:en"] == pytest.approx((0.9 + 0.5) / 2)
    assert high["doc:de"] == pytest.approx((0.7 + 0.3) / 2)
    assert int(high["n_cells"]) == 4


def test_a_model_clearly_better_carries_the_letters_of_the_models_it_beats():
    n = 16
    per_query = per_query_rows({"strong": [0.9] * n, "weak": [0.1] * n, "weaker": [0.0] * n})
    board = build_leaderboard(results_from_per_query(per_query), per_query, SignificanceSettings())
    assert board.models == ["strong", "weak", "weaker"]
    assert board.better_than("strong") == ["weak", "weaker"]
    assert board.marks("strong") == SUPERSCRIPTS[1] + SUPERSCRIPTS[2] == "ᵇᶜ"
    assert board.marks("weak") == "ᶜ"
    assert board.marks("weaker") == ""
    text = render_leaderboard(board)
    assert "0.9000ᵇᶜ" in text and "| 3 | c | weaker | 0.0000 |" in text


def test_holm_over_the_model_pairs_removes_marks_that_uncorrected_tests_give():
    # B = 0.5 everywhere; A is +0.1 on 6 queries, C is -0.1 on 6 other queries. Exact test:
    # p(A,B) = p(B,C) = 2/2^6 = 0.03125; p(A,C) = 2/2^12. Holm x2 lifts the first two above 0.05.
    base = [0.5] * 16
    a = [0.6 if i < 6 else 0.5 for i in range(16)]
    c = [0.4 if 6 <= i < 12 else 0.5 for i in range(16)]
    per_query = per_query_rows({"A": a, "B": base, "C": c})
    results = results_from_per_query(per_query)
    holm_board = build_leaderboard(results, per_query, SignificanceSettings(correction="holm"))
    raw_board = build_leaderboard(results, per_query, SignificanceSettings(correction="none"))
    pairs = holm_board.pairs.set_index(["model_a", "model_b"])
    assert pairs.loc[("A", "B"), "p_value"] == pytest.approx(2 / 2 ** 6)
    assert pairs.loc[("A", "C"), "p_value"] == pytest.approx(2 / 2 ** 12)
    assert list(holm_board.pairs["p_adjusted"]) == pytest.approx(list(holm(holm_board.pairs["p_value"])))
    assert raw_board.marks("A") == "ᵇᶜ" and raw_board.marks("B") == "ᶜ"
    assert holm_board.marks("A") == "ᶜ" and holm_board.marks("B") == ""


def test_the_test_statistic_is_the_difference_of_the_leaderboard_means():
    # Unequal strata (1 query in S1, 3 in S2): a query-level mean would differ from the reported mean.
    a = [1.0] * 4 + [0.0] * 12
    b = [0.0] * 4 + [0.0, 0.0, 1.0] * 4
    per_query = per_query_rows({"a": a, "b": b}, queries_per_stratum=(1, 3))
    board = build_leaderboard(results_from_per_query(per_query), per_query, SignificanceSettings())
    means = board.table["mean"]
    assert means["a"] == pytest.approx(0.5) and means["b"] == pytest.approx(1 / 6)
    assert board.pairs["delta"].iloc[0] == pytest.approx(means["a"] - means["b"])


def test_one_model_is_ranked_without_tests_and_missing_per_query_scores_are_said():
    results = result_rows({"only": [0.5, 0.4, 0.3, 0.2]})
    board = build_leaderboard(results, None, SignificanceSettings())
    assert board.models == ["only"] and board.pairs.empty and board.marks("only") == ""
    two = result_rows({"x": [0.5, 0.4, 0.3, 0.2], "y": [0.1, 0.1, 0.1, 0.1]})
    text = leaderboard_section(two, None, SignificanceSettings())
    assert "No significance marks: per-query scores are missing." in text


def test_cells_not_every_model_has_are_left_out_of_every_mean():
    results = result_rows({"full": [0.9, 0.7, 0.5, 0.3]})
    partial = result_rows({"partial": [0.1, 0.1, 0.1, 0.1]}).iloc[:2]  # diagonal cells only
    board = build_leaderboard(pd.concat([results, partial]), None, SignificanceSettings())
    assert board.table.loc["full", "mean"] == pytest.approx(0.8)
    assert pd.isna(board.table.loc["full", "off-diagonal"])
    assert any("2 cells" in note for note in board.notes)


def test_draw_leaderboard_writes_one_figure(tmp_path):
    results = result_rows({"a": [0.9, 0.7, 0.5, 0.3], "b": [0.2, 0.4, 0.1, 0.3]})
    path = draw_leaderboard(results, tmp_path / "leaderboard.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
