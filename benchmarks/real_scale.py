"""Benchmark: the whole 9x9 evaluation at NanoBEIR's real size, with a stand-in encoder.

Writes a synthetic local snapshot in the ``nanobeir-extended`` layout with the real
benchmark's shape (13 subsets with NanoBEIR's per-subset document, query and judgment
counts: 56,723 documents, 649 queries and 5,563 judgments per language; 9 languages;
document lengths log-normal with mean ~1,380 characters and a long tail up to 47,548
characters, the longest NanoBEIR document), then runs ``runners.evaluate.run`` on it
with a cheap deterministic stand-in encoder (random unit vectors, dim 128, one per 4
characters, at most ``--document-tokens`` per document, 32 per query), so what is timed
is the harness's own work: loading and validation, store keys, store writes and reads,
MaxSim for every cell, pytrec_eval, the results table and the report.

Each scale (a fraction of every subset's corpus; queries and judgments stay at their
real counts, so MaxSim grows linearly with the scale) runs in its own process, which
prints the time (self time: a stage's time excludes the stages it calls) and peak
resident memory of every stage, MaxSim's useful FLOP rate against the fp32 matmul
peak measured in the same process (``nanobeir_ext.latency.peak``), and the goals:
everything but MaxSim at most 10% of MaxSim's time, peak memory at most 4 GiB, time
linear in the corpus size.

    python -m benchmarks.real_scale --scales 0.125 0.25 0.5 1 --out real_scale.json --plot fig.png
    python -m benchmarks.real_scale --scales 0.002 --languages en de --subsets 2   # seconds
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from benchmarks import emit_json, reset_peak_rss, status_bytes

REPO_ROOT = Path(__file__).resolve().parent.parent
GIB = 1024**3
# NanoBEIR per subset: documents, queries, judgments (the same in every language of
# LiquidAI/nanobeir-multilingual-extended; /work/shared/notes/published-results.md).
SUBSETS: dict[str, tuple[int, int, int]] = {
    "NanoArguAna": (3635, 50, 50), "NanoClimateFEVER": (3408, 50, 148), "NanoDBPedia": (6045, 50, 1158),
    "NanoFEVER": (4996, 50, 57), "NanoFiQA2018": (4598, 50, 123), "NanoHotpotQA": (5090, 50, 100),
    "NanoMSMARCO": (5043, 50, 50), "NanoNFCorpus": (2953, 50, 2518), "NanoNQ": (5035, 50, 57),
    "NanoQuoraRetrieval": (5046, 50, 70), "NanoSCIDOCS": (2210, 50, 244), "NanoSciFact": (2919, 50, 56),
    "NanoTouche2020": (5745, 49, 932),
}  # fmt: skip
LANGUAGES = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "pt")
MEAN_DOC_CHARS = 1380.0
MAX_DOC_CHARS = 47_548
DOC_CHARS_SIGMA = 1.0  # log-normal spread: median ~840 characters, 1% of documents above ~8,600
CHARS_PER_TOKEN = 4.0
QUERY_TOKENS = 32  # ColBERT queries are expanded to a fixed length
DIM = 128
STAND_IN = "stand-in encoder (not harness)"  # its stage: timed and measured, never counted as the harness's


# ---------------------------------------------------------------- the synthetic snapshot
def document_lengths(count: int, generator: np.random.Generator) -> np.ndarray:
    """Characters per document: log-normal with mean ``MEAN_DOC_CHARS`` (before clipping), clipped to [1, MAX_DOC_CHARS]."""
    mu = math.log(MEAN_DOC_CHARS) - DOC_CHARS_SIGMA**2 / 2
    return np.clip(generator.lognormal(mu, DOC_CHARS_SIGMA, count).round().astype(np.int64), 1, MAX_DOC_CHARS)


def _word_stream(language: str, size: int, generator: np.random.Generator) -> str:
    """About ``size`` characters of pseudo-words of one language (its own syllables, so no two
    languages share a text); vectorised, so a full-size snapshot is written in seconds."""
    consonants = np.array(list("bcdfghklmnprstvz"))
    syllables = np.array([language + v for v in "aeiou"] + [a + b + v for a in consonants[:8] for b in consonants[8:] for v in "aeiou"])
    count = size // 3
    parts = np.char.add(syllables[generator.integers(0, len(syllables), count)],
                        np.where(generator.random(count) < 0.45, " ", ""))
    return "".join(parts.tolist())


def write_snapshot(folder: Path, scale: float, languages: Sequence[str], subsets: Sequence[str], seed: int = 0) -> dict[str, int]:
    """The synthetic benchmark in the ``nanobeir-extended`` snapshot layout; returns its counts per language."""
    folder.mkdir(parents=True, exist_ok=True)
    configs, totals = [], {"documents": 0, "queries": 0, "judgments": 0, "document_characters": 0}
    streams = {language: _word_stream(language, MAX_DOC_CHARS * 8, np.random.default_rng([seed, zlib.crc32(language.encode())]))
               for language in languages}
    for subset_index, subset in enumerate(subsets):
        n_docs_real, n_queries, n_judgments = SUBSETS[subset]
        n_docs = max(1, round(n_docs_real * scale))
        generator = np.random.default_rng([seed, subset_index])
        lengths = document_lengths(n_docs, generator)
        query_lengths = generator.integers(20, 120, n_queries)
        qrels = _judgments(subset, n_queries, n_docs, n_judgments, generator)
        totals["documents"] += n_docs
        totals["queries"] += n_queries
        totals["judgments"] += len(qrels)
        totals["document_characters"] += int(lengths.sum())
        for language in languages:
            stream = streams[language]
            starts = generator.integers(0, len(stream) - MAX_DOC_CHARS, n_docs + n_queries)
            docs = [{"_id": f"{subset}-d{i}", "text": stream[s : s + n].strip() or language} for i, (s, n) in enumerate(zip(starts, lengths))]
            queries = [{"_id": f"{subset}-q{i}", "text": stream[s : s + n].strip() or language}
                       for i, (s, n) in enumerate(zip(starts[n_docs:], query_lengths))]
            config = f"{subset}_{language}"
            _write_jsonl(folder / config / "corpus-00000-of-00001.jsonl", docs)
            _write_jsonl(folder / config / "queries-00000-of-00001.jsonl", queries)
            _write_jsonl(folder / f"{config}_qrels" / "qrels-00000-of-00001.jsonl",
                         [{"query-id": q, "corpus-id": d} for q, d in qrels])
            configs.append((config, [("corpus", f"{config}/corpus-*"), ("queries", f"{config}/queries-*")]))
            configs.append((f"{config}_qrels", [("qrels", f"{config}_qrels/qrels-*")]))
    front = ["---", "pretty_name: nanobeir-ext synthetic real-scale benchmark", "configs:"]
    for name, files in configs:
        front += [f"- config_name: {name}", "  data_files:"]
        front += [line for split, path in files for line in (f"  - split: {split}", f"    path: {path}")]
    (folder / "README.md").write_text("\n".join(front + ["---", "Synthetic: benchmarks/real_scale.py.", ""]), encoding="utf-8")
    return totals


def _judgments(subset: str, n_queries: int, n_docs: int, n_judgments: int, generator: np.random.Generator) -> list[tuple[str, str]]:
    """``n_judgments`` (query, document) pairs, every query judged at least once, no pair twice."""
    per_query = np.ones(n_queries, dtype=np.int64)
    per_query += np.bincount(generator.integers(0, n_queries, max(0, n_judgments - n_queries)), minlength=n_queries)
    pairs = []
    for q, count in enumerate(np.minimum(per_query, n_docs)):
        pairs += [(f"{subset}-q{q}", f"{subset}-d{d}") for d in generator.choice(n_docs, int(count), replace=False)]
    return pairs


def _write_jsonl(path: Path, records: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


# ---------------------------------------------------------------- the stand-in encoder
def document_vectors(characters: np.ndarray, document_tokens: int) -> np.ndarray:
    """The stand-in's vectors per document: one per ``CHARS_PER_TOKEN`` characters, 1 to ``document_tokens``."""
    return np.clip(np.ceil(characters / CHARS_PER_TOKEN), 1, document_tokens).astype(np.int64)


class StandInEncoder:
    """Random unit vectors, deterministic in the texts: one per ``CHARS_PER_TOKEN`` characters
    (at most ``document_tokens``) for documents, ``QUERY_TOKENS`` for queries. Implements
    ``nanobeir_ext.protocol.Encoder``; costs almost nothing next to the harness."""

    def __init__(self, document_tokens: int):
        from nanobeir_ext.protocol import ModelLabel

        self.document_tokens = document_tokens
        self.info = ModelLabel(name="stand-in", source="benchmarks.real_scale", revision=None, weights="random-init",
                               dtype="float32", device="cpu", settings={"document_tokens": document_tokens, "dim": DIM})
        self.seconds = 0.0

    def cache_identity(self) -> dict[str, Any]:
        return {"encoder": "benchmarks.real_scale.StandInEncoder", "document_tokens": self.document_tokens, "dim": DIM}

    def encode(self, texts: Sequence[str], role: str, *, progress: bool = True, desc: str | None = None):
        import torch

        from nanobeir_ext.protocol import EncodeOutput

        start = time.perf_counter()
        if role == "query":
            lengths = [QUERY_TOKENS] * len(texts)
        else:
            lengths = document_vectors(np.array([len(t) for t in texts]), self.document_tokens).tolist()
        seed = zlib.crc32(f"{role}|{len(texts)}|{texts[0] if texts else ''}|{texts[-1] if texts else ''}".encode())
        vectors = torch.randn(sum(lengths), DIM, generator=torch.Generator().manual_seed(seed))
        vectors = torch.nn.functional.normalize(vectors, dim=-1)
        output = EncodeOutput(embeddings=list(vectors.split(lengths)), tokens=sum(lengths), padded_tokens=sum(lengths))
        self.seconds += time.perf_counter() - start
        return output


# ---------------------------------------------------------------- stage accounting
@dataclass
class StageStats:
    seconds: float = 0.0
    calls: int = 0
    peak_bytes: int = 0


class StageClock:
    """Self time and peak resident memory per stage, for wrapped functions that may nest:
    a stage's time excludes the stages called inside it, and each interval's peak goes to
    the stage running then (VmHWM read and reset at every boundary)."""

    def __init__(self) -> None:
        self.stats: dict[str, StageStats] = {}
        self._stack: list[str] = []
        self._mark = time.perf_counter()
        reset_peak_rss()

    def _boundary(self) -> None:
        now, peak = time.perf_counter(), status_bytes("VmHWM")
        stage = self.stats.setdefault(self._stack[-1] if self._stack else "other (runner)", StageStats())
        stage.seconds += now - self._mark
        stage.peak_bytes = max(stage.peak_bytes, peak)
        reset_peak_rss()
        self._mark = time.perf_counter()  # the bookkeeping itself counts to no stage

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._boundary()
        self._stack.append(name)
        self.stats.setdefault(name, StageStats()).calls += 1
        try:
            yield
        finally:
            self._boundary()
            self._stack.pop()

    def wrap(self, name: str, function: Callable, on_call: Callable[..., None] | None = None) -> Callable:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if on_call is not None:
                on_call(*args, **kwargs)
            with self.stage(name):
                return function(*args, **kwargs)

        return wrapper


@contextlib.contextmanager
def patched(target: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, original)


# ---------------------------------------------------------------- one scale, in its own process
def run_scale(scale: float, languages: Sequence[str], subsets: Sequence[str], document_tokens: int, work: Path,
              seed: int = 0, encode_only: bool = False) -> dict[str, Any]:
    """Write the snapshot, then time ``runners.evaluate.run`` on it stage by stage (``encode_only``:
    phase 1 alone, as a ``shard=0/1`` run: encoding, packing and store writes, minutes at full scale)."""
    import torch
    from hydra import compose, initialize_config_dir

    from nanobeir_ext.embeddings.store import EmbeddingStore
    from nanobeir_ext.evaluation import metrics, pipeline
    from nanobeir_ext.latency.peak import matmul_peak_flops
    from runners import evaluate

    commit = _commit()  # before anything runs: the code this process imports
    started = time.perf_counter()
    snapshot = work / "snapshot"
    counts = write_snapshot(snapshot, scale, languages, subsets, seed)
    snapshot_seconds = time.perf_counter() - started
    snapshot_bytes = sum(f.stat().st_size for f in snapshot.rglob("*") if f.is_file())
    peaks = [matmul_peak_flops("cpu", torch.float32)]

    overrides = [
        "experiment=smoke", "~models.fixture_lfm2", "~models.fixture_dense", "~models.fixture_bm25",
        "models.fixture_modernbert.name=stand-in", "report.baseline_model=null", "runtime.progress=false",
        f"runtime.cache_dir={work / 'cache'}", f"benchmark.path={snapshot}", "benchmark.name=synthetic-real-scale",
        f"benchmark.subsets=[{','.join(subsets)}]", f"benchmark.languages=[{','.join(languages)}]",
        f"matrix.doc_langs=[{','.join(languages)}]", f"matrix.query_langs=[{','.join(languages)}]",
    ] + (["shard=0/1"] if encode_only else [])  # fmt: skip
    with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base=None):
        cfg = compose("evaluate", overrides=overrides)
    encoder = StandInEncoder(document_tokens)
    clock = StageClock()
    flops = {"maxsim": 0.0}

    def count_flops(queries: Any, documents: Any, *args: Any, **kwargs: Any) -> None:
        flops["maxsim"] += 2.0 * queries.dim * int(queries.offsets[-1]) * int(documents.offsets[-1])

    stages = [
        (pipeline, "load_data", "load and validate"),
        (pipeline, "store_keys", "store keys (hash every text)"),
        (pipeline, "ensure_encoded", "ragged packing + bookkeeping"),
        (EmbeddingStore, "put", "store writes"),
        (EmbeddingStore, "get", "store reads"),
        (pipeline, "cell_evaluators", "pytrec_eval setup"),
        (pipeline, "retrieve_and_score", "retrieval loop (rest)"),
        (pipeline, "write_trec_run", "TREC run files"),
        (metrics.QrelsEvaluator, "evaluate", "pytrec_eval"),
        (pipeline, "sort_long", "results table"),
        (pipeline, "results_from_per_query", "results table"),
        (evaluate, "write_outputs", "outputs and report"),
        (encoder, "encode", STAND_IN),
    ]
    with contextlib.ExitStack() as stack:
        for target, name, stage in stages:
            stack.enter_context(patched(target, name, clock.wrap(stage, getattr(target, name))))
        stack.enter_context(patched(pipeline, "maxsim_topk", clock.wrap("MaxSim", pipeline.maxsim_topk, count_flops)))
        run_start = time.perf_counter()
        evaluate.run(cfg, out_dir=work / "run", encoder_factory=lambda spec, plan: encoder)
        clock._boundary()
        total = time.perf_counter() - run_start
    peaks.append(matmul_peak_flops("cpu", torch.float32))

    stats = {name: {"seconds": s.seconds, "calls": s.calls, "peak_gib": s.peak_bytes / GIB} for name, s in clock.stats.items()}
    result = {
        "scale": scale, "languages": list(languages), "subsets": list(subsets), "document_tokens": document_tokens,
        "counts_per_language": counts, "snapshot_bytes": snapshot_bytes, "snapshot_seconds": snapshot_seconds,
        "run_seconds": total, "stages": stats,
        "store_bytes": sum(f.stat().st_size for f in (work / "cache").rglob("*.safetensors")),
        "peak_rss_gib": max(s["peak_gib"] for s in stats.values()),
        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "load_average_at_end": os.getloadavg()[0],
        "harness_commit": commit, "store": "float32 vectors, xxh3_128 checksum (nanobeir_ext/embeddings/store.py)",
    }  # fmt: skip
    if encode_only:  # no MaxSim to measure against
        return {**result, "encode_only": True}
    maxsim_seconds = stats["MaxSim"]["seconds"]
    rest = sum(s["seconds"] for name, s in stats.items() if name not in ("MaxSim", STAND_IN))
    peak = max(peaks)
    return {
        **result, "cells": len(languages) ** 2 * len(subsets),
        "maxsim_flops": flops["maxsim"], "maxsim_gflops_per_s": flops["maxsim"] / maxsim_seconds / 1e9,
        "matmul_peak_gflops_per_s": peak / 1e9, "all_matmul_peaks_gflops_per_s": [p / 1e9 for p in peaks],
        "maxsim_fraction_of_peak": flops["maxsim"] / maxsim_seconds / peak,
        "harness_rest_seconds": rest, "rest_over_maxsim": rest / maxsim_seconds,
    }  # fmt: skip


def _commit() -> str:
    """The harness commit measured ("+dirty" when the work tree differs from it)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "HEAD") + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


# ---------------------------------------------------------------- the series
def growth(results: Sequence[dict[str, Any]], key: Callable[[dict[str, Any]], float]) -> dict[str, float]:
    """Least-squares ``seconds = fixed + per_scale x scale`` and the log-log slope (1 = linear)."""
    scales = np.array([r["scale"] for r in results], dtype=float)
    seconds = np.array([key(r) for r in results], dtype=float)
    if len(results) < 2:
        return {"fixed_seconds": float("nan"), "seconds_per_full_scale": float("nan"), "log_log_slope": float("nan")}
    per_scale, fixed = np.polyfit(scales, seconds, 1)
    slope = np.polyfit(np.log(scales), np.log(np.maximum(seconds, 1e-9)), 1)[0]
    return {"fixed_seconds": float(fixed), "seconds_per_full_scale": float(per_scale), "log_log_slope": float(slope)}


def harness_peak_gib(result: dict[str, Any]) -> float:
    """Peak resident memory over the harness's stages (the stand-in's own temporaries left out)."""
    return max(s["peak_gib"] for name, s in result["stages"].items() if name != STAND_IN)


def summarize(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    largest = max(results, key=lambda r: r["scale"])
    maxsim = growth(results, lambda r: r["stages"]["MaxSim"]["seconds"])
    rest = growth(results, lambda r: r["harness_rest_seconds"])
    at_full = {
        "maxsim_seconds": maxsim["fixed_seconds"] + maxsim["seconds_per_full_scale"],
        "rest_seconds": rest["fixed_seconds"] + rest["seconds_per_full_scale"],
    }
    return {
        "largest_scale": largest["scale"], "maxsim_growth": maxsim, "rest_growth": rest,
        "extrapolated_to_full_scale": {**at_full, "rest_over_maxsim": at_full["rest_seconds"] / at_full["maxsim_seconds"]}
        if len(results) > 1 else None,
        "goals_at_largest_scale": {
            "rest_at_most_10_percent_of_maxsim": largest["rest_over_maxsim"] <= 0.10,
            "peak_memory_at_most_4_gib": largest["peak_rss_gib"] <= 4.0,
            "maxsim_time_linear_in_corpus (log-log slope 0.9-1.1)": len(results) > 1 and 0.9 <= maxsim["log_log_slope"] <= 1.1,
        },
    }  # fmt: skip


def print_results(results: Sequence[dict[str, Any]], summary: dict[str, Any]) -> None:
    names = list(dict.fromkeys(name for r in results for name in r["stages"]))
    header = ["stage"] + [f"x{r['scale']:g} s" for r in results] + [f"x{r['scale']:g} peak GiB" for r in results]
    print(" | ".join(header))
    for name in names:
        cells = [f"{r['stages'].get(name, {}).get('seconds', 0.0):.2f}" for r in results]
        cells += [f"{r['stages'].get(name, {}).get('peak_gib', 0.0):.2f}" for r in results]
        print(" | ".join([name] + cells))
    for r in results:
        print(f"x{r['scale']:g}: {r['counts_per_language']['documents']:,} documents/language, {r['cells']} cells, "
              f"run {r['run_seconds']:.1f} s; MaxSim {r['stages']['MaxSim']['seconds']:.1f} s at "
              f"{r['maxsim_gflops_per_s']:.1f} GFLOP/s = {100 * r['maxsim_fraction_of_peak']:.0f}% of the "
              f"{r['matmul_peak_gflops_per_s']:.1f} GFLOP/s matmul peak; rest {r['harness_rest_seconds']:.1f} s = "
              f"{100 * r['rest_over_maxsim']:.1f}% of MaxSim; peak RSS {r['peak_rss_gib']:.2f} GiB")
    for name, met in summary["goals_at_largest_scale"].items():
        print(f"goal at x{summary['largest_scale']:g}: {name}: {'met' if met else 'NOT met'}")


def _fraction(scale: float) -> str:
    return f"1/{round(1 / scale)}" if scale < 1 and abs(1 / scale - round(1 / scale)) < 1e-9 else f"{scale:g}"


def markdown_table(results: Sequence[dict[str, Any]], summary: dict[str, Any]) -> str:
    """The per-stage table of a saved result, for reports/performance.md (rendered, never retyped)."""
    names = sorted(dict.fromkeys(n for r in results for n in r["stages"]),
                   key=lambda n: (n != "MaxSim", -results[-1]["stages"].get(n, {}).get("seconds", 0.0)))
    lines = ["| stage | " + " | ".join(f"{_fraction(r['scale'])}: s" for r in results) + " |",
             "|---|" + "---|" * len(results)]
    lines += [f"| {name} | " + " | ".join(f"{r['stages'].get(name, {}).get('seconds', 0.0):.1f}" for r in results) + " |"
              for name in names]
    rows = {
        "**run (runners.evaluate.run)**": lambda r: f"{r['run_seconds']:.1f}",
        "everything but MaxSim (harness)": lambda r: f"{r['harness_rest_seconds']:.1f}",
        "**rest / MaxSim** (goal <= 10%)": lambda r: f"**{100 * r['rest_over_maxsim']:.1f}%**",
        "MaxSim GFLOP/s (% of the matmul peak, same process)":
            lambda r: f"{r['maxsim_gflops_per_s']:.0f} ({100 * r['maxsim_fraction_of_peak']:.0f}% of {r['matmul_peak_gflops_per_s']:.0f})",
        "peak RSS GiB, whole process (goal <= 4 at scale 1)": lambda r: f"{r['peak_rss_gib']:.2f}",
        "peak RSS GiB, harness stages only": lambda r: f"{harness_peak_gib(r):.2f}",
        "store on disk GB": lambda r: f"{r['store_bytes'] / 1e9:.1f}",
        "documents per language": lambda r: f"{r['counts_per_language']['documents']:,}",
        "load average at the end": lambda r: f"{r['load_average_at_end']:.1f}",
    }  # fmt: skip
    lines += [f"| {label} | " + " | ".join(cell(r) for r in results) + " |" for label, cell in rows.items()]
    growth_line = (f"Fits over the scales (seconds = fixed + per_scale x scale; log-log slope, 1 = linear): MaxSim "
                   f"slope {summary['maxsim_growth']['log_log_slope']:.2f}, fixed {summary['maxsim_growth']['fixed_seconds']:.1f} s; "
                   f"the rest slope {summary['rest_growth']['log_log_slope']:.2f}, fixed {summary['rest_growth']['fixed_seconds']:.1f} s.")
    goals = "; ".join(f"{name}: {'met' if met else 'NOT met'}" for name, met in summary["goals_at_largest_scale"].items())
    return "\n".join(lines + ["", growth_line, f"Goals at scale {summary['largest_scale']:g}: {goals}.",
                              f"Harness commit: {results[-1].get('harness_commit', 'unrecorded')}."])


def plot(results: Sequence[dict[str, Any]], path: Path, machine: str) -> Path:
    from nanobeir_ext.reporting.figures import pyplot, save_figure

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    scales = [r["scale"] for r in results]
    names = [n for n in dict.fromkeys(n for r in results for n in r["stages"]) if n != STAND_IN]
    for name in names:
        left.plot(scales, [r["stages"].get(name, {}).get("seconds", 0.0) for r in results], marker="o", label=name,
                  linewidth=2.5 if name == "MaxSim" else 1.2)
    left.set(xscale="log", yscale="log", xlabel="fraction of the real corpus size", ylabel="seconds (self time)",
             title="time per stage")
    left.legend(fontsize=7)
    right.plot(scales, [100 * r["rest_over_maxsim"] for r in results], marker="o", label="rest / MaxSim time (%)")
    right.axhline(10, color="grey", linestyle="--", linewidth=1, label="goal 10%")
    right.set(xscale="log", xlabel="fraction of the real corpus size", ylabel="%", title="harness overhead vs MaxSim")
    right.legend(fontsize=8)
    fig.suptitle(f"nanobeir-ext, 9x9 matrix with a stand-in encoder: {machine}", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.125, 0.25, 0.5, 1.0])
    parser.add_argument("--languages", nargs="+", default=list(LANGUAGES))
    parser.add_argument("--subsets", type=int, default=len(SUBSETS), help="the first N of the 13 subsets")
    parser.add_argument("--document-tokens", type=int, default=512, help="the stand-in encoder's document length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, help="keep snapshots, stores and runs here (default: a temp folder)")
    parser.add_argument("--encode-only", action="store_true",
                        help="phase 1 alone (a shard=0/1 run): encoding, packing and store writes; time and memory")
    parser.add_argument("--keep-work", action="store_true", help="keep each scale's snapshot, store and run folder")
    parser.add_argument("--out", type=Path, help="also write the JSON result here (updated after every scale)")
    parser.add_argument("--plot", type=Path, help="write the figure here (png)")
    parser.add_argument("--render", type=Path, help="print the markdown table of a saved --out JSON (and --plot it)")
    parser.add_argument("--worker-scale", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.subsets <= len(SUBSETS) or any(not 0 < s <= 1 for s in args.scales):
        parser.error(f"--subsets must be 1..{len(SUBSETS)} and every scale in (0, 1]")
    return args


def expected_store_bytes(scale: float, languages: Sequence[str], subsets: Sequence[str], document_tokens: int,
                         seed: int = 0) -> int:
    """The float32 store one scale writes (document vectors dominate; queries add 649 x 32 per language)."""
    vectors = 0
    for subset_index, subset in enumerate(subsets):
        n_docs_real, n_queries, _ = SUBSETS[subset]
        lengths = document_lengths(max(1, round(n_docs_real * scale)), np.random.default_rng([seed, subset_index]))
        vectors += int(document_vectors(lengths, document_tokens).sum()) + n_queries * QUERY_TOKENS
    return vectors * len(languages) * DIM * 4


def check_disk(root: Path, scales: Sequence[float], languages: Sequence[str], subsets: Sequence[str],
               document_tokens: int) -> None:
    """Refuse before any work when the largest scale's store cannot fit (each scale's folder is removed after it)."""
    root.mkdir(parents=True, exist_ok=True)
    needed = expected_store_bytes(max(scales), languages, subsets, document_tokens) * 1.05  # + snapshot and runs
    free = shutil.disk_usage(root).free
    if needed > free:
        raise SystemExit(f"scale {max(scales):g} needs about {needed / GIB:.1f} GiB under {root} "
                         f"(float32 store), {free / GIB:.1f} GiB are free: pass smaller --scales or another --work-dir")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parse_args(argv)
    subsets = list(SUBSETS)[: args.subsets]
    if args.render is not None:  # a saved result: its table (and figure) again, no measuring
        report = json.loads(args.render.read_text())
        print(markdown_table(report["results"], report["summary"]))
        if args.plot:
            first = report["results"][0]
            plot(report["results"], args.plot, f"{first['cpu_count']} cores, {first['threads']} torch threads")
        return report
    if args.worker_scale is not None:
        result = run_scale(args.worker_scale, args.languages, subsets, args.document_tokens, args.work_dir, args.seed,
                           encode_only=args.encode_only)
        args.result.write_text(json.dumps(result))
        return result
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="real-scale-") as tmp:
        root = args.work_dir or Path(tmp)
        check_disk(root, args.scales, args.languages, subsets, args.document_tokens)
        for scale in sorted(args.scales):
            work = root / f"scale-{scale:g}"
            work.mkdir(parents=True, exist_ok=True)
            result_path = work / "result.json"
            command = [sys.executable, "-m", "benchmarks.real_scale", "--worker-scale", str(scale), "--result", str(result_path),
                       "--work-dir", str(work), "--subsets", str(args.subsets), "--document-tokens", str(args.document_tokens),
                       "--seed", str(args.seed), "--languages", *args.languages]  # fmt: skip
            command += ["--encode-only"] if args.encode_only else []
            subprocess.run(command, check=True, cwd=REPO_ROOT)  # a fresh process: its own peak memory
            results.append(json.loads(result_path.read_text()))
            if not args.keep_work:
                shutil.rmtree(work)  # the next scale needs the disk (a full-scale store is ~66 GB)
            print(f"scale {scale:g} done in {results[-1]['run_seconds']:.1f} s", flush=True)
            if args.encode_only:
                print(json.dumps({name: [round(st["seconds"], 1), round(st["peak_gib"], 2)]
                                  for name, st in results[-1]["stages"].items()}), flush=True)
                continue
            if args.out:  # every finished scale is kept, even if a later one is killed
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps({"benchmark": "real_scale", "results": results, "summary": summarize(results),
                                                "complete": False}, sort_keys=True) + "\n")
    if args.encode_only:  # phase 1 only: its stages' time and memory, no MaxSim to compare with
        report = {"benchmark": "real_scale", "encode_only": True, "results": results}
        emit_json(report, args.out)
        return report
    summary = summarize(results)
    report = {"benchmark": "real_scale", "results": results, "summary": summary, "complete": True}
    print_results(results, summary)
    print(markdown_table(results, summary))
    if args.plot:
        machine = f"{results[0]['cpu_count']} cores, {results[0]['threads']} torch threads"
        plot(results, args.plot, machine)
    emit_json(report, args.out)
    return report


if __name__ == "__main__":
    main()
