"""The one switch from a configured model (fixture, local folder or hub id) to an encoder; every runner uses it."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from nanobeir_ext.protocol import EncoderRequest

if TYPE_CHECKING:
    from models.random_init import Architecture

__all__ = ["EncoderRequest", "WEIGHT_MODES", "fixture_models_dir", "load_encoder", "load_for_timing"]

log = logging.getLogger(__name__)

# For timing: "auto" = real weights if they load offline, else random-init; "real" = fail if not; "random".
WEIGHT_MODES: tuple[str, ...] = ("auto", "real", "random")


def fixture_models_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "fixture-models"


def load_encoder(request: EncoderRequest, *, device: str, dtype: str | torch.dtype, cache_dir: Path,
                 local_files_only: bool | None = None, attn_implementation: str | None = None):
    """Load the retriever of ``request.kind``: a PyLate-format ColBERT checkpoint (default, a
    :class:`models.colbert.ColBERTEncoder`), or another kind (:func:`load_kind`).

    ``request.fixture`` builds (once, under ``cache_dir``) and loads a tiny random-init
    checkpoint; its marker file labels it (see ``models.checkpoint.read_checkpoint_layout``).
    ``local_files_only=True`` never touches the network: a hub model must be in the local
    Hugging Face cache, else :class:`models.checkpoint.ModelUnavailableError`.
    """
    if request.kind != "colbert":
        return load_kind(request, device=device, dtype=dtype, cache_dir=cache_dir, local_files_only=local_files_only)
    from models.checkpoint import check_checkpoint, read_checkpoint_layout
    from models.colbert import load_colbert  # heavy imports only when a model is really needed

    options = dict(device=device, dtype=dtype, name=request.name, query_length=request.query_length,
                   document_length=request.document_length, batch_tokens=request.batch_tokens,
                   padding_side=request.padding_side, trust_remote_code=request.trust_remote_code,
                   attn_implementation=attn_implementation)
    check_location(request)
    if request.fixture:
        from models.fixtures import build_fixture_checkpoint, default_fixture_texts

        folder = build_fixture_checkpoint(request.fixture, fixture_models_dir(cache_dir), default_fixture_texts())
        return load_colbert(str(folder), **options)
    if request.path:
        check_checkpoint(read_checkpoint_layout(Path(request.path)))  # a damaged file named, not a bare loader error
        return load_colbert(str(request.path), **options)
    return load_colbert(request.source, revision=request.revision, local_files_only=local_files_only, **options)


def check_location(request: EncoderRequest) -> None:
    """Where a checkpoint comes from, checked once for every kind: a fixture is built, never read
    from a folder, and a ``path`` must be a folder."""
    if request.fixture and request.path:
        raise ValueError(f"model {request.name!r} names both a fixture architecture ({request.fixture}) and a checkpoint "
                         f"folder ({request.path}): a fixture is built, never read from a folder; set fixture=null to "
                         "evaluate the folder, or drop the path")
    if request.path and not Path(request.path).is_dir():
        raise FileNotFoundError(f"model.path {request.path!r} for {request.name} is not a folder")


# The settings each kind reads from request.options (its model config's own keys).
KIND_OPTIONS: dict[str, tuple[str, ...]] = {
    "dense": ("query_prompt", "document_prompt", "normalize", "max_seq_length", "batch_size"),
    "bge_m3": (),
    "bm25": ("k1", "b", "method", "delta"),
}


def load_kind(request: EncoderRequest, *, device: str, dtype: str | torch.dtype, cache_dir: Path,
              local_files_only: bool | None = None):
    """A dense encoder (``models.dense``), BGE-M3's ColBERT vectors (``models.bge_m3``) or BM25
    (``models.bm25``, a Ranker); ``fixture: dense|bge_m3`` builds a tiny random-init checkpoint."""
    if request.kind not in KIND_OPTIONS:
        raise ValueError(f"model {request.name!r}: unknown kind {request.kind!r}; valid choices: "
                         f"{['colbert', *KIND_OPTIONS]}")
    unknown = sorted(set(request.options) - set(KIND_OPTIONS[request.kind]))
    if unknown:
        raise ValueError(f"model {request.name!r} (kind {request.kind}) has settings {unknown} it does not read; "
                         f"valid: {list(KIND_OPTIONS[request.kind])}")
    options = {k: v for k, v in request.options.items() if v is not None}
    if request.kind == "bm25":
        from models.bm25 import BM25Retriever, BM25Settings

        if request.fixture or request.path:
            raise ValueError(f"model {request.name!r}: BM25 has no checkpoint; drop fixture and path")
        return BM25Retriever(BM25Settings(**options), name=request.name)
    check_location(request)
    if request.fixture:
        if request.fixture != request.kind:
            raise ValueError(f"model {request.name!r} of kind {request.kind} names fixture {request.fixture!r}; "
                             f"its fixture is {request.kind!r}")
        from models.fixture_cache import build_kind_fixture
        from models.fixtures import default_fixture_texts

        source, revision = str(build_kind_fixture(request.kind, fixture_models_dir(cache_dir), default_fixture_texts())), None
    elif request.path:
        source, revision = str(request.path), None
    else:
        source, revision = request.source, request.revision
    common = dict(revision=revision, device=device, dtype=dtype, name=request.name, local_files_only=local_files_only)
    if request.kind == "dense":
        from models.dense import load_dense

        return load_dense(source, **common, trust_remote_code=request.trust_remote_code, **options)
    from models.bge_m3 import load_bge_m3

    return load_bge_m3(source, **common, query_length=request.query_length, document_length=request.document_length,
                       **({"batch_tokens": request.batch_tokens} if request.batch_tokens else {}))


def load_for_timing(request: EncoderRequest, architecture: Architecture | None, *, weights: str, device: str,
                    dtype: torch.dtype, cache_dir: Path, attn_implementation: str, seed: int = 0) -> Any:
    """An encoder to time (it has ``info``, ``backbone``, ``dense`` and ``forward_tokens``).

    Real weights when ``weights`` allows and they load without the network (fixture, local
    folder or Hugging Face cache); otherwise a full-size random-init model of ``architecture``,
    with one warning line saying why. A fixture is random-init already: it always loads.
    """
    if weights not in WEIGHT_MODES:
        raise ValueError(f"latency.weights {weights!r}; valid choices: {list(WEIGHT_MODES)}")
    if weights != "random" or request.fixture:
        try:
            return load_encoder(request, device=device, dtype=dtype, cache_dir=cache_dir, local_files_only=True,
                                attn_implementation=attn_implementation)
        except (OSError, ValueError, RuntimeError) as error:  # ModelUnavailableError, missing/broken files
            if weights == "real":
                raise
            log.warning("%s: real weights not loadable offline (%s: %s); timing a random-init model of the same "
                        "architecture", request.name, type(error).__name__, _first_sentence(error))
    return build_random(request.name, architecture, device=device, dtype=dtype,
                        attn_implementation=attn_implementation, seed=seed)


def build_random(name: str, architecture: Architecture | None, *, device: str, dtype: torch.dtype,
                 attn_implementation: str, seed: int = 0) -> Any:
    """A full-size random-init model of ``architecture`` (its parameter count checked against the published one)."""
    from models.random_init import build_random_colbert, check_published_count, count_parameters

    if architecture is None:
        raise ValueError(f"model {name!r} has no architecture config to build a random-init model from; "
                         "set model.architecture (configs/architecture/*.yaml) or latency.weights=real")
    log.info("%s: %s", name, check_published_count(architecture, count_parameters(architecture)))
    return build_random_colbert(architecture, name=name, device=device, dtype=dtype,
                                attn_implementation=attn_implementation, seed=seed)


def _first_sentence(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split())
    return text.split(". ")[0][:limit]
