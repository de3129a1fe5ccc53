from __future__ import annotations

import pytest
import torch

from nanobeir_ext.embeddings.ragged import RaggedEmbeddings
from nanobeir_ext.retrieval.maxsim import default_chunk_tokens, maxsim_scores, maxsim_topk
from nanobeir_ext.retrieval.trec import ranked, read_trec_run, write_trec_run


def ragged(ids: list[str], vectors: list[list[list[float]]]) -> RaggedEmbeddings:
    return RaggedEmbeddings.from_list(ids, [torch.tensor(v, dtype=torch.float32) for v in vectors])


def random_ragged(prefix: str, n: int, min_len: int, max_len: int, dim: int, seed: int) -> RaggedEmbeddings:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=generator).tolist()
    tensors = [torch.nn.functional.normalize(torch.randn(length, dim, generator=generator), dim=-1) for length in lengths]
    return RaggedEmbeddings.from_list([f"{prefix}{i}" for i in range(n)], tensors, dim=dim)


def reference_scores(queries: RaggedEmbeddings, documents: RaggedEmbeddings) -> torch.Tensor:
    """MaxSim one pair at a time, straight from the definition (float64)."""
    scores = torch.zeros(len(queries), len(documents), dtype=torch.float64)
    for i, query in enumerate(queries.to_list()):
        for j, document in enumerate(documents.to_list()):
            scores[i, j] = (query.double() @ document.double().T).amax(dim=1).sum()
    return scores


def pylate_zero_padding_scores(queries: RaggedEmbeddings, documents: RaggedEmbeddings) -> torch.Tensor:
    """PyLate 1.6.0's evaluator arithmetic: zero-pad everything, einsum, max, sum, no masks."""
    pad = torch.nn.utils.rnn.pad_sequence
    q = pad(queries.to_list(), batch_first=True, padding_value=0).double()
    d = pad(documents.to_list(), batch_first=True, padding_value=0).double()
    return torch.einsum("ash,bth->abst", q, d).max(dim=-1).values.sum(dim=-1)


def test_score_by_hand():
    queries = ragged(["q"], [[[1.0, 0.0], [0.0, 1.0]]])
    documents = ragged(["long", "short"], [[[1.0, 0.0], [0.5, 0.75]], [[0.0, 1.0]]])
    # long: max(1, 0.5) + max(0, 0.75) = 1.75; short: 0 + 1 = 1.
    assert maxsim_scores(queries, documents).tolist() == [[1.75, 1.0]]


def test_masked_and_zero_padding_differ_only_on_all_negative_similarities():
    queries = ragged(["q"], [[[1.0, 0.0], [0.0, 1.0]]])
    documents = ragged(
        ["longest", "short"],
        [
            [[-1.0, 0.5], [-0.5, 0.25]],  # token 1: max(-1, -0.5) = -0.5; token 2: 0.5 -> 0.0
            [[-0.5, 0.5]],  # token 1: -0.5 (all negative); token 2: 0.5
        ],
    )
    masked = maxsim_scores(queries, documents, padding="mask")
    zero = maxsim_scores(queries, documents, padding="zero")
    assert masked.tolist() == [[0.0, 0.0]]
    # Under PyLate's rule the short document's padding counts as similarity 0,
    # which beats -0.5; the longest document has no padding, so it is unchanged.
    assert zero.tolist() == [[0.0, 0.5]]
    assert torch.equal(zero.double(), pylate_zero_padding_scores(queries, documents))


def test_zero_padding_reproduces_pylate_arithmetic_on_random_low_dim_data():
    # dim 2 and short documents make all-negative similarities common.
    queries = random_ragged("q", 6, 1, 4, dim=2, seed=1)
    documents = random_ragged("d", 30, 1, 5, dim=2, seed=2)
    zero = maxsim_scores(queries, documents, padding="zero", chunk_tokens=4)
    masked = maxsim_scores(queries, documents, padding="mask", chunk_tokens=4)
    torch.testing.assert_close(zero.double(), pylate_zero_padding_scores(queries, documents), rtol=0, atol=1e-6)
    torch.testing.assert_close(masked.double(), reference_scores(queries, documents), rtol=0, atol=1e-6)
    assert not torch.allclose(zero, masked)


def test_queries_of_different_lengths_match_the_definition():
    queries = random_ragged("q", 7, 1, 9, dim=16, seed=3)
    documents = random_ragged("d", 40, 1, 30, dim=16, seed=4)
    torch.testing.assert_close(maxsim_scores(queries, documents).double(), reference_scores(queries, documents), rtol=0, atol=1e-5)


def test_a_query_without_vectors_scores_zero():
    documents = random_ragged("d", 4, 1, 3, dim=2, seed=21)
    empty, one = torch.zeros(0, 2), torch.tensor([[1.0, 0.0]])
    for queries in (RaggedEmbeddings.from_list(["empty"], [empty]), RaggedEmbeddings.from_list(["empty", "one"], [empty, one])):
        scores = maxsim_scores(queries, documents)
        assert scores[0].tolist() == [0.0] * 4
        torch.testing.assert_close(scores.double(), reference_scores(queries, documents), rtol=0, atol=1e-6)


def test_half_precision_vectors_are_scored_in_float32():
    queries = random_ragged("q", 3, 2, 5, dim=8, seed=5)
    documents = random_ragged("d", 10, 1, 6, dim=8, seed=6)
    low = RaggedEmbeddings(documents.ids, documents.vectors.to(torch.bfloat16), documents.offsets)
    expected = reference_scores(queries, RaggedEmbeddings(low.ids, low.vectors.float(), low.offsets))
    scores = maxsim_scores(queries, low)
    assert scores.dtype == torch.float32
    torch.testing.assert_close(scores.double(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("padding", ["mask", "zero"])
def test_results_do_not_depend_on_chunk_size(padding):
    queries = random_ragged("q", 5, 3, 8, dim=16, seed=7)
    documents = random_ragged("d", 60, 1, 25, dim=16, seed=8)
    # 1 and 7 are smaller than most documents: each such document gets a chunk of its own.
    sizes = [1, 7, 64, 10_000]
    scores = [maxsim_scores(queries, documents, chunk_tokens=size, padding=padding) for size in sizes]
    runs = [maxsim_topk(queries, documents, k=10, chunk_tokens=size, padding=padding) for size in sizes]
    for other_scores, other_run in zip(scores[1:], runs[1:]):
        # Equal up to float rounding (BLAS picks its kernel by matrix shape); rankings identical.
        torch.testing.assert_close(other_scores, scores[0], rtol=0, atol=1e-6)
        assert {q: list(docs) for q, docs in other_run.items()} == {q: list(docs) for q, docs in runs[0].items()}


def test_cpu_tiles_inside_a_large_chunk_give_the_same_results(monkeypatch):
    import nanobeir_ext.retrieval.maxsim as retrieval

    queries = random_ragged("q", 4, 3, 8, dim=16, seed=22)
    documents = random_ragged("d", 40, 1, 25, dim=16, seed=23)
    whole = maxsim_scores(queries, documents, chunk_tokens=10_000)
    monkeypatch.setattr(retrieval, "_CPU_TILE_TOKENS", 20)  # tiles of 1-20 documents, some of one long document
    tiled = maxsim_scores(queries, documents, chunk_tokens=10_000)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-6)
    torch.testing.assert_close(tiled.double(), reference_scores(queries, documents), rtol=0, atol=1e-5)


def test_topk_equals_full_sort_of_scores():
    queries = random_ragged("q", 6, 2, 6, dim=16, seed=9)
    documents = random_ragged("d", 50, 1, 20, dim=16, seed=10)
    # Same chunking on both sides: scores then agree bit for bit (other chunk
    # sizes agree to float rounding only, as BLAS picks kernels by shape).
    scores = maxsim_scores(queries, documents, chunk_tokens=30)
    run = maxsim_topk(queries, documents, k=12, chunk_tokens=30)
    assert list(run) == list(queries.ids)
    for i, query_id in enumerate(queries.ids):
        full = sorted(zip(documents.ids, scores[i].tolist()), key=lambda item: (item[1], item[0]), reverse=True)
        assert list(run[query_id].items()) == full[:12]


def test_ties_are_broken_by_doc_id_descending_across_chunks():
    vector = [[0.6, 0.8]]
    queries = ragged(["q"], [[[1.0, 0.0]]])
    ids = ["b", "a", "d", "c", "e"]
    documents = ragged(ids, [vector, vector, [[0.0, 1.0]], vector, vector])
    for chunk_tokens in (1, 2, 100):
        run = maxsim_topk(queries, documents, k=3, chunk_tokens=chunk_tokens)
        # e, c, b, a tie at 0.6; d scores 0. The top 3 of the tie go by id, descending.
        assert list(run["q"]) == ["e", "c", "b"]
    assert [doc for doc, _ in ranked({"a": 1.0, "z": 1.0, "m": 2.0})] == ["m", "z", "a"]


def test_k_larger_than_corpus_returns_every_document():
    queries = random_ragged("q", 2, 2, 3, dim=4, seed=11)
    documents = random_ragged("d", 5, 1, 4, dim=4, seed=12)
    run = maxsim_topk(queries, documents, k=100)
    assert all(sorted(docs) == sorted(documents.ids) for docs in run.values())


def test_empty_query_set_and_empty_corpus():
    documents = random_ragged("d", 5, 1, 4, dim=4, seed=13)
    no_queries = RaggedEmbeddings.from_list([], [], dim=4)
    assert maxsim_topk(no_queries, documents) == {}
    assert maxsim_scores(no_queries, documents).shape == (0, 5)
    queries = random_ragged("q", 2, 1, 2, dim=4, seed=14)
    no_documents = RaggedEmbeddings.from_list([], [], dim=4)
    assert maxsim_topk(queries, no_documents) == {"q0": {}, "q1": {}}


def test_bad_input_errors_name_the_problem():
    queries = random_ragged("q", 2, 1, 2, dim=4, seed=15)
    documents = random_ragged("d", 3, 1, 2, dim=4, seed=16)
    with pytest.raises(ValueError, match="dim 4 but document vectors have dim 8"):
        maxsim_scores(queries, random_ragged("d", 3, 1, 2, dim=8, seed=16))
    with pytest.raises(ValueError, match=r"padding must be one of \('mask', 'zero'\)"):
        maxsim_scores(queries, documents, padding="none")
    with pytest.raises(ValueError, match=r"1 of 2 documents have no vectors.*'empty'"):
        maxsim_scores(queries, ragged(["full", "empty"], [[[1.0, 0.0, 0.0, 0.0]], []]))
    with pytest.raises(ValueError, match=r"1 duplicate document ids: \['x'\]"):
        maxsim_topk(queries, ragged(["x", "x"], [[[1.0, 0, 0, 0]], [[0, 1.0, 0, 0]]]))
    with pytest.raises(ValueError, match="k must be a positive"):
        maxsim_topk(queries, documents, k=0)
    with pytest.raises(ValueError, match="chunk_tokens must be a positive"):
        maxsim_scores(queries, documents, chunk_tokens=0)


def test_default_chunk_tokens_depends_on_device_kind():
    assert default_chunk_tokens("cpu") < default_chunk_tokens("cuda")


def test_trec_run_round_trip(tmp_path):
    run = {
        "q2": {"d1": 0.5, "d2": 1 / 3, "d3": 1 / 3},
        "q1": {"d9": 12.125, "d8": -0.1},
    }
    path = tmp_path / "runs" / "cell.trec"
    write_trec_run(run, path, tag="maxsim")
    assert read_trec_run(path) == run
    assert path.read_text().splitlines() == [
        "q1 Q0 d9 1 12.125 maxsim",
        "q1 Q0 d8 2 -0.1 maxsim",
        "q2 Q0 d1 1 0.5 maxsim",
        f"q2 Q0 d3 2 {1 / 3!r} maxsim",
        f"q2 Q0 d2 3 {1 / 3!r} maxsim",
    ]
    assert [p.name for p in path.parent.iterdir()] == ["cell.trec"]  # no temporary file left behind
    with pytest.raises(ValueError, match="whitespace"):
        write_trec_run({"q 1": {"d": 1.0}}, tmp_path / "bad.trec", tag="x")


def test_retrieved_run_round_trips_exactly(tmp_path):
    queries = random_ragged("q", 3, 2, 4, dim=8, seed=17)
    documents = random_ragged("d", 20, 1, 6, dim=8, seed=18)
    run = maxsim_topk(queries, documents, k=5)
    write_trec_run(run, tmp_path / "run.trec", tag="t")
    assert read_trec_run(tmp_path / "run.trec") == run


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    queries = random_ragged("q", 8, 4, 32, dim=128, seed=19)
    documents = random_ragged("d", 300, 10, 300, dim=128, seed=20)
    torch.testing.assert_close(
        maxsim_scores(queries, documents, device="cuda"), maxsim_scores(queries, documents), rtol=0, atol=1e-4
    )
    cpu_run = maxsim_topk(queries, documents, k=20)
    cuda_run = maxsim_topk(queries, documents, k=20, device="cuda", chunk_tokens=5_000)
    assert {q: list(d) for q, d in cuda_run.items()} == {q: list(d) for q, d in cpu_run.items()}


@pytest.mark.parametrize("padding", ["mask", "zero"])
def test_tile_workers_give_the_same_results_as_one_thread(monkeypatch, padding):
    from nanobeir_ext.retrieval import maxsim as retrieval

    monkeypatch.setattr(retrieval, "_CPU_TILE_TOKENS", 40)  # many tiles per chunk, shared by the workers
    queries = random_ragged("q", 7, 1, 6, 16, seed=11)
    documents = random_ragged("d", 90, 1, 30, 16, seed=12)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = maxsim_scores(queries, documents, chunk_tokens=200, padding=padding)
        single_run = maxsim_topk(queries, documents, k=15, chunk_tokens=200, padding=padding)
        torch.set_num_threads(3)
        workers = maxsim_scores(queries, documents, chunk_tokens=200, padding=padding)
        workers_run = maxsim_topk(queries, documents, k=15, chunk_tokens=200, padding=padding)
        assert torch.get_num_threads() == 3  # the caller's thread count is restored
    finally:
        torch.set_num_threads(before)
    assert torch.equal(single, workers)
    assert list(single_run.items()) == list(workers_run.items())
    assert [list(docs) for docs in single_run.values()] == [list(docs) for docs in workers_run.values()]


def test_thread_count_is_restored_when_scoring_stops_early():
    from nanobeir_ext.retrieval import maxsim as retrieval

    queries = random_ragged("q", 2, 2, 2, 4, seed=1)
    documents = random_ragged("d", 30, 1, 5, 4, seed=2)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        chunks = retrieval._plan_chunks(documents, "cpu", 10)
        scores = retrieval._iter_chunk_scores(queries, documents, chunks, "cpu", "mask")
        next(scores)
        assert torch.get_num_threads() == 1  # inside: ops single-threaded, the workers are the parallelism
        scores.close()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
