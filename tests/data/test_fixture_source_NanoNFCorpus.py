"""Structure checks for the hand-written NanoNFCorpus fixture source (graded relevance)."""
from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from tests.writing_systems import SCRIPTS, records

SOURCE_PATH = (
    Path(__file__).resolve().parents[2] / "nanobeir_ext" / "data" / "fixture" / "source" / "NanoNFCorpus.json"
)
LANGUAGES = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "pt")
N_DOCS, N_QUERIES = 24, 8
# Script checks: a text that silently fell back to English (or got pasted into the
# wrong language) would fail these.
SCRIPT_OF = SCRIPTS


@pytest.fixture(scope="module")
def source() -> dict:
    return json.loads(SOURCE_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def relevant_by_query(source: dict) -> dict[str, dict[str, int]]:
    by_query: dict[str, dict[str, int]] = defaultdict(dict)
    for qrel in source["qrels"]:
        by_query[qrel["query-id"]][qrel["corpus-id"]] = qrel["score"]
    return dict(by_query)


_records = records


def test_header(source: dict) -> None:
    assert source["subset"] == "NanoNFCorpus"
    assert source["relevance"] == "graded"
    assert "offline fixture" in source["description"]


def test_counts_and_ids(source: dict) -> None:
    assert [r["_id"] for r in source["corpus"]] == [f"nf-d{i:02d}" for i in range(1, N_DOCS + 1)]
    assert [r["_id"] for r in source["queries"]] == [f"nf-q{i:02d}" for i in range(1, N_QUERIES + 1)]


def test_every_text_has_all_nine_languages_in_order_and_non_empty(source: dict) -> None:
    for record in _records(source):
        assert tuple(record["text"]) == LANGUAGES, record["_id"]
        for lang, text in record["text"].items():
            assert isinstance(text, str) and text.strip(), (record["_id"], lang)
            assert text == text.strip(), (record["_id"], lang)


@pytest.mark.parametrize("lang", sorted(SCRIPT_OF))
def test_non_latin_languages_are_in_their_script(source: dict, lang: str) -> None:
    for record in _records(source):
        assert SCRIPT_OF[lang].search(record["text"][lang]), (record["_id"], lang)


def test_translations_differ_from_english(source: dict) -> None:
    for record in _records(source):
        english = record["text"]["en"]
        for lang in LANGUAGES:
            if lang != "en":
                assert record["text"][lang] != english, (record["_id"], lang)


def test_english_lengths(source: dict) -> None:
    doc_words = {r["_id"]: len(r["text"]["en"].split()) for r in source["corpus"]}
    long_docs = [d for d, n in doc_words.items() if n >= 90]
    assert len(long_docs) == 3, long_docs
    assert all(90 <= doc_words[d] <= 140 for d in long_docs)
    assert all(15 <= n <= 60 for d, n in doc_words.items() if d not in long_docs)
    for query in source["queries"]:
        assert 5 <= len(query["text"]["en"].split()) <= 15, query["_id"]


def test_punctuation_and_numbers_are_exercised(source: dict) -> None:
    english = " ".join(r["text"]["en"] for r in _records(source))
    for mark in [",", "(", ")", '"', "%", "-", ":"]:
        assert mark in english, mark
    assert re.search(r"\d", english)


def test_qrels_refer_to_existing_ids_with_allowed_scores(source: dict) -> None:
    doc_ids = {r["_id"] for r in source["corpus"]}
    query_ids = {r["_id"] for r in source["queries"]}
    pairs = [(q["query-id"], q["corpus-id"]) for q in source["qrels"]]
    assert len(pairs) == len(set(pairs)), "duplicate qrel"
    for qrel in source["qrels"]:
        assert qrel["query-id"] in query_ids, qrel
        assert qrel["corpus-id"] in doc_ids, qrel
        assert qrel["score"] in (1, 2), qrel


def test_graded_relevance_design(source: dict, relevant_by_query: dict[str, dict[str, int]]) -> None:
    query_ids = [r["_id"] for r in source["queries"]]
    assert sorted(relevant_by_query) == query_ids, "every query needs a relevant document"
    for query_id in query_ids:
        assert 2 in relevant_by_query[query_id].values(), query_id
    several = [q for q in query_ids if 2 <= len(relevant_by_query[q]) <= 4]
    assert len(several) >= 3, several
    both_grades = [q for q in query_ids if set(relevant_by_query[q].values()) == {1, 2}]
    assert len(both_grades) >= 4, both_grades


def test_there_are_pure_distractors(source: dict, relevant_by_query: dict[str, dict[str, int]]) -> None:
    judged = {d for docs in relevant_by_query.values() for d in docs}
    distractors = [r["_id"] for r in source["corpus"] if r["_id"] not in judged]
    assert 5 <= len(distractors) <= 8, distractors
