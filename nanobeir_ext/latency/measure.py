"""One latency session: matmul peak, every encoder's sweep (one model in memory at a time),
the peak again, then MaxSim; the tables the runner writes and the report renders."""
from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import pandas as pd
import torch

from nanobeir_ext.latency.peak import matmul_peak_flops
from nanobeir_ext.latency.timing import (
    EncodeLatency,
    EncodingSweep,
    MaxSimLatency,
    MaxSimSetting,
    TimedEncoder,
    measure_maxsim,
    model_flops,
    records_frame,
    rescale_peak_fraction,
    sweep_encoder,
)
from nanobeir_ext.protocol import ModelLabel

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class LatencyMeasurements:
    latency: pd.DataFrame  # latency.csv: one EncodeLatency row per setting, peak_fraction against `peak`
    maxsim: pd.DataFrame  # maxsim_latency.csv: one MaxSimLatency row
    models: tuple[ModelLabel, ...]  # what was timed, in order
    peak_before: float  # matmul peak probed before the encoder sweeps (FLOP/s)
    peak_after: float  # ... and after them

    @property
    def peak(self) -> float:
        """The best of the two probes: on a shared machine one can be disturbed."""
        return max(self.peak_before, self.peak_after)


def measure_latency(encoders: Iterable[Callable[[], TimedEncoder]], sweep: EncodingSweep, maxsim: MaxSimSetting, *,
                    device: str, dtype: torch.dtype, peak_options: Mapping[str, object] | None = None,
                    progress: bool = True) -> LatencyMeasurements:
    """Time every encoder (each built by its loader just before its sweep and released after) and MaxSim."""
    peak_options = dict(peak_options or {})
    peak_before = float(matmul_peak_flops(device, dtype, **peak_options))
    log.info("dense matmul peak: %.1f GFLOP/s (%s, %s)", peak_before / 1e9, str(dtype).removeprefix("torch."), device)
    rows: list[EncodeLatency] = []
    labels: list[ModelLabel] = []
    for load in encoders:
        encoder = load()
        label = encoder.info
        labels.append(label)
        first_length = sweep.lengths[0][1]
        log.info("%s: weights=%s, %s parameters, %.0f MFLOP/token at %d tokens", label.name, label.weights,
                 f"{label.parameters or 0:,}", model_flops(encoder.backbone, encoder.dense).per_token(first_length) / 1e6,
                 first_length)
        rows += sweep_encoder(encoder, sweep, peak_flops=peak_before, progress=progress)
        del encoder  # before the next model is built
        _free_memory(device)
    peak_after = float(matmul_peak_flops(device, dtype, **peak_options))
    peak = max(peak_before, peak_after)
    log.info("dense matmul peak: %.1f GFLOP/s after the sweeps; using %.1f", peak_after / 1e9, peak / 1e9)
    latency = rescale_peak_fraction(records_frame(rows, EncodeLatency), peak_before, peak)
    maxsim_row = measure_maxsim(maxsim, peak_flops=peak, device=device, policy=sweep.policy, seed=sweep.seed)
    return LatencyMeasurements(latency=latency, maxsim=records_frame([maxsim_row], MaxSimLatency),
                               models=tuple(labels), peak_before=peak_before, peak_after=peak_after)


def _free_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
