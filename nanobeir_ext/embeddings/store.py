"""The embedding store: ragged token embeddings on disk, content-addressed, written atomically.

One safetensors file per entry, ``root/ab/abcdef....safetensors``, holding the tensors
``vectors`` ([n_tokens, dim]) and ``offsets`` (int64 [n_texts + 1]); its metadata holds
the ids (JSON), the format version, the caller's metadata (JSON) and a checksum (XXH3-128)
over all of that plus the tensor bytes: it guards against damage, not tampering, and at ~8 GB/s
it costs a real-size store (66 GB of float32 vectors) seconds where sha256 cost a minute. The
key (``store_key``) hashes the encoder identity, the role and the exact (id, text) pairs, so any
change to any of them gives another entry.

Concurrency and crashes: an entry is written to a temp file in its own folder
(``.{key}.{pid}.{random}.partial``, which never matches ``*.safetensors``), fsynced, then
``os.replace``d into place. Readers therefore see either no entry or a complete one; two
writers of one key both succeed and the last rename wins (the contents are equal, since
the key fixes them). A killed writer leaves only its temp file, which ``get`` never reads
and which opening a store removes once it is older than an hour. Reads memory-map the
file and verify the checksum (callers that verified an entry earlier in the same run may
skip it: ``get(key, verify=False)``); a damaged entry is logged, deleted and reported absent.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import xxhash
from safetensors import safe_open
from safetensors.torch import save_file

from nanobeir_ext.atomic import fault_point, file_mode, fsync_dir, naming_the_file
from nanobeir_ext.embeddings.ragged import RaggedEmbeddings

logger = logging.getLogger(__name__)

FORMAT = "nanobeir-ext/ragged-embeddings"
FORMAT_VERSION = "2"  # 2: XXH3-128 checksum (1: sha256)
ENTRY_SUFFIX = ".safetensors"
TEMP_SUFFIX = ".partial"
STALE_TEMP_AGE_S = 3600.0
CHECKSUM_FIELD = "xxh3_128"
_KEY = re.compile(r"[0-9a-f]{64}")


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_digest(ids: Sequence[str], texts: Sequence[str]) -> str:
    """sha256 over the exact (id, text) pairs in order; one JSON array per line, so no
    two different lists can produce the same byte stream."""
    if len(ids) != len(texts):
        raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
    digest = hashlib.sha256()
    for text_id, text in zip(ids, texts):
        digest.update(_canonical_json([text_id, text]).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def store_key(encoder_identity: Mapping[str, Any], role: str, ids: Sequence[str], texts: Sequence[str]) -> str:
    """The store key (64 hex chars) of these texts embedded by this encoder for this role."""
    try:
        identity = _canonical_json(dict(encoder_identity))
    except TypeError as err:
        raise TypeError(f"encoder identity must be JSON-serialisable: {err}") from err
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "identity": json.loads(identity),
        "role": role,
        "content": content_digest(ids, texts),
        "n_texts": len(ids),
    }
    return hashlib.sha256(_canonical_json(payload).encode("utf-8")).hexdigest()


def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    """The raw bytes of a contiguous CPU tensor, without a copy (any dtype, bfloat16 included)."""
    return memoryview(tensor.reshape(-1).view(torch.uint8).numpy())


def _checksum(header: Mapping[str, str], offsets: torch.Tensor, vectors: torch.Tensor) -> str:
    digest = xxhash.xxh3_128(_canonical_json(dict(header)).encode("utf-8"))
    digest.update(_tensor_bytes(offsets))
    digest.update(_tensor_bytes(vectors))  # streamed from the buffer, no copy
    return digest.hexdigest()


@dataclass(frozen=True)
class StoreEntryInfo:
    key: str
    path: Path
    n_texts: int
    n_vectors: int
    dim: int
    dtype: str
    metadata: Mapping[str, str] = field(default_factory=dict)  # the caller's metadata from put


class CorruptEntry(Exception):
    """An entry failed verification (internal: ``get`` turns it into a warning and None)."""


class EmbeddingStore:
    def __init__(self, root: Path | str, stale_temp_age_s: float = STALE_TEMP_AGE_S):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.remove_stale_temp_files(stale_temp_age_s)

    # ------------------------------------------------------------------ paths

    def path_of(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"store key must be 64 lowercase hex characters (a store_key), got {key!r}")
        return self.root / key[:2] / f"{key}{ENTRY_SUFFIX}"

    def remove_stale_temp_files(self, older_than_s: float = STALE_TEMP_AGE_S) -> int:
        """Delete temp files of writers that died (older than ``older_than_s``); returns the count."""
        cutoff = time.time() - older_than_s
        removed = 0
        for temp in self.root.glob(f"*/.*{TEMP_SUFFIX}"):
            try:
                if temp.stat().st_mtime <= cutoff:
                    temp.unlink()
                    removed += 1
            except FileNotFoundError:  # another process cleaned it or finished it
                continue
        if removed:
            logger.info("removed %d stale temp files under %s", removed, self.root)
        return removed

    # ------------------------------------------------------------------ API

    def contains(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def put(self, key: str, embeddings: RaggedEmbeddings, metadata: Mapping[str, str]) -> StoreEntryInfo:
        path = self.path_of(key)
        bad = [name for name, value in metadata.items() if not isinstance(name, str) or not isinstance(value, str)]
        if bad:
            raise TypeError(f"store metadata must map str to str; offending keys: {bad}")
        vectors = embeddings.vectors.detach().to("cpu").contiguous()
        offsets = embeddings.offsets.detach().to("cpu").contiguous()
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "key": key,
            "ids": json.dumps(list(embeddings.ids), ensure_ascii=False),
            "metadata": _canonical_json(dict(metadata)),
        }
        header[CHECKSUM_FIELD] = _checksum(header, offsets, vectors)
        # The temp name starts with a dot and ends in .partial: never mistaken for an entry.
        temp = path.parent / f".{key}.{os.getpid()}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file({"vectors": vectors, "offsets": offsets}, str(temp), metadata=header)
            fault_point("store-entry")
            with open(temp, "rb") as written:
                os.fsync(written.fileno())
            os.chmod(temp, file_mode())  # safetensors creates 0600; jobs sharing the cache must read it
            os.replace(temp, path)
        except BaseException as err:
            temp.unlink(missing_ok=True)
            if isinstance(err, OSError):
                raise naming_the_file(err, path) from err
            code = _os_error_code(err)  # safetensors wraps I/O errors in its own type
            if code is not None:
                raise OSError(code, f"{err} while writing {path}") from err
            raise
        fsync_dir(path.parent)
        return StoreEntryInfo(
            key=key, path=path, n_texts=len(embeddings), n_vectors=int(vectors.shape[0]), dim=int(vectors.shape[1]),
            dtype=str(vectors.dtype).removeprefix("torch."), metadata=dict(metadata),
        )

    def get(self, key: str, verify: bool = True) -> RaggedEmbeddings | None:
        """The entry, memory-mapped and verified; None if absent or damaged (then deleted).
        ``verify=False`` skips only the checksum (the header, tensor names and file size are
        still checked): for an entry this process verified or wrote moments ago."""
        path = self.path_of(key)
        try:
            identity = os.stat(path)
        except FileNotFoundError:
            return None
        try:
            return self._read(path, key, verify)
        except FileNotFoundError:  # replaced or removed between stat and open
            return None
        except PermissionError:  # not damage: the caller must see it
            raise
        except Exception as err:  # CorruptEntry, or whatever safetensors raises on a damaged file
            logger.warning("embedding store entry %s is damaged (%s: %s); deleting it", path, type(err).__name__, err)
            self._remove_if_same(path, identity)
            return None

    def metadata(self, key: str) -> Mapping[str, str]:
        """The caller's metadata of an entry, from its header only (no checksum; KeyError if absent).
        A damaged header gives ``{}`` and a warning; ``get`` will remove the entry."""
        path = self.path_of(key)
        if not path.is_file():
            raise KeyError(f"no embedding store entry {key} under {self.root}")
        try:
            return self._info(path).metadata
        except Exception as err:
            logger.warning("unreadable header in embedding store entry %s (%s: %s)", path, type(err).__name__, err)
            return {}

    def entries(self) -> list[StoreEntryInfo]:
        """Every complete entry, from the headers only (no checksum), sorted by key."""
        infos = []
        for path in sorted(self.root.glob(f"??/*{ENTRY_SUFFIX}")):
            try:
                infos.append(self._info(path))
            except Exception as err:  # a damaged header: list what is readable, leave repair to get()
                logger.warning("skipping unreadable embedding store entry %s (%s: %s)", path, type(err).__name__, err)
        return infos

    # ------------------------------------------------------------------ internals

    def _info(self, path: Path) -> StoreEntryInfo:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            vectors = handle.get_slice("vectors")
            shape = vectors.get_shape()
            dtype = vectors.get_dtype()
            n_offsets = handle.get_slice("offsets").get_shape()[0]
        return StoreEntryInfo(
            key=header.get("key", path.stem), path=path, n_texts=n_offsets - 1, n_vectors=shape[0], dim=shape[1],
            dtype=_DTYPE_NAMES.get(dtype, dtype.lower()), metadata=json.loads(header.get("metadata", "{}")),
        )

    def _read(self, path: Path, key: str, verify: bool = True) -> RaggedEmbeddings:
        # safe_open rejects a file whose size disagrees with its header (truncated or padded).
        with safe_open(str(path), framework="pt") as handle:
            header = dict(handle.metadata() or {})
            names = set(handle.keys())
            if names != {"vectors", "offsets"}:
                raise CorruptEntry(f"tensors {sorted(names)}, expected ['offsets', 'vectors']")
            vectors = handle.get_tensor("vectors")  # memory-mapped, copy-on-write
            offsets = handle.get_tensor("offsets")
        if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
            raise CorruptEntry(f"format {header.get('format')!r} version {header.get('format_version')!r}")
        if header.get("key") != key:
            raise CorruptEntry(f"header names key {header.get('key')!r}")
        stored = header.pop(CHECKSUM_FIELD, None)
        if stored is None:
            raise CorruptEntry(f"no {CHECKSUM_FIELD} checksum in the header")
        if verify and stored != _checksum(header, offsets, vectors):
            raise CorruptEntry(f"{CHECKSUM_FIELD} checksum mismatch")
        return RaggedEmbeddings(ids=tuple(json.loads(header["ids"])), vectors=vectors, offsets=offsets)

    @staticmethod
    def _remove_if_same(path: Path, seen: os.stat_result) -> None:
        """Delete ``path`` unless a concurrent writer has already replaced it with a new file."""
        try:
            now = os.stat(path)
            if (now.st_ino, now.st_dev) == (seen.st_ino, seen.st_dev):
                path.unlink()
        except FileNotFoundError:
            pass


_DTYPE_NAMES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16", "F64": "float64", "I64": "int64"}


def _os_error_code(err: BaseException) -> int | None:
    """The errno in a safetensors write error ("... (os error 28)"), so it keeps its OSError subclass."""
    found = re.search(r"\(os error (\d+)\)", str(err)) if isinstance(err, Exception) else None
    return int(found.group(1)) if found else None
