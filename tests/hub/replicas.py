"""Tiny replicas of the three real hub repos, for serving from a loopback hub.

Each replica carries its real repo's file set and metadata as far as they are known
(../shared/notes/real-artifacts.md) with tiny random weights:

- ``LiquidAI/LFM2-ColBERT-350M``: ``Lfm2Model`` config with the real key set (``block_ff_dim``,
  ``tie_embedding``, ``full_attn_idxs``, the 16-layer conv/attention pattern, bos 1, eos 7,
  pad 0), bfloat16 weights, **64,402** embedding rows (a small trained BPE vocabulary spread
  out to 64,400 ids, then ``"[Q] "``/``"[D] "`` at 64400/64401), no mask, cls or sep token,
  a bias-free ``1_Dense`` (hidden -> 128), ``sentence_bert_config.json`` with 511;
- ``lightonai/GTE-ModernColBERT-v1``: ModernBERT with the real special-token ids (unk 50280,
  cls 50281, sep 50282, pad 50283, mask 50284), 50,370 rows, ``sentence_bert_config.json``
  with 299, the current main's ColBERT config (query length 48, no query expansion);
- ``LiquidAI/nanobeir-multilingual-extended``: the project's fixture benchmark as parquet files
  declared by a README YAML ``configs:`` list, in either plausible layout (``push_to_hub`` style
  or flat files, see ``DATASET_LAYOUTS``).

The checkpoints are built with ``models.fixtures`` (tokenizer training, ColBERT format) and the
dataset from ``nanobeir_ext/data/fixture/benchmark``; nothing here copies them.
"""
from __future__ import annotations

import json
import shutil
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
import torch
import yaml
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from transformers import AutoModel, PreTrainedTokenizerFast

from models.fixtures import _random_init, backbone_config, train_tokenizer, write_colbert_checkpoint
from nanobeir_ext.data.fixture import BENCHMARK_DIR, fixture_texts
from tests.hub.server import COMMIT, publish

LFM2_REPO = "LiquidAI/LFM2-ColBERT-350M"
LFM2_REVISIONS = ("370cc1088cb5722499830bab3ff37a39c963fcd7",)  # pinned by MTEB
GTE_REPO = "lightonai/GTE-ModernColBERT-v1"
GTE_REVISIONS = ("c1647d10d6edc6f70837f42f0a978f2df53f51dd", "cbbe53366e564450558f5e639dd499171f127538")  # MTEB, hakari-bench
DATASET_REPO = "LiquidAI/nanobeir-multilingual-extended"
DATASET_REVISIONS = ("8a4be55eb80b3ed4d2e9a423a5212228c217d426",)
DATASET_LAYOUTS = ("push_to_hub", "flat")

EMBEDDING_SIZE = 128  # the real 1_Dense output size of both models
LFM2_ROWS = 64_402
GTE_ROWS = 50_370
# LFM2's first special tokens, in id order (pad 0, bos 1, eos 7).
LFM2_SPECIALS = ("<|pad|>", "<|startoftext|>", "<|endoftext|>", "<|fim_pre|>", "<|fim_mid|>", "<|fim_suf|>", "<|im_start|>", "<|im_end|>")
MODERNBERT_SPECIALS = {"[UNK]": 50280, "[CLS]": 50281, "[SEP]": 50282, "[PAD]": 50283, "[MASK]": 50284}
LFM2_LAYER_TYPES = ("conv", "conv", "full_attention", "conv", "conv", "full_attention", "conv", "conv", "full_attention",
                    "conv", "full_attention", "conv", "full_attention", "conv", "full_attention", "conv")


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- tokenizers


def spread_vocabulary(tokenizer: PreTrainedTokenizerFast, fixed: Mapping[str, int], size: int, **special: str) -> PreTrainedTokenizerFast:
    """The same tokenizer with ``size`` ids: the tokens of ``fixed`` at their ids (added as special
    tokens where new), the trained tokens in their old order on the lowest free ids, and unreachable
    ``<|reserved_i|>`` entries (no merge produces them) filling the rest. ``special`` names the
    special-token roles for the wrapper (``bos_token="<|startoftext|>"``, ...)."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab: dict[str, int] = state["model"]["vocab"]
    taken = set(fixed.values())
    if len(taken) != len(fixed) or max(taken) >= size:
        raise ValueError(f"fixed ids must be distinct and below {size}: {dict(fixed)}")
    free = (i for i in range(size) if i not in taken)
    new_vocab = dict(fixed)
    for token, _ in sorted(vocab.items(), key=lambda item: item[1]):
        if token not in new_vocab:
            new_vocab[token] = next(free)
    for index, token_id in enumerate(free):
        new_vocab[f"<|reserved_{index}|>"] = token_id
    state["model"]["vocab"] = dict(sorted(new_vocab.items(), key=lambda item: item[1]))
    added = {entry["content"]: entry for entry in state["added_tokens"]}
    template = dict(added[next(iter(added))]) if added else {"single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
    for token in fixed:
        added.setdefault(token, {**template, "content": token, "lstrip": False})
    state["added_tokens"] = sorted(({**entry, "id": new_vocab[entry["content"]]} for entry in added.values()), key=lambda e: e["id"])
    for entry in (state.get("post_processor") or {}).get("special_tokens", {}).values():
        entry["ids"] = [new_vocab[token] for token in entry["tokens"]]
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(state)), model_input_names=["input_ids", "attention_mask"], **special
    )


def lfm2_tokenizer(texts: Sequence[str]) -> PreTrainedTokenizerFast:
    """LFM2's structure: pad 0, BOS 1 in front of every text, EOS 7, no mask/cls/sep, 64,400 ids."""
    trained = train_tokenizer("lfm2", texts)
    return spread_vocabulary(
        trained, {token: i for i, token in enumerate(LFM2_SPECIALS)}, LFM2_ROWS - 2,
        bos_token="<|startoftext|>", eos_token="<|im_end|>", pad_token="<|pad|>",
    )


def modernbert_tokenizer(texts: Sequence[str]) -> PreTrainedTokenizerFast:
    """ModernBERT's special-token ids ([CLS] text [SEP]) in a 50,368-id vocabulary."""
    trained = train_tokenizer("modernbert", texts)
    return spread_vocabulary(
        trained, MODERNBERT_SPECIALS, GTE_ROWS - 2,
        unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", mask_token="[MASK]",
    )


# --------------------------------------------------------------------------- checkpoints


def _backbone(arch: str, tokenizer: PreTrainedTokenizerFast, out_dir: Path, seed: int, **config_changes: Any) -> Path:
    config = backbone_config(arch, tokenizer)
    for key, value in config_changes.items():
        setattr(config, key, value)
    with torch.random.fork_rng(devices=[]):
        model = AutoModel.from_config(config, dtype=torch.float32)
    _random_init(model, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _model_card(repo_id: str, base: str) -> str:
    return (
        f"---\nlibrary_name: PyLate\npipeline_tag: sentence-similarity\nbase_model: {base}\ntags:\n- ColBERT\n- PyLate\n"
        f"- sentence-transformers\n---\n\n# {repo_id} (tiny random-init replica for loopback hub tests)\n"
    )


def _gitattributes() -> str:
    return "".join(f"*.{ext} filter=lfs diff=lfs merge=lfs -text\n" for ext in ("safetensors", "bin", "parquet", "model"))


def _lfm2_config(hidden: int, vocab: int, tokenizer: PreTrainedTokenizerFast) -> dict[str, Any]:
    """config.json with the real checkpoint's key set (older LFM2 keys included), scaled down."""
    return {
        "architectures": ["Lfm2Model"], "model_type": "lfm2", "vocab_size": vocab,
        "hidden_size": hidden, "block_dim": hidden, "conv_dim": hidden, "conv_dim_out": hidden,
        "num_hidden_layers": len(LFM2_LAYER_TYPES), "layer_types": list(LFM2_LAYER_TYPES),
        "full_attn_idxs": [i for i, kind in enumerate(LFM2_LAYER_TYPES) if kind == "full_attention"],
        "num_attention_heads": 4, "num_heads": 4, "num_key_value_heads": 2,
        "block_ff_dim": 4 * hidden, "block_auto_adjust_ff_dim": True, "block_ffn_dim_multiplier": 1.0, "block_multiple_of": 256,
        "block_norm_eps": 1e-05, "block_use_swiglu": True, "conv_L_cache": 3, "conv_bias": False, "norm_eps": 1e-05,
        "rope_theta": 1000000.0, "max_position_embeddings": 128000, "tie_embedding": True, "use_cache": True, "use_pos_enc": True,
        "initializer_range": 0.02, "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.convert_tokens_to_ids("<|pad|>"), "torch_dtype": "bfloat16",
    }


def build_lfm2_replica(out_dir: Path, texts: Sequence[str] | None = None, seed: int = 0) -> Path:
    """A tiny LiquidAI/LFM2-ColBERT-350M: the real files and metadata, random bfloat16 weights."""
    out_dir, texts = Path(out_dir), list(texts if texts is not None else fixture_texts())
    staging = out_dir.with_name(out_dir.name + ".backbone")
    tokenizer = lfm2_tokenizer(texts)
    real_config = _lfm2_config(64, len(tokenizer), tokenizer)
    ff = real_config["block_ff_dim"]  # block_auto_adjust_ff_dim: 2/3 of it, rounded up to block_multiple_of
    ff = 256 * -(-int(2 * ff / 3) // 256)
    _backbone("lfm2", tokenizer, staging, seed, hidden_size=64, intermediate_size=ff, block_auto_adjust_ff_dim=False,
              num_hidden_layers=len(LFM2_LAYER_TYPES), layer_types=list(LFM2_LAYER_TYPES), max_position_embeddings=128000)
    write_colbert_checkpoint(staging, out_dir, dense_layers=[(64, EMBEDDING_SIZE, False)], query_length=32, document_length=512, seed=seed)
    shutil.rmtree(staging)
    _write_json(out_dir / "config.json", {**_lfm2_config(64, LFM2_ROWS, tokenizer), "transformers_version": "4.54.0"})
    weights = out_dir / "model.safetensors"
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in load_file(weights).items()}, str(weights), metadata={"format": "pt"})
    config = json.loads((out_dir / "tokenizer_config.json").read_text())
    config["model_max_length"] = 1000000000000000019884624838656  # what transformers writes for "no limit"
    _write_json(out_dir / "tokenizer_config.json", config)
    (out_dir / "README.md").write_text(_model_card(LFM2_REPO, "LiquidAI/LFM2-350M"))
    (out_dir / ".gitattributes").write_text(_gitattributes())
    return out_dir


def build_gte_replica(out_dir: Path, texts: Sequence[str] | None = None, seed: int = 0) -> Path:
    """A tiny lightonai/GTE-ModernColBERT-v1 at the current main's ColBERT settings, random float32 weights."""
    out_dir, texts = Path(out_dir), list(texts if texts is not None else fixture_texts())
    staging = out_dir.with_name(out_dir.name + ".backbone")
    tokenizer = modernbert_tokenizer(texts)
    _backbone("modernbert", tokenizer, staging, seed, bos_token_id=None, eos_token_id=None)
    write_colbert_checkpoint(
        staging, out_dir, dense_layers=[(64, EMBEDDING_SIZE, False)], query_length=48, document_length=300,
        do_query_expansion=False, skiplist_words=tuple(string.punctuation), seed=seed,
    )
    shutil.rmtree(staging)
    config = json.loads((out_dir / "tokenizer_config.json").read_text())
    config["model_max_length"] = 8192
    _write_json(out_dir / "tokenizer_config.json", config)
    (out_dir / "README.md").write_text(_model_card(GTE_REPO, "Alibaba-NLP/gte-modernbert-base"))
    (out_dir / ".gitattributes").write_text(_gitattributes())
    return out_dir


# --------------------------------------------------------------------------- the dataset

Rows = list[dict[str, Any]]


def fixture_configs() -> dict[str, dict[str, list[Path]]]:
    """config -> split -> JSON-lines files of the fixture benchmark (folders ``{config}/{split}-*.jsonl``)."""
    configs: dict[str, dict[str, list[Path]]] = {}
    for folder in sorted(p for p in BENCHMARK_DIR.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*-*.jsonl")):
            configs.setdefault(folder.name, {}).setdefault(path.name.split("-", 1)[0], []).append(path)
    return configs


def _flat_name(config: str, split: str) -> str:
    """``NanoSciFact_ar`` + ``corpus`` -> ``NanoSciFact_corpus_ar.parquet`` (qrels configs end in ``_qrels``)."""
    base = config.removesuffix("_qrels")
    subset, language = base.rsplit("_", 1)
    return f"{subset}_{split}_{language}.parquet"


def build_dataset_replica(
    out_dir: Path, layout: str = "push_to_hub", *, subsets: Sequence[str] | None = None, languages: Sequence[str] | None = None,
    transform_qrels: Callable[[str, Rows], Rows] | None = None,
) -> Path:
    """The fixture benchmark as LiquidAI/nanobeir-multilingual-extended: parquet files and a README whose
    ``configs:`` list declares them. ``layout``: ``push_to_hub`` (``NanoX_ar/corpus-00000-of-00001.parquet``)
    or ``flat`` (``NanoX_corpus_ar.parquet``). ``transform_qrels(config, rows)`` may change judgments
    (to publish a second commit that evaluates differently)."""
    if layout not in DATASET_LAYOUTS:
        raise ValueError(f"unknown dataset layout {layout!r}; valid: {DATASET_LAYOUTS}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: list[str] = []
    languages_seen: list[str] = []
    for config, splits in fixture_configs().items():
        base = config.removesuffix("_qrels")
        subset, language = base.rsplit("_", 1)
        if (subsets is not None and subset not in subsets) or (languages is not None and language not in languages):
            continue
        languages_seen.append(language)
        entries.append(f"- config_name: {config}\n  data_files:\n")
        for split, files in splits.items():
            rows = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").split("\n") if line.strip()]
            if split == "qrels" and transform_qrels is not None:
                rows = transform_qrels(config, rows)
            name = f"{config}/{split}-00000-of-00001.parquet" if layout == "push_to_hub" else _flat_name(config, split)
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
            columns = list(dict.fromkeys(key for row in rows for key in row)) or ["query-id", "corpus-id"]
            table = pa.table({c: pa.array([row.get(c) for row in rows]) for c in columns})
            pq.write_table(table, out_dir / name)
            pattern = f"{config}/{split}-*" if layout == "push_to_hub" else name
            entries.append(f"  - split: {split}\n    path: {pattern}\n")
    if not entries:
        raise ValueError(f"no fixture configs match subsets={subsets} languages={languages}")
    language_list = "".join(f"- {lang}\n" for lang in dict.fromkeys(languages_seen))
    readme = (
        "---\nlanguage:\n" + language_list + "task_categories:\n- text-retrieval\nconfigs:\n" + "".join(entries)
        + "---\n\n# nanobeir-multilingual-extended (tiny replica for loopback hub tests)\n"
    )
    (out_dir / "README.md").write_text(readme, encoding="utf-8")
    (out_dir / ".gitattributes").write_text(_gitattributes())
    return out_dir


# --------------------------------------------------------------------------- publishing on a loopback hub


@dataclass(frozen=True)
class Replicas:
    """Built replica folders: the two checkpoints and the dataset in each layout."""

    lfm2: Path
    gte: Path
    datasets: Mapping[str, Path]  # layout -> folder


def build_replicas(out_dir: Path) -> Replicas:
    out_dir = Path(out_dir)
    return Replicas(
        lfm2=build_lfm2_replica(out_dir / "lfm2"),
        gte=build_gte_replica(out_dir / "gte"),
        datasets={layout: build_dataset_replica(out_dir / f"dataset-{layout}", layout) for layout in DATASET_LAYOUTS},
    )


def configured_revision(config: Path) -> str | None:
    """The ``revision`` a Hydra config file of this repository sets (always a string: YAML would
    read an all-digit hash as a number)."""
    value = yaml.safe_load(Path(config).read_text(encoding="utf-8")).get("revision")
    return None if value is None else str(value)


def _revisions(pins: Sequence[str], configured: str | None) -> tuple[list[str], dict[str, str]]:
    """Commits to publish (the known pins, plus the configured one if it is a commit) and branches
    (``main`` and a configured branch name -> the first pin)."""
    commits = list(pins)
    branches = {"main": pins[0]}
    if configured and COMMIT.fullmatch(configured):
        commits += [configured] if configured not in commits else []
    elif configured:
        branches[configured] = pins[0]
    return commits, branches


def publish_replicas(root: Path, replicas: Replicas, dataset_layout: str, configs_dir: Path) -> Path:
    """Publish the three replicas into a minimal-server root under the known pins and whatever
    revision ``configs_dir`` (this repository's ``configs/``) sets, with ``main`` on the first pin."""
    for repo_type, repo_id, files, pins, config in (
        ("model", LFM2_REPO, replicas.lfm2, LFM2_REVISIONS, configs_dir / "model" / "lfm2_colbert_350m.yaml"),
        ("model", GTE_REPO, replicas.gte, GTE_REVISIONS, configs_dir / "model" / "gte_moderncolbert_v1.yaml"),
        ("dataset", DATASET_REPO, replicas.datasets[dataset_layout], DATASET_REVISIONS, configs_dir / "benchmark" / "nanobeir_extended.yaml"),
    ):
        commits, branches = _revisions(pins, configured_revision(config))
        publish(root, repo_type, repo_id, files, commits, branches)
    return Path(root)
