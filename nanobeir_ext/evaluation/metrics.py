"""Per-query IR metrics with pytrec_eval, under one metric syntax.

Syntax: ``<measure>@<cutoff>``, lower case, cutoff a positive integer:
``ndcg@10``, ``mrr@10``, ``map@100``, ``recall@k``, ``precision@k``,
``accuracy@k``. The canonical string is the key everywhere (result rows,
tables); trec_eval's names (``ndcg_cut_10``, ``P_5``, ...) appear only in the
translation table below.

What each measure is (trec_eval's definitions, via pytrec_eval):
- ``ndcg@k``: ``ndcg_cut_k``; gain = the graded relevance label itself
  (not ``2**rel - 1``), discount ``log2(rank + 1)``, ideal ranking over all
  judged documents of the query. Labels below 1 add no gain.
- ``map@k``: ``map_cut_k``; sum of precision at each relevant rank <= k,
  divided by the number of relevant documents (all of them, not min(k, R)).
- ``recall@k`` (``recall_k``), ``precision@k`` (``P_k``, always divided by
  k), ``accuracy@k`` (``success_k``: 1 if a relevant document is in the top k).
- ``mrr@k``: trec_eval's ``recip_rank`` has no cutoff, so each query's run is
  first cut to its top k, then ``recip_rank`` is computed on the cut run.
Binary measures count a document relevant when its label >= ``relevance_level``.

Ties: trec_eval ignores the order and ranks of the run it is given and sorts
each query's documents by score desc, then document id desc. The cut for
``mrr@k`` uses that same order, so ``mrr@k > 0`` exactly when
``accuracy@k == 1``. :mod:`nanobeir_ext.retrieval.maxsim` ranks ties the same way.

Queries: every query of the qrels gets a value for every metric; a query the
run lacks (or retrieves nothing for) scores 0. Queries in the run but not in
the qrels are ignored. A qrels query without any relevant document scores 0
on every measure (trec_eval's convention); drop such queries before
evaluating if they should not count, as PyLate's NanoBEIR evaluator does.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Mapping, Sequence

import pytrec_eval

from nanobeir_ext.retrieval.trec import Run, ranked

PRIMARY_METRIC = "ndcg@10"
DEFAULT_METRICS: tuple[str, ...] = (
    PRIMARY_METRIC,
    "mrr@10",
    "map@100",
    "recall@100",
    *(f"{name}@{k}" for name in ("precision", "recall", "accuracy") for k in (1, 3, 5, 10)),
)

# Our measure name -> trec_eval measure family. mrr has no trec_eval cutoff:
# it is recip_rank on a run cut at k (see evaluate_run).
_TREC_EVAL_FAMILY: dict[str, str] = {
    "ndcg": "ndcg_cut",
    "map": "map_cut",
    "recall": "recall",
    "precision": "P",
    "accuracy": "success",
    "mrr": "recip_rank",
}
_UNCUT_FAMILIES = frozenset({"recip_rank"})
_METRIC_SYNTAX = re.compile(r"(?P<name>[a-z]+)@(?P<cutoff>[1-9][0-9]*)")


@dataclass(frozen=True)
class QueryMetric:
    query_id: str
    metric: str
    value: float


@dataclass(frozen=True)
class _Measure:
    name: str  # one of _TREC_EVAL_FAMILY
    cutoff: int

    @property
    def family(self) -> str:
        return _TREC_EVAL_FAMILY[self.name]


def _accepted_syntax() -> str:
    names = ", ".join(sorted(_TREC_EVAL_FAMILY))
    return f"'<measure>@<k>' with measure one of {names} and k a positive integer (e.g. {PRIMARY_METRIC!r})"


def _parse(metric: str) -> _Measure:
    match = _METRIC_SYNTAX.fullmatch(metric) if isinstance(metric, str) else None
    if match is None or match["name"] not in _TREC_EVAL_FAMILY:
        raise ValueError(f"unknown metric {metric!r}; accepted: {_accepted_syntax()}")
    return _Measure(match["name"], int(match["cutoff"]))


def to_trec_eval(metric: str) -> str:
    """trec_eval's output key for ``metric`` (``ndcg@10`` -> ``ndcg_cut_10``).

    ``mrr@k`` -> ``recip_rank``, which :func:`evaluate_run` computes on the
    run cut at k.
    """
    measure = _parse(metric)
    if measure.family in _UNCUT_FAMILIES:
        return measure.family
    return f"{measure.family}_{measure.cutoff}"


def metric_cutoff(metric: str) -> int:
    """The rank cutoff of a metric (``recall@100`` -> 100): a run must hold at least that many documents."""
    return _parse(metric).cutoff


class QrelsEvaluator:
    """One set of judgments bound to pytrec_eval once, scoring any number of runs (the shape of
    ir_measures' ``Evaluator``): one per matrix cell, shared by every model."""

    def __init__(self, qrels: Mapping[str, Mapping[str, int]], metrics: Sequence[str] = DEFAULT_METRICS,
                 *, relevance_level: int = 1) -> None:
        if isinstance(metrics, str):
            raise TypeError(f"metrics must be a sequence of metric names, got the string {metrics!r}")
        self._measures = {metric: _parse(metric) for metric in metrics}
        self._judged = {query_id: {doc_id: int(label) for doc_id, label in docs.items()} for query_id, docs in qrels.items()}
        self._query_ids = sorted(self._judged)
        # trec_eval parameterised measures, e.g. "P.1,3,5,10"; mrr is recip_rank on a run cut per cutoff.
        cutoffs: dict[str, set[int]] = defaultdict(set)
        for measure in self._measures.values():
            if measure.family not in _UNCUT_FAMILIES:
                cutoffs[measure.family].add(measure.cutoff)
        requested = {f"{family}.{','.join(map(str, sorted(ks)))}" for family, ks in cutoffs.items()}
        self._cut_evaluator = (pytrec_eval.RelevanceEvaluator(self._judged, requested, relevance_level=relevance_level)
                               if requested else None)
        self._mrr_metrics = [metric for metric, measure in self._measures.items() if measure.name == "mrr"]
        self._mrr_evaluator = (pytrec_eval.RelevanceEvaluator(self._judged, {"recip_rank"}, relevance_level=relevance_level)
                               if self._mrr_metrics else None)

    def __len__(self) -> int:
        return len(self._judged)

    def evaluate(self, run: Run) -> list[QueryMetric]:
        """One row per (qrels query, metric), queries in id order, metrics in the given order."""
        judged_run = {query_id: dict(docs) for query_id, docs in run.items() if query_id in self._judged and docs}
        values: dict[str, dict[str, float]] = defaultdict(dict)  # query id -> metric -> value
        if self._cut_evaluator is not None and judged_run:
            for query_id, results in self._cut_evaluator.evaluate(judged_run).items():
                for metric, measure in self._measures.items():
                    if measure.family not in _UNCUT_FAMILIES:
                        values[query_id][metric] = results[to_trec_eval(metric)]
        if self._mrr_evaluator is not None and judged_run:
            for metric in self._mrr_metrics:
                cut = {query_id: dict(ranked(docs)[: self._measures[metric].cutoff]) for query_id, docs in judged_run.items()}
                for query_id, results in self._mrr_evaluator.evaluate(cut).items():
                    values[query_id][metric] = results["recip_rank"]
        return [
            QueryMetric(query_id=query_id, metric=metric, value=float(values.get(query_id, {}).get(metric, 0.0)))
            for query_id in self._query_ids
            for metric in self._measures
        ]


def evaluate_run(
    qrels: Mapping[str, Mapping[str, int]],
    run: Run,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    relevance_level: int = 1,
) -> list[QueryMetric]:
    """Score one run: :class:`QrelsEvaluator` for a single use."""
    return QrelsEvaluator(qrels, metrics, relevance_level=relevance_level).evaluate(run)
