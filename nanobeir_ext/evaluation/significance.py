"""Paired significance tests over per-query scores, and multiple-comparison corrections.

Pure functions with explicit seeds: the same inputs give the same p-values on every machine.
Used by run-vs-run comparisons (``compare/regression.py``) and the model leaderboard
(``reporting/leaderboard.py``), so it lives below both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from nanobeir_ext.evaluation.metrics import PRIMARY_METRIC

Correction = Literal["holm", "bh", "none"]
CORRECTIONS: tuple[str, ...] = ("holm", "bh", "none")
# Sign patterns scored per matrix product: bounds memory at chunk x n_queries floats.
_CHUNK = 1024
# Pooled tests (a whole matrix, ~50k queries) take fewer patterns per product so a chunk stays
# at about 4M floats; up to 4096 queries the chunk (and so the random stream) is unchanged.
_MAX_CHUNK_VALUES = _CHUNK * 4096


@dataclass(frozen=True)
class SignificanceSettings:
    """The paired test and its correction, as configured (``significance`` in the configs)."""

    metric: str = PRIMARY_METRIC  # per-query metric the paired test runs on
    n_resamples: int = 10000
    seed: int = 0
    alpha: float = 0.05
    correction: Correction = "holm"

    def __post_init__(self) -> None:
        if self.correction not in CORRECTIONS:
            raise ValueError(f"unknown correction {self.correction!r}; valid choices: {list(CORRECTIONS)}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")
        if self.n_resamples < 1:
            raise ValueError(f"n_resamples must be >= 1, got {self.n_resamples}")


def paired_randomization_test(a: Sequence[float], b: Sequence[float], *, n_resamples: int = 10000,
                              seed: int = 0, weights: Sequence[float] | None = None) -> tuple[float, float]:
    """Two-sided paired randomization (sign-flip) test of ``mean(a - b) == 0``.

    ``weights`` (positive, one per pair) make the statistic a weighted mean, e.g. each query
    weighted by 1 / (queries of its subset) so that every subset counts once, as in the
    reported mean over subsets; ``mean_diff`` is then that weighted mean.

    Under the null hypothesis the two systems are exchangeable per query, so each paired
    difference keeps or flips its sign with probability 1/2. Returns ``(p_value, mean_diff)``
    with ``mean_diff = mean(a - b)``. When every sign pattern fits in the budget
    (``2 ** n_nonzero <= n_resamples``) the test enumerates them and the p-value is exact;
    otherwise it draws ``n_resamples`` patterns from ``seed`` and uses the (k + 1) / (n + 1)
    estimate, which never returns 0. Identical inputs give exactly ``(1.0, 0.0)``.
    """
    a_arr, b_arr = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_arr.shape != b_arr.shape or a_arr.ndim != 1:
        raise ValueError(f"paired test needs two 1-D arrays of equal length, got shapes {a_arr.shape} and {b_arr.shape}")
    if a_arr.size == 0:
        raise ValueError("paired test needs at least one pair, got 0")
    if not (np.isfinite(a_arr).all() and np.isfinite(b_arr).all()):
        raise ValueError("paired test got NaN or infinite scores")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    diff = a_arr - b_arr
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != diff.shape or not (np.isfinite(w).all() and (w > 0).all()):
            raise ValueError("weights must be positive and finite, one per pair")
        diff = diff * (w / w.sum())
        mean_diff = float(diff.sum())
    else:
        mean_diff = float(diff.mean())
    # Zero differences are unchanged by a sign flip: they add nothing but cost.
    nonzero = diff[diff != 0.0]
    if nonzero.size == 0:
        return 1.0, mean_diff
    observed = abs(float(nonzero.sum()))
    # Sums of the same terms in another order differ in the last bits; count those as ties.
    slack = 1e-12 * float(np.abs(nonzero).sum())
    if 2 ** nonzero.size <= n_resamples:
        return _exact_p(nonzero, observed, slack), mean_diff
    rng = np.random.default_rng(seed)
    at_least = 0
    chunk = max(1, min(_CHUNK, _MAX_CHUNK_VALUES // nonzero.size))
    for start in range(0, n_resamples, chunk):
        rows = min(chunk, n_resamples - start)
        signs = rng.integers(0, 2, size=(rows, nonzero.size), dtype=np.int8) * 2 - 1
        sums = signs.astype(np.float64) @ nonzero
        at_least += int((np.abs(sums) >= observed - slack).sum())
    return (at_least + 1) / (n_resamples + 1), mean_diff


def _exact_p(diff: np.ndarray, observed: float, slack: float) -> float:
    n = diff.size
    bits = np.arange(n, dtype=np.int64)
    at_least = 0
    for start in range(0, 2 ** n, _CHUNK):
        patterns = np.arange(start, min(start + _CHUNK, 2 ** n), dtype=np.int64)[:, None]
        signs = ((patterns >> bits) & 1) * 2 - 1
        at_least += int((np.abs(signs.astype(np.float64) @ diff) >= observed - slack).sum())
    return at_least / 2 ** n


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (controls the family-wise error rate)."""
    p = _as_p_array(p_values)
    if p.size == 0:
        return p
    order = np.argsort(p, kind="mergesort")
    m = p.size
    stepped = (m - np.arange(m)) * p[order]
    adjusted_sorted = np.minimum(np.maximum.accumulate(stepped), 1.0)
    adjusted = np.empty_like(p)
    adjusted[order] = adjusted_sorted
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (controls the false discovery rate)."""
    p = _as_p_array(p_values)
    if p.size == 0:
        return p
    m = p.size
    order = np.argsort(p, kind="mergesort")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    adjusted = np.empty_like(p)
    adjusted[order] = adjusted_sorted
    return adjusted


def adjust(p_values: Sequence[float], method: Correction) -> np.ndarray:
    """Apply the named correction to one family of p-values."""
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    if method == "none":
        return _as_p_array(p_values)
    raise ValueError(f"unknown multiple-comparison correction {method!r}; valid choices: {list(CORRECTIONS)}")


def correction_name(method: Correction) -> str:
    return {"holm": "Holm-Bonferroni (family-wise error rate)",
            "bh": "Benjamini-Hochberg (false discovery rate)",
            "none": "none"}[method]


def _as_p_array(p_values: Sequence[float]) -> np.ndarray:
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()[:10]}")
    return p
