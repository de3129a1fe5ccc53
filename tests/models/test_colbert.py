"""The ColBERT encoder on the tiny fixture checkpoints: token layout, batching, outputs, errors.

Exactness against PyLate itself is tests/test_parity.py; these tests pin the rules one
by one so a failure says which rule broke.
"""
from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

import numpy as np
import pytest
import torch

from nanobeir_ext.protocol import Encoder
from models.batching import MIN_USEFUL_FRACTION, PYLATE_BATCH_SIZE, plan_batches, pylate_batches
from models.colbert import ColBERTEncoder, load_colbert, resolve_dtype
from nanobeir_ext.data.fixture import fixture_texts
from models.fixtures import FIXTURE_ARCHITECTURES, build_backbone_folder, build_fixture_checkpoints, write_colbert_checkpoint

MIXED = [
    "Does vitamin D supplementation prevent acute respiratory infections?",
    "ビタミンDの補充は急性呼吸器感染症を予防するか？",
    "x",
    "   Leading and trailing spaces, and punctuation!!!   ",
    "비타민 D 보충은 급성 호흡기 감염을 예방하는가? " * 12,
    "هل تقي مكمّلات فيتامين د من التهابات الجهاز التنفسي الحادة؟",
    "Kurz.",
]


@pytest.fixture(scope="module")
def checkpoints(shared_cache: Path) -> dict[str, Path]:
    return build_fixture_checkpoints(shared_cache / "fixture-models")


@pytest.fixture(scope="module")
def encoders(checkpoints: dict[str, Path]) -> dict[str, ColBERTEncoder]:
    return {arch: load_colbert(str(path)) for arch, path in checkpoints.items()}


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_backbone_folder("lfm2", tmp_path_factory.mktemp("backbone"), fixture_texts()[:200] + MIXED)


def variant(backbone: Path, tmp_path: Path, **settings) -> ColBERTEncoder:
    return load_colbert(str(write_colbert_checkpoint(backbone, tmp_path / "colbert", **settings)))


def left_padding_copy(checkpoint: Path, target: Path) -> Path:
    """The checkpoint with a tokenizer that pads on the left (its tokenizer_config.json says so)."""
    shutil.copytree(checkpoint, target)
    config = json.loads((target / "tokenizer_config.json").read_text())
    (target / "tokenizer_config.json").write_text(json.dumps({**config, "padding_side": "left"}))
    return target


def rebatched(encoder: ColBERTEncoder, **options) -> ColBERTEncoder:
    """The same model and settings with other batching options."""
    options = {"batch_tokens": encoder.batch_tokens, "padding_side": encoder.padding_side, **options}
    return ColBERTEncoder(encoder.backbone, encoder.tokenizer, encoder.dense, encoder.settings, encoder.info, **options)


def test_it_is_an_encoder(encoders: dict[str, ColBERTEncoder]) -> None:
    encoder = encoders["lfm2"]
    assert isinstance(encoder, Encoder)
    assert encoder.info.parameters == sum(p.numel() for p in encoder.backbone.parameters()) + sum(p.numel() for p in encoder.dense.parameters())
    assert encoder.info.dtype == "float32" and encoder.info.device == "cpu" and encoder.info.revision is None
    assert len(encoder.info.weights_hash) == 64


@pytest.mark.parametrize("arch", FIXTURE_ARCHITECTURES)
def test_query_layout(encoders: dict[str, ColBERTEncoder], arch: str) -> None:
    encoder = encoders[arch]
    tokenizer, length = encoder.tokenizer, encoder.settings.query_length
    batch = encoder.tokenize(["Vitamin D?", "A longer query about vitamin D and infections"], "query")
    ids, attention, keep = batch["input_ids"], batch["attention_mask"], batch["keep_mask"]
    assert ids.shape == (2, length)
    first = tokenizer.bos_token_id if arch == "lfm2" else tokenizer.cls_token_id
    assert ids[:, 0].tolist() == [first, first]
    assert ids[:, 1].tolist() == [tokenizer.convert_tokens_to_ids("[Q] ")] * 2  # the prefix at index 1
    expansion = tokenizer.eos_token_id if arch == "lfm2" else tokenizer.mask_token_id  # no mask token in LFM2
    real = int(attention[0].sum())
    assert ids[0, real:].eq(expansion).all() and attention[0, real:].eq(0).all()
    assert keep.all()  # expansion tokens are kept although not attended to
    unprefixed = tokenizer("Vitamin D?")["input_ids"]
    assert ids[0, :real].tolist() == unprefixed[:1] + [ids[0, 1].item()] + unprefixed[1:]


def test_document_layout_and_skiplist(encoders: dict[str, ColBERTEncoder]) -> None:
    encoder = encoders["modernbert"]
    tokenizer = encoder.tokenizer
    batch = encoder.tokenize(["Cats, dogs.", "Birds"], "document")
    ids, attention, keep = batch["input_ids"], batch["attention_mask"], batch["keep_mask"]
    expected = tokenizer("Cats, dogs.")["input_ids"]
    assert ids[0].tolist() == expected[:1] + [tokenizer.convert_tokens_to_ids("[D] ")] + expected[1:]
    assert ids.shape[1] == len(expected) + 1  # padded to the longest, not to document_length
    punctuation = set(tokenizer.convert_tokens_to_ids([",", "."]))
    assert [i in punctuation for i in ids[0].tolist()] == (~keep[0]).tolist()
    assert not keep[1][attention[1] == 0].any()
    out = encoder.encode(["Cats, dogs.", "Birds"], "document", progress=False)
    assert [len(v) for v in out.embeddings] == keep.sum(dim=1).tolist()


def test_query_expansion_off_and_attention_on(backbone: Path, tmp_path: Path) -> None:
    off = variant(backbone, tmp_path / "off", do_query_expansion=False, attend_to_expansion_tokens=True)
    assert not off.settings.attend_to_expansion_tokens  # forced off, as PyLate does
    batch = off.tokenize(["short", "a somewhat longer query"], "query")
    assert batch["input_ids"].shape[1] < off.settings.query_length
    assert torch.equal(batch["keep_mask"], batch["attention_mask"].bool())
    on = variant(backbone, tmp_path / "on", attend_to_expansion_tokens=True)
    assert on.tokenize(["short"], "query")["attention_mask"].all()


def test_empty_prefix_inserts_nothing(backbone: Path, tmp_path: Path) -> None:
    encoder = variant(backbone, tmp_path, query_prefix="", document_prefix="", query_length=8)
    batch = encoder.tokenize(["one two three four five six seven eight nine"], "query")
    assert batch["input_ids"][0].tolist() == encoder.tokenizer("one two three four five six seven eight nine", truncation=True, max_length=8)["input_ids"]


def test_strip_and_lower_case(backbone: Path, tmp_path: Path) -> None:
    cased = variant(backbone, tmp_path / "cased")
    assert torch.equal(cased.tokenize(["  Vitamin D \n"], "document")["input_ids"], cased.tokenize(["Vitamin D"], "document")["input_ids"])
    assert not torch.equal(cased.tokenize(["VITAMIN"], "document")["input_ids"], cased.tokenize(["vitamin"], "document")["input_ids"])
    lower = variant(backbone, tmp_path / "lower", do_lower_case=True)
    assert torch.equal(lower.tokenize(["VITAMIN"], "document")["input_ids"], lower.tokenize(["vitamin"], "document")["input_ids"])


@pytest.mark.parametrize("arch", FIXTURE_ARCHITECTURES)
def test_truncation_counts(encoders: dict[str, ColBERTEncoder], arch: str) -> None:
    encoder = encoders[arch]
    long_text = "vitamin " * 1000
    out = encoder.encode([long_text, "short text"], "document", progress=False)
    assert out.truncated == 1
    batch = encoder.tokenize([long_text], "document")
    assert batch["input_ids"].shape[1] == encoder.settings.document_length
    queries = encoder.encode(["vitamin " * 100, "short"], "query", progress=False)
    assert queries.truncated == 1 and all(len(v) == encoder.settings.query_length for v in queries.embeddings)


@pytest.mark.parametrize("arch", FIXTURE_ARCHITECTURES)
@pytest.mark.parametrize("role", ["query", "document"])
def test_batching_does_not_change_vectors(encoders: dict[str, ColBERTEncoder], arch: str, role: str) -> None:
    encoder = encoders[arch]
    together = encoder.encode(MIXED, role, progress=False).embeddings
    alone = [encoder.encode([text], role, progress=False).embeddings[0] for text in MIXED]
    split = rebatched(encoder, batch_tokens=64, max_batch_size=2).encode(MIXED, role, progress=False).embeddings
    for a, b, c in zip(together, alone, split):
        assert a.shape == b.shape == c.shape
        assert float((a - b).abs().max()) <= 1e-5 and float((a - c).abs().max()) <= 1e-5


def test_outputs_are_normalised_float32_cpu_in_input_order(encoders: dict[str, ColBERTEncoder]) -> None:
    encoder = encoders["lfm2"]
    out = encoder.encode(MIXED, "document", progress=False)
    assert len(out.embeddings) == len(MIXED)
    for vectors in out.embeddings:
        assert vectors.dtype == torch.float32 and vectors.device.type == "cpu"
        assert torch.allclose(vectors.norm(dim=1), torch.ones(len(vectors)), atol=1e-5)
    reversed_out = encoder.encode(MIXED[::-1], "document", progress=False)
    for a, b in zip(out.embeddings, reversed_out.embeddings[::-1]):
        assert torch.allclose(a, b, atol=1e-5)
    lengths = [encoder.tokenize([t], "document")["input_ids"].shape[1] for t in MIXED]
    assert out.tokens == sum(lengths) and out.padded_tokens >= out.tokens


def test_empty_input_and_bad_role(encoders: dict[str, ColBERTEncoder]) -> None:
    encoder = encoders["lfm2"]
    assert encoder.encode([], "query", progress=False).embeddings == []
    with pytest.raises(ValueError, match="unknown role 'passage'.*'query', 'document'"):
        encoder.encode(["text"], "passage", progress=False)  # type: ignore[arg-type]


def test_progress_bar_uses_the_description(encoders: dict[str, ColBERTEncoder], capsys: pytest.CaptureFixture[str]) -> None:
    encoders["lfm2"].encode(["one", "two"], "query", desc="encoding fixture queries")
    assert "encoding fixture queries" in capsys.readouterr().err
    encoders["lfm2"].encode(["one", "two"], "query", progress=False, desc="silent run")
    assert "silent run" not in capsys.readouterr().err


def test_nan_output_names_the_model_and_the_text(checkpoints: dict[str, Path]) -> None:
    encoder = load_colbert(str(checkpoints["modernbert"]), name="broken-model")
    with torch.no_grad():
        encoder.dense[0].linear.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="broken-model produced NaN/Inf vectors for 1 text.*'a poisoned text'"):
        encoder.encode(["a poisoned text"], "document", progress=False)


def test_cache_identity(checkpoints: dict[str, Path], encoders: dict[str, ColBERTEncoder]) -> None:
    identity = encoders["lfm2"].cache_identity()
    assert json.loads(json.dumps(identity)) == identity
    assert identity["weights_hash"] == encoders["lfm2"].info.weights_hash and identity["dtype"] == "float32"
    assert identity["settings"]["skiplist_words"] == list(string.punctuation)
    assert identity != encoders["modernbert"].cache_identity()
    shorter = load_colbert(str(checkpoints["lfm2"]), query_length=16)
    assert shorter.cache_identity()["settings"]["query_length"] == 16 and shorter.cache_identity() != identity
    assert all(len(v) == 16 for v in shorter.encode(["a query"], "query", progress=False).embeddings)
    # Batching moves vectors (by rounding on the right, by padding on the left): it is part of the key.
    assert identity["batching"] == {"padding_side": "right", "plan": "token-length-sort", "batch_tokens": 32768,
                                    "max_batch_size": 256, "min_useful": MIN_USEFUL_FRACTION}
    assert load_colbert(str(checkpoints["lfm2"]), batch_tokens=512).cache_identity()["batching"]["batch_tokens"] == 512
    left = load_colbert(str(checkpoints["lfm2"]), padding_side="left").cache_identity()
    assert left["batching"] == {"padding_side": "left", "plan": "pylate-char-length-sort", "batch_size": PYLATE_BATCH_SIZE}
    assert {key: value for key, value in left.items() if key != "batching"} == {key: value for key, value in identity.items() if key != "batching"}


def test_plan_batches() -> None:
    lengths = [5, 50, 7, 50, 120, 3, 9]
    batches = plan_batches(lengths, batch_tokens=100, max_batch_size=3, min_useful=0.0)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert batches[0] == [4]  # longer than the budget: alone
    for batch in batches:
        assert len(batch) <= 3 and (len(batch) == 1 or len(batch) * lengths[batch[0]] <= 100)
    order = [i for batch in batches for i in batch]
    assert [lengths[i] for i in order] == sorted(lengths, reverse=True)
    assert batches[1:] == [[1, 3], [6, 2, 0], [5]]  # ties keep input order; spread unbounded at min_useful=0
    # The default bound on the spread: 9 and 7 (8/9 useful) stay apart, like 5 and 3.
    assert plan_batches(lengths, batch_tokens=100, max_batch_size=3) == [[4], [1, 3], [6], [2], [0], [5]]
    # Queries with expansion: every row has the fixed width, so only the budget cuts.
    assert plan_batches([3, 32, 9, 20] * 3, batch_tokens=100, max_batch_size=8, fixed_width=32) == [[1, 5, 9], [3, 7, 11], [2, 6, 10], [0, 4, 8]]
    with pytest.raises(ValueError, match="positive"):
        plan_batches([1], batch_tokens=0, max_batch_size=1)
    with pytest.raises(ValueError, match="fraction"):
        plan_batches([1], batch_tokens=8, max_batch_size=1, min_useful=1.5)


@pytest.mark.parametrize("seed", range(5))
def test_every_batch_is_at_least_95_percent_real_tokens(seed: int) -> None:
    generator = np.random.default_rng(seed)
    # A NanoBEIR-like document mix: log-normal lengths, a long tail clipped at the document length.
    lengths = np.clip(generator.lognormal(mean=5.3, sigma=0.8, size=2000).astype(int), 2, 300).tolist()
    for batch_tokens in (512, 8192, 32768):
        batches = plan_batches(lengths, batch_tokens=batch_tokens, max_batch_size=256)
        assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
        for batch in batches:
            width = max(lengths[i] for i in batch)
            assert sum(lengths[i] for i in batch) >= MIN_USEFUL_FRACTION * len(batch) * width
            assert len(batch) == 1 or len(batch) * width <= batch_tokens
        if batch_tokens >= 8192:  # tight, yet not split into single rows: batches stay large
            assert len(batches) < len(lengths) / 20


def test_pylate_batches_follow_sentence_transformers_order() -> None:
    texts = [f"{'x' * (i % 7)} text {i}" for i in range(70)]
    batches = pylate_batches(texts)
    assert [len(batch) for batch in batches] == [PYLATE_BATCH_SIZE, PYLATE_BATCH_SIZE, 6]
    order = [i for batch in batches for i in batch]
    assert order == np.argsort([-len(text) for text in texts]).tolist()  # numpy's default sort: ties as numpy orders them
    assert [len(texts[i]) for i in order] == sorted((len(t) for t in texts), reverse=True)
    assert pylate_batches(["  padded  ", "longest text", "a"]) == [[1, 0, 2]]  # character length before strip()


@pytest.mark.parametrize("arch", FIXTURE_ARCHITECTURES)
def test_left_padding_layout_is_pylates(checkpoints: dict[str, Path], tmp_path: Path, arch: str) -> None:
    """PyLate pads on the tokenizer's side, then inserts the prefix at column 1:
    ``pad [Q] pad.. BOS tokens`` for a left-padded row, ``BOS [D] tokens`` for the longest."""
    encoder = load_colbert(str(left_padding_copy(checkpoints[arch], tmp_path / "left")))
    tokenizer = encoder.tokenizer
    assert tokenizer.padding_side == "left" and encoder.padding_side == "left"
    q, d = tokenizer.convert_tokens_to_ids("[Q] "), tokenizer.convert_tokens_to_ids("[D] ")
    pad = encoder.expansion_id
    plain = tokenizer("Vitamin D?")["input_ids"]
    queries = encoder.tokenize(["Vitamin D?"], "query")
    length = encoder.settings.query_length
    gap = length - 1 - len(plain)
    assert queries["input_ids"][0].tolist() == [pad, q] + [pad] * (gap - 1) + plain
    assert queries["attention_mask"][0].tolist() == [0, 1] + [0] * (gap - 1) + [1] * len(plain)
    assert queries["keep_mask"].all()
    longer = tokenizer("Cats and dogs and birds")["input_ids"]
    short = tokenizer("Cats")["input_ids"]
    documents = encoder.tokenize(["Cats and dogs and birds", "Cats"], "document")
    assert documents["input_ids"][0].tolist() == longer[:1] + [d] + longer[1:]  # the longest row: as on the right
    gap = len(longer) - len(short)
    assert documents["input_ids"][1].tolist() == [pad, d] + [pad] * (gap - 1) + short
    assert documents["keep_mask"][1].tolist() == [False, True] + [False] * (gap - 1) + [True] * len(short)
    # The explicit setting wins over the tokenizer's side.
    right = load_colbert(str(tmp_path / "left"), padding_side="right")
    assert right.tokenize(["Cats"], "document")["input_ids"][0].tolist() == short[:1] + [d] + short[1:]


def test_left_padding_vectors_depend_on_the_batch(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    """Why PyLate's batching is reproduced on the left: a document padded next to a longer
    one is a different sequence (the prefix moves away from BOS, positions shift)."""
    encoder = load_colbert(str(left_padding_copy(checkpoints["lfm2"], tmp_path / "left")))
    text, longer = MIXED[0], MIXED[4]
    alone = encoder.encode([text], "document", progress=False).embeddings[0]
    beside = encoder.encode([text, longer], "document", progress=False).embeddings[0]
    assert alone.shape == beside.shape
    assert float((alone - beside).abs().max()) > 1e-3
    assert encoder.plan(MIXED, [], "document") == pylate_batches(MIXED)


@pytest.mark.parametrize("arch", FIXTURE_ARCHITECTURES)
@pytest.mark.parametrize("role", ["query", "document"])
def test_padding_side_right_is_batch_invariant_for_a_left_padding_tokenizer(
        checkpoints: dict[str, Path], encoders: dict[str, ColBERTEncoder], tmp_path: Path, arch: str, role: str) -> None:
    encoder = load_colbert(str(left_padding_copy(checkpoints[arch], tmp_path / "left")), padding_side="right")
    assert encoder.tokenizer.padding_side == "left" and encoder.padding_side == "right"
    together = encoder.encode(MIXED, role, progress=False).embeddings
    alone = [encoder.encode([text], role, progress=False).embeddings[0] for text in MIXED]
    split = rebatched(encoder, batch_tokens=64, max_batch_size=2).encode(MIXED, role, progress=False).embeddings
    reference = encoders[arch].encode(MIXED, role, progress=False).embeddings  # the right-padding tokenizer
    for a, b, c, r in zip(together, alone, split, reference):
        assert a.shape == b.shape == c.shape == r.shape
        assert max(float((a - x).abs().max()) for x in (b, c, r)) <= 1e-5


def test_an_unknown_padding_side_is_an_error(checkpoints: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="padding_side 'top'.*'left', 'right'"):
        load_colbert(str(checkpoints["lfm2"]), padding_side="top")


def test_resolve_dtype() -> None:
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "cuda") == torch.bfloat16
    assert resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype 'fp8'.*'auto', 'float32'"):
        resolve_dtype("fp8", "cpu")


def test_a_prefix_missing_from_the_tokenizer_is_an_error(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(checkpoints["lfm2"], copy)
    config = json.loads((copy / "config_sentence_transformers.json").read_text())
    config["query_prefix"] = "[Query] "
    (copy / "config_sentence_transformers.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="prefix '\\[Query\\] ' is not a token"):
        load_colbert(str(copy))
