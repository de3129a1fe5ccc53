"""Encoder and MaxSim timing: warm-up, synchronised timing loops, percentiles, throughput records.

Conventions (stated once, used everywhere)
    * A timing is one call of the timed function on a ready batch, bracketed by device
      synchronisation (``torch.cuda.synchronize`` on CUDA) so asynchronous kernels are
      counted in full. Warm-up calls are run first and not recorded.
    * Encoders are fed synthetic token ids of the exact length (``batch_size x seq_len``,
      attention mask all ones, no padding), so tokenization is excluded for every model
      alike and every position is a useful token.
    * Throughput is computed from the median: ``texts_per_s = batch_size / p50``,
      ``tokens_per_s = batch_size x seq_len / p50``.
    * Model FLOPs per token (:class:`ModelFlops`): ``2 x matmul parameters`` (every
      parameter except the input embedding table, which is a lookup; the Dense projection
      included) plus, per attention layer, ``4 x attention width x attended keys`` (QKᵀ and
      attention x V, 2 FLOPs per multiply-add). Attended keys are the sequence length for
      global (and causal) layers and ``min(seq_len, window)`` for sliding-window layers: the
      useful work, not what a masked dense kernel executes. Convolutions, norms, softmax and
      activations are not counted.
    * ``peak_fraction = FLOPs per token x tokens_per_s / measured matmul peak``.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from nanobeir_ext.embeddings.ragged import RaggedEmbeddings
from nanobeir_ext.protocol import PLURAL, ModelLabel, Role

# A model forward on a tokenized batch ({"input_ids", "attention_mask"}) returning token vectors:
# ColBERTEncoder.forward_tokens and RandomInitColBERT.forward_tokens.
TokenForward = Callable[[dict[str, torch.Tensor]], torch.Tensor]


class TimedEncoder(Protocol):
    """What the encoder sweep needs: a label, the modules it counts FLOPs of, and the forward it times.

    Implemented by ``models.colbert.ColBERTEncoder`` and ``models.random_init.RandomInitColBERT``.
    """

    info: ModelLabel
    backbone: Any  # a transformers base model (its ``config`` gives vocabulary size and positions)
    dense: torch.nn.Module

    def forward_tokens(self, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...


@dataclass(frozen=True)
class TimingPolicy:
    """How many times to call: ``warmup`` unrecorded calls, then at least ``min_repeats`` timed
    calls and more (up to ``max_repeats``) until ``min_time_s`` of timed calls has passed."""

    warmup: int = 2
    min_repeats: int = 5
    max_repeats: int = 50
    min_time_s: float = 1.0

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.min_repeats < 1 or self.max_repeats < self.min_repeats or self.min_time_s < 0:
            raise ValueError(f"invalid timing policy {self}: need warmup >= 0, 1 <= min_repeats <= max_repeats, "
                             "min_time_s >= 0")


@dataclass(frozen=True)
class TimingStats:
    seconds: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.seconds:
            raise ValueError("no timings recorded")

    @property
    def p50_s(self) -> float:
        return float(np.percentile(self.seconds, 50))

    @property
    def p95_s(self) -> float:
        return float(np.percentile(self.seconds, 95))

    @property
    def mean_s(self) -> float:
        return float(np.mean(self.seconds))

    @property
    def min_s(self) -> float:
        """The fastest call: the one least disturbed by other work on a shared machine."""
        return float(min(self.seconds))


@dataclass(frozen=True)
class ModelFlops:
    """Forward FLOPs per token of an encoder (see the module docstring for what is counted)."""

    matmul_parameters: int
    attention_width: int  # query heads x head dim
    attention_windows: tuple[int | None, ...]  # one per attention layer; None = the whole sequence

    def per_token(self, seq_len: int) -> float:
        attended = sum(seq_len if window is None else min(seq_len, window) for window in self.attention_windows)
        return 2.0 * self.matmul_parameters + 4.0 * self.attention_width * attended


@dataclass(frozen=True)
class EncodeLatency:
    """One row of latency.csv: one model, role, batch size and sequence length."""

    model: str
    role: Role
    batch_size: int
    seq_len: int
    texts_per_s: float
    tokens_per_s: float
    p50_ms: float
    p95_ms: float
    device: str
    dtype: str
    weights: str
    peak_fraction: float
    gflops_per_s: float
    flops_per_token: float
    mean_ms: float
    min_ms: float
    repeats: int
    parameters: int


@dataclass(frozen=True)
class MaxSimLatency:
    """One row of maxsim_latency.csv: one query against ``n_documents`` documents."""

    n_documents: int
    query_tokens: int
    document_tokens: int
    dim: int
    k: int
    p50_ms: float
    p95_ms: float
    documents_per_s: float
    gflops_per_s: float
    peak_fraction: float
    device: str
    dtype: str
    min_ms: float
    repeats: int


def column_names(record_type: type) -> tuple[str, ...]:
    """A record type's fields, in order: the columns of the table its rows make."""
    return tuple(f.name for f in fields(record_type))


# The one schema of latency.csv and maxsim_latency.csv: the record types above, in field order.
# The first eleven latency columns are those every reader requires (nanobeir_ext.outputs.folders).
LATENCY_COLUMNS: tuple[str, ...] = column_names(EncodeLatency)
MAXSIM_COLUMNS: tuple[str, ...] = column_names(MaxSimLatency)


@dataclass(frozen=True)
class EncodingSweep:
    """Which settings one encoder is timed at: (role, length) pairs x power-of-two batch sizes."""

    lengths: tuple[tuple[Role, int], ...]  # e.g. (("query", 32), ("document", 256), ("document", 512))
    max_batch_size: int
    max_batch_tokens: int | None = None  # optional cap on batch_size x length (batch size 1 always runs)
    policy: TimingPolicy = TimingPolicy()
    seed: int = 0  # synthetic token ids

    def batch_sizes(self, seq_len: int) -> tuple[int, ...]:
        sizes = power_of_two_batch_sizes(self.max_batch_size)
        if self.max_batch_tokens is None:
            return sizes
        return tuple(b for b in sizes if b == 1 or b * seq_len <= self.max_batch_tokens)


@dataclass(frozen=True)
class MaxSimSetting:
    """One query of ``query_tokens`` vectors scored against ``n_documents`` of ``document_tokens``."""

    n_documents: int
    query_tokens: int
    document_tokens: int
    dim: int
    k: int
    chunk_tokens: int | None = None  # None: retrieval's per-device default


def attention_windows(config: object) -> tuple[int | None, ...]:
    """Per attention layer of a transformers config: None (attends to the whole sequence) or its window.

    Layers typed ``conv`` (LFM2's short convolutions) or anything else without attention are
    skipped; a config without ``layer_types`` has global attention in every layer.
    """
    layer_types = getattr(config, "layer_types", None)
    if not layer_types:
        return (None,) * int(getattr(config, "num_hidden_layers"))
    # ModernBERT's local_attention is the whole window; other models' sliding_window is.
    window = getattr(config, "local_attention", None) or getattr(config, "sliding_window", None)
    windows: list[int | None] = []
    for kind in layer_types:
        if kind == "full_attention":
            windows.append(None)
        elif kind == "sliding_attention":
            windows.append(int(window) if window else None)
    return tuple(windows)


def model_flops(backbone: torch.nn.Module, dense: torch.nn.Module) -> ModelFlops:
    """FLOP model of a transformers backbone followed by the Dense projection."""
    config = backbone.config
    embedding = backbone.get_input_embeddings()
    embedding_parameters = sum(p.numel() for p in embedding.parameters()) if embedding is not None else 0
    matmul = sum(p.numel() for p in backbone.parameters()) - embedding_parameters + sum(p.numel() for p in dense.parameters())
    heads = int(config.num_attention_heads)
    head_dim = getattr(config, "head_dim", None) or int(config.hidden_size) // heads
    return ModelFlops(matmul_parameters=matmul, attention_width=heads * int(head_dim),
                      attention_windows=attention_windows(config))


def synchronizer(device: str | torch.device) -> Callable[[], None]:
    """A function that waits for every queued kernel on ``device`` (a no-op on CPU)."""
    kind = torch.device(device).type
    if kind == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if kind == "mps":
        return torch.mps.synchronize
    return lambda: None


def time_calls(fn: Callable[[], object], policy: TimingPolicy, synchronize: Callable[[], None]) -> TimingStats:
    """Warm up, then time ``fn`` call by call with the device synchronised before and after each."""
    for _ in range(policy.warmup):
        fn()
    seconds: list[float] = []
    while len(seconds) < policy.max_repeats and (len(seconds) < policy.min_repeats or sum(seconds) < policy.min_time_s):
        synchronize()
        start = time.perf_counter()
        fn()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return TimingStats(tuple(seconds))


def power_of_two_batch_sizes(max_batch_size: int) -> tuple[int, ...]:
    """1, 2, 4, ... up to ``max_batch_size`` (included when it is not a power of two)."""
    if max_batch_size < 1:
        raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
    sizes = [1 << i for i in range(max_batch_size.bit_length()) if (1 << i) <= max_batch_size]
    if sizes[-1] != max_batch_size:
        sizes.append(max_batch_size)
    return tuple(sizes)


def synthetic_batch(batch_size: int, seq_len: int, vocab_size: int, *, device: str | torch.device = "cpu",
                    seed: int = 0) -> dict[str, torch.Tensor]:
    """``input_ids`` (random in ``[0, vocab_size)``) and an all-ones ``attention_mask``, both
    ``[batch_size, seq_len]`` on ``device``: every position is a real token."""
    if batch_size < 1 or seq_len < 1 or vocab_size < 1:
        raise ValueError(f"need positive batch_size, seq_len and vocab_size, got {batch_size}, {seq_len}, {vocab_size}")
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab_size, (batch_size, seq_len), generator=generator, dtype=torch.int64)
    ids = ids.to(device)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def measure_encoding(forward: TokenForward, label: ModelLabel, *, role: Role, seq_len: int,
                     batch_sizes: Sequence[int], vocab_size: int, flops: ModelFlops, peak_flops: float,
                     policy: TimingPolicy, seed: int = 0, progress: bool = True) -> list[EncodeLatency]:
    """Time ``forward`` on synthetic batches of exactly ``seq_len`` tokens, one row per batch size;
    ``label`` names the model on every row (name, device, dtype, weights, parameters)."""
    if peak_flops <= 0:
        raise ValueError(f"peak_flops must be positive, got {peak_flops}")
    synchronize = synchronizer(label.device)
    flops_per_token = flops.per_token(seq_len)
    rows = []
    for batch_size in tqdm(batch_sizes, desc=f"{label.name} {role} x{seq_len}", disable=not progress,
                           unit="batch size"):
        batch = synthetic_batch(batch_size, seq_len, vocab_size, device=label.device, seed=seed)
        with torch.inference_mode():
            stats = time_calls(lambda: forward(batch), policy, synchronize)
        tokens_per_s = batch_size * seq_len / stats.p50_s
        achieved = flops_per_token * tokens_per_s
        rows.append(EncodeLatency(
            model=label.name, role=role, batch_size=batch_size, seq_len=seq_len,
            texts_per_s=batch_size / stats.p50_s, tokens_per_s=tokens_per_s,
            p50_ms=1e3 * stats.p50_s, p95_ms=1e3 * stats.p95_s, device=label.device, dtype=label.dtype,
            weights=label.weights, peak_fraction=achieved / peak_flops, gflops_per_s=achieved / 1e9,
            flops_per_token=flops_per_token, mean_ms=1e3 * stats.mean_s, min_ms=1e3 * stats.min_s,
            repeats=len(stats.seconds), parameters=int(label.parameters or 0)))
    return rows


def sweep_encoder(encoder: TimedEncoder, sweep: EncodingSweep, *, peak_flops: float,
                  progress: bool = True) -> list[EncodeLatency]:
    """Every (role, length) of ``sweep`` at every batch size it allows, for one encoder."""
    config = encoder.backbone.config
    max_positions = getattr(config, "max_position_embeddings", None)
    flops = model_flops(encoder.backbone, encoder.dense)
    rows: list[EncodeLatency] = []
    for role, seq_len in sweep.lengths:
        if max_positions is not None and seq_len > max_positions:
            raise ValueError(f"{encoder.info.name}: {PLURAL[role]} of {seq_len} tokens exceed its {max_positions} "
                             "positions; lower latency.query_length / latency.document_lengths")
        rows += measure_encoding(encoder.forward_tokens, encoder.info, role=role, seq_len=seq_len,
                                 batch_sizes=sweep.batch_sizes(seq_len), vocab_size=int(config.vocab_size),
                                 flops=flops, peak_flops=peak_flops, policy=sweep.policy, seed=sweep.seed,
                                 progress=progress)
    return rows


def rescale_peak_fraction(latency: pd.DataFrame, measured_with: float, peak: float) -> pd.DataFrame:
    """``peak_fraction`` recomputed against ``peak`` for rows computed against ``measured_with``."""
    return latency.assign(peak_fraction=latency["peak_fraction"] * measured_with / peak)


def random_unit_vectors(n: int, dim: int, *, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    vectors = torch.randn((n, dim), generator=generator)
    return torch.nn.functional.normalize(vectors, dim=-1).to(dtype)


def synthetic_embeddings(n_texts: int, tokens: int, dim: int, *, seed: int, prefix: str,
                         dtype: torch.dtype = torch.float32) -> RaggedEmbeddings:
    """``n_texts`` texts of exactly ``tokens`` random unit vectors each."""
    vectors = random_unit_vectors(n_texts * tokens, dim, seed=seed, dtype=dtype)
    offsets = torch.arange(0, n_texts * tokens + 1, tokens, dtype=torch.int64)
    return RaggedEmbeddings(ids=tuple(f"{prefix}{i}" for i in range(n_texts)), vectors=vectors, offsets=offsets)


def measure_maxsim(setting: MaxSimSetting, *, peak_flops: float, device: str, policy: TimingPolicy,
                   seed: int = 0) -> MaxSimLatency:
    """Time exact MaxSim top-k of one query against ``setting.n_documents`` documents (float32 vectors).

    Timed: :func:`nanobeir_ext.retrieval.maxsim.maxsim_topk` end to end, with the document vectors
    already on ``device`` (a resident index, as in serving) and the query's copied in the
    call. FLOPs counted: the similarity matmul, ``2 x query_tokens x document tokens x dim``.
    """
    from nanobeir_ext.retrieval.maxsim import maxsim_topk

    s = setting
    if min(s.n_documents, s.query_tokens, s.document_tokens, s.dim, s.k) < 1:
        raise ValueError("n_documents, query_tokens, document_tokens, dim and k must all be positive")
    queries = synthetic_embeddings(1, s.query_tokens, s.dim, seed=seed, prefix="q")
    documents = synthetic_embeddings(s.n_documents, s.document_tokens, s.dim, seed=seed + 1, prefix="d")
    documents = RaggedEmbeddings(ids=documents.ids, vectors=documents.vectors.to(device), offsets=documents.offsets)
    stats = time_calls(lambda: maxsim_topk(queries, documents, s.k, device=device, chunk_tokens=s.chunk_tokens),
                       policy, synchronizer(device))
    flops = 2.0 * s.query_tokens * s.n_documents * s.document_tokens * s.dim
    return MaxSimLatency(
        n_documents=s.n_documents, query_tokens=s.query_tokens, document_tokens=s.document_tokens, dim=s.dim, k=s.k,
        p50_ms=1e3 * stats.p50_s, p95_ms=1e3 * stats.p95_s, documents_per_s=s.n_documents / stats.p50_s,
        gflops_per_s=flops / stats.p50_s / 1e9, peak_fraction=flops / stats.p50_s / peak_flops,
        device=device, dtype="float32", min_ms=1e3 * stats.min_s, repeats=len(stats.seconds))


def records_frame(records: Iterable[object], record_type: type) -> pd.DataFrame:
    """Records of ``record_type`` as a table, one column per field, in field order."""
    return pd.DataFrame([asdict(r) for r in records], columns=list(column_names(record_type)))  # type: ignore[call-overload]
