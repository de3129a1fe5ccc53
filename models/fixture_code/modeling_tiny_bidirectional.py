"""A tiny bidirectional LFM2-style encoder: the modeling code that nanobeir-ext's remote-code fixture
checkpoint ships (``models.fixtures``, fixture ``lfm2_remote``), for transformers' ``AutoModel`` with
``trust_remote_code=True`` through the ``auto_map`` of its ``config.json``.

Like LiquidAI's ``Lfm2BidirectionalModel``, gated short convolutions alternate with attention and
neither is causal: the convolution is centred, attention sees every real token. Padding is masked
out of both. Plain torch, no transformers internals, so its vectors stay fixed across transformers
versions. Random weights: it tests the harness, it is not a model of anything.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput


class TinyBidirectionalConfig(PretrainedConfig):
    model_type = "tiny_bidirectional"

    def __init__(self, vocab_size: int = 2000, hidden_size: int = 64, intermediate_size: int = 128,
                 num_attention_heads: int = 4, layer_types: list[str] | None = None, conv_kernel: int = 3,
                 max_position_embeddings: int = 1024, norm_eps: float = 1e-5, **kwargs) -> None:
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_attention_heads = num_attention_heads
        self.layer_types = list(layer_types or ["conv", "attention", "conv", "attention"])
        self.num_hidden_layers = len(self.layer_types)
        self.conv_kernel = conv_kernel
        self.max_position_embeddings = max_position_embeddings
        self.norm_eps = norm_eps
        super().__init__(**kwargs)


class ShortConv(nn.Module):
    """Gated depthwise convolution centred on each token (non-causal); padding feeds no neighbour."""

    def __init__(self, config: TinyBidirectionalConfig) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.in_proj = nn.Linear(hidden, 2 * hidden, bias=False)
        self.conv = nn.Conv1d(hidden, hidden, config.conv_kernel, padding=config.conv_kernel // 2, groups=hidden, bias=False)
        self.out_proj = nn.Linear(hidden, hidden, bias=False)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        gate, value = self.in_proj(hidden).chunk(2, dim=-1)
        mixed = (gate * value) * mask[..., None]
        return self.out_proj(self.conv(mixed.transpose(1, 2)).transpose(1, 2))


class Attention(nn.Module):
    """Full (bidirectional) self-attention over the real tokens."""

    def __init__(self, config: TinyBidirectionalConfig) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, width = hidden.shape
        q, k, v = (t.view(batch, length, self.heads, width // self.heads).transpose(1, 2) for t in self.qkv(hidden).chunk(3, dim=-1))
        keys = mask.bool()[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, width))


class Block(nn.Module):
    def __init__(self, config: TinyBidirectionalConfig, layer_type: str) -> None:
        super().__init__()
        if layer_type not in ("conv", "attention"):
            raise ValueError(f"layer type {layer_type!r}; valid: conv, attention")
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps)
        self.mixer = ShortConv(config) if layer_type == "conv" else Attention(config)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps)
        self.ffn = nn.Sequential(nn.Linear(config.hidden_size, config.intermediate_size, bias=False), nn.GELU(),
                                 nn.Linear(config.intermediate_size, config.hidden_size, bias=False))

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = hidden + self.mixer(self.norm(hidden), mask)
        return hidden + self.ffn(self.ffn_norm(hidden))


class TinyBidirectionalModel(PreTrainedModel):
    config_class = TinyBidirectionalConfig
    base_model_prefix = "model"
    _supports_sdpa = True

    def __init__(self, config: TinyBidirectionalConfig) -> None:
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.layers = nn.ModuleList(Block(config, layer_type) for layer_type in config.layer_types)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs) -> BaseModelOutput:
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        mask = mask.to(self.embed_tokens.weight.dtype)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
        hidden = self.embed_tokens(input_ids) + self.embed_positions(positions)
        for layer in self.layers:
            hidden = layer(hidden, mask)
        return BaseModelOutput(last_hidden_state=self.norm(hidden))
