"""BM25 (models/bm25.py): hand-checked scores, tie rule, cache round trip, determinism."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.bm25 import MANIFEST, BM25Index, BM25Retriever, BM25Settings
from models.text_analysis import analyzer_for

IDS = ["d1", "d2", "d3", "d4"]
TEXTS = [
    "cats chase mice",
    "the cat sleeps and the cat eats",
    "dogs chase cats in the garden",
    "a quiet garden",
]


def lucene_bm25(query_terms, docs_terms, k1=1.5, b=0.75):
    """Lucene's BM25 (bm25s's default), written out in float64."""
    n = len(docs_terms)
    avgdl = sum(len(d) for d in docs_terms) / n
    scores = []
    for doc in docs_terms:
        score = 0.0
        for term in query_terms:
            df = sum(term in d for d in docs_terms)
            tf = doc.count(term)
            if tf:
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                score += idf * tf / (tf + k1 * (1 - b + b * len(doc) / avgdl))
        scores.append(score)
    return scores


def test_scores_match_the_formula_by_hand():
    index = BM25Index.build(IDS, TEXTS, analyzer_for("en"), BM25Settings())
    docs_terms = [analyzer_for("en").analyze(t) for t in TEXTS]
    assert docs_terms[1] == ["the", "cat", "sleep", "and", "the", "cat", "eat"]  # "cats" and "cat" meet after stemming
    # Hand check of one value: "garden" in d4 (df 2 of 4, tf 1, dl 3, avgdl 4.75).
    avgdl = (3 + 7 + 6 + 3) / 4
    by_hand = math.log(1 + 2.5 / 2.5) * 1 / (1 + 1.5 * (0.25 + 0.75 * 3 / avgdl))
    run = index.search(["q"], ["Garden"], k=10)
    assert run["q"]["d4"] == pytest.approx(by_hand, rel=1e-6)
    for query in ("cat chasing", "the garden cats", "cat cat"):
        expected = lucene_bm25(analyzer_for("en").analyze(query), docs_terms)
        got = index.search(["q"], [query], k=10)["q"]
        assert set(got) == {doc for doc, s in zip(IDS, expected) if s > 0}
        for doc, score in zip(IDS, expected):
            if score > 0:
                assert got[doc] == pytest.approx(score, rel=1e-6)


def test_other_parameters_change_scores_as_the_formula_says():
    settings = BM25Settings(k1=0.9, b=0.4)
    index = BM25Index.build(IDS, TEXTS, analyzer_for("en"), settings)
    expected = lucene_bm25(["cat"], [analyzer_for("en").analyze(t) for t in TEXTS], k1=0.9, b=0.4)
    got = index.search(["q"], ["cat"], k=10)["q"]
    assert got == pytest.approx({d: s for d, s in zip(IDS, expected) if s > 0}, rel=1e-6)


def test_top_k_rank_order_ties_and_unmatched_documents():
    ids = ["a", "c", "b", "z"]
    texts = ["apple pie", "apple pie", "apple pie", "banana"]
    index = BM25Index.build(ids, texts, analyzer_for("en"), BM25Settings())
    run = index.search(["q1", "q2", "q3"], ["apple", "kiwi", "!!!"], k=2)
    # Three equal scores: kept and ordered by document id descending (c, b), a drops at k=2.
    assert list(run["q1"]) == ["c", "b"]
    assert run["q2"] == {} and run["q3"] == {}  # no shared term, nothing retrieved
    assert "z" not in index.search(["q"], ["apple"], k=10)["q"]


def test_query_is_analyzed_with_the_document_language():
    index = BM25Index.build(["x", "y"], ["東京都に住んでいます", "大阪 Tokyo"], analyzer_for("ja"), BM25Settings())
    run = index.search(["q"], ["東京"], k=5)
    assert list(run["q"]) == ["x"]
    assert list(index.search(["q"], ["tokyo"], k=5)["q"]) == ["y"]


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="method"):
        BM25Settings(method="okapi")
    with pytest.raises(ValueError, match="duplicate"):
        BM25Index.build(["a", "a"], ["x", "y"], analyzer_for("en"), BM25Settings())
    with pytest.raises(ValueError, match="empty corpus"):
        BM25Index.build([], [], analyzer_for("en"), BM25Settings())
    index = BM25Index.build(IDS, TEXTS, analyzer_for("en"), BM25Settings())
    with pytest.raises(ValueError, match="k must be positive"):
        index.search(["q"], ["cat"], k=0)
    with pytest.raises(TypeError):
        index.search(["q"], [None], k=3)


def test_index_cache_round_trip(tmp_path):
    retriever = BM25Retriever()
    built = retriever.index(tmp_path, "NanoSciFact", "en", IDS, TEXTS)
    folders = list((tmp_path / "NanoSciFact" / "en").iterdir())
    assert len(folders) == 1 and (folders[0] / MANIFEST).is_file()
    assert not [p for p in folders[0].parent.iterdir() if p.name.startswith(".")]  # no staging left behind
    loaded = retriever.index(tmp_path, "NanoSciFact", "en", IDS, TEXTS)
    queries = (["q1", "q2"], ["cats in the garden", "the cat"])
    assert loaded.search(*queries, k=3) == built.search(*queries, k=3)
    manifest = json.loads((folders[0] / MANIFEST).read_text())
    assert manifest["doc_ids"] == IDS and manifest["identity"] == retriever.index_identity("en")
    # A different corpus, language or setting is a different index.
    assert retriever.index_key("en", IDS, TEXTS) != retriever.index_key("en", IDS, [*TEXTS[:-1], "a noisy garden"])
    assert retriever.index_key("en", IDS, TEXTS) != retriever.index_key("de", IDS, TEXTS)
    assert retriever.index_key("en", IDS, TEXTS) != BM25Retriever(BM25Settings(k1=1.2)).index_key("en", IDS, TEXTS)
    with pytest.raises(ValueError, match="different identity"):
        BM25Index.load(folders[0], analyzer_for("en"), BM25Settings(k1=1.2), BM25Retriever(BM25Settings(k1=1.2)).index_identity("en"))


def test_label_and_identity():
    retriever = BM25Retriever(BM25Settings(k1=1.2, b=0.75))
    assert retriever.info.weights == "lexical" and retriever.info.source == "bm25s"
    assert retriever.info.settings["k1"] == 1.2 and "ja" in retriever.info.settings["analysis"]
    assert retriever.cache_identity() != BM25Retriever().cache_identity()
    assert retriever.index_identity("ja")["analyzer"]["segmentation"] == "cjk_bigrams"


def test_index_files_do_not_depend_on_the_hash_seed(tmp_path):
    """Two processes with different hash seeds write byte-identical indexes (sorted vocabulary)."""
    script = (
        "import sys; from pathlib import Path; from models.bm25 import BM25Retriever; "
        f"BM25Retriever().index(Path(sys.argv[1]), 's', 'en', {IDS!r}, {TEXTS!r})"
    )
    contents = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env, cwd=Path(__file__).parents[2])
        contents.append({p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert contents[0] == contents[1] and len(contents[0]) >= 5


def test_a_corpus_without_any_term_is_indexed_and_retrieves_nothing(tmp_path):
    """Whitespace or punctuation only (kept by the pylate and mteb empty-text rules): no crash, no match."""
    import warnings

    from models.bm25 import BM25Retriever

    retriever = BM25Retriever()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division warnings from the zero mean document length
        built = retriever.index(tmp_path, "S", "en", ["d1", "d2"], ["   ", "?!"])
        loaded = retriever.index(tmp_path, "S", "en", ["d1", "d2"], ["   ", "?!"])
    assert built.search(["q"], ["apple ?"], 10) == loaded.search(["q"], ["apple ?"], 10) == {"q": {}}
