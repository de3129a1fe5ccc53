import subprocess
import sys
from pathlib import Path

import pytest

from nanobeir_ext.data import BenchmarkSource, validate
from nanobeir_ext.data.fixture import BENCHMARK_DIR
from nanobeir_ext.evaluation.pipeline import load_data
from nanobeir_ext.evaluation.plan import EvaluationPlan, WorkUnit, parse_shard, shard_units
from nanobeir_ext.languages import MATRIX_LANGUAGES, matrix_cells
from tests.helpers import REPO_DIR


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


def fixture_plan(subsets: tuple[str, ...] = ("NanoSciFact",), *, k: int = 100,
                 metrics: tuple[str, ...] = ("ndcg@10", "recall@100")) -> EvaluationPlan:
    return EvaluationPlan(models=(), benchmark="fixture", source=BenchmarkSource(path=str(BENCHMARK_DIR)),
                          subsets=subsets, cells=tuple(matrix_cells(MATRIX_LANGUAGES, MATRIX_LANGUAGES)),
                          metrics=metrics, cache_dir=Path("unused"), k=k)


def test_load_data_validates_each_corpus_and_query_set_once(monkeypatch):
    calls: list[str] = []
    original = validate.text_collection

    def counted(table, where, *rules):
        calls.append(where)
        return original(table, where, *rules)

    monkeypatch.setattr(validate, "text_collection", counted)
    data = load_data(fixture_plan())
    # One subset, 9 x 9 cells: 9 corpora and 9 query sets, each validated once.
    assert len(calls) == 18 and len(set(calls)) == 18
    assert len(data.cell_qrels) == 81 and len(data.subsets) == len(data.queries) == 9


def test_k_must_reach_every_metric_cutoff():
    assert fixture_plan(k=100).k == 100
    with pytest.raises(ValueError, match=r"retrieval\.k=10 is below the cutoff of \['recall@100'\]"):
        fixture_plan(k=10)
    assert fixture_plan(k=10, metrics=("ndcg@10", "recall@10")).k == 10
    with pytest.raises(ValueError, match=r"retrieval\.k must be a positive number of documents, got 0"):
        fixture_plan(k=0, metrics=("ndcg@1",))


@pytest.mark.parametrize(("module", "absent"), [("nanobeir_ext.evaluation.metrics", "torch"),
                                                ("nanobeir_ext.evaluation.pipeline", "matplotlib")])
def test_layers_do_not_import_what_they_do_not_need(module, absent):
    probe = f"import sys, {module}; print({absent!r} in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO_DIR)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_padding_side_reaches_the_plan_and_bad_values_name_the_key():
    from runners.evaluate import build_plan
    from tests.helpers import compose

    plan = build_plan(compose("evaluate", ["experiment=smoke", "+models.fixture_lfm2.padding_side=right"]))
    specs = {spec.key: spec for spec in plan.models}
    assert specs["fixture_lfm2"].padding_side == "right" and specs["fixture_modernbert"].padding_side is None
    import pytest

    with pytest.raises(ValueError, match=r"models\.fixture_lfm2\.padding_side='middle'"):
        build_plan(compose("evaluate", ["experiment=smoke", "+models.fixture_lfm2.padding_side=middle"]))
