"""Every evaluation setting that can be checked without encoding, checked before the first model
loads (``check_evaluation``), and the per-model length check once a model is loaded."""
from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig

from nanobeir_ext.evaluation import checks

log = logging.getLogger("nanobeir_ext.evaluate")


def check_evaluation(cfg: DictConfig, *, cuda_available: bool | None = None) -> None:
    """Raise ``checks.ConfigError`` naming the first bad key; loads nothing, reads no data."""
    checks.metric_names(cfg.get("metrics"))
    retrieval = cfg.get("retrieval") or {}
    checks.positive_int(retrieval.get("k"), "retrieval.k")
    checks.positive_int(retrieval.get("chunk_tokens"), "retrieval.chunk_tokens", optional=True)
    checks.non_empty(cfg.benchmark.get("subsets"), "benchmark.subsets")
    checks.non_empty(cfg.benchmark.get("languages"), "benchmark.languages")
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    checks.device_available(str(cfg.runtime.device), cuda_available=cuda_available)
    models = cfg.get("models") or {}
    for key, model in models.items():
        for setting in ("query_length", "document_length", "batch_tokens"):
            checks.positive_int(model.get(setting), f"models.{key}.{setting}", optional=True)
    names = [str(model.get("name")) for model in models.values()]
    checks.distinct_file_names(names)
    checks.baseline_among_models((cfg.get("report") or {}).get("baseline_model"), names)


def warn_about_lengths(encoder: Any, model_key: str) -> None:
    """Warn when a configured length exceeds the loaded model's positions (read from its config, if it has one)."""
    settings = getattr(encoder, "settings", None)
    network = getattr(encoder, "backbone", None) or getattr(encoder, "model", None)
    max_positions = getattr(getattr(network, "config", None), "max_position_embeddings", None)
    for role in ("query", "document"):
        length = getattr(settings, f"{role}_length", None)
        note = checks.length_warning(length if isinstance(length, int) else None,
                                     max_positions if isinstance(max_positions, int) else None,
                                     f"models.{model_key}.{role}_length")
        if note:
            log.warning(note)
