"""Structure checks for the hand-written NanoFiQA2018 fixture source."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.writing_systems import ARABIC, HANGUL, KANA_OR_KANJI, records

SOURCE_PATH = (
    Path(__file__).resolve().parents[2] / "nanobeir_ext" / "data" / "fixture" / "source" / "NanoFiQA2018.json"
)
LANGUAGES = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "pt")
# The one deliberate gap, documented in the file's description: the harness must drop it.
EXPECTED_EMPTY = {("fq-d24", "ko")}



@pytest.fixture(scope="module")
def source() -> dict:
    return json.loads(SOURCE_PATH.read_text(encoding="utf-8"))


_records = records


def test_header(source: dict) -> None:
    assert source["subset"] == "NanoFiQA2018"
    assert source["relevance"] == "binary"
    assert "fq-d24" in source["description"] and "Korean" in source["description"]


def test_counts_and_ids(source: dict) -> None:
    assert [r["_id"] for r in source["corpus"]] == [f"fq-d{i:02d}" for i in range(1, 25)]
    assert [r["_id"] for r in source["queries"]] == [f"fq-q{i:02d}" for i in range(1, 9)]


def test_every_record_has_nine_languages_in_order(source: dict) -> None:
    for record in _records(source):
        assert tuple(record["text"]) == LANGUAGES, record["_id"]


def test_texts_non_empty_except_documented_gap(source: dict) -> None:
    empty = {
        (record["_id"], lang)
        for record in _records(source)
        for lang, text in record["text"].items()
        if not text.strip()
    }
    assert empty == EXPECTED_EMPTY


def test_scripts_match_languages(source: dict) -> None:
    for record in _records(source):
        text = record["text"]
        if (record["_id"], "ko") not in EXPECTED_EMPTY:
            assert HANGUL.search(text["ko"]), record["_id"]
        assert KANA_OR_KANJI.search(text["ja"]), record["_id"]
        assert ARABIC.search(text["ar"]), record["_id"]
        # Latin-script texts carry no stray CJK/Hangul/Arabic (a pasted wrong language).
        for lang in ("de", "en", "es", "fr", "it", "pt"):
            for pattern in (KANA_OR_KANJI, HANGUL, ARABIC):
                assert not pattern.search(text[lang]), (record["_id"], lang)


def test_english_lengths(source: dict) -> None:
    doc_words = [len(r["text"]["en"].split()) for r in source["corpus"]]
    assert all(15 <= n <= 140 for n in doc_words), doc_words
    assert sum(n >= 90 for n in doc_words) == 3, "three long documents exercise truncation"
    query_words = [len(r["text"]["en"].split()) for r in source["queries"]]
    assert all(5 <= n <= 15 for n in query_words), query_words


def test_qrels_reference_existing_ids_with_binary_scores(source: dict) -> None:
    doc_ids = {r["_id"] for r in source["corpus"]}
    query_ids = {r["_id"] for r in source["queries"]}
    pairs = [(q["query-id"], q["corpus-id"]) for q in source["qrels"]]
    assert len(pairs) == len(set(pairs)), "duplicate qrel"
    for qrel in source["qrels"]:
        assert qrel["query-id"] in query_ids
        assert qrel["corpus-id"] in doc_ids
        assert qrel["score"] == 1


def test_relevance_design(source: dict) -> None:
    per_query = Counter(q["query-id"] for q in source["qrels"])
    assert set(per_query) == {r["_id"] for r in source["queries"]}, "every query has a relevant doc"
    assert sum(2 <= n <= 4 for n in per_query.values()) >= 3
    relevant_docs = {q["corpus-id"] for q in source["qrels"]}
    distractors = {r["_id"] for r in source["corpus"]} - relevant_docs
    assert 4 <= len(distractors) <= 8, sorted(distractors)
