"""A run against the published tables (reproduction): per mapped model, cell deltas
(run - published), averages recomputed from cells, and the per-subset model-index values.

Rendering lives in ``compare/render.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from nanobeir_ext.compare.cells import EXAMPLES, by_scope
from nanobeir_ext.compare.reference import Reference, check_printed_averages
from nanobeir_ext.compare.settings import EXIT_MISMATCH, EXIT_PASS, EXIT_REGRESSION
from nanobeir_ext.evaluation.metrics import PRIMARY_METRIC
from nanobeir_ext.evaluation.results import MEAN_SUBSET
from nanobeir_ext.languages import ordered
from nanobeir_ext.outputs.folders import RunFolder

PUBLISHED = "published"  # the baseline name of a reproduction


@dataclass(frozen=True)
class ModelReproduction:
    run_model: str
    reference_model: str
    weights: str  # "real", "random-init" or "unknown"
    run_benchmark: str
    reference_benchmark: str
    cells: pd.DataFrame  # doc_lang, query_lang, run, published, delta, within, from_subsets
    summary: pd.DataFrame  # scope, n_cells, run, published, delta
    averages: pd.DataFrame  # axis, lang, run, published_recomputed, published_printed, printed_agrees, delta
    subsets: pd.DataFrame  # subset, run, published, delta, within (per-subset reference, when the run has them)
    missing_cells: tuple[tuple[str, str], ...]  # published cells the run lacks
    tolerance: float
    unpublished_cells: tuple[tuple[str, str], ...] = ()  # run cells the source does not publish
    coverage: str = "matrix"  # what the source publishes: "matrix", "diagonal" or "subsets only"

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
    def baseline_name(self) -> str:
        return PUBLISHED

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
                         tolerance: float, metric: str = PRIMARY_METRIC) -> PublishedComparison:
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
    # Cite the sources of the tables compared (all of them when nothing maps, so the report still names them).
    compared = {m.reference_model for m in models}
    sources = tuple(dict.fromkeys(t.source.cite() for t in reference.tables if t.model in compared or not compared))
    return PublishedComparison(run_name=run.name, models=tuple(models), without_reference=tuple(without),
                               printed_averages=printed, sources=sources, tolerance=tolerance, metric=metric)


def _reproduce_model(run: RunFolder, run_model: str, target: str, reference: Reference, printed: pd.DataFrame,
                     weights: str, tolerance: float, metric: str) -> ModelReproduction:
    spec = reference.cell_table(target) or reference.table(target, "subsets")
    rows = run.results[(run.results["model"] == run_model) & (run.results["metric"] == metric)]
    benchmarks = sorted(rows["benchmark"].unique())
    benchmark = spec.benchmark if spec and spec.benchmark in benchmarks else (benchmarks[0] if len(benchmarks) == 1 else None)
    if benchmark is None and benchmarks:
        raise ValueError(f"run model {run_model!r} has {metric} on several benchmarks {benchmarks} and none is the "
                         f"published {spec.benchmark if spec else '(none)'!r}; compare one benchmark at a time")
    rows = rows[rows["benchmark"] == benchmark]
    published = reference.cells(target)
    cell_rows, missing = [], []
    run_cells = rows[rows["subset"] == MEAN_SUBSET].set_index(["doc_lang", "query_lang"])["value"]
    if run_cells.index.duplicated().any():
        raise ValueError(f"run model {run_model!r} has several {metric} values for cells "
                         f"{sorted(set(run_cells.index[run_cells.index.duplicated()]))[:EXAMPLES]} on {benchmark!r}")
    for cell in published.itertuples(index=False):
        doc, query = cell.doc_lang, cell.query_lang
        if (doc, query) not in run_cells.index:
            missing.append((doc, query))
            continue
        value, pub = float(run_cells[(doc, query)]), float(cell.published)
        cell_rows.append({"doc_lang": doc, "query_lang": query, "run": value, "published": pub,
                          "delta": value - pub, "within": abs(value - pub) <= tolerance,
                          "from_subsets": bool(cell.from_subsets)})
    cells = pd.DataFrame(cell_rows, columns=["doc_lang", "query_lang", "run", "published", "delta", "within",
                                             "from_subsets"])
    # Run cells the source does not publish: reported as such, never compared with a made-up value.
    published_keys = set(zip(published["doc_lang"], published["query_lang"]))
    unpublished = tuple(key for key in run_cells.index if key not in published_keys) if len(published) else ()
    cell_spec = reference.cell_table(target)
    return ModelReproduction(run_model=run_model, reference_model=target, weights=weights,
                             run_benchmark=str(benchmark), reference_benchmark=spec.benchmark if spec else "",
                             cells=cells, summary=_reproduction_summary(cells),
                             averages=_reproduction_averages(cells, printed[printed["model"] == target]),
                             subsets=_reproduce_subsets(rows, reference, target, tolerance, metric),
                             missing_cells=tuple(missing), tolerance=tolerance,
                             unpublished_cells=unpublished,
                             coverage=cell_spec.kind if cell_spec else "subsets only")


def _reproduction_summary(cells: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for scope, part in by_scope(cells).items():
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
    """Published per-subset values (same language for queries and documents) against the run's.

    A ``subsets`` table's own ``mean`` is compared too, when the run has every subset it names
    (the run's mean is over its own subsets); a diagonal table's means are its cells.
    """
    columns = ["subset", "language", "run", "published", "delta", "within"]
    out = []
    for spec in reference.tables:
        if spec.model != target or spec.kind not in ("subsets", "diagonal") or spec.metric != metric:
            continue
        published = reference.results[(reference.results["model"] == target)
                                      & (reference.results["benchmark"] == spec.benchmark)
                                      & (reference.results["doc_lang"] == reference.results["query_lang"])]
        for lang, part in published.groupby("doc_lang", sort=False):
            values = part.set_index("subset")["value"]
            run_subsets = rows[(rows["doc_lang"] == lang) & (rows["query_lang"] == lang)].set_index("subset")["value"]
            named = [s for s in values.index if s != MEAN_SUBSET]
            compared = [s for s in named if s in run_subsets.index]
            if (spec.kind == "subsets" and MEAN_SUBSET in values.index and MEAN_SUBSET in run_subsets.index
                    and set(named) <= set(run_subsets.index)):
                compared.append(MEAN_SUBSET)
            out += [{"subset": s, "language": lang, "run": float(run_subsets[s]), "published": float(values[s]),
                     "delta": float(run_subsets[s]) - float(values[s]),
                     "within": abs(float(run_subsets[s]) - float(values[s])) <= tolerance} for s in compared]
    return pd.DataFrame(out, columns=columns)
