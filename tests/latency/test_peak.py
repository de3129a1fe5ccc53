from __future__ import annotations

import math

import pytest
import torch

from nanobeir_ext.latency.peak import matmul_peak_flops


def test_peak_is_a_positive_finite_rate():
    flops = matmul_peak_flops("cpu", torch.float32, sizes=(64, 128), repeats=2)
    assert math.isfinite(flops) and flops > 1e6  # any CPU does more than a MFLOP/s


def test_peak_rejects_bad_arguments():
    with pytest.raises(ValueError, match="repeats >= 1"):
        matmul_peak_flops(repeats=0)
    with pytest.raises(ValueError, match="positive sizes"):
        matmul_peak_flops(sizes=())
