"""BGE-M3's multi-vector (ColBERT) vectors from its own checkpoint format, with transformers + torch.

The format (BAAI/bge-m3): an ``XLMRobertaModel`` folder (config, weights, tokenizer) plus
``colbert_linear.pt`` (a ``Linear(hidden, dim)`` state dict) and ``sparse_linear.pt``
(``Linear(hidden, 1)``, the lexical weights, not used here). The ColBERT vectors, as
FlagEmbedding 1.4.2's ``BGEM3FlagModel`` computes them (its ``encode_queries`` /
``encode_corpus`` with ``return_colbert_vecs=True``):

1. the text as given (no stripping, no prefix, no instruction), tokenized with special
   tokens (``<s> ... </s>``), ``truncation=True`` at ``max_length`` (queries and
   documents have their own), padded on the right;
2. ``colbert_linear(last_hidden_state[:, 1:])``: every position but the first (``<s>``),
   the closing ``</s>`` included; padding dropped; each vector L2-normalised.

FlagEmbedding's own ColBERT score divides the sum of maxima by the number of query
vectors; that is one constant per query, so rankings (and every metric) equal those of
the harness's plain MaxSim sum. The defaults ``query_length = document_length = 512`` are
``BGEM3FlagModel``'s; the model itself accepts up to 8192 tokens.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

from nanobeir_ext.protocol import ROLES, EncodeOutput, ModelLabel, Role
from models.fixture_cache import fixture_source
from models.checkpoint import RANDOM_INIT_MARKER, TOKENIZER_FILES, ModelUnavailableError, content_hash, resolve_source, root_weight_files
from models.batching import plan_batches
from models.colbert import resolve_dtype

__all__ = ["BGEM3ColBERTEncoder", "ModelUnavailableError", "load_bge_m3", "build_bge_m3_fixture"]

log = logging.getLogger(__name__)

# Bump when a change to this module changes vectors, so cached embeddings are recomputed.
ENCODING_VERSION = 1
COLBERT_FILE = "colbert_linear.pt"
SPARSE_FILE = "sparse_linear.pt"
DEFAULT_LENGTH = 512  # BGEM3FlagModel's query_max_length and passage_max_length


class BGEM3ColBERTEncoder:
    """Implements :class:`nanobeir_ext.protocol.Encoder` for BGE-M3's ColBERT vectors (see the module docstring)."""

    def __init__(self, backbone: torch.nn.Module, tokenizer: Any, colbert_linear: torch.nn.Linear, info: ModelLabel, *,
                 query_length: int = DEFAULT_LENGTH, document_length: int = DEFAULT_LENGTH, batch_tokens: int = 16384,
                 max_batch_size: int = 256) -> None:
        for name, value in (("query_length", query_length), ("document_length", document_length)):
            if value < 2:
                raise ValueError(f"{name} must be at least 2 (<s> and </s>), got {value}")
        self.backbone = backbone.eval().requires_grad_(False)
        self.colbert_linear = colbert_linear.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.info = info
        self.lengths = {"query": query_length, "document": document_length}
        self.batch_tokens = batch_tokens
        self.max_batch_size = max_batch_size
        self.device = next(self.backbone.parameters()).device
        self.pad_id = int(tokenizer.pad_token_id)

    def _check_role(self, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; valid choices: {list(ROLES)}")

    def _tokenize(self, texts: Sequence[str], role: Role) -> tuple[list[list[int]], int]:
        """Token ids of each text (truncated at the role's length) and how many were cut."""
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"texts must be strings, got {type(text).__name__}")
        limit = self.lengths[role]
        ids = self.tokenizer(list(texts), truncation=True, max_length=limit, add_special_tokens=True)["input_ids"]
        at_limit = [i for i, row in enumerate(ids) if len(row) >= limit]
        truncated = 0
        if at_limit:
            full = self.tokenizer([texts[i] for i in at_limit], truncation=False, add_special_tokens=True, verbose=False)["input_ids"]
            truncated = sum(len(row) > limit for row in full)
        return [list(row) for row in ids], truncated

    def forward_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Normalised ColBERT vectors of positions 1.. of a right-padded batch: ``[batch, width - 1, dim]``."""
        hidden = self.backbone(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device)).last_hidden_state
        projected = self.colbert_linear(hidden[:, 1:].to(self.colbert_linear.weight.dtype))
        projected = projected * attention_mask[:, 1:, None].to(projected.device, projected.dtype)
        return F.normalize(projected.float(), p=2, dim=-1)

    def encode(self, texts: Sequence[str], role: Role, *, progress: bool = True, desc: str | None = None) -> EncodeOutput:
        self._check_role(role)
        texts = list(texts)
        rows, truncated = self._tokenize(texts, role)
        lengths = [len(row) for row in rows]
        embeddings: list[torch.Tensor | None] = [None] * len(texts)
        padded_tokens = 0
        with torch.inference_mode(), tqdm(total=len(texts), desc=desc or f"{self.info.name}: {role}s", unit="text",
                                           disable=not progress, leave=False) as bar:
            for indices in plan_batches(lengths, self.batch_tokens, self.max_batch_size):
                width = max(lengths[i] for i in indices)
                input_ids = torch.full((len(indices), width), self.pad_id, dtype=torch.long)
                attention = torch.zeros((len(indices), width), dtype=torch.long)
                for row, index in enumerate(indices):
                    input_ids[row, : lengths[index]] = torch.tensor(rows[index])
                    attention[row, : lengths[index]] = 1
                vectors = self.forward_tokens(input_ids, attention).cpu()
                for row, index in enumerate(indices):
                    kept = vectors[row, : lengths[index] - 1]
                    if not torch.isfinite(kept).all():
                        raise ValueError(f"{self.info.name}: non-finite vectors for the {role} {texts[index][:80]!r}")
                    embeddings[index] = kept.clone()
                padded_tokens += input_ids.numel()
                bar.update(len(indices))
        return EncodeOutput(embeddings=embeddings, truncated=truncated, tokens=sum(lengths), padded_tokens=padded_tokens)  # type: ignore[arg-type]

    def cache_identity(self) -> dict[str, Any]:
        return {
            "kind": "bge-m3-colbert",
            "encoding_version": ENCODING_VERSION,
            "source": self.info.source,
            "revision": self.info.revision,
            "weights_hash": self.info.weights_hash,
            "dtype": self.info.dtype,
            "device_type": torch.device(self.info.device).type,
            "attn_implementation": getattr(getattr(self.backbone, "config", None), "_attn_implementation", None),
            "query_length": self.lengths["query"],
            "document_length": self.lengths["document"],
        }


def bge_m3_files(folder: Path) -> list[Path]:
    """Every file whose bytes change the ColBERT vectors."""
    files = set(root_weight_files(folder)) | {folder / COLBERT_FILE}
    files |= {folder / name for name in ("config.json", *TOKENIZER_FILES, "sentencepiece.bpe.model") if (folder / name).is_file()}
    return sorted(files)


def load_colbert_linear(folder: Path, hidden_size: int) -> torch.nn.Linear:
    path = folder / COLBERT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a BGE-M3 checkpoint: {COLBERT_FILE} is missing")
    state = torch.load(path, map_location="cpu", weights_only=True)
    weight = state["weight"]
    if weight.dim() != 2 or weight.shape[1] != hidden_size:
        raise ValueError(f"{path}: weight of shape {tuple(weight.shape)} does not take the backbone's hidden size {hidden_size}")
    linear = torch.nn.Linear(hidden_size, weight.shape[0], bias="bias" in state)
    linear.load_state_dict(state)
    return linear


def load_bge_m3(source: str, *, revision: str | None = None, device: str = "cpu", dtype: str = "auto", name: str | None = None,
                query_length: int | None = None, document_length: int | None = None, batch_tokens: int = 16384,
                local_files_only: bool | None = None) -> BGEM3ColBERTEncoder:
    """Load a BGE-M3-format checkpoint (local folder, or hub id at ``revision``; the hub snapshot
    takes ``colbert_linear.pt`` too, through the same bounded, pinned fetch as every checkpoint)."""
    resolved = resolve_source(source, revision=revision, local_files_only=local_files_only, extra_patterns=(COLBERT_FILE,))
    folder = resolved.folder
    torch_dtype = resolve_dtype(dtype, device)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    backbone = AutoModel.from_pretrained(folder, dtype=torch_dtype).to(device)
    colbert_linear = load_colbert_linear(folder, backbone.config.hidden_size).to(device=device, dtype=torch_dtype)
    info = ModelLabel(
        name=name or Path(resolved.source.rstrip("/")).name,
        source=fixture_source(resolved.folder, resolved.source),
        revision=resolved.revision,
        weights="random-init" if (folder / RANDOM_INIT_MARKER).is_file() else "real",
        dtype=str(torch_dtype).removeprefix("torch."),
        device=str(device),
        parameters=sum(p.numel() for p in backbone.parameters()) + sum(p.numel() for p in colbert_linear.parameters()),
        weights_hash=content_hash(folder, bge_m3_files(folder)) if resolved.revision is None else None,
        settings={"query_length": query_length or DEFAULT_LENGTH, "document_length": document_length or DEFAULT_LENGTH,
                  "vectors": "colbert_linear(last_hidden_state[:, 1:]), L2-normalised"},
        kind="bge_m3",
    )
    return BGEM3ColBERTEncoder(backbone, tokenizer, colbert_linear, info, query_length=query_length or DEFAULT_LENGTH,
                               document_length=document_length or DEFAULT_LENGTH, batch_tokens=batch_tokens)


# -- a tiny random-init checkpoint in the same format -------------------------------------------
FIXTURE_HIDDEN = 64
FIXTURE_COLBERT_DIM = 64  # BGE-M3 keeps the hidden size (1024) as its ColBERT dimension
XLMR_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # XLM-R's ids 0..3; <mask> is the last id


def train_xlmr_like_tokenizer(texts: Sequence[str], vocab_size: int = 2000) -> Any:
    """A SentencePiece-style Unigram tokenizer (Metaspace "▁" word boundaries, NFKC) with
    XLM-R's special tokens and ``<s> $A </s>`` template, as a ``XLMRobertaTokenizerFast``."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import XLMRobertaTokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=list(XLMR_SPECIALS), unk_token="<unk>", show_progress=False)
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    tokenizer.add_special_tokens([AddedToken("<mask>", special=True, lstrip=True, normalized=False)])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return XLMRobertaTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                                   unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")


def build_bge_m3_fixture(out_dir: Path, texts: Sequence[str], seed: int = 0, max_positions: int = 514) -> Path:
    """Write a tiny random-init checkpoint in BGE-M3's format into ``out_dir``."""
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from models.fixtures import _random_init

    if not texts:
        raise ValueError("build_bge_m3_fixture needs texts to train the tokenizer on, got none")
    tokenizer = train_xlmr_like_tokenizer(texts)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=FIXTURE_HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=2 * FIXTURE_HIDDEN, max_position_embeddings=max_positions, pad_token_id=1,
                              bos_token_id=0, eos_token_id=2, type_vocab_size=1)
    with torch.random.fork_rng(devices=[]):
        model = XLMRobertaModel(config)
    _random_init(model, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    bound = FIXTURE_HIDDEN ** -0.5
    colbert = {"weight": (torch.rand((FIXTURE_COLBERT_DIM, FIXTURE_HIDDEN), generator=generator) * 2 - 1) * bound,
               "bias": (torch.rand((FIXTURE_COLBERT_DIM,), generator=generator) * 2 - 1) * bound}
    sparse = {"weight": (torch.rand((1, FIXTURE_HIDDEN), generator=generator) * 2 - 1) * bound, "bias": torch.zeros(1)}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    torch.save(colbert, out_dir / COLBERT_FILE)
    torch.save(sparse, out_dir / SPARSE_FILE)
    (out_dir / RANDOM_INIT_MARKER).write_text(json.dumps({"weights": "random-init", "kind": "bge-m3", "seed": seed}) + "\n", encoding="utf-8")
    return out_dir
