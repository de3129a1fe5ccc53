"""The encoder protocol every retriever implements (ColBERT now; BM25 or dense later)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Protocol, Sequence, runtime_checkable

import torch

Role = Literal["query", "document"]
ROLES: tuple[Role, ...] = ("query", "document")


@dataclass(frozen=True)
class EncodeOutput:
    """Token embeddings of a list of texts, in input order, on CPU."""

    embeddings: list[torch.Tensor]  # one [n_tokens_i, dim] tensor per text
    truncated: int = 0  # texts cut at the role's length limit
    tokens: int = 0  # real (non-padding) input tokens processed
    padded_tokens: int = 0  # input positions processed, padding included


@dataclass(frozen=True)
class EncoderInfo:
    """What produced the vectors: goes into cache keys and into every output label."""

    name: str  # short label used in tables, e.g. "LFM2-ColBERT-350M"
    source: str  # hub id or local folder
    revision: str | None  # hub commit, or None for a local folder
    weights: str  # "real" or "random-init"
    weights_hash: str | None  # content hash of local weights (cache identity for folders)
    dtype: str  # "float32" / "bfloat16"
    device: str
    parameters: int
    settings: Mapping[str, Any] = field(default_factory=dict)  # every setting that changes vectors


@runtime_checkable
class Encoder(Protocol):
    info: EncoderInfo

    def encode(self, texts: Sequence[str], role: Role, *, progress: bool = True, desc: str | None = None) -> EncodeOutput:
        """Encode texts for a role; must be deterministic and batch-invariant."""
        ...

    def cache_identity(self) -> dict[str, Any]:
        """JSON-able identity of the vectors this encoder produces (model, revision or
        weights hash, dtype and every encoder setting); the store keys on it."""
        ...
