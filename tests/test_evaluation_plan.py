import pytest

from nanobeir_ext.data import SubsetData, TextCollection
from nanobeir_ext.evaluation import WorkUnit, cell_qrels, parse_shard, shard_units


def test_parse_shard():
    assert parse_shard("1/2") == (1, 2)
    assert parse_shard(None) is None
    for bad in ["2/2", "a/b", "3", "-1/2"]:
        with pytest.raises(ValueError, match="i/n"):
            parse_shard(bad)


def test_shards_partition_the_work():
    units = [WorkUnit("m", "S", lang, role) for lang in "abc" for role in ("query", "document")]
    parts = [shard_units(units, (i, 3)) for i in range(3)]
    assert sorted(u for p in parts for u in p) == sorted(units)
    assert all(len(p) == 2 for p in parts)


def collection(ids):
    return TextCollection(ids=tuple(ids), texts=tuple(f"text {i}" for i in ids), dropped_empty=0)


def test_cell_qrels_drop_documents_missing_in_the_document_language():
    query_side = SubsetData(subset="S", language="en", corpus=collection(["d1", "d2"]), queries=collection(["q1", "q2"]),
                            qrels={"q1": {"d1": 1, "d2": 1}, "q2": {"d2": 1}}, queries_without_relevant=0)
    doc_side = SubsetData(subset="S", language="ko", corpus=collection(["d1"]), queries=collection(["q1", "q2"]),
                          qrels={"q1": {"d1": 1}}, queries_without_relevant=1)
    assert cell_qrels(query_side, doc_side) == {"q1": {"d1": 1}}
