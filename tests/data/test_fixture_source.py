"""Structure of the hand-written fixture sources (nine parallel languages): every check applies to
every subset, with the per-subset expectations in one table."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

from nanobeir_ext.data.fixture import SOURCE_DIR, fixture_subsets
from nanobeir_ext.languages import MATRIX_LANGUAGES
from tests.writing_systems import ARABIC, HANGUL, KANA_OR_KANJI, SCRIPTS, records

N_DOCS, N_QUERIES = 24, 8
LONG_DOCS = 3  # English documents of 90-140 words: they exercise truncation
LATIN = tuple(lang for lang in MATRIX_LANGUAGES if lang not in SCRIPTS)


@dataclass(frozen=True)
class Expected:
    id_prefix: str
    relevance: str  # "binary" (score 1) or "graded" (scores 1 and 2)
    description_mentions: tuple[str, ...]
    empty: frozenset[tuple[str, str]] = frozenset()  # documented gaps (id, language): the harness must drop them


EXPECTED = {
    "NanoFiQA2018": Expected("fq", "binary", ("fq-d24", "Korean"), frozenset({("fq-d24", "ko")})),
    "NanoNFCorpus": Expected("nf", "graded", ("offline fixture",)),
    "NanoSciFact": Expected("sf", "binary", ("hand", "fixture")),
}
SCORES = {"binary": {1}, "graded": {1, 2}}


def test_every_fixture_subset_has_expectations():
    assert fixture_subsets() == sorted(EXPECTED)


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def subset(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def source(subset: str) -> dict:
    return json.loads((SOURCE_DIR / f"{subset}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def expected(subset: str) -> Expected:
    return EXPECTED[subset]


@pytest.fixture(scope="module")
def relevant_by_query(source: dict) -> dict[str, dict[str, int]]:
    by_query: dict[str, dict[str, int]] = {}
    for qrel in source["qrels"]:
        by_query.setdefault(qrel["query-id"], {})[qrel["corpus-id"]] = qrel["score"]
    return by_query


def test_header(source: dict, subset: str, expected: Expected) -> None:
    assert source["subset"] == subset
    assert source["relevance"] == expected.relevance
    for mention in expected.description_mentions:
        assert mention in source["description"], mention


def test_ids_are_complete_and_ordered(source: dict, expected: Expected) -> None:
    assert [r["_id"] for r in source["corpus"]] == [f"{expected.id_prefix}-d{i:02d}" for i in range(1, N_DOCS + 1)]
    assert [r["_id"] for r in source["queries"]] == [f"{expected.id_prefix}-q{i:02d}" for i in range(1, N_QUERIES + 1)]


def test_every_record_has_the_nine_languages_in_order(source: dict) -> None:
    for record in records(source):
        assert tuple(record["text"]) == MATRIX_LANGUAGES, record["_id"]
        assert all(isinstance(text, str) for text in record["text"].values()), record["_id"]


def test_texts_are_non_empty_and_trimmed_except_documented_gaps(source: dict, expected: Expected) -> None:
    empty = {(r["_id"], lang) for r in records(source) for lang, text in r["text"].items() if not text.strip()}
    assert empty == expected.empty
    for record in records(source):
        for lang, text in record["text"].items():
            assert text == text.strip(), (record["_id"], lang)


def test_translations_are_distinct(source: dict) -> None:
    # A copy-pasted text in another language's slot would pass the other checks.
    for record in records(source):
        texts = [text for text in record["text"].values() if text]
        assert len(set(texts)) == len(texts), record["_id"]


def test_texts_are_in_their_languages_script(source: dict, expected: Expected) -> None:
    for record in records(source):
        for lang, script in SCRIPTS.items():
            if (record["_id"], lang) not in expected.empty:
                assert script.search(record["text"][lang]), (record["_id"], lang)
        # Latin-script texts carry no stray CJK, Hangul or Arabic (a pasted wrong language).
        for lang in LATIN:
            for script in (KANA_OR_KANJI, HANGUL, ARABIC):
                assert not script.search(record["text"][lang]), (record["_id"], lang)


def test_english_lengths(source: dict) -> None:
    doc_words = [len(r["text"]["en"].split()) for r in source["corpus"]]
    long_docs = [n for n in doc_words if n >= 90]
    assert len(long_docs) == LONG_DOCS and all(n <= 140 for n in long_docs), doc_words
    assert all(15 <= n <= 60 for n in doc_words if n < 90), doc_words
    query_words = [len(r["text"]["en"].split()) for r in source["queries"]]
    assert all(5 <= n <= 15 for n in query_words), query_words


def test_punctuation_and_numbers_are_exercised(source: dict) -> None:
    english = " ".join(r["text"]["en"] for r in records(source))
    for mark in (",", "(", ")", '"', "%", "-", ":"):
        assert mark in english, mark
    assert re.search(r"\d", english)


def test_qrels_refer_to_existing_ids_with_the_subsets_scores(source: dict, expected: Expected) -> None:
    doc_ids = {r["_id"] for r in source["corpus"]}
    query_ids = {r["_id"] for r in source["queries"]}
    pairs = [(q["query-id"], q["corpus-id"]) for q in source["qrels"]]
    assert len(pairs) == len(set(pairs)), "duplicate qrel"
    for qrel in source["qrels"]:
        assert set(qrel) == {"query-id", "corpus-id", "score"}, qrel
        assert qrel["query-id"] in query_ids and qrel["corpus-id"] in doc_ids, qrel
        assert type(qrel["score"]) is int, qrel
    assert {q["score"] for q in source["qrels"]} == SCORES[expected.relevance]


def test_relevance_design(source: dict, expected: Expected, relevant_by_query: dict[str, dict[str, int]]) -> None:
    query_ids = [r["_id"] for r in source["queries"]]
    assert sorted(relevant_by_query) == query_ids, "every query needs a relevant document"
    sizes = [len(docs) for docs in relevant_by_query.values()]
    assert sum(2 <= n <= 4 for n in sizes) >= 3 and max(sizes) <= 4, sizes
    judged = {doc for docs in relevant_by_query.values() for doc in docs}
    distractors = [r["_id"] for r in source["corpus"] if r["_id"] not in judged]
    assert 4 <= len(distractors) <= 8, distractors
    if expected.relevance == "graded":
        assert all(2 in docs.values() for docs in relevant_by_query.values())
        assert sum(set(docs.values()) == {1, 2} for docs in relevant_by_query.values()) >= 4
