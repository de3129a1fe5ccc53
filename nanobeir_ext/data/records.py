"""The records of the benchmark loader: where data lives, raw tables, validated collections and subsets, errors."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


class BenchmarkError(ValueError):
    """The requested benchmark data is unknown or invalid."""


class BenchmarkUnavailableError(ConnectionError):
    """The dataset is on the hub, the hub cannot be reached, and nothing is cached."""


@dataclass(frozen=True)
class BenchmarkSource:
    """Where a benchmark lives. The dataset's identity (repo id, revision, the subsets a hub
    dataset offers) comes from the caller, i.e. from ``configs/benchmark/*.yaml``; a local
    snapshot lists its own subsets."""

    layout: str = "nanobeir-extended"  # key of layouts.LAYOUTS
    repo_id: str | None = None
    revision: str | None = None  # None: the hub's main branch
    path: str | None = None  # local snapshot folder; wins over repo_id
    cache_dir: str | None = None  # datasets cache
    subsets: tuple[str, ...] = ()  # the subsets a hub dataset offers (unused for a local snapshot)

    def describe(self) -> str:
        if self.path is not None:
            return f"local snapshot {self.path}"
        return f"{self.repo_id} (revision {self.revision or 'main'})"


@dataclass(frozen=True)
class RawTable:
    """One split as read from disk or the hub: column name -> values (untouched)."""

    origin: str  # e.g. "config NanoSciFact_en, split corpus" (for error messages)
    columns: Mapping[str, tuple[Any, ...]]


@dataclass(frozen=True)
class TextCollection:
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    dropped_empty: int  # empty or whitespace-only texts left out

    def __len__(self) -> int:
        return len(self.ids)


Qrels = dict[str, dict[str, int]]  # query id -> doc id -> relevance


@dataclass(frozen=True)
class SubsetData:
    """One subset: the corpus in ``language``, queries in ``query_language``, and qrels.

    ``query_language`` equals ``language`` unless this is a cross-lingual cell; the
    queries kept are those with at least one relevant (score > 0) document in this
    corpus, and ``qrels`` holds the judgments of exactly those queries on this corpus.
    """

    subset: str
    language: str
    corpus: TextCollection
    queries: TextCollection  # only queries with >= 1 relevant document in the corpus
    qrels: Qrels
    queries_without_relevant: int  # non-empty queries dropped for lack of a relevant document
    query_language: str | None = None  # None: same as language (filled in on construction)
    source: BenchmarkSource | None = None
    revision: str | None = None  # resolved dataset commit (hub); None for a local snapshot

    def __post_init__(self) -> None:
        if self.query_language is None:
            object.__setattr__(self, "query_language", self.language)

    def identity(self) -> dict[str, Any]:
        """What was evaluated, for environment.json: origin, revision, choices and counts."""
        source = self.source
        if source is None:
            origin: dict[str, Any] = {"layout": None}
        elif source.path is not None:
            origin = {"layout": source.layout, "path": str(Path(source.path).resolve())}
        else:
            origin = {"layout": source.layout, "repo_id": source.repo_id}
        return {
            **origin,
            "revision": self.revision,
            "subset": self.subset,
            "language": self.language,
            "query_language": self.query_language,
            "documents": len(self.corpus),
            "queries": len(self.queries),
            "qrels": sum(len(judged) for judged in self.qrels.values()),
            "dropped_empty_documents": self.corpus.dropped_empty,
            "dropped_empty_queries": self.queries.dropped_empty,
            "queries_without_relevant": self.queries_without_relevant,
        }
