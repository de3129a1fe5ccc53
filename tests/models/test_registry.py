"""models.registry.load_encoder: the one fixture / folder / hub switch, its labels and its defaults."""
from __future__ import annotations

from pathlib import Path

import pytest

from models.checkpoint import ModelUnavailableError
from models.colbert import DEFAULT_BATCH_TOKENS
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
