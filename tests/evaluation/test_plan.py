import pytest

from nanobeir_ext.evaluation.pipeline import WorkUnit, parse_shard, shard_units


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
