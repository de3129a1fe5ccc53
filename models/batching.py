"""How texts are cut into encoder batches: tight batches where batching changes no vector beyond
rounding (right padding), and PyLate 1.6.0's own batches where it does (left padding).
Shared by every token-vector encoder (``models/colbert.py``, ``models/bge_m3.py``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

# Padded tokens per encoder batch when the config does not say. Batching moves vectors by
# float rounding only (different matmul shapes), but that is enough to change a score's last
# digits, so the batching settings are part of cache_identity().
DEFAULT_BATCH_TOKENS = 32768
# Right padding: a batch stops growing before less than this share of its positions is real tokens.
MIN_USEFUL_FRACTION = 0.95
# Left padding: PyLate's encode batch size (ColBERT.encode's default, used by its evaluators).
PYLATE_BATCH_SIZE = 32


def plan_batches(lengths: Sequence[int], batch_tokens: int, max_batch_size: int, fixed_width: int | None = None,
                 min_useful: float = MIN_USEFUL_FRACTION) -> list[list[int]]:
    """Group indices, longest first, into tight batches (for right padding, where batches do
    not change vectors beyond rounding).

    A batch takes the next-longest row while rows x padded width stays within
    ``batch_tokens``, it has fewer than ``max_batch_size`` rows, and at least ``min_useful``
    of its positions stay real tokens (the bound on the length spread that keeps padding
    under 5%). A row longer than the budget gets a batch of its own. ``fixed_width`` is
    the padded width when every row is padded to the same length (queries with expansion,
    whose padding is the expansion: no spread bound).
    """
    if batch_tokens < 1 or max_batch_size < 1:
        raise ValueError(f"batch_tokens and max_batch_size must be positive, got {batch_tokens} and {max_batch_size}")
    if not 0.0 <= min_useful <= 1.0:
        raise ValueError(f"min_useful must be a fraction in [0, 1], got {min_useful}")
    order = sorted(range(len(lengths)), key=lambda index: -lengths[index])  # stable: ties keep input order
    batches: list[list[int]] = []
    current: list[int] = []
    width = useful = 0
    for index in order:
        length = lengths[index]
        if current and len(current) < max_batch_size and (len(current) + 1) * width <= batch_tokens and (
                fixed_width is not None or useful + length >= min_useful * (len(current) + 1) * width):
            current.append(index)
            useful += length
            continue
        if current:
            batches.append(current)
        current, width, useful = [index], fixed_width or length, length
    if current:
        batches.append(current)
    return batches


def pylate_batches(texts: Sequence[str], batch_size: int = PYLATE_BATCH_SIZE) -> list[list[int]]:
    """PyLate 1.6.0's batches (``ColBERT.encode``): ``np.argsort`` of minus the character
    length of each text as given (before stripping; numpy's default sort, so ties keep
    numpy's order, not the input's), cut into runs of ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = np.argsort([-len(text) for text in texts]).tolist()
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
