"""The embedding store: keys, bit-exact round trips, damage detection, crash and concurrency safety."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from nanobeir_ext.embeddings.ragged import RaggedEmbeddings
from nanobeir_ext.embeddings.store import EmbeddingStore, store_key
from tests.helpers import REPO_DIR

IDENTITY = {"model": "fixture/lfm2", "revision": None, "weights_hash": "abc", "dtype": "float32",
            "settings": {"query_length": 32, "document_length": 180, "prefixes": ["[Q] ", "[D] "]}}


def ragged(lengths: list[int], dim: int = 16, dtype: torch.dtype = torch.float32, seed: int = 0) -> RaggedEmbeddings:
    generator = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(n, dim, generator=generator).to(dtype) for n in lengths]
    return RaggedEmbeddings.from_list([f"d{i}" for i in range(len(lengths))], tensors, dim=dim)


def bits(tensor: torch.Tensor) -> torch.Tensor:
    """Integer view of a tensor's bytes, so equality means bit-exact (NaN and -0.0 included)."""
    return tensor.view({torch.float32: torch.int32, torch.bfloat16: torch.int16}[tensor.dtype])


def any_key(seed: int = 0) -> str:
    return store_key(IDENTITY, "document", [f"id{seed}"], [f"text {seed}"])


# ----------------------------------------------------------------------------- keys


def test_key_is_stable_and_order_insensitive_in_the_identity():
    ids, texts = ["a", "b"], ["alpha", "beta"]
    key = store_key(IDENTITY, "document", ids, texts)
    reordered = dict(reversed(list(IDENTITY.items())))
    assert store_key(reordered, "document", tuple(ids), tuple(texts)) == key
    assert len(key) == 64 and int(key, 16) >= 0


@pytest.mark.parametrize("change", ["identity", "nested setting", "role", "ids", "texts", "text boundary", "order", "extra text"])
def test_key_changes_when_any_part_changes(change):
    ids, texts, identity, role = ["a", "b"], ["ab", "c"], dict(IDENTITY), "document"
    base = store_key(identity, role, ids, texts)
    if change == "identity":
        identity["dtype"] = "bfloat16"
    elif change == "nested setting":
        identity["settings"] = {**IDENTITY["settings"], "document_length": 181}
    elif change == "role":
        role = "query"
    elif change == "ids":
        ids = ["a", "B"]
    elif change == "texts":
        texts = ["ab", "c "]
    elif change == "text boundary":  # same concatenation, different split between texts
        texts = ["a", "bc"]
    elif change == "order":
        ids, texts = ids[::-1], texts[::-1]
    elif change == "extra text":
        ids, texts = ids + ["c"], texts + [""]
    assert store_key(identity, role, ids, texts) != base


def test_key_rejects_mismatched_lengths_and_unserialisable_identity():
    with pytest.raises(ValueError, match="2 ids but 1 texts"):
        store_key(IDENTITY, "query", ["a", "b"], ["x"])
    with pytest.raises(TypeError, match="JSON-serialisable"):
        store_key({"weights": object()}, "query", ["a"], ["x"])


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_round_trip_is_bit_exact(tmp_path, dtype):
    store = EmbeddingStore(tmp_path)
    embeddings = ragged([5, 0, 3, 11], dtype=dtype)
    special = embeddings.vectors.clone()
    special[0, :4] = torch.tensor([float("nan"), -0.0, float("inf"), 1e-40]).to(dtype)  # odd values survive too
    embeddings = RaggedEmbeddings(ids=("q1", "q-2", "ü3", "q 4"), vectors=special, offsets=embeddings.offsets)
    key = any_key()
    assert store.get(key) is None and not store.contains(key)

    info = store.put(key, embeddings, {"unit": "NanoSciFact en documents", "truncated": "2"})
    assert store.contains(key)
    assert (info.key, info.n_texts, info.n_vectors, info.dim) == (key, 4, 19, 16)
    assert info.dtype == str(dtype).removeprefix("torch.")
    assert info.path == tmp_path / key[:2] / f"{key}.safetensors" and info.path.is_file()

    loaded = store.get(key)
    assert loaded is not None
    assert loaded.ids == embeddings.ids
    assert loaded.vectors.dtype == dtype and loaded.vectors.shape == embeddings.vectors.shape
    assert torch.equal(bits(loaded.vectors), bits(embeddings.vectors))
    assert torch.equal(loaded.offsets, embeddings.offsets)
    assert store.metadata(key) == {"unit": "NanoSciFact en documents", "truncated": "2"}
    assert store.entries() == [info]


def test_loaded_vectors_are_private_to_the_reader(tmp_path):
    """The read is memory-mapped copy-on-write: writing into it must not change the entry."""
    store = EmbeddingStore(tmp_path)
    key = any_key()
    store.put(key, ragged([4, 4]), {})
    first = store.get(key)
    original = first.vectors.clone()
    first.vectors.add_(1.0)
    second = store.get(key)
    assert second is not None and torch.equal(second.vectors, original)


def test_empty_collection_round_trips(tmp_path):
    store = EmbeddingStore(tmp_path)
    key = store_key(IDENTITY, "query", [], [])
    store.put(key, RaggedEmbeddings.from_list([], [], dim=8), {})
    loaded = store.get(key)
    assert loaded is not None and len(loaded) == 0 and loaded.vectors.shape == (0, 8)


def test_bad_keys_and_metadata_are_rejected(tmp_path):
    store = EmbeddingStore(tmp_path)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        store.get("../escape")
    with pytest.raises(TypeError, match="offending keys: \\['tokens'\\]"):
        store.put(any_key(), ragged([1]), {"tokens": 3})
    with pytest.raises(KeyError):
        store.metadata(any_key())


# ----------------------------------------------------------------------------- damage


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    header_end = 8 + int.from_bytes(data[:8], "little")
    header = json.loads(data[8:header_end])
    if how == "truncated":
        data = data[: len(data) - 7]
    elif how == "flipped vector byte":
        data[-3] ^= 0x01
    elif how == "flipped offsets byte":
        start, _ = header["offsets"]["data_offsets"]
        data[header_end + start + 8] ^= 0x01  # low byte of offsets[1]
    elif how == "flipped id":
        at = data.index(b'\\"d1\\"', 8, header_end)  # the ids are a JSON string inside the JSON header
        data[at + 3] = ord("7")  # "d1" -> "d7"
    elif how == "padded":
        data += b"\0" * 16
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "flipped vector byte", "flipped offsets byte", "flipped id", "padded"])
def test_damaged_entry_is_logged_deleted_and_reported_absent(tmp_path, caplog, how):
    store = EmbeddingStore(tmp_path)
    key, other = any_key(0), any_key(1)
    path = store.put(key, ragged([3, 2, 4]), {}).path
    store.put(other, ragged([1, 1]), {})
    _damage(path, how)

    with caplog.at_level(logging.WARNING, logger="nanobeir_ext.embeddings.store"):
        assert store.get(key) is None
    assert any(key in record.getMessage() and "damaged" in record.getMessage() for record in caplog.records)
    assert not path.exists() and not store.contains(key)
    assert store.get(other) is not None  # the rest of the store is untouched
    # After a fresh put the key works again.
    store.put(key, ragged([3, 2, 4]), {})
    assert store.get(key) is not None


def test_verify_false_skips_only_the_checksum(tmp_path):
    """Phase 2 reads entries phase 1 verified moments ago without hashing them again: a flipped
    vector byte then goes unseen, but a truncated file or a wrong key is still refused."""
    store = EmbeddingStore(tmp_path)
    key = any_key(0)
    path = store.put(key, ragged([3, 2, 4]), {}).path
    _damage(path, "flipped vector byte")
    assert store.get(key, verify=False) is not None
    assert store.get(key) is None and not path.exists()  # the default verifies, and deletes
    path = store.put(key, ragged([3, 2, 4]), {}).path
    _damage(path, "truncated")
    assert store.get(key, verify=False) is None and not path.exists()


def test_an_entry_of_the_previous_format_is_replaced_not_trusted(tmp_path, caplog):
    """Format 1 entries carried a sha256 checksum: read as damaged (logged, deleted), so they are re-encoded."""
    from safetensors.torch import save_file

    store = EmbeddingStore(tmp_path)
    key = any_key(0)
    path = store.put(key, ragged([2, 1]), {}).path
    embeddings = store.get(key)
    header = {"format": "nanobeir-ext/ragged-embeddings", "format_version": "1", "key": key,
              "ids": json.dumps(list(embeddings.ids)), "metadata": "{}", "sha256": "0" * 64}
    save_file({"vectors": embeddings.vectors.clone(), "offsets": embeddings.offsets.clone()}, str(path), metadata=header)
    with caplog.at_level(logging.WARNING, logger="nanobeir_ext.embeddings.store"):
        assert store.get(key) is None
    assert "version '1'" in caplog.text and not path.exists()


def test_entry_filed_under_the_wrong_key_is_rejected(tmp_path, caplog):
    store = EmbeddingStore(tmp_path)
    key, other = any_key(0), any_key(1)
    path = store.put(key, ragged([2]), {}).path
    misplaced = store.path_of(other)
    misplaced.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, misplaced)
    with caplog.at_level(logging.WARNING, logger="nanobeir_ext.embeddings.store"):
        assert store.get(other) is None
    assert "header names key" in caplog.text


# ----------------------------------------------------------------------------- temp files


def test_stale_temp_files_are_removed_on_open_and_never_read(tmp_path):
    store = EmbeddingStore(tmp_path)
    key = any_key()
    folder = tmp_path / key[:2]
    folder.mkdir()
    stale = folder / f".{key}.123.abc.partial"
    fresh = folder / f".{key}.456.def.partial"
    stale.write_bytes(b"half an entry")
    fresh.write_bytes(b"a writer still busy")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))

    assert store.get(key) is None and store.entries() == []
    EmbeddingStore(tmp_path)
    assert not stale.exists() and fresh.exists()


# ----------------------------------------------------------------------------- processes


WRITER = textwrap.dedent(
    """
    import sys, torch
    from pathlib import Path
    from nanobeir_ext.embeddings.ragged import RaggedEmbeddings
    from nanobeir_ext.embeddings.store import EmbeddingStore, store_key

    root, rounds, names = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
    rows = int(sys.argv[4])
    store = EmbeddingStore(root)
    for _ in range(rounds):
        for name in names:
            # The key fixes the content: every writer of one key writes the same vectors.
            seed = sum(map(ord, name))
            vectors = torch.randn(rows, 128, generator=torch.Generator().manual_seed(seed))
            offsets = torch.tensor([0, rows // 2, rows], dtype=torch.int64)
            key = store_key({"test": "writer"}, "document", [name + "-a", name + "-b"], [name, name])
            store.put(key, RaggedEmbeddings((name + "-a", name + "-b"), vectors, offsets), {"name": name})
    print("done", flush=True)
    """
)


def writer_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_DIR), "OMP_NUM_THREADS": "1"}


def expected(name: str, rows: int) -> torch.Tensor:
    return torch.randn(rows, 128, generator=torch.Generator().manual_seed(sum(map(ord, name))))


def writer_key(name: str) -> str:
    return store_key({"test": "writer"}, "document", [name + "-a", name + "-b"], [name, name])


@pytest.mark.slow
def test_writer_killed_mid_write_leaves_no_readable_partial_entry(tmp_path):
    rows = 400_000  # 200 MB per entry: the write takes long enough to be caught in the middle
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "1000", "big", str(rows)],
                               env=writer_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        partial = []
        while time.time() < deadline and process.poll() is None:
            partial = [p for p in tmp_path.glob("*/.*.partial") if p.stat().st_size > 0]
            if partial:
                break
            time.sleep(0.002)
        assert partial, f"never saw a temp file being written (writer exit code {process.poll()})"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL

    store = EmbeddingStore(tmp_path)
    leftovers = list(tmp_path.glob("*/.*.partial"))
    assert leftovers, "the killed writer's temp file should still be there (it is younger than an hour)"
    key = writer_key("big")
    loaded = store.get(key)
    if loaded is not None:  # an earlier round may have finished: then it must be the complete entry
        assert torch.equal(loaded.vectors, expected("big", rows))
    assert [info.key for info in store.entries()] == ([key] if loaded is not None else [])

    EmbeddingStore(tmp_path, stale_temp_age_s=0)  # a later cleanup removes what the dead writer left
    assert not list(tmp_path.glob("*/.*.partial"))
    store.put(key, RaggedEmbeddings(("big-a", "big-b"), expected("big", 8), torch.tensor([0, 4, 8])), {})
    assert store.get(key) is not None


@pytest.mark.slow
def test_concurrent_writers_of_overlapping_keys_both_succeed(tmp_path):
    rows = 20_000
    first = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "6", "a,b,c", str(rows)], env=writer_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "6", "c,b,d", str(rows)], env=writer_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    for process, (out, err) in zip((first, second), outputs):
        assert process.returncode == 0, err
        assert out.strip() == "done"

    store = EmbeddingStore(tmp_path)
    assert sorted(info.key for info in store.entries()) == sorted(writer_key(name) for name in "abcd")
    for name in "abcd":
        loaded = store.get(writer_key(name))
        assert loaded is not None, name
        assert loaded.ids == (f"{name}-a", f"{name}-b")
        assert torch.equal(loaded.vectors, expected(name, rows))
    assert not list(tmp_path.glob("*/.*.partial"))


# ----------------------------------------------------------------------------- sharing and write errors


def test_entries_honour_the_umask(tmp_path):
    previous = os.umask(0o002)
    try:
        info = EmbeddingStore(tmp_path).put(any_key(), ragged([3, 2]), {})
    finally:
        os.umask(previous)
    assert info.path.stat().st_mode & 0o777 == 0o664  # a group sharing runtime.cache_dir can read it


def test_a_failed_write_names_the_entry_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    from nanobeir_ext.embeddings import store as store_module

    def disk_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise Exception("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(store_module, "save_file", disk_full)
    store = EmbeddingStore(tmp_path)
    key = any_key()
    with pytest.raises(OSError, match=f"No space left on device.*while writing {store.path_of(key)}") as raised:
        store.put(key, ragged([3]), {})
    assert raised.value.errno == errno.ENOSPC
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
