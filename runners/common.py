"""Shared runner plumbing: logging, threads, the output folder, config to plain values."""
from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import torch
from omegaconf import DictConfig, OmegaConf

REPO_DIR = Path(__file__).resolve().parent.parent
log = logging.getLogger("nanobeir_ext")


def output_dir(cfg: DictConfig, given: str | Path | None) -> Path:
    """The run's folder: the one given (tests), else Hydra's run dir."""
    if given is not None:
        return Path(given)
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def configure_runtime(runtime: DictConfig) -> None:
    if runtime.get("threads") is not None:
        torch.set_num_threads(int(runtime.threads))
    logging.getLogger("nanobeir_ext").setLevel(logging.INFO)
    # transformers' per-checkpoint load/save bars add nothing next to the harness's own progress.
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def resolved_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)


def plain(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def cache_dir(runtime: DictConfig) -> Path:
    return Path(str(runtime.cache_dir)).expanduser().resolve()


def logged(func: Callable[..., Any]) -> Callable[..., Any]:
    """Log the output folder and any exception (with its message first) before Hydra exits."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as error:
            log.error("%s: %s", type(error).__name__, error)
            raise
    return wrapper


def exit_with(code: int) -> None:
    if code:
        sys.exit(code)
