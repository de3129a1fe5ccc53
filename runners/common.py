"""Shared runner plumbing: logging, threads, the output folder, config to plain values.

The output folder is touched only once the run owns it (``owned_folder``): the runners'
configs set ``hydra.output_subdir: null`` and a delayed log file, so Hydra writes nothing into
the folder before the task starts; ``owned_folder`` claims it (``nanobeir_ext.outputs.rundir``)
and only then writes Hydra's record (``.hydra/``) and starts the log file there. A refused run
therefore leaves the folder exactly as it was. (A Hydra callback cannot do this: for sweeps
Hydra writes ``.hydra/`` and opens the log before the first per-job hook runs.)
"""
from __future__ import annotations

import contextlib
import functools
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from nanobeir_ext.atomic import write_text
from nanobeir_ext.outputs import rundir

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
    exit_cleanly_on_sigterm()


def exit_cleanly_on_sigterm() -> None:
    """SIGTERM (SLURM preemption, ``kill``) unwinds like Ctrl-C: temp files are removed and run.json
    says the run failed, instead of the process vanishing mid-write."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


HYDRA_RECORD = ".hydra"


def _hydra_job() -> Any:
    """Hydra's config of the running job, or None outside Hydra (tests call ``run`` directly)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.instance().cfg if HydraConfig.initialized() else None


def held_log_files(out: Path) -> list[logging.Handler]:
    """Detach the log-file handlers that write into ``out`` (Hydra's ``<job>.log``) until the run owns
    it; with the configs' ``delay: true`` the file is not even created before that."""
    root = logging.getLogger()
    held = [h for h in root.handlers if isinstance(h, logging.FileHandler)
            and Path(h.baseFilename).resolve().parent == Path(out).resolve()]
    for handler in held:
        root.removeHandler(handler)
    return held


def folder_outputs(outputs: Sequence[str], held: Sequence[logging.Handler]) -> tuple[str, ...]:
    """What a run writes into its folder: its own outputs, Hydra's record and its log file."""
    return (*outputs, HYDRA_RECORD, *(Path(h.baseFilename).name for h in held))


@contextlib.contextmanager
def owned_folder(out: Path, cfg: DictConfig, settings: Any, *, kind: str, outputs: Sequence[str],
                 held: Sequence[logging.Handler] = (), hydra_record: bool = True) -> Iterator[Path]:
    """Claim ``out`` (refused: nothing in it changes), record Hydra's job and start its log there
    (unless not ``hydra_record``), then mark the run complete, or failed if the body raises
    (Ctrl-C and SIGTERM included)."""
    rundir.claim(out, settings, kind=kind, overwrite=bool(cfg.get("overwrite", False)),
                 outputs=folder_outputs(outputs, held) if hydra_record else tuple(outputs))
    for handler in held:
        logging.getLogger().addHandler(handler)
    if hydra_record:
        record_hydra_job(out, cfg)
    try:
        yield out
    except BaseException as error:
        try:
            rundir.mark_failed(out, error)
        except Exception as marking:  # e.g. a full disk: the original error is the one to see
            log.error("could not mark %s failed: %s", out / rundir.MANIFEST, marking)
        raise
    rundir.mark_complete(out)


def record_hydra_job(out: Path, cfg: DictConfig) -> None:
    """Write what Hydra would have written to ``.hydra/`` (config, Hydra's config, overrides)."""
    job = _hydra_job()
    if job is None or job.hydra.output_subdir is not None:  # outside Hydra, or Hydra wrote it itself
        return
    folder = Path(out) / HYDRA_RECORD
    write_text(folder / "config.yaml", OmegaConf.to_yaml(cfg))
    write_text(folder / "hydra.yaml", OmegaConf.to_yaml(job))
    write_text(folder / "overrides.yaml", OmegaConf.to_yaml(job.hydra.overrides.task))


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
