"""BGE-M3 ColBERT vectors (models/bge_m3.py): the format, and FlagEmbedding as the oracle.

The oracle (tests/models/bge_m3_oracle.py) runs in the isolated ``.venv-flagembedding``
(scripts/setup_flagembedding_oracle.sh); a missing oracle environment fails the parity
tests, never skips them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from models.bge_m3 import COLBERT_FILE, SPARSE_FILE, build_bge_m3_fixture, load_bge_m3
from nanobeir_ext.data.fixture import fixture_texts
from nanobeir_ext.embeddings.ragged import RaggedEmbeddings
from nanobeir_ext.protocol import Encoder
from nanobeir_ext.retrieval.maxsim import maxsim_scores
from tests.helpers import REPO_DIR
from tests.parity.cases import fixture_ranking_texts

ORACLE_VENV = Path(os.environ.get("FLAGEMBEDDING_VENV", REPO_DIR / ".venv-flagembedding"))
ORACLE_PYTHON = ORACLE_VENV / "bin" / "python"
ORACLE_READY = ORACLE_VENV / ".oracle-ready-v1"
ORACLE_SCRIPT = Path(__file__).with_name("bge_m3_oracle.py")
VECTOR_TOLERANCE = 1e-5
# Short lengths, so that truncation is exercised on the fixture texts.
QUERY_LENGTH, DOCUMENT_LENGTH = 24, 96
EDGE_TEXTS = ["", " leading and trailing spaces ", "a", "Ünïcödé ﬁ ligature", "東京都", "한국어", "كتب"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return build_bge_m3_fixture(tmp_path_factory.mktemp("bge-m3") / "checkpoint", fixture_texts())


@pytest.fixture(scope="module")
def encoder(checkpoint):
    return load_bge_m3(str(checkpoint), query_length=QUERY_LENGTH, document_length=DOCUMENT_LENGTH, batch_tokens=512)


def test_checkpoint_is_in_bge_m3_format(checkpoint):
    names = {p.name for p in checkpoint.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", COLBERT_FILE, SPARSE_FILE} <= names
    assert json.loads((checkpoint / "config.json").read_text())["model_type"] == "xlm-roberta"
    colbert = torch.load(checkpoint / COLBERT_FILE, weights_only=True)
    assert set(colbert) == {"weight", "bias"} and colbert["weight"].shape == (64, 64)


def test_vectors_drop_the_first_token_keep_the_last_and_are_unit(encoder):
    assert isinstance(encoder, Encoder)
    texts = ["hello world", "東京都に住んでいます"]
    out = encoder.encode(texts, "document", progress=False)
    ids = encoder.tokenizer(texts)["input_ids"]
    for vectors, row in zip(out.embeddings, ids):
        assert row[0] == encoder.tokenizer.cls_token_id and row[-1] == encoder.tokenizer.eos_token_id
        assert vectors.shape == (len(row) - 1, 64) and vectors.dtype == torch.float32
        torch.testing.assert_close(vectors.norm(dim=1), torch.ones(len(row) - 1))
    assert out.tokens == sum(map(len, ids)) and out.truncated == 0
    # The vectors of a text do not depend on its batch.
    alone = encoder.encode(texts[1:], "document", progress=False).embeddings[0]
    torch.testing.assert_close(alone, out.embeddings[1], atol=1e-5, rtol=0)


def test_truncation_and_identity(checkpoint, encoder):
    long = " ".join(["retrieval"] * 200)
    out = encoder.encode([long, "short"], "query", progress=False)
    assert out.truncated == 1 and out.embeddings[0].shape[0] == QUERY_LENGTH - 1
    assert encoder.info.weights == "random-init" and encoder.info.weights_hash
    other = load_bge_m3(str(checkpoint), query_length=32, document_length=DOCUMENT_LENGTH)
    assert other.cache_identity() != encoder.cache_identity()
    assert load_bge_m3(str(checkpoint), query_length=QUERY_LENGTH, document_length=DOCUMENT_LENGTH).cache_identity() == encoder.cache_identity()
    with pytest.raises(ValueError, match="role"):
        encoder.encode(["x"], "passage", progress=False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encoder.encode([None], "query", progress=False)  # type: ignore[list-item]


def test_missing_colbert_weights_is_an_error(checkpoint, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in checkpoint.iterdir():
        if path.name != COLBERT_FILE:
            (broken / path.name).write_bytes(path.read_bytes())
    with pytest.raises(FileNotFoundError, match=COLBERT_FILE):
        load_bge_m3(str(broken))


# -- FlagEmbedding parity -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def oracle(checkpoint, tmp_path_factory) -> dict:
    if not ORACLE_PYTHON.is_file() or not ORACLE_READY.is_file():
        pytest.fail(f"the FlagEmbedding oracle environment is missing ({ORACLE_VENV}): run scripts/setup_flagembedding_oracle.sh", pytrace=False)
    texts = fixture_ranking_texts()
    texts = {"queries": texts["queries"] + EDGE_TEXTS, "documents": texts["documents"] + EDGE_TEXTS}
    out = tmp_path_factory.mktemp("bge-m3-oracle")
    spec = {"checkpoint": str(checkpoint), **texts, "query_length": QUERY_LENGTH, "document_length": DOCUMENT_LENGTH}
    (out / "spec.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONHASHSEED": "0"}
    result = subprocess.run([str(ORACLE_PYTHON), str(ORACLE_SCRIPT), str(out / "spec.json"), str(out)],
                            env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        pytest.fail(f"FlagEmbedding oracle failed (exit {result.returncode}):\n{result.stderr[-4000:]}", pytrace=False)
    print(result.stdout.strip().splitlines()[-1], file=sys.stderr)
    return {"texts": texts, "reference": load_file(str(out / "reference.safetensors"))}


def _split(reference: dict, role: str) -> list[torch.Tensor]:
    return list(torch.split(reference[f"{role}.vectors"], reference[f"{role}.counts"].tolist()))


@pytest.mark.parity
@pytest.mark.parametrize("role", ["query", "document"])
def test_vectors_match_flagembedding(oracle, encoder, role):
    texts = oracle["texts"]["queries" if role == "query" else "documents"]
    ours = encoder.encode(texts, role, progress=False).embeddings
    theirs = _split(oracle["reference"], role)
    assert [len(v) for v in ours] == [len(v) for v in theirs]
    worst = max(float((a - b).abs().max()) for a, b in zip(ours, theirs) if len(a))
    assert worst <= VECTOR_TOLERANCE, f"largest vector difference {worst:.2e}"
    assert any(len(v) == (QUERY_LENGTH if role == "query" else DOCUMENT_LENGTH) - 1 for v in ours)  # truncation exercised


@pytest.mark.parity
def test_rankings_match_flagembedding(oracle, encoder):
    texts, reference = oracle["texts"], oracle["reference"]
    queries = RaggedEmbeddings.from_list([f"q{i}" for i in range(len(texts["queries"]))], encoder.encode(texts["queries"], "query", progress=False).embeddings)
    documents = RaggedEmbeddings.from_list([f"d{i}" for i in range(len(texts["documents"]))], encoder.encode(texts["documents"], "document", progress=False).embeddings)
    ours = maxsim_scores(queries, documents)
    # FlagEmbedding divides the MaxSim sum by the number of query vectors: one constant per query.
    counts = queries.lengths.to(torch.float32).clamp(min=1).unsqueeze(1)
    torch.testing.assert_close(ours / counts, reference["scores"], atol=1e-5, rtol=0)
    # Identical rankings: the same order of every query's documents (ties within float noise excepted).
    theirs = reference["scores"]
    for q in range(len(texts["queries"])):
        order = torch.argsort(ours[q], descending=True, stable=True)
        gaps = theirs[q, order][:-1] - theirs[q, order][1:]
        assert float(gaps.min()) >= -1e-6, f"query {q}: FlagEmbedding orders two documents the other way"
