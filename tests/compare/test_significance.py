"""Paired randomization test and multiple-comparison corrections, on inputs with known answers."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from nanobeir_ext.evaluation.significance import adjust, benjamini_hochberg, holm, paired_randomization_test


def test_identical_scores_give_p_one_and_zero_difference() -> None:
    scores = np.random.default_rng(1).uniform(size=200)
    assert paired_randomization_test(scores, scores.copy(), n_resamples=2000, seed=3) == (1.0, 0.0)


def test_exact_enumeration_matches_brute_force() -> None:
    a = np.array([0.9, 0.5, 0.7, 0.2, 0.6])
    b = np.array([0.4, 0.6, 0.3, 0.1, 0.6])
    diff = a - b
    observed = abs(diff.sum())
    count = sum(abs(sum(s * d for s, d in zip(signs, diff))) >= observed - 1e-12
                for signs in itertools.product((1, -1), repeat=5))
    # One zero difference: 4 informative pairs, 16 patterns, all enumerated.
    nonzero = diff[diff != 0]
    count_nonzero = sum(abs(sum(s * d for s, d in zip(signs, nonzero))) >= observed - 1e-12
                        for signs in itertools.product((1, -1), repeat=4))
    p, mean_diff = paired_randomization_test(a, b, n_resamples=10000, seed=0)
    assert p == pytest.approx(count / 32) == pytest.approx(count_nonzero / 16)
    assert mean_diff == pytest.approx(diff.mean())


def test_all_same_sign_exact_p_is_two_over_two_to_the_n() -> None:
    a = np.full(10, 0.8)
    b = np.full(10, 0.6)
    p, mean_diff = paired_randomization_test(a, b, n_resamples=5000)
    assert p == pytest.approx(2 / 2**10)
    assert mean_diff == pytest.approx(0.2)


def test_monte_carlo_planted_shift_is_significant_and_reproducible() -> None:
    rng = np.random.default_rng(0)
    b = rng.uniform(0.3, 1.0, size=60)
    a = b - 0.2
    p1, d1 = paired_randomization_test(a, b, n_resamples=999, seed=7)
    p2, d2 = paired_randomization_test(a, b, n_resamples=999, seed=7)
    assert (p1, d1) == (p2, d2)
    assert p1 == pytest.approx(1 / 1000)  # no resample reaches the observed sum: (0 + 1) / (n + 1)
    assert d1 == pytest.approx(-0.2)


def test_monte_carlo_null_p_is_not_small_and_depends_on_seed_only_through_sampling() -> None:
    rng = np.random.default_rng(5)
    b = rng.uniform(size=80)
    a = b + rng.normal(0, 0.05, size=80) * rng.choice([-1, 1], size=80)
    p_a, _ = paired_randomization_test(a, b, n_resamples=4000, seed=1)
    p_b, _ = paired_randomization_test(a, b, n_resamples=4000, seed=2)
    assert p_a > 0.05 and p_b > 0.05
    assert abs(p_a - p_b) < 0.05


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="equal length"):
        paired_randomization_test([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least one pair"):
        paired_randomization_test([], [])
    with pytest.raises(ValueError, match="NaN"):
        paired_randomization_test([float("nan")], [1.0])
    with pytest.raises(ValueError, match="p-values must lie"):
        holm([0.5, 1.5])
    with pytest.raises(ValueError, match="valid choices"):
        adjust([0.1], "bonferroni")  # type: ignore[arg-type]


def test_holm_matches_textbook_example() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone max: 0.02, 0.03, 0.06, 0.06
    assert holm(p).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([1.0, 1.0]).tolist() == [1.0, 1.0]
    assert holm([]).size == 0


def test_benjamini_hochberg_matches_textbook_example() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Sorted: 0.005*4/1=0.02, 0.01*4/2=0.02, 0.03*4/3=0.04, 0.04*4/4=0.04 -> monotone min from the top
    assert benjamini_hochberg(p).tolist() == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert (benjamini_hochberg(p) <= holm(p) + 1e-15).all()
    assert adjust(p, "none").tolist() == p


def test_weights_make_each_stratum_count_once():
    # Stratum A: one query improved by 0.4; stratum B: three queries unchanged.
    a = [0.9, 0.5, 0.5, 0.5]
    b = [0.5, 0.5, 0.5, 0.5]
    _, pooled = paired_randomization_test(a, b)
    _, per_stratum = paired_randomization_test(a, b, weights=[1.0, 1 / 3, 1 / 3, 1 / 3])
    assert pooled == pytest.approx(0.1)  # 0.4 / 4 queries
    assert per_stratum == pytest.approx(0.2)  # (0.4 + 0.0) / 2 strata
    with pytest.raises(ValueError, match="weights"):
        paired_randomization_test(a, b, weights=[1.0, 0.0, 1.0, 1.0])
