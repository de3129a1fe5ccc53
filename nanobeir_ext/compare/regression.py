"""A run against a baseline run (or committed baseline folder): deltas of every metric, paired
tests on per-query scores, coverage checks and the regression rule's verdict.

Deltas are always ``run - baseline``; the per-subset rows are compared too and kept apart.
Rendering lives in ``compare/render.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from nanobeir_ext.compare.cells import CELL_KEYS, EXAMPLES, QUERY_KEYS, RESULT_KEYS, by_scope, key_text
from nanobeir_ext.compare.settings import (EXIT_MISMATCH, EXIT_PASS, EXIT_REGRESSION, LATENCY_METRICS, CompareSettings,
                                           SignificanceSettings)
from nanobeir_ext.evaluation.significance import Correction, adjust, paired_randomization_test
from nanobeir_ext.evaluation.results import MEAN_SUBSET
from nanobeir_ext.outputs.folders import RunFolder

LATENCY_KEYS = ["model", "role", "batch_size", "seq_len"]
LATENCY_CONTEXT = ["device", "dtype", "weights"]


@dataclass(frozen=True)
class RunComparison:
    run_name: str
    baseline_name: str
    settings: CompareSettings
    coverage_problems: tuple[str, ...]
    # CELL_KEYS + metric, run, baseline, delta, p_value, p_adjusted, significant, drop_beyond,
    # gate_regressed (rule 1), drifted (rule 4), regressed (either)
    cells: pd.DataFrame
    subsets: pd.DataFrame  # RESULT_KEYS + run, baseline, delta, drifted (per-subset rows, every metric)
    means: pd.DataFrame  # model, benchmark, metric, scope, n_cells, run, baseline, delta, regressed
    languages: pd.DataFrame  # model, benchmark, axis, lang, n_queries, run, baseline, delta, p_value, p_adjusted, significant
    latency: pd.DataFrame | None  # LATENCY_KEYS + latency_metric, run, baseline, increase_rel, regressed
    notes: tuple[str, ...] = ()

    @property
    def regressed_cells(self) -> pd.DataFrame:
        return self.cells[self.cells["regressed"]].sort_values("delta", kind="mergesort")

    @property
    def counts(self) -> dict[str, int | None]:
        """How many rows the rule failed, by reason: the one count every rendering shows."""
        return {"regressed_cells": int(self.cells["regressed"].sum()),
                "gate_regressed_cells": int(self.cells["gate_regressed"].sum()),
                "drifted_cells": int(self.cells["drifted"].sum()),
                "drifted_subsets": int(self.subsets["drifted"].sum()),
                "gated_cells": int(self.cells["metric"].isin(self.settings.rule.gate_metrics).sum()),
                "mean_regressions": int(self.means["regressed"].sum()),
                "latency_regressions": None if self.latency is None else int(self.latency["regressed"].sum())}

    @property
    def verdict(self) -> str:
        if self.coverage_problems:
            return "mismatch"
        counts = self.counts
        failed = ("regressed_cells", "drifted_subsets", "mean_regressions", "latency_regressions")
        return "regression" if any(counts[k] for k in failed) else "pass"

    @property
    def exit_code(self) -> int:
        return {"pass": EXIT_PASS, "regression": EXIT_REGRESSION, "mismatch": EXIT_MISMATCH}[self.verdict]


def compare_runs(run: RunFolder, baseline: RunFolder, settings: CompareSettings, *, progress: bool = True) -> RunComparison:
    """Every metric's deltas, paired tests on per-query scores, tolerance verdicts, coverage checks."""
    problems = coverage_problems(run, baseline, settings)
    notes: list[str] = []
    merged = _merge_values(run.results, baseline.results, RESULT_KEYS)
    cells = merged[merged["subset"] == MEAN_SUBSET].drop(columns=["subset"]).reset_index(drop=True)
    subsets = merged[merged["subset"] != MEAN_SUBSET].reset_index(drop=True)

    sig = settings.significance
    pairs = _query_pairs(run, baseline, sig.metric)
    if pairs is None:
        notes.append(f"No significance test: per-query {sig.metric} scores are missing on "
                     f"{_sides_without_per_query(run, baseline, sig.metric)}; cell drops are judged by tolerance alone.")
        cell_tests = pd.DataFrame(columns=[*CELL_KEYS, "n_queries", "p_value", "p_adjusted"])
        languages = pd.DataFrame(columns=["model", "benchmark", "axis", "lang", "n_queries", "run", "baseline", "delta",
                                          "p_value", "p_adjusted", "significant"])
    else:
        cell_tests = _cell_tests(pairs, sig, progress)
        languages = _language_tests(pairs, sig, progress)
        family = int(cell_tests.groupby(["model", "benchmark"]).size().max()) if len(cell_tests) else 0
        if sig.correction != "none" and family * (1 / (sig.n_resamples + 1)) >= sig.alpha:
            # Monte Carlo p-values cannot go below 1 / (n + 1): a lone changed cell could never pass.
            notes.append(f"{sig.n_resamples} resamples are too few for {family} cells per model: after "
                         f"{sig.correction} correction a single changed cell cannot reach p < {sig.alpha}; "
                         f"raise significance.n_resamples above {int(family / sig.alpha)}.")
    cells = cells.merge(cell_tests.assign(metric=sig.metric), on=[*CELL_KEYS, "metric"], how="left")
    cells["significant"] = cells["p_adjusted"] < sig.alpha
    tol, rule = settings.tolerances, settings.rule
    cells["drop_beyond"] = cells["metric"].isin(rule.gate_metrics) & (cells["delta"] < -tol.cell_drop_abs)
    # No p-value (other metrics, or no per-query data on one side): the drop alone decides.
    confirmed = cells["significant"] | cells["p_adjusted"].isna() if rule.require_significance else True
    # The rule's outcome, decided here once; every rendering only counts these columns.
    cells["gate_regressed"] = cells["drop_beyond"] & confirmed
    cells["drifted"] = _drifted(cells, tol.any_change_abs)
    subsets["drifted"] = _drifted(subsets, tol.any_change_abs)
    cells["regressed"] = cells["gate_regressed"] | cells["drifted"]
    if subsets["drifted"].any():
        notes.append(f"drift gate: {int(subsets['drifted'].sum())} per-subset values moved by more than "
                     f"{tol.any_change_abs:g}")
    means = _means(cells, gate_metrics=rule.gate_metrics, mean_drop_abs=tol.mean_drop_abs)
    latency, latency_note = _latency(run, baseline, rule.latency_metrics, tol.latency_increase_rel)
    if latency_note:
        notes.append(latency_note)
    return RunComparison(run_name=run.name, baseline_name=baseline.name, settings=settings,
                         coverage_problems=tuple(problems), cells=cells, subsets=subsets, means=means,
                         languages=languages, latency=latency, notes=tuple(notes))


def _drifted(frame: pd.DataFrame, any_change_abs: float | None) -> pd.Series:
    """The drift gate: any move beyond ``any_change_abs``, either way (all False when the gate is off)."""
    if any_change_abs is None:
        return pd.Series(False, index=frame.index, dtype=bool)
    return frame["delta"].abs() > any_change_abs


def coverage_problems(run: RunFolder, baseline: RunFolder, settings: CompareSettings) -> list[str]:
    """Ways the two sides differ in what they measured; empty when they cover the same ground."""
    problems: list[str] = []
    run_models, base_models = set(run.results["model"]), set(baseline.results["model"])
    if run_models != base_models:
        problems.append(f"models differ: only in run {sorted(run_models - base_models)}, "
                        f"only in baseline {sorted(base_models - run_models)}")
    metric = settings.significance.metric
    for role, side in (("run", run), ("baseline", baseline)):
        for what, frame, keys in (("result", side.results, RESULT_KEYS),
                                  (f"per-query {metric}", _metric_rows(side.per_query, metric), QUERY_KEYS),
                                  ("latency", side.latency, LATENCY_KEYS)):
            dup = frame.duplicated(keys) if frame is not None else None
            if dup is not None and dup.any():
                problems.append(f"{role} {side.name}: {int(dup.sum())} duplicated {what} keys, "
                                f"e.g. {key_text(frame[dup].iloc[0], keys)}")
    problems += _key_set_problem("result rows (model, benchmark, subset, doc_lang, query_lang, metric)",
                                 run.results, baseline.results, RESULT_KEYS)
    run_q, base_q = _metric_rows(run.per_query, metric), _metric_rows(baseline.per_query, metric)
    if run_q is not None and base_q is not None:
        problems += _key_set_problem(f"per-query {metric} rows (model, benchmark, subset, doc_lang, query_lang, query_id)",
                                     run_q, base_q, QUERY_KEYS)
    if run.latency is not None and baseline.latency is not None:
        problems += _key_set_problem("latency rows (model, role, batch_size, seq_len)",
                                     run.latency, baseline.latency, LATENCY_KEYS)
        both = run.latency.merge(baseline.latency, on=LATENCY_KEYS, suffixes=("_run", "_baseline"))
        for column in LATENCY_CONTEXT:
            differ = both[both[f"{column}_run"].astype(str) != both[f"{column}_baseline"].astype(str)]
            if len(differ):
                row = differ.iloc[0]
                problems.append(f"latency measured with a different {column} on {len(differ)} rows, e.g. "
                                f"{key_text(row, LATENCY_KEYS)}: run {row[f'{column}_run']!r}, baseline "
                                f"{row[f'{column}_baseline']!r} (refresh the baseline on this machine)")
    return problems


def _key_set_problem(what: str, run: pd.DataFrame, baseline: pd.DataFrame, keys: list[str]) -> list[str]:
    run_keys = set(map(tuple, run[keys].astype(str).itertuples(index=False, name=None)))
    base_keys = set(map(tuple, baseline[keys].astype(str).itertuples(index=False, name=None)))
    if run_keys == base_keys:
        return []
    only_run, only_base = sorted(run_keys - base_keys), sorted(base_keys - run_keys)
    return [f"{what} differ: {len(only_run)} only in run (e.g. {only_run[:EXAMPLES]}), "
            f"{len(only_base)} only in baseline (e.g. {only_base[:EXAMPLES]})"]


def _merge_values(run: pd.DataFrame, baseline: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    # Duplicated keys are reported by coverage_problems; keep the first so the rest can still be shown.
    merged = (run.drop_duplicates(keys).rename(columns={"value": "run"})
              .merge(baseline.drop_duplicates(keys).rename(columns={"value": "baseline"}), on=keys, how="inner"))
    merged["delta"] = merged["run"] - merged["baseline"]
    return merged


def _metric_rows(per_query: pd.DataFrame | None, metric: str) -> pd.DataFrame | None:
    if per_query is None:
        return None
    rows = per_query[per_query["metric"] == metric]
    return None if rows.empty else rows


def _sides_without_per_query(run: RunFolder, baseline: RunFolder, metric: str) -> str:
    sides = [f"{role} {side.name}" for role, side in (("run", run), ("baseline", baseline))
             if _metric_rows(side.per_query, metric) is None]
    return " and ".join(sides)


def _query_pairs(run: RunFolder, baseline: RunFolder, metric: str) -> pd.DataFrame | None:
    run_q, base_q = _metric_rows(run.per_query, metric), _metric_rows(baseline.per_query, metric)
    if run_q is None or base_q is None:
        return None
    return _merge_values(run_q.drop(columns=["metric"]), base_q.drop(columns=["metric"]), QUERY_KEYS)


def _test_groups(pairs: pd.DataFrame, by: list[str], sig: SignificanceSettings, progress: bool,
                 desc: str) -> pd.DataFrame:
    rows = []
    # Each (subset, cell) counts once, whatever its number of queries: the statistic is then the
    # same unweighted mean over subsets (and cells) that the results table reports.
    stratum = [c for c in ("subset", "doc_lang", "query_lang") if c not in by]
    weights = 1.0 / pairs.groupby([*by, *stratum], observed=True)["run"].transform("size")
    groups = pairs.assign(weight=weights).groupby(by, sort=True, observed=True)
    for key, group in tqdm(groups, total=groups.ngroups, desc=desc, disable=not progress, leave=False):
        w = group["weight"].to_numpy() / group["weight"].sum()
        p_value, mean_diff = paired_randomization_test(group["run"].to_numpy(), group["baseline"].to_numpy(),
                                                       n_resamples=sig.n_resamples, seed=sig.seed, weights=w)
        rows.append({**dict(zip(by, key)), "n_queries": len(group), "run": float(w @ group["run"].to_numpy()),
                     "baseline": float(w @ group["baseline"].to_numpy()), "delta": mean_diff, "p_value": p_value})
    return pd.DataFrame(rows, columns=[*by, "n_queries", "run", "baseline", "delta", "p_value"])


def _adjust_per_model(frame: pd.DataFrame, correction: Correction) -> pd.Series:
    # One family per model: its 81 cells (or its 18 language aggregates) are tested together.
    adjusted = pd.Series(np.nan, index=frame.index, dtype="float64")
    for _, family in frame.groupby(["model", "benchmark"], sort=False):
        adjusted.loc[family.index] = adjust(family["p_value"].to_numpy(), correction)
    return adjusted


def _cell_tests(pairs: pd.DataFrame, sig: SignificanceSettings, progress: bool) -> pd.DataFrame:
    tests = _test_groups(pairs, CELL_KEYS, sig, progress, "paired tests: cells")
    tests["p_adjusted"] = _adjust_per_model(tests, sig.correction)
    return tests[[*CELL_KEYS, "n_queries", "p_value", "p_adjusted"]]


def _language_tests(pairs: pd.DataFrame, sig: SignificanceSettings, progress: bool) -> pd.DataFrame:
    frames = []
    for axis in ("query_lang", "doc_lang"):
        tests = _test_groups(pairs, ["model", "benchmark", axis], sig, progress, f"paired tests: {axis}")
        frames.append(tests.rename(columns={axis: "lang"}).assign(axis=axis))
    tests = pd.concat(frames, ignore_index=True)
    tests["p_adjusted"] = _adjust_per_model(tests, sig.correction)
    tests["significant"] = tests["p_adjusted"] < sig.alpha
    return tests[["model", "benchmark", "axis", "lang", "n_queries", "run", "baseline", "delta", "p_value",
                  "p_adjusted", "significant"]]


def _means(cells: pd.DataFrame, *, gate_metrics: Iterable[str], mean_drop_abs: float) -> pd.DataFrame:
    rows = []
    for scope, part in by_scope(cells).items():
        for (model, benchmark, metric), group in part.groupby(["model", "benchmark", "metric"], sort=True):
            run_mean, base_mean = float(group["run"].mean()), float(group["baseline"].mean())
            rows.append({"model": model, "benchmark": benchmark, "metric": metric, "scope": scope,
                         "n_cells": len(group), "run": run_mean, "baseline": base_mean, "delta": run_mean - base_mean})
    means = pd.DataFrame(rows, columns=["model", "benchmark", "metric", "scope", "n_cells", "run", "baseline", "delta"])
    gated = means["metric"].isin(list(gate_metrics)) & (means["scope"] == "all")
    means["regressed"] = gated & (means["delta"] < -mean_drop_abs)
    return means


def _latency(run: RunFolder, baseline: RunFolder, metrics: tuple[str, ...],
             tolerance: float) -> tuple[pd.DataFrame | None, str | None]:
    if run.latency is None or baseline.latency is None:
        missing = " and ".join(f"{role} {s.name}" for role, s in (("run", run), ("baseline", baseline))
                               if s.latency is None)
        return None, f"No latency comparison: no latency.csv in {missing}."
    both = run.latency.merge(baseline.latency, on=LATENCY_KEYS, suffixes=("_run", "_baseline"))
    frames = []
    for metric in metrics:
        larger_is_worse = LATENCY_METRICS[metric]
        run_v, base_v = both[f"{metric}_run"].astype(float), both[f"{metric}_baseline"].astype(float)
        # Slowdown as a fraction: time ratio, or inverse throughput ratio.
        increase = run_v / base_v - 1 if larger_is_worse else base_v / run_v - 1
        frames.append(pd.DataFrame({**{k: both[k] for k in LATENCY_KEYS}, "device": both["device_run"],
                                    "latency_metric": metric, "run": run_v, "baseline": base_v,
                                    "increase_rel": increase, "regressed": increase > tolerance}))
    return pd.concat(frames, ignore_index=True), None
