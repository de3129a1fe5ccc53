"""Loading once: each cell's judgments derived from the languages loaded equal the cross-lingual view
built from the cell's own three tables (the loader's semantics before it loaded once)."""
from __future__ import annotations

from nanobeir_ext.data import BenchmarkSource, load_languages
from nanobeir_ext.data.files import read_split
from nanobeir_ext.data.fixture import BENCHMARK_DIR, fixture_subsets
from nanobeir_ext.data.validate import judgments, text_collection
from nanobeir_ext.languages import MATRIX_LANGUAGES
from tests.data.test_benchmark import toy_tables, write_snapshot

FIXTURE = BenchmarkSource(path=str(BENCHMARK_DIR))


def cross_lingual_view(source: BenchmarkSource, subset: str, doc_lang: str, query_lang: str) -> tuple[dict, tuple[str, ...]]:
    """The cell from its own tables: the document language's corpus and judgments, the query
    language's non-empty queries, keeping queries with a relevant non-empty document."""
    where = f"{subset} ({doc_lang}, {query_lang})"
    corpus_table = text_collection(read_split(source, f"{subset}_{doc_lang}", "corpus"), where)
    queries_table = text_collection(read_split(source, f"{subset}_{query_lang}", "queries"), where)
    corpus, queries = corpus_table.collection, queries_table.collection
    qrels = judgments(read_split(source, f"{subset}_{doc_lang}_qrels", "qrels"), where, queries_table.declared,
                      corpus_table.declared)
    kept_docs = set(corpus.ids)
    kept: dict[str, dict[str, int]] = {}
    for query_id in queries.ids:
        judged = {doc: score for doc, score in qrels.get(query_id, {}).items() if doc in kept_docs}
        if any(score > 0 for score in judged.values()):
            kept[query_id] = judged
    return kept, tuple(q for q in queries.ids if q in kept)


def assert_cells_match(source: BenchmarkSource, subset: str, languages: tuple[str, ...]) -> int:
    """Check every cell; return how many differ from their query language's diagonal."""
    loaded = load_languages(source, subset, languages)
    diagonal = {lang: loaded.cell_qrels(lang, lang) for lang in languages}
    differing_cells = 0
    for doc_lang in languages:
        for query_lang in languages:
            expected_qrels, expected_queries = cross_lingual_view(source, subset, doc_lang, query_lang)
            qrels = loaded.cell_qrels(doc_lang, query_lang)
            assert qrels == expected_qrels, (subset, doc_lang, query_lang)
            assert list(qrels) == list(expected_qrels)  # same query order
            cell = loaded.cell(doc_lang, query_lang)
            assert cell.queries.ids == expected_queries and cell.qrels == expected_qrels
            differing_cells += qrels != diagonal[query_lang]
    return differing_cells


def test_derived_cell_qrels_equal_the_cross_lingual_view_in_every_fixture_cell():
    for subset in fixture_subsets():
        assert_cells_match(FIXTURE, subset, MATRIX_LANGUAGES)


def test_derived_cell_qrels_follow_the_document_language(tmp_path):
    # The toy snapshot's Korean corpus drops other documents than its English one, and its
    # judgments are binary: every cross-lingual cell differs from its query language's diagonal.
    toy = BenchmarkSource(path=str(write_snapshot(tmp_path / "toy", toy_tables())))
    assert assert_cells_match(toy, "NanoToy", ("en", "ko")) == 2
