"""Single-vector dense encoders in the sentence-transformers format, encoded by that library.

The checkpoint's own modules do the work (transformer, pooling, Dense, Normalize, Router
routes by task); this module only decides three things and records them:

- Prompts. Queries: the configured query prompt, else the checkpoint's ``prompts["query"]``,
  else its default prompt. Documents: the configured document prompt, else the first of
  ``prompts["document" | "passage" | "corpus"]``, else the default prompt. This is
  sentence-transformers' own choice in ``encode_query`` / ``encode_document`` (5.3.0);
  the resolved string is passed as ``prompt=`` so that it is the one recorded.
- Normalisation. ``normalize=None`` follows the checkpoint's similarity function: cosine
  (sentence-transformers' default) normalises, dot product does not; the harness ranks by
  dot product, so this keeps each model's own ranking. Other similarities are refused.
- Output: one ``[1, dim]`` float32 CPU tensor per text, so the exact MaxSim top-k (MaxSim
  over one vector is the dot product) ranks dense models unchanged.

Token statistics (``tokens``, ``truncated``, ``padded_tokens``) are counted with the
checkpoint's tokenizer on prompt + text at ``max_seq_length``, batched as
sentence-transformers batches (texts sorted by character length, ``batch_size`` per batch).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from sentence_transformers import SentenceTransformer, __version__ as st_version
from sentence_transformers.models import Normalize

from nanobeir_ext.protocol import ROLES, EncodeOutput, ModelLabel, Role
from models.fixture_cache import fixture_source
from models.checkpoint import RANDOM_INIT_MARKER, content_hash, resolve_source
from models.colbert import resolve_dtype

log = logging.getLogger(__name__)

# Bump when a change to this module changes vectors, so cached embeddings are recomputed.
ENCODING_VERSION = 1
DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")  # sentence-transformers' order
NORMALISING_SIMILARITIES = (None, "cosine")
DOT_SIMILARITIES = ("dot", "dot_product")
# Files that never change vectors, left out of a local folder's content hash.
_UNHASHED_SUFFIXES = (".md", ".onnx", ".xml", ".lock")


def resolve_prompt(model: SentenceTransformer, role: Role, configured: str | None) -> str:
    """The prompt prepended for ``role`` (see the module docstring); "" for none."""
    if configured is not None:
        return configured
    prompts = model.prompts or {}
    names = ("query",) if role == "query" else DOCUMENT_PROMPT_NAMES
    for name in names:
        if name in prompts:
            return prompts[name]
    if model.default_prompt_name is not None:
        return prompts.get(model.default_prompt_name) or ""
    return ""


def resolve_normalize(model: SentenceTransformer, normalize: bool | None) -> bool:
    if normalize is not None:
        return bool(normalize)
    similarity = model.similarity_fn_name
    similarity = getattr(similarity, "value", similarity)
    if similarity in NORMALISING_SIMILARITIES:
        return True
    if similarity in DOT_SIMILARITIES:
        return False
    raise ValueError(f"similarity function {similarity!r} is not a dot product or cosine; exact top-k by dot product cannot rank it")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; valid choices: {list(ROLES)}")


class DenseEncoder:
    """Implements :class:`nanobeir_ext.protocol.Encoder` for a sentence-transformers model."""

    def __init__(self, model: SentenceTransformer, info: ModelLabel, *, query_prompt: str | None = None,
                 document_prompt: str | None = None, normalize: bool | None = None, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.model = model.eval()
        self.prompts = {"query": resolve_prompt(model, "query", query_prompt), "document": resolve_prompt(model, "document", document_prompt)}
        # A final Normalize module always normalises (normalize=False cannot remove it); normalising
        # a second time would move the last bits, so it is only asked for without one.
        has_normalize_module = isinstance(model[len(model) - 1], Normalize)
        self._normalize_after = resolve_normalize(model, normalize) and not has_normalize_module
        self.normalize = self._normalize_after or has_normalize_module
        self.batch_size = batch_size
        self.info = info

    def _token_counts(self, texts: Sequence[str], prompt: str) -> tuple[int, int, int]:
        """(tokens, truncated texts, padded tokens) for prompt + text, see the module docstring."""
        if not texts:
            return 0, 0, 0
        limit = self.model.max_seq_length
        tokenizer = self.model.tokenizer
        full = [len(ids) for ids in tokenizer([prompt + t for t in texts], add_special_tokens=True, truncation=False, verbose=False)["input_ids"]]
        kept = [min(n, limit) if limit else n for n in full]
        order = np.argsort([-len(prompt + t) for t in texts], kind="stable")
        padded = sum(max(kept[i] for i in order[s : s + self.batch_size]) * len(order[s : s + self.batch_size]) for s in range(0, len(order), self.batch_size))
        return sum(kept), sum(n > k for n, k in zip(full, kept)), padded

    def encode(self, texts: Sequence[str], role: Role, *, progress: bool = True, desc: str | None = None) -> EncodeOutput:
        _check_role(role)
        texts = list(texts)
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"texts must be strings, got {type(text).__name__}")
        if not texts:
            return EncodeOutput(embeddings=[])
        encode = self.model.encode_query if role == "query" else self.model.encode_document
        with torch.inference_mode():
            vectors = encode(texts, prompt=self.prompts[role], batch_size=self.batch_size, convert_to_tensor=True,
                             normalize_embeddings=self._normalize_after, show_progress_bar=progress)
        vectors = vectors.float().cpu()
        bad = (~torch.isfinite(vectors).all(dim=1)).nonzero().flatten().tolist()
        if bad:
            raise ValueError(f"{self.info.name}: non-finite vectors for {len(bad)} {role} texts, e.g. {texts[bad[0]][:80]!r}")
        tokens, truncated, padded = self._token_counts(texts, self.prompts[role])
        return EncodeOutput(embeddings=[row.unsqueeze(0).clone() for row in vectors], truncated=truncated, tokens=tokens, padded_tokens=padded)

    def settings(self) -> dict[str, Any]:
        return {
            "query_prompt": self.prompts["query"],
            "document_prompt": self.prompts["document"],
            "normalize": self.normalize,
            "max_seq_length": self.model.max_seq_length,
            "modules": [type(module).__name__ for module in self.model],
            "dimension": self.model.get_sentence_embedding_dimension(),
        }

    def cache_identity(self) -> dict[str, Any]:
        return {
            "kind": "dense",
            "encoding_version": ENCODING_VERSION,
            "sentence_transformers": st_version,
            "source": self.info.source,
            "revision": self.info.revision,
            "weights_hash": self.info.weights_hash,
            "dtype": self.info.dtype,
            "device_type": torch.device(self.info.device).type,
            "settings": self.settings(),
        }


def folder_hash(folder: Path) -> str:
    """Content hash of every file of a local checkpoint folder that can change vectors."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
                   and not p.name.endswith(_UNHASHED_SUFFIXES))
    return content_hash(folder, files)


def load_dense(source: str, *, revision: str | None = None, device: str = "cpu", dtype: str = "auto", name: str | None = None,
               query_prompt: str | None = None, document_prompt: str | None = None, normalize: bool | None = None,
               max_seq_length: int | None = None, batch_size: int = 32, trust_remote_code: bool = False,
               local_files_only: bool | None = None) -> DenseEncoder:
    """Load a sentence-transformers checkpoint (local folder, or hub id at ``revision``)."""
    resolved = resolve_source(source, revision=revision, local_files_only=local_files_only, trust_remote_code=trust_remote_code)
    torch_dtype = resolve_dtype(dtype, device)
    model = SentenceTransformer(str(resolved.folder), device=device, trust_remote_code=trust_remote_code,
                                model_kwargs={"dtype": torch_dtype}, local_files_only=True)
    model.to(dtype=torch_dtype)
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    info = ModelLabel(
        name=name or Path(resolved.source.rstrip("/")).name,
        source=fixture_source(resolved.folder, resolved.source),
        revision=resolved.revision,
        weights="random-init" if (resolved.folder / RANDOM_INIT_MARKER).is_file() else "real",
        dtype=str(torch_dtype).removeprefix("torch."),
        device=str(device),
        parameters=sum(p.numel() for p in model.parameters()),
        weights_hash=folder_hash(resolved.folder) if resolved.revision is None else None,
        kind="dense",
    )
    encoder = DenseEncoder(model, info, query_prompt=query_prompt, document_prompt=document_prompt, normalize=normalize, batch_size=batch_size)
    encoder.info = ModelLabel(**{**info.to_dict(), "settings": encoder.settings()})
    return encoder


def build_dense_fixture(backbone_dir: Path, out_dir: Path, *, prompts: dict[str, str] | None = None, pooling: str = "mean",
                        normalize_module: bool = True, max_seq_length: int = 128) -> Path:
    """A sentence-transformers checkpoint (Transformer -> Pooling [-> Normalize]) over a tiny
    random-init backbone folder from :func:`models.fixtures.build_backbone_folder`."""
    from sentence_transformers import models as st_models

    transformer = st_models.Transformer(str(backbone_dir), max_seq_length=max_seq_length)
    modules = [transformer, st_models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode=pooling)]
    if normalize_module:
        modules.append(st_models.Normalize())
    model = SentenceTransformer(modules=modules, device="cpu", prompts=prompts if prompts is not None else {"query": "query: ", "document": "passage: "})
    out_dir = Path(out_dir)
    model.save(str(out_dir))
    (out_dir / RANDOM_INIT_MARKER).write_text('{"weights": "random-init", "kind": "dense"}\n', encoding="utf-8")
    return out_dir
