"""The records of the benchmark loader: where data lives, raw tables, validated collections and subsets, errors."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, get_args


class BenchmarkError(ValueError):
    """The requested benchmark data is unknown or invalid."""


class BenchmarkUnavailableError(ConnectionError):
    """The dataset is on the hub, the hub cannot be reached, and nothing is cached."""


EmptyTextRule = Literal["pylate", "mteb", "drop_judgments"]
EMPTY_TEXT_RULES: tuple[str, ...] = get_args(EmptyTextRule)


@dataclass(frozen=True)
class DataRules:
    """How the benchmark is counted (``benchmark.empty_texts``, ``benchmark.strict``).

    ``empty_texts``:
    - ``pylate``: sentence-transformers 5.3's NanoBEIREvaluator (and PyLate's evaluator on top of
      it). A text is empty when it has length 0 (``len(text) > 0`` keeps it: whitespace-only
      texts are encoded). Empty texts are not encoded; every judgment is kept, so a relevant
      document that is empty (or absent from the corpus) counts in IDCG and recall and can
      never be retrieved, and a query whose only relevant documents are empty is evaluated and
      scores 0. Empty queries are not evaluated.
    - ``mteb``: every text is encoded, empty ones included; every judgment is kept.
    - ``drop_judgments``: empty or whitespace-only texts are not encoded and judgments on them
      (or on absent documents) are dropped; a query left without a relevant document is not
      evaluated.
    ``strict``: judgments naming a document or query absent from its table are an error
    instead of being counted and reported.
    """

    empty_texts: EmptyTextRule = "drop_judgments"
    strict: bool = False

    def __post_init__(self) -> None:
        if self.empty_texts not in EMPTY_TEXT_RULES:
            raise BenchmarkError(f"benchmark.empty_texts must be one of {list(EMPTY_TEXT_RULES)}, "
                                 f"got {self.empty_texts!r}")

    def is_empty(self, text: str | None) -> bool:
        """Whether ``text`` counts as empty under this rule (``mteb`` counts like ``drop_judgments``)."""
        if text is None:
            return True
        return len(text) == 0 if self.empty_texts == "pylate" else not text.strip()

    @property
    def encodes_empty(self) -> bool:
        return self.empty_texts == "mteb"

    @property
    def keeps_judgments_on_missing(self) -> bool:
        """Judgments on empty or absent documents stay in the qrels (IDCG, recall)."""
        return self.empty_texts != "drop_judgments"


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
    """The texts that are encoded, in table order."""

    ids: tuple[str, ...]
    texts: tuple[str, ...]
    dropped_empty: int  # empty texts left out (by the rule of DataRules.empty_texts)

    def __len__(self) -> int:
        return len(self.ids)


Qrels = dict[str, dict[str, int]]  # query id -> doc id -> relevance


@dataclass(frozen=True)
class CellCounts:
    """What the data rules did in one (subset, document language, query language) cell.

    Judgment counts are of relevant (score > 0) judgments of the query language's non-empty
    queries (all queries under ``mteb``)."""

    rule: str
    evaluated_queries: int
    judgments: int  # relevant judgments evaluated (in the qrels handed to the metrics)
    judgments_on_empty_documents: int  # pylate: kept, never retrieved; mteb: encoded; drop_judgments: dropped
    judgments_on_absent_documents: int  # documents missing from the corpus table: like empty ones
    queries_only_empty_relevant: int  # every relevant document empty or absent: pylate scores 0, drop_judgments skips
    empty_queries: int  # judged queries with an empty text: pylate/drop_judgments skip, mteb encodes
    judgments_of_unknown_queries: int  # judgments naming a query the query table lacks: ignored

    def touched(self) -> bool:
        return any((self.judgments_on_empty_documents, self.judgments_on_absent_documents,
                    self.queries_only_empty_relevant, self.empty_queries, self.judgments_of_unknown_queries))


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
    queries_without_relevant: int  # encoded queries not evaluated for lack of a relevant document
    query_language: str | None = None  # None: same as language (filled in on construction)
    source: BenchmarkSource | None = None
    revision: str | None = None  # resolved dataset commit (hub); None for a local snapshot
    counts: CellCounts | None = None  # what the data rules did here

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
            **({} if self.counts is None else {"empty_texts": self.counts.rule,
                                                 **{k: v for k, v in vars(self.counts).items() if k != "rule"}}),
        }
