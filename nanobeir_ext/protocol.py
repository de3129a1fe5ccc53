"""What every retriever provides, and the one record of which model produced a set of numbers.

The library defines these; ``models/`` implements them. Nothing in ``nanobeir_ext`` imports
``models``: runners wire the two together (``models.registry.load_encoder``).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # torch only for the annotation: the metric and report layers stay torch-free
    import torch

Role = Literal["query", "document"]
ROLES: tuple[Role, ...] = ("query", "document")
PLURAL: dict[str, str] = {"query": "queries", "document": "documents"}


@dataclass(frozen=True)
class EncodeOutput:
    """Token embeddings of a list of texts, in input order, on CPU."""

    embeddings: list[torch.Tensor]  # one [n_tokens_i, dim] tensor per text
    truncated: int = 0  # texts cut at the role's length limit
    tokens: int = 0  # real (non-padding) input tokens processed
    padded_tokens: int = 0  # input positions processed, padding included


@dataclass(frozen=True)
class ModelLabel:
    """Which model produced these numbers: carried from the encoder through evaluation, latency,
    ``environment.json`` and every report (one record, one ``to_dict``/``from_dict``)."""

    name: str  # short label used in tables, e.g. "LFM2-ColBERT-350M"
    source: str  # hub id, local folder, or "fixture:<architecture>"
    revision: str | None  # hub commit, or None for a local folder
    weights: str  # "real" or "random-init"
    dtype: str  # "float32" / "bfloat16"
    device: str
    parameters: int | None = None
    weights_hash: str | None = None  # content hash of local weights (cache identity for folders)
    settings: Mapping[str, Any] = field(default_factory=dict)  # every setting that changes vectors

    def describe(self) -> str:
        rev = f"@{self.revision[:12]}" if self.revision else ""
        params = f", {self.parameters:,} parameters" if self.parameters else ""
        return f"`{self.source}{rev}`, weights **{self.weights}**, {self.dtype} on {self.device}{params}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "settings": dict(self.settings)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelLabel:
        """Read back what :meth:`to_dict` wrote (extra keys, such as a cache identity, are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class EncoderRequest:
    """Which encoder to load, as configured: the input of ``models.registry.load_encoder``.

    Exactly one way is used: ``fixture`` (a tiny random-init architecture; with a ``path`` too it is
    an error), else ``path`` (a local checkpoint folder), which wins over ``source`` (a hub repo id
    at ``revision``).
    """

    name: str
    source: str
    revision: str | None = None
    path: str | None = None
    fixture: str | None = None
    query_length: int | None = None  # None: the checkpoint's own setting
    document_length: int | None = None
    batch_tokens: int | None = None  # padded tokens per encoder batch; None: the encoder's default
    padding_side: str | None = None  # "left" / "right"; None: the tokenizer's own side (PyLate's default)


def slug(name: str) -> str:
    """A model name as a file name (run files, figures, model-index blocks)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


@runtime_checkable
class Encoder(Protocol):
    info: ModelLabel

    def encode(self, texts: Sequence[str], role: Role, *, progress: bool = True, desc: str | None = None) -> EncodeOutput:
        """Encode texts for a role; must be deterministic and batch-invariant."""
        ...

    def cache_identity(self) -> dict[str, Any]:
        """JSON-able identity of the vectors this encoder produces (model, revision or
        weights hash, dtype and every encoder setting); the store keys on it."""
        ...
