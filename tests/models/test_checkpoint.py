"""Reading the PyLate on-disk format: layout, settings, Dense layers, sources, content hash."""
from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from safetensors.torch import save_file

from models.checkpoint import (
    ColBERTSettings,
    ModelUnavailableError,
    checkpoint_files,
    content_hash,
    read_checkpoint_layout,
    resolve_source,
    settings_from_layout,
)
from models.colbert import load_colbert
from models.projection import DenseConfig, DenseLayer, DenseStack, activation_from_name, load_dense_layer
from models.fixtures import build_fixture_checkpoint

TEXTS = ["A small text about cats, dogs and birds.", "Un petit texte sur les chats.", "猫についての短い文章。"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fixture_checkpoint("modernbert", tmp_path_factory.mktemp("checkpoints"), TEXTS)


@pytest.fixture()
def copy(checkpoint: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(checkpoint, target)
    return target


def test_layout_of_a_checkpoint(checkpoint: Path) -> None:
    layout = read_checkpoint_layout(checkpoint)
    assert layout.transformer_dir == checkpoint
    assert layout.dense_dirs == (checkpoint / "1_Dense",)
    assert layout.colbert_config["query_prefix"] == "[Q] "
    assert layout.random_init


def test_missing_modules_json_is_not_a_colbert_checkpoint(copy: Path) -> None:
    (copy / "modules.json").unlink()
    with pytest.raises(FileNotFoundError, match="modules.json is missing"):
        read_checkpoint_layout(copy)


def test_modules_other_than_transformer_and_dense_are_ignored(copy: Path) -> None:
    modules = json.loads((copy / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (copy / "modules.json").write_text(json.dumps(modules))
    assert read_checkpoint_layout(copy).dense_dirs == (copy / "1_Dense",)


def test_a_checkpoint_without_dense_is_rejected(copy: Path) -> None:
    modules = json.loads((copy / "modules.json").read_text())[:1]
    (copy / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ValueError, match="no Dense module"):
        read_checkpoint_layout(copy)


def test_missing_settings_take_pylate_defaults(copy: Path) -> None:
    (copy / "config_sentence_transformers.json").write_text(json.dumps({"query_length": None, "document_length": 77}))
    (copy / "sentence_bert_config.json").unlink()
    settings = settings_from_layout(read_checkpoint_layout(copy))
    assert settings == ColBERTSettings(document_length=77)
    assert settings.query_prefix == "[Q] " and settings.query_length == 32 and settings.skiplist_words == tuple(string.punctuation)


def test_do_lower_case_comes_from_sentence_bert_config(copy: Path) -> None:
    (copy / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 10, "do_lower_case": True}))
    assert settings_from_layout(read_checkpoint_layout(copy)).do_lower_case


def test_a_default_prompt_is_refused(copy: Path) -> None:
    config = json.loads((copy / "config_sentence_transformers.json").read_text())
    config |= {"prompts": {"query": "query: ", "document": ""}, "default_prompt_name": "query"}
    (copy / "config_sentence_transformers.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="default_prompt_name 'query'"):
        settings_from_layout(read_checkpoint_layout(copy))


def test_settings_rules() -> None:
    assert not ColBERTSettings(do_query_expansion=False, attend_to_expansion_tokens=True).attend_to_expansion_tokens
    assert ColBERTSettings(attend_to_expansion_tokens=True).attend_to_expansion_tokens
    with pytest.raises(ValueError, match="query_length must be at least 2"):
        ColBERTSettings(query_length=1)
    assert ColBERTSettings(query_prefix="", query_length=1).query_length == 1
    with pytest.raises(ValueError, match="unknown ColBERT settings \\['query_len'\\]"):
        ColBERTSettings().with_overrides(query_len=3)
    assert ColBERTSettings().with_overrides(query_length=None, document_length=64).document_length == 64
    assert json.loads(json.dumps(ColBERTSettings().to_dict()))["skiplist_words"] == list(string.punctuation)


def test_dense_layer_forms() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 8)
    plain = DenseLayer(DenseConfig(8, 4, bias=False))
    assert torch.allclose(plain(x), x @ plain.linear.weight.T)
    tanh_residual = DenseLayer(DenseConfig(8, 4, bias=True, activation_function="torch.nn.modules.activation.Tanh", use_residual=True))
    expected = torch.tanh(x @ tanh_residual.linear.weight.T + tanh_residual.linear.bias) + x @ tanh_residual.residual.weight.T
    assert torch.allclose(tanh_residual(x), expected)
    identity_residual = DenseLayer(DenseConfig(8, 8, bias=False, use_residual=True))
    assert identity_residual.residual is None
    assert torch.allclose(identity_residual(x), x @ identity_residual.linear.weight.T + x)
    with pytest.raises(ValueError, match="do not chain"):
        DenseStack(DenseLayer(DenseConfig(8, 4)), DenseLayer(DenseConfig(5, 2)))


def test_activations_are_limited_to_torch_nn() -> None:
    assert isinstance(activation_from_name("torch.nn.modules.activation.GELU"), torch.nn.GELU)
    with pytest.raises(ValueError, match="only torch.nn modules"):
        activation_from_name("os.system")
    with pytest.raises(ValueError, match="not a torch.nn.Module"):
        activation_from_name("torch.nn.functional.relu")


def test_dense_weights_load_from_safetensors_or_torch_pickle(tmp_path: Path) -> None:
    config = {"in_features": 4, "out_features": 2, "bias": True, "activation_function": "torch.nn.modules.linear.Identity"}
    state = {"linear.weight": torch.arange(8.0).reshape(2, 4), "linear.bias": torch.tensor([1.0, -1.0])}
    for name, writer in (("st", lambda p: save_file(state, str(p / "model.safetensors"))), ("bin", lambda p: torch.save(state, p / "pytorch_model.bin"))):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(config))
        writer(folder)
        layer = load_dense_layer(folder)
        assert torch.equal(layer.linear.weight, state["linear.weight"]) and torch.equal(layer.linear.bias, state["linear.bias"])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text(json.dumps({**config, "bias": False}))
    save_file(state, str(tmp_path / "bad" / "model.safetensors"))
    with pytest.raises(ValueError, match="unexpected \\['linear.bias'\\]"):
        load_dense_layer(tmp_path / "bad")


def test_local_folders_resolve_without_a_revision(checkpoint: Path) -> None:
    resolved = resolve_source(str(checkpoint))
    assert resolved.folder == checkpoint.resolve() and resolved.revision is None
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_source("./no/such/folder")


def _fake_hub_cache(cache: Path, repo_id: str, commit: str, checkpoint: Path) -> None:
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(checkpoint, repo / "snapshots" / commit)


def test_hub_ids_resolve_from_the_local_cache_offline(checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    commit = "0123456789abcdef0123456789abcdef01234567"
    _fake_hub_cache(tmp_path, "fixture-org/tiny-colbert", commit, checkpoint)
    resolved = resolve_source("fixture-org/tiny-colbert", revision="main", cache_dir=tmp_path)
    assert resolved.revision == commit and resolved.source == "fixture-org/tiny-colbert"
    assert (resolved.folder / "modules.json").is_file()


@pytest.mark.parametrize("via", ["resolve_source", "load_colbert"])
def test_unreachable_hub_names_the_repo_and_the_way_out(via: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    load = resolve_source if via == "resolve_source" else load_colbert
    with pytest.raises(ModelUnavailableError) as error:
        load("made-up-org/no-such-colbert", revision="main")
    message = str(error.value)
    assert "made-up-org/no-such-colbert" in message and "HF_HUB_OFFLINE" in message and "model.path=/local/folder" in message


def test_content_hash_covers_weights_configs_and_tokenizer(checkpoint: Path, copy: Path) -> None:
    original = content_hash(checkpoint, checkpoint_files(read_checkpoint_layout(checkpoint)))
    assert content_hash(copy, checkpoint_files(read_checkpoint_layout(copy))) == original  # the location does not matter
    names = {p.relative_to(copy).as_posix() for p in checkpoint_files(read_checkpoint_layout(copy))}
    assert {"model.safetensors", "1_Dense/model.safetensors", "1_Dense/config.json", "tokenizer.json", "config_sentence_transformers.json"} <= names
    weights = copy / "1_Dense" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert content_hash(copy, checkpoint_files(read_checkpoint_layout(copy))) != original
