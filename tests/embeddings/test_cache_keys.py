"""Every change that alters vectors gives another store key, so a shared store never returns stale vectors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from models.colbert import load_colbert
from models.registry import fixture_models_dir
from models.fixtures import build_fixture_checkpoints
from nanobeir_ext.embeddings.store import store_key

IDS = ("d1", "d2")
TEXTS = ("Vitamin D and bone health.", "Le microbiote intestinal.")


@pytest.fixture(scope="module")
def base_checkpoint(shared_cache) -> Path:
    return build_fixture_checkpoints(fixture_models_dir(shared_cache))["lfm2"]


def edit_json(folder: Path, name: str, **changes) -> None:
    path = folder / name
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def perturb(path: Path) -> None:
    tensors = load_file(path)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] += 0.5
    save_file(tensors, path)


VARIANTS = {
    "query_length": ({"query_length": 16}, None),
    "document_length": ({"document_length": 40}, None),
    "dtype": ({"dtype": "bfloat16"}, None),
    "no_expansion": ({}, lambda d: edit_json(d, "config_sentence_transformers.json", do_query_expansion=False)),
    "attend_expansion": ({}, lambda d: edit_json(d, "config_sentence_transformers.json", attend_to_expansion_tokens=True)),
    "prefix": ({}, lambda d: edit_json(d, "config_sentence_transformers.json", query_prefix="[D] ")),
    "skiplist": ({}, lambda d: edit_json(d, "config_sentence_transformers.json", skiplist_words=["."])),
    "lower_case": ({}, lambda d: edit_json(d, "sentence_bert_config.json", do_lower_case=True)),
    "backbone_weights": ({}, lambda d: perturb(d / "model.safetensors")),
    "dense_weights": ({}, lambda d: perturb(next(d.glob("1_Dense/*.safetensors")))),
}


def keys_of(folder: Path, **overrides) -> dict[str, str]:
    encoder = load_colbert(str(folder), **overrides)
    identity = encoder.cache_identity()
    return {role: store_key(identity, role, IDS, TEXTS) for role in ("query", "document")}


def test_the_same_checkpoint_copied_elsewhere_keeps_its_keys(base_checkpoint, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(base_checkpoint, copy)
    assert keys_of(copy) == keys_of(base_checkpoint)  # content, not path, identifies a local model


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_vector_changing_setting_changes_the_key(variant, base_checkpoint, tmp_path):
    overrides, edit = VARIANTS[variant]
    folder = base_checkpoint
    if edit is not None:
        folder = tmp_path / "edited"
        shutil.copytree(base_checkpoint, folder)
        edit(folder)
    base, changed = keys_of(base_checkpoint), keys_of(folder, **overrides)
    # Query-only or document-only settings may leave the other role's vectors (and key) unchanged,
    # but at least one role must change, and whichever role's vectors change must change its key.
    assert base != changed
    encoder_base = load_colbert(str(base_checkpoint))
    encoder_new = load_colbert(str(folder), **overrides)
    for role in ("query", "document"):
        old = encoder_base.encode(list(TEXTS), role, progress=False).embeddings
        new = encoder_new.encode(list(TEXTS), role, progress=False).embeddings
        same_vectors = all(a.shape == b.shape and torch.allclose(a, b, atol=1e-6) for a, b in zip(old, new))
        if not same_vectors:
            assert base[role] != changed[role], f"{variant}: {role} vectors changed but the key did not"
