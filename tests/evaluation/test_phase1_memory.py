"""Phase 1 holds one embedding set at a time: a set's vectors are freed before the next is encoded."""
from __future__ import annotations

import gc
import weakref

import torch

from nanobeir_ext.embeddings.store import EmbeddingStore
from nanobeir_ext.evaluation.pipeline import ensure_encoded, load_data, store_keys
from nanobeir_ext.evaluation.plan import WorkUnit
from nanobeir_ext.protocol import EncodeOutput
from tests.evaluation.test_plan import fixture_plan


class RecordingEncoder:
    """Random vectors; on each call, how many tensors of earlier calls are still alive."""

    def __init__(self) -> None:
        self.earlier: list[weakref.ref] = []
        self.alive_at_call: list[int] = []

    def cache_identity(self) -> dict:
        return {"encoder": "tests.evaluation.test_phase1_memory.RecordingEncoder"}

    def encode(self, texts, role, *, progress=True, desc=None) -> EncodeOutput:
        gc.collect()  # only reference cycles would survive this; plain references are what is tested
        self.alive_at_call.append(sum(ref() is not None for ref in self.earlier))
        embeddings = [torch.randn(3, 8) for _ in texts]
        self.earlier += [weakref.ref(e) for e in embeddings]
        return EncodeOutput(embeddings=embeddings, tokens=3 * len(texts), padded_tokens=3 * len(texts))


def test_each_sets_vectors_are_released_before_the_next_encode(tmp_path):
    data = load_data(fixture_plan())
    units = [WorkUnit("m", "NanoSciFact", language, role) for language in ("en", "de") for role in ("document", "query")]
    encoder = RecordingEncoder()
    keys = store_keys(units, encoder.cache_identity(), data)
    record = ensure_encoded(units, encoder, keys, data, EmbeddingStore(tmp_path / "store"), progress=False)
    assert record.encoded == units and len(encoder.alive_at_call) == 4
    assert encoder.alive_at_call == [0, 0, 0, 0]
