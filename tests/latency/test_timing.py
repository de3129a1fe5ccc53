"""Timing loops, statistics, FLOP accounting, throughput records and the latency report."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModel, Lfm2Config, ModernBertConfig

from nanobeir_ext.protocol import ModelLabel
from nanobeir_ext.latency.timing import (
    LATENCY_COLUMNS,
    MAXSIM_COLUMNS,
    EncodeLatency,
    EncodingSweep,
    MaxSimLatency,
    MaxSimSetting,
    ModelFlops,
    TimingPolicy,
    TimingStats,
    attention_windows,
    measure_encoding,
    measure_maxsim,
    model_flops,
    power_of_two_batch_sizes,
    records_frame,
    sweep_encoder,
    synchronizer,
    synthetic_batch,
    time_calls,
)
from nanobeir_ext.latency.report import (
    LatencyContext,
    compare_throughput,
    ratio_table,
    render_latency_markdown,
    throughput_ratios,
    verdict,
    write_latency_report,
)


# -- timing loop -------------------------------------------------------------------------------
def test_time_calls_warms_up_then_synchronises_around_every_timed_call():
    events: list[str] = []
    policy = TimingPolicy(warmup=2, min_repeats=4, max_repeats=4, min_time_s=0.0)
    stats = time_calls(lambda: events.append("call"), policy, lambda: events.append("sync"))
    assert events[:2] == ["call", "call"]  # warm-up, not bracketed, not recorded
    assert events[2:] == ["sync", "call", "sync"] * 4
    assert len(stats.seconds) == 4 and all(s >= 0 for s in stats.seconds)


def test_time_calls_keeps_timing_until_min_time_but_stops_at_max_repeats():
    calls = []
    slow = TimingPolicy(warmup=0, min_repeats=1, max_repeats=7, min_time_s=10.0)
    stats = time_calls(lambda: calls.append(1), slow, lambda: None)
    assert len(stats.seconds) == 7  # min_time_s never reached: capped by max_repeats
    enough = TimingPolicy(warmup=0, min_repeats=3, max_repeats=100, min_time_s=0.0)
    assert len(time_calls(lambda: None, enough, lambda: None).seconds) == 3


@pytest.mark.parametrize("bad", [dict(warmup=-1), dict(min_repeats=0), dict(min_repeats=5, max_repeats=4), dict(min_time_s=-1)])
def test_timing_policy_rejects_invalid_settings(bad):
    with pytest.raises(ValueError, match="invalid timing policy"):
        TimingPolicy(**bad)


def test_timing_stats_percentiles_match_numpy():
    seconds = (0.010, 0.012, 0.011, 0.050, 0.013, 0.009)
    stats = TimingStats(seconds)
    assert stats.p50_s == pytest.approx(np.percentile(seconds, 50))
    assert stats.p95_s == pytest.approx(np.percentile(seconds, 95))
    assert stats.p50_s < stats.p95_s <= max(seconds)
    with pytest.raises(ValueError, match="no timings"):
        TimingStats(())


def test_cpu_synchronizer_is_a_no_op():
    assert synchronizer("cpu")() is None


@pytest.mark.parametrize("maximum,expected", [(1, (1,)), (8, (1, 2, 4, 8)), (6, (1, 2, 4, 6)), (128, (1, 2, 4, 8, 16, 32, 64, 128))])
def test_power_of_two_batch_sizes(maximum, expected):
    assert power_of_two_batch_sizes(maximum) == expected


def test_power_of_two_batch_sizes_rejects_zero():
    with pytest.raises(ValueError, match="at least 1"):
        power_of_two_batch_sizes(0)


def test_synthetic_batch_has_exact_shape_full_mask_and_is_seeded():
    batch = synthetic_batch(3, 17, 50, seed=4)
    assert batch["input_ids"].shape == (3, 17) and batch["attention_mask"].shape == (3, 17)
    assert bool(batch["attention_mask"].eq(1).all())
    assert 0 <= int(batch["input_ids"].min()) and int(batch["input_ids"].max()) < 50
    assert torch.equal(batch["input_ids"], synthetic_batch(3, 17, 50, seed=4)["input_ids"])
    assert not torch.equal(batch["input_ids"], synthetic_batch(3, 17, 50, seed=5)["input_ids"])


# -- FLOP accounting -----------------------------------------------------------------------------
def test_model_flops_counts_parameters_and_attention_per_layer_kind():
    flops = ModelFlops(matmul_parameters=1000, attention_width=8, attention_windows=(None, 4, None))
    # 2 x 1000 + 4 x 8 x (10 + min(10, 4) + 10)
    assert flops.per_token(10) == 2000 + 4 * 8 * 24
    # shorter than the window: the window does not matter
    assert flops.per_token(3) == 2000 + 4 * 8 * 9


def test_attention_windows_of_lfm2_modernbert_and_plain_configs():
    lfm2 = Lfm2Config(num_hidden_layers=5, full_attn_idxs=[1, 3])
    assert attention_windows(lfm2) == (None, None)  # conv layers carry no attention
    modernbert = ModernBertConfig(num_hidden_layers=6, global_attn_every_n_layers=3, local_attention=128)
    assert attention_windows(modernbert) == (None, 128, 128, None, 128, 128)

    class Plain:
        num_hidden_layers = 3

    assert attention_windows(Plain()) == (None, None, None)


def test_model_flops_of_a_backbone_excludes_the_embedding_table_and_adds_dense():
    config = ModernBertConfig(vocab_size=100, pad_token_id=0, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                              num_attention_heads=4, local_attention=8, global_attn_every_n_layers=3)
    backbone = AutoModel.from_config(config)
    dense = torch.nn.Linear(32, 16, bias=False)
    flops = model_flops(backbone, dense)
    total = sum(p.numel() for p in backbone.parameters())
    assert flops.matmul_parameters == total - 100 * 32 + 32 * 16
    assert flops.attention_width == 32
    assert flops.attention_windows == (None, 8, 8)


# -- measurements ---------------------------------------------------------------------------------
def label(name: str = "m", weights: str = "random-init", parameters: int = 123) -> ModelLabel:
    return ModelLabel(name=name, source="architecture:test", revision=None, weights=weights, dtype="float32",
                      device="cpu", parameters=parameters)


def test_measure_encoding_rows_follow_from_the_timings():
    seen: list[tuple[int, ...]] = []

    def forward(batch):
        seen.append(tuple(batch["input_ids"].shape))
        return torch.ones(batch["input_ids"].shape + (4,))

    flops = ModelFlops(matmul_parameters=10_000, attention_width=8, attention_windows=(None,))
    policy = TimingPolicy(warmup=1, min_repeats=3, max_repeats=3, min_time_s=0.0)
    rows = measure_encoding(forward, label(), role="document", seq_len=12, batch_sizes=(1, 4), vocab_size=30,
                            flops=flops, peak_flops=1e9, policy=policy, progress=False)
    assert [r.batch_size for r in rows] == [1, 4]
    assert set(seen) == {(1, 12), (4, 12)} and len(seen) == 2 * (1 + 3)
    for row in rows:
        p50_s = row.p50_ms / 1e3
        assert row.texts_per_s == pytest.approx(row.batch_size / p50_s)
        assert row.tokens_per_s == pytest.approx(row.batch_size * 12 / p50_s)
        assert row.flops_per_token == flops.per_token(12)
        assert row.peak_fraction == pytest.approx(row.flops_per_token * row.tokens_per_s / 1e9)
        assert row.p95_ms >= row.p50_ms >= row.min_ms > 0 and row.repeats == 3
        assert (row.weights, row.device, row.dtype, row.role, row.seq_len) == ("random-init", "cpu", "float32", "document", 12)
        assert (row.model, row.parameters) == ("m", 123)


def test_measure_encoding_rejects_a_non_positive_peak():
    flops = ModelFlops(1, 1, ())
    with pytest.raises(ValueError, match="peak_flops"):
        measure_encoding(lambda b: b, label(), role="query", seq_len=2, batch_sizes=(1,), vocab_size=3, flops=flops,
                         peak_flops=0.0, policy=TimingPolicy(), progress=False)


def test_measure_maxsim_times_one_query_against_n_documents():
    policy = TimingPolicy(warmup=1, min_repeats=2, max_repeats=2, min_time_s=0.0)
    row = measure_maxsim(MaxSimSetting(n_documents=40, query_tokens=8, document_tokens=16, dim=32, k=5),
                         peak_flops=1e10, device="cpu", policy=policy)
    assert row.n_documents == 40 and row.repeats == 2 and row.k == 5
    assert row.documents_per_s == pytest.approx(40 / (row.p50_ms / 1e3))
    flops = 2 * 8 * 40 * 16 * 32
    assert row.gflops_per_s == pytest.approx(flops / (row.p50_ms / 1e3) / 1e9)
    assert row.peak_fraction == pytest.approx(row.gflops_per_s * 1e9 / 1e10)
    with pytest.raises(ValueError, match="positive"):
        measure_maxsim(MaxSimSetting(n_documents=0, query_tokens=8, document_tokens=16, dim=32, k=5),
                       peak_flops=1e10, device="cpu", policy=policy)


def test_records_frame_puts_the_required_columns_first():
    flops = ModelFlops(100, 4, (None,))
    rows = measure_encoding(lambda b: b["input_ids"], label(weights="real"), role="query", seq_len=4, batch_sizes=(1,),
                            vocab_size=5, flops=flops, peak_flops=1e9,
                            policy=TimingPolicy(warmup=0, min_repeats=1, max_repeats=1, min_time_s=0), progress=False)
    frame = records_frame(rows, EncodeLatency)
    assert list(frame.columns) == list(LATENCY_COLUMNS)
    assert list(frame.columns[:11]) == ["model", "role", "batch_size", "seq_len", "texts_per_s", "tokens_per_s",
                                        "p50_ms", "p95_ms", "device", "dtype", "weights"]
    assert list(records_frame([], MaxSimLatency).columns) == list(MAXSIM_COLUMNS)


def test_sweep_batch_sizes_respect_the_token_cap():
    assert EncodingSweep((), 64).batch_sizes(32) == (1, 2, 4, 8, 16, 32, 64)
    assert EncodingSweep((), 64, max_batch_tokens=2048).batch_sizes(512) == (1, 2, 4)
    assert EncodingSweep((), 64, max_batch_tokens=2048).batch_sizes(4096) == (1,)  # one text always runs


def test_sweep_encoder_times_every_length_and_refuses_lengths_beyond_the_positions():
    from models.random_init import Architecture, build_random_colbert
    from tests.models.architectures import TINY_LFM2

    encoder = build_random_colbert(Architecture.from_mapping(TINY_LFM2), name="tiny")
    policy = TimingPolicy(warmup=0, min_repeats=1, max_repeats=1, min_time_s=0)
    rows = sweep_encoder(encoder, EncodingSweep((("query", 8), ("document", 16)), 2, policy=policy), peak_flops=1e12,
                         progress=False)
    assert [(r.role, r.seq_len, r.batch_size) for r in rows] == [("query", 8, 1), ("query", 8, 2),
                                                                 ("document", 16, 1), ("document", 16, 2)]
    assert {(r.model, r.weights, r.parameters) for r in rows} == {("tiny", "random-init", encoder.parameters.total)}
    with pytest.raises(ValueError, match="documents of 300 tokens exceed its 256 positions"):
        sweep_encoder(encoder, EncodingSweep((("document", 300),), 1, policy=policy), peak_flops=1e12, progress=False)


# -- report -----------------------------------------------------------------------------------------
def _latency_table(ratios: dict[tuple[str, int, int], float]) -> pd.DataFrame:
    rows = []
    for (role, seq_len, batch_size), ratio in ratios.items():
        base = 100.0 * batch_size
        for model, texts in (("LFM2", ratio * base), ("GTE", base)):
            rows.append(dict(model=model, role=role, batch_size=batch_size, seq_len=seq_len, texts_per_s=texts,
                             tokens_per_s=texts * seq_len, p50_ms=1e3 * batch_size / texts, p95_ms=1e3 * batch_size / texts,
                             min_ms=0.5e3 * batch_size / texts if model == "LFM2" else 1e3 * batch_size / texts,
                             device="cpu", dtype="float32", weights="random-init", peak_fraction=0.5, repeats=3))
    return pd.DataFrame(rows)


def _context(**changes) -> LatencyContext:
    values = dict(hardware="Test CPU, 2 threads", device="cpu", dtype="float32", threads=2, peak_flops=2e11,
                  models=(label("LFM2", parameters=353_453_824), label("GTE", parameters=149_114_112)))
    values.update(changes)
    return LatencyContext(**values)


def test_throughput_ratios_and_verdict_use_the_threshold_inclusively():
    table = _latency_table({("query", 32, 1): 0.9, ("query", 32, 2): 1.2, ("document", 256, 1): 0.95})
    ratios = throughput_ratios(table, "LFM2", "GTE")
    assert list(ratios["role"]) == ["query", "query", "document"]
    assert ratios["ratio"].tolist() == pytest.approx([0.9, 1.2, 0.95])
    line = verdict(ratios, "LFM2", "GTE", 0.9)
    assert line.startswith("**on par**") and "0.90" in line
    worse = verdict(ratios, "LFM2", "GTE", 0.91)
    assert worse.startswith("**not on par**") and "1 of 3" in worse and "queries of 32 tokens at batch size 1" in worse


def test_ratios_from_the_fastest_calls_use_min_ms():
    table = _latency_table({("query", 32, 1): 0.5, ("query", 32, 4): 1.0})
    fastest = throughput_ratios(table, "LFM2", "GTE", fastest=True)
    assert fastest["ratio"].tolist() == pytest.approx([1.0, 2.0])  # LFM2's fastest call is twice its median


def test_ratio_table_has_batch_sizes_as_rows_and_settings_as_columns():
    table = _latency_table({("query", 32, 1): 1.0, ("query", 32, 2): 0.5, ("document", 512, 1): 2.0})
    pivot = ratio_table(throughput_ratios(table, "LFM2", "GTE"))
    assert list(pivot.columns) == ["query x32", "document x512"]
    assert pivot.loc[2, "query x32"] == pytest.approx(0.5)
    assert math.isnan(pivot.loc[2, "document x512"])


def test_throughput_ratios_name_an_unknown_model():
    with pytest.raises(ValueError, match="models measured: \\['GTE', 'LFM2'\\]"):
        throughput_ratios(_latency_table({("query", 32, 1): 1.0}), "LFM2-ColBERT", "GTE")


def test_report_is_labelled_with_hardware_weights_peak_and_threshold(tmp_path):
    table = _latency_table({("query", 32, 1): 0.5, ("document", 256, 1): 1.5, ("document", 256, 2): 1.4})
    maxsim = pd.DataFrame([dict(n_documents=10, query_tokens=32, document_tokens=256, dim=128, k=5, p50_ms=1.0,
                                p95_ms=2.0, documents_per_s=1e4, gflops_per_s=21.0, peak_fraction=0.1, device="cpu")])
    comparison = compare_throughput(table, "LFM2", "GTE", 0.9)
    assert comparison.verdict.startswith("**not on par**") and comparison.fastest_verdict.startswith("**on par**")
    path = write_latency_report(table, maxsim, _context(), comparison, tmp_path)
    text = path.read_text()
    assert "Test CPU, 2 threads" in text and "random-init" in text
    assert "200.0 GFLOP/s" in text  # the measured peak
    assert ">= 0.90" in text and "**not on par**" in text
    assert "| 1 | 0.50 | 1.50 |" in text  # batch size 1: query ratio, document ratio
    assert "| 1 | 1.00 | 3.00 |" in text  # the same from the fastest calls
    assert "From the fastest calls: **on par**" in text
    assert (tmp_path / "figures" / "throughput_vs_batch_size.png").stat().st_size > 1000
    assert "figures/throughput_vs_batch_size.png" in text


def test_report_without_random_init_models_has_no_random_init_banner():
    table = _latency_table({("query", 32, 1): 1.0}).assign(weights="real")
    context = _context(models=(label("LFM2", "real", 1), label("GTE", "real", 1)))
    text = render_latency_markdown(table, pd.DataFrame(), context, compare_throughput(table, "LFM2", "GTE", 0.9))
    assert "Random-init models" not in text and "Weights: **real**" in text
