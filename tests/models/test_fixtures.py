"""The tiny fixture checkpoints: architectures, tokenizers, determinism, caching, loading."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import string
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoTokenizer

import models.fixtures as fixture_models
from models.colbert import load_colbert
from nanobeir_ext.data.fixture import fixture_texts, load_source
from models.fixtures import (
    FIXTURE_ARCHITECTURES,
    FIXTURE_LENGTHS,
    build_backbone_folder,
    build_fixture_checkpoint,
    build_fixture_checkpoints,
    fixture_key,
    write_colbert_checkpoint,
)
from nanobeir_ext.languages import MATRIX_LANGUAGES


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return fixture_texts()


@pytest.fixture(scope="module")
def checkpoints(shared_cache: Path, texts: list[str]) -> dict[str, Path]:
    return build_fixture_checkpoints(shared_cache / "fixture-models", texts)


def file_digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_backbones_have_the_architecture_features_that_matter(tmp_path: Path, texts: list[str]) -> None:
    lfm2 = AutoConfig.from_pretrained(build_backbone_folder("lfm2", tmp_path / "lfm2", texts))
    assert lfm2.model_type == "lfm2" and lfm2.architectures == ["Lfm2Model"]
    assert set(lfm2.layer_types) == {"conv", "full_attention"}  # short convolutions and attention
    modernbert = AutoConfig.from_pretrained(build_backbone_folder("modernbert", tmp_path / "modernbert", texts))
    assert modernbert.model_type == "modernbert" and modernbert.architectures == ["ModernBertModel"]
    assert set(modernbert.layer_types) == {"full_attention", "sliding_attention"}
    assert modernbert.local_attention < 64  # the window is smaller than a fixture document
    for folder in (tmp_path / "lfm2", tmp_path / "modernbert"):
        assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= {p.name for p in folder.iterdir()}


def test_lfm2_tokenizer_is_shaped_like_the_real_one(checkpoints: dict[str, Path]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(checkpoints["lfm2"])
    assert tokenizer.bos_token == "<|startoftext|>" and tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.mask_token is None  # so PyLate (and we) pad query expansion with EOS
    ids = tokenizer("hello world")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] != tokenizer.eos_token_id  # BOS only


def test_modernbert_tokenizer_wraps_with_cls_and_sep_and_has_a_mask(checkpoints: dict[str, Path]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(checkpoints["modernbert"])
    ids = tokenizer("hello world")["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert tokenizer.mask_token == "[MASK]"


@pytest.mark.parametrize("arch", FIXTURE_ARCHITECTURES)
def test_tokenizers_cover_every_language_and_the_skiplist(checkpoints: dict[str, Path], arch: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(checkpoints[arch])
    record = load_source("NanoSciFact")["corpus"][0]["text"]
    for lang in MATRIX_LANGUAGES:
        ids = tokenizer(record[lang], add_special_tokens=False)["input_ids"]
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids) == record[lang], lang
        assert len(ids) < len(record[lang].encode("utf-8")), f"{lang}: BPE learned no merges"
    punctuation_ids = tokenizer.convert_tokens_to_ids(list(string.punctuation))
    assert None not in punctuation_ids and tokenizer.unk_token_id not in punctuation_ids
    assert len(set(punctuation_ids)) == len(string.punctuation)
    # A standalone punctuation character is tokenized as exactly that token.
    ids = tokenizer("a, b.", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_tokens_to_ids(",") in ids and tokenizer.convert_tokens_to_ids(".") in ids


@pytest.mark.parametrize("arch", FIXTURE_ARCHITECTURES)
def test_fixture_checkpoints_load_as_random_init_colbert(checkpoints: dict[str, Path], arch: str) -> None:
    encoder = load_colbert(str(checkpoints[arch]))
    assert encoder.info.weights == "random-init"
    assert (encoder.settings.query_length, encoder.settings.document_length) == FIXTURE_LENGTHS[arch]
    assert encoder.settings.query_prefix == "[Q] " and encoder.settings.document_prefix == "[D] "
    out = encoder.encode(["Vitamin D and respiratory infections.", "ビタミンD"], "document", progress=False)
    assert all(v.shape[1] == fixture_models.EMBEDDING_SIZE for v in out.embeddings)
    # Random weights still give distinct tokens distinct vectors.
    first = out.embeddings[0]
    similarity = first @ first.T
    assert float(similarity[~torch.eye(len(first), dtype=torch.bool)].max()) < 0.999


def test_building_is_deterministic(tmp_path: Path, texts: list[str]) -> None:
    first = build_fixture_checkpoints(tmp_path / "a", texts)
    second = build_fixture_checkpoints(tmp_path / "b", texts)
    for arch in FIXTURE_ARCHITECTURES:
        assert first[arch].name == second[arch].name
        assert file_digests(first[arch]) == file_digests(second[arch])


def test_building_leaves_the_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    build_fixture_checkpoint("modernbert", tmp_path, ["a few words", "quelques mots"])
    assert torch.equal(torch.get_rng_state(), state)


def test_cache_is_content_addressed_and_reused(tmp_path: Path) -> None:
    texts = ["one text about cats.", "un texte sur les chats."]
    assert fixture_key("lfm2", texts) != fixture_key("lfm2", texts + ["more"])
    assert fixture_key("lfm2", texts) != fixture_key("modernbert", texts)
    path = build_fixture_checkpoint("lfm2", tmp_path, texts)
    sentinel = path / "sentinel"
    sentinel.write_text("kept")
    assert build_fixture_checkpoint("lfm2", tmp_path, texts) == path
    assert sentinel.read_text() == "kept"  # reused, not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no staging folder left behind


def test_a_lost_build_race_uses_the_winners_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["race text", "texte de course"]
    winner = tmp_path / "winner"
    build_fixture_checkpoint("lfm2", winner, texts)
    real_rename = fixture_models.os.rename

    def rename_after_another_process(source: str, target: str) -> None:
        real_rename(winner / Path(target).name, target)  # the other process finishes first
        real_rename(source, target)  # our rename now fails: the target is not empty

    monkeypatch.setattr(fixture_models.os, "rename", rename_after_another_process)
    path = build_fixture_checkpoint("lfm2", tmp_path / "cache", texts)
    assert path.name == fixture_key("lfm2", texts)
    assert json.loads((path / "nanobeir_fixture.json").read_text())["architecture"] == "lfm2"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]


def test_writer_options_are_read_back(tmp_path: Path) -> None:
    backbone = build_backbone_folder("modernbert", tmp_path / "backbone", ["Some words, and more words.", "Autres mots."])
    checkpoint = write_colbert_checkpoint(
        backbone, tmp_path / "colbert", dense_layers=((64, 48, True), (48, 16, False)), query_prefix="[query] ", document_prefix="",
        query_length=12, document_length=40, do_query_expansion=False, skiplist_words=(",", "."), do_lower_case=True,
    )
    encoder = load_colbert(str(checkpoint))
    assert encoder.info.weights == "real"  # no fixture marker: write_colbert_checkpoint alone does not label
    settings = encoder.settings
    assert (settings.query_prefix, settings.document_prefix, settings.query_length, settings.document_length) == ("[query] ", "", 12, 40)
    assert (settings.do_query_expansion, settings.skiplist_words, settings.do_lower_case) == (False, (",", "."), True)
    assert [(c.in_features, c.out_features, c.bias) for c in encoder.dense.configs] == [(64, 48, True), (48, 16, False)]
    assert encoder.encode(["Hello"], "query", progress=False).embeddings[0].shape[1] == 16


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown fixture architecture 'bert'.*lfm2"):
        build_backbone_folder("bert", tmp_path, ["text"])
    with pytest.raises(ValueError, match="needs texts"):
        build_backbone_folder("lfm2", tmp_path, [])
    backbone = build_backbone_folder("lfm2", tmp_path / "b", ["text one", "text two"])
    with pytest.raises(ValueError, match="hidden size 64"):
        write_colbert_checkpoint(backbone, tmp_path / "c", dense_layers=((32, 16, False),))


DAMAGE_TEXTS = ["damage text about cats.", "un texte abîmé sur les chats."]


@pytest.mark.parametrize("damage", ["change_weights", "truncate_weights", "delete_dense", "delete_marker"])
def test_a_damaged_cached_fixture_is_detected_logged_and_rebuilt(tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    path = build_fixture_checkpoint("lfm2", tmp_path, DAMAGE_TEXTS)
    original = file_digests(path)
    weights = path / "model.safetensors"
    if damage == "change_weights":
        data = bytearray(weights.read_bytes())
        data[-1] ^= 1  # same size: only the content hash can tell
        weights.write_bytes(bytes(data))
    elif damage == "truncate_weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "delete_dense":
        shutil.rmtree(path / "1_Dense")
    else:
        (path / "nanobeir_fixture.json").unlink()
    assert fixture_models.damage(path) is not None
    with caplog.at_level("WARNING", logger="models.fixtures"):
        assert build_fixture_checkpoint("lfm2", tmp_path, DAMAGE_TEXTS) == path
    assert "damaged" in caplog.text and "rebuilding" in caplog.text
    assert file_digests(path) == original
    assert fixture_models.damage(path) is None
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # nothing left aside


def test_an_added_file_is_not_damage(tmp_path: Path) -> None:
    path = build_fixture_checkpoint("lfm2", tmp_path, DAMAGE_TEXTS)
    (path / "notes.txt").write_text("mine")
    assert fixture_models.damage(path) is None


def test_staging_folders_are_removed_on_failure_and_by_the_next_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = fixture_key("lfm2", DAMAGE_TEXTS)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    killed = tmp_path / f".{name}.{dead}.abc123"  # a build killed mid-way (its process is gone)
    (killed / "checkpoint").mkdir(parents=True)
    live = tmp_path / f".{name}.{os.getpid()}.live99"  # a build still running in this process
    live.mkdir()

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fixture_models, "write_colbert_checkpoint", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        build_fixture_checkpoint("lfm2", tmp_path, DAMAGE_TEXTS)
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]  # the failed build's own staging is gone too
    monkeypatch.undo()
    path = build_fixture_checkpoint("lfm2", tmp_path, DAMAGE_TEXTS)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, live.name])


def test_built_checkpoints_honour_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        path = build_fixture_checkpoint("lfm2", tmp_path, DAMAGE_TEXTS)
    finally:
        os.umask(previous)
    modes = {p.relative_to(path).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [path, *path.rglob("*")]}
    assert modes["model.safetensors"] == 0o640 and modes["1_Dense/model.safetensors"] == 0o640  # safetensors writes 0600
    assert modes["."] == 0o750 and modes["1_Dense"] == 0o750  # mkdtemp makes 0700
    assert set(modes.values()) <= {0o640, 0o750}
