"""Document-encoding throughput and padding: this harness vs PyLate 1.6.0, same checkpoint, same texts, one run.

    .venv/bin/python -m benchmarks.encode_vs_pylate [--threads N] [--texts 300] [--repeats 3]

A benchmark, not a test. It builds (once, cached) a mid-sized random-init ModernBERT ColBERT
checkpoint in the PyLate format with the fixture builder's functions (tokenizer trained on
the fixture texts, ``write_colbert_checkpoint``), large enough that the model dominates the
encode call; makes two samples of documents from the fixture texts,

* ``mixed``: 1 to 10 fixture texts joined (from a sentence to past the length limit);
* ``nanobeir``: character lengths drawn from a log-normal with NanoBEIR's mean document
  length (about 1,380 characters) and a long tail, which the encoder clips at
  ``document_length``;

and for each sample times

* ours: ``models.colbert.load_colbert(...).encode(texts, "document")`` in this process;
* PyLate: ``pylate.models.ColBERT(...).encode(texts, is_query=False, batch_size=32)`` in a
  subprocess run by the PyLate virtual environment's interpreter (``.venv-pylate``);

with the same torch thread count, ``TOKENIZERS_PARALLELISM=false`` on both sides, one
warm-up call each, and only the encode call timed (median of ``--repeats``). It prints the
throughput ratio ours/PyLate (goal: >= 1.0 on CPU fp32), the share of the positions each side
runs that are real tokens (goal for ours: >= 95%; PyLate's is replayed from its batching,
``models.batching.pylate_batches``), and checks that the vectors are identical (max abs diff
<= 1e-5 in fp32). Both encode calls include tokenization.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
PYLATE_PYTHON = REPO_DIR / ".venv-pylate" / "bin" / "python"
PYLATE_READY = REPO_DIR / ".venv-pylate" / ".oracle-ready-v1"
TOLERANCE = 1e-5
NANOBEIR_MEAN_CHARS = 1380  # mean NanoBEIR document length (characters)
NANOBEIR_SIGMA = 0.9  # spread of the log-normal: a long tail, clipped at document_length by the encoder

# Runs inside .venv-pylate: argv[1] is a JSON spec; writes timings and vectors of each sample next to it.
PYLATE_SIDE = r"""
import json, sys, time
import numpy as np, torch
spec = json.loads(open(sys.argv[1]).read())
torch.set_num_threads(spec["threads"])
from pylate import models
model = models.ColBERT(model_name_or_path=spec["checkpoint"], device="cpu")
model.eval()
encode = lambda batch: model.encode(batch, is_query=False, batch_size=spec["batch_size"], show_progress_bar=False)
timings = {"threads": torch.get_num_threads(), "torch": torch.__version__, "seconds": {}}
for sample in spec["samples"]:
    texts = json.loads(open(sample["texts"]).read())
    encode(texts[: spec["warmup_texts"]])
    seconds = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        vectors = encode(texts)
        seconds.append(time.perf_counter() - start)
    arrays = [np.asarray(v, dtype=np.float32) for v in vectors]
    np.savez(sample["vectors"], flat=np.concatenate(arrays), lengths=np.array([len(a) for a in arrays]))
    timings["seconds"][sample["name"]] = seconds
json.dump(timings, open(spec["timings"], "w"))
"""


def build_checkpoint(cache: Path, *, hidden: int, layers: int, heads: int, document_length: int, seed: int) -> Path:
    """A random-init ModernBERT (global attention every 3rd layer, local window 128) + Dense hidden->128."""
    import torch
    from transformers import AutoModel, ModernBertConfig

    from nanobeir_ext.data.fixture import fixture_texts
    from models.fixtures import train_tokenizer, write_colbert_checkpoint

    final = cache / f"modernbert-h{hidden}-l{layers}-d{document_length}-s{seed}"
    if (final / "modules.json").is_file():
        return final
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=cache))
    tokenizer = train_tokenizer("modernbert", fixture_texts())
    config = ModernBertConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 3 // 2, num_hidden_layers=layers,
        num_attention_heads=heads, local_attention=128, global_attn_every_n_layers=3, max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id, cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id)
    torch.manual_seed(seed)
    model = AutoModel.from_config(config, dtype=torch.float32)  # the architecture's own initialisation
    model.save_pretrained(staging / "backbone")
    tokenizer.save_pretrained(staging / "backbone")
    write_colbert_checkpoint(staging / "backbone", staging / "checkpoint", dense_layers=[(hidden, 128, False)],
                             query_length=32, document_length=document_length, seed=seed)
    os.replace(staging / "checkpoint", final)
    return final


def mixed_length_texts(count: int, seed: int) -> list[str]:
    """Documents of 1 to 10 fixture texts joined: from a sentence to past the length limit."""
    from nanobeir_ext.data.fixture import fixture_texts

    pool = fixture_texts()
    rng = random.Random(seed)
    return [" ".join(rng.sample(pool, rng.choice((1, 1, 1, 1, 2, 2, 3, 4, 6, 10)))) for _ in range(count)]


def nanobeir_length_texts(count: int, seed: int) -> list[str]:
    """Documents whose character lengths follow a log-normal with NanoBEIR's mean (about 1,380
    characters) and a long tail: fixture texts joined until the drawn length, then cut there."""
    from nanobeir_ext.data.fixture import fixture_texts

    pool = fixture_texts()
    rng = random.Random(seed)
    mu = math.log(NANOBEIR_MEAN_CHARS) - NANOBEIR_SIGMA ** 2 / 2  # the log-normal's mean is exp(mu + sigma^2 / 2)
    texts = []
    for _ in range(count):
        target = max(20, int(rng.lognormvariate(mu, NANOBEIR_SIGMA)))
        parts, size = [], 0
        while size < target:
            parts.append(rng.choice(pool))
            size += len(parts[-1]) + 1
        texts.append(" ".join(parts)[:target])
    return texts


def pylate_padded_tokens(lengths: list[int], texts: list[str], batch_size: int) -> int:
    """Positions PyLate's encode runs: its batches (character-length sort, ``batch_size`` texts),
    each padded to its longest text."""
    from models.batching import pylate_batches

    return sum(len(b) * max(lengths[i] for i in b) for b in pylate_batches(texts, batch_size))


def run_pylate(checkpoint: Path, samples: dict[str, list[str]], *, threads: int, repeats: int, batch_size: int,
               workdir: Path) -> tuple[dict[str, tuple[list[float], "object", list[int]]], dict]:
    """PyLate's timings and vectors for each sample: {name: (seconds, flat vectors, vectors per text)}."""
    import numpy as np

    entries = []
    for name, texts in samples.items():
        (workdir / f"{name}.json").write_text(json.dumps(texts, ensure_ascii=False))
        entries.append({"name": name, "texts": str(workdir / f"{name}.json"), "vectors": str(workdir / f"{name}.npz")})
    spec = {"checkpoint": str(checkpoint), "samples": entries, "threads": threads, "repeats": repeats,
            "batch_size": batch_size, "warmup_texts": 32, "timings": str(workdir / "pylate.json")}
    (workdir / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(threads)}
    subprocess.run([str(PYLATE_PYTHON), "-c", PYLATE_SIDE, str(workdir / "spec.json")], check=True, env=env)
    timings = json.loads((workdir / "pylate.json").read_text())
    results = {}
    for entry in entries:
        data = np.load(entry["vectors"])
        results[entry["name"]] = (timings["seconds"][entry["name"]], data["flat"], data["lengths"].tolist())
    return results, timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads, both sides")
    parser.add_argument("--texts", type=int, default=300, help="documents per sample")
    parser.add_argument("--repeats", type=int, default=3, help="timed encode calls per side (median reported)")
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--document-length", type=int, default=300)
    parser.add_argument("--pylate-batch-size", type=int, default=32, help="PyLate's encode batch size (its default)")
    parser.add_argument("--batch-tokens", type=int, default=16384, help="our padded-token budget per batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=REPO_DIR / ".cache" / "nanobeir-ext" / "bench-models")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    if not PYLATE_READY.is_file():
        print(f"PyLate environment not ready ({PYLATE_READY} missing): run scripts/setup_pylate_oracle.sh", file=sys.stderr)
        return 2
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["HF_HUB_OFFLINE"] = "1"
    import numpy as np
    import torch

    from models.batching import MIN_USEFUL_FRACTION
    from models.colbert import load_colbert
    from nanobeir_ext.outputs.environment import cpu_model

    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    checkpoint = build_checkpoint(args.cache, hidden=args.hidden, layers=args.layers, heads=args.heads,
                                  document_length=args.document_length, seed=args.seed)
    samples = {"mixed": mixed_length_texts(args.texts, args.seed), "nanobeir": nanobeir_length_texts(args.texts, args.seed)}

    encoder = load_colbert(str(checkpoint), device="cpu", dtype="float32", batch_tokens=args.batch_tokens,
                           padding_side="right")
    ours: dict[str, tuple[list[float], object, list[int]]] = {}
    with torch.inference_mode():
        for name, texts in samples.items():
            lengths = [len(encoder.tokenize([t], "document")["input_ids"][0]) for t in texts]
            encoder.encode(texts[:32], "document", progress=False)  # warm-up
            seconds, output = [], None
            for _ in range(args.repeats):
                start = time.perf_counter()
                output = encoder.encode(texts, "document", progress=False)
                seconds.append(time.perf_counter() - start)
            ours[name] = (seconds, output, lengths)

    with tempfile.TemporaryDirectory() as workdir:
        theirs, pylate_info = run_pylate(checkpoint, samples, threads=args.threads, repeats=args.repeats,
                                         batch_size=args.pylate_batch_size, workdir=Path(workdir))

    parameters = encoder.info.parameters
    result: dict = {
        "command": " ".join([".venv/bin/python -m benchmarks.encode_vs_pylate", *(argv if argv is not None else sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": cpu_model(), "threads": args.threads, "torch": torch.__version__, "pylate_torch": pylate_info["torch"],
        "checkpoint": f"random-init ModernBERT hidden {args.hidden}, {args.layers} layers, {args.heads} heads, "
                      f"Dense {args.hidden}->128, document_length {args.document_length}, {parameters:,} parameters",
        "batch_tokens": args.batch_tokens, "min_useful_fraction": MIN_USEFUL_FRACTION,
        "pylate_batch_size": args.pylate_batch_size, "samples": {},
    }
    print(f"checkpoint : {result['checkpoint']} (fp32, CPU)")
    print(f"machine    : {result['cpu']}, {args.threads} threads, torch {torch.__version__} (PyLate side {pylate_info['torch']})")
    print(f"batches    : ours sorted by token length, <= {args.batch_tokens} padded tokens, >= {MIN_USEFUL_FRACTION:.0%} "
          f"real tokens each; PyLate sorted by character length, {args.pylate_batch_size} texts each")
    ok = True
    for name, texts in samples.items():
        ours_seconds, output, lengths = ours[name]
        pylate_seconds, flat, pylate_lengths = theirs[name]
        ours_lengths = [e.shape[0] for e in output.embeddings]
        same_shapes = ours_lengths == pylate_lengths
        max_diff = float(np.abs(torch.cat(output.embeddings).numpy() - flat).max()) if same_shapes else float("inf")
        ours_s, pylate_s = statistics.median(ours_seconds), statistics.median(pylate_seconds)
        useful = sum(lengths)
        pylate_padded = pylate_padded_tokens(lengths, texts, args.pylate_batch_size)
        entry = {
            "texts": len(texts), "chars_mean": statistics.mean(len(t) for t in texts),
            "tokens_min": min(lengths), "tokens_median": statistics.median(lengths), "tokens_max": max(lengths),
            "at_document_length": sum(length == args.document_length for length in lengths), "useful_tokens": useful,
            "ours_seconds": ours_seconds, "pylate_seconds": pylate_seconds,
            "ours_docs_per_s": len(texts) / ours_s, "pylate_docs_per_s": len(texts) / pylate_s,
            "ours_useful_tokens_per_s": useful / ours_s, "pylate_useful_tokens_per_s": useful / pylate_s,
            "ours_padded_tokens": output.padded_tokens, "pylate_padded_tokens": pylate_padded,
            "ours_useful_fraction": useful / output.padded_tokens, "pylate_useful_fraction": useful / pylate_padded,
            "throughput_ratio_ours_over_pylate": pylate_s / ours_s,
            "same_vector_counts": same_shapes, "max_abs_diff": max_diff, "identical_within_1e-5": max_diff <= TOLERANCE,
        }
        result["samples"][name] = entry
        ok = ok and entry["identical_within_1e-5"]
        print(f"\n[{name}] {len(texts)} documents, {entry['chars_mean']:.0f} characters on average, {min(lengths)}-{max(lengths)} "
              f"tokens (median {statistics.median(lengths):g}, {entry['at_document_length']} at document_length), "
              f"{useful:,} useful tokens")
        print(f"  ours     : {ours_s:.3f} s median of {args.repeats} -> {entry['ours_docs_per_s']:.1f} docs/s, "
              f"{entry['ours_useful_tokens_per_s']:,.0f} useful tokens/s; {output.padded_tokens:,} positions run "
              f"({entry['ours_useful_fraction']:.1%} useful)")
        print(f"  PyLate   : {pylate_s:.3f} s median of {args.repeats} -> {entry['pylate_docs_per_s']:.1f} docs/s, "
              f"{entry['pylate_useful_tokens_per_s']:,.0f} useful tokens/s; {pylate_padded:,} positions run "
              f"({entry['pylate_useful_fraction']:.1%} useful)")
        print(f"  ratio    : ours/PyLate throughput = {entry['throughput_ratio_ours_over_pylate']:.2f} (goal >= 1.0); "
              f"useful positions {entry['ours_useful_fraction']:.1%} vs {entry['pylate_useful_fraction']:.1%} (goal for ours >= 95%)")
        print(f"  vectors  : same counts per text: {same_shapes}; max abs diff {max_diff:.2e} "
              f"({'OK' if entry['identical_within_1e-5'] else 'FAIL'}: tolerance {TOLERANCE:g})")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
