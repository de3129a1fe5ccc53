"""Full-size random-init encoders: architectures, parameter counts (on meta), forward, conv path."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from models.random_init import (
    Architecture,
    ParameterCount,
    backbone_config,
    build_random_colbert,
    check_published_count,
    count_parameters,
    select_lfm2_conv_path,
)

from tests.models.architectures import TINY_LFM2

ARCH_DIR = Path(__file__).resolve().parents[2] / "configs" / "architecture"


def load_architecture(name: str) -> Architecture:
    return Architecture.from_mapping(yaml.safe_load((ARCH_DIR / f"{name}.yaml").read_text()), where=name)


def test_lfm2_colbert_350m_has_exactly_the_published_parameter_count():
    architecture = load_architecture("lfm2_colbert_350m")
    count = count_parameters(architecture)  # built on the meta device: no memory
    assert count.backbone == 353_322_752 == architecture.published_parameters
    assert count.dense == 1024 * 128
    assert count.total == 353_453_824
    assert "matches the published 353,322,752" in check_published_count(architecture, count)


def test_lfm2_architecture_layout():
    config = backbone_config(load_architecture("lfm2_colbert_350m"))
    attention = [i for i, kind in enumerate(config.layer_types) if kind == "full_attention"]
    assert attention == [2, 5, 8, 10, 12, 14] and config.layer_types.count("conv") == 10
    assert (config.hidden_size, config.num_attention_heads, config.num_key_value_heads) == (1024, 16, 8)
    assert config.conv_L_cache == 3 and config.tie_word_embeddings
    assert config.rope_parameters["rope_theta"] == 1_000_000.0
    with torch.device("meta"):
        from transformers import AutoModel

        model = AutoModel.from_config(config)
    assert tuple(model.layers[0].feed_forward.w1.weight.shape) == (4608, 1024)  # 6656 auto-adjusted


def test_gte_moderncolbert_v1_parameter_count_and_layout():
    architecture = load_architecture("gte_moderncolbert_v1")
    count = count_parameters(architecture)
    # ModernBERT-base with 50,370 embedding rows + Dense 768 -> 128 (no published exact count).
    assert (count.backbone, count.dense, count.total) == (149_015_808, 98_304, 149_114_112)
    assert count.embedding == 50_370 * 768
    config = backbone_config(architecture)
    assert config.layer_types[:4] == ["full_attention", "sliding_attention", "sliding_attention", "full_attention"]
    assert config.layer_types.count("full_attention") == 8 and config.local_attention == 128
    assert config.rope_parameters["full_attention"]["rope_theta"] == 160_000.0
    assert config.rope_parameters["sliding_attention"]["rope_theta"] == 10_000.0
    assert "(none published)" in check_published_count(architecture, count)


def test_check_published_count_raises_on_a_mismatch():
    architecture = load_architecture("lfm2_colbert_350m")
    wrong = ParameterCount(backbone=353_322_751, embedding=0, dense=131_072)
    with pytest.raises(ValueError, match="353,322,751 parameters .*353,322,752 are published"):
        check_published_count(architecture, wrong)


def test_architecture_errors_name_the_missing_keys_and_valid_scopes():
    raw = yaml.safe_load((ARCH_DIR / "lfm2_colbert_350m.yaml").read_text())
    with pytest.raises(ValueError, match=r"missing \['dense'\]"):
        Architecture.from_mapping({k: v for k, v in raw.items() if k != "dense"})
    with pytest.raises(ValueError, match="valid choices: \\['backbone', 'backbone\\+dense'\\]"):
        Architecture.from_mapping({**raw, "published_parameters_scope": "everything"})


def test_random_init_colbert_forward_gives_unit_vectors_for_every_position():
    model = build_random_colbert(Architecture.from_mapping(TINY_LFM2), name="tiny", seed=3)
    # ids from 1: id 0 is the pad id, whose embedding row is zero (a zero vector at position 0)
    batch = {"input_ids": torch.randint(1, 97, (2, 11)), "attention_mask": torch.ones(2, 11, dtype=torch.long)}
    vectors = model.forward_tokens(batch)
    assert vectors.shape == (2, 11, 8) and vectors.dtype == torch.float32
    assert torch.isfinite(vectors).all()
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(2, 11), atol=1e-5)
    assert model.vocab_size == 97 and model.parameters.dense == 32 * 8
    assert (model.info.weights, model.info.source, model.info.dtype) == ("random-init", "architecture:lfm2", "float32")
    assert model.info.parameters == model.parameters.total
    same = build_random_colbert(Architecture.from_mapping(TINY_LFM2), name="tiny", seed=3).forward_tokens(batch)
    other = build_random_colbert(Architecture.from_mapping(TINY_LFM2), name="tiny", seed=4).forward_tokens(batch)
    assert torch.equal(vectors, same) and not torch.allclose(vectors, other)


def test_random_init_uses_the_requested_attention_kernel_and_dtype():
    model = build_random_colbert(Architecture.from_mapping(TINY_LFM2), name="tiny", dtype=torch.bfloat16)
    assert model.backbone.config._attn_implementation == "sdpa"
    assert next(model.backbone.parameters()).dtype == torch.bfloat16
    batch = {"input_ids": torch.zeros(1, 5, dtype=torch.long), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    assert model.forward_tokens(batch).dtype == torch.float32  # as ColBERTEncoder.forward_tokens


def test_lfm2_conv_path_on_cpu_is_the_torch_convolution(monkeypatch):
    from transformers.models.lfm2 import modeling_lfm2

    monkeypatch.setattr(modeling_lfm2, "is_fast_path_available", modeling_lfm2.is_fast_path_available)
    assert "nn.Conv1d" in select_lfm2_conv_path("auto", "cpu")
    with pytest.raises(RuntimeError, match="CUDA only"):
        select_lfm2_conv_path("require", "cpu")
    select_lfm2_conv_path("disable", "cuda")
    assert modeling_lfm2.is_fast_path_available is False
    with pytest.raises(ValueError, match="valid choices"):
        select_lfm2_conv_path("fast", "cpu")
