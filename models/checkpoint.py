"""Reading a PyLate ColBERT checkpoint from disk (or the hub) without PyLate.

The layout (see docs/encoding.md): ``modules.json`` names the transformer
folder (normally the root) and the ``k_Dense`` folders in order;
``config_sentence_transformers.json`` holds the ColBERT settings;
``sentence_bert_config.json`` holds ``do_lower_case``. Missing settings take PyLate
1.6.0's defaults.

A checkpoint whose ``config.json`` (or ``tokenizer_config.json``) has an ``auto_map`` ships its own
modeling code: it loads only when the model config opts in (``trust_remote_code``), and the code
files are then fetched, hashed and named (:func:`remote_code_record`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import string
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

from models.projection import dense_weight_file
from nanobeir_ext.data.hub import DEFAULT_REVISION, HubFetchError, HubRepo, fetch_snapshot, revision_text

log = logging.getLogger(__name__)

MODULES_FILE = "modules.json"
COLBERT_CONFIG_FILE = "config_sentence_transformers.json"
TRANSFORMER_CONFIG_FILE = "sentence_bert_config.json"
# Written by models.fixtures next to a tiny random-init checkpoint; the one place a fixture
# gets its label: weights "random-init", source "fixture:<architecture>".
RANDOM_INIT_MARKER = "nanobeir_fixture.json"

TRANSFORMER_TYPES = ("sentence_transformers.models.Transformer", "sentence_transformers.models.transformer.Transformer")
DENSE_TYPES = ("pylate.models.Dense.Dense", "pylate.models.Dense", "sentence_transformers.models.Dense", "sentence_transformers.models.dense.Dense")
# Anything else in modules.json (Pooling, Normalize, ...) PyLate drops on load.

# Files fetched from the hub: weights, configs and tokenizer files, not ONNX/OpenVINO exports.
HUB_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken")
# Python files are fetched only for a model that opts in to running its own modeling code.
REMOTE_CODE_PATTERNS = ("*.py",)
# The config files whose ``auto_map`` can point transformers' Auto classes at code in the checkpoint.
AUTO_MAP_FILES = ("config.json", "tokenizer_config.json")
HUB_FALLBACK_PATTERNS = ("pytorch_model*.bin", "*/pytorch_model.bin")
ROOT_WEIGHT_PATTERNS = ("model*.safetensors", "pytorch_model*.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer.model", "spiece.model")


@dataclass(frozen=True)
class ColBERTSettings:
    """Every setting that changes a ColBERT checkpoint's vectors (PyLate 1.6.0 semantics)."""

    query_prefix: str = "[Q] "  # "" means no prefix token
    document_prefix: str = "[D] "
    query_length: int = 32  # tokens per query, prefix included
    document_length: int = 180  # maximum tokens per document, prefix included
    do_query_expansion: bool = True  # pad queries to query_length with the expansion token
    attend_to_expansion_tokens: bool = False  # real query tokens attend to the expansion tokens
    skiplist_words: tuple[str, ...] = tuple(string.punctuation)  # document tokens dropped after encoding
    do_lower_case: bool = False

    def __post_init__(self) -> None:
        for name in ("query_length", "document_length"):
            minimum = 2 if getattr(self, name.replace("length", "prefix")) else 1
            if int(getattr(self, name)) < minimum:
                raise ValueError(f"{name} must be at least {minimum} (the prefix token counts toward it), got {getattr(self, name)}")
        if not self.do_query_expansion and self.attend_to_expansion_tokens:
            # PyLate forces this off: without expansion there is nothing to attend to.
            object.__setattr__(self, "attend_to_expansion_tokens", False)
        object.__setattr__(self, "skiplist_words", tuple(self.skiplist_words))

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["skiplist_words"] = list(self.skiplist_words)
        return values

    def with_overrides(self, **overrides: Any) -> "ColBERTSettings":
        """A copy with the non-None overrides applied (unknown names are an error)."""
        unknown = sorted(set(overrides) - set(asdict(self)))
        if unknown:
            raise ValueError(f"unknown ColBERT settings {unknown}; valid: {sorted(asdict(self))}")
        return replace(self, **{key: value for key, value in overrides.items() if value is not None})


@dataclass(frozen=True)
class CheckpointLayout:
    """Where the parts of a checkpoint folder are and what its config files say."""

    root: Path
    transformer_dir: Path
    dense_dirs: tuple[Path, ...]
    colbert_config: Mapping[str, Any] = field(default_factory=dict)  # config_sentence_transformers.json
    transformer_config: Mapping[str, Any] = field(default_factory=dict)  # sentence_bert_config.json
    fixture: str | None = None  # architecture of a tiny random-init fixture checkpoint (its marker file)

    @property
    def random_init(self) -> bool:
        return self.fixture is not None


@dataclass(frozen=True)
class ResolvedSource:
    """A checkpoint source turned into a local folder."""

    folder: Path
    source: str  # what the user asked for: hub id or folder
    revision: str | None  # resolved hub commit; None for a local folder


class ModelUnavailableError(HubFetchError):
    """A hub model cannot be read (unknown repo or revision, missing file, unreachable hub with no
    cached copy, half-downloaded snapshot). The message names ``model.revision|source|path``;
    ``error.with_keys("models.<key>")`` names the configured model's keys instead."""


class RemoteCodeRefusedError(ModelUnavailableError):
    """A checkpoint ships modeling code (an ``auto_map``) and its model config does not opt in to
    running it. Raised before any weights are read into a model, let alone any text encoded."""

    def render(self) -> str:
        keys = self.repo.keys
        return f"{self.problem}. To fix: " + "; ".join(fix.format(keys=keys, source=f"{keys}.{self.repo.source_key}", download="",
                                                                   local=self.repo.local_copy) for fix in self.fixes)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error


def read_checkpoint_layout(root: Path) -> CheckpointLayout:
    """Parse ``modules.json`` and the two ColBERT config files of a checkpoint folder."""
    root = Path(root)
    modules_path = root / MODULES_FILE
    if not modules_path.is_file():
        raise FileNotFoundError(
            f"{root} is not a PyLate ColBERT checkpoint: {MODULES_FILE} is missing "
            "(a plain transformer folder has no trained projection layer to load)"
        )
    modules = sorted(_read_json(modules_path), key=lambda module: int(module.get("idx", 0)))
    transformer_dirs = [root / module.get("path", "") for module in modules if module.get("type") in TRANSFORMER_TYPES]
    dense_dirs = tuple(root / module["path"] for module in modules if module.get("type") in DENSE_TYPES)
    if len(transformer_dirs) != 1:
        found = [module.get("type") for module in modules]
        raise ValueError(f"{modules_path}: expected exactly one Transformer module, found module types {found}")
    if not dense_dirs:
        found = [module.get("type") for module in modules]
        raise ValueError(f"{modules_path}: no Dense module (one of {list(DENSE_TYPES)}); found module types {found}")
    transformer_dir = transformer_dirs[0]
    colbert_path = root / COLBERT_CONFIG_FILE
    transformer_path = transformer_dir / TRANSFORMER_CONFIG_FILE
    return CheckpointLayout(
        root=root,
        transformer_dir=transformer_dir,
        dense_dirs=dense_dirs,
        colbert_config=_read_json(colbert_path) if colbert_path.is_file() else {},
        transformer_config=_read_json(transformer_path) if transformer_path.is_file() else {},
        fixture=_fixture_architecture(root),
    )


def _fixture_architecture(root: Path) -> str | None:
    marker = root / RANDOM_INIT_MARKER
    return str(_read_json(marker).get("architecture") or "unknown") if marker.is_file() else None


def settings_from_layout(layout: CheckpointLayout) -> ColBERTSettings:
    """The checkpoint's settings; a missing or null field takes PyLate's default."""
    config = layout.colbert_config
    prompt_name = config.get("default_prompt_name")
    if prompt_name and (config.get("prompts") or {}).get(prompt_name):
        # PyLate would prepend this prompt to every text; no published ColBERT checkpoint sets one.
        raise ValueError(f"{layout.root}: default_prompt_name {prompt_name!r} (a prompt prepended to every text) is not supported")
    values = {key: config.get(key) for key in ("query_prefix", "document_prefix", "query_length", "document_length", "do_query_expansion", "attend_to_expansion_tokens")}
    skiplist = config.get("skiplist_words")
    values["skiplist_words"] = tuple(skiplist) if skiplist is not None else None
    values["do_lower_case"] = layout.transformer_config.get("do_lower_case")
    return ColBERTSettings().with_overrides(**values)


def root_weight_files(folder: Path) -> list[Path]:
    return sorted({path for pattern in ROOT_WEIGHT_PATTERNS for path in folder.glob(pattern) if path.is_file()})


def resolve_source(
    source: str, *, revision: str | None = None, local_files_only: bool | None = None, cache_dir: str | Path | None = None,
    trust_remote_code: bool = False, extra_patterns: Sequence[str] = (),
) -> ResolvedSource:
    """A local folder as is, or a hub repo id downloaded (or found in the HF cache) at ``revision``
    through ``nanobeir_ext.data.hub.fetch_snapshot``: one commit, bounded waits, errors that name the
    repo, the revision and the settings to change (:class:`ModelUnavailableError`). ``*.py`` files
    are fetched only with ``trust_remote_code`` (a checkpoint's own modeling code); ``extra_patterns``
    names files another checkpoint format needs beside the transformer (BGE-M3's ``colbert_linear.pt``)."""
    path = Path(source).expanduser()
    if path.is_dir():
        if revision not in (None, ""):
            log.warning("revision %r ignored: %s is a local folder", revision, path)
        return ResolvedSource(folder=path.resolve(), source=str(path.resolve()), revision=None)
    if path.exists() or source.startswith(("/", "./", "../", "~")) or source.count("/") > 1:
        raise FileNotFoundError(f"checkpoint folder {source!r} does not exist (a hub id looks like 'org/name')")
    repo = HubRepo(repo_id=source, repo_type="model", revision=revision_text(revision) or DEFAULT_REVISION)
    options: dict[str, Any] = {"local_files_only": bool(local_files_only), "cache_dir": cache_dir}
    patterns = HUB_PATTERNS + (REMOTE_CODE_PATTERNS if trust_remote_code else ()) + tuple(extra_patterns)
    try:
        snapshot = fetch_snapshot(repo, patterns, **options)
        if not root_weight_files(snapshot.folder):  # an older checkpoint without safetensors
            snapshot = fetch_snapshot(repo, patterns + HUB_FALLBACK_PATTERNS, **options)
    except HubFetchError as error:
        raise ModelUnavailableError(error.repo, error.problem, error.fixes) from error
    if not root_weight_files(snapshot.folder):
        raise ModelUnavailableError(repo, f"commit {snapshot.commit} has no weights ({list(ROOT_WEIGHT_PATTERNS)})",
                                    ["set {keys}.revision to a commit with weights, or {source} to another checkpoint"])
    return ResolvedSource(folder=snapshot.folder, source=source, revision=snapshot.commit)


def auto_map_references(folder: Path) -> dict[str, str]:
    """``{"config.json:AutoModel": "modeling_x.ModelClass", ...}``: every class reference in the
    ``auto_map`` of the folder's config files (empty when the checkpoint ships no code)."""
    references: dict[str, str] = {}
    for name in AUTO_MAP_FILES:
        path = Path(folder) / name
        auto_map = _read_json(path).get("auto_map") if path.is_file() else None
        for auto_class, value in sorted((auto_map or {}).items()):
            # tokenizer_config.json maps AutoTokenizer to [slow, fast]; either may be null.
            for index, reference in enumerate(value if isinstance(value, (list, tuple)) else [value]):
                if reference:
                    suffix = f"[{index}]" if isinstance(value, (list, tuple)) else ""
                    references[f"{name}:{auto_class}{suffix}"] = str(reference)
    return references


def remote_code_files(folder: Path) -> list[Path]:
    """The Python files transformers would run for the folder's ``auto_map``: each referenced module
    and (recursively) its relative imports. A reference into another repo (``org/repo--module.Class``)
    is refused: its code would not be the checkpoint's, nor covered by its commit or hash."""
    from transformers.dynamic_module_utils import get_relative_import_files

    folder = Path(folder)
    files: set[Path] = set()
    for where, reference in auto_map_references(folder).items():
        if "--" in reference:
            raise CheckpointError(f"{folder / where.split(':')[0]}: auto_map {where.split(':')[1]} -> {reference!r} loads code "
                                  "from another repo; only code shipped in the checkpoint itself is supported")
        module = reference.rsplit(".", 1)[0]
        path = folder / f"{module.replace('.', '/')}.py"
        if not path.is_file():
            raise CheckpointError(f"{path} is missing: auto_map {where.split(':')[1]} -> {reference!r} needs it "
                                  "(a hub download fetches *.py only with trust_remote_code)")
        files.update({path, *(Path(extra) for extra in get_relative_import_files(path))})
    return sorted(files)


def remote_code_record(folder: Path) -> dict[str, Any]:
    """What identifies the code a checkpoint runs: the auto_map references, sha256 of each code file
    and one hash over them all (part of the encoder's cache identity and of environment.json)."""
    folder = Path(folder)
    files = remote_code_files(folder)
    return {
        "auto_map": auto_map_references(folder),
        "files": {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest() for path in files},
        "hash": content_hash(folder, files),
    }


def require_remote_code_opt_in(folder: Path, *, trust_remote_code: bool, source: str, revision: str | None) -> dict[str, Any] | None:
    """None for a checkpoint without an ``auto_map``; else, with ``trust_remote_code``, its
    :func:`remote_code_record`; without it, :class:`RemoteCodeRefusedError` naming the repo (at its
    commit) or the folder and the key that opts in."""
    references = auto_map_references(folder)
    if not references:
        return None
    if not trust_remote_code:
        where = f"{source} at commit {revision}" if revision else f"checkpoint folder {folder}"
        mapped = ", ".join(f"{key.split(':')[1]} -> {value}" for key, value in references.items())
        repo = HubRepo(repo_id=source, repo_type="model", revision=revision or DEFAULT_REVISION)
        raise RemoteCodeRefusedError(
            repo, f"cannot load {where} without running its own modeling code (auto_map: {mapped}); without it "
                  "transformers would build another class, or none, from these weights",
            ["read the code shipped in the checkpoint, then opt in with {keys}.trust_remote_code=true (its files' "
             "hash becomes part of the cache identity and environment.json)"])
    return remote_code_record(folder)


def checkpoint_files(layout: CheckpointLayout) -> list[Path]:
    """Every file whose bytes change the vectors: weights, model and tokenizer configs, ColBERT
    configs, and the modeling code a checkpoint ships (its ``auto_map``)."""
    files = set(root_weight_files(layout.transformer_dir))
    if auto_map_references(layout.transformer_dir):
        files.update(remote_code_files(layout.transformer_dir))
    for name in ("config.json", TRANSFORMER_CONFIG_FILE, *TOKENIZER_FILES):
        if (layout.transformer_dir / name).is_file():
            files.add(layout.transformer_dir / name)
    for name in (MODULES_FILE, COLBERT_CONFIG_FILE):
        if (layout.root / name).is_file():
            files.add(layout.root / name)
    for folder in layout.dense_dirs:
        files.update({folder / "config.json", dense_weight_file(folder)})
    return sorted(files)


def content_hash(root: Path, files: list[Path]) -> str:
    """sha256 over (relative path, size, bytes) of ``files``; memoised per file size and mtime."""
    stamp = tuple((str(path.relative_to(root)), path.stat().st_size, path.stat().st_mtime_ns) for path in files)
    return _content_hash(str(root), stamp)


@lru_cache(maxsize=64)
def _content_hash(root: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for relative, size, _ in stamp:
        digest.update(f"{relative}\0{size}\0".encode())
        with open(Path(root) / relative, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class CheckpointError(ValueError):
    """A checkpoint folder's file is missing, truncated or unparsable; the message names the file."""


def check_checkpoint(layout: CheckpointLayout) -> None:
    """Read every file that loading needs, cheaply (JSON parsed, safetensors headers and sizes),
    so a damaged folder gets one error naming the file and what is wrong, instead of a bare
    ``SafetensorError`` or a tokenizer that falls back to a converter needing protobuf."""
    root = layout.root
    for folder in (layout.transformer_dir, *layout.dense_dirs):
        _check_json(folder / "config.json", required=True)
    for name in (COLBERT_CONFIG_FILE, MODULES_FILE):
        _check_json(root / name, required=False)
    _check_json(layout.transformer_dir / TRANSFORMER_CONFIG_FILE, required=False)
    weights = root_weight_files(layout.transformer_dir)
    if not weights:
        raise CheckpointError(f"{layout.transformer_dir} has no weights ({' or '.join(ROOT_WEIGHT_PATTERNS)}): the checkpoint is incomplete")
    for path in [*weights, *(dense_weight_file(folder) for folder in layout.dense_dirs)]:
        if not path.is_file():
            raise CheckpointError(f"{path} is missing: the checkpoint is incomplete")
        if path.suffix == ".safetensors":
            _check_safetensors(path)
    tokenizer_files = [layout.transformer_dir / name for name in TOKENIZER_FILES if (layout.transformer_dir / name).is_file()]
    for path in tokenizer_files:
        if path.suffix == ".json":
            _check_json(path, required=True)
    if not any(p.name in ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model") for p in tokenizer_files):
        raise CheckpointError(f"{layout.transformer_dir} has no tokenizer vocabulary (tokenizer.json, vocab.txt, vocab.json or a "
                              "sentencepiece model): the checkpoint is incomplete")


def _check_json(path: Path, *, required: bool) -> None:
    if not path.is_file():
        if required:
            raise CheckpointError(f"{path} is missing: the checkpoint is incomplete")
        return
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error}): the file is damaged or truncated") from error


def _check_safetensors(path: Path) -> None:
    """The header parses and the file is exactly as long as the header says."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        header_size = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if header_size < 2 or 8 + header_size > size:
            raise CheckpointError(f"{path} is truncated or not a safetensors file ({size} bytes, no complete header)")
        try:
            header = json.loads(handle.read(header_size))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CheckpointError(f"{path} has a damaged safetensors header ({error})") from error
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry]
    expected = 8 + header_size + max(ends, default=0)
    if size != expected:
        raise CheckpointError(f"{path} is {size} bytes but its header describes {expected}: the file is truncated or damaged")
