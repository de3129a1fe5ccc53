"""Benchmark: our exact MaxSim top-k against PyLate 1.6.0's ``colbert_scores``.

Random L2-normalised token embeddings of a realistic shape are scored in
subprocesses on the same arrays: ours (``nanobeir_ext.retrieval.maxsim.maxsim_topk``,
this interpreter) and PyLate's evaluator path (zero-padded 4-D
``pylate.scores.colbert_scores`` over the whole corpus, then ``torch.topk``;
the PyLate virtual environment's interpreter). Each side times only the
scoring. Peak extra memory is resident memory: the peak mark (VmHWM) is reset
just before scoring and VmRSS at that moment subtracted, in a process whose
large allocations are all fresh mappings (ours: a separate untimed run).
Useful FLOPs (2 x dim x query vectors x document
vectors, padding excluded) over our time give our throughput, reported as a
fraction of the fp32 matmul peak (``nanobeir_ext.peak``) measured in our
worker right before each of our timed runs; the best of each is reported, so
that on a shared machine both are taken at its quietest.

When PyLate's 4-D similarity tensor (queries x documents x query length x
longest document x 4 bytes) would exceed ``--pylate-max-gib``, PyLate scores a
shard of the documents (padded to the corpus's longest document, as a
whole-corpus run would be) and its time and memory are extrapolated linearly
to the whole corpus; the output says so. Rankings are compared on the
documents PyLate actually scored.

    python -m benchmarks.maxsim_vs_pylate                 # full default size
    python -m benchmarks.maxsim_vs_pylate --documents 500 --out /tmp/maxsim.json
    python -m benchmarks.maxsim_vs_pylate --under-load --documents 2000   # ours vs matmul, idle and loaded

``--under-load`` needs no PyLate: in this process it times our MaxSim and a
plain square matmul of the same FLOPs, alternately, first on the machine as it
is ("idle") and then beside ``--load-processes`` CPU-bound competing processes
(busy loops started and killed by this run), and prints each one's loaded
speed as a fraction of its idle speed. The goal: MaxSim keeps at least the
fraction the matmul keeps.

This file is also the worker of the subprocesses (``--worker``); the PyLate
worker imports only numpy, torch and pylate.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import emit_json, reset_peak_rss, status_bytes

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PYLATE_PYTHON = REPO_ROOT / ".venv-pylate" / "bin" / "python"
PYLATE_READY_MARKER = REPO_ROOT / ".venv-pylate" / ".oracle-ready-v1"
GIB = 1024**3


# ---------------------------------------------------------------- memory probes
def _start_memory_probe() -> int:
    """Reset the peak-RSS mark (Linux ``clear_refs`` 5) and return the RSS now."""
    gc.collect()
    reset_peak_rss()
    return status_bytes("VmRSS")


def _synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


# ---------------------------------------------------------------- data
def _make_data(args: argparse.Namespace, folder: Path) -> dict[str, int]:
    generator = torch.Generator().manual_seed(args.seed)
    query_lengths = torch.full((args.queries,), args.query_tokens, dtype=torch.int64)
    doc_lengths = torch.randint(args.min_doc_tokens, args.max_doc_tokens + 1, (args.documents,), generator=generator)
    for name, lengths in (("queries", query_lengths), ("documents", doc_lengths)):
        vectors = torch.nn.functional.normalize(torch.randn(int(lengths.sum()), args.dim, generator=generator), dim=-1)
        offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
        offsets[1:] = torch.cumsum(lengths, 0)
        np.save(folder / f"{name}_vectors.npy", vectors.numpy())
        np.save(folder / f"{name}_offsets.npy", offsets.numpy())
    return {
        "query_vectors": int(query_lengths.sum()),
        "document_vectors": int(doc_lengths.sum()),
        "longest_document": int(doc_lengths.max()),
    }


def _load(folder: Path, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    vectors = torch.from_numpy(np.load(folder / f"{name}_vectors.npy"))
    offsets = torch.from_numpy(np.load(folder / f"{name}_offsets.npy"))
    return vectors, offsets


# ---------------------------------------------------------------- workers
def _worker_ours(args: argparse.Namespace) -> dict:
    from nanobeir_ext.latency.peak import matmul_peak_flops
    from nanobeir_ext.embeddings.ragged import RaggedEmbeddings
    from nanobeir_ext.retrieval.maxsim import default_chunk_tokens, maxsim_topk

    folder = Path(args.data)
    q_vectors, q_offsets = _load(folder, "queries")
    d_vectors, d_offsets = _load(folder, "documents")
    queries = RaggedEmbeddings(tuple(f"q{i}" for i in range(len(q_offsets) - 1)), q_vectors, q_offsets)
    documents = RaggedEmbeddings(tuple(f"d{i}" for i in range(len(d_offsets) - 1)), d_vectors, d_offsets)
    chunk_tokens = args.chunk_tokens or default_chunk_tokens(args.device)
    small = RaggedEmbeddings.from_list(documents.ids[:50], documents.to_list()[:50])
    maxsim_topk(queries, small, k=args.k, device=args.device, chunk_tokens=chunk_tokens)  # warm-up
    if args.worker == "ours-memory":
        rss_before = _start_memory_probe()
        maxsim_topk(queries, documents, k=args.k, device=args.device, chunk_tokens=chunk_tokens)
        return {"peak_extra_bytes": status_bytes("VmHWM") - rss_before}

    times, peaks = [], []
    for _ in range(args.repeats):
        # The peak is measured next to every timed run, so that both see the
        # same machine load (this matters on a shared machine).
        peaks.append(matmul_peak_flops(args.device, torch.float32))
        _synchronize(args.device)
        start = time.perf_counter()
        maxsim_topk(queries, documents, k=args.k, device=args.device, chunk_tokens=chunk_tokens)
        _synchronize(args.device)
        times.append(time.perf_counter() - start)

    shard = args.shard_documents
    shard_docs = RaggedEmbeddings.from_list(documents.ids[:shard], documents.to_list()[:shard])
    shard_run = maxsim_topk(queries, shard_docs, k=args.k, device=args.device, chunk_tokens=chunk_tokens)
    return {
        "seconds": min(times),
        "all_seconds": times,
        "matmul_peak_flops_fp32": max(peaks),
        "all_matmul_peaks": peaks,
        "chunk_tokens": chunk_tokens,
        "threads": torch.get_num_threads(),
        "shard_topk": _run_to_indices(shard_run),
        "shard_scores": [list(docs.values()) for docs in shard_run.values()],
    }


def _run_to_indices(run: dict[str, dict[str, float]]) -> list[list[int]]:
    return [[int(doc_id[1:]) for doc_id in docs] for docs in run.values()]


def _worker_pylate(args: argparse.Namespace) -> dict:
    import pylate
    from pylate.scores import colbert_scores

    folder = Path(args.data)
    q_vectors, q_offsets = _load(folder, "queries")
    d_vectors, d_offsets = _load(folder, "documents")
    pad = torch.nn.utils.rnn.pad_sequence
    split = lambda vectors, offsets, n: [vectors[offsets[i] : offsets[i + 1]] for i in range(n)]  # noqa: E731
    queries = pad(split(q_vectors, q_offsets, len(q_offsets) - 1), batch_first=True, padding_value=0).to(args.device)
    documents = pad(split(d_vectors, d_offsets, args.shard_documents), batch_first=True, padding_value=0)
    # A whole-corpus run pads every document to the corpus's longest one.
    longest = int((d_offsets[1:] - d_offsets[:-1]).max())
    documents = torch.nn.functional.pad(documents, (0, 0, 0, longest - documents.shape[1])).to(args.device)
    colbert_scores(queries[:2], documents[:2])  # warm-up
    k = min(args.k, documents.shape[0])

    times = []
    rss_before = _start_memory_probe()
    for _ in range(args.pylate_repeats):
        _synchronize(args.device)
        start = time.perf_counter()
        scores = colbert_scores(queries, documents)  # as PyLateInformationRetrievalEvaluator calls it
        top = torch.topk(scores, k, dim=1, largest=True, sorted=True)
        _synchronize(args.device)
        times.append(time.perf_counter() - start)
        del scores
    extra = status_bytes("VmHWM") - rss_before
    return {
        "pylate_version": pylate.__version__,
        "seconds": min(times),
        "all_seconds": times,
        "peak_extra_bytes": extra,
        "threads": torch.get_num_threads(),
        "padded_shape": list(documents.shape),
        "shard_topk": top.indices.cpu().tolist(),
        "shard_scores": top.values.cpu().tolist(),
    }


# glibc hands freed large blocks out again without returning them to the OS,
# so a resident-memory peak would miss memory recycled from earlier work (such
# as the peak probe's matrices). A fixed mmap threshold gives every large
# allocation its own mapping, returned on free: what the probes measure.
MEMORY_PROBE_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def _run_worker(python: str, kind: str, args: argparse.Namespace, folder: Path, env: dict[str, str] | None = None) -> dict:
    result = folder / f"{kind}.json"
    command = [
        python, "-m", "benchmarks.maxsim_vs_pylate", "--worker", kind, "--data", str(folder), "--result", str(result),
        "--k", str(args.k), "--repeats", str(args.repeats), "--pylate-repeats", str(args.pylate_repeats),
        "--device", args.device,
        "--shard-documents", str(args.shard_documents), "--chunk-tokens", str(args.chunk_tokens or 0),
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=REPO_ROOT, env={**os.environ, **(env or {})})
    return json.loads(result.read_text())


# ---------------------------------------------------------------- under load
BUSY_LOOP = "while True: pass"


def _in_memory_data(args: argparse.Namespace) -> tuple["RaggedEmbeddings", "RaggedEmbeddings"]:  # noqa: F821
    from nanobeir_ext.embeddings.ragged import RaggedEmbeddings

    generator = torch.Generator().manual_seed(args.seed)
    query_lengths = torch.full((args.queries,), args.query_tokens, dtype=torch.int64)
    doc_lengths = torch.randint(args.min_doc_tokens, args.max_doc_tokens + 1, (args.documents,), generator=generator)
    sets = []
    for prefix, lengths in (("q", query_lengths), ("d", doc_lengths)):
        vectors = torch.nn.functional.normalize(torch.randn(int(lengths.sum()), args.dim, generator=generator), dim=-1)
        offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
        offsets[1:] = torch.cumsum(lengths, 0)
        sets.append(RaggedEmbeddings(tuple(f"{prefix}{i}" for i in range(len(lengths))), vectors, offsets))
    return sets[0], sets[1]


def under_load(args: argparse.Namespace) -> dict:
    """Our MaxSim and a matmul of the same FLOPs, idle then beside busy processes, in one run."""
    from nanobeir_ext.retrieval.maxsim import maxsim_topk

    queries, documents = _in_memory_data(args)
    useful_flops = 2.0 * args.dim * int(queries.offsets[-1]) * int(documents.offsets[-1])
    n = args.matmul_size
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    a = torch.randn(n, n, generator=generator, device=args.device)
    b = torch.randn(n, n, generator=generator, device=args.device)
    out = torch.empty(n, n, device=args.device)
    matmuls = max(1, round(useful_flops / (2.0 * n**3)))

    def time_maxsim() -> float:
        _synchronize(args.device)
        start = time.perf_counter()
        maxsim_topk(queries, documents, k=args.k, device=args.device)
        _synchronize(args.device)
        return time.perf_counter() - start

    def time_matmul() -> float:
        _synchronize(args.device)
        start = time.perf_counter()
        for _ in range(matmuls):
            torch.mm(a, b, out=out)
        _synchronize(args.device)
        return time.perf_counter() - start

    def phase() -> dict[str, list[float]]:
        times: dict[str, list[float]] = {"maxsim": [], "matmul": []}
        for _ in range(args.repeats):  # alternate, so both see the same load
            times["maxsim"].append(time_maxsim())
            times["matmul"].append(time_matmul())
        return times

    time_maxsim(), time_matmul()  # warm-up
    idle = phase()
    competitors = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(args.load_processes)]
    try:
        time.sleep(0.2)  # let the scheduler spread them
        loaded = phase()
    finally:
        for process in competitors:
            process.kill()
            process.wait()

    flops = {"maxsim": useful_flops, "matmul": 2.0 * n**3 * matmuls}
    report: dict = {
        "benchmark": "maxsim_under_load",
        "device": args.device,
        "threads": torch.get_num_threads(),
        "load_processes": args.load_processes,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg()[0],
        "shape": {"queries": args.queries, "query_tokens": args.query_tokens, "documents": args.documents,
                  "document_tokens": [args.min_doc_tokens, args.max_doc_tokens], "dim": args.dim, "k": args.k},
        "matmul": {"size": n, "calls": matmuls},
    }  # fmt: skip
    for name in ("maxsim", "matmul"):
        idle_s, loaded_s = float(np.median(idle[name])), float(np.median(loaded[name]))
        report[name] = {
            "flops": flops[name], "idle_seconds": idle[name], "loaded_seconds": loaded[name],
            "idle_gflops_per_s": flops[name] / idle_s / 1e9, "loaded_gflops_per_s": flops[name] / loaded_s / 1e9,
            "kept_fraction": idle_s / loaded_s,
        }  # fmt: skip
    report["maxsim_over_matmul_speed"] = {
        phase_name: report["maxsim"][f"{phase_name}_gflops_per_s"] / report["matmul"][f"{phase_name}_gflops_per_s"]
        for phase_name in ("idle", "loaded")
    }
    report["goals"] = {"maxsim_keeps_at_least_the_matmul_fraction": report["maxsim"]["kept_fraction"] >= report["matmul"]["kept_fraction"]}
    rows = [
        ("shape", f"{args.queries} q x {args.query_tokens} tok; {args.documents} d x {args.min_doc_tokens}.."
                  f"{args.max_doc_tokens} tok; dim {args.dim}; {useful_flops / 1e9:.1f} GFLOP"),
        ("machine", f"{os.cpu_count()} cores, {report['threads']} torch threads, load average "
                    f"{report['load_average_at_start']:.1f} at start; {args.load_processes} busy process(es) when loaded"),
    ]  # fmt: skip
    for name in ("maxsim", "matmul"):
        r = report[name]
        rows.append((name, f"idle {np.median(r['idle_seconds']):.3f} s ({r['idle_gflops_per_s']:.1f} GFLOP/s), loaded "
                           f"{np.median(r['loaded_seconds']):.3f} s ({r['loaded_gflops_per_s']:.1f} GFLOP/s): "
                           f"keeps {100 * r['kept_fraction']:.0f}% (medians of {args.repeats})"))
    ratio = report["maxsim_over_matmul_speed"]
    rows.append(("MaxSim / matmul speed", f"idle {ratio['idle']:.2f}, loaded {ratio['loaded']:.2f}"))
    rows += [(f"goal: {k.replace('_', ' ')}", "met" if v else "NOT met") for k, v in report["goals"].items()]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    emit_json(report, args.out)
    return report


# ---------------------------------------------------------------- comparison
def _agreement(ours: dict, theirs: dict) -> dict[str, float]:
    overlaps, identical, differences = [], 0, []
    for our_ids, their_ids, our_scores, their_scores in zip(
        ours["shard_topk"], theirs["shard_topk"], ours["shard_scores"], theirs["shard_scores"]
    ):
        overlaps.append(len(set(our_ids) & set(their_ids)) / max(1, len(their_ids)))
        identical += our_ids == their_ids
        their_by_id = dict(zip(their_ids, their_scores))
        differences += [abs(s - their_by_id[i]) for i, s in zip(our_ids, our_scores) if i in their_by_id]
    return {
        "mean_overlap_at_k": float(np.mean(overlaps)),
        "queries_with_identical_ranking": identical / len(overlaps),
        "max_abs_score_difference": max(differences, default=0.0),
    }


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--query-tokens", type=int, default=32)
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--min-doc-tokens", type=int, default=64)
    parser.add_argument("--max-doc-tokens", type=int, default=300)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--chunk-tokens", type=int, default=0, help="0: default_chunk_tokens(device)")
    parser.add_argument("--repeats", type=int, default=3, help="our timed runs, each next to a peak measurement (best reported)")
    parser.add_argument("--pylate-repeats", type=int, default=1, help="PyLate's timed runs (best reported)")
    parser.add_argument("--pylate-python", default=str(DEFAULT_PYLATE_PYTHON))
    parser.add_argument("--pylate-max-gib", type=float, default=2.0, help="largest 4-D tensor PyLate may allocate")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    parser.add_argument("--under-load", action="store_true",
                        help="ours and a same-FLOPs matmul, idle and beside busy processes (no PyLate)")
    parser.add_argument("--load-processes", type=int, default=1, help="busy processes started for --under-load")
    parser.add_argument("--matmul-size", type=int, default=2048, help="square matmul size for --under-load")
    parser.add_argument("--worker", choices=("ours", "ours-memory", "pylate"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--shard-documents", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.pylate_repeats < 1:
        parser.error("--repeats and --pylate-repeats must be at least 1")
    if args.load_processes < 1 or args.matmul_size < 1:
        parser.error("--load-processes and --matmul-size must be at least 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = _parse_args(argv)
    if args.worker:
        result = _worker_pylate(args) if args.worker == "pylate" else _worker_ours(args)
        Path(args.result).write_text(json.dumps(result))
        return result
    if args.under_load:
        return under_load(args)

    if not PYLATE_READY_MARKER.exists():
        raise SystemExit(f"PyLate oracle environment not ready: {PYLATE_READY_MARKER} is missing (scripts/setup_pylate_oracle.sh)")
    with tempfile.TemporaryDirectory(prefix="maxsim-bench-") as tmp:
        folder = Path(tmp)
        sizes = _make_data(args, folder)
        full_4d_bytes = args.queries * args.documents * args.query_tokens * sizes["longest_document"] * 4
        per_document = full_4d_bytes / args.documents
        args.shard_documents = min(args.documents, max(1, int(args.pylate_max_gib * GIB // per_document)))
        ours = _run_worker(sys.executable, "ours", args, folder)
        ours.update(_run_worker(sys.executable, "ours-memory", args, folder, env=MEMORY_PROBE_ENV))
        theirs = _run_worker(args.pylate_python, "pylate", args, folder, env=MEMORY_PROBE_ENV)

    scale = args.documents / args.shard_documents
    useful_flops = 2.0 * args.dim * sizes["query_vectors"] * sizes["document_vectors"]
    pylate_seconds = theirs["seconds"] * scale
    peak = ours["matmul_peak_flops_fp32"]
    report = {
        "benchmark": "maxsim_vs_pylate",
        "device": args.device,
        "shape": {
            "queries": args.queries, "query_tokens": args.query_tokens, "documents": args.documents,
            "document_tokens": [args.min_doc_tokens, args.max_doc_tokens], "dim": args.dim, "k": args.k, **sizes,
        },
        "threads": {"ours": ours["threads"], "pylate": theirs["threads"]},
        "matmul_peak_flops_fp32": peak,
        "all_matmul_peaks_fp32": ours["all_matmul_peaks"],
        "ours": {
            "seconds": ours["seconds"], "all_seconds": ours["all_seconds"], "chunk_tokens": ours["chunk_tokens"],
            "peak_extra_bytes": ours["peak_extra_bytes"], "useful_flops_per_second": useful_flops / ours["seconds"],
            "fraction_of_matmul_peak": useful_flops / ours["seconds"] / peak,
        },
        "pylate": {
            "version": theirs["pylate_version"], "documents_scored": args.shard_documents,
            "extrapolated": scale != 1.0, "seconds_measured": theirs["seconds"], "seconds": pylate_seconds,
            "peak_extra_bytes_measured": theirs["peak_extra_bytes"],
            "peak_extra_bytes": theirs["peak_extra_bytes"] * scale, "similarity_4d_bytes": full_4d_bytes,
        },
        "speedup": pylate_seconds / ours["seconds"],
        "agreement_on_documents_pylate_scored": _agreement(ours, theirs),
    }  # fmt: skip
    report["goals"] = {
        "speedup_at_least_2x": report["speedup"] >= 2.0,
        "our_extra_memory_under_1_gib": ours["peak_extra_bytes"] < GIB,
        "at_least_60_percent_of_fp32_matmul_peak": report["ours"]["fraction_of_matmul_peak"] >= 0.6,
    }
    _print_table(report)
    emit_json(report, args.out)
    return report


def _print_table(report: dict) -> None:
    shape, ours, theirs = report["shape"], report["ours"], report["pylate"]
    note = (
        f" (measured on {theirs['documents_scored']} documents, extrapolated linearly)" if theirs["extrapolated"] else ""
    )
    agreement = report["agreement_on_documents_pylate_scored"]
    rows = [
        ("shape", f"{shape['queries']} q x {shape['query_tokens']} tok; {shape['documents']} d x "
                  f"{shape['document_tokens'][0]}..{shape['document_tokens'][1]} tok; dim {shape['dim']}; top-{shape['k']}"),
        ("fp32 matmul peak", f"{report['matmul_peak_flops_fp32'] / 1e9:.1f} GFLOP/s on {report['device']}, "
                             f"{report['threads']['ours']} threads"),
        ("ours: time", f"{ours['seconds']:.3f} s, best of {len(ours['all_seconds'])} (chunk_tokens {ours['chunk_tokens']})"),
        ("ours: throughput", f"{ours['useful_flops_per_second'] / 1e9:.1f} GFLOP/s = "
                             f"{100 * ours['fraction_of_matmul_peak']:.0f}% of peak"),
        ("ours: peak extra memory", f"{ours['peak_extra_bytes'] / GIB:.3f} GiB"),
        (f"PyLate {theirs['version']}: time", f"{theirs['seconds']:.3f} s{note}"),
        (f"PyLate {theirs['version']}: peak extra memory", f"{theirs['peak_extra_bytes'] / GIB:.3f} GiB{note}; "
                                                         f"4-D tensor {theirs['similarity_4d_bytes'] / GIB:.2f} GiB"),
        ("speedup ours/PyLate", f"{report['speedup']:.1f}x"),
        ("rankings agreement", f"overlap@k {agreement['mean_overlap_at_k']:.4f}, identical order "
                               f"{100 * agreement['queries_with_identical_ranking']:.0f}% of queries, "
                               f"max |score diff| {agreement['max_abs_score_difference']:.2e}"),
    ]  # fmt: skip
    rows += [(f"goal: {name.replace('_', ' ')}", "met" if met else "NOT met") for name, met in report["goals"].items()]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
