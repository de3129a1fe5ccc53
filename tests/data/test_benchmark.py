"""The benchmark loader: drop rules, validation errors, choices, local fast path vs datasets, hub offline."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import yaml

from nanobeir_ext.data import (
    BenchmarkError,
    BenchmarkSource,
    DataRules,
    SubsetData,
    TextCollection,
    dataset_revision,
    load_subset,
)
from nanobeir_ext.data.files import read_split
from tests.helpers import REPO_DIR

# The dataset's identity lives in its config only.
HUB_CONFIG = yaml.safe_load((REPO_DIR / "configs" / "benchmark" / "nanobeir_extended.yaml").read_text(encoding="utf-8"))

Rows = list[dict[str, Any]]

CORPUS_EN: Rows = [
    {"_id": "d1", "text": "Apples grow on trees."},
    {"_id": "d2", "text": "Bananas are\u2028yellow.\x85"},  # line separators JSON leaves unescaped
    {"_id": "d3", "text": "   "},  # whitespace only: dropped in English
    {"_id": "d4", "text": "Cherries are small."},
]
CORPUS_KO: Rows = [
    {"_id": "d1", "text": "사과는 나무에서 자란다."},
    {"_id": "d2", "text": ""},  # empty: dropped in Korean
    {"_id": "d3", "text": "체리는 작다."},
    {"_id": "d4", "text": "체리는 작고 빨갛다."},
]
QUERIES_EN: Rows = [
    {"_id": "q1", "text": "Which fruit grows on trees?"},
    {"_id": "q2", "text": "Small fruit"},
    {"_id": "q3", "text": ""},  # empty query
    {"_id": "q4", "text": "Only relevant to d3"},
    {"_id": "q5", "text": "No judgments at all"},
    {"_id": "q6", "text": "Only a score-0 judgment"},
]
QUERIES_KO: Rows = [{"_id": r["_id"], "text": f"ko {r['_id']}" if r["text"] else ""} for r in QUERIES_EN]
QRELS_GRADED: Rows = [
    {"query-id": "q1", "corpus-id": "d1", "score": 2},
    {"query-id": "q1", "corpus-id": "d2", "score": 1},
    {"query-id": "q1", "corpus-id": "d3", "score": 1},
    {"query-id": "q2", "corpus-id": "d4", "score": 1},
    {"query-id": "q3", "corpus-id": "d1", "score": 1},
    {"query-id": "q4", "corpus-id": "d3", "score": 1},
    {"query-id": "q6", "corpus-id": "d2", "score": 0},
]
QRELS_BINARY: Rows = [{"query-id": r["query-id"], "corpus-id": r["corpus-id"]} for r in QRELS_GRADED if r["score"] > 0]


def toy_tables() -> dict[str, dict[str, Rows]]:
    return {
        "NanoToy_en": {"corpus": CORPUS_EN, "queries": QUERIES_EN},
        "NanoToy_en_qrels": {"qrels": QRELS_GRADED},
        "NanoToy_ko": {"corpus": CORPUS_KO, "queries": QUERIES_KO},
        "NanoToy_ko_qrels": {"qrels": QRELS_BINARY},  # no score column, like the real dataset
    }


def write_snapshot(root: Path, tables: dict[str, dict[str, Rows]], fmt: str = "jsonl") -> Path:
    """A local snapshot in the hub layout: README ``configs:`` front matter + one data file per split."""
    lines = ["---", "configs:"]
    for config, splits in tables.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split, rows in splits.items():
            path = root / config / f"{split}-00000-of-00001.{fmt}"
            path.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "jsonl":
                path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            elif fmt == "parquet":
                pd.DataFrame(rows).to_parquet(path, index=False)
            else:
                pd.DataFrame(rows).to_csv(path, index=False)
            lines += [f"  - split: {split}", f"    path: {config}/{split}-*"]
    lines += ["---", "A test snapshot."]
    (root / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def toy(tmp_path) -> BenchmarkSource:
    return BenchmarkSource(path=str(write_snapshot(tmp_path / "toy", toy_tables())))


# ----------------------------------------------------------------------------- drop rules


def test_empty_texts_and_queries_without_relevant_documents_are_dropped_and_counted(toy):
    data = load_subset(toy, "NanoToy", "en")
    assert data.corpus == TextCollection(ids=("d1", "d2", "d4"), texts=("Apples grow on trees.", "Bananas are\u2028yellow.\x85",
                                                                        "Cherries are small."), dropped_empty=1)
    # q3 is empty; q4's only relevant document is empty here; q5 has no judgments; q6 only a 0.
    assert data.queries.ids == ("q1", "q2")
    assert data.queries.texts == ("Which fruit grows on trees?", "Small fruit")
    assert data.queries.dropped_empty == 1
    assert data.queries_without_relevant == 3
    # Graded scores kept; the judgment on the dropped d3 removed.
    assert data.qrels == {"q1": {"d1": 2, "d2": 1}, "q2": {"d4": 1}}
    assert (data.subset, data.language, data.query_language, data.revision) == ("NanoToy", "en", "en", None)


def test_missing_score_column_means_relevance_one(toy):
    data = load_subset(toy, "NanoToy", "ko")
    assert data.corpus.ids == ("d1", "d3", "d4") and data.corpus.dropped_empty == 1
    assert data.qrels == {"q1": {"d1": 1, "d3": 1}, "q2": {"d4": 1}, "q4": {"d3": 1}}
    assert data.queries.ids == ("q1", "q2", "q4")
    assert data.queries_without_relevant == 2  # q5 (no judgments), q6 (only d2, empty in Korean)


def test_cross_lingual_cell_filters_queries_against_the_document_language(toy):
    cell = load_subset(toy, "NanoToy", "ko", query_language="en")
    assert (cell.language, cell.query_language) == ("ko", "en")
    assert cell.corpus.ids == ("d1", "d3", "d4")  # Korean corpus
    assert cell.queries.texts[0] == "Which fruit grows on trees?"  # English queries
    # q4 is answerable in this cell (d3 has a Korean text) although not in the English diagonal.
    assert cell.queries.ids == ("q1", "q2", "q4")
    assert cell.qrels == {"q1": {"d1": 1, "d3": 1}, "q2": {"d4": 1}, "q4": {"d3": 1}}  # Korean-side (binary) qrels


def test_identity_names_origin_choices_and_counts(toy):
    identity = load_subset(toy, "NanoToy", "en").identity()
    assert identity == {
        "layout": "nanobeir-extended", "path": str(Path(toy.path).resolve()), "revision": None, "subset": "NanoToy",
        "language": "en", "query_language": "en", "documents": 3, "queries": 2, "qrels": 3,
        "dropped_empty_documents": 1, "dropped_empty_queries": 1, "queries_without_relevant": 3,
        "empty_texts": "drop_judgments", "evaluated_queries": 2, "judgments": 3, "judgments_on_empty_documents": 2,
        "judgments_on_absent_documents": 0, "queries_only_empty_relevant": 1, "empty_queries": 1,
        "judgments_of_unknown_queries": 0,
    }
    json.dumps(identity)  # goes into environment.json as is


def test_identity_of_a_hub_subset_names_repo_and_revision():
    data = SubsetData(subset="NanoNQ", language="de", corpus=TextCollection((), (), 0), queries=TextCollection((), (), 0),
                      qrels={}, queries_without_relevant=0,
                      source=BenchmarkSource(repo_id="LiquidAI/nanobeir-multilingual-extended"), revision="abc")
    identity = data.identity()
    assert identity["repo_id"] == "LiquidAI/nanobeir-multilingual-extended" and "path" not in identity
    assert identity["revision"] == "abc" and identity["query_language"] == "de"


# ----------------------------------------------------------------------------- validation errors


def _break(tables: dict[str, dict[str, Rows]], how: str) -> None:
    en = tables["NanoToy_en"]
    if how == "missing column":
        en["corpus"] = [{"_id": r["_id"], "body": r["text"]} for r in CORPUS_EN]
    elif how == "duplicate ids":
        en["corpus"] = CORPUS_EN + [{"_id": "d2", "text": "again"}, {"_id": "d4", "text": "again"}]
    elif how == "float ids":
        en["queries"] = [{"_id": i + 0.5, "text": r["text"]} for i, r in enumerate(QUERIES_EN)]
    elif how == "ids with whitespace":
        en["corpus"] = CORPUS_EN + [{"_id": "d 5", "text": "spaced"}, {"_id": "", "text": "no id"}]
    elif how == "unknown query ids":
        tables["NanoToy_en_qrels"]["qrels"] = QRELS_GRADED + [{"query-id": "q9", "corpus-id": "d1", "score": 1},
                                                              {"query-id": "q8", "corpus-id": "d1", "score": 1}]
    elif how == "unknown document ids":
        tables["NanoToy_en_qrels"]["qrels"] = QRELS_GRADED + [{"query-id": "q1", "corpus-id": "d99", "score": 1}]
    elif how == "conflicting judgments":
        tables["NanoToy_en_qrels"]["qrels"] = QRELS_GRADED + [{"query-id": "q1", "corpus-id": "d1", "score": 1}]
    elif how == "fractional score":
        tables["NanoToy_en_qrels"]["qrels"] = [{**r, "score": 0.5} for r in QRELS_GRADED]
    elif how == "missing qrels column":
        tables["NanoToy_en_qrels"]["qrels"] = [{"query-id": r["query-id"], "doc": r["corpus-id"]} for r in QRELS_GRADED]


@pytest.mark.parametrize(("how", "expected"), [
    ("missing column", r"NanoToy \(documents en\): \S*NanoToy_en/corpus-\S*\.jsonl \(config NanoToy_en, split corpus .* lacks columns \['text'\]"),
    ("duplicate ids", r"2 duplicate ids in \S*NanoToy_en/corpus-\S* \(config NanoToy_en, split corpus .*\['d2', 'd4'\]"),
    ("float ids", r"column '_id' of \S*NanoToy_en/queries-\S* \(config NanoToy_en, split queries .* must hold strings; 6 of 6 values .*types \['float'\]"),
    ("ids with whitespace", r"^NanoToy \(documents en\): column '_id' of \S*NanoToy_en/corpus-\S*\.jsonl .* holds 2 empty ids or ids with whitespace \(first: \['d 5', ''\]\).*fix the ids in that file$"),
    ("unknown query ids", r"NanoToy_en_qrels, split qrels .* names 2 unknown query ids \(first: \['q9', 'q8'\].*benchmark.strict=false"),
    ("unknown document ids", r"names 1 unknown document ids \(first: \['d99'\]; the document table has 4 ids\)"),
    ("conflicting judgments", r"judges 1 \(query, document\) pairs twice with different scores \(first: \[\('q1', 'd1'\)\]"),
    ("fractional score", r"7 scores in \S*NanoToy_en_qrels/qrels-\S* \(config NanoToy_en_qrels, split qrels .* are not integers"),
    ("missing qrels column", r"lacks columns \['corpus-id'\]"),
])
def test_invalid_data_raises_a_clear_error(tmp_path, how, expected):
    tables = toy_tables()
    _break(tables, how)
    source = BenchmarkSource(path=str(write_snapshot(tmp_path / "bad", tables)))
    with pytest.raises(BenchmarkError, match=expected):
        load_subset(source, "NanoToy", "en", rules=DataRules(strict=True))


def test_repeated_identical_judgments_are_collapsed(tmp_path, caplog):
    tables = toy_tables()
    tables["NanoToy_en_qrels"]["qrels"] = QRELS_GRADED + [QRELS_GRADED[0]]
    source = BenchmarkSource(path=str(write_snapshot(tmp_path / "rep", tables)))
    assert load_subset(source, "NanoToy", "en").qrels == {"q1": {"d1": 2, "d2": 1}, "q2": {"d4": 1}}
    assert "1 repeated identical judgments" in caplog.text


# ----------------------------------------------------------------------------- choices


def test_unknown_choices_list_what_a_local_snapshot_offers(toy, tmp_path):
    with pytest.raises(BenchmarkError, match=r"unknown subset 'NanoSciFact' .* valid subsets: \['NanoToy'\]"):
        load_subset(toy, "NanoSciFact", "en")
    with pytest.raises(BenchmarkError, match=r"unknown language \['fr'\] .* valid languages: \['en', 'ko'\]"):
        load_subset(toy, "NanoToy", "en", query_language="fr")
    tables = toy_tables()
    tables["NanoOther_de"] = tables["NanoToy_en"]  # de exists, but not for NanoToy
    partial = BenchmarkSource(path=str(write_snapshot(tmp_path / "partial", tables)))
    with pytest.raises(BenchmarkError, match=r"has no config NanoToy_de; configs of NanoToy: \['NanoToy_en', 'NanoToy_ko'\]"):
        load_subset(partial, "NanoToy", "de")


def test_unknown_choices_for_the_hub_list_the_configured_subsets_and_languages():
    subsets = tuple(HUB_CONFIG["available_subsets"])
    assert len(subsets) == 13
    hub = BenchmarkSource(repo_id="nanobeir-ext-test/never-contacted", subsets=subsets)
    with pytest.raises(BenchmarkError, match=r"unknown subset 'SciFact' .* valid subsets: \['NanoArguAna', .*'NanoTouche2020'\]"):
        load_subset(hub, "SciFact", "en")
    with pytest.raises(BenchmarkError, match=r"unknown language \['zh'\] .*\['ar', 'de', 'en', 'es', 'fr', 'it', 'ja', 'ko', 'pt', 'no', 'sv'\]"):
        load_subset(hub, "NanoSciFact", "zh")
    with pytest.raises(BenchmarkError, match=r"valid subsets: \[\] \(a hub source lists the subsets it offers"):
        load_subset(BenchmarkSource(repo_id="nanobeir-ext-test/never-contacted"), "NanoSciFact", "en")


def test_unknown_layout_lists_the_valid_layouts(toy):
    with pytest.raises(BenchmarkError, match=r"unknown benchmark layout 'mteb'; valid layouts: \['beir', 'nanobeir-extended'\]"):
        load_subset(BenchmarkSource(layout="mteb", path=toy.path), "NanoToy", "en")


def test_a_folder_that_is_not_a_snapshot_is_rejected(tmp_path):
    with pytest.raises(BenchmarkError, match="has no README.md"):
        load_subset(BenchmarkSource(path=str(tmp_path)), "NanoToy", "en")
    with pytest.raises(BenchmarkError, match="is not a folder"):
        load_subset(BenchmarkSource(path=str(tmp_path / "nowhere")), "NanoToy", "en")


# ----------------------------------------------------------------------------- reading paths


def _without_source(data: SubsetData) -> SubsetData:
    return SubsetData(**{**data.__dict__, "source": None})


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_fast_path_reads_local_files_without_datasets_and_agrees_with_it(tmp_path, monkeypatch, fmt):
    import datasets

    source = BenchmarkSource(path=str(write_snapshot(tmp_path / fmt, toy_tables(), fmt=fmt)), cache_dir=str(tmp_path / "hf"))
    reference = {
        (config, split): datasets.load_dataset(source.path, name=config, split=split, cache_dir=source.cache_dir).to_dict()
        for config, splits in toy_tables().items() for split in splits
    }

    def forbidden(*args, **kwargs):
        raise AssertionError("the fast path must not call datasets.load_dataset")

    monkeypatch.setattr(datasets, "load_dataset", forbidden)
    for (config, split), columns in reference.items():
        table = read_split(source, config, split)
        assert {name: list(values) for name, values in table.columns.items()} == columns
    assert _without_source(load_subset(source, "NanoToy", "ko", "en")).corpus.ids == ("d1", "d3", "d4")


def test_other_file_formats_go_through_datasets(tmp_path, toy):
    import datasets

    source = BenchmarkSource(path=str(write_snapshot(tmp_path / "csv", toy_tables(), fmt="csv")), cache_dir=str(tmp_path / "hf"))
    progress_disabled = datasets.are_progress_bars_disabled()
    from_csv = load_subset(source, "NanoToy", "en")
    assert datasets.are_progress_bars_disabled() == progress_disabled  # the caller's setting is restored
    assert _without_source(from_csv) == _without_source(load_subset(toy, "NanoToy", "en"))


def test_rewritten_snapshot_is_read_again(tmp_path):
    root = tmp_path / "snap"
    source = BenchmarkSource(path=str(write_snapshot(root, toy_tables())))
    assert load_subset(source, "NanoToy", "en").corpus.ids == ("d1", "d2", "d4")
    tables = toy_tables()
    tables["NanoToy_en"]["corpus"] = CORPUS_EN + [{"_id": "d5", "text": "Dates are sweet."}]
    tables["NanoToy_en_qrels"]["qrels"] = QRELS_GRADED + [{"query-id": "q5", "corpus-id": "d5", "score": 1}]
    write_snapshot(root, tables)
    (root / "README.md").write_text((root / "README.md").read_text() + "Rewritten.\n")
    reloaded = load_subset(source, "NanoToy", "en")
    assert reloaded.corpus.ids == ("d1", "d2", "d4", "d5") and "q5" in reloaded.qrels


# ----------------------------------------------------------------------------- the hub, offline


HUB_PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from nanobeir_ext.data import BenchmarkSource, BenchmarkUnavailableError, dataset_revision, load_subset

    out = {}
    fake = BenchmarkSource(repo_id="nanobeir-ext-test/not-a-dataset", revision=sys.argv[1], subsets=("NanoSciFact",))
    try:
        load_subset(fake, "NanoSciFact", "en")
    except BenchmarkUnavailableError as err:
        out["load_error"] = str(err)
    out["pinned"] = dataset_revision(fake)
    out["local"] = dataset_revision(BenchmarkSource(path="/anywhere"))
    out["cached_main"] = dataset_revision(BenchmarkSource(repo_id="nanobeir-ext-test/cached", revision="main"))
    try:
        dataset_revision(BenchmarkSource(repo_id="nanobeir-ext-test/uncached", revision="main"))
    except BenchmarkUnavailableError as err:
        out["resolve_error"] = str(err)
    print(json.dumps(out))
    """
)


def test_hub_source_offline_fails_with_instructions_and_resolves_revisions_from_the_cache(tmp_path):
    # A hub cache holding one snapshot of a (fake) dataset whose "main" points at a known commit.
    commit = "0123456789abcdef0123456789abcdef01234567"
    cached = tmp_path / "hub" / "datasets--nanobeir-ext-test--cached"
    (cached / "refs").mkdir(parents=True)
    (cached / "refs" / "main").write_text(commit)
    (cached / "snapshots" / commit).mkdir(parents=True)
    (cached / "snapshots" / commit / "README.md").write_text("---\n---\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "home"), "HF_HUB_CACHE": str(tmp_path / "hub"),
           "HF_DATASETS_CACHE": str(tmp_path / "datasets"), "PYTHONPATH": str(REPO_DIR)}
    done = subprocess.run([sys.executable, "-c", HUB_PROBE, HUB_CONFIG["revision"]], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    message = out["load_error"]
    for expected in ("nanobeir-ext-test/not-a-dataset", "8a4be55eb80b3ed4d2e9a423a5212228c217d426",
                     "unreachable", "HF_HUB_OFFLINE", "benchmark.path=/local/snapshot"):
        assert expected in message
    assert out["pinned"] == "8a4be55eb80b3ed4d2e9a423a5212228c217d426"
    assert out["local"] is None
    assert out["cached_main"] == commit
    assert "nanobeir-ext-test/uncached" in out["resolve_error"] and "revision main" in out["resolve_error"]


def test_pinned_and_local_revisions_need_no_hub():
    pinned = BenchmarkSource(repo_id=HUB_CONFIG["repo_id"], revision=HUB_CONFIG["revision"])
    assert dataset_revision(pinned) == "8a4be55eb80b3ed4d2e9a423a5212228c217d426"
    assert dataset_revision(BenchmarkSource(path="/somewhere")) is None


# ----------------------------------------------------------------------------- BEIR folders


def write_beir(root: Path, qrels_lines: list[str]) -> Path:
    folder = root / "toyfact"
    (folder / "qrels").mkdir(parents=True)
    corpus = [{"_id": "d1", "title": "Apples", "text": "They grow on trees."},
              {"_id": "d2", "title": "", "text": "Bananas are yellow."},
              {"_id": "d3", "title": "", "text": " "}]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    queries = [{"_id": "q1", "text": "Where do apples grow?"}, {"_id": "q2", "text": "Only d3"}]
    (folder / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (folder / "qrels" / "test.tsv").write_text("\n".join(["query-id\tcorpus-id\tscore", *qrels_lines]) + "\n")
    return root


def test_beir_folder_layout_loads_with_titles_and_the_same_rules(tmp_path):
    source = BenchmarkSource(layout="beir", path=str(write_beir(tmp_path / "beir", ["q1\td1\t2", "q1\td2\t0", "q2\td3\t1"])))
    data = load_subset(source, "toyfact", "en")
    assert data.corpus.ids == ("d1", "d2") and data.corpus.dropped_empty == 1
    assert data.corpus.texts == ("Apples They grow on trees.", "Bananas are yellow.")
    assert data.queries.ids == ("q1",) and data.queries_without_relevant == 1
    assert data.qrels == {"q1": {"d1": 2, "d2": 0}}
    with pytest.raises(BenchmarkError, match=r"unknown subset 'scifact' .* valid subsets: \['toyfact'\]"):
        load_subset(source, "scifact", "en")
    with pytest.raises(BenchmarkError, match=r"valid languages: \['en'\]"):
        load_subset(source, "toyfact", "de")
    with pytest.raises(BenchmarkError, match="reads local folders only; set benchmark.path"):
        load_subset(BenchmarkSource(layout="beir"), "toyfact", "en")


def test_beir_qrels_naming_unknown_documents_are_rejected(tmp_path):
    source = BenchmarkSource(layout="beir", path=str(write_beir(tmp_path / "beir", ["q1\td1\t1", "q1\td9\t1"])))
    with pytest.raises(BenchmarkError, match=r"file .*test.tsv names 1 unknown document ids \(first: \['d9'\]"):
        load_subset(source, "toyfact", "en", rules=DataRules(strict=True))
    assert load_subset(source, "toyfact", "en").qrels == {"q1": {"d1": 1}}  # counted, reported, dropped by the rule
