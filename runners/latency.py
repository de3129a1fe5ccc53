"""``python -m runners.latency experiment=latency|latency_smoke [overrides]``: encoder speed.

For each configured model: query and document encoding throughput and latency across batch
sizes, then MaxSim timing and the device's matmul peak, all in one run and one process.
Real weights when they load offline (``model.path``, the fixture, or the Hugging Face
cache); otherwise a full-size random-init model from ``model.architecture``
(``latency.weights: auto|real|random``). Thin: config -> library calls -> output files.
"""
from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
import torch
from omegaconf import DictConfig

from nanobeir_ext.outputs import rundir
from nanobeir_ext.atomic import write_csv, write_json, write_text
from nanobeir_ext.outputs.environment import collect_environment
from nanobeir_ext.latency.timing import (
    LATENCY_COLUMNS,
    MAXSIM_COLUMNS,
    ModelFlops,
    TimingPolicy,
    TokenForward,
    measure_encoding,
    measure_maxsim,
    model_flops,
    power_of_two_batch_sizes,
    records_frame,
)
from nanobeir_ext.latency.report import LatencyContext, ModelNote, throughput_ratios, verdict, write_latency_report
from runners.common import REPO_DIR, cache_dir, configure_runtime, logged, output_dir, plain, resolved_yaml

log = logging.getLogger("nanobeir_ext.latency.timing")

WEIGHT_MODES = ("auto", "real", "random")


@dataclass(frozen=True)
class TimedModel:
    """What the timing loop needs from a model, whichever way it was built."""

    name: str
    forward: TokenForward
    vocab_size: int
    max_positions: int | None
    flops: ModelFlops
    weights: str
    parameters: int
    source: str
    owner: Any  # the encoder object, kept alive while timing and released after


def _timed_encoder(encoder: Any, name: str) -> TimedModel:
    config = encoder.backbone.config
    return TimedModel(name=name, forward=encoder.forward_tokens, vocab_size=int(config.vocab_size),
                      max_positions=getattr(config, "max_position_embeddings", None),
                      flops=model_flops(encoder.backbone, encoder.dense), weights=encoder.info.weights,
                      parameters=int(encoder.info.parameters), source=encoder.info.source, owner=encoder)


def load_real(m: DictConfig, *, device: str, dtype: str, attn_implementation: str, cache: Path) -> Any:
    """The configured checkpoint, without touching the network: fixture, local folder or HF cache."""
    from models.colbert import load_colbert

    common = dict(device=device, dtype=dtype, name=str(m.name), attn_implementation=attn_implementation)
    if m.get("fixture"):
        from models.registry import fixture_models_dir
        from models.fixtures import FIXTURE_ARCHITECTURES, build_fixture_checkpoints

        if m.fixture not in FIXTURE_ARCHITECTURES:
            raise ValueError(f"unknown fixture architecture {m.fixture!r}; valid choices: {list(FIXTURE_ARCHITECTURES)}")
        # The fixture checkpoint carries a random-init marker: load_colbert labels it so.
        return load_colbert(str(build_fixture_checkpoints(fixture_models_dir(cache))[m.fixture]), **common)
    if m.get("path"):
        return load_colbert(str(m.path), **common)
    return load_colbert(str(m.source), revision=m.get("revision"), local_files_only=True, **common)


def build_random(m: DictConfig, *, device: str, dtype: str, attn_implementation: str, seed: int) -> TimedModel:
    from models.colbert import resolve_dtype
    from models.random_init import Architecture, build_random_colbert, check_published_count, count_parameters

    if m.get("architecture") is None:
        raise ValueError(f"model {m.name!r} has no architecture config to build a random-init model from; "
                         "set model.architecture (configs/architecture/*.yaml) or latency.weights=real")
    architecture = Architecture.from_mapping(plain(m.architecture), where=f"{m.name} architecture")
    log.info("%s: %s", m.name, check_published_count(architecture, count_parameters(architecture)))
    model = build_random_colbert(architecture, name=str(m.name), device=device, dtype=resolve_dtype(dtype, device),
                                 attn_implementation=attn_implementation, seed=seed)
    config = model.backbone.config
    return TimedModel(name=str(m.name), forward=model.forward_tokens, vocab_size=model.vocab_size,
                      max_positions=getattr(config, "max_position_embeddings", None),
                      flops=model_flops(model.backbone, model.dense), weights="random-init",
                      parameters=model.parameters.total, source=f"architecture:{architecture.model_type} (random-init)",
                      owner=model)


def first_sentence(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split())
    return text.split(". ")[0][:limit]


def timed_model(m: DictConfig, *, mode: str, device: str, dtype: str, attn_implementation: str, seed: int,
                cache: Path) -> TimedModel:
    """Real weights when ``mode`` allows and they load offline; else random-init (one log line why)."""
    if mode not in WEIGHT_MODES:
        raise ValueError(f"latency.weights {mode!r}; valid choices: {list(WEIGHT_MODES)}")
    if mode != "random" or m.get("fixture"):  # a fixture checkpoint is random-init already: always load it
        try:
            encoder = load_real(m, device=device, dtype=dtype, attn_implementation=attn_implementation, cache=cache)
            return _timed_encoder(encoder, str(m.name))
        except (OSError, ValueError, RuntimeError) as error:  # ModelUnavailableError, missing/broken files
            if mode == "real":
                raise
            log.warning("%s: real weights not loadable offline (%s: %s); timing a random-init model of the same "
                        "architecture", m.name, type(error).__name__, first_sentence(error))
    return build_random(m, device=device, dtype=dtype, attn_implementation=attn_implementation, seed=seed)


def batch_sizes_for(seq_len: int, max_batch_size: int, max_batch_tokens: int | None) -> tuple[int, ...]:
    sizes = power_of_two_batch_sizes(max_batch_size)
    if max_batch_tokens is None:
        return sizes
    return tuple(b for b in sizes if b == 1 or b * seq_len <= max_batch_tokens)


def _free_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def measure_models(cfg: DictConfig, *, device: str, dtype: str, peak: float,
                   cache: Path) -> tuple[list, list[ModelNote]]:
    """Every configured model in turn (one in memory at a time): latency rows and what was timed."""
    s = cfg.latency
    policy = TimingPolicy(**plain(s.timing))
    progress = bool(cfg.runtime.get("progress", True))
    settings = [("query", int(s.query_length))] + [("document", int(n)) for n in s.document_lengths]
    rows: list = []
    notes: list[ModelNote] = []
    for key, m in cfg.models.items():
        model = timed_model(m, mode=str(s.weights), device=device, dtype=dtype,
                            attn_implementation=str(s.attn_implementation), seed=int(s.seed), cache=cache)
        notes.append(ModelNote(name=model.name, weights=model.weights, parameters=model.parameters, source=model.source))
        log.info("%s: weights=%s, %s parameters, %.0f MFLOP/token at %d tokens", model.name, model.weights,
                 f"{model.parameters:,}", model.flops.per_token(int(s.query_length)) / 1e6, int(s.query_length))
        for role, seq_len in settings:
            if model.max_positions is not None and seq_len > model.max_positions:
                raise ValueError(f"{model.name}: {role} length {seq_len} exceeds its {model.max_positions} positions; "
                                 f"lower latency.query_length / latency.document_lengths")
            rows += measure_encoding(
                model.forward, model=model.name, role=role, seq_len=seq_len,
                batch_sizes=batch_sizes_for(seq_len, int(s.max_batch_size), s.get("max_batch_tokens")),
                vocab_size=model.vocab_size, flops=model.flops, peak_flops=peak, device=device, dtype=dtype,
                weights=model.weights, parameters=model.parameters, policy=policy, seed=int(s.seed), progress=progress)
        del model  # before the next model is built
        _free_memory(device)
    return rows, notes


def with_peak(latency: pd.DataFrame, measured_with: float, peak: float) -> pd.DataFrame:
    """Rescale ``peak_fraction`` from the peak the rows were computed with to the final one."""
    return latency.assign(peak_fraction=latency["peak_fraction"] * measured_with / peak)


def resolved_dtype_name(dtype: str, device: str) -> str:
    from models.colbert import resolve_dtype

    return str(resolve_dtype(dtype, device)).removeprefix("torch.")


def hardware_label(environment: dict[str, Any], threads: int, device: str) -> str:
    name = environment.get("hardware", {}).get("name") or "unknown hardware"
    return name if device.startswith("cuda") else f"{name}, {threads} threads"


@logged
def run(cfg: DictConfig, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Measure as configured and write latency.csv, maxsim_latency.csv, figures/, latency.md, environment.json."""
    from models.random_init import select_lfm2_conv_path
    from nanobeir_ext.latency.peak import matmul_peak_flops

    configure_runtime(cfg.runtime)
    if not cfg.get("models"):
        raise ValueError("no models configured: pick an experiment (experiment=latency|latency_smoke)")
    out = output_dir(cfg, out_dir)
    rundir.claim(out, plain(cfg), kind="latency", overwrite=bool(cfg.get("overwrite", False)))
    write_text(out / "config.yaml", resolved_yaml(cfg))
    log.info("output folder: %s", out)
    s = cfg.latency
    device = str(cfg.runtime.device)
    dtype = resolved_dtype_name(str(cfg.runtime.dtype), device)
    threads = torch.get_num_threads()
    torch_dtype = getattr(torch, dtype)

    conv_path = select_lfm2_conv_path(str(s.lfm2_conv_kernel), device)
    peak_options = plain(s.get("peak") or {})
    peak_before = float(matmul_peak_flops(device, torch_dtype, **peak_options))
    log.info("dense matmul peak: %.1f GFLOP/s (%s, %s)", peak_before / 1e9, dtype, device)

    rows, notes = measure_models(cfg, device=device, dtype=dtype, peak=peak_before, cache=cache_dir(cfg.runtime))
    # Probed again after the sweeps: on a shared machine one probe can be disturbed, and the
    # best of the two is the better estimate of what the hardware can do.
    peak_after = float(matmul_peak_flops(device, torch_dtype, **peak_options))
    peak = max(peak_before, peak_after)
    log.info("dense matmul peak: %.1f GFLOP/s after the sweeps; using %.1f", peak_after / 1e9, peak / 1e9)
    latency = with_peak(records_frame(rows, LATENCY_COLUMNS), peak_before, peak)
    write_csv(out / "latency.csv", latency)

    ms = s.maxsim
    maxsim_row = measure_maxsim(n_documents=int(ms.n_documents), query_tokens=int(ms.query_tokens),
                                document_tokens=int(ms.document_tokens), dim=int(ms.dim), k=int(ms.k), peak_flops=peak,
                                device=device, policy=TimingPolicy(**plain(s.timing)),
                                chunk_tokens=ms.get("chunk_tokens"), seed=int(s.seed))
    maxsim = records_frame([maxsim_row], MAXSIM_COLUMNS)
    write_csv(out / "maxsim_latency.csv", maxsim)

    environment = collect_environment(
        device, REPO_DIR, threads=threads, dtype=dtype, matmul_peak_flops=peak,
        matmul_peak_probes={"before": peak_before, "after": peak_after},
        attn_implementation=str(s.attn_implementation), lfm2_short_conv=conv_path,
        models=[vars(n) for n in notes])
    write_json(out / "environment.json", environment)

    compare = s.compare
    context = LatencyContext(
        hardware=hardware_label(environment, threads, device), device=device, dtype=dtype, threads=threads,
        peak_flops=peak, candidate=str(compare.candidate), baseline=str(compare.baseline),
        on_par_threshold=float(compare.on_par_threshold), models=tuple(notes),
        notes=(f"attention kernel: {s.attn_implementation}; LFM2 short convolutions: {conv_path}",
               f"matmul peak: best of two probes, {peak_before / 1e9:.1f} GFLOP/s before the encoder sweeps and "
               f"{peak_after / 1e9:.1f} after",
               "timings: device synchronised before and after each call; throughput from the median (p50)",
               f"timing policy: {plain(s.timing)}"))
    write_latency_report(latency, maxsim, context, out, figures_enabled=bool(s.get("figures", True)))
    ratios = throughput_ratios(latency, context.candidate, context.baseline)
    line = verdict(ratios, context.candidate, context.baseline, context.on_par_threshold)
    rundir.mark_complete(out)
    log.info("%s", line)
    log.info("outputs in %s", out)
    return {"out_dir": str(out), "encode_rows": len(latency), "maxsim_rows": len(maxsim), "verdict": line,
            "peak_flops": peak}


@hydra.main(config_path="../configs", config_name="latency", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
