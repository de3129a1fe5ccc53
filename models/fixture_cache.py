"""Tiny random-init fixture checkpoints of the other kinds (dense, BGE-M3), built offline and
cached the way ``models/fixtures.py`` caches the ColBERT ones.

A checkpoint is built in a staging folder, labelled with its marker (content hash and file
list, checked on every reuse: a changed, truncated or partly deleted checkpoint is logged
and rebuilt) and renamed into ``<cache_dir>/<kind>-<key>``. The key hashes the builder
version, the library versions that write the files, and the texts the tokenizer learns from.
The weights are random: numbers computed with them test the pipeline, nothing else.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Callable, Sequence

import tokenizers
import transformers

from models.checkpoint import RANDOM_INIT_MARKER
from models.fixtures import build_backbone_folder, build_cached

log = logging.getLogger(__name__)

# Bump whenever a change here, in models/dense.py's or in models/bge_m3.py's fixture builder
# changes the bytes of a built checkpoint.
BUILDER_VERSION = 1
FIXTURE_KINDS: tuple[str, ...] = ("dense", "bge_m3")


def fixture_source(folder: Path, source: str) -> str:
    """``fixture:<kind>`` for a checkpoint built here (its marker says so), else ``source``: the label
    and the cache identity then do not depend on where ``runtime.cache_dir`` is (the weights hash
    identifies the bytes)."""
    marker = Path(folder) / RANDOM_INIT_MARKER
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return source
    kind = record.get("kind") if isinstance(record, dict) else None
    return f"fixture:{kind}" if kind in FIXTURE_KINDS and "builder_version" in record else source


def fixture_key(kind: str, texts: Sequence[str]) -> str:
    import sentence_transformers

    payload = json.dumps({"builder": BUILDER_VERSION, "kind": kind, "transformers": transformers.__version__,
                          "tokenizers": tokenizers.__version__, "sentence_transformers": sentence_transformers.__version__,
                          "texts": list(texts)}, ensure_ascii=False, sort_keys=True)
    return f"{kind}-{hashlib.sha256(payload.encode('utf-8')).hexdigest()[:16]}"


def _build_dense(staging: Path, texts: Sequence[str]) -> Path:
    from models.dense import build_dense_fixture

    backbone = build_backbone_folder("modernbert", staging / "backbone", texts)
    return build_dense_fixture(backbone, staging / "checkpoint")


def _build_bge_m3(staging: Path, texts: Sequence[str]) -> Path:
    from models.bge_m3 import build_bge_m3_fixture

    return build_bge_m3_fixture(staging / "checkpoint", texts)


BUILDERS: dict[str, Callable[[Path, Sequence[str]], Path]] = {"dense": _build_dense, "bge_m3": _build_bge_m3}


def build_kind_fixture(kind: str, cache_dir: Path, texts: Sequence[str]) -> Path:
    """Build (or reuse) the fixture checkpoint of ``kind`` under ``cache_dir`` (``fixtures.build_cached``)."""
    if kind not in BUILDERS:
        raise ValueError(f"no fixture for kind {kind!r}; fixtures exist for {list(BUILDERS)}")
    return build_cached(Path(cache_dir) / fixture_key(kind, texts), lambda staging: BUILDERS[kind](staging, texts),
                        {"kind": kind, "builder_version": BUILDER_VERSION,
                         "note": "tiny random-init fixture checkpoint: its numbers say nothing about any real model"})
