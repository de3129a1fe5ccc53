"""A tiny LFM2 architecture (configs/architecture/ layout) for random-init tests: milliseconds to build."""
from __future__ import annotations

from typing import Any

TINY_LFM2: dict[str, Any] = {
    "model_type": "lfm2",
    "config": {"vocab_size": 97, "hidden_size": 32, "intermediate_size": 64, "block_auto_adjust_ff_dim": False,
               "num_hidden_layers": 3, "full_attn_idxs": [1], "num_attention_heads": 4, "num_key_value_heads": 2,
               "max_position_embeddings": 256},
    "dense": [{"in_features": 32, "out_features": 8, "bias": False}],
    "query_length": 32,
    "document_length": 64,
    "published_parameters": None,
}
