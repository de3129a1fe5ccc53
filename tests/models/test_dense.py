"""Dense sentence-transformers encoder (models/dense.py) against sentence-transformers' own numbers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sentence_transformers import SentenceTransformer

from models.dense import build_dense_fixture, load_dense
from models.fixtures import build_backbone_folder
from nanobeir_ext.protocol import Encoder

TEXTS = ["the cat sat on the mat", "東京都に住んでいます", "한국어 문장을 분석합니다", "Die Straße der Häuser", "كتب الطالب الكتاب",
         "a much longer English text about retrieval models and their evaluation on many languages " * 3]


@pytest.fixture(scope="module")
def backbone(tmp_path_factory) -> Path:
    return build_backbone_folder("modernbert", tmp_path_factory.mktemp("dense") / "backbone", TEXTS * 3)


@pytest.fixture(scope="module")
def checkpoint(backbone, tmp_path_factory) -> Path:
    return build_dense_fixture(backbone, tmp_path_factory.mktemp("dense") / "st", max_seq_length=16)


def stacked(output) -> torch.Tensor:
    assert all(e.shape == (1, e.shape[1]) and e.dtype == torch.float32 for e in output.embeddings)
    return torch.cat(output.embeddings)


def test_vectors_are_sentence_transformers_own(checkpoint):
    encoder = load_dense(str(checkpoint))
    assert isinstance(encoder, Encoder)
    reference = SentenceTransformer(str(checkpoint), device="cpu")
    # The checkpoint's prompts, chosen as encode_query / encode_document choose them.
    assert encoder.prompts == {"query": "query: ", "document": "passage: "}
    for role, encode in (("query", reference.encode_query), ("document", reference.encode_document)):
        ours = stacked(encoder.encode(TEXTS, role, progress=False))
        assert torch.equal(ours, encode(TEXTS, convert_to_tensor=True).cpu())
    # The prompt really is prepended: without it the vectors differ.
    plain = reference.encode(TEXTS, convert_to_tensor=True)
    assert not torch.allclose(stacked(encoder.encode(TEXTS, "query", progress=False)), plain)


def test_one_unit_vector_per_text_batch_invariant(checkpoint):
    encoder = load_dense(str(checkpoint), batch_size=2)
    together = stacked(encoder.encode(TEXTS, "document", progress=False))
    alone = torch.cat([stacked(encoder.encode([t], "document", progress=False)) for t in TEXTS])
    assert together.shape == (len(TEXTS), 64)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(together.norm(dim=1), torch.ones(len(TEXTS)))


def test_token_statistics(checkpoint):
    encoder = load_dense(str(checkpoint))
    out = encoder.encode(TEXTS, "query", progress=False)
    assert out.truncated == 1  # only the long text passes 16 tokens
    lengths = [min(16, len(ids)) for ids in encoder.model.tokenizer(["query: " + t for t in TEXTS])["input_ids"]]
    assert out.tokens == sum(lengths) and out.padded_tokens >= out.tokens


def test_configured_prompts_and_normalisation(backbone, tmp_path):
    # A checkpoint without a Normalize module, with dot-product similarity: not normalised by default.
    folder = build_dense_fixture(backbone, tmp_path / "dot", prompts={}, normalize_module=False)
    config_path = folder / "config_sentence_transformers.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "similarity_fn_name": "dot"}))
    raw = load_dense(str(folder))
    assert raw.normalize is False and raw.prompts == {"query": "", "document": ""}
    norms = stacked(raw.encode(TEXTS, "query", progress=False)).norm(dim=1)
    assert not torch.allclose(norms, torch.ones(len(TEXTS)))
    forced = load_dense(str(folder), normalize=True, query_prompt="search_query: ")
    reference = SentenceTransformer(str(folder), device="cpu")
    expected = reference.encode(TEXTS, prompt="search_query: ", normalize_embeddings=True, convert_to_tensor=True)
    assert torch.equal(stacked(forced.encode(TEXTS, "query", progress=False)), expected)
    # Every setting that changes vectors changes the cache identity.
    identities = [raw.cache_identity(), forced.cache_identity(), load_dense(str(folder), normalize=True).cache_identity(),
                  load_dense(str(folder), document_prompt="doc: ").cache_identity(), load_dense(str(folder), max_seq_length=8).cache_identity()]
    assert len({json.dumps(i, sort_keys=True) for i in identities}) == len(identities)
    assert raw.cache_identity() == load_dense(str(folder)).cache_identity()


def test_cosine_default_normalises_and_other_similarities_are_refused(backbone, tmp_path):
    folder = build_dense_fixture(backbone, tmp_path / "cos", normalize_module=False)
    assert load_dense(str(folder)).normalize is True  # cosine by default: normalised so dot product ranks the same
    config_path = folder / "config_sentence_transformers.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "similarity_fn_name": "euclidean"}))
    with pytest.raises(ValueError, match="euclidean"):
        load_dense(str(folder))


def test_label_and_bad_inputs(checkpoint):
    encoder = load_dense(str(checkpoint), name="tiny-dense")
    assert encoder.info.name == "tiny-dense" and encoder.info.weights == "random-init"
    assert encoder.info.weights_hash and encoder.info.settings["normalize"] is True
    assert encoder.encode([], "query", progress=False).embeddings == []
    with pytest.raises(ValueError, match="role"):
        encoder.encode(["x"], "passage", progress=False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encoder.encode([None], "query", progress=False)  # type: ignore[list-item]
