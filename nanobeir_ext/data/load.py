"""Public entry points: a subset in several languages, each table read and validated once,
with the monolingual and cross-lingual views derived from it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from nanobeir_ext.data import validate
from nanobeir_ext.data.hub import dataset_revision
from nanobeir_ext.data.layouts import Layout, get_layout
from nanobeir_ext.data.records import BenchmarkError, BenchmarkSource, Qrels, SubsetData, TextCollection


@dataclass(frozen=True)
class LanguageTables:
    """One subset in one language, validated: its corpus, every non-empty query, and the judgments
    of the queries that have a relevant document in this corpus (documents with a text only)."""

    corpus: TextCollection
    queries: TextCollection  # every non-empty query, judged or not
    declared_query_ids: frozenset[str]  # every query id of the table, empty texts included
    judged_query_ids: frozenset[str]  # every query id the judgments name
    answerable: Qrels  # query id -> doc id -> score, for queries with a relevant document here
    origin: str  # the qrels table, for error messages


@dataclass(frozen=True)
class SubsetLanguages:
    """One subset in several languages, each validated once; every (document, query language)
    view is derived from them without reading or validating anything again."""

    subset: str
    languages: dict[str, LanguageTables]
    source: BenchmarkSource
    revision: str | None  # resolved dataset commit (hub); None for a local snapshot

    def cell_qrels(self, doc_language: str, query_language: str) -> Qrels:
        """The document language's judgments, restricted to the query language's non-empty queries
        that have a relevant (non-empty) document in the document language, in query order."""
        docs, queries = self.languages[doc_language], self.languages[query_language]
        if doc_language != query_language:
            unknown = sorted(docs.judged_query_ids - queries.declared_query_ids)
            if unknown:
                raise validate.unknown_ids_error(f"{self.subset} (documents {doc_language}, queries {query_language})",
                                                 docs.origin, unknown, "query", len(queries.declared_query_ids))
        return validate.restrict_to_queries(docs.answerable, queries.queries)

    def cell(self, doc_language: str, query_language: str | None = None) -> SubsetData:
        """The corpus in ``doc_language``, the judged queries in ``query_language`` (default: the same)."""
        query_language = query_language or doc_language
        qrels = self.cell_qrels(doc_language, query_language)
        queries = self.languages[query_language].queries
        kept = [(i, t) for i, t in zip(queries.ids, queries.texts) if i in qrels]
        return SubsetData(
            subset=self.subset,
            language=doc_language,
            corpus=self.languages[doc_language].corpus,
            queries=TextCollection(ids=tuple(i for i, _ in kept), texts=tuple(t for _, t in kept),
                                   dropped_empty=queries.dropped_empty),
            qrels=qrels,
            queries_without_relevant=len(queries) - len(kept),
            query_language=query_language,
            source=self.source,
            revision=self.revision,
        )


def _check_choice(source: BenchmarkSource, layout: Layout, subset: str, languages: Sequence[str]) -> None:
    subsets, valid_languages = layout.choices(source)
    where = source.describe()
    if subset not in subsets:
        hint = "" if subsets else " (a hub source lists the subsets it offers: benchmark.available_subsets)"
        raise BenchmarkError(f"unknown subset {subset!r} in {where} (layout {layout.name}); valid subsets: {list(subsets)}{hint}")
    unknown = [lang for lang in dict.fromkeys(languages) if lang not in valid_languages]
    if unknown:
        raise BenchmarkError(f"unknown language {unknown} in {where} (layout {layout.name}); valid languages: {list(valid_languages)}")


def _language_tables(source: BenchmarkSource, layout: Layout, subset: str, language: str) -> LanguageTables:
    corpus_table, queries_table, qrels_table = layout.read(source, subset, language, language)
    corpus, doc_ids = validate.text_collection(corpus_table, f"{subset} (documents {language})")
    queries, query_ids = validate.text_collection(queries_table, f"{subset} (queries {language})")
    qrels = validate.judgments(qrels_table, f"{subset} (judgments {language})", query_ids, doc_ids)
    return LanguageTables(corpus=corpus, queries=queries, declared_query_ids=query_ids,
                          judged_query_ids=frozenset(qrels), answerable=validate.answerable(qrels, corpus),
                          origin=qrels_table.origin)


def load_languages(source: BenchmarkSource, subset: str, languages: Sequence[str]) -> SubsetLanguages:
    """Read and validate ``subset`` in each of ``languages`` once (corpus, queries, judgments)."""
    layout = get_layout(source.layout)
    languages = tuple(dict.fromkeys(languages))
    _check_choice(source, layout, subset, languages)
    tables = {language: _language_tables(source, layout, subset, language) for language in languages}
    return SubsetLanguages(subset=subset, languages=tables, source=source, revision=dataset_revision(source))


def load_subset(source: BenchmarkSource, subset: str, language: str, query_language: str | None = None) -> SubsetData:
    """Load one subset with its corpus in ``language`` and queries in ``query_language``
    (default: the same language; a different one gives a cross-lingual matrix cell)."""
    query_language = query_language or language
    return load_languages(source, subset, (language, query_language)).cell(language, query_language)
