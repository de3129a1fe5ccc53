"""The one switch from a configured model (fixture, local folder or hub id) to an encoder; every runner uses it."""
from __future__ import annotations

from pathlib import Path

import torch

from nanobeir_ext.protocol import EncoderRequest

__all__ = ["EncoderRequest", "fixture_models_dir", "load_encoder"]


def fixture_models_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "fixture-models"


def load_encoder(request: EncoderRequest, *, device: str, dtype: str | torch.dtype, cache_dir: Path,
                 local_files_only: bool | None = None, attn_implementation: str | None = None):
    """Load a PyLate-format ColBERT checkpoint (a :class:`models.colbert.ColBERTEncoder`).

    ``request.fixture`` builds (once, under ``cache_dir``) and loads a tiny random-init
    checkpoint; its marker file labels it (see ``models.checkpoint.read_checkpoint_layout``).
    ``local_files_only=True`` never touches the network: a hub model must be in the local
    Hugging Face cache, else :class:`models.checkpoint.ModelUnavailableError`.
    """
    from models.colbert import load_colbert  # heavy imports only when a model is really needed

    options = dict(device=device, dtype=dtype, name=request.name, query_length=request.query_length,
                   document_length=request.document_length, batch_tokens=request.batch_tokens,
                   attn_implementation=attn_implementation)
    if request.fixture:
        from models.fixtures import build_fixture_checkpoint, default_fixture_texts

        folder = build_fixture_checkpoint(request.fixture, fixture_models_dir(cache_dir), default_fixture_texts())
        return load_colbert(str(folder), **options)
    if request.path:
        if not Path(request.path).is_dir():
            raise FileNotFoundError(f"model.path {request.path!r} for {request.name} is not a folder")
        return load_colbert(str(request.path), **options)
    return load_colbert(request.source, revision=request.revision, local_files_only=local_files_only, **options)
