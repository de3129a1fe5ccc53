"""The device's dense matmul peak, measured, as the yardstick for throughput.

Benchmarks report their useful FLOP/s as a fraction of this number measured
in the same run on the same device, so "90% of peak" means something on any
machine. Square matmuls of a few sizes, after a warm-up, best of N: the best
time is the least disturbed by other work on a shared machine.
"""
from __future__ import annotations

import time
from typing import Sequence

import torch


def matmul_peak_flops(
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    sizes: Sequence[int] = (2048, 4096),
    repeats: int = 5,
) -> float:
    """Best FLOP/s of ``[n, n] @ [n, n]`` (``2 n**3`` FLOPs) over ``sizes`` x ``repeats``.

    Matmul precision follows torch's global setting
    (``torch.get_float32_matmul_precision()``; "highest" by default, i.e. no TF32).
    """
    if repeats < 1 or not sizes or any(n < 1 for n in sizes):
        raise ValueError(f"need repeats >= 1 and positive sizes, got repeats={repeats}, sizes={tuple(sizes)}")
    target = torch.device(device)
    generator = torch.Generator(device=target).manual_seed(0)
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=target, generator=generator).to(dtype)
        b = torch.randn(n, n, device=target, generator=generator).to(dtype)
        out = torch.empty(n, n, device=target, dtype=dtype)
        torch.mm(a, b, out=out)  # warm-up: kernel selection, page faults, clocks
        _synchronize(target)
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            _synchronize(target)
            best = max(best, 2.0 * n**3 / (time.perf_counter() - start))
        del a, b, out
    return best


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
