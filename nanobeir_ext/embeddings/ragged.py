"""Ragged token embeddings: one flat ``[n_tokens, dim]`` tensor plus offsets.

This is the one shape that flows between encoders, the embedding store and
retrieval: text ``i`` owns rows ``offsets[i]:offsets[i + 1]`` of ``vectors``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass(frozen=True)
class RaggedEmbeddings:
    ids: tuple[str, ...]
    vectors: torch.Tensor  # [n_tokens, dim], L2-normalised rows
    offsets: torch.Tensor  # int64 [len(ids) + 1], offsets[0] == 0

    def __post_init__(self) -> None:
        if self.offsets.dtype != torch.int64 or self.offsets.dim() != 1:
            raise ValueError("offsets must be a 1-D int64 tensor")
        if self.offsets.numel() != len(self.ids) + 1:
            raise ValueError(f"{len(self.ids)} ids need {len(self.ids) + 1} offsets, got {self.offsets.numel()}")
        if self.vectors.dim() != 2:
            raise ValueError("vectors must be [n_tokens, dim]")
        if int(self.offsets[0]) != 0 or int(self.offsets[-1]) != self.vectors.shape[0]:
            raise ValueError("offsets must start at 0 and end at the number of vectors")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def item(self, index: int) -> torch.Tensor:
        """The ``[n_tokens_i, dim]`` vectors of text ``index`` (a view)."""
        return self.vectors[int(self.offsets[index]) : int(self.offsets[index + 1])]

    def to_list(self) -> list[torch.Tensor]:
        return [self.item(i) for i in range(len(self))]

    @classmethod
    def from_list(cls, ids: Sequence[str], tensors: Sequence[torch.Tensor], dim: int | None = None) -> "RaggedEmbeddings":
        if len(ids) != len(tensors):
            raise ValueError(f"{len(ids)} ids but {len(tensors)} tensors")
        lengths = torch.tensor([t.shape[0] for t in tensors], dtype=torch.int64)
        offsets = torch.zeros(len(tensors) + 1, dtype=torch.int64)
        offsets[1:] = torch.cumsum(lengths, 0)
        if tensors:
            vectors = torch.cat(list(tensors), dim=0)
        else:
            vectors = torch.zeros((0, dim or 0), dtype=torch.float32)
        return cls(ids=tuple(ids), vectors=vectors.contiguous(), offsets=offsets)
