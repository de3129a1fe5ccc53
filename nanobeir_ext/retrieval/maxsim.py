"""Exact MaxSim retrieval over ragged token embeddings (TREC run files: :mod:`nanobeir_ext.retrieval.trec`).

Score
    ``score(q, d) = sum over the vectors of q of (max over the vectors of d of
    the dot product)``, accumulated in float32. No length normalisation, no
    temperature. A query with no vectors scores 0 against every document; a
    document with no vectors is rejected (its max would be over nothing).

Padding rule (``padding=``)
    ``"mask"`` (the default, exact): only a document's own vectors take part in
    the max; padding never wins. Documents are padded inside a chunk by
    repeating one of their own vectors, which cannot change a max, so the
    exact rule costs nothing.
    ``"zero"`` (PyLate's evaluator): PyLate 1.6.0 zero-pads every document of
    a corpus chunk to the chunk's longest document and passes no mask to
    ``colbert_scores``, so in each max a padded position counts as a
    similarity of 0. Here that is reproduced for a corpus scored in one
    PyLate chunk (its evaluator's chunk is 50,000 documents, more than any
    NanoBEIR corpus): a document shorter than the longest document of
    ``documents`` has each of its per-query-vector maxima raised to at least
    0; the longest document(s) are unchanged.
    The two rules differ only when every real similarity of a query vector to
    a (shorter) document is negative: "mask" adds that negative maximum,
    "zero" adds 0. Query padding never matters (PyLate pads queries with zero
    vectors, which add max(0 · d) = 0; here queries are not padded at all).

Ties
    Equal scores are ordered by document id, *descending* (plain string
    comparison, which for UTF-8 ids is the byte order ``strcmp`` uses). That is
    trec_eval's own rule (it re-sorts every run by score desc, then docno
    desc, and ignores the rank column), so the ranks written by
    :func:`nanobeir_ext.retrieval.trec.write_trec_run`, the documents kept at the top-k boundary, and the
    order pytrec_eval evaluates are one and the same.

Speed and memory
    Documents are sorted by length and cut into chunks of at most
    ``chunk_tokens`` padded document vectors, and chunks into tiles: the whole
    chunk on an accelerator, at most 4,096 padded vectors on CPU (a document
    longer than a chunk or tile gets one of its own). Per tile: one gather
    (each document padded to the tile's longest), one matmul
    ``[query vectors, dim] x [dim, tile vectors]`` per block of 2,048 query
    rows into a reused buffer, and a max over each document's span. Per
    chunk: a sum per query and a running top-k merge. Working memory is the
    similarity block (``4 x min(query vectors, 2048) x tile vectors`` bytes,
    32 MiB at most on CPU), the gathered tile, and the per-chunk maxima
    (``4 x query vectors x documents in the chunk`` bytes): it does not grow
    with the corpus.
    Why tiles on CPU: the similarity block must stay in cache. Measured on a
    quiet 2-core AVX-512 Xeon, 50 queries x 32 vectors, end to end: ~70% of
    the fp32 matmul peak with 4,096-vector tiles against ~40% with
    65,536-vector blocks (the matmul itself runs at ~85% of peak; the max over
    spans takes ~13% of the time). Measured alternatives that were slower on
    CPU: ``torch.segment_reduce`` over unpadded spans (~40-60% of the padded
    ``amax``), a ``-inf`` mask added after the matmul, a fresh similarity
    tensor per block. On an accelerator larger chunks amortise kernel
    launches (see :func:`default_chunk_tokens`) and the corpus vectors are
    copied to the device once (``n_tokens x dim x itemsize`` bytes), then
    gathered chunk by chunk there.
Threads on CPU
    Tiles are scored by ``torch.get_num_threads()`` worker threads, each
    running torch ops single-threaded (the caller's thread count is set to 1
    for the call and restored after it) with its own similarity buffer, and
    each taking the next tile when it is free; the main thread sums and merges
    a chunk while the workers score the next one. Why: with torch's own
    intra-op threads every op of every tile (gather, matmul, max) is a
    parallel region that ends in a barrier, so when another process takes a
    core, each barrier waits for a descheduled thread. Two chunks are in flight
    at a time (the next one queued before this one is merged). Measured on the 2-core
    VM beside other jobs (load 4-7), 50 queries x 2,000 documents: 6.0 s with
    intra-op threads against 2.5 s with tile workers (the same matmul FLOPs
    took 1.9 s), and with one extra CPU-bound process the tile workers kept
    62% of their speed where the plain matmul kept 58%
    (``python -m benchmarks.maxsim_vs_pylate --under-load``). Results are
    identical: each tile's numbers do not depend on which thread computes
    them, and the top-k merge is a total order.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Literal

import torch
from tqdm.auto import tqdm

from nanobeir_ext.embeddings.ragged import RaggedEmbeddings
from nanobeir_ext.retrieval.trec import Run

Padding = Literal["mask", "zero"]

PADDING_RULES: tuple[str, ...] = ("mask", "zero")
# The similarity block is (query rows per block) x (document vectors per
# tile): on CPU 2,048 x 4,096 x 4 bytes = 32 MiB at most, which stays in cache.
_QUERY_ROWS_PER_BLOCK = 2048
_CPU_TILE_TOKENS = 4096
_CPU_CHUNK_TOKENS = 1 << 16
_ACCELERATOR_CHUNK_TOKENS = 1 << 20


def default_chunk_tokens(device: str | torch.device) -> int:
    """Document vectors per chunk that run fastest on this kind of device.

    CPU: 2**16 (matmuls go tile by tile anyway; a chunk is one top-k merge:
    measured ~15% faster than 4,096 and as fast as 2,000,000). Accelerators:
    2**20 (fewer, larger kernels; 2,048 query rows x 2**20 x 4 bytes = 8 GiB
    similarity block at most).
    """
    return _CPU_CHUNK_TOKENS if torch.device(device).type == "cpu" else _ACCELERATOR_CHUNK_TOKENS


def maxsim_scores(
    queries: RaggedEmbeddings,
    documents: RaggedEmbeddings,
    *,
    device: str = "cpu",
    chunk_tokens: int | None = None,
    padding: Padding = "mask",
) -> torch.Tensor:
    """All MaxSim scores, ``[n_queries, n_documents]`` float32 on CPU.

    Memory grows with ``n_queries x n_documents``; for tests and small sets.
    Use :func:`maxsim_topk` for retrieval.
    """
    _check_inputs(queries, documents, padding)
    chunks = _plan_chunks(documents, device, chunk_tokens)
    scores = torch.empty((len(queries), len(documents)), dtype=torch.float32)
    for doc_index, chunk_scores in _iter_chunk_scores(queries, documents, chunks, device, padding):
        scores[:, doc_index.cpu()] = chunk_scores.cpu()
    return scores


def maxsim_topk(
    queries: RaggedEmbeddings,
    documents: RaggedEmbeddings,
    k: int = 100,
    *,
    device: str = "cpu",
    chunk_tokens: int | None = None,
    padding: Padding = "mask",
    progress: bool = False,
) -> Run:
    """The ``k`` best documents of every query by exact MaxSim.

    Returns ``{query_id: {doc_id: score}}`` with each inner dict in rank order
    (score desc, then doc id desc); ``min(k, n_documents)`` entries per query.
    """
    if k < 1:
        raise ValueError(f"k must be a positive number of documents, got {k}")
    _check_unique_ids(queries.ids, "query")
    _check_inputs(queries, documents, padding)
    if len(queries) == 0:
        return {}
    chunks = _plan_chunks(documents, device, chunk_tokens)
    target = torch.device(device)
    # Tie rule as an integer: documents sorted by id descending get rank 0, 1, ...
    by_id_desc = sorted(range(len(documents)), key=documents.ids.__getitem__, reverse=True)
    tie_rank = torch.empty(len(documents), dtype=torch.int64)
    tie_rank[torch.tensor(by_id_desc, dtype=torch.int64)] = torch.arange(len(documents))
    tie_rank = tie_rank.to(target)

    best_scores = torch.empty((len(queries), 0), dtype=torch.float32, device=target)
    best_index = torch.empty((len(queries), 0), dtype=torch.int64, device=target)
    scored_chunks = _iter_chunk_scores(queries, documents, chunks, device, padding)
    for doc_index, chunk_scores in tqdm(scored_chunks, total=len(chunks), desc="MaxSim", unit="chunk", disable=not progress):
        candidates_index = torch.cat([best_index, doc_index.expand(len(queries), -1)], dim=1)
        candidates_scores = torch.cat([best_scores, chunk_scores], dim=1)
        best_scores, best_index = _top_k_with_ties(candidates_scores, candidates_index, tie_rank, k)

    scores_rows = best_scores.cpu().tolist()
    index_rows = best_index.cpu().tolist()
    return {
        query_id: {documents.ids[i]: score for i, score in zip(index_row, score_row)}
        for query_id, index_row, score_row in zip(queries.ids, index_rows, scores_rows)
    }


def _top_k_with_ties(
    scores: torch.Tensor, index: torch.Tensor, tie_rank: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the ``k`` best (score desc, then tie rank asc), sorted."""
    by_tie = torch.argsort(tie_rank[index], dim=1)
    scores = scores.gather(1, by_tie)
    index = index.gather(1, by_tie)
    # A stable sort on score keeps the tie order among equal scores.
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return scores.gather(1, order), index.gather(1, order)


@dataclass(frozen=True)
class _Chunk:
    documents: torch.Tensor  # document indices, longest first; one top-k merge
    tiles: tuple[torch.Tensor, ...]  # consecutive parts of ``documents``; one padded matmul each

    def placed_tiles(self) -> Iterator[tuple[int, torch.Tensor]]:
        """Each tile with its first column in the chunk's maxima."""
        column = 0
        for tile in self.tiles:
            yield column, tile
            column += len(tile)


def _plan_chunks(documents: RaggedEmbeddings, device: str, chunk_tokens: int | None) -> list[_Chunk]:
    """Documents sorted longest first, cut into chunks of at most ``chunk_tokens``
    padded vectors, each cut into tiles (the whole chunk on an accelerator, at
    most ``_CPU_TILE_TOKENS`` padded vectors on CPU). A group always holds at
    least one document; each tile is padded to its own longest document."""
    chunk_tokens = default_chunk_tokens(device) if chunk_tokens is None else chunk_tokens
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be a positive number of document vectors, got {chunk_tokens}")
    tile_tokens = min(chunk_tokens, _CPU_TILE_TOKENS) if torch.device(device).type == "cpu" else chunk_tokens
    order = torch.argsort(documents.lengths, descending=True, stable=True)
    sorted_lengths = documents.lengths[order].tolist()

    def groups(start: int, stop: int, budget: int) -> list[tuple[int, int]]:
        cuts = []
        while start < stop:
            end = min(stop, start + max(1, budget // sorted_lengths[start]))
            cuts.append((start, end))
            start = end
        return cuts

    return [
        _Chunk(order[start:stop], tuple(order[a:b] for a, b in groups(start, stop, tile_tokens)))
        for start, stop in groups(0, len(order), chunk_tokens)
    ]


def _iter_chunk_scores(
    queries: RaggedEmbeddings,
    documents: RaggedEmbeddings,
    chunks: list[_Chunk],
    device: str,
    padding: str,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(document indices [n_c], scores [n_queries, n_c])`` per chunk."""
    if not chunks:
        return
    target = torch.device(device)
    query_vectors = queries.vectors.to(device=target, dtype=torch.float32)
    sum_per_query = _query_summer(queries, target)
    doc_lengths = documents.lengths
    doc_offsets = documents.offsets.to(target)
    doc_vectors = documents.vectors if target.type == "cpu" else documents.vectors.to(target)
    longest_doc = int(doc_lengths.max())
    widest_tile = max(len(tile) * int(doc_lengths[tile[0]]) for chunk in chunks for tile in chunk.tiles)
    scorer = _TileScorer(query_vectors, doc_vectors, doc_offsets, doc_lengths, widest_tile, target)

    def finish(chunk: _Chunk, maxima: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if padding == "zero":
            rows = query_vectors.shape[0]
            shorter = (doc_lengths[chunk.documents] < longest_doc).to(target)
            maxima[:rows] = torch.where(shorter[None, :], maxima[:rows].clamp_min(0.0), maxima[:rows])
        return chunk.documents.to(target), sum_per_query(maxima)

    workers = cpu_workers(target)
    if workers == 1:
        for chunk in chunks:
            maxima = scorer.new_maxima(len(chunk.documents))
            for column, tile in chunk.placed_tiles():
                scorer.score(tile, column, maxima, scorer.buffer())
            yield finish(chunk, maxima)
        return
    with _single_threaded_ops(), ThreadPoolExecutor(workers, thread_name_prefix="maxsim") as pool:
        # Each worker takes the next tile when it is free (dynamic scheduling), so
        # a worker descheduled by another process delays only its own tile, not
        # every parallel region of every op. The tiles of the next chunk are
        # queued before waiting for this one, so no worker idles at a chunk's end
        # while the main thread sums and merges it.
        def submit(chunk: _Chunk) -> tuple[torch.Tensor, list]:
            maxima = scorer.new_maxima(len(chunk.documents))
            futures = [pool.submit(scorer.score_in_worker, tile, column, maxima) for column, tile in chunk.placed_tiles()]
            return maxima, futures

        pending = [submit(chunks[0])]
        for index, chunk in enumerate(chunks):
            if index + 1 < len(chunks):
                pending.append(submit(chunks[index + 1]))
            maxima, futures = pending.pop(0)
            for future in futures:
                future.result()
            yield finish(chunk, maxima)


def cpu_workers(device: torch.device) -> int:
    """Threads that score tiles: torch's intra-op thread count on CPU, 1 elsewhere."""
    return max(1, torch.get_num_threads()) if device.type == "cpu" else 1


@contextmanager
def _single_threaded_ops() -> Iterator[None]:
    """torch ops run single-threaded inside (the tile workers are the parallelism);
    the caller's thread count is restored on exit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _TileScorer:
    """Per-query-vector maxima of one tile of documents into its columns of a chunk's maxima."""

    def __init__(self, query_vectors: torch.Tensor, doc_vectors: torch.Tensor, doc_offsets: torch.Tensor,
                 doc_lengths: torch.Tensor, widest_tile: int, target: torch.device):
        self.query_vectors = query_vectors
        self.doc_vectors = doc_vectors
        self.doc_offsets = doc_offsets
        self.doc_lengths = doc_lengths
        self.target = target
        self.buffer_size = min(query_vectors.shape[0], _QUERY_ROWS_PER_BLOCK) * widest_tile
        self._local = threading.local()

    def new_maxima(self, n_documents: int) -> torch.Tensor:
        # One extra zero row: the query summer reads it for positions past a query's end.
        return torch.zeros((self.query_vectors.shape[0] + 1, n_documents), dtype=torch.float32, device=self.target)

    def buffer(self) -> torch.Tensor:
        """This thread's similarity buffer, reused for every tile: a fresh multi-MiB
        tensor per tile costs page faults on CPU (measured: ~25% of the run)."""
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._local.buffer = torch.empty(self.buffer_size, dtype=torch.float32, device=self.target)
        return buffer

    def score_in_worker(self, tile: torch.Tensor, column: int, maxima: torch.Tensor) -> None:
        self.score(tile, column, maxima, self.buffer())

    def score(self, tile: torch.Tensor, column: int, maxima: torch.Tensor, buffer: torch.Tensor) -> None:
        target = self.target
        lengths = self.doc_lengths[tile]
        width = int(lengths[0])
        # Pad each document to the tile's longest by repeating its last vector:
        # a repeated vector never changes a max, so this is the exact "mask" rule.
        span = torch.minimum(torch.arange(width, device=target)[None, :], lengths.to(target)[:, None] - 1)
        rows = (self.doc_offsets[tile.to(target)][:, None] + span).reshape(-1)
        columns = self.doc_vectors.index_select(0, rows).to(dtype=torch.float32).T
        query_rows = self.query_vectors.shape[0]
        for start in range(0, query_rows, _QUERY_ROWS_PER_BLOCK):
            block = self.query_vectors[start : start + _QUERY_ROWS_PER_BLOCK]
            similarity = buffer[: block.shape[0] * columns.shape[1]].view(block.shape[0], columns.shape[1])
            torch.mm(block, columns, out=similarity)
            torch.amax(similarity.view(block.shape[0], len(tile), width), dim=2,
                       out=maxima[start : start + block.shape[0], column : column + len(tile)])


def _query_summer(queries: RaggedEmbeddings, target: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function from per-query-vector maxima ``[query rows + 1, n]`` (last row
    zero) to per-query sums ``[n_queries, n]``; deterministic on every device,
    unlike scatter-add."""
    lengths = queries.lengths
    rows = int(queries.offsets[-1])
    if len(queries) and int(lengths[0]) > 0 and bool((lengths == lengths[0]).all()):
        # All queries equally long (the usual case: query expansion pads to a fixed length).
        return lambda maxima: maxima[:rows].view(len(queries), int(lengths[0]), -1).sum(dim=1)
    longest = int(lengths.max()) if len(queries) else 0
    positions = torch.arange(longest)
    # Row of each (query, position); positions past a query's end read the zero row.
    row_of = torch.where(positions[None, :] < lengths[:, None], queries.offsets[:-1, None] + positions[None, :], rows)
    row_of = row_of.to(target)
    return lambda maxima: maxima[row_of].sum(dim=1)


def _check_inputs(queries: RaggedEmbeddings, documents: RaggedEmbeddings, padding: str) -> None:
    if padding not in PADDING_RULES:
        raise ValueError(f"padding must be one of {PADDING_RULES}, got {padding!r}")
    if len(queries) and len(documents) and queries.dim != documents.dim:
        raise ValueError(f"query vectors have dim {queries.dim} but document vectors have dim {documents.dim}")
    _check_unique_ids(documents.ids, "document")
    empty = [documents.ids[i] for i in torch.nonzero(documents.lengths == 0).flatten().tolist()]
    if empty:
        raise ValueError(
            f"{len(empty)} of {len(documents)} documents have no vectors (MaxSim over nothing is undefined): "
            f"{empty[:10]}{' ...' if len(empty) > 10 else ''}"
        )


def _check_unique_ids(ids: tuple[str, ...], role: str) -> None:
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        duplicates = sorted({i for i in ids if i in seen or seen.add(i)})
        raise ValueError(f"{len(duplicates)} duplicate {role} ids: {duplicates[:10]}")
