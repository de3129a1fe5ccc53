"""Settings checked before any work: a typo fails in a second, naming its key, not after encoding.

Pure functions of explicit values; ``runners/checks.py`` reads them from the config. The
retrieval.k-versus-cutoff rule lives with the plan (``EvaluationPlan``); this module checks
what the plan cannot see (the raw config shape, the device, the report's baseline, file names).
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from nanobeir_ext.evaluation.metrics import metric_cutoff
from nanobeir_ext.protocol import slug


class ConfigError(ValueError):
    """A configured value that cannot work; the message names the key."""


def metric_names(value: Any) -> tuple[str, ...]:
    """``metrics`` as a non-empty list of known metric names."""
    if isinstance(value, str):
        raise ConfigError(f"metrics must be a list, got the string {value!r}: write metrics=[{value}]")
    names = tuple(value or ())
    if not names:
        raise ConfigError("metrics is empty: give at least one, e.g. metrics=[ndcg@10]")
    for name in names:
        try:
            metric_cutoff(name)
        except ValueError as error:
            raise ConfigError(f"metrics: {error}") from None
    return names


def positive_int(value: Any, key: str, *, optional: bool = False) -> int | None:
    """A positive integer setting (``None`` allowed where ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    number = int(value)
    if number < 1:
        raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    return number


def non_empty(values: Any, key: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ConfigError(f"{key} must be a list, got the string {values!r}: write {key}=[{values}]")
    items = tuple(str(v) for v in (values or ()))
    if not items:
        raise ConfigError(f"{key} is empty: give at least one")
    return items


def device_available(device: str, *, cuda_available: bool, key: str = "runtime.device") -> None:
    if str(device).split(":")[0] == "cuda" and not cuda_available:
        raise ConfigError(f"{key}={device} but this machine has no CUDA device (or torch was built without CUDA); "
                          f"use {key}=cpu (runtime=cpu)")


def baseline_among_models(baseline: str | None, model_names: Sequence[str],
                          key: str = "report.baseline_model") -> None:
    """Refuse a delta-table baseline that is none of the run's models (a typo, or a model removed
    with ``~models.<key>``). A one-model job that will be combined later sets it to null and the
    combining report names the baseline (``runners.report baseline_model=...``)."""
    if baseline is None or baseline in model_names:
        return
    raise ConfigError(f"{key}={baseline!r} is not one of the models {list(model_names)}; set it to one of their "
                      f"names or to null (a report combining separate runs takes runners.report baseline_model=...)")


def distinct_file_names(model_names: Iterable[str]) -> None:
    """Two models whose names map to one file name would overwrite each other's run files."""
    by_file: dict[str, list[str]] = {}
    for name in model_names:
        by_file.setdefault(slug(name), []).append(name)
    clashes = {file: names for file, names in by_file.items() if len(names) > 1}
    if clashes:
        described = "; ".join(f"{names} all become {file!r}" for file, names in clashes.items())
        raise ConfigError(f"model names that map to the same file name: {described}; "
                          "give each a distinct models.<key>.name")


def length_warning(length: int | None, max_positions: int | None, key: str) -> str | None:
    """A note when a configured text length exceeds what the model's position embeddings cover."""
    if length is None or max_positions is None or length <= max_positions:
        return None
    return (f"{key}={length} exceeds the model's {max_positions} positions: longer texts fail or are cut by "
            f"the model; lower {key}")
