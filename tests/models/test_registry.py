"""models.registry.load_encoder: the one fixture / folder / hub switch, its labels and its defaults."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.checkpoint import CheckpointError, ModelUnavailableError
from models.batching import DEFAULT_BATCH_TOKENS
from models.registry import fixture_models_dir, load_encoder
from nanobeir_ext.protocol import EncoderRequest


def fixture_request(**overrides) -> EncoderRequest:
    return EncoderRequest(**{"name": "tiny", "source": "fixture", "fixture": "lfm2", **overrides})


def test_a_fixture_is_labelled_random_init_with_its_architecture_as_source(shared_cache: Path) -> None:
    encoder = load_encoder(fixture_request(), device="cpu", dtype="auto", cache_dir=shared_cache)
    assert (encoder.info.name, encoder.info.weights, encoder.info.source) == ("tiny", "random-init", "fixture:lfm2")
    assert encoder.info.dtype == "float32" and encoder.info.weights_hash is not None
    # The label comes from the checkpoint's marker file: loading the same folder by path says the same.
    folder = next(fixture_models_dir(shared_cache).glob("lfm2-*"))
    by_path = load_encoder(EncoderRequest(name="tiny", source="unused", path=str(folder)), device="cpu",
                           dtype="float32", cache_dir=shared_cache)
    assert (by_path.info.weights, by_path.info.source) == ("random-init", "fixture:lfm2")
    assert by_path.cache_identity() == encoder.cache_identity()


def test_batch_tokens_none_means_the_one_default(shared_cache: Path) -> None:
    default = load_encoder(fixture_request(), device="cpu", dtype="float32", cache_dir=shared_cache)
    assert default.batch_tokens == DEFAULT_BATCH_TOKENS == 32768
    assert load_encoder(fixture_request(batch_tokens=512), device="cpu", dtype="float32",
                        cache_dir=shared_cache).batch_tokens == 512


def test_lengths_override_the_checkpoint(shared_cache: Path) -> None:
    encoder = load_encoder(fixture_request(query_length=16, document_length=40), device="cpu", dtype="float32",
                           cache_dir=shared_cache)
    assert (encoder.settings.query_length, encoder.settings.document_length) == (16, 40)


def test_unknown_fixture_and_missing_folder_and_uncached_hub_model(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ValueError, match=r"valid choices: \['lfm2', 'modernbert'\]"):
        load_encoder(fixture_request(fixture="bert"), device="cpu", dtype="float32", cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_encoder(EncoderRequest(name="x", source="x", path=str(tmp_path / "nope")), device="cpu",
                     dtype="float32", cache_dir=tmp_path)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelUnavailableError, match="not-in-any-cache"):
        load_encoder(EncoderRequest(name="x", source="nanobeir-test/not-in-any-cache", revision="main"),
                     device="cpu", dtype="float32", cache_dir=tmp_path, local_files_only=True)


def test_a_fixture_with_a_path_is_refused_not_silently_built(shared_cache: Path) -> None:
    folder = next(fixture_models_dir(shared_cache).glob("lfm2-*"), None) or shared_cache
    with pytest.raises(ValueError, match=r"both a fixture architecture \(lfm2\) and a checkpoint folder"):
        load_encoder(fixture_request(path=str(folder)), device="cpu", dtype="float32", cache_dir=shared_cache)


def _damaged_copy(shared_cache: Path, tmp_path: Path) -> Path:
    load_encoder(fixture_request(), device="cpu", dtype="float32", cache_dir=shared_cache)  # built once
    target = tmp_path / "checkpoint"
    shutil.copytree(next(fixture_models_dir(shared_cache).glob("lfm2-*")), target)
    return target


@pytest.mark.parametrize(("damage", "named", "problem"), [
    ("truncate_weights", "model.safetensors", "truncated"),
    ("truncate_dense", "1_Dense/model.safetensors", "truncated"),
    ("delete_tokenizer", "has no tokenizer vocabulary", "incomplete"),
    ("truncate_tokenizer", "tokenizer.json", "not valid JSON"),
    ("delete_config", "config.json", "missing"),
])
def test_a_damaged_checkpoint_folder_names_the_file(shared_cache: Path, tmp_path: Path, damage: str, named: str, problem: str) -> None:
    folder = _damaged_copy(shared_cache, tmp_path)
    if damage.startswith("truncate"):
        path = folder / {"truncate_weights": "model.safetensors", "truncate_dense": "1_Dense/model.safetensors",
                         "truncate_tokenizer": "tokenizer.json"}[damage]
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        (folder / {"delete_tokenizer": "tokenizer.json", "delete_config": "config.json"}[damage]).unlink()
    with pytest.raises(CheckpointError) as error:
        load_encoder(EncoderRequest(name="x", source="x", path=str(folder)), device="cpu", dtype="float32", cache_dir=tmp_path)
    assert named in str(error.value) and problem in str(error.value), str(error.value)
