"""PyLate 1.6.0 oracle: reference ColBERT checkpoints, vectors and scores.

Runs inside the PyLate virtual environment (``scripts/setup_pylate_oracle.sh``), never
in the harness's own: ``.venv-pylate/bin/python tests/parity/oracle.py SPEC OUT``.
SPEC (JSON, written by tests/test_parity.py) lists the texts and the variants; for each
variant this script

1. builds a checkpoint the way a user would: ``ColBERT(model_name_or_path=backbone,
   **arguments).save(dir)`` (or takes an existing checkpoint as is), then applies the
   file edits PyLate has no constructor argument for (``do_lower_case``, extra Dense
   layers with bias / activation / residual, the tokenizer's ``padding_side``);
2. reloads the saved checkpoint with PyLate, so the reference comes from the files;
3. encodes the texts as queries and documents, and scores them with
   ``pylate.scores.colbert_scores``.

Output per variant under ``OUT/<name>/``: ``checkpoint/``, ``reference.safetensors``
(``query.<i>``, ``document.<i>``, score matrices) and ``meta.json``. Only stdlib, torch,
numpy, safetensors and PyLate are used here.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

import pylate
from pylate import models
from pylate.scores import colbert_scores

DOC_CHUNK = 8  # documents scored per colbert_scores call (its 4-D einsum is memory hungry)


def query_batch_size(count: int, preferred: int = 8) -> int:
    """A batch size leaving no batch of exactly one text.

    transformers skips the padding mask inside LFM2's convolutions for a batch of one,
    so PyLate's vectors of masked expansion tokens depend on whether a query ended up
    alone in the last batch; the reference uses the batched behaviour (see meta.json's
    ``single_query_probe`` for the lone-query vectors).
    """
    for size in range(preferred, 1, -1):
        if count % size != 1:
            return size
    return preferred


def append_dense_layers(checkpoint: Path, layers: list[dict], seed: int) -> None:
    """Add ``k_Dense`` folders after the existing ones, as PyLate's Dense.save writes them."""
    modules_path = checkpoint / "modules.json"
    modules = json.loads(modules_path.read_text())
    generator = torch.Generator().manual_seed(seed)
    for layer in layers:
        index = len(modules)
        folder = checkpoint / f"{index}_Dense"
        folder.mkdir()
        dense = models.Dense(
            in_features=layer["in_features"],
            out_features=layer["out_features"],
            bias=layer["bias"],
            activation_function=getattr(torch.nn, layer["activation"])(),
            use_residual=layer["use_residual"],
        )
        with torch.no_grad():
            for parameter in dense.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
        dense.save(str(folder))
        modules.append({"idx": index, "name": str(index), "path": folder.name, "type": "pylate.models.Dense.Dense"})
    modules_path.write_text(json.dumps(modules, indent=2))


def set_lower_case(checkpoint: Path) -> None:
    path = checkpoint / "sentence_bert_config.json"
    config = json.loads(path.read_text())
    config["do_lower_case"] = True
    path.write_text(json.dumps(config, indent=2))


def set_padding_side(checkpoint: Path, side: str) -> None:
    path = checkpoint / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["padding_side"] = side
    path.write_text(json.dumps(config, indent=2))


def build_checkpoint(variant: dict, target: Path) -> None:
    torch.manual_seed(variant.get("seed", 0))
    if "checkpoint" in variant:  # an existing checkpoint, e.g. one our own writer produced
        model = models.ColBERT(model_name_or_path=variant["checkpoint"], device="cpu", model_kwargs={"dtype": torch.float32})
    else:
        model = models.ColBERT(
            model_name_or_path=variant["backbone"], device="cpu", model_kwargs={"dtype": torch.float32}, **variant.get("arguments", {})
        )
    model.save(str(target))
    edits = variant.get("edits", {})
    if edits.get("do_lower_case"):
        set_lower_case(target)
    if edits.get("extra_dense"):
        append_dense_layers(target, edits["extra_dense"], seed=variant.get("seed", 0) + 1)
    if edits.get("padding_side"):
        set_padding_side(target, edits["padding_side"])


def pad(vectors: list[np.ndarray], length: int | None = None) -> torch.Tensor:
    tensors = [torch.from_numpy(v) for v in vectors]
    padded = torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True, padding_value=0.0)
    if length is not None and padded.shape[1] < length:
        padded = torch.nn.functional.pad(padded, (0, 0, 0, length - padded.shape[1]))
    return padded


def score_matrices(queries: list[np.ndarray], documents: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(exact, zero_padded) colbert_scores of every query against every document.

    exact: each document scored alone (no padding rows). zero_padded: every document
    zero-padded to the longest one, as PyLate's evaluator pads a corpus chunk (50,000
    documents, so one chunk here) and passes no mask: a padding row counts as a
    similarity of 0 in the max. Scored DOC_CHUNK documents per call at that same width.
    """
    query_tensor = pad(queries)
    exact = torch.stack([colbert_scores(query_tensor, torch.from_numpy(d)[None], backend="torch")[:, 0] for d in documents], dim=1)
    width = max(len(d) for d in documents)
    padded = torch.cat(
        [colbert_scores(query_tensor, pad(documents[i : i + DOC_CHUNK], width), backend="torch") for i in range(0, len(documents), DOC_CHUNK)],
        dim=1,
    )
    return exact, padded


def run_variant(variant: dict, spec: dict, out: Path) -> dict:
    started = time.perf_counter()
    folder = out / variant["name"]
    checkpoint = folder / "checkpoint"
    folder.mkdir(parents=True)
    build_checkpoint(variant, checkpoint)
    model = models.ColBERT(model_name_or_path=str(checkpoint), device="cpu", model_kwargs={"dtype": torch.float32})
    text_set = spec["text_sets"][variant.get("texts", "parity")]
    queries, documents = text_set["queries"], text_set["documents"]
    if variant.get("pylate_batching"):  # PyLate's own default batching, a lone last batch included
        q_batch, d_batch = None, None
        query_vectors = model.encode(queries, is_query=True, show_progress_bar=False)
        document_vectors = model.encode(documents, is_query=False, show_progress_bar=False)
    else:
        q_batch, d_batch = query_batch_size(len(queries)), 16
        query_vectors = model.encode(queries, is_query=True, batch_size=q_batch, show_progress_bar=False)
        document_vectors = model.encode(documents, is_query=False, batch_size=d_batch, show_progress_bar=False)
    tensors = {f"query.{i}": torch.from_numpy(v) for i, v in enumerate(query_vectors)}
    tensors |= {f"document.{i}": torch.from_numpy(v) for i, v in enumerate(document_vectors)}
    exact, padded = score_matrices(query_vectors, document_vectors)
    tensors["scores.exact"], tensors["scores.zero_padded"] = exact, padded
    meta = {
        "name": variant["name"],
        "query_batch_size": q_batch,
        "document_batch_size": d_batch,
        "padding_side": model.tokenizer.padding_side,
        "settings": {
            "query_prefix": model.query_prefix,
            "document_prefix": model.document_prefix,
            "query_length": model.query_length,
            "document_length": model.document_length,
            "do_query_expansion": model.do_query_expansion,
            "attend_to_expansion_tokens": model.attend_to_expansion_tokens,
            "skiplist_words": list(model.skiplist_words),
            "do_lower_case": bool(model[0].do_lower_case),
        },
        "dense": [module.get_config_dict() for module in list(model)[1:]],
    }
    if variant.get("single_query_probe"):
        # The first query alone (a batch of one) next to its batched vectors above.
        alone = model.encode(queries[:1], is_query=True, batch_size=1, show_progress_bar=False)[0]
        tensors["probe.alone"] = torch.from_numpy(alone)
        meta["single_query_probe"] = True
    save_file({key: value.contiguous().float() for key, value in tensors.items()}, str(folder / "reference.safetensors"))
    meta["seconds"] = round(time.perf_counter() - started, 3)
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


def main(spec_path: str, out_dir: str) -> None:
    started = time.perf_counter()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metas = [run_variant(variant, spec, out) for variant in spec["variants"]]
    summary = {"pylate": getattr(pylate, "__version__", "unknown"), "torch": torch.__version__, "variants": [m["name"] for m in metas], "seconds": round(time.perf_counter() - started, 3)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: oracle.py SPEC.json OUT_DIR")
    main(sys.argv[1], sys.argv[2])
