"""What the PyLate parity suite compares: the texts and the checkpoint variants.

Shared by tests/test_parity.py (which writes them into the oracle's JSON spec) and
nothing else; the oracle itself reads only the JSON.
"""
from __future__ import annotations

from nanobeir_ext.data.fixture import fixture_subsets, load_source
from nanobeir_ext.languages import MATRIX_LANGUAGES


def _texts(subset: str, role: str, index: int) -> list[str]:
    record = load_source(subset)[role][index]
    return [record["text"][lang] for lang in MATRIX_LANGUAGES]


def parity_texts() -> dict[str, list[str]]:
    """Every fixture language, plus the edge cases of the encoding rules."""
    long_query = " ".join(_texts("NanoSciFact", "queries", 2)[2:4] * 4)  # far beyond 32 tokens
    queries = [
        *_texts("NanoSciFact", "queries", 0),
        *_texts("NanoFiQA2018", "queries", 1),
        long_query,
        "What?! (really) -- yes: [no]; {maybe}... #1 @home $5 & 10% ~ ^_^ | \\ / * + = < > ` ' \"",
        "WHAT DOES VITAMIN D DO? ÉTÉ À PARIS, ÜBER ALLES",
        "   leading and trailing whitespace \n\t ",
        "x",
    ]
    documents = [
        *_texts("NanoSciFact", "corpus", 0),
        *_texts("NanoNFCorpus", "corpus", 3),
        " ".join(_texts("NanoFiQA2018", "corpus", 2)[2:3] * 6),  # English, beyond 180 tokens
        "".join(_texts("NanoSciFact", "corpus", 5)[6:7] * 8),  # Japanese, beyond 180 tokens
        "Punctuation: a, b; c. (d) [e] {f} <g> 'h' \"i\" j! k? l-m/n*o+p=q%r&s#t@u$v^w_x`y|z~ \\ ...",
        "UPPER CASE DOCUMENT ABOUT VITAMIN D AND RESPIRATORY INFECTIONS. ÇA VA? ÄÖÜ ΣΊΣΥΦΟΣ",
        "\n\n   a document surrounded by whitespace.   \t",
        "!!! ... ???",
    ]
    return {"queries": queries, "documents": documents}


def lone_batch_texts(texts: dict[str, list[str]], batch_size: int = 32) -> dict[str, list[str]]:
    """The first ``batch_size + 1`` queries and every document: PyLate's last query batch then
    holds one text (for LFM2, transformers skips the padding mask in a batch of one)."""
    return {"queries": texts["queries"][: batch_size + 1], "documents": texts["documents"]}


def fixture_ranking_texts(queries_per_subset: int = 2) -> dict[str, list[str]]:
    """Every fixture document (all subsets and languages) and the first queries of each
    subset in every language: scoring all queries against the zero-padded corpus with
    PyLate's 4-D ``colbert_scores`` would dominate the suite's run time."""
    queries, documents = [], []
    for subset in fixture_subsets():
        source = load_source(subset)
        for lang in MATRIX_LANGUAGES:
            queries += [r["text"][lang] for r in source["queries"][:queries_per_subset] if r["text"].get(lang, "").strip()]
            documents += [r["text"][lang] for r in source["corpus"] if r["text"].get(lang, "").strip()]
    return {"queries": queries, "documents": documents}


# (in, out, bias, activation, residual): appended after PyLate's own Dense(hidden -> 48, bias).
EXTRA_DENSE = [
    {"in_features": 48, "out_features": 32, "bias": True, "activation": "Tanh", "use_residual": True},  # residual is a linear map
    {"in_features": 32, "out_features": 32, "bias": False, "activation": "Identity", "use_residual": True},  # identity residual
]


def variants(backbones: dict[str, str], fixture_checkpoints: dict[str, str]) -> list[dict]:
    """The oracle's variants; ``name`` is ``<arch>-<case>``.

    ``left-padding`` / ``left-fixture``: the tokenizer pads on the left (``padding_side`` in
    tokenizer_config.json) and PyLate encodes with its default batching (32 texts, length
    sorted), because the vectors then depend on the batch; ``left-padding`` is ``default``
    with only that edit (same seed, same Dense weights).
    """
    cases = {
        "default": {},
        "no-expansion": {"arguments": {"do_query_expansion": False}},
        "attend-expansion": {"arguments": {"attend_to_expansion_tokens": True}},
        "prefixes-lengths": {
            "arguments": {"query_prefix": "[query] ", "document_prefix": "<doc>", "query_length": 12, "document_length": 24, "skiplist_words": [",", ".", "?", "!", "-"]}
        },
        "lowercase": {"edits": {"do_lower_case": True}},
        "dense-stack": {"arguments": {"embedding_size": 48, "bias": True}, "edits": {"extra_dense": EXTRA_DENSE}},
        "left-padding": {"edits": {"padding_side": "left"}, "pylate_batching": True},
    }
    result = []
    for arch, backbone in backbones.items():
        for case, spec in cases.items():
            result.append({"name": f"{arch}-{case}", "backbone": backbone, "texts": "parity", **spec})
        result.append({"name": f"{arch}-fixture-writer", "checkpoint": fixture_checkpoints[arch], "texts": "fixture"})
        result.append({"name": f"{arch}-left-fixture", "checkpoint": fixture_checkpoints[arch], "texts": "fixture-lone",
                       "edits": {"padding_side": "left"}, "pylate_batching": True})
    result.append({"name": "lfm2-no-prefix", "backbone": backbones["lfm2"], "texts": "parity", "arguments": {"query_prefix": "", "document_prefix": ""}})
    for variant in result:
        if variant["name"] == "lfm2-default":
            variant["single_query_probe"] = True
    return result


VARIANT_NAMES = [
    f"{arch}-{case}"
    for arch in ("lfm2", "modernbert")
    for case in ("default", "no-expansion", "attend-expansion", "prefixes-lengths", "lowercase", "dense-stack", "fixture-writer",
                 "left-padding", "left-fixture")
] + ["lfm2-no-prefix"]
LEFT_VARIANTS = [name for name in VARIANT_NAMES if "-left-" in name]
