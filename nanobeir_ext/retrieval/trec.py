"""TREC run files and the one ranking rule every consumer shares (no torch here: the metric layer imports it).

A run is ``{query_id: {doc_id: score}}``. Rank order is score descending, then document id
descending: trec_eval's own rule (it re-sorts every run that way and ignores the rank column).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from nanobeir_ext.atomic import atomic_path

Run = dict[str, dict[str, float]]  # query id -> doc id -> score (TREC run semantics)


def ranked(run_for_query: dict[str, float]) -> list[tuple[str, float]]:
    """One query's documents in rank order: score desc, then doc id desc."""
    return sorted(run_for_query.items(), key=lambda item: (item[1], item[0]), reverse=True)


def write_trec_run(run: Run, path: Path, tag: str) -> None:
    """Write ``qid Q0 docid rank score tag`` lines, ranks from 1, atomically.

    Queries in id order; documents by score desc then doc id desc (trec_eval's
    order). Scores are written with ``repr`` so they read back exactly.
    """
    if not tag or any(c.isspace() for c in tag):
        raise ValueError(f"run tag must be a non-empty string without whitespace, got {tag!r}")
    lines = []
    for query_id in sorted(run):
        _check_trec_field(query_id, "query id")
        documents = run[query_id]
        for doc_id in documents:  # once per id, not per formatted line: this runs for every cell
            _check_trec_field(doc_id, "doc id")
        for rank, (doc_id, score) in enumerate(ranked(documents), start=1):
            if not math.isfinite(score):
                raise ValueError(f"score of query {query_id!r}, doc {doc_id!r} is not finite: {score}")
            lines.append(f"{query_id} Q0 {doc_id} {rank} {float(score)!r} {tag}\n")
    with atomic_path(Path(path)) as temporary:
        with open(temporary, "w", encoding="utf-8") as file:
            file.writelines(lines)


def read_trec_run(path: Path) -> Run:
    """Read a TREC run file (six whitespace-separated fields per line)."""
    run: Run = {}
    with open(path, encoding="utf-8") as file:
        for line_number, line in enumerate(file, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 6:
                raise ValueError(f"{path}:{line_number}: expected 6 fields 'qid Q0 docid rank score tag', got {len(fields)}")
            query_id, _, doc_id, _, score, _ = fields
            documents = run.setdefault(query_id, {})
            if doc_id in documents:
                raise ValueError(f"{path}:{line_number}: document {doc_id!r} appears twice for query {query_id!r}")
            documents[doc_id] = float(score)
    return run


_WHITESPACE = re.compile(r"\s")


def _check_trec_field(value: str, name: str) -> None:
    if not value or _WHITESPACE.search(value):
        raise ValueError(f"{name} {value!r} cannot be written to a TREC run: it is empty or contains whitespace")
