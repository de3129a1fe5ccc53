"""Public entry points: a subset in several languages, each table read and validated once,
with the monolingual and cross-lingual views derived from it under the data rules
(``records.DataRules``: which empty texts are encoded, which judgments count)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

from nanobeir_ext.data import validate
from nanobeir_ext.data.hub import dataset_revision
from nanobeir_ext.data.layouts import Layout, get_layout
from nanobeir_ext.data.records import (BenchmarkError, BenchmarkSource, CellCounts, DataRules, Qrels, SubsetData,
                                       TextCollection)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LanguageTables:
    """One subset in one language, validated: its corpus and queries (the texts encoded under the
    rule, every id, the empty ones) and its judgments (validated, nothing dropped yet)."""

    corpus: TextCollection  # the documents encoded
    queries: TextCollection  # the queries encoded, judged or not
    doc_ids: frozenset[str]  # every document id of the table
    empty_doc_ids: frozenset[str]
    query_ids: tuple[str, ...]  # every query id of the table, in table order
    empty_query_ids: frozenset[str]
    qrels: Qrels  # every judgment of the table (unknown ids included unless strict)
    origin: str  # the qrels table, for error messages


@dataclass(frozen=True)
class SubsetLanguages:
    """One subset in several languages, each validated once; every (document, query language)
    view is derived from them without reading or validating anything again."""

    subset: str
    languages: dict[str, LanguageTables]
    source: BenchmarkSource
    revision: str | None  # resolved dataset commit (hub); None for a local snapshot
    rules: DataRules = DataRules()

    def cell_view(self, doc_language: str, query_language: str) -> tuple[Qrels, CellCounts]:
        """The document language's judgments of the query language's queries, under the rules, in
        query order, with what the rules did. A query is evaluated when it has a relevant (score > 0)
        judgment that counts and a text that is encoded."""
        docs, queries = self.languages[doc_language], self.languages[query_language]
        rules = self.rules
        encoded_docs = set(docs.corpus.ids)
        known_queries = set(queries.query_ids)
        unknown = [q for q in docs.qrels if q not in known_queries]
        if doc_language != query_language:  # the diagonal was checked with the judgments themselves
            validate.report_unknown(f"{self.subset} (documents {doc_language}, queries {query_language})", docs.origin,
                                    unknown, "query", len(known_queries), sum(len(docs.qrels[q]) for q in unknown), rules)
        qrels: Qrels = {}
        on_empty = on_absent = only_empty = empty_queries = 0
        for query_id in queries.query_ids:
            judged = docs.qrels.get(query_id, {})
            relevant = [doc for doc, score in judged.items() if score > 0]
            if not relevant:
                continue
            if query_id in queries.empty_query_ids:
                empty_queries += 1
                if not rules.encodes_empty:
                    continue
            on_empty += sum(doc in docs.empty_doc_ids for doc in relevant)
            on_absent += sum(doc not in docs.doc_ids for doc in relevant)
            if not any(doc in encoded_docs for doc in relevant):
                only_empty += 1
                if not rules.keeps_judgments_on_missing:
                    continue
            qrels[query_id] = (dict(judged) if rules.keeps_judgments_on_missing
                               else {doc: score for doc, score in judged.items() if doc in encoded_docs})
        counts = CellCounts(
            rule=rules.empty_texts, evaluated_queries=len(qrels),
            judgments=sum(score > 0 for judged in qrels.values() for score in judged.values()),
            judgments_on_empty_documents=on_empty, judgments_on_absent_documents=on_absent,
            queries_only_empty_relevant=only_empty, empty_queries=empty_queries,
            judgments_of_unknown_queries=sum(len(docs.qrels[q]) for q in unknown))
        return qrels, counts

    def cell_qrels(self, doc_language: str, query_language: str) -> Qrels:
        return self.cell_view(doc_language, query_language)[0]

    def cell(self, doc_language: str, query_language: str | None = None) -> SubsetData:
        """The corpus in ``doc_language``, the judged queries in ``query_language`` (default: the same)."""
        query_language = query_language or doc_language
        qrels, counts = self.cell_view(doc_language, query_language)
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
            counts=counts,
        )

    def losses(self) -> list[str]:
        """Languages of this subset left with no documents, queries or relevant judgments: each one
        empties whole cells, so it is said loudly (log and the top of the report)."""
        found = []
        for language, tables in self.languages.items():
            lost = [what for what, n in (("documents", len(tables.corpus)), ("queries", len(tables.queries)),
                                         ("relevant judgments", sum(s > 0 for j in tables.qrels.values() for s in j.values())))
                    if n == 0]
            if lost:
                found.append(f"{self.subset} {language}: no {' and no '.join(lost)} to evaluate "
                             f"(rule {self.rules.empty_texts}); its cells are empty or score 0")
        return found


def _check_choice(source: BenchmarkSource, layout: Layout, subset: str, languages: Sequence[str]) -> None:
    subsets, valid_languages = layout.choices(source)
    where = source.describe()
    if subset not in subsets:
        hint = "" if subsets else " (a hub source lists the subsets it offers: benchmark.available_subsets)"
        raise BenchmarkError(f"unknown subset {subset!r} in {where} (layout {layout.name}); valid subsets: {list(subsets)}{hint}")
    unknown = [lang for lang in dict.fromkeys(languages) if lang not in valid_languages]
    if unknown:
        raise BenchmarkError(f"unknown language {unknown} in {where} (layout {layout.name}); valid languages: {list(valid_languages)}")


def _language_tables(source: BenchmarkSource, layout: Layout, subset: str, language: str, rules: DataRules) -> LanguageTables:
    try:
        corpus_table, queries_table, qrels_table = layout.read(source, subset, language, language)
    except BenchmarkError as error:  # a file error names the file; say which subset and language wanted it
        raise BenchmarkError(f"{subset} ({language}): {error}") from error
    corpus = validate.text_collection(corpus_table, f"{subset} (documents {language})", rules)
    queries = validate.text_collection(queries_table, f"{subset} (queries {language})", rules)
    qrels = validate.judgments(qrels_table, f"{subset} (judgments {language})", queries.declared, corpus.declared, rules)
    return LanguageTables(corpus=corpus.collection, queries=queries.collection, doc_ids=corpus.declared,
                          empty_doc_ids=corpus.empty, query_ids=queries.ids, empty_query_ids=queries.empty,
                          qrels=qrels, origin=qrels_table.origin)


def load_languages(source: BenchmarkSource, subset: str, languages: Sequence[str],
                   rules: DataRules = DataRules()) -> SubsetLanguages:
    """Read and validate ``subset`` in each of ``languages`` once (corpus, queries, judgments)."""
    layout = get_layout(source.layout)
    languages = tuple(dict.fromkeys(languages))
    _check_choice(source, layout, subset, languages)
    tables = {language: _language_tables(source, layout, subset, language, rules) for language in languages}
    loaded = SubsetLanguages(subset=subset, languages=tables, source=source, revision=dataset_revision(source),
                             rules=rules)
    for loss in loaded.losses():
        logger.warning("DATA LOSS: %s", loss)
    return loaded


def load_subset(source: BenchmarkSource, subset: str, language: str, query_language: str | None = None,
                rules: DataRules = DataRules()) -> SubsetData:
    """Load one subset with its corpus in ``language`` and queries in ``query_language``
    (default: the same language; a different one gives a cross-lingual matrix cell)."""
    query_language = query_language or language
    return load_languages(source, subset, (language, query_language), rules).cell(language, query_language)
