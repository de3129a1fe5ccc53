"""Combining finished run folders of separate jobs (models, languages, sweep variants) into
one set of per-query rows, results and model labels, for a combined report."""
from __future__ import annotations

import dataclasses

import pandas as pd

from nanobeir_ext.evaluation.results import combine, results_from_per_query
from nanobeir_ext.outputs.folders import RunFolder
from nanobeir_ext.protocol import ModelLabel

_VALUE_KEYS = ["benchmark", "subset", "doc_lang", "query_lang", "query_id", "metric"]


def _overlapping_models(runs: list[RunFolder]) -> set[str]:
    """Models that two runs both report for the same (subset, cell, query, metric): sweep variants,
    not parts of one evaluation split across jobs."""
    seen: dict[str, set[tuple]] = {}
    overlapping = set()
    for run in runs:
        for model, rows in run.per_query.groupby("model", observed=True):
            keys = set(map(tuple, rows[_VALUE_KEYS].itertuples(index=False, name=None)))
            if keys & seen.get(model, set()):
                overlapping.add(model)
            seen.setdefault(model, set()).update(keys)
    return overlapping


def _variant_suffixes(runs: list[RunFolder]) -> list[str]:
    """What tells each run apart: its overrides not shared by every run, else its folder name."""
    common = set.intersection(*(set(r.overrides) for r in runs)) if runs else set()
    return [", ".join(o for o in r.overrides if o not in common) or r.path.name for r in runs]


def combine_runs(runs: list[RunFolder]) -> tuple[pd.DataFrame, pd.DataFrame, list[ModelLabel]]:
    """Per-query rows of all runs, results recomputed from them, and one label per model.

    Runs that split one evaluation (models, languages, shards) merge as they are. Where two runs
    report the same model for the same keys (a sweep over settings), each run's copy of that model
    is labelled with what distinguishes the run, e.g. ``LFM2 [retrieval.k=10]``."""
    without = [str(r.path) for r in runs if r.per_query is None]
    if without:
        raise ValueError(f"{without} hold no per-query scores (per_query.parquet); a combined report needs them")
    variants = _overlapping_models(runs)
    suffixes = _variant_suffixes(runs)
    frames, labels = [], {}
    for run, suffix in zip(runs, suffixes):
        rename = {m: f"{m} [{suffix}]" for m in variants}
        frame = run.per_query.copy()
        frame["model"] = frame["model"].map(lambda m: rename.get(m, m))
        frames.append(frame)
        for label in run.labels:
            label = dataclasses.replace(label, name=rename.get(label.name, label.name))
            if label.name in labels and labels[label.name] != label:
                raise ValueError(f"model {label.name!r} was produced differently in two runs: "
                                 f"{labels[label.name]} vs {label}")
            labels[label.name] = label
    per_query = combine(frames)
    return per_query, results_from_per_query(per_query), list(labels.values())
