"""End to end: the latency_smoke experiment through Hydra's compose API; configs; weight fallback."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from runners import latency
from tests.helpers import compose

REQUIRED_COLUMNS = ["model", "role", "batch_size", "seq_len", "texts_per_s", "tokens_per_s", "p50_ms", "p95_ms",
                    "device", "dtype", "weights"]


def smoke_cfg(cache: Path, *extra: str):
    return compose("latency", ["experiment=latency_smoke", f"runtime.cache_dir={cache}", "runtime.progress=false",
                               "latency.document_lengths=[64]", "latency.max_batch_size=2", *extra])


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, shared_cache):
    out = tmp_path_factory.mktemp("latency-smoke")
    summary = latency.run(smoke_cfg(shared_cache), out_dir=out)
    return out, summary


@pytest.mark.slow
def test_smoke_writes_every_output(smoke_run):
    out, summary = smoke_run
    for name in ["latency.csv", "maxsim_latency.csv", "latency.md", "environment.json", "config.yaml", "run.json",
                 "figures/throughput_vs_batch_size.png"]:
        assert (out / name).is_file(), name
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert summary["encode_rows"] == 8 and summary["maxsim_rows"] == 1


@pytest.mark.slow
def test_smoke_latency_table(smoke_run):
    out, _ = smoke_run
    table = pd.read_csv(out / "latency.csv")
    assert list(table.columns[:11]) == REQUIRED_COLUMNS and "peak_fraction" in table.columns
    # 2 models x (queries of 32 + documents of 64) x batch sizes (1, 2)
    assert len(table) == 8
    assert set(table["model"]) == {"fixture-LFM2-tiny", "fixture-ModernBERT-tiny"}
    assert sorted(set(zip(table["role"], table["seq_len"]))) == [("document", 64), ("query", 32)]
    assert sorted(set(table["batch_size"])) == [1, 2]
    assert set(table["weights"]) == {"random-init"} and set(table["device"]) == {"cpu"} and set(table["dtype"]) == {"float32"}
    for column in ["texts_per_s", "tokens_per_s", "p50_ms", "p95_ms", "peak_fraction"]:
        values = table[column].astype(float)
        assert values.map(math.isfinite).all() and (values > 0).all(), column
    assert (table["p95_ms"] >= table["p50_ms"]).all()
    assert (table["tokens_per_s"] / table["texts_per_s"]).round(6).eq(table["seq_len"]).all()


@pytest.mark.slow
def test_smoke_peak_fraction_is_relative_to_the_best_peak_probe(smoke_run):
    out, summary = smoke_run
    table = pd.read_csv(out / "latency.csv")
    probes = json.loads((out / "environment.json").read_text())["matmul_peak_probes"]
    assert summary["peak_flops"] == pytest.approx(max(probes["before"], probes["after"]))
    achieved = table["flops_per_token"] * table["tokens_per_s"]
    assert (table["peak_fraction"] * summary["peak_flops"]).to_numpy() == pytest.approx(achieved.to_numpy(), rel=1e-6)
    assert (table["gflops_per_s"] * 1e9).to_numpy() == pytest.approx(achieved.to_numpy(), rel=1e-6)


@pytest.mark.slow
def test_smoke_maxsim_environment_and_report(smoke_run):
    out, summary = smoke_run
    maxsim = pd.read_csv(out / "maxsim_latency.csv")
    assert len(maxsim) == 1 and int(maxsim.loc[0, "n_documents"]) == 200
    for column in ["p50_ms", "p95_ms", "documents_per_s", "gflops_per_s", "peak_fraction"]:
        assert math.isfinite(float(maxsim.loc[0, column])) and float(maxsim.loc[0, column]) > 0, column
    environment = json.loads((out / "environment.json").read_text())
    assert environment["dtype"] == "float32" and environment["threads"] >= 1
    assert environment["hardware"]["name"] and environment["packages"]["torch"]
    assert environment["matmul_peak_flops"] == pytest.approx(summary["peak_flops"]) and summary["peak_flops"] > 0
    assert "nn.Conv1d" in environment["lfm2_short_conv"]
    report = (out / "latency.md").read_text()
    assert "fixture-LFM2-tiny / fixture-ModernBERT-tiny" in report and ">= 0.90" in report
    verdicts = [line for line in report.splitlines() if line.startswith(("**on par**", "**not on par**"))]
    assert len(verdicts) == 1  # the median-based verdict; the fastest-call check has its own prefix
    assert "From the fastest calls: **" in report
    assert "random-init" in report and "GFLOP/s" in report


def test_latency_experiment_config_has_both_full_size_models():
    cfg = compose("latency", ["experiment=latency"])
    assert list(cfg.models) == ["lfm2_colbert_350m", "gte_moderncolbert_v1"]
    assert cfg.models.lfm2_colbert_350m.architecture.model_type == "lfm2"
    assert cfg.models.gte_moderncolbert_v1.architecture.config.num_hidden_layers == 22
    assert cfg.latency.query_length == 32 and list(cfg.latency.document_lengths) == [256, 512]
    assert cfg.latency.compare.candidate == cfg.models.lfm2_colbert_350m.name
    assert cfg.latency.compare.baseline == cfg.models.gte_moderncolbert_v1.name
    assert cfg.runtime.device == "cpu"
    # command-line overrides win over the experiment
    assert compose("latency", ["experiment=latency", "latency.max_batch_size=8"]).latency.max_batch_size == 8


def test_batch_sizes_respect_the_token_cap():
    assert latency.batch_sizes_for(32, 64, None) == (1, 2, 4, 8, 16, 32, 64)
    assert latency.batch_sizes_for(512, 64, 2048) == (1, 2, 4)
    assert latency.batch_sizes_for(4096, 64, 2048) == (1,)  # one text always runs


TINY_ARCHITECTURE = {
    "model_type": "lfm2",
    "config": {"vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "block_auto_adjust_ff_dim": False,
               "num_hidden_layers": 2, "full_attn_idxs": [1], "num_attention_heads": 2, "num_key_value_heads": 1,
               "max_position_embeddings": 128},
    "dense": [{"in_features": 16, "out_features": 8, "bias": False}],
    "query_length": 32, "document_length": 64, "published_parameters": None,
}


def hub_model(architecture=TINY_ARCHITECTURE):
    return OmegaConf.create({"name": "Hub-Model", "source": "nanobeir-test/not-in-any-cache", "revision": "main",
                             "path": None, "fixture": None, "architecture": architecture})


def test_auto_weights_fall_back_to_random_init_with_one_log_line(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with caplog.at_level(logging.WARNING, logger="nanobeir_ext.latency.timing"):
        model = latency.timed_model(hub_model(), mode="auto", device="cpu", dtype="float32",
                                    attn_implementation="sdpa", seed=0, cache=tmp_path)
    assert model.weights == "random-init" and model.vocab_size == 64
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not loadable offline" in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage()


def test_real_weights_mode_fails_instead_of_falling_back(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from models.checkpoint import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="not-in-any-cache"):
        latency.timed_model(hub_model(), mode="real", device="cpu", dtype="float32", attn_implementation="sdpa",
                            seed=0, cache=tmp_path)


def test_random_mode_never_loads_and_needs_an_architecture(tmp_path):
    model = latency.timed_model(hub_model(), mode="random", device="cpu", dtype="float32",
                                attn_implementation="sdpa", seed=0, cache=tmp_path)
    assert model.weights == "random-init"
    assert model.parameters == sum(p.numel() for p in model.owner.backbone.parameters()) + 16 * 8
    with pytest.raises(ValueError, match="no architecture config"):
        latency.timed_model(hub_model(architecture=None), mode="random", device="cpu", dtype="float32",
                            attn_implementation="sdpa", seed=0, cache=tmp_path)
    with pytest.raises(ValueError, match="valid choices: \\['auto', 'real', 'random'\\]"):
        latency.timed_model(hub_model(), mode="fake", device="cpu", dtype="float32", attn_implementation="sdpa",
                            seed=0, cache=tmp_path)
