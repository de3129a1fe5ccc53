"""Config errors fail before any work: no model loaded, no data read, nothing written."""
from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest

from nanobeir_ext.evaluation import checks
from runners import evaluate
from runners.checks import check_evaluation, warn_about_lengths
from tests.helpers import compose

BASE = ["experiment=smoke", "runtime.progress=false"]


def never_load(spec, plan):
    raise AssertionError(f"model {spec.key} was loaded before the config error")


@pytest.mark.parametrize("overrides, message", [
    (["metrics=[ndcg@10,ndgc@10]"], r"metrics: unknown metric 'ndgc@10'"),
    (["metrics=ndcg@10"], r"metrics must be a list, got the string 'ndcg@10': write metrics=\[ndcg@10\]"),
    (["metrics=[]"], r"metrics is empty"),
    (["retrieval.k=0"], r"retrieval.k must be a positive integer, got 0"),
    (["retrieval.k=-5"], r"retrieval.k must be a positive integer, got -5"),
    (["retrieval.k=5"], r"retrieval.k=5 is below the cutoff"),
    (["retrieval.chunk_tokens=0"], r"retrieval.chunk_tokens must be a positive integer"),
    (["retrieval.chunk_tokens=many"], r"retrieval.chunk_tokens must be a positive integer, got 'many'"),
    (["benchmark.subsets=[]"], r"benchmark.subsets is empty"),
    (["models.fixture_lfm2.document_length=0"], r"models.fixture_lfm2.document_length must be a positive integer"),
    (["report.baseline_model=GTE-ModernColBERT-v1"],
     r"report.baseline_model='GTE-ModernColBERT-v1' is not one of the models"),
    (["models.fixture_lfm2.name=tiny model", "models.fixture_modernbert.name=tiny/model", "report.baseline_model=null"],
     r"same file name: \['tiny model', 'tiny/model'\] all become 'tiny_model'"),
])
def test_config_errors_come_before_any_model_loads(tmp_path, overrides, message):
    cfg = compose("evaluate", BASE + [f"runtime.cache_dir={tmp_path / 'cache'}", *overrides])
    started = time.perf_counter()
    with pytest.raises(ValueError, match=message):
        evaluate.run(cfg, out_dir=tmp_path / "out", encoder_factory=never_load)
    assert time.perf_counter() - started < 5
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "cache").exists()


def test_cuda_without_cuda_names_runtime_device():
    cfg = compose("evaluate", BASE + ["runtime=gpu"])
    with pytest.raises(checks.ConfigError, match=r"runtime.device=cuda but this machine has no CUDA device"):
        check_evaluation(cfg, cuda_available=False)
    check_evaluation(cfg, cuda_available=True)


def test_the_default_configs_pass():
    for experiment in ("smoke", "paper"):
        check_evaluation(compose("evaluate", [f"experiment={experiment}"]), cuda_available=False)


def test_a_baseline_removed_with_its_model_is_an_error_also_in_a_one_model_run():
    # the smoke baseline is a removed model: an error naming the key, as with more models
    cfg = compose("evaluate", BASE + ["~models.fixture_modernbert", "~models.fixture_dense", "~models.fixture_bm25"])
    with pytest.raises(checks.ConfigError, match=r"report\.baseline_model='fixture-ModernBERT-tiny' is not one of the models"):
        check_evaluation(cfg, cuda_available=False)
    check_evaluation(compose("evaluate", BASE + ["~models.fixture_modernbert", "~models.fixture_dense",
                                                  "~models.fixture_bm25", "report.baseline_model=null"]),
                     cuda_available=False)


def test_a_length_beyond_the_models_positions_is_a_warning(caplog):
    encoder = SimpleNamespace(settings=SimpleNamespace(query_length=32, document_length=600),
                              backbone=SimpleNamespace(config=SimpleNamespace(max_position_embeddings=512)))
    with caplog.at_level(logging.WARNING, logger="nanobeir_ext"):
        warn_about_lengths(encoder, "lfm2")
    notes = [r.getMessage() for r in caplog.records]
    assert notes == ["models.lfm2.document_length=600 exceeds the model's 512 positions: longer texts fail or are "
                     "cut by the model; lower models.lfm2.document_length"]
