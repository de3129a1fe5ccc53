"""Tiny random-init ColBERT checkpoints (LFM2 and ModernBERT) for offline runs and tests.

A third variant, ``lfm2_remote``, carries its own modeling code (``modeling_tiny_bidirectional.py``
from ``models/fixture_code``, a bidirectional LFM2-style encoder, with the ``auto_map`` that points
transformers at it), like LFM2.5-ColBERT-350M: it loads only with ``trust_remote_code``.

Two steps, kept apart so the PyLate parity suite can take the first and let PyLate do
the second:

- :func:`build_backbone_folder`: a plain transformers folder (config, float32 safetensors,
  a byte-level BPE tokenizer trained on the given texts) of a tiny random model;
- :func:`write_colbert_checkpoint`: turns such a folder into a PyLate-format ColBERT
  checkpoint (prefix tokens, ``modules.json``, ``k_Dense`` folders, ColBERT configs).

:func:`build_fixture_checkpoints` does both for every architecture into a
content-addressed cache. The weights are random: numbers computed with these
checkpoints test the pipeline and say nothing about the real models.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import string
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import tokenizers
import torch
import transformers
from safetensors.torch import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerFast

from models.checkpoint import (COLBERT_CONFIG_FILE, MODULES_FILE, RANDOM_INIT_MARKER, TRANSFORMER_CONFIG_FILE, content_hash,
                               remote_code_files)
from models.projection import IDENTITY
from nanobeir_ext.atomic import discard_folder, file_mode

log = logging.getLogger(__name__)

FIXTURE_ARCHITECTURES: tuple[str, ...] = ("lfm2", "modernbert")
# Fixtures that ship their own modeling code (loaded with trust_remote_code only); not in smoke.
REMOTE_CODE_FIXTURES: tuple[str, ...] = ("lfm2_remote",)
REMOTE_MODELING_FILE = Path(__file__).parent / "fixture_code" / "modeling_tiny_bidirectional.py"
REMOTE_AUTO_MAP = {"AutoConfig": "modeling_tiny_bidirectional.TinyBidirectionalConfig",
                   "AutoModel": "modeling_tiny_bidirectional.TinyBidirectionalModel"}
# Bump whenever a change here changes the bytes of a built checkpoint.
BUILDER_VERSION = 1
VOCAB_SIZE = 2000
HIDDEN_SIZE = 64
EMBEDDING_SIZE = 32
MAX_POSITIONS = 1024

# Special tokens (id order) and how each architecture wraps a text, like the real tokenizers.
SPECIAL_TOKENS = {
    "lfm2": ("<|pad|>", "<|startoftext|>", "<|im_end|>"),  # no mask token: EOS pads query expansion
    "modernbert": ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"),  # [MASK] pads query expansion
}
# The lengths of the real checkpoints of each architecture (LFM2-ColBERT-350M, GTE-ModernColBERT-v1).
FIXTURE_LENGTHS = {"lfm2": (32, 512), "modernbert": (32, 300), "lfm2_remote": (32, 512)}
# The tokenizer each fixture trains (the remote-code LFM2 takes LFM2's: BOS only, EOS pads expansion).
TOKENIZER_STYLE = {"lfm2": "lfm2", "modernbert": "modernbert", "lfm2_remote": "lfm2"}


def _check_arch(arch: str) -> None:
    if arch not in FIXTURE_ARCHITECTURES + REMOTE_CODE_FIXTURES:
        raise ValueError(f"unknown fixture architecture {arch!r}; valid choices: {list(FIXTURE_ARCHITECTURES)}, and "
                         f"{list(REMOTE_CODE_FIXTURES)} (ships its own modeling code: needs trust_remote_code)")


def _remote_modeling_module() -> Any:
    """The fixture's modeling file imported under a private name (to build the model it describes)."""
    import importlib.util
    import sys

    name = "nanobeir_fixture_modeling_tiny_bidirectional"
    if name not in sys.modules:  # transformers looks a model class's module up there
        spec = importlib.util.spec_from_file_location(name, REMOTE_MODELING_FILE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return sys.modules[name]


def train_tokenizer(arch: str, texts: Sequence[str], vocab_size: int = VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``texts``.

    Byte level covers every script (Arabic, Japanese, Korean, ...) and puts every ASCII
    punctuation character in the vocabulary as a standalone token, so the skiplist
    resolves the way it does for the real tokenizers.
    """
    _check_arch(arch)
    arch = TOKENIZER_STYLE[arch]
    specials = SPECIAL_TOKENS[arch]
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]" if arch == "modernbert" else None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[AddedToken(token, special=True, normalized=False, lstrip=token == "[MASK]") for token in specials],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    ids = {token: tokenizer.token_to_id(token) for token in specials}
    if arch == "lfm2":
        # Like LFM2's own tokenizer: BOS in front, nothing appended.
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<|startoftext|> $A", pair="<|startoftext|> $A $B", special_tokens=[("<|startoftext|>", ids["<|startoftext|>"])]
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tokenizer, bos_token="<|startoftext|>", eos_token="<|im_end|>", pad_token="<|pad|>",
            model_input_names=["input_ids", "attention_mask"],
        )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
        model_input_names=["input_ids", "attention_mask"],
    )


def backbone_config(arch: str, tokenizer: PreTrainedTokenizerFast) -> transformers.PretrainedConfig:
    """A tiny config with the features that matter for encoding: LFM2 mixes short
    convolutions and attention; ModernBERT mixes global and (small) local attention."""
    _check_arch(arch)
    vocab = len(tokenizer)
    if arch == "lfm2_remote":
        config = _remote_modeling_module().TinyBidirectionalConfig(
            vocab_size=vocab, hidden_size=HIDDEN_SIZE, intermediate_size=2 * HIDDEN_SIZE, num_attention_heads=4,
            layer_types=["conv", "attention", "conv", "attention"], max_position_embeddings=MAX_POSITIONS,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        )
        config.auto_map = dict(REMOTE_AUTO_MAP)
        config.architectures = ["TinyBidirectionalModel"]
        return config
    if arch == "lfm2":
        return transformers.Lfm2Config(
            vocab_size=vocab, hidden_size=HIDDEN_SIZE, intermediate_size=2 * HIDDEN_SIZE, block_auto_adjust_ff_dim=False,
            num_hidden_layers=4, layer_types=["conv", "full_attention", "conv", "full_attention"],
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=MAX_POSITIONS,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        )
    return transformers.ModernBertConfig(
        vocab_size=vocab, hidden_size=HIDDEN_SIZE, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4,
        layer_types=["full_attention", "sliding_attention", "sliding_attention", "full_attention"], local_attention=8,
        max_position_embeddings=MAX_POSITIONS, pad_token_id=tokenizer.pad_token_id, cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
    )


def _random_init(model: torch.nn.Module, seed: int, std: float = 0.1) -> None:
    """Overwrite every parameter from a local generator: normal weights, unit norms, zero biases.

    A larger std than the usual 0.02 keeps token vectors of a random model distinct.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            if name.endswith("bias"):
                parameter.zero_()
            elif "norm" in name and parameter.dim() == 1:
                parameter.fill_(1.0)
            else:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)


def build_backbone_folder(arch: str, out_dir: Path, texts: Sequence[str], seed: int = 0) -> Path:
    """Write a tiny random-init ``Lfm2Model`` / ``ModernBertModel`` folder (config.json,
    float32 model.safetensors, tokenizer files) trained on ``texts``; returns ``out_dir``.
    ``lfm2_remote`` writes the fixture's modeling file next to them, named by the config's ``auto_map``."""
    _check_arch(arch)
    if not texts:
        raise ValueError("build_backbone_folder needs texts to train the tokenizer on, got none")
    out_dir = Path(out_dir)
    tokenizer = train_tokenizer(arch, texts)
    config = backbone_config(arch, tokenizer)
    with torch.random.fork_rng(devices=[]):  # construction draws from the global RNG; leave it untouched
        if arch in REMOTE_CODE_FIXTURES:
            model = _remote_modeling_module().TinyBidirectionalModel(config).to(torch.float32)
        else:
            model = AutoModel.from_config(config, dtype=torch.float32)
    _random_init(model, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    if arch in REMOTE_CODE_FIXTURES:
        shutil.copyfile(REMOTE_MODELING_FILE, out_dir / REMOTE_MODELING_FILE.name)
    return out_dir


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def write_colbert_checkpoint(
    backbone_dir: Path,
    out_dir: Path,
    *,
    dense_layers: Sequence[tuple[int, int, bool]] | None = None,
    query_prefix: str = "[Q] ",
    document_prefix: str = "[D] ",
    query_length: int = 32,
    document_length: int = 180,
    do_query_expansion: bool = True,
    attend_to_expansion_tokens: bool = False,
    skiplist_words: Sequence[str] = tuple(string.punctuation),
    do_lower_case: bool = False,
    seed: int = 0,
    trust_remote_code: bool = False,
) -> Path:
    """Write the PyLate on-disk format for ``backbone_dir`` into ``out_dir``.

    Adds the prefixes as tokens (new embedding rows drawn from a local generator), sets
    the pad token to the expansion token as PyLate does, and writes ``modules.json``,
    ``k_Dense/{config.json, model.safetensors}`` (``dense_layers`` = (in, out, bias) per
    layer; default one ``hidden -> 32`` layer without bias),
    ``config_sentence_transformers.json`` and ``sentence_bert_config.json``. A backbone with its own
    modeling code (``trust_remote_code``) keeps it: the code files are copied as they are.
    """
    backbone_dir, out_dir = Path(backbone_dir), Path(out_dir)
    generator = torch.Generator().manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(backbone_dir, trust_remote_code=trust_remote_code)
    model = AutoModel.from_pretrained(backbone_dir, dtype=torch.float32, trust_remote_code=trust_remote_code)
    hidden = model.config.hidden_size
    layers = list(dense_layers) if dense_layers is not None else [(hidden, EMBEDDING_SIZE, False)]
    if not layers or layers[0][0] != hidden:
        raise ValueError(f"dense_layers must start at the backbone's hidden size {hidden}, got {layers}")

    prefixes = [prefix for prefix in (query_prefix, document_prefix) if prefix]
    old_rows = model.get_input_embeddings().weight.shape[0]
    tokenizer.add_tokens([prefix for prefix in prefixes if prefix not in tokenizer.get_vocab()])
    if len(tokenizer) > old_rows:
        with torch.random.fork_rng(devices=[]):
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            embeddings = model.get_input_embeddings().weight
            embeddings[old_rows:] = torch.randn(embeddings[old_rows:].shape, generator=generator) * embeddings[:old_rows].std()
    # PyLate pads with the mask token, else EOS, and saves that choice.
    tokenizer.pad_token = tokenizer.mask_token if tokenizer.mask_token is not None else (tokenizer.eos_token or tokenizer.pad_token)

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    if trust_remote_code:
        for path in remote_code_files(backbone_dir):
            shutil.copyfile(path, out_dir / path.relative_to(backbone_dir))
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
    for index, (in_features, out_features, bias) in enumerate(layers, start=1):
        folder = out_dir / f"{index}_Dense"
        folder.mkdir(exist_ok=True)
        bound = in_features ** -0.5  # torch's nn.Linear init range
        state = {"linear.weight": (torch.rand((out_features, in_features), generator=generator) * 2 - 1) * bound}
        if bias:
            state["linear.bias"] = (torch.rand((out_features,), generator=generator) * 2 - 1) * bound
        save_file({key: value.contiguous() for key, value in state.items()}, str(folder / "model.safetensors"), metadata={"format": "pt"})
        _write_json(folder / "config.json", {"in_features": in_features, "out_features": out_features, "bias": bias, "activation_function": IDENTITY, "use_residual": False})
        modules.append({"idx": index, "name": str(index), "path": folder.name, "type": "pylate.models.Dense.Dense"})
    _write_json(out_dir / MODULES_FILE, modules)
    _write_json(out_dir / TRANSFORMER_CONFIG_FILE, {"max_seq_length": document_length - 1, "do_lower_case": do_lower_case})
    _write_json(
        out_dir / COLBERT_CONFIG_FILE,
        {
            "model_type": "ColBERT",
            "prompts": {"query": "", "document": ""},
            "default_prompt_name": None,
            "similarity_fn_name": "MaxSim",
            "query_prefix": query_prefix,
            "document_prefix": document_prefix,
            "query_length": query_length,
            "document_length": document_length,
            "attend_to_expansion_tokens": attend_to_expansion_tokens,
            "skiplist_words": list(skiplist_words),
            "do_query_expansion": do_query_expansion,
        },
    )
    return out_dir


def fixture_key(arch: str, texts: Sequence[str]) -> str:
    """Content address of a fixture checkpoint: builder version, library versions, arch, texts."""
    fields: dict[str, Any] = {"builder": BUILDER_VERSION, "arch": arch, "transformers": transformers.__version__,
                              "tokenizers": tokenizers.__version__, "texts": list(texts)}
    if arch in REMOTE_CODE_FIXTURES:  # its modeling file is part of what is built
        fields["code"] = hashlib.sha256(REMOTE_MODELING_FILE.read_bytes()).hexdigest()
    payload = json.dumps(fields, ensure_ascii=False, sort_keys=True)
    return f"{arch}-{hashlib.sha256(payload.encode('utf-8')).hexdigest()[:16]}"


def checkpoint_content(root: Path) -> list[Path]:
    """Every file of a built checkpoint but its marker (which records their names and hash)."""
    return sorted(p for p in Path(root).rglob("*") if p.is_file() and p.name != RANDOM_INIT_MARKER)


def damage(root: Path) -> str | None:
    """What is wrong with a built fixture checkpoint (files changed, truncated or deleted, an
    unreadable marker), or None when its files hash to what the build recorded."""
    marker = Path(root) / RANDOM_INIT_MARKER
    if not marker.is_file():
        return f"{marker} is missing (an interrupted build or a deleted file)"
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
        recorded, names = record.get("content_hash"), list(record.get("files") or [])
    except (OSError, ValueError, AttributeError, TypeError) as error:
        return f"{marker} is unreadable ({error})"
    if not recorded or not names:
        return f"{marker} records no content hash (built by an older version)"
    missing = [name for name in names if not (Path(root) / name).is_file()]
    if missing:
        return f"{len(missing)} of its files are missing ({', '.join(missing[:3])})"
    if content_hash(Path(root), [Path(root) / name for name in names]) != recorded:
        return "its files were changed or truncated: they no longer hash to the content hash recorded at build time"
    return None


def _share(root: Path) -> None:
    """Give a built checkpoint the modes the umask allows (safetensors writes 0600, mkdtemp 0700),
    so the jobs of a group sharing runtime.cache_dir can read it."""
    files = file_mode()
    folders = files | ((files & 0o444) >> 2)  # search permission wherever read permission is given
    for path in [root, *Path(root).rglob("*")]:
        path.chmod(folders if path.is_dir() else files)


def _remove_stale_staging(cache_dir: Path, name: str) -> None:
    """Staging folders of builds whose process is gone (killed mid-build), found by the next build."""
    for folder in cache_dir.glob(f".{name}.*"):
        pid = folder.name.split(".")[2] if folder.name.count(".") >= 3 else ""
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def build_fixture_checkpoint(arch: str, cache_dir: Path, texts: Sequence[str], seed: int = 0) -> Path:
    """Build (or reuse) one ColBERT fixture checkpoint under ``cache_dir`` (see ``build_cached``)."""
    _check_arch(arch)

    def build(staging: Path) -> Path:
        backbone = build_backbone_folder(arch, staging / "backbone", texts, seed=seed)
        checkpoint = staging / "checkpoint"
        query_length, document_length = FIXTURE_LENGTHS[arch]
        write_colbert_checkpoint(backbone, checkpoint, query_length=query_length, document_length=document_length, seed=seed,
                                 trust_remote_code=arch in REMOTE_CODE_FIXTURES)
        return checkpoint

    return build_cached(Path(cache_dir) / fixture_key(arch, texts), build,
                        {"architecture": arch, "builder_version": BUILDER_VERSION, "seed": seed,
                         "note": "tiny random-init fixture checkpoint: its numbers say nothing about the real model"})


def build_cached(final: Path, build: Callable[[Path], Path], label: dict[str, Any]) -> Path:
    """Build a fixture checkpoint once into ``final``, atomically; the one cache rule of every kind.

    ``build(staging)`` writes a checkpoint folder inside ``staging`` and returns it; its marker
    (``label`` plus what the builder wrote there, the file list and the content hash) is written
    last. A cached checkpoint is reused only while its files hash to the recorded content hash; a
    changed, truncated or partly deleted one is logged and rebuilt. Staging folders are removed on
    every exit path, and those of killed builds by the next build.
    """
    if final.exists():
        problem = damage(final)
        if problem is None:
            return final
        log.warning("fixture checkpoint %s is damaged (%s): rebuilding it", final, problem)
        discard_folder(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(final.parent, final.name)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", dir=final.parent))
    try:
        checkpoint = build(staging)
        marker = checkpoint / RANDOM_INIT_MARKER
        written = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else {}
        marker.unlink(missing_ok=True)  # the marker lists and hashes every other file
        files = checkpoint_content(checkpoint)
        _write_json(marker, {**written, **label, "weights": "random-init",
                             "files": [p.relative_to(checkpoint).as_posix() for p in files],
                             "content_hash": content_hash(checkpoint, files)})
        _share(checkpoint)
        try:
            os.rename(checkpoint, final)
        except OSError:
            if damage(final) is not None:  # not a lost race to an intact build: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def default_fixture_texts() -> list[str]:
    """The fixture benchmark's texts, which the fixture tokenizers are trained on."""
    from nanobeir_ext.data.fixture import fixture_texts

    texts = fixture_texts()
    if not texts:
        raise ValueError("no fixture texts: nanobeir_ext/fixture/source/*.json is empty or missing")
    return texts


def build_fixture_checkpoints(cache_dir: Path, texts: Sequence[str] | None = None) -> dict[str, Path]:
    """``{"lfm2": path, "modernbert": path}``; ``texts`` default to the fixture's texts."""
    texts = default_fixture_texts() if texts is None else texts
    return {arch: build_fixture_checkpoint(arch, cache_dir, texts) for arch in FIXTURE_ARCHITECTURES}
