"""PyLate 1.6.0 parity: our encoder and MaxSim against PyLate on checkpoints PyLate wrote.

The oracle (tests/parity/oracle.py) runs once per session in the isolated
``.venv-pylate``; a missing oracle environment is a failure, never a skip.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from models.colbert import ColBERTEncoder, load_colbert
from nanobeir_ext.data.fixture import fixture_texts
from models.fixtures import FIXTURE_ARCHITECTURES, build_backbone_folder, build_fixture_checkpoints
from nanobeir_ext.embeddings.ragged import RaggedEmbeddings
from nanobeir_ext.retrieval.maxsim import maxsim_scores
from tests.parity.cases import LEFT_VARIANTS, VARIANT_NAMES, fixture_ranking_texts, lone_batch_texts, parity_texts, variants

pytestmark = pytest.mark.parity

from tests.helpers import REPO_DIR  # noqa: E402
# The same location scripts/setup_pylate_oracle.sh creates (PYLATE_VENV overrides it there too).
ORACLE_VENV = Path(os.environ.get("PYLATE_VENV", REPO_DIR / ".venv-pylate"))
ORACLE_PYTHON = ORACLE_VENV / "bin" / "python"
ORACLE_READY = ORACLE_VENV / ".oracle-ready-v1"
ORACLE_SCRIPT = REPO_DIR / "tests" / "parity" / "oracle.py"
VECTOR_TOLERANCE = 1e-5
SCORE_TOLERANCE = 1e-4
TOP_K = 100


@dataclass(frozen=True)
class OracleRun:
    out: Path
    text_sets: dict[str, dict[str, list[str]]]

    def reference(self, name: str) -> dict[str, torch.Tensor]:
        return load_file(str(self.out / name / "reference.safetensors"))

    def meta(self, name: str) -> dict:
        return json.loads((self.out / name / "meta.json").read_text())

    def texts(self, name: str) -> dict[str, list[str]]:
        variant = next(v for v in json.loads((self.out / "spec.json").read_text())["variants"] if v["name"] == name)
        return self.text_sets[variant["texts"]]


@pytest.fixture(scope="session")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> OracleRun:
    if not ORACLE_PYTHON.is_file() or not ORACLE_READY.is_file():
        pytest.fail(f"the PyLate oracle environment is missing ({ORACLE_VENV}): run scripts/setup_pylate_oracle.sh", pytrace=False)
    root = tmp_path_factory.mktemp("parity")
    text_sets = {"parity": parity_texts(), "fixture": fixture_ranking_texts()}
    text_sets["fixture-lone"] = lone_batch_texts(text_sets["fixture"])
    training_texts = fixture_texts() + text_sets["parity"]["queries"] + text_sets["parity"]["documents"]
    backbones = {arch: str(build_backbone_folder(arch, root / f"backbone-{arch}", training_texts)) for arch in FIXTURE_ARCHITECTURES}
    fixture_checkpoints = {arch: str(path) for arch, path in build_fixture_checkpoints(root / "fixture-models").items()}
    spec = {"text_sets": text_sets, "variants": variants(backbones, fixture_checkpoints)}
    out = root / "oracle"
    out.mkdir()
    (out / "spec.json").write_text(json.dumps(spec, ensure_ascii=False, indent=1), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONHASHSEED": "0"}
    result = subprocess.run(
        [str(ORACLE_PYTHON), str(ORACLE_SCRIPT), str(out / "spec.json"), str(out)], env=env, capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        pytest.fail(f"PyLate oracle failed (exit {result.returncode}):\n{result.stderr[-4000:]}", pytrace=False)
    print("PyLate oracle:", result.stdout.strip().splitlines()[-1], file=sys.stderr)
    return OracleRun(out=out, text_sets=text_sets)


_ENCODERS: dict[str, ColBERTEncoder] = {}
_ENCODED: dict[str, dict[str, list[torch.Tensor]]] = {}


def encoder_for(oracle: OracleRun, name: str) -> ColBERTEncoder:
    if name not in _ENCODERS:
        _ENCODERS[name] = load_colbert(str(oracle.out / name / "checkpoint"), device="cpu", dtype="float32")
    return _ENCODERS[name]


def encoded(oracle: OracleRun, name: str) -> dict[str, list[torch.Tensor]]:
    """Our vectors of a variant's texts, computed once per session: ``{"query": [...], "document": [...]}``."""
    if name not in _ENCODED:
        encoder, texts = encoder_for(oracle, name), oracle.texts(name)
        _ENCODED[name] = {
            "query": encoder.encode(texts["queries"], "query", progress=False).embeddings,
            "document": encoder.encode(texts["documents"], "document", progress=False).embeddings,
        }
    return _ENCODED[name]


def reference_vectors(reference: dict[str, torch.Tensor], role: str, count: int) -> list[torch.Tensor]:
    return [reference[f"{role}.{i}"] for i in range(count)]


def ragged(prefix: str, vectors: list[torch.Tensor]) -> RaggedEmbeddings:
    return RaggedEmbeddings.from_list([f"{prefix}{i}" for i in range(len(vectors))], vectors)


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_settings_read_like_pylate(oracle: OracleRun, name: str) -> None:
    ours = encoder_for(oracle, name)
    meta = oracle.meta(name)
    assert ours.settings.to_dict() == meta["settings"]
    theirs = [(d["in_features"], d["out_features"], d["bias"], d["activation_function"], d.get("use_residual", False)) for d in meta["dense"]]
    mine = [(c.in_features, c.out_features, c.bias, c.activation_function, c.use_residual) for c in ours.dense.configs]
    assert mine == theirs


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_vectors_match_pylate(oracle: OracleRun, name: str) -> None:
    reference, texts = oracle.reference(name), oracle.texts(name)
    for role, key in (("query", "queries"), ("document", "documents")):
        expected = reference_vectors(reference, role, len(texts[key]))
        got = encoded(oracle, name)[role]
        assert [g.shape[0] for g in got] == [e.shape[0] for e in expected], f"{name}: vector counts differ for {role}s"
        worst = max(float((g - e).abs().max()) for g, e in zip(got, expected))
        assert worst <= VECTOR_TOLERANCE, f"{name}: {role} vectors differ from PyLate by up to {worst:.2e}"


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_scores_match_pylate(oracle: OracleRun, name: str) -> None:
    reference = oracle.reference(name)
    queries, documents = ragged("q", encoded(oracle, name)["query"]), ragged("d", encoded(oracle, name)["document"])
    for padding, key in (("mask", "scores.exact"), ("zero", "scores.zero_padded")):
        ours = maxsim_scores(queries, documents, padding=padding)
        worst = float((ours - reference[key]).abs().max())
        assert worst <= SCORE_TOLERANCE, f"{name}: {padding} MaxSim differs from colbert_scores by up to {worst:.2e}"


def _top_k_equal_up_to_ties(ours: torch.Tensor, theirs: torch.Tensor, k: int) -> list[str]:
    """Per query: the k best documents by our scores, read in PyLate's scores, must be PyLate's k best scores."""
    problems = []
    k = min(k, theirs.shape[1])
    for query in range(theirs.shape[0]):
        their_best = torch.topk(theirs[query], k).values
        ours_in_their_scores = theirs[query, torch.topk(ours[query], k).indices]
        gap = float((ours_in_their_scores - their_best).abs().max())
        if gap > VECTOR_TOLERANCE:
            problems.append(f"query {query}: rank differs by a score gap of {gap:.2e}")
    return problems


@pytest.mark.parametrize("case", ["fixture-writer", "left-fixture"])
@pytest.mark.parametrize("arch", FIXTURE_ARCHITECTURES)
def test_fixture_top100_matches_pylate_exhaustive(oracle: OracleRun, arch: str, case: str) -> None:
    name = f"{arch}-{case}"
    reference, texts = oracle.reference(name), oracle.texts(name)
    assert len(texts["documents"]) > TOP_K, "the fixture should have more documents than the cut-off"
    queries, documents = ragged("q", encoded(oracle, name)["query"]), ragged("d", encoded(oracle, name)["document"])
    # PyLate's exhaustive evaluation: every document scored by colbert_scores (zero padded), sorted.
    ours = maxsim_scores(queries, documents, padding="zero")
    assert _top_k_equal_up_to_ties(ours, reference["scores.zero_padded"], TOP_K) == []
    assert _top_k_equal_up_to_ties(maxsim_scores(queries, documents), reference["scores.exact"], TOP_K) == []


def test_lone_query_in_pylate_differs_only_in_masked_expansion_tokens(oracle: OracleRun) -> None:
    """Why the encoder duplicates a lone row: transformers' LFM2 convolutions skip the
    padding mask for a batch of one, so PyLate's vectors of a query encoded alone differ
    from the same query in a batch, at the (masked) expansion positions only."""
    name = "lfm2-default"
    reference, texts, encoder = oracle.reference(name), oracle.texts(name), encoder_for(oracle, name)
    batched, alone = reference["query.0"], reference["probe.alone"]
    real = int(encoder.tokenize(texts["queries"][:1], "query")["attention_mask"].sum())
    assert float((alone[:real] - batched[:real]).abs().max()) <= VECTOR_TOLERANCE
    assert float((alone[real:] - batched[real:]).abs().max()) > 1e-3, "transformers now masks a lone row too: the duplicate-row workaround can go"
    ours_alone = encoder.encode(texts["queries"][:1], "query", progress=False).embeddings[0]
    assert float((ours_alone - batched).abs().max()) <= VECTOR_TOLERANCE


@pytest.mark.parametrize("name", LEFT_VARIANTS)
def test_left_variants_pad_left_on_both_sides(oracle: OracleRun, name: str) -> None:
    """The left variants really exercise left padding: PyLate's tokenizer pads left, ours
    follows it, and (for the lone-batch text set) PyLate's last query batch holds one text."""
    meta, encoder = oracle.meta(name), encoder_for(oracle, name)
    assert meta["padding_side"] == "left" and encoder.padding_side == "left" and meta["query_batch_size"] is None
    if oracle.texts(name) is oracle.text_sets["fixture-lone"]:
        assert len(oracle.texts(name)["queries"]) % 32 == 1


@pytest.mark.parametrize("arch", FIXTURE_ARCHITECTURES)
def test_padding_side_right_on_a_left_tokenizer_is_batch_invariant_and_pylates_right_padded_vectors(oracle: OracleRun, arch: str) -> None:
    """``padding_side=right`` on the left-padding checkpoint: every text alone or together
    gives the vectors PyLate gives for the same weights with a right-padding tokenizer."""
    left, default = f"{arch}-left-padding", f"{arch}-default"
    for part in ("model.safetensors", "1_Dense/model.safetensors"):
        same = load_file(str(oracle.out / left / "checkpoint" / part)), load_file(str(oracle.out / default / "checkpoint" / part))
        assert same[0].keys() == same[1].keys() and all(torch.equal(same[0][k], same[1][k]) for k in same[0]), part
    encoder = load_colbert(str(oracle.out / left / "checkpoint"), device="cpu", dtype="float32", padding_side="right")
    assert encoder.tokenizer.padding_side == "left"
    reference, texts = oracle.reference(default), oracle.texts(default)
    for role, key in (("query", "queries"), ("document", "documents")):
        expected = reference_vectors(reference, role, len(texts[key]))
        together = encoder.encode(texts[key], role, progress=False).embeddings
        alone = [encoder.encode([text], role, progress=False).embeddings[0] for text in texts[key]]
        for got in (together, alone):
            assert [g.shape for g in got] == [e.shape for e in expected]
            worst = max(float((g - e).abs().max()) for g, e in zip(got, expected))
            assert worst <= VECTOR_TOLERANCE, f"{arch}: right-padded {role} vectors differ from PyLate by up to {worst:.2e}"
