"""BM25 with bm25s: one index per (subset, document language), cached on disk, searched directly.

BM25 does not go through token embeddings and MaxSim: :class:`BM25Retriever` builds (or
loads) the index of a corpus and ranks queries itself, returning the ``Run`` shape of
``nanobeir_ext.retrieval`` (query id -> {doc id: score}).

Analysis
    :mod:`models.text_analysis`, the document language's analyzer for the documents and
    for every query searched against them, whatever the query's language.
Scoring
    bm25s (``method``, ``k1``, ``b``, ``delta`` as configured; the defaults are bm25s's own:
    Lucene's variant, ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` and term weight
    ``tf / (tf + k1 * (1 - b + b * dl / avgdl))``), float32. A term repeated in a query
    counts once per occurrence, as in Lucene. The vocabulary is numbered in sorted term
    order, so an index's files do not depend on hash seeds or corpus order of first use.
Retrieval
    Only documents that share at least one term with the query are retrieved, so a query
    may get fewer than ``k`` documents (none when it shares no term: the evaluation scores
    such a query 0). Among them, the top ``k`` by score, equal scores ordered by document id
    descending: the harness's tie rule (trec_eval's order; see nanobeir_ext/retrieval/maxsim.py).
Cache
    ``<cache_dir>/<subset>/<language>/<key>/``: bm25s's files plus ``manifest.json`` (document
    ids, identity). ``key`` hashes the identity (bm25s version, settings, analyzer) and the
    corpus (ids and texts), so changed data or settings build a new index. The folder is
    written under a temporary name and renamed into place; the manifest is written last,
    so a folder without it is never read. An index that fails to load (damaged files) is
    logged, moved aside and rebuilt.

:class:`BM25Retriever` implements :class:`nanobeir_ext.protocol.Ranker`; the evaluation
pipeline keeps its indexes under ``<runtime.cache_dir>/indexes``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, Sequence

import bm25s
import numpy as np

from nanobeir_ext.atomic import discard_folder, write_json
from nanobeir_ext.protocol import ModelLabel
from models.text_analysis import ANALYZED_LANGUAGES, Analyzer, analyzer_for

log = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s logs every index build at DEBUG

Run = dict[str, dict[str, float]]  # query id -> doc id -> score, as nanobeir_ext.retrieval returns
METHODS: tuple[str, ...] = ("robertson", "atire", "bm25l", "bm25+", "lucene")
MANIFEST = "manifest.json"
NO_TERM = "\x00"  # the vocabulary of a corpus without terms (analysis yields \w+ runs only)
# Bump when a change here changes an index or its scores, so cached indexes are rebuilt.
INDEX_VERSION = 1


@dataclass(frozen=True)
class BM25Settings:
    """bm25s's scoring parameters (its defaults)."""

    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"
    delta: float = 0.5  # only BM25L and BM25+ use it

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown BM25 method {self.method!r}; valid choices: {list(METHODS)}")
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={self.k1}, b={self.b}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def corpus_hash(doc_ids: Sequence[str], texts: Sequence[str]) -> str:
    payload = json.dumps([list(doc_ids), list(texts)], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _check_corpus(ids: Sequence[str], texts: Sequence[str], what: str) -> None:
    if len(ids) != len(texts):
        raise ValueError(f"{len(ids)} {what} ids but {len(texts)} texts")
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate {what} ids")
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"{what} texts must be strings, got {type(text).__name__}")


class BM25Index:
    """A bm25s index of one corpus, its document ids and the analyzer that made its terms."""

    def __init__(self, model: bm25s.BM25, doc_ids: Sequence[str], analyzer: Analyzer, settings: BM25Settings) -> None:
        self.model = model
        self.doc_ids = tuple(doc_ids)
        self.analyzer = analyzer
        self.settings = settings
        self.vocabulary: dict[str, int] = model.vocab_dict
        # Rank of each document in descending id order: ties are broken on it.
        order = sorted(range(len(self.doc_ids)), key=lambda index: self.doc_ids[index], reverse=True)
        self._tie_rank = np.empty(len(self.doc_ids), dtype=np.int64)
        self._tie_rank[order] = np.arange(len(self.doc_ids))

    @classmethod
    def build(cls, doc_ids: Sequence[str], texts: Sequence[str], analyzer: Analyzer, settings: BM25Settings) -> BM25Index:
        _check_corpus(doc_ids, texts, "document")
        if not doc_ids:
            raise ValueError("cannot index an empty corpus")
        terms = analyzer.analyze_all(texts)
        vocabulary = {term: index for index, term in enumerate(sorted({t for doc in terms for t in doc}))}
        ids = [[vocabulary[t] for t in doc] for doc in terms]
        model = bm25s.BM25(k1=settings.k1, b=settings.b, delta=settings.delta, method=settings.method)
        # A corpus without a single term (whitespace or punctuation only) still gets an index, which
        # retrieves nothing: bm25s needs one vocabulary entry, and this one no analyzer produces.
        with np.errstate(divide="ignore", invalid="ignore"):  # zero mean document length
            model.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocabulary or {NO_TERM: 0}),
                        show_progress=False)
        return cls(model, doc_ids, analyzer, settings)

    def scores(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(indices of the documents sharing a term with ``text``, their scores)."""
        term_ids = [self.vocabulary[t] for t in self.analyzer.analyze(text) if t in self.vocabulary]
        if not term_ids:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        indptr, indices = self.model.scores["indptr"], self.model.scores["indices"]
        matched = np.unique(np.concatenate([indices[indptr[t] : indptr[t + 1]] for t in term_ids])).astype(np.int64)
        return matched, self.model.get_scores_from_ids(term_ids)[matched]

    def search(self, query_ids: Sequence[str], query_texts: Sequence[str], k: int) -> Run:
        """Top ``k`` documents per query (see the module docstring for the rules)."""
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        _check_corpus(query_ids, query_texts, "query")
        run: Run = {}
        for query_id, text in zip(query_ids, query_texts):
            matched, scores = self.scores(text)
            # Primary key score descending, then document id descending.
            order = np.lexsort((self._tie_rank[matched], -scores))[:k]
            run[query_id] = {self.doc_ids[matched[i]]: float(scores[i]) for i in order}
        return run

    # -- on disk ------------------------------------------------------------------------------
    def save(self, folder: Path, identity: dict[str, Any]) -> Path:
        """Write the index into ``folder`` (which must not exist) in one rename."""
        folder = Path(folder)
        if folder.exists():
            raise FileExistsError(f"{folder} already exists")
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            self.model.save(str(staging), show_progress=False)
            write_json(staging / MANIFEST, {"doc_ids": list(self.doc_ids), "identity": identity})
            try:
                os.rename(staging, folder)
            except OSError as error:
                if (folder / MANIFEST).is_file():  # another process renamed the same index in first
                    raise FileExistsError(f"{folder} already exists") from error
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return folder

    @classmethod
    def load(cls, folder: Path, analyzer: Analyzer, settings: BM25Settings, identity: dict[str, Any]) -> BM25Index:
        folder = Path(folder)
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("identity") != identity:
            raise ValueError(f"{folder}: the index was built with a different identity than the one requested")
        model = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)
        if len(manifest["doc_ids"]) != int(model.scores["num_docs"]):
            raise ValueError(f"{folder}: {len(manifest['doc_ids'])} document ids for {model.scores['num_docs']} indexed documents")
        return cls(model, manifest["doc_ids"], analyzer, settings)


class BM25Retriever:
    """BM25 for every language of the matrix: builds or loads the index of a (subset, language)."""

    def __init__(self, settings: BM25Settings = BM25Settings(), *, name: str = "BM25") -> None:
        self.settings = settings
        self.info = ModelLabel(
            name=name,
            source="bm25s",
            revision=None,
            weights="lexical",
            dtype="float32",
            device="cpu",
            parameters=None,
            settings={**settings.to_dict(), "bm25s": version("bm25s"),
                      "analysis": {lang: analyzer_for(lang).describe() for lang in ANALYZED_LANGUAGES}},
            kind="bm25",
        )

    def cache_identity(self) -> dict[str, Any]:
        """What changes any score (language-independent part; :meth:`index_identity` adds the language)."""
        return {"kind": "bm25", "bm25s": version("bm25s"), "index_version": INDEX_VERSION, "settings": self.settings.to_dict()}

    def index_identity(self, language: str) -> dict[str, Any]:
        return {**self.cache_identity(), "analyzer": analyzer_for(language).identity()}

    def index_key(self, language: str, doc_ids: Sequence[str], texts: Sequence[str]) -> str:
        payload = json.dumps({"identity": self.index_identity(language), "corpus": corpus_hash(doc_ids, texts)}, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]

    def build_index(self, language: str, doc_ids: Sequence[str], texts: Sequence[str]) -> BM25Index:
        return BM25Index.build(doc_ids, texts, analyzer_for(language), self.settings)

    def index_folder(self, cache_dir: Path, subset: str, language: str, doc_ids: Sequence[str], texts: Sequence[str]) -> Path:
        return Path(cache_dir) / subset / language / self.index_key(language, doc_ids, texts)

    def is_indexed(self, cache_dir: Path, subset: str, language: str, doc_ids: Sequence[str], texts: Sequence[str]) -> bool:
        """Whether the index of this corpus is cached (a finished save: its manifest is written last)."""
        return (self.index_folder(cache_dir, subset, language, doc_ids, texts) / MANIFEST).is_file()

    def index(self, cache_dir: Path, subset: str, language: str, doc_ids: Sequence[str], texts: Sequence[str]) -> BM25Index:
        """The index of (``subset``, ``language``): loaded from ``cache_dir`` when there, else built and saved."""
        folder = self.index_folder(cache_dir, subset, language, doc_ids, texts)
        identity = self.index_identity(language)
        analyzer = analyzer_for(language)
        if (folder / MANIFEST).is_file():
            try:
                return BM25Index.load(folder, analyzer, self.settings, identity)
            except (OSError, ValueError, KeyError) as error:  # damaged files: rebuild rather than fail the run
                log.warning("BM25 index %s does not load (%s: %s): rebuilding it", folder, type(error).__name__, error)
                discard_folder(folder)
        index = BM25Index.build(doc_ids, texts, analyzer, self.settings)
        try:
            index.save(folder, identity)
        except FileExistsError:  # another process saved the same index first
            log.info("%s: index saved concurrently; using the one built here", folder)
        return index


