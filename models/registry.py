"""Turn a configured model (hub id, local folder or fixture architecture) into an encoder."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from nanobeir_ext.protocol import Encoder


def fixture_models_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "fixture-models"


def load_encoder(*, name: str, source: str, revision: str | None, path: str | None, fixture: str | None,
                 device: str, dtype: str, cache_dir: Path, query_length: int | None = None,
                 document_length: int | None = None, batch_tokens: int = 32768) -> Encoder:
    """Load a PyLate-format ColBERT checkpoint; ``fixture`` builds (once) and loads a tiny random-init one."""
    from models.colbert import load_colbert  # heavy imports only when a model is really needed

    common = dict(device=device, dtype=dtype, name=name, query_length=query_length,
                  document_length=document_length, batch_tokens=batch_tokens)
    if fixture:
        from models.fixtures import FIXTURE_ARCHITECTURES, build_fixture_checkpoints

        if fixture not in FIXTURE_ARCHITECTURES:
            raise ValueError(f"unknown fixture architecture {fixture!r}; valid choices: {list(FIXTURE_ARCHITECTURES)}")
        folder = build_fixture_checkpoints(fixture_models_dir(cache_dir))[fixture]
        encoder = load_colbert(str(folder), **common)
        # Whatever the folder's files say, these weights are random-init; the source names the fixture.
        encoder.info = dataclasses.replace(encoder.info, weights="random-init", source=f"fixture:{fixture}")
        return encoder
    if path:
        if not Path(path).is_dir():
            raise FileNotFoundError(f"model.path {path!r} for {name} is not a folder")
        return load_colbert(str(path), revision=None, **common)
    return load_colbert(source, revision=revision, **common)
