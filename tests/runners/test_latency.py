"""End to end: the latency_smoke experiment through Hydra's compose API; configs; weight fallback."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from models.registry import load_for_timing
from nanobeir_ext.protocol import EncoderRequest
from runners import latency
from tests.helpers import compose
from tests.models.architectures import TINY_LFM2

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


def test_plan_is_typed_with_the_dtype_resolved_once(tmp_path):
    import torch

    plan = latency.build_plan(smoke_cfg(tmp_path))
    assert plan.dtype is torch.float32 and plan.dtype_name == "float32"
    assert [m.request.name for m in plan.models] == ["fixture-LFM2-tiny", "fixture-ModernBERT-tiny"]
    assert [m.request.fixture for m in plan.models] == ["lfm2", "modernbert"]
    assert plan.sweep.lengths == (("query", 32), ("document", 64)) and plan.sweep.batch_sizes(64) == (1, 2)
    full = latency.build_plan(compose("latency", ["experiment=latency"]))
    assert [m.architecture.model_type for m in full.models] == ["lfm2", "modernbert"]
    assert full.sweep.policy.max_repeats == 50 and full.maxsim.n_documents == 10000


def test_plan_rejects_an_unknown_weight_mode_and_an_unmeasured_comparison_model(tmp_path):
    with pytest.raises(ValueError, match="valid choices: \\['auto', 'real', 'random'\\]"):
        latency.build_plan(smoke_cfg(tmp_path, "latency.weights=fake"))
    with pytest.raises(ValueError, match="latency.compare.candidate 'LFM2-ColBERT-350M' is not a configured model"):
        latency.build_plan(smoke_cfg(tmp_path, "latency.compare.candidate=LFM2-ColBERT-350M"))


def hub_model(architecture=TINY_LFM2):
    from models.random_init import Architecture

    request = EncoderRequest(name="Hub-Model", source="nanobeir-test/not-in-any-cache", revision="main")
    return request, None if architecture is None else Architecture.from_mapping(architecture)


def load(mode: str, cache: Path, architecture=TINY_LFM2):
    request, arch = hub_model(architecture)
    return load_for_timing(request, arch, weights=mode, device="cpu", dtype=torch.float32, cache_dir=cache,
                           attn_implementation="sdpa", seed=0)


def test_auto_weights_fall_back_to_random_init_with_one_log_line(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with caplog.at_level(logging.WARNING, logger="models.registry"):
        model = load("auto", tmp_path)
    assert model.info.weights == "random-init" and model.info.source == "architecture:lfm2"
    assert model.backbone.config.vocab_size == 97
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not loadable offline" in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage()


def test_real_weights_mode_fails_instead_of_falling_back(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from models.checkpoint import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="not-in-any-cache"):
        load("real", tmp_path)


def test_random_mode_never_loads_and_needs_an_architecture(tmp_path):
    model = load("random", tmp_path)
    assert model.info.weights == "random-init"
    assert model.info.parameters == sum(p.numel() for p in model.backbone.parameters()) + 32 * 8
    with pytest.raises(ValueError, match="no architecture config"):
        load("random", tmp_path, architecture=None)
    with pytest.raises(ValueError, match="valid choices: \\['auto', 'real', 'random'\\]"):
        load("fake", tmp_path)


def test_a_fixture_is_timed_from_its_checkpoint_even_in_random_mode(shared_cache):
    request = EncoderRequest(name="tiny", source="fixture", fixture="modernbert")
    model = load_for_timing(request, None, weights="random", device="cpu", dtype=torch.float32,
                            cache_dir=shared_cache, attn_implementation="sdpa")
    assert (model.info.source, model.info.weights) == ("fixture:modernbert", "random-init")


def test_latency_smoke_inherits_latency_and_architectures_stay_out_of_evaluation_configs():
    smoke = compose("latency", ["experiment=latency_smoke"])
    full = compose("latency", ["experiment=latency"])
    assert list(smoke.models) == list(full.models)
    assert [m.fixture for m in smoke.models.values()] == ["lfm2", "modernbert"]
    assert all(m.get("architecture") is None for m in smoke.models.values())
    # what the smoke does not change is latency.yaml's
    assert (smoke.latency.query_length, smoke.latency.seed, smoke.latency.compare.on_par_threshold) == (32, 0, 0.9)
    evaluation = compose("evaluate", ["experiment=paper"])
    assert all("architecture" not in m for m in evaluation.models.values())
