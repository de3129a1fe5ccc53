"""Validation of raw tables: ids, texts and judgments, with errors that name the subset, the
language, the file and what to do.

Ids: strings; integer ids are read as strings (one log line per table, as MTEB and
sentence-transformers cast them); empty ids and ids holding whitespace are an error before
anything is encoded (TREC run files separate their fields by whitespace). Texts: which count as
empty and whether they are encoded is the rule of ``DataRules.empty_texts`` (``records.py``).
Judgments naming a query or document absent from its table are counted and reported, and an
error under ``DataRules.strict``; what such a judgment does to the metrics is the cell's
business (``load.py``). Everything else that is wrong (missing columns, duplicate ids, texts
or scores of the wrong type, conflicting judgments) is a ``BenchmarkError``.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Sequence

from dataclasses import dataclass

from nanobeir_ext.data.records import BenchmarkError, DataRules, Qrels, RawTable, TextCollection

logger = logging.getLogger(__name__)

_SHOW_IDS = 5  # how many offending ids an error message quotes


def _require_columns(table: RawTable, required: Sequence[str], where: str) -> None:
    missing = [name for name in required if name not in table.columns]
    if missing:
        raise BenchmarkError(f"{where}: {table.origin} lacks columns {missing} (has {sorted(table.columns)})")


def _string_ids(table: RawTable, column: str, where: str) -> tuple[str, ...]:
    values = table.columns[column]
    integers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    bad = [v for v in values if not isinstance(v, str) and v not in integers]
    if bad:
        raise BenchmarkError(
            f"{where}: column {column!r} of {table.origin} must hold strings; {len(bad)} of {len(values)} "
            f"values are not (first: {bad[:_SHOW_IDS]!r}, types {sorted({type(v).__name__ for v in bad})}); "
            "fix the ids in that file"
        )
    if integers:
        logger.info("%s: %d integer ids in column %r of %s read as strings", where, len(integers), column, table.origin)
        values = tuple(str(v) if not isinstance(v, str) else v for v in values)
    malformed = [v for v in values if not v or any(c.isspace() for c in v)]
    if malformed:
        raise BenchmarkError(
            f"{where}: column {column!r} of {table.origin} holds {len(malformed)} empty ids or ids with whitespace "
            f"(first: {malformed[:_SHOW_IDS]!r}); TREC run files separate fields by whitespace: fix the ids in that file"
        )
    return values


def _duplicates(values: Sequence[str]) -> list[str]:
    return [value for value, count in Counter(values).items() if count > 1]


@dataclass(frozen=True)
class TextTable:
    """A validated id/text table: what is encoded under the rule, every id, and the empty ones."""

    collection: TextCollection  # the texts encoded, in table order
    declared: frozenset[str]  # every id of the table
    empty: frozenset[str]  # ids whose text is empty under the rule (encoded anyway under mteb)
    ids: tuple[str, ...]  # every id, in table order


def text_collection(table: RawTable, where: str, rules: DataRules = DataRules()) -> TextTable:
    """Validated ids and texts; which texts are encoded follows ``rules.empty_texts``."""
    _require_columns(table, ("_id", "text"), where)
    ids = _string_ids(table, "_id", where)
    duplicated = _duplicates(ids)
    if duplicated:
        raise BenchmarkError(f"{where}: {len(duplicated)} duplicate ids in {table.origin} (first: {duplicated[:_SHOW_IDS]})")
    texts = table.columns["text"]
    not_text = [i for i, t in zip(ids, texts) if t is not None and not isinstance(t, str)]
    if not_text:
        raise BenchmarkError(f"{where}: {len(not_text)} texts in {table.origin} are not strings (ids {not_text[:_SHOW_IDS]})")
    empty = frozenset(i for i, t in zip(ids, texts) if rules.is_empty(t))
    kept = [(i, t or "") for i, t in zip(ids, texts) if rules.encodes_empty or i not in empty]
    collection = TextCollection(
        ids=tuple(i for i, _ in kept), texts=tuple(t for _, t in kept), dropped_empty=len(ids) - len(kept)
    )
    return TextTable(collection=collection, declared=frozenset(ids), empty=empty, ids=tuple(ids))


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
        f"(first: {list(unknown[:_SHOW_IDS])}; the {role} table has {known} ids); benchmark.strict=true makes this "
        "an error: fix the judgments or set benchmark.strict=false to count and ignore them"
    )


def report_unknown(where: str, origin: str, unknown: Sequence[str], role: str, known: int, judgments: int,
                   rules: DataRules) -> None:
    """Judgments naming ids absent from their table: an error under ``strict``, else one warning."""
    if not unknown:
        return
    if rules.strict:
        raise unknown_ids_error(where, origin, unknown, role, known)
    logger.warning("%s: %d judgments in %s name %d %s ids absent from the %s table (first: %s); counted and "
                   "ignored (benchmark.strict=true makes this an error)", where, judgments, origin, len(unknown),
                   role, role, list(unknown[:_SHOW_IDS]))


def judgments(table: RawTable, where: str, query_ids: frozenset[str], doc_ids: frozenset[str],
              rules: DataRules = DataRules()) -> Qrels:
    """Validated qrels as query id -> doc id -> score (score 1 where the column is absent).

    Judgments naming unknown ids stay in (the cell decides what they count for) after a warning,
    or are an error under ``rules.strict``."""
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
        report_unknown(where, table.origin, unknown, role, len(known), sum(v not in known for v in values), rules)
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
