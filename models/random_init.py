"""Full-size ColBERT encoders with random weights, built from an architecture config.

Throughput does not depend on weight values, so when the published checkpoints cannot be
loaded (no hub access) the latency runner times these instead: the same transformers
backbone class, sizes, attention layout and Dense projection, initialised by the model's
own ``_init_weights`` (finite, normal-range values: uninitialised memory could hold
denormals or NaNs that slow CPU kernels down). Every output built from them is labelled
``weights=random-init``.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel

from models.colbert import dtype_name
from models.projection import DenseConfig, DenseStack
from nanobeir_ext.protocol import ModelLabel

log = logging.getLogger(__name__)

ParameterScope = Literal["backbone", "backbone+dense"]
PARAMETER_SCOPES: tuple[str, ...] = ("backbone", "backbone+dense")
ConvKernelMode = Literal["auto", "require", "disable"]
CONV_KERNEL_MODES: tuple[str, ...] = ("auto", "require", "disable")


@dataclass(frozen=True)
class Architecture:
    """A ``configs/architecture/*.yaml`` file: backbone config kwargs, Dense layers, lengths, prefixes."""

    model_type: str
    config: Mapping[str, Any]
    dense: tuple[DenseConfig, ...]
    query_length: int
    document_length: int
    query_prefix: str = "[Q] "
    document_prefix: str = "[D] "
    published_parameters: int | None = None
    published_parameters_scope: ParameterScope = "backbone"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str = "architecture config") -> "Architecture":
        required = ("model_type", "config", "dense", "query_length", "document_length")
        missing = [key for key in required if raw.get(key) is None]
        if missing:
            raise ValueError(f"{where}: missing {missing}; found keys {sorted(raw)}")
        scope = str(raw.get("published_parameters_scope") or "backbone")
        if scope not in PARAMETER_SCOPES:
            raise ValueError(f"{where}: published_parameters_scope {scope!r}; valid choices: {list(PARAMETER_SCOPES)}")
        dense = tuple(DenseConfig.from_dict(dict(layer), where=f"{where} dense[{i}]") for i, layer in enumerate(raw["dense"]))
        published = raw.get("published_parameters")
        return cls(
            model_type=str(raw["model_type"]),
            config=dict(raw["config"]),
            dense=dense,
            query_length=int(raw["query_length"]),
            document_length=int(raw["document_length"]),
            query_prefix=str(raw.get("query_prefix", "[Q] ")),
            document_prefix=str(raw.get("document_prefix", "[D] ")),
            published_parameters=None if published is None else int(published),
            published_parameters_scope=scope,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class ParameterCount:
    backbone: int  # every backbone parameter (a tied embedding counted once)
    embedding: int  # the input embedding table (a lookup, not a matmul)
    dense: int

    @property
    def total(self) -> int:
        return self.backbone + self.dense

    @property
    def matmul(self) -> int:
        """Parameters that multiply every token: all but the embedding table."""
        return self.backbone - self.embedding + self.dense

    def in_scope(self, scope: ParameterScope) -> int:
        return self.backbone if scope == "backbone" else self.total


def backbone_config(architecture: Architecture, attn_implementation: str = "sdpa") -> PretrainedConfig:
    config = AutoConfig.for_model(architecture.model_type, **dict(architecture.config))
    config._attn_implementation = attn_implementation
    return config


def count_parameters(architecture: Architecture) -> ParameterCount:
    """Parameter counts of the full-size model, built on the ``meta`` device (no memory, no init)."""
    with torch.device("meta"):
        backbone = AutoModel.from_config(backbone_config(architecture))
        dense = DenseStack.from_configs(architecture.dense)
    return parameter_count(backbone, dense)


def parameter_count(backbone: nn.Module, dense: nn.Module) -> ParameterCount:
    embedding = backbone.get_input_embeddings() if hasattr(backbone, "get_input_embeddings") else None
    return ParameterCount(
        backbone=sum(p.numel() for p in backbone.parameters()),  # parameters() yields a tied tensor once
        embedding=0 if embedding is None else sum(p.numel() for p in embedding.parameters()),
        dense=sum(p.numel() for p in dense.parameters()),
    )


def check_published_count(architecture: Architecture, count: ParameterCount) -> str:
    """A one-line comparison with the published count; raises when they differ."""
    if architecture.published_parameters is None:
        return f"{count.backbone:,} backbone + {count.dense:,} dense = {count.total:,} parameters (none published)"
    ours = count.in_scope(architecture.published_parameters_scope)
    if ours != architecture.published_parameters:
        raise ValueError(
            f"{architecture.model_type}: built {ours:,} parameters ({architecture.published_parameters_scope}) but "
            f"{architecture.published_parameters:,} are published; check configs/architecture")
    return (f"{count.backbone:,} backbone + {count.dense:,} dense = {count.total:,} parameters; "
            f"{architecture.published_parameters_scope} matches the published {architecture.published_parameters:,}")


@dataclass
class RandomInitColBERT:
    """Backbone + Dense + L2 normalisation over token ids: the ColBERT forward, without a tokenizer.

    It takes already-tokenized batches only (synthetic ids of exact lengths): the full-size
    vocabularies have no tokenizer here. Tokenization is outside every timing in the latency
    runner, for real and random-init models alike.
    """

    name: str
    architecture: Architecture
    backbone: PreTrainedModel
    dense: DenseStack
    device: str
    dtype: torch.dtype
    parameters: ParameterCount = field(init=False)
    info: ModelLabel = field(init=False)  # weights "random-init", source "architecture:<model_type>"
    _extra_forward_args: dict[str, Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.parameters = parameter_count(self.backbone, self.dense)
        self.info = ModelLabel(name=self.name, source=f"architecture:{self.architecture.model_type}", revision=None,
                               weights="random-init", dtype=dtype_name(self.dtype),
                               device=str(self.device), parameters=self.parameters.total)
        # Encoding never decodes: no KV/conv cache (LFM2 would allocate one per forward).
        accepts_cache = "use_cache" in inspect.signature(self.backbone.forward).parameters
        self._extra_forward_args = {"use_cache": False} if accepts_cache else {}

    @property
    def vocab_size(self) -> int:
        return int(self.backbone.config.vocab_size)

    @torch.inference_mode()
    def forward_tokens(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The computation of :meth:`models.colbert.ColBERTEncoder.forward_tokens`: backbone
        -> Dense -> float32 -> L2-normalised vectors of every position, ``[batch, width, dim]``."""
        inputs = {key: batch[key].to(self.device, non_blocking=True) for key in ("input_ids", "attention_mask")}
        hidden = self.backbone(**inputs, **self._extra_forward_args).last_hidden_state
        return F.normalize(self.dense(hidden).float(), p=2, dim=-1)


def build_random_colbert(architecture: Architecture, *, name: str, device: str = "cpu",
                         dtype: torch.dtype = torch.float32, attn_implementation: str = "sdpa",
                         seed: int = 0) -> RandomInitColBERT:
    """Instantiate the full-size model with the architecture's own initialisation, in eval mode."""
    torch.manual_seed(seed)
    config = backbone_config(architecture, attn_implementation)
    backbone = AutoModel.from_config(config, attn_implementation=attn_implementation, dtype=dtype)
    dense = DenseStack.from_configs(architecture.dense).to(dtype=dtype)
    backbone.to(device).eval()
    dense.to(device).eval()
    return RandomInitColBERT(name=name, architecture=architecture, backbone=backbone, dense=dense,
                             device=device, dtype=dtype)


def select_lfm2_conv_path(mode: ConvKernelMode, device: str) -> str:
    """Choose how LFM2's short convolutions run, and say which path will run.

    transformers' ``modeling_lfm2`` imports ``causal_conv1d`` (the fused CUDA kernel package)
    when it is installed and sets the module flag ``is_fast_path_available``; ``Lfm2ShortConv``
    reads that flag on every forward and takes the kernel only for CUDA tensors. ``disable``
    clears the flag for this process (to time the plain ``nn.Conv1d`` path); ``require`` fails
    unless the kernel will run.
    """
    if mode not in CONV_KERNEL_MODES:
        raise ValueError(f"lfm2_conv_kernel {mode!r}; valid choices: {list(CONV_KERNEL_MODES)}")
    from transformers.models.lfm2 import modeling_lfm2

    installed = all(fn is not None for fn in (modeling_lfm2.causal_conv1d_fn, modeling_lfm2.causal_conv1d_update))
    on_cuda = str(device).startswith("cuda")
    if mode == "disable":
        modeling_lfm2.is_fast_path_available = False
    elif installed:
        modeling_lfm2.is_fast_path_available = True
    fused = bool(modeling_lfm2.is_fast_path_available) and on_cuda
    if mode == "require" and not fused:
        raise RuntimeError(
            f"lfm2_conv_kernel=require but the fused kernel cannot run: causal-conv1d installed={installed}, "
            f"device={device!r} (the kernel is CUDA only)")
    path = "causal-conv1d fused CUDA kernel" if fused else "torch nn.Conv1d (Lfm2ShortConv.slow_forward)"
    log.info("LFM2 short convolutions: %s (causal-conv1d installed: %s, mode: %s)", path, installed, mode)
    return path
