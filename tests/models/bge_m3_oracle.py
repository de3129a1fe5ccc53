"""The BGE-M3 oracle: FlagEmbedding's own ColBERT vectors and scores for a checkpoint and texts.

Runs inside the isolated ``.venv-flagembedding`` (scripts/setup_flagembedding_oracle.sh),
never in the harness's environment; tests/models/test_bge_m3.py calls it as
``python bge_m3_oracle.py SPEC.json OUT_DIR``. SPEC holds ``checkpoint``, ``queries``,
``documents``, ``query_length``, ``document_length``. OUT_DIR receives
``reference.safetensors`` (concatenated vectors and per-text counts for both roles, and
``scores`` [queries, documents] from ``BGEM3FlagModel.colbert_score``) and ``meta.json``.
"""
from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from FlagEmbedding import BGEM3FlagModel
from safetensors.torch import save_file


def main(spec_path: str, out_dir: str) -> None:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    model = BGEM3FlagModel(spec["checkpoint"], use_fp16=False, devices=["cpu"], batch_size=16,
                           query_max_length=spec["query_length"], passage_max_length=spec["document_length"])
    options = {"return_dense": False, "return_sparse": False, "return_colbert_vecs": True}
    queries = model.encode_queries(spec["queries"], **options)["colbert_vecs"]
    documents = model.encode_corpus(spec["documents"], **options)["colbert_vecs"]
    scores = torch.tensor([[float(model.colbert_score(q, d)) for d in documents] for q in queries], dtype=torch.float32)
    tensors = {"scores": scores}
    for role, vectors in (("query", queries), ("document", documents)):
        tensors[f"{role}.vectors"] = torch.from_numpy(np.concatenate(vectors).astype(np.float32))
        tensors[f"{role}.counts"] = torch.tensor([len(v) for v in vectors], dtype=torch.long)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / "reference.safetensors"))
    meta = {name: version(name) for name in ("FlagEmbedding", "transformers", "torch")}
    (out / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    print("FlagEmbedding oracle:", json.dumps(meta))


if __name__ == "__main__":
    main(*sys.argv[1:3])
