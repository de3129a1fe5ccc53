"""PyLate checkpoints that ship their own modeling code (``trust_remote_code``, opt-in per model).

The fixture ``lfm2_remote`` carries ``modeling_tiny_bidirectional.py`` (models/fixture_code) and an
``auto_map`` pointing transformers' AutoConfig/AutoModel at it, as LiquidAI/LFM2.5-ColBERT-350M does
with its ``Lfm2BidirectionalModel``. The parity test loads the same checkpoint in PyLate 1.6.0.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf

import models.checkpoint as checkpoint
from models.checkpoint import (CheckpointError, RemoteCodeRefusedError, auto_map_references, remote_code_record,
                               require_remote_code_opt_in, resolve_source)
from models.colbert import load_colbert
from models.fixtures import REMOTE_AUTO_MAP, REMOTE_MODELING_FILE, build_fixture_checkpoint, default_fixture_texts
from nanobeir_ext.data.hub import HubSnapshot
from nanobeir_ext.evaluation.plan import ModelSpec
from tests.helpers import REPO_DIR

QUERIES = ["What is the capital of France?", "¿Dónde está la biblioteca?", "東京の天気は?", "", "a b c d e f g h i j k l m n o p"]
DOCUMENTS = ["Paris is the capital and largest city of France.", "La biblioteca está en el centro, junto a la plaza.",
             "東京は晴れです。", "   ", "Punctuation: !!! ??? ... ;;; and words " * 12]


@pytest.fixture(scope="module")
def remote_fixture(shared_cache: Path) -> Path:
    return build_fixture_checkpoint("lfm2_remote", shared_cache / "fixture-models", default_fixture_texts())


def _encode(encoder) -> dict[str, list[torch.Tensor]]:
    return {"query": encoder.encode(QUERIES, "query", progress=False).embeddings,
            "document": encoder.encode(DOCUMENTS, "document", progress=False).embeddings}


def test_fixture_ships_its_modeling_file_behind_an_auto_map(remote_fixture: Path) -> None:
    config = json.loads((remote_fixture / "config.json").read_text())
    assert config["auto_map"] == REMOTE_AUTO_MAP
    assert config["model_type"] == "tiny_bidirectional"  # not a transformers class: only the shipped code builds it
    shipped = remote_fixture / REMOTE_MODELING_FILE.name
    assert shipped.read_bytes() == REMOTE_MODELING_FILE.read_bytes()
    marker = json.loads((remote_fixture / checkpoint.RANDOM_INIT_MARKER).read_text())
    assert REMOTE_MODELING_FILE.name in marker["files"]  # a changed code file is damage, rebuilt like a weight file


def test_without_opt_in_it_is_refused_before_any_model_or_tokenizer_is_built(remote_fixture: Path, monkeypatch) -> None:
    def must_not_run(*args, **kwargs):
        raise AssertionError("a model or tokenizer was built before the remote-code check")

    monkeypatch.setattr("models.colbert.AutoModel.from_pretrained", must_not_run)
    monkeypatch.setattr("models.colbert.AutoConfig.from_pretrained", must_not_run)
    monkeypatch.setattr("models.colbert.AutoTokenizer.from_pretrained", must_not_run)
    with pytest.raises(RemoteCodeRefusedError) as caught:
        load_colbert(str(remote_fixture))
    message = str(caught.value)
    assert f"checkpoint folder {remote_fixture}" in message
    assert "AutoModel -> modeling_tiny_bidirectional.TinyBidirectionalModel" in message
    assert "model.trust_remote_code=true" in message


def test_the_runner_names_the_models_key_to_set(shared_cache: Path) -> None:
    from runners.evaluate import default_encoder_factory

    spec = ModelSpec(key="lfm25", name="fixture-remote", source="fixture", fixture="lfm2_remote")
    plan = SimpleNamespace(device="cpu", dtype="float32", cache_dir=shared_cache)
    with pytest.raises(RemoteCodeRefusedError, match=r"models\.lfm25\.trust_remote_code=true"):
        default_encoder_factory(spec, plan)


def test_opt_in_runs_the_shipped_code_logs_it_and_hashes_it_into_the_identity(remote_fixture: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="models.colbert"):
        encoder = load_colbert(str(remote_fixture), trust_remote_code=True, dtype="float32")
    backbone = type(encoder.backbone)
    assert backbone.__name__ == "TinyBidirectionalModel" and backbone.__module__.startswith("transformers_modules.")
    assert "executed the checkpoint's own modeling code" in caplog.text and REMOTE_MODELING_FILE.name in caplog.text
    file_hash = hashlib.sha256(REMOTE_MODELING_FILE.read_bytes()).hexdigest()
    record = encoder.info.settings["remote_code"]  # ModelLabel.settings: environment.json's model record
    assert record["files"] == {REMOTE_MODELING_FILE.name: file_hash}
    assert record == remote_code_record(remote_fixture)
    assert encoder.cache_identity()["remote_code"] == record["hash"]
    assert encoder.info.to_dict()["settings"]["remote_code"]["hash"] == record["hash"]


def test_vectors_are_deterministic_across_builds_and_loads(remote_fixture: Path, tmp_path: Path) -> None:
    rebuilt = build_fixture_checkpoint("lfm2_remote", tmp_path / "fixture-models", default_fixture_texts())
    first = _encode(load_colbert(str(remote_fixture), trust_remote_code=True, dtype="float32"))
    second = _encode(load_colbert(str(rebuilt), trust_remote_code=True, dtype="float32"))
    for role in ("query", "document"):
        assert all(torch.equal(a, b) for a, b in zip(first[role], second[role], strict=True))
    assert all(v.shape == (32, 32) for v in first["query"])  # query expansion to the fixture's 32 tokens
    lone = load_colbert(str(remote_fixture), trust_remote_code=True, dtype="float32").encode(DOCUMENTS[:1], "document", progress=False)
    assert torch.equal(lone.embeddings[0], first["document"][0])  # batch-invariant: padding is masked out of the model


def test_changed_code_changes_the_cache_identity(remote_fixture: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(remote_fixture, tmp_path / "copy"))
    (copy / checkpoint.RANDOM_INIT_MARKER).unlink()  # a plain local folder: identified by its content hash
    original = load_colbert(str(copy), trust_remote_code=True, dtype="float32").cache_identity()
    again = load_colbert(str(copy), trust_remote_code=True, dtype="float32").cache_identity()
    assert original == again
    code = copy / REMOTE_MODELING_FILE.name
    code.write_text(code.read_text() + "\n# an edit that changes no vector still changes what ran\n")
    edited = load_colbert(str(copy), trust_remote_code=True, dtype="float32").cache_identity()
    assert edited["remote_code"] != original["remote_code"]
    assert edited["weights_hash"] != original["weights_hash"]


def _folder_with_auto_map(tmp_path: Path, auto_map: dict, model_type: str = "lfm2") -> Path:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": model_type, "auto_map": auto_map}))
    return folder


def test_an_auto_map_on_a_known_model_type_still_needs_the_opt_in(tmp_path: Path) -> None:
    # model_type lfm2 with remote code for AutoModel: transformers would silently build its own causal
    # Lfm2Model from the weights; the harness refuses instead.
    folder = _folder_with_auto_map(tmp_path, {"AutoModel": "modeling_lfm2_bidirectional.Lfm2BidirectionalModel"})
    (folder / "modeling_lfm2_bidirectional.py").write_text("from .helpers import thing\n")
    (folder / "helpers.py").write_text("thing = 1\n")
    with pytest.raises(RemoteCodeRefusedError, match="auto_map: AutoModel -> modeling_lfm2_bidirectional"):
        require_remote_code_opt_in(folder, trust_remote_code=False, source="org/name", revision="a" * 40)
    record = require_remote_code_opt_in(folder, trust_remote_code=True, source="org/name", revision="a" * 40)
    assert sorted(record["files"]) == ["helpers.py", "modeling_lfm2_bidirectional.py"]  # relative imports hashed too


def test_hub_refusal_names_repo_and_commit(tmp_path: Path) -> None:
    folder = _folder_with_auto_map(tmp_path, {"AutoModel": "modeling_x.Model"})
    with pytest.raises(RemoteCodeRefusedError) as caught:
        require_remote_code_opt_in(folder, trust_remote_code=False, source="LiquidAI/Some-Model", revision="b" * 40)
    assert f"LiquidAI/Some-Model at commit {'b' * 40}" in str(caught.value)
    assert "models.m.trust_remote_code=true" in str(caught.value.with_keys("models.m"))


def test_missing_code_and_code_from_another_repo_are_errors(tmp_path: Path) -> None:
    folder = _folder_with_auto_map(tmp_path, {"AutoModel": "modeling_x.Model"})
    with pytest.raises(CheckpointError, match="modeling_x.py is missing"):
        require_remote_code_opt_in(folder, trust_remote_code=True, source=str(folder), revision=None)
    (folder / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "other/repo--modeling_x.Model"}}))
    with pytest.raises(CheckpointError, match="another repo"):
        require_remote_code_opt_in(folder, trust_remote_code=True, source=str(folder), revision=None)


def test_no_auto_map_means_no_remote_code(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "lfm2"}))
    assert auto_map_references(folder) == {}
    assert require_remote_code_opt_in(folder, trust_remote_code=True, source=str(folder), revision=None) is None


@pytest.mark.parametrize("trust", [False, True])
def test_hub_downloads_python_files_only_with_the_opt_in(tmp_path: Path, monkeypatch, trust: bool) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    asked: list[tuple[str, ...]] = []

    def fake_fetch(repo, patterns, **options):
        asked.append(tuple(patterns))
        return HubSnapshot(folder=tmp_path, commit="c" * 40, pinned=False)

    monkeypatch.setattr(checkpoint, "fetch_snapshot", fake_fetch)
    resolve_source("org/name", trust_remote_code=trust)
    assert ("*.py" in asked[0]) is trust


def test_model_config_key_defaults_false_and_must_be_a_bool() -> None:
    from runners.evaluate import model_specs

    cfg = OmegaConf.create({"models": {"a": {"name": "A", "source": "x/a"},
                                       "b": {"name": "B", "source": "x/b", "trust_remote_code": True}}})
    a, b = model_specs(cfg)
    assert (a.trust_remote_code, b.trust_remote_code) == (False, True)
    assert "trust_remote_code" not in b.options
    with pytest.raises(ValueError, match=r"models\.c\.trust_remote_code='yes'"):
        model_specs(OmegaConf.create({"models": {"c": {"name": "C", "source": "x/c", "trust_remote_code": "yes"}}}))


def test_lfm2_5_config_opts_in() -> None:
    config = yaml.safe_load((REPO_DIR / "configs" / "model" / "lfm2_5_colbert_350m.yaml").read_text())
    assert config["source"] == "LiquidAI/LFM2.5-ColBERT-350M"
    assert config["trust_remote_code"] is True
    assert config.get("kind", "colbert") == "colbert"


# -- PyLate 1.6.0 on the same checkpoint -------------------------------------------------------------
ORACLE_PYTHON = Path(os.environ.get("PYLATE_VENV", REPO_DIR / ".venv-pylate")) / "bin" / "python"
ORACLE = """
import json, sys
import numpy as np
from pylate import models
folder, texts, out = sys.argv[1:4]
texts = json.load(open(texts))
model = models.ColBERT(model_name_or_path=folder, device="cpu", trust_remote_code=True)
arrays = {}
for role in ("query", "document"):
    vectors = model.encode(texts[role], is_query=role == "query", convert_to_numpy=True, show_progress_bar=False)
    arrays.update({f"{role}_{i}": np.asarray(v, dtype=np.float32) for i, v in enumerate(vectors)})
arrays["backbone"] = np.array(type(model[0].auto_model).__name__)
np.savez(out, **arrays)
"""


@pytest.mark.parity
def test_vectors_match_pylate_with_trust_remote_code(remote_fixture: Path, tmp_path: Path) -> None:
    if not ORACLE_PYTHON.is_file():
        pytest.fail(f"the PyLate oracle environment is missing ({ORACLE_PYTHON}): run scripts/setup_pylate_oracle.sh", pytrace=False)
    texts = default_fixture_texts()
    roles = {"query": QUERIES + texts[:40], "document": DOCUMENTS + texts[40:240]}
    (tmp_path / "texts.json").write_text(json.dumps(roles, ensure_ascii=False), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([str(ORACLE_PYTHON), "-c", ORACLE, str(remote_fixture), str(tmp_path / "texts.json"),
                             str(tmp_path / "ref.npz")], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    reference = np.load(tmp_path / "ref.npz")
    assert str(reference["backbone"]) == "TinyBidirectionalModel"  # PyLate ran the shipped code too
    encoder = load_colbert(str(remote_fixture), trust_remote_code=True, dtype="float32")
    for role, role_texts in roles.items():
        ours = encoder.encode(role_texts, role, progress=False).embeddings
        for index, vectors in enumerate(ours):
            theirs = torch.from_numpy(reference[f"{role}_{index}"])
            assert theirs.shape == vectors.shape, (role, index)
            assert torch.allclose(vectors, theirs, atol=1e-5, rtol=0), (role, index, (vectors - theirs).abs().max().item())
