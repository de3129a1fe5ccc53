"""Hugging Face model-card ``model-index`` metadata from a results table.

One result per (subset, document language, query language): task type ``retrieval``, the
benchmark's dataset with a config naming the subset and the language pair, and one metric
entry per requested metric (``ndcg@10`` -> ``ndcg_at_10``). Schema:
https://github.com/huggingface/hub-docs/blob/main/modelcard.md (``model-index``).
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
import yaml

from nanobeir_ext.languages import ordered
from nanobeir_ext.evaluation.results import MEAN_SUBSET

# Hub dataset of each benchmark name used in results tables; other benchmarks keep their own name.
BENCHMARK_DATASETS: dict[str, str] = {"nanobeir-extended": "LiquidAI/nanobeir-multilingual-extended"}
MEAN_CONFIG = "NanoBEIR_mean"  # the card's name for the mean over subsets


def metric_type(metric: str) -> str:
    """``ndcg@10`` -> ``ndcg_at_10`` (the metric ids MTEB model cards use)."""
    return metric.replace("@", "_at_")


def dataset_config(subset: str, doc_lang: str, query_lang: str) -> str:
    name = MEAN_CONFIG if subset == MEAN_SUBSET else subset
    return f"{name}_docs-{doc_lang}_queries-{query_lang}"


def model_index(results: pd.DataFrame, model: str, *, name: str | None = None, metrics: Sequence[str] = ("ndcg@10",),
                benchmark: str | None = None, dataset_id: str | None = None, dataset_revision: str | None = None,
                split: str = "test", include_mean: bool = True) -> dict[str, Any]:
    """The ``model-index`` mapping for ``model`` (see :func:`model_index_yaml`)."""
    rows = results[results["model"] == model]
    if rows.empty:
        raise KeyError(f"no results for model {model!r}; models present: {sorted(results['model'].unique())}")
    benchmarks = sorted(rows["benchmark"].unique())
    if benchmark is None:
        if len(benchmarks) > 1:
            raise ValueError(f"model {model!r} has results on several benchmarks {benchmarks}; pass benchmark=")
        benchmark = benchmarks[0]
    elif benchmark not in benchmarks:
        raise KeyError(f"model {model!r} has no results on benchmark {benchmark!r}; it has {benchmarks}")
    missing = [m for m in metrics if m not in set(rows["metric"])]
    if missing:
        raise KeyError(f"metrics {missing} not in the results of {model!r}; present: {sorted(rows['metric'].unique())}")
    rows = rows[(rows["benchmark"] == benchmark) & rows["metric"].isin(list(metrics))]
    if not include_mean:
        rows = rows[rows["subset"] != MEAN_SUBSET]
    dataset = dataset_id or BENCHMARK_DATASETS.get(benchmark, benchmark)
    lang_rank = {lang: i for i, lang in enumerate(ordered(set(rows["doc_lang"]) | set(rows["query_lang"])))}
    metric_rank = {m: i for i, m in enumerate(metrics)}
    # Subsets alphabetically with the mean last; cells in the card's language order.
    rows = rows.assign(_mean=rows["subset"] == MEAN_SUBSET, _doc=rows["doc_lang"].map(lang_rank),
                       _query=rows["query_lang"].map(lang_rank), _metric=rows["metric"].map(metric_rank))
    rows = rows.sort_values(["_mean", "subset", "_doc", "_query", "_metric"], kind="mergesort")
    entries = []
    for (_, subset, _, _), group in rows.groupby(["_mean", "subset", "_doc", "_query"], sort=False):
        first = group.iloc[0]
        ds: dict[str, Any] = {"name": dataset, "type": dataset,
                              "config": dataset_config(subset, first["doc_lang"], first["query_lang"]), "split": split}
        if dataset_revision:
            ds["revision"] = dataset_revision
        entries.append({"task": {"type": "retrieval"}, "dataset": ds,
                        "metrics": [{"type": metric_type(m), "value": float(v)}
                                    for m, v in zip(group["metric"], group["value"])]})
    return {"model-index": [{"name": name or model, "results": entries}]}


def model_index_yaml(results: pd.DataFrame, model: str, *, name: str | None = None,
                     metrics: Sequence[str] = ("ndcg@10",), benchmark: str | None = None,
                     dataset_id: str | None = None, dataset_revision: str | None = None, split: str = "test",
                     include_mean: bool = True) -> str:
    """A model card ``model-index`` YAML block for ``model``'s rows of a long results table.

    ``name`` is the model-index name (default: the model label); ``dataset_id`` defaults to the
    benchmark's hub dataset (``nanobeir-extended`` -> ``LiquidAI/nanobeir-multilingual-extended``,
    any other benchmark, e.g. the offline fixture, keeps its own name so it cannot pass for the
    real one); ``dataset_revision`` is written when given; ``include_mean`` adds the
    mean-over-subsets rows as config ``NanoBEIR_mean_docs-<doc>_queries-<query>``.
    """
    mapping = model_index(results, model, name=name, metrics=metrics, benchmark=benchmark, dataset_id=dataset_id,
                          dataset_revision=dataset_revision, split=split, include_mean=include_mean)
    return yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True, width=120)
