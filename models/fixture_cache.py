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
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import tokenizers
import transformers

from models.checkpoint import RANDOM_INIT_MARKER, content_hash
from models.fixtures import _discard, _remove_stale_staging, _share, build_backbone_folder, checkpoint_content, damage

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
    """Build (or reuse) the fixture checkpoint of ``kind`` under ``cache_dir``, atomically."""
    if kind not in BUILDERS:
        raise ValueError(f"no fixture for kind {kind!r}; fixtures exist for {list(BUILDERS)}")
    cache_dir = Path(cache_dir)
    final = cache_dir / fixture_key(kind, texts)
    if final.exists():
        problem = damage(final)
        if problem is None:
            return final
        log.warning("fixture checkpoint %s is damaged (%s): rebuilding it", final, problem)
        _discard(final)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(cache_dir, final.name)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", dir=cache_dir))
    try:
        checkpoint = BUILDERS[kind](staging, texts)
        marker = checkpoint / RANDOM_INIT_MARKER
        record = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else {}
        marker.unlink(missing_ok=True)  # the marker lists and hashes every other file
        files = checkpoint_content(checkpoint)
        marker.write_text(json.dumps(
            {**record, "kind": kind, "builder_version": BUILDER_VERSION, "weights": "random-init",
             "files": [p.relative_to(checkpoint).as_posix() for p in files], "content_hash": content_hash(checkpoint, files),
             "note": "tiny random-init fixture checkpoint: its numbers say nothing about any real model"},
            indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _share(checkpoint)
        try:
            os.rename(checkpoint, final)
        except OSError:
            if damage(final) is not None:  # not a lost race to an intact build: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
