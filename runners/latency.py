"""``python -m runners.latency experiment=latency|latency_smoke [overrides]``: encoder speed.

For each configured model: query and document encoding throughput and latency across batch
sizes, then MaxSim timing and the device's matmul peak, all in one run and one process.
Real weights when they load offline (``model.path``, the fixture, or the Hugging Face
cache); otherwise a full-size random-init model from ``model.architecture``
(``latency.weights: auto|real|random``). Thin: config -> :class:`LatencyPlan` -> library
calls (``nanobeir_ext.latency``, ``models.registry.load_for_timing``) -> output files.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import hydra
import torch
from omegaconf import DictConfig

from nanobeir_ext.atomic import write_csv, write_json, write_text
from nanobeir_ext.latency.measure import LatencyMeasurements, measure_latency
from nanobeir_ext.latency.report import LatencyContext, compare_throughput, hardware_label, write_latency_report
from nanobeir_ext.latency.timing import EncodingSweep, MaxSimSetting, TimingPolicy
from nanobeir_ext.outputs.environment import collect_environment
from nanobeir_ext.protocol import EncoderRequest
from runners.common import (REPO_DIR, cache_dir, configure_runtime, held_log_files, logged, output_dir, owned_folder,
                            plain, resolved_yaml)

if TYPE_CHECKING:
    from models.random_init import Architecture

# What a latency run writes; cleared first when overwrite=true replaces a different run.
LATENCY_OUTPUTS = ("config.yaml", "environment.json", "latency.csv", "maxsim_latency.csv", "latency.md", "figures")
log = logging.getLogger("nanobeir_ext.latency")


@dataclass(frozen=True)
class LatencyModel:
    request: EncoderRequest  # what models.registry.load_encoder loads
    architecture: Architecture | None  # what a random-init stand-in is built from


@dataclass(frozen=True)
class LatencyPlan:
    """Everything a latency run does, read from the config once."""

    models: tuple[LatencyModel, ...]
    weights: str  # auto | real | random (models.registry.WEIGHT_MODES)
    sweep: EncodingSweep
    maxsim: MaxSimSetting
    candidate: str  # the model whose "on par" claim is checked (a model name)
    baseline: str
    on_par_threshold: float
    device: str
    dtype: torch.dtype  # resolved once ("auto" -> bfloat16 on CUDA, float32 otherwise)
    attn_implementation: str
    lfm2_conv_kernel: str
    peak_options: Mapping[str, Any]
    cache_dir: Path
    progress: bool = True
    figures: bool = True

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


def latency_model(m: DictConfig) -> LatencyModel:
    from models.random_init import Architecture

    architecture = m.get("architecture")
    request = EncoderRequest(name=str(m.name), source=str(m.source), revision=m.get("revision"), path=m.get("path"),
                             fixture=m.get("fixture"), trust_remote_code=bool(m.get("trust_remote_code", False)))
    return LatencyModel(request=request, architecture=None if architecture is None else
                        Architecture.from_mapping(plain(architecture), where=f"{m.name} architecture"))


def build_plan(cfg: DictConfig) -> LatencyPlan:
    from models.colbert import resolve_dtype
    from models.registry import WEIGHT_MODES

    if not cfg.get("models"):
        raise ValueError("no models configured: pick an experiment (experiment=latency|latency_smoke)")
    s = cfg.latency
    if str(s.weights) not in WEIGHT_MODES:
        raise ValueError(f"latency.weights {s.weights!r}; valid choices: {list(WEIGHT_MODES)}")
    models = tuple(latency_model(m) for m in cfg.models.values())
    names = [m.request.name for m in models]
    for role in ("candidate", "baseline"):
        if str(s.compare[role]) not in names:
            raise ValueError(f"latency.compare.{role} {s.compare[role]!r} is not a configured model name; "
                             f"models: {names}")
    device = str(cfg.runtime.device)
    ms = s.maxsim
    return LatencyPlan(
        models=models, weights=str(s.weights),
        sweep=EncodingSweep(lengths=(("query", int(s.query_length)), *(("document", int(n)) for n in s.document_lengths)),
                            max_batch_size=int(s.max_batch_size),
                            max_batch_tokens=None if s.get("max_batch_tokens") is None else int(s.max_batch_tokens),
                            policy=TimingPolicy(**plain(s.timing)), seed=int(s.seed)),
        maxsim=MaxSimSetting(n_documents=int(ms.n_documents), query_tokens=int(ms.query_tokens),
                             document_tokens=int(ms.document_tokens), dim=int(ms.dim), k=int(ms.k),
                             chunk_tokens=None if ms.get("chunk_tokens") is None else int(ms.chunk_tokens)),
        candidate=str(s.compare.candidate), baseline=str(s.compare.baseline),
        on_par_threshold=float(s.compare.on_par_threshold), device=device,
        dtype=resolve_dtype(str(cfg.runtime.dtype), device), attn_implementation=str(s.attn_implementation),
        lfm2_conv_kernel=str(s.lfm2_conv_kernel), peak_options=plain(s.get("peak") or {}),
        cache_dir=cache_dir(cfg.runtime), progress=bool(cfg.runtime.get("progress", True)),
        figures=bool(s.get("figures", True)))


def measure(plan: LatencyPlan) -> LatencyMeasurements:
    from models.registry import load_for_timing

    loaders = [functools.partial(load_for_timing, m.request, m.architecture, weights=plan.weights, device=plan.device,
                                 dtype=plan.dtype, cache_dir=plan.cache_dir,
                                 attn_implementation=plan.attn_implementation, seed=plan.sweep.seed)
               for m in plan.models]
    return measure_latency(loaders, plan.sweep, plan.maxsim, device=plan.device, dtype=plan.dtype,
                           peak_options=plan.peak_options, progress=plan.progress)


def report_context(plan: LatencyPlan, measured: LatencyMeasurements, environment: Mapping[str, Any], threads: int,
                   conv_path: str) -> LatencyContext:
    return LatencyContext(
        hardware=hardware_label(environment, threads, plan.device), device=plan.device, dtype=plan.dtype_name,
        threads=threads, peak_flops=measured.peak, models=measured.models,
        notes=(f"attention kernel: {plan.attn_implementation}; LFM2 short convolutions: {conv_path}",
               f"matmul peak: best of two probes, {measured.peak_before / 1e9:.1f} GFLOP/s before the encoder sweeps "
               f"and {measured.peak_after / 1e9:.1f} after",
               "timings: device synchronised before and after each call; throughput from the median (p50)",
               f"timing policy: {asdict(plan.sweep.policy)}"))


@logged
def run(cfg: DictConfig, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Measure as configured and write latency.csv, maxsim_latency.csv, figures/, latency.md, environment.json."""
    from models.random_init import select_lfm2_conv_path

    configure_runtime(cfg.runtime)
    plan = build_plan(cfg)
    out = output_dir(cfg, out_dir)
    held = held_log_files(out)  # nothing enters the folder before the run owns it
    with owned_folder(out, cfg, plain(cfg), kind="latency", outputs=LATENCY_OUTPUTS, held=held):
        write_text(out / "config.yaml", resolved_yaml(cfg))
        log.info("output folder: %s", out)
        threads = torch.get_num_threads()
        conv_path = select_lfm2_conv_path(plan.lfm2_conv_kernel, plan.device)

        measured = measure(plan)
        write_csv(out / "latency.csv", measured.latency)
        write_csv(out / "maxsim_latency.csv", measured.maxsim)
        environment = collect_environment(
            plan.device, REPO_DIR, threads=threads, dtype=plan.dtype_name, matmul_peak_flops=measured.peak,
            matmul_peak_probes={"before": measured.peak_before, "after": measured.peak_after},
            attn_implementation=plan.attn_implementation, lfm2_short_conv=conv_path,
            models=[label.to_dict() for label in measured.models])
        write_json(out / "environment.json", environment)

        comparison = compare_throughput(measured.latency, plan.candidate, plan.baseline, plan.on_par_threshold)
        write_latency_report(measured.latency, measured.maxsim,
                             report_context(plan, measured, environment, threads, conv_path),
                             comparison, out, figures_enabled=plan.figures)
    log.info("%s", comparison.verdict)
    log.info("outputs in %s", out)
    return {"out_dir": str(out), "encode_rows": len(measured.latency), "maxsim_rows": len(measured.maxsim),
            "verdict": comparison.verdict, "peak_flops": measured.peak}


@hydra.main(config_path="../configs", config_name="latency", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
