"""Bad data files: each error is one line naming the file (and line), the subset, the language and
what to do; data the peers accept (integer ids, judgments on absent documents) is accepted."""
from __future__ import annotations

import json
import logging
import shutil

import pytest

from nanobeir_ext.data import BenchmarkError, BenchmarkSource, DataRules, load_subset
from tests.data.test_benchmark import toy_tables, write_snapshot


def snapshot(tmp_path, tables=None) -> BenchmarkSource:
    return BenchmarkSource(path=str(write_snapshot(tmp_path / "snap", tables or toy_tables())), cache_dir=str(tmp_path / "hf"))


def corpus_file(source: BenchmarkSource):
    return next((__import__("pathlib").Path(source.path) / "NanoToy_en").glob("corpus-*.jsonl"))


def load_error(source: BenchmarkSource) -> str:
    with pytest.raises(BenchmarkError) as caught:
        load_subset(source, "NanoToy", "en")
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_malformed_json_line_names_the_file_and_its_line(tmp_path):
    source = snapshot(tmp_path)
    path = corpus_file(source)
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[2] = lines[2][:-1]  # line 3 loses its closing brace
    path.write_text("\n".join(lines), encoding="utf-8")
    message = load_error(source)
    assert message.startswith("NanoToy (en): ") and f"{path}: line 3 is not valid JSON" in message
    assert "fix or remove that line" in message


def test_bytes_that_are_not_utf8_name_the_line(tmp_path):
    source = snapshot(tmp_path)
    path = corpus_file(source)
    data = path.read_bytes().split(b"\n")
    data[1] = data[1].replace(b"Bananas", b"Bananas \xff")
    path.write_bytes(b"\n".join(data))
    assert f"{path}: line 2 is not UTF-8 (byte 0xff); re-encode the file as UTF-8" in load_error(source)


def test_a_byte_order_mark_is_named(tmp_path):
    source = snapshot(tmp_path)
    path = corpus_file(source)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert f"{path}: line 1 starts with a UTF-8 byte-order mark (BOM)" in load_error(source)


def test_a_json_array_in_a_jsonl_file_is_named(tmp_path):
    source = snapshot(tmp_path)
    path = corpus_file(source)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    assert f"{path}: holds a JSON array, not JSON lines; write one JSON object per line" in load_error(source)
    path.write_text("[1, 2]\n", encoding="utf-8")
    assert f"{path}: holds a JSON array" in load_error(source)
    path.write_text('{"_id": "d1", "text": "a"}\n"just a string"\n', encoding="utf-8")
    assert f"{path}: line 2 holds a JSON str, not an object" in load_error(source)


def test_a_folder_missing_from_a_partial_snapshot_is_named(tmp_path):
    # Before: a bare StopIteration from datasets, naming nothing.
    source = snapshot(tmp_path)
    shutil.rmtree(f"{source.path}/NanoToy_en_qrels")
    message = load_error(source)
    assert message.startswith("NanoToy (en): ") and "declares config NanoToy_en_qrels, split qrels" in message
    assert "NanoToy_en_qrels/ is missing" in message and "download the snapshot again" in message


def test_an_unreadable_parquet_file_is_named(tmp_path):
    source = BenchmarkSource(path=str(write_snapshot(tmp_path / "pq", toy_tables(), fmt="parquet")))
    path = next((tmp_path / "pq" / "NanoToy_en").glob("corpus-*.parquet"))
    path.write_bytes(path.read_bytes()[:20])
    assert f"{path}: not a readable parquet file" in load_error(source)


def test_integer_ids_are_read_as_strings_with_one_log_line(tmp_path, caplog):
    tables = toy_tables()
    for split in ("corpus", "queries"):
        tables["NanoToy_en"][split] = [{**row, "_id": int(row["_id"][1:])} for row in tables["NanoToy_en"][split]]
    tables["NanoToy_en_qrels"]["qrels"] = [{**row, "query-id": int(row["query-id"][1:]), "corpus-id": int(row["corpus-id"][1:])}
                                          for row in tables["NanoToy_en_qrels"]["qrels"]]
    with caplog.at_level(logging.INFO, logger="nanobeir_ext.data.validate"):
        data = load_subset(snapshot(tmp_path, tables), "NanoToy", "en")
    assert data.corpus.ids == ("1", "2", "4") and data.qrels == {"1": {"1": 2, "2": 1}, "2": {"4": 1}}
    lines = [r.getMessage() for r in caplog.records if "integer ids" in r.getMessage()]
    assert len(lines) == 4  # one per table column: documents, queries, judgments' query and document ids
    assert any("NanoToy (documents en): 4 integer ids in column '_id'" in line for line in lines)


def test_judgments_on_absent_documents_are_counted_reported_and_strict_makes_them_an_error(tmp_path, caplog):
    tables = toy_tables()
    tables["NanoToy_en_qrels"]["qrels"] += [{"query-id": "q2", "corpus-id": "d99", "score": 1}]
    source = snapshot(tmp_path, tables)
    dropped = load_subset(source, "NanoToy", "en")
    assert dropped.qrels == {"q1": {"d1": 2, "d2": 1}, "q2": {"d4": 1}}  # drop_judgments drops it with the empties
    assert dropped.counts.judgments_on_absent_documents == 1
    assert "1 judgments in" in caplog.text and "1 document ids absent from the document table" in caplog.text
    pylate = load_subset(source, "NanoToy", "en", rules=DataRules(empty_texts="pylate"))
    assert pylate.qrels["q2"] == {"d4": 1, "d99": 1}  # as sentence-transformers: in IDCG, never retrieved
    with pytest.raises(BenchmarkError, match=r"names 1 unknown document ids \(first: \['d99'\].*benchmark.strict"):
        load_subset(source, "NanoToy", "en", rules=DataRules(strict=True))


def test_an_unknown_rule_names_the_setting():
    with pytest.raises(BenchmarkError, match=r"benchmark.empty_texts must be one of \['pylate', 'mteb', 'drop_judgments'\]"):
        DataRules(empty_texts="beir")
