"""What one evaluation does: the models, the benchmark cells and metrics, and the encoder passes
or index builds (work units) they need, with the round-robin split of that work into shards.

An encoder (``protocol.ENCODER_KINDS``) needs one unit per (subset, language, role); a ranker
(``protocol.RANKER_KINDS``, BM25) needs one index per (subset, document language) and nothing
for queries, which it analyses when it searches."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from nanobeir_ext.data import BenchmarkSource, DataRules
from nanobeir_ext.evaluation.metrics import metric_cutoff
from nanobeir_ext.languages import Cell
from nanobeir_ext.protocol import DEFAULT_KIND, KINDS, PLURAL, RANKER_KINDS, Role
from nanobeir_ext.retrieval.maxsim import PADDING_RULES


PADDING_SIDES: tuple[str | None, ...] = (None, "left", "right")  # models.<key>.padding_side


@dataclass(frozen=True)
class ModelSpec:
    """A model as configured: a hub id + revision, a local folder, or a fixture architecture."""

    key: str
    name: str
    source: str
    revision: str | None = None
    path: str | None = None
    fixture: str | None = None
    query_length: int | None = None
    document_length: int | None = None
    batch_tokens: int | None = None  # None: the encoder's one default (models.batching.DEFAULT_BATCH_TOKENS)
    padding_side: str | None = None  # "left" / "right"; None: the tokenizer's own side (PyLate's default)
    kind: str = DEFAULT_KIND  # one of protocol.KINDS
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)  # the kind's own settings
    trust_remote_code: bool = False  # models.<key>.trust_remote_code: run the checkpoint's own modeling code

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"models.{self.key}.kind={self.kind!r}; valid choices: {list(KINDS)}")
        if self.padding_side not in PADDING_SIDES:
            raise ValueError(f"models.{self.key}.padding_side={self.padding_side!r}; valid choices: null (the tokenizer's "
                             "side, as PyLate), left, right (batch-invariant vectors)")
        if not isinstance(self.trust_remote_code, bool):
            raise ValueError(f"models.{self.key}.trust_remote_code={self.trust_remote_code!r}; valid choices: true, false")

    @property
    def ranks_directly(self) -> bool:
        """A ranker (BM25): indexes documents, encodes nothing."""
        return self.kind in RANKER_KINDS


# Model config keys every kind shares (ModelSpec's fields; ``architecture`` is the latency
# runner's); every other key of a model config is the kind's own setting (ModelSpec.options).
SHARED_MODEL_KEYS: tuple[str, ...] = ("name", "source", "revision", "path", "fixture", "query_length",
                                      "document_length", "batch_tokens", "padding_side", "kind", "architecture",
                                      "trust_remote_code")


def kind_options(model_config: Mapping[str, Any]) -> dict[str, Any]:
    """The kind's own settings of a model config (prompts, BM25's k1 and b, ...): the keys it does not share."""
    return {str(k): v for k, v in model_config.items() if k not in SHARED_MODEL_KEYS}


@dataclass(frozen=True)
class EvaluationPlan:
    models: tuple[ModelSpec, ...]
    benchmark: str
    source: BenchmarkSource
    subsets: tuple[str, ...]
    cells: tuple[Cell, ...]
    metrics: tuple[str, ...]
    cache_dir: Path
    k: int = 100  # documents retrieved per query (the runners' retrieval.k)
    padding: str = "mask"  # MaxSim padding rule (retrieval.padding): "mask" exact, "zero" PyLate's evaluator
    data_rules: DataRules = DataRules()  # benchmark.empty_texts, benchmark.strict
    chunk_tokens: int | None = None  # None: retrieval's per-device default
    device: str = "cpu"
    dtype: str = "auto"
    progress: bool = True
    shard: tuple[int, int] | None = None  # (index, count): encode only this part, then stop

    def __post_init__(self) -> None:
        if self.padding not in PADDING_RULES:
            raise ValueError(f"retrieval.padding must be one of {list(PADDING_RULES)}, got {self.padding!r}")
        if self.k < 1:
            raise ValueError(f"retrieval.k must be a positive number of documents, got {self.k}")
        # A metric cut deeper than the run would silently score the missing ranks as misses.
        too_deep = [metric for metric in self.metrics if metric_cutoff(metric) > self.k]
        if too_deep:
            raise ValueError(f"retrieval.k={self.k} is below the cutoff of {too_deep}: retrieve at least "
                             f"{max(metric_cutoff(m) for m in too_deep)} documents or drop those metrics")

    @property
    def doc_langs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.doc_lang for c in self.cells))

    @property
    def query_langs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.query_lang for c in self.cells))


@dataclass(frozen=True, order=True)
class WorkUnit:
    """One encoder pass (a model encodes one role of one subset in one language), or for a ranker
    one index build (role ``document``)."""

    model_key: str
    subset: str
    language: str
    role: Role

    def describe(self) -> str:
        return f"{self.model_key} {self.subset} {self.language} {PLURAL[self.role]}"


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` (0-based i) -> (i, n); None stays None."""
    if text in (None, "", "null"):
        return None
    try:
        index, count = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise ValueError(f"shard must look like 'i/n' with 0 <= i < n, got {text!r}") from None
    if not 0 <= index < count:
        raise ValueError(f"shard must look like 'i/n' with 0 <= i < n, got {text!r}")
    return index, count


def work_units(plan: EvaluationPlan) -> list[WorkUnit]:
    """Every encoder pass or index build the plan needs, in a fixed order: documents of each doc
    language, then (encoders only) queries of each query language."""
    units = []
    for spec in plan.models:
        for subset in plan.subsets:
            units += [WorkUnit(spec.key, subset, lang, "document") for lang in plan.doc_langs]
            if not spec.ranks_directly:
                units += [WorkUnit(spec.key, subset, lang, "query") for lang in plan.query_langs]
    return units


def shard_units(units: Sequence[WorkUnit], shard: tuple[int, int] | None) -> list[WorkUnit]:
    """Round-robin split, so shards get a similar mix of corpora and query sets."""
    if shard is None:
        return list(units)
    index, count = shard
    return [u for i, u in enumerate(units) if i % count == index]
