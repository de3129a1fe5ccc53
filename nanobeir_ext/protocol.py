"""What every retriever provides, and the one record of which model produced a set of numbers.

Two shapes of retriever, scored by the same evaluation: an :class:`Encoder` turns texts into
vectors (multi-vector ColBERT and BGE-M3, single-vector dense), which the pipeline stores and
ranks by exact top-k; a :class:`Ranker` (BM25) indexes a corpus itself and ranks directly.
The library defines these; ``models/`` implements them. Nothing in ``nanobeir_ext`` imports
``models``: runners wire the two together (``models.registry.load_encoder``).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # torch only for the annotation: the metric and report layers stay torch-free
    import torch

Role = Literal["query", "document"]
ROLES: tuple[Role, ...] = ("query", "document")
PLURAL: dict[str, str] = {"query": "queries", "document": "documents"}
# The kinds of retriever a model config can name (``kind``); colbert is the default, so configs
# written before the other kinds existed keep their meaning.
ENCODER_KINDS: tuple[str, ...] = ("colbert", "bge_m3", "dense")  # vectors -> store -> exact top-k
RANKER_KINDS: tuple[str, ...] = ("bm25",)  # index per (subset, document language), ranks directly
KINDS: tuple[str, ...] = ENCODER_KINDS + RANKER_KINDS
DEFAULT_KIND = "colbert"
Run = dict[str, dict[str, float]]  # query id -> {doc id: score}, in rank order (as nanobeir_ext.retrieval)


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
    kind: str = DEFAULT_KIND  # one of KINDS: how the model retrieves

    def describe(self) -> str:
        rev = f"@{self.revision[:12]}" if self.revision else ""
        params = f", {self.parameters:,} parameters" if self.parameters else ""
        return f"{self.kind}: `{self.source}{rev}`, weights **{self.weights}**, {self.dtype} on {self.device}{params}"

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
    kind: str = DEFAULT_KIND  # one of KINDS: which loader reads the model
    options: Mapping[str, Any] = field(default_factory=dict)  # the kind's own settings (prompts, BM25's k1 and b, ...)
    trust_remote_code: bool = False  # run modeling code shipped in the checkpoint (its auto_map): opt-in per model config


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


@runtime_checkable
class SearchIndex(Protocol):
    """The index of one corpus, as a :class:`Ranker` built or loaded it."""

    def search(self, query_ids: Sequence[str], query_texts: Sequence[str], k: int) -> Run:
        """Top ``k`` documents per query, best first, equal scores by document id descending
        (the harness's tie rule); a query may get fewer than ``k`` documents, or none."""
        ...


@runtime_checkable
class Ranker(Protocol):
    """A retriever that ranks directly (BM25): no vectors, one cached index per (subset, document
    language) under ``cache_dir``, searched by queries of every language."""

    info: ModelLabel

    def cache_identity(self) -> dict[str, Any]:
        """JSON-able identity of the rankings (library version, every setting); index keys hash it."""
        ...

    def is_indexed(self, cache_dir: Path, subset: str, language: str, doc_ids: Sequence[str],
                   texts: Sequence[str]) -> bool:
        """Whether this corpus's index is already cached (resume: it is loaded, not rebuilt)."""
        ...

    def index(self, cache_dir: Path, subset: str, language: str, doc_ids: Sequence[str],
              texts: Sequence[str]) -> SearchIndex:
        """The corpus's index: loaded from ``cache_dir`` when there, else built and saved atomically."""
        ...
