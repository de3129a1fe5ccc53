"""Comparisons: a run against a baseline run (regressions) and against the published tables
(reproduction). Values in, frozen records of DataFrames out; rendering lives in ``compare_report``.

Deltas are always ``run - other``. A *cell* is one (model, benchmark, doc_lang, query_lang)
of the ``subset == "mean"`` rows; the per-subset rows are compared too and kept apart.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from nanobeir_ext.outputs.folders import RunFolder
from nanobeir_ext.languages import ordered
from nanobeir_ext.compare.reference import Reference, check_printed_averages
from nanobeir_ext.evaluation.results import MEAN_SUBSET
from nanobeir_ext.compare.significance import CORRECTIONS, Correction, adjust, paired_randomization_test

EXIT_PASS = 0
EXIT_REGRESSION = 1  # also: published numbers not reproduced
EXIT_MISMATCH = 2  # the two sides do not cover the same models / cells / queries, or nothing to compare

CELL_KEYS = ["model", "benchmark", "doc_lang", "query_lang"]
RESULT_KEYS = ["model", "benchmark", "subset", "doc_lang", "query_lang", "metric"]
QUERY_KEYS = ["model", "benchmark", "subset", "doc_lang", "query_lang", "query_id"]
LATENCY_KEYS = ["model", "role", "batch_size", "seq_len"]
LATENCY_CONTEXT = ["device", "dtype", "weights"]
# Latency columns and whether a larger value is worse (times) or better (throughputs).
LATENCY_METRICS: dict[str, bool] = {"p50_ms": True, "p95_ms": True, "texts_per_s": False, "tokens_per_s": False}
SCOPES: tuple[str, ...] = ("all", "diagonal", "off-diagonal")
_EXAMPLES = 5


@dataclass(frozen=True)
class Tolerances:
    published_abs: float = 0.01  # |run - published| per cell for "reproduced"
    cell_drop_abs: float = 0.02  # a cell's metric drop beyond this may be a regression
    mean_drop_abs: float = 0.01  # a drop of the mean over all cells beyond this is a regression
    latency_increase_rel: float = 0.10  # relative slowdown beyond this is a regression
    # Drift gate for deterministic pipelines: any value of any metric (cell or subset) that moves
    # by more than this, up or down, fails. None = off.
    any_change_abs: float | None = None

    def __post_init__(self) -> None:
        for name in ("published_abs", "cell_drop_abs", "mean_drop_abs", "latency_increase_rel", "any_change_abs"):
            if (getattr(self, name) or 0) < 0:
                raise ValueError(f"tolerance {name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class SignificanceSettings:
    metric: str = "ndcg@10"  # per-query metric the paired test runs on
    n_resamples: int = 10000
    seed: int = 0
    alpha: float = 0.05
    correction: Correction = "holm"

    def __post_init__(self) -> None:
        if self.correction not in CORRECTIONS:
            raise ValueError(f"unknown correction {self.correction!r}; valid choices: {list(CORRECTIONS)}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")
        if self.n_resamples < 1:
            raise ValueError(f"n_resamples must be >= 1, got {self.n_resamples}")


@dataclass(frozen=True)
class RegressionRule:
    gate_metrics: tuple[str, ...] = ("ndcg@10",)  # metrics whose drops fail; every metric is reported
    require_significance: bool = True  # a cell drop must also be significant where per-query data exist
    latency_metrics: tuple[str, ...] = ("p50_ms",)

    def __post_init__(self) -> None:
        unknown = [m for m in self.latency_metrics if m not in LATENCY_METRICS]
        if unknown:
            raise ValueError(f"unknown latency metrics {unknown}; valid choices: {list(LATENCY_METRICS)}")


@dataclass(frozen=True)
class CompareSettings:
    tolerances: Tolerances = field(default_factory=Tolerances)
    significance: SignificanceSettings = field(default_factory=SignificanceSettings)
    rule: RegressionRule = field(default_factory=RegressionRule)

    def describe_rule(self) -> str:
        """The regression rule in words, for the report footer."""
        t, s, r = self.tolerances, self.significance, self.rule
        significance = (f" AND it is significant (paired randomization test on per-query {s.metric}, "
                        f"adjusted p < {s.alpha}) whenever both sides have per-query scores for that metric"
                        if r.require_significance else "")
        return (f"A regression is (1) a cell whose {', '.join(r.gate_metrics)} drops by more than "
                f"{t.cell_drop_abs:g}{significance}; OR (2) a drop of the mean over all cells by more than "
                f"{t.mean_drop_abs:g}; OR (3) a latency increase ({', '.join(r.latency_metrics)}) of more than "
                f"{100 * t.latency_increase_rel:g}% when both sides have latency.csv"
                + (f"; OR (4) any value of any metric (cell or subset) that moves by more than {t.any_change_abs:g} "
                   "in either direction (drift gate)" if t.any_change_abs is not None else "")
                + ". Both sides must cover the "
                "same models, cells, metrics and queries, otherwise the comparison fails as a mismatch.")


# ----------------------------------------------------------------------------- run vs run


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
                                f"e.g. {_key_text(frame[dup].iloc[0], keys)}")
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
                                f"{_key_text(row, LATENCY_KEYS)}: run {row[f'{column}_run']!r}, baseline "
                                f"{row[f'{column}_baseline']!r} (refresh the baseline on this machine)")
    return problems


def _key_set_problem(what: str, run: pd.DataFrame, baseline: pd.DataFrame, keys: list[str]) -> list[str]:
    run_keys = set(map(tuple, run[keys].astype(str).itertuples(index=False, name=None)))
    base_keys = set(map(tuple, baseline[keys].astype(str).itertuples(index=False, name=None)))
    if run_keys == base_keys:
        return []
    only_run, only_base = sorted(run_keys - base_keys), sorted(base_keys - run_keys)
    return [f"{what} differ: {len(only_run)} only in run (e.g. {only_run[:_EXAMPLES]}), "
            f"{len(only_base)} only in baseline (e.g. {only_base[:_EXAMPLES]})"]


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
    diagonal = cells["doc_lang"] == cells["query_lang"]
    for scope, mask in (("all", None), ("diagonal", diagonal), ("off-diagonal", ~diagonal)):
        part = cells if mask is None else cells[mask]
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


def _key_text(row: pd.Series, keys: list[str]) -> str:
    return "(" + ", ".join(f"{k}={row[k]}" for k in keys) + ")"


# ----------------------------------------------------------------------------- run vs published


@dataclass(frozen=True)
class ModelReproduction:
    run_model: str
    reference_model: str
    weights: str  # "real", "random-init" or "unknown"
    run_benchmark: str
    reference_benchmark: str
    cells: pd.DataFrame  # doc_lang, query_lang, run, published, delta, within
    summary: pd.DataFrame  # scope, n_cells, run, published, delta
    averages: pd.DataFrame  # axis, lang, run, published_recomputed, published_printed, printed_agrees, delta
    subsets: pd.DataFrame  # subset, run, published, delta, within (per-subset reference, when the run has them)
    missing_cells: tuple[tuple[str, str], ...]
    tolerance: float

    @property
    def largest(self) -> pd.Series | None:
        """The cell with the largest |delta|."""
        if self.cells.empty:
            return None
        return self.cells.loc[self.cells["delta"].abs().idxmax()]

    @property
    def n_outside(self) -> int:
        return int((~self.cells["within"]).sum() + (~self.subsets["within"]).sum())

    @property
    def verdict(self) -> str:
        if self.cells.empty and self.subsets.empty:
            return "nothing to compare"
        return "reproduced" if self.n_outside == 0 else "not reproduced"


@dataclass(frozen=True)
class PublishedComparison:
    run_name: str
    models: tuple[ModelReproduction, ...]
    without_reference: tuple[str, ...]  # run models the mapping does not send to a published table
    printed_averages: pd.DataFrame  # check_printed_averages of the reference
    sources: tuple[str, ...]
    tolerance: float
    metric: str

    @property
    def verdict(self) -> str:
        compared = [m for m in self.models if m.verdict != "nothing to compare"]
        if not compared:
            return "nothing to compare"
        return "reproduced" if all(m.verdict == "reproduced" for m in compared) else "not reproduced"

    @property
    def exit_code(self) -> int:
        return {"reproduced": EXIT_PASS, "not reproduced": EXIT_REGRESSION, "nothing to compare": EXIT_MISMATCH}[self.verdict]


def run_weights(run: RunFolder) -> dict[str, str]:
    """Weights ("real" / "random-init") per model: environment.json's labels, else latency.csv's column."""
    weights = {}
    if run.latency is not None:
        weights.update({str(m): str(w) for m, w in zip(run.latency["model"], run.latency["weights"]) if w})
    weights.update({label.name: label.weights for label in run.labels})
    return weights


def compare_to_published(run: RunFolder, reference: Reference, model_map: Mapping[str, str], *,
                         tolerance: float, metric: str = "ndcg@10") -> PublishedComparison:
    """Cell deltas (run - published) per mapped model, averages recomputed from cells."""
    unknown_targets = sorted({v for v in model_map.values() if v not in reference.models()})
    if unknown_targets:
        raise ValueError(f"reference_models maps to {unknown_targets}, which have no published table; "
                         f"published models: {list(reference.models())}")
    printed = check_printed_averages(reference)
    weights = run_weights(run)
    models, without = [], []
    for run_model in sorted(run.results["model"].unique()):
        target = model_map.get(run_model)
        if target is None:
            without.append(run_model)
            continue
        models.append(_reproduce_model(run, run_model, target, reference, printed, weights.get(run_model, "unknown"),
                                       tolerance, metric))
    sources = tuple(dict.fromkeys(t.source.cite() for t in reference.tables))
    return PublishedComparison(run_name=run.name, models=tuple(models), without_reference=tuple(without),
                               printed_averages=printed, sources=sources, tolerance=tolerance, metric=metric)


def _reproduce_model(run: RunFolder, run_model: str, target: str, reference: Reference, printed: pd.DataFrame,
                     weights: str, tolerance: float, metric: str) -> ModelReproduction:
    spec = reference.table(target, "matrix")
    rows = run.results[(run.results["model"] == run_model) & (run.results["metric"] == metric)]
    benchmarks = sorted(rows["benchmark"].unique())
    benchmark = spec.benchmark if spec and spec.benchmark in benchmarks else (benchmarks[0] if len(benchmarks) == 1 else None)
    if benchmark is None and benchmarks:
        raise ValueError(f"run model {run_model!r} has {metric} on several benchmarks {benchmarks} and none is the "
                         f"published {spec.benchmark if spec else '(none)'!r}; compare one benchmark at a time")
    rows = rows[rows["benchmark"] == benchmark]
    published = reference.matrix(target) if spec else pd.DataFrame()
    cell_rows, missing = [], []
    run_cells = rows[rows["subset"] == MEAN_SUBSET].set_index(["doc_lang", "query_lang"])["value"]
    if run_cells.index.duplicated().any():
        raise ValueError(f"run model {run_model!r} has several {metric} values for cells "
                         f"{sorted(set(run_cells.index[run_cells.index.duplicated()]))[:_EXAMPLES]} on {benchmark!r}")
    for doc in published.index:
        for query in published.columns:
            if (doc, query) not in run_cells.index:
                missing.append((doc, query))
                continue
            value, pub = float(run_cells[(doc, query)]), float(published.at[doc, query])
            cell_rows.append({"doc_lang": doc, "query_lang": query, "run": value, "published": pub,
                              "delta": value - pub, "within": abs(value - pub) <= tolerance})
    cells = pd.DataFrame(cell_rows, columns=["doc_lang", "query_lang", "run", "published", "delta", "within"])
    return ModelReproduction(run_model=run_model, reference_model=target, weights=weights,
                             run_benchmark=str(benchmark), reference_benchmark=spec.benchmark if spec else "",
                             cells=cells, summary=_reproduction_summary(cells),
                             averages=_reproduction_averages(cells, printed[printed["model"] == target]),
                             subsets=_reproduce_subsets(rows, reference, target, tolerance, metric),
                             missing_cells=tuple(missing), tolerance=tolerance)


def _reproduction_summary(cells: pd.DataFrame) -> pd.DataFrame:
    rows = []
    diagonal = cells["doc_lang"] == cells["query_lang"]
    for scope, part in (("all", cells), ("diagonal", cells[diagonal]), ("off-diagonal", cells[~diagonal])):
        if part.empty:
            continue
        run_mean, pub_mean = float(part["run"].mean()), float(part["published"].mean())
        rows.append({"scope": scope, "n_cells": len(part), "run": run_mean, "published": pub_mean,
                     "delta": run_mean - pub_mean})
    return pd.DataFrame(rows, columns=["scope", "n_cells", "run", "published", "delta"])


def _reproduction_averages(cells: pd.DataFrame, printed: pd.DataFrame) -> pd.DataFrame:
    """Row (doc) and column (query) averages recomputed from the compared cells, next to the
    printed ones; a printed average is shown only as a flag, never used as the reference."""
    rows = []
    for axis, column in (("doc", "doc_lang"), ("query", "query_lang")):
        for lang in ordered(cells[column].unique()):
            part = cells[cells[column] == lang]
            match = printed[(printed["axis"] == axis) & (printed["lang"] == lang)]
            run_avg, pub_avg = float(part["run"].mean()), float(part["published"].mean())
            rows.append({"axis": axis, "lang": lang, "n_cells": len(part), "run": run_avg,
                         "published_recomputed": pub_avg,
                         "published_printed": float(match["printed_percent"].iloc[0]) / 100 if len(match) else np.nan,
                         "printed_agrees": bool(match["agrees"].iloc[0]) if len(match) else True,
                         "delta": run_avg - pub_avg})
    return pd.DataFrame(rows, columns=["axis", "lang", "n_cells", "run", "published_recomputed", "published_printed",
                                       "printed_agrees", "delta"])


def _reproduce_subsets(rows: pd.DataFrame, reference: Reference, target: str, tolerance: float,
                       metric: str) -> pd.DataFrame:
    columns = ["subset", "language", "run", "published", "delta", "within"]
    spec = reference.table(target, "subsets")
    if spec is None or spec.metric != metric:
        return pd.DataFrame(columns=columns)
    published = reference.results[(reference.results["model"] == target) & (reference.results["benchmark"] == spec.benchmark)]
    published = published.set_index("subset")["value"]
    lang = spec.language
    run_subsets = rows[(rows["doc_lang"] == lang) & (rows["query_lang"] == lang)].set_index("subset")["value"]
    named = [s for s in published.index if s != MEAN_SUBSET]
    compared = [s for s in named if s in run_subsets.index]
    # The run's mean is over its own subsets: comparable to the published mean only if they are the same.
    if MEAN_SUBSET in published.index and MEAN_SUBSET in run_subsets.index and set(named) <= set(run_subsets.index):
        compared.append(MEAN_SUBSET)
    out = [{"subset": s, "language": lang, "run": float(run_subsets[s]), "published": float(published[s]),
            "delta": float(run_subsets[s]) - float(published[s]),
            "within": abs(float(run_subsets[s]) - float(published[s])) <= tolerance} for s in compared]
    return pd.DataFrame(out, columns=columns)
