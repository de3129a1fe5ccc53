"""Structure of the hand-written NanoSciFact fixture source (nine parallel languages)."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from tests.writing_systems import ARABIC, HANGUL, records
from tests.writing_systems import KANA_OR_KANJI as KANA_OR_CJK

SOURCE_PATH = (
    Path(__file__).resolve().parents[2] / "nanobeir_ext" / "data" / "fixture" / "source" / "NanoSciFact.json"
)
LANGUAGES = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "pt")
N_DOCS = 24
N_QUERIES = 8



@pytest.fixture(scope="module")
def source() -> dict:
    return json.loads(SOURCE_PATH.read_text(encoding="utf-8"))


_records = records


def _relevant_by_query(source: dict) -> dict[str, set[str]]:
    relevant: dict[str, set[str]] = {}
    for qrel in source["qrels"]:
        relevant.setdefault(qrel["query-id"], set()).add(qrel["corpus-id"])
    return relevant


def test_header(source: dict) -> None:
    assert source["subset"] == "NanoSciFact"
    assert source["relevance"] == "binary"
    assert "hand" in source["description"] and "fixture" in source["description"]


def test_ids_are_complete_and_ordered(source: dict) -> None:
    assert [d["_id"] for d in source["corpus"]] == [f"sf-d{i:02d}" for i in range(1, N_DOCS + 1)]
    assert [q["_id"] for q in source["queries"]] == [f"sf-q{i:02d}" for i in range(1, N_QUERIES + 1)]


def test_every_text_has_all_nine_languages_non_empty(source: dict) -> None:
    for record in _records(source):
        assert tuple(record["text"]) == LANGUAGES, record["_id"]
        for lang, text in record["text"].items():
            assert isinstance(text, str) and text.strip(), f"{record['_id']}/{lang} is empty"


def test_translations_are_distinct(source: dict) -> None:
    # A copy-pasted English text in another language slot would pass the other checks.
    for record in _records(source):
        texts = list(record["text"].values())
        assert len(set(texts)) == len(LANGUAGES), record["_id"]


def test_scripts(source: dict) -> None:
    for record in _records(source):
        text = record["text"]
        assert KANA_OR_CJK.search(text["ja"]), f"{record['_id']}/ja has no kana or kanji"
        assert HANGUL.search(text["ko"]), f"{record['_id']}/ko has no Hangul"
        assert ARABIC.search(text["ar"]), f"{record['_id']}/ar has no Arabic script"
        for lang in ("de", "en", "es", "fr", "it", "pt"):
            assert not (KANA_OR_CJK.search(text[lang]) or HANGUL.search(text[lang]))


def test_lengths(source: dict) -> None:
    doc_words = [len(d["text"]["en"].split()) for d in source["corpus"]]
    long_docs = [n for n in doc_words if 90 <= n <= 140]
    assert len(long_docs) >= 3, doc_words
    assert all(15 <= n <= 140 for n in doc_words), doc_words
    query_words = [len(q["text"]["en"].split()) for q in source["queries"]]
    assert all(5 <= n <= 15 for n in query_words), query_words


def test_punctuation_and_numbers_are_exercised(source: dict) -> None:
    english = " ".join(r["text"]["en"] for r in _records(source))
    for mark in (",", "(", ")", '"', "%", "-", ":"):
        assert mark in english, mark
    assert re.search(r"\d", english)


def test_qrels_reference_existing_ids_with_binary_scores(source: dict) -> None:
    doc_ids = {d["_id"] for d in source["corpus"]}
    query_ids = {q["_id"] for q in source["queries"]}
    pairs = [(q["query-id"], q["corpus-id"]) for q in source["qrels"]]
    assert len(pairs) == len(set(pairs)), "duplicate qrel"
    for qrel in source["qrels"]:
        assert set(qrel) == {"query-id", "corpus-id", "score"}
        assert qrel["query-id"] in query_ids
        assert qrel["corpus-id"] in doc_ids
        assert qrel["score"] == 1 and isinstance(qrel["score"], int)


def test_relevance_design(source: dict) -> None:
    relevant = _relevant_by_query(source)
    assert set(relevant) == {q["_id"] for q in source["queries"]}, "a query has no relevant doc"
    sizes = Counter(len(docs) for docs in relevant.values())
    assert sum(count for size, count in sizes.items() if 2 <= size <= 4) >= 3, sizes
    assert max(sizes) <= 4, sizes
    judged = set().union(*relevant.values())
    distractors = {d["_id"] for d in source["corpus"]} - judged
    assert 4 <= len(distractors) <= 8, sorted(distractors)
