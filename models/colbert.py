"""A ColBERT encoder for any PyLate-format checkpoint, with plain transformers + torch.

It reproduces PyLate 1.6.0's vectors (docs/encoding.md):

1. ``text.strip()``, lower-cased when ``do_lower_case``; tokenized with special tokens,
   ``truncation="longest_first"``, ``max_length = L - 1`` (the prefix counts toward L).
2. Queries with expansion are padded to exactly L - 1 with the expansion id (the mask
   token, else EOS, else pad); their attention is 0 unless ``attend_to_expansion_tokens``.
   Documents (and queries without expansion) are padded to the longest in the batch.
3. The prefix id is inserted as a new column at index 1, after padding: after [CLS] / BOS
   of a right-padded row, after the first pad of a left-padded one.
4. ``last_hidden_state`` -> Dense stack -> keep: every query position with expansion,
   attended positions without; for documents attended positions whose id is not a
   skiplist id. Every kept vector is L2-normalised.

Padding side and batching (``padding_side``): padded on the right, a text's vectors do not
depend on its batch, so texts are sorted by token length and cut into tight batches
(``models/batching.py``: ``plan_batches``). Padded on the left, as PyLate does with a left-padding tokenizer
(``pad.. [Q] pad.. BOS tokens``), vectors depend on the batch, so PyLate's batching is
reproduced (``pylate_batches``). Vectors come back float32 on CPU in input order.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel, AutoTokenizer

from nanobeir_ext.protocol import ROLES, EncodeOutput, ModelLabel, Role
from models.checkpoint import (
    ColBERTSettings,
    ModelUnavailableError,
    checkpoint_files,
    content_hash,
    read_checkpoint_layout,
    require_remote_code_opt_in,
    resolve_source,
    settings_from_layout,
)
from models.batching import DEFAULT_BATCH_TOKENS, MIN_USEFUL_FRACTION, PYLATE_BATCH_SIZE, plan_batches, pylate_batches
from models.projection import DenseStack, load_dense_stack

__all__ = ["ColBERTSettings", "ColBERTEncoder", "ModelUnavailableError", "PADDING_SIDES", "load_colbert", "resolve_dtype",
           "dtype_name"]

log = logging.getLogger(__name__)

# Bump when a change to this module changes vectors, so cached embeddings are recomputed.
ENCODING_VERSION = 1
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# models.<key>.padding_side: None = the tokenizer's own side (what PyLate does).
PADDING_SIDES: tuple[str, ...] = ("left", "right")


@dataclass(frozen=True)
class TokenRow:
    """One text as the tokenizer returns it, before padding and the prefix column."""

    input_ids: list[int]
    token_type_ids: list[int] | None
    truncated: bool


def resolve_dtype(dtype: str | torch.dtype, device: str | torch.device) -> torch.dtype:
    """``"auto"`` is float32 on CPU and bfloat16 on CUDA; a torch dtype is returned as is."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; valid choices: {['auto', *DTYPES]}")
    return DTYPES[dtype]


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"`` (how labels and tables name a dtype)."""
    return str(dtype).removeprefix("torch.")


def _insert_column(values: torch.Tensor, value: int) -> torch.Tensor:
    column = torch.full((values.shape[0], 1), value, dtype=values.dtype)
    return torch.cat([values[:, :1], column, values[:, 1:]], dim=1)


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ColBERTEncoder:
    """Implements :class:`nanobeir_ext.protocol.Encoder` for a ColBERT checkpoint (see module docstring).

    ``backbone`` is a transformers base model (``Lfm2Model``, ``ModernBertModel``, ...)
    returning ``last_hidden_state``; ``dense`` maps hidden states to the output dimension.
    """

    def __init__(
        self,
        backbone: torch.nn.Module,
        tokenizer: Any,
        dense: torch.nn.Module,
        settings: ColBERTSettings,
        info: ModelLabel,
        *,
        batch_tokens: int | None = None,
        max_batch_size: int = 256,
        padding_side: str | None = None,
        remote_code: Mapping[str, Any] | None = None,
    ) -> None:
        batch_tokens = DEFAULT_BATCH_TOKENS if batch_tokens is None else batch_tokens
        if batch_tokens < 1 or max_batch_size < 1:
            raise ValueError(f"batch_tokens and max_batch_size must be positive, got {batch_tokens} and {max_batch_size}")
        if padding_side is not None and padding_side not in PADDING_SIDES:
            raise ValueError(f"padding_side {padding_side!r}; valid choices: null (the tokenizer's own), {list(PADDING_SIDES)}")
        self.backbone = backbone.eval().requires_grad_(False)
        self.dense = dense.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.settings = settings
        self.info = info
        self.batch_tokens = batch_tokens
        self.max_batch_size = max_batch_size
        # The checkpoint's own modeling code that built the backbone (models.checkpoint.remote_code_record).
        self.remote_code = dict(remote_code) if remote_code else None
        self.device = next(self.backbone.parameters()).device
        self.expansion_id = self._expansion_token_id(tokenizer)
        self.prefix_ids = {"query": self._prefix_id(settings.query_prefix), "document": self._prefix_id(settings.document_prefix)}
        # PyLate looks each word up as a whole token; merged tokens such as " ." stay.
        self.skiplist_ids = torch.tensor(
            sorted({i for i in tokenizer.convert_tokens_to_ids(list(settings.skiplist_words)) if i is not None}), dtype=torch.long
        )
        parameters = inspect.signature(self.backbone.forward).parameters
        self._use_token_type_ids = "token_type_ids" in parameters and "token_type_ids" in getattr(tokenizer, "model_input_names", ())
        self._extra_forward_args = {"use_cache": False} if "use_cache" in parameters else {}
        tokenizer_side = getattr(tokenizer, "padding_side", "right")
        # The side actually used: the setting, else the tokenizer's own (PyLate's behaviour).
        self.padding_side = padding_side or tokenizer_side
        if self.padding_side not in PADDING_SIDES:
            raise ValueError(f"{info.name}: tokenizer padding_side {tokenizer_side!r}; set padding_side to one of {list(PADDING_SIDES)}")
        if self.padding_side == "left":
            log.warning("%s: padding on the left (%s), as PyLate does: the prefix lands after a pad and a document's "
                        "vectors depend on its batch, so PyLate's batching is used (length sort, %d texts per batch); "
                        "padding_side=right gives batch-invariant vectors", info.name,
                        "the tokenizer's side" if padding_side is None else "padding_side=left", PYLATE_BATCH_SIZE)

    # -- tokenization ---------------------------------------------------------------------
    @staticmethod
    def _expansion_token_id(tokenizer: Any) -> int:
        """PyLate's pad id: the mask token (MLMs), else EOS (LLMs), else the pad token."""
        for candidate in (tokenizer.mask_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id):
            if candidate is not None:
                return int(candidate)
        raise ValueError("the tokenizer has no mask, EOS or pad token to pad queries with")

    def _prefix_id(self, prefix: str) -> int | None:
        if not prefix:
            return None
        vocab = self.tokenizer.get_vocab()
        if prefix not in vocab:
            raise ValueError(
                f"{self.info.name}: prefix {prefix!r} is not a token of the checkpoint's tokenizer "
                f"(PyLate adds it as a token when it saves a checkpoint; this one was not saved that way)"
            )
        return int(vocab[prefix])

    def length(self, role: Role) -> int:
        self._check_role(role)
        return self.settings.query_length if role == "query" else self.settings.document_length

    @staticmethod
    def _check_role(role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; valid choices: {list(ROLES)}")

    def _prepare(self, text: str) -> str:
        if not isinstance(text, str):
            raise TypeError(f"texts must be strings, got {type(text).__name__}: {_shorten(repr(text))}")
        text = text.strip()
        return text.lower() if self.settings.do_lower_case else text

    def _token_rows(self, texts: Sequence[str], role: Role) -> list[TokenRow]:
        prefix_id = self.prefix_ids[role]
        max_length = self.length(role) - (1 if prefix_id is not None else 0)
        prepared = [self._prepare(text) for text in texts]
        if not prepared:
            return []
        common = {"add_special_tokens": True, "padding": False, "return_attention_mask": False, "return_token_type_ids": self._use_token_type_ids}
        encoded = self.tokenizer(prepared, truncation="longest_first", max_length=max_length, **common)
        ids_list: list[list[int]] = encoded["input_ids"]
        types_list = encoded["token_type_ids"] if self._use_token_type_ids else [None] * len(ids_list)
        # A text is truncated when its full tokenization is longer than the limit; only
        # texts that reached the limit need the second look.
        at_limit = [index for index, ids in enumerate(ids_list) if len(ids) >= max_length]
        truncated = set()
        if at_limit:
            full = self.tokenizer([prepared[index] for index in at_limit], truncation=False, verbose=False, **common)["input_ids"]
            truncated = {index for index, ids in zip(at_limit, full) if len(ids) > max_length}
        return [TokenRow(input_ids=list(ids), token_type_ids=list(types) if types is not None else None,
                         truncated=index in truncated)
                for index, (ids, types) in enumerate(zip(ids_list, types_list))]

    def _row_length(self, row: TokenRow, role: Role) -> int:
        """Positions of the row once its prefix is inserted."""
        return len(row.input_ids) + (self.prefix_ids[role] is not None)

    def _fixed_width(self, role: Role) -> int | None:
        return self.settings.query_length if role == "query" and self.settings.do_query_expansion else None

    def _collate(self, rows: Sequence[TokenRow], role: Role) -> dict[str, torch.Tensor]:
        prefix_id = self.prefix_ids[role]
        width = self._fixed_width(role) or max(self._row_length(row, role) for row in rows)
        inner = width - (prefix_id is not None)  # the tokenizer's padded width
        input_ids = torch.full((len(rows), inner), self.expansion_id, dtype=torch.long)
        attention = torch.zeros((len(rows), inner), dtype=torch.long)
        token_types = torch.zeros((len(rows), inner), dtype=torch.long) if self._use_token_type_ids else None
        for index, row in enumerate(rows):
            n = len(row.input_ids)
            span = slice(0, n) if self.padding_side == "right" else slice(inner - n, inner)
            input_ids[index, span] = torch.tensor(row.input_ids, dtype=torch.long)
            attention[index, span] = 1
            if token_types is not None and row.token_type_ids is not None:
                token_types[index, span] = torch.tensor(row.token_type_ids, dtype=torch.long)
        if prefix_id is not None:  # a new column at index 1, after padding, as PyLate inserts it
            input_ids = _insert_column(input_ids, prefix_id)
            attention = _insert_column(attention, 1)
            token_types = _insert_column(token_types, 0) if token_types is not None else None
        if role == "query":
            # With expansion every position is kept (expansion tokens included); without it
            # the padding is dropped. Attending to expansion tokens sets the whole mask to 1.
            keep = torch.ones_like(attention, dtype=torch.bool) if self.settings.do_query_expansion else attention.bool()
            if self.settings.attend_to_expansion_tokens:
                attention.fill_(1)
        else:
            keep = attention.bool() & ~torch.isin(input_ids, self.skiplist_ids)
        batch = {"input_ids": input_ids, "attention_mask": attention, "keep_mask": keep}
        if token_types is not None:
            batch["token_type_ids"] = token_types
        return batch

    def tokenize(self, texts: Sequence[str], role: Role) -> dict[str, torch.Tensor]:
        """One padded batch exactly as PyLate builds it (CPU tensors): ``input_ids``,
        ``attention_mask`` (+ ``token_type_ids`` where the model takes them) and
        ``keep_mask``, the positions whose vectors are returned."""
        self._check_role(role)
        rows = self._token_rows(texts, role)
        if not rows:
            raise ValueError("tokenize needs at least one text")
        return self._collate(rows, role)

    # -- forward ----------------------------------------------------------------------------
    def forward_tokens(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Model forward on a batch from :meth:`tokenize`: L2-normalised float32 vectors of
        every position, ``[batch, width, dim]`` on the encoder's device (select
        ``batch["keep_mask"]`` for the returned ones). The latency benchmark times this."""
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if self._use_token_type_ids and "token_type_ids" in batch:
            inputs["token_type_ids"] = batch["token_type_ids"]
        inputs = {key: value.to(self.device, non_blocking=True) for key, value in inputs.items()}
        rows = inputs["input_ids"].shape[0]
        if rows == 1 and self.padding_side == "right" and not bool(inputs["attention_mask"].all()):
            # transformers skips padding masks inside some layers for a batch of one
            # (e.g. LFM2's short convolutions, apply_mask_to_padding_states), which would
            # change the vectors of masked expansion tokens; a duplicated row keeps the
            # batched behaviour, so a text's vectors never depend on its batch. On the
            # left, PyLate's batch-dependent vectors are reproduced, a lone batch included.
            inputs = {key: value.repeat(2, 1) for key, value in inputs.items()}
        hidden = self.backbone(**inputs, **self._extra_forward_args).last_hidden_state[:rows]
        projected = self.dense(hidden.to(next(self.dense.parameters()).dtype)).float()
        return F.normalize(projected, p=2, dim=-1)

    # -- the Encoder protocol -----------------------------------------------------------------
    def encode(self, texts: Sequence[str], role: Role, *, progress: bool = True, desc: str | None = None) -> EncodeOutput:
        """Token vectors of ``texts`` (float32, CPU, input order) for ``role``."""
        self._check_role(role)
        texts = list(texts)
        rows = self._token_rows(texts, role)
        batches = self.plan(texts, rows, role)
        embeddings: list[torch.Tensor | None] = [None] * len(texts)
        padded_tokens = 0
        label = desc or f"{self.info.name}: {role}s"
        with torch.inference_mode(), tqdm(total=len(texts), desc=label, unit="text", disable=not progress,
                                           leave=False) as bar:
            for indices in batches:
                batch = self._collate([rows[index] for index in indices], role)
                vectors = self.forward_tokens(batch)
                keep = batch["keep_mask"].to(vectors.device)
                kept = vectors[keep]
                self._check_finite(kept, keep, texts, indices)
                for index, item in zip(indices, torch.split(kept.cpu(), keep.sum(dim=1).tolist())):
                    embeddings[index] = item
                padded_tokens += batch["input_ids"].numel()
                bar.update(len(indices))
        return EncodeOutput(
            embeddings=embeddings,  # type: ignore[arg-type]  # every slot is filled above
            truncated=sum(row.truncated for row in rows),
            tokens=sum(self._row_length(row, role) for row in rows),
            padded_tokens=padded_tokens,
        )

    def plan(self, texts: Sequence[str], rows: Sequence[TokenRow], role: Role) -> list[list[int]]:
        """The batches ``encode`` runs: tight ones on the right, PyLate's on the left."""
        if self.padding_side == "left":
            return pylate_batches(texts)
        return plan_batches([self._row_length(row, role) for row in rows], self.batch_tokens, self.max_batch_size,
                            self._fixed_width(role))

    def batching_identity(self) -> dict[str, Any]:
        """The settings that decide the batches, hence (through rounding, or through the
        padding with a left-padding tokenizer) the vectors."""
        if self.padding_side == "left":
            return {"padding_side": "left", "plan": "pylate-char-length-sort", "batch_size": PYLATE_BATCH_SIZE}
        return {"padding_side": "right", "plan": "token-length-sort", "batch_tokens": self.batch_tokens,
                "max_batch_size": self.max_batch_size, "min_useful": MIN_USEFUL_FRACTION}

    def _check_finite(self, kept: torch.Tensor, keep: torch.Tensor, texts: Sequence[str], indices: Sequence[int]) -> None:
        finite = torch.isfinite(kept).all(dim=-1)
        if bool(finite.all()):
            return
        owner = torch.repeat_interleave(torch.arange(len(indices), device=keep.device), keep.sum(dim=1))
        bad = sorted({indices[int(position)] for position in owner[~finite].tolist()})
        examples = "; ".join(repr(_shorten(texts[index])) for index in bad[:3])
        raise ValueError(f"{self.info.name} produced NaN/Inf vectors for {len(bad)} text(s) (dtype {self.info.dtype}), first: {examples}")

    def cache_identity(self) -> dict[str, Any]:
        """JSON-able identity of the vectors: model (hub revision or content hash), dtype,
        every setting, the Dense shapes and this module's encoding version."""
        if self.info.weights_hash is not None:
            model = {"weights_hash": self.info.weights_hash}
        else:
            model = {"source": self.info.source, "revision": self.info.revision}
        dense = [layer.config.to_dict() for layer in self.dense] if isinstance(self.dense, DenseStack) else repr(self.dense)
        return {
            "encoder": "colbert",
            "encoding_version": ENCODING_VERSION,
            **model,
            "weights": self.info.weights,
            "dtype": self.info.dtype,
            # Kernels differ by device type and attention implementation: bf16 vectors are not bit-equal.
            "device_type": torch.device(self.info.device).type,
            "attn_implementation": getattr(getattr(self.backbone, "config", None), "_attn_implementation", None),
            "settings": self.settings.to_dict(),
            "dense": dense,
            "batching": self.batching_identity(),
            # Code shipped in the checkpoint: a hub commit pins it, but a local folder's code can change.
            **({"remote_code": self.remote_code["hash"]} if self.remote_code else {}),
        }


def _default_name(source: str) -> str:
    return Path(source.rstrip("/")).name or source


def _load_backbone(folder: Path, dtype: torch.dtype, attn_implementation: str | None, model_args: dict, config_args: dict) -> torch.nn.Module:
    """``model_args`` and ``config_args`` carry ``trust_remote_code`` (set only after the opt-in check)."""
    config = AutoConfig.from_pretrained(folder, **config_args)
    if attn_implementation is not None:
        return AutoModel.from_pretrained(folder, config=config, dtype=dtype, attn_implementation=attn_implementation, **model_args)
    try:
        return AutoModel.from_pretrained(folder, config=config, dtype=dtype, attn_implementation="sdpa", **model_args)
    except (ValueError, ImportError) as error:  # the architecture has no SDPA attention
        log.info("%s: SDPA attention unavailable (%s); using the default", folder, error)
        return AutoModel.from_pretrained(folder, config=config, dtype=dtype, **model_args)


def load_colbert(
    source: str,
    *,
    revision: str | None = None,
    device: str = "cpu",
    dtype: str | torch.dtype = "auto",
    name: str | None = None,
    query_length: int | None = None,
    document_length: int | None = None,
    batch_tokens: int | None = None,
    padding_side: str | None = None,
    local_files_only: bool | None = None,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
) -> ColBERTEncoder:
    """Load a PyLate-format checkpoint from a local folder or a hub repo id (at ``revision``).

    A hub checkpoint is identified by its resolved commit, a local folder by a content
    hash of its files. ``query_length`` / ``document_length`` override the checkpoint;
    ``batch_tokens=None`` is :data:`DEFAULT_BATCH_TOKENS`; ``padding_side=None`` pads on the
    tokenizer's side (PyLate's default), ``"right"`` gives batch-invariant vectors. A fixture checkpoint (its marker
    file) is labelled weights "random-init", source ``fixture:<architecture>``.

    A checkpoint that ships its own modeling code (an ``auto_map``) loads only with
    ``trust_remote_code=True``; otherwise :class:`models.checkpoint.RemoteCodeRefusedError` is
    raised before any model is built. With it, the code's hash joins the cache identity and the
    label's settings (environment.json), and the log says which files were run.
    """
    resolved = resolve_source(source, revision=revision, local_files_only=local_files_only, trust_remote_code=trust_remote_code)
    layout = read_checkpoint_layout(resolved.folder)
    remote_code = require_remote_code_opt_in(layout.transformer_dir, trust_remote_code=trust_remote_code,
                                             source=resolved.source, revision=resolved.revision)
    settings = settings_from_layout(layout).with_overrides(query_length=query_length, document_length=document_length)
    torch_dtype = resolve_dtype(dtype, device)
    # sentence-transformers passes these from sentence_bert_config.json; the loader owns dtype and
    # whether code runs (a checkpoint's own model_args cannot opt itself in).
    trust = {"trust_remote_code": True} if remote_code else {}
    model_args = {k: v for k, v in dict(layout.transformer_config.get("model_args") or {}).items()
                  if k not in ("torch_dtype", "dtype", "trust_remote_code")} | trust
    config_args = {k: v for k, v in dict(layout.transformer_config.get("config_args") or {}).items() if k != "trust_remote_code"} | trust
    tokenizer_args = {k: v for k, v in dict(layout.transformer_config.get("tokenizer_args") or {}).items() if k != "trust_remote_code"} | trust
    tokenizer = AutoTokenizer.from_pretrained(layout.transformer_dir, **tokenizer_args)
    backbone = _load_backbone(layout.transformer_dir, torch_dtype, attn_implementation, model_args, config_args)
    if remote_code:
        log.warning("%s: executed the checkpoint's own modeling code (trust_remote_code=true): %s built from %s (%s); "
                    "code hash %s", name or _default_name(resolved.source), type(backbone).__name__,
                    ", ".join(f"{f} sha256 {h[:12]}" for f, h in remote_code["files"].items()),
                    ", ".join(f"{k.split(':')[1]} -> {v}" for k, v in remote_code["auto_map"].items()), remote_code["hash"][:16])
    backbone = backbone.to(device=device, dtype=torch_dtype)
    dense = load_dense_stack(layout.dense_dirs).to(device=device, dtype=torch_dtype)
    info = ModelLabel(
        name=name or _default_name(resolved.source),
        source=f"fixture:{layout.fixture}" if layout.fixture else resolved.source,
        revision=resolved.revision,
        weights="random-init" if layout.random_init else "real",
        weights_hash=content_hash(layout.root, checkpoint_files(layout)) if resolved.revision is None else None,
        dtype=dtype_name(torch_dtype),
        device=str(device),
        parameters=sum(p.numel() for p in backbone.parameters()) + sum(p.numel() for p in dense.parameters()),
        settings={**settings.to_dict(), **({"remote_code": remote_code} if remote_code else {})},
    )
    return ColBERTEncoder(backbone, tokenizer, dense, settings, info, batch_tokens=batch_tokens, padding_side=padding_side,
                          remote_code=remote_code)
