"""Validation of raw tables and the drop rules, as the peers (PyLate, sentence-transformers) apply
them to the translated NanoBEIR sets: empty texts are dropped and counted, judgments on dropped
documents are removed, and queries left without a relevant document are dropped and counted.
Everything else that is wrong (missing columns, duplicate or non-string ids, judgments naming
unknown ids) is a ``BenchmarkError`` naming the subset, the language, the config/split and the count.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Sequence

from nanobeir_ext.data.records import BenchmarkError, Qrels, RawTable, TextCollection

logger = logging.getLogger(__name__)

_SHOW_IDS = 5  # how many offending ids an error message quotes


def _require_columns(table: RawTable, required: Sequence[str], where: str) -> None:
    missing = [name for name in required if name not in table.columns]
    if missing:
        raise BenchmarkError(f"{where}: {table.origin} lacks columns {missing} (has {sorted(table.columns)})")


def _string_ids(table: RawTable, column: str, where: str) -> tuple[str, ...]:
    values = table.columns[column]
    bad = [v for v in values if not isinstance(v, str)]
    if bad:
        raise BenchmarkError(
            f"{where}: column {column!r} of {table.origin} must hold strings; {len(bad)} of {len(values)} "
            f"values are not (first: {bad[:_SHOW_IDS]!r}, types {sorted({type(v).__name__ for v in bad})})"
        )
    return values


def _duplicates(values: Sequence[str]) -> list[str]:
    return [value for value, count in Counter(values).items() if count > 1]


def text_collection(table: RawTable, where: str) -> tuple[TextCollection, frozenset[str]]:
    """Validated ids and non-empty texts, plus every id the table declares (empty texts included)."""
    _require_columns(table, ("_id", "text"), where)
    ids = _string_ids(table, "_id", where)
    duplicated = _duplicates(ids)
    if duplicated:
        raise BenchmarkError(f"{where}: {len(duplicated)} duplicate ids in {table.origin} (first: {duplicated[:_SHOW_IDS]})")
    texts = table.columns["text"]
    not_text = [i for i, t in zip(ids, texts) if t is not None and not isinstance(t, str)]
    if not_text:
        raise BenchmarkError(f"{where}: {len(not_text)} texts in {table.origin} are not strings (ids {not_text[:_SHOW_IDS]})")
    kept = [(i, t) for i, t in zip(ids, texts) if t is not None and t.strip()]
    collection = TextCollection(
        ids=tuple(i for i, _ in kept), texts=tuple(t for _, t in kept), dropped_empty=len(ids) - len(kept)
    )
    return collection, frozenset(ids)


def _score(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def unknown_ids_error(where: str, origin: str, unknown: Sequence[str], role: str, known: int) -> BenchmarkError:
    return BenchmarkError(
        f"{where}: {origin} names {len(unknown)} unknown {role} ids "
        f"(first: {list(unknown[:_SHOW_IDS])}; the {role} table has {known} ids)"
    )


def judgments(table: RawTable, where: str, query_ids: frozenset[str], doc_ids: frozenset[str]) -> Qrels:
    """Validated qrels as query id -> doc id -> score (score 1 where the column is absent)."""
    _require_columns(table, ("query-id", "corpus-id"), where)
    query_column = _string_ids(table, "query-id", where)
    doc_column = _string_ids(table, "corpus-id", where)
    raw_scores = table.columns.get("score", (1,) * len(query_column))
    scores = [_score(s) for s in raw_scores]
    bad = [s for s, parsed in zip(raw_scores, scores) if parsed is None]
    if bad:
        raise BenchmarkError(f"{where}: {len(bad)} scores in {table.origin} are not integers (first: {bad[:_SHOW_IDS]!r})")
    for values, known, role in ((query_column, query_ids, "query"), (doc_column, doc_ids, "document")):
        unknown = list(dict.fromkeys(v for v in values if v not in known))
        if unknown:
            raise unknown_ids_error(where, table.origin, unknown, role, len(known))
    qrels: Qrels = {}
    conflicts: list[tuple[str, str]] = []
    repeated = 0
    for query_id, doc_id, score in zip(query_column, doc_column, scores):
        judged = qrels.setdefault(query_id, {})
        if doc_id in judged:
            repeated += 1
            if judged[doc_id] != score:
                conflicts.append((query_id, doc_id))
        judged[doc_id] = score
    if conflicts:
        raise BenchmarkError(
            f"{where}: {table.origin} judges {len(conflicts)} (query, document) pairs twice with different scores "
            f"(first: {conflicts[:_SHOW_IDS]})"
        )
    if repeated:
        logger.warning("%s: %d repeated identical judgments in %s collapsed", where, repeated, table.origin)
    return qrels


def answerable(qrels: Qrels, corpus: TextCollection) -> Qrels:
    """The judgments on documents ``corpus`` kept, of the queries left with a relevant (score > 0) one."""
    kept_docs = set(corpus.ids)
    kept: Qrels = {}
    for query_id, judged in qrels.items():
        on_corpus = {doc: score for doc, score in judged.items() if doc in kept_docs}
        if any(score > 0 for score in on_corpus.values()):
            kept[query_id] = on_corpus
    return kept


def restrict_to_queries(qrels: Qrels, queries: TextCollection) -> Qrels:
    """The judgments of the (non-empty) queries of ``queries``, in their order."""
    return {query_id: qrels[query_id] for query_id in queries.ids if query_id in qrels}
