"""Benchmark layouts, in the explicit ``LAYOUTS`` registry: ``nanobeir-extended`` (the hub dataset
or a local snapshot of it: one config per (subset, language) and a ``_qrels`` config beside it)
and ``beir`` (BEIR's download folders). A layout says which (subsets, languages) a source offers
and reads the three raw tables of one (subset, document language, query language)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from nanobeir_ext.data.files import jsonl_table, read_split, tsv_table
from nanobeir_ext.data.records import BenchmarkError, BenchmarkSource, RawTable
from nanobeir_ext.data.snapshot import snapshot_configs
from nanobeir_ext.languages import KNOWN_LANGUAGES, ordered


class Layout(Protocol):
    name: str
    description: str

    def choices(self, source: BenchmarkSource) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The (subsets, languages) this source offers."""
        ...

    def read(self, source: BenchmarkSource, subset: str, doc_language: str, query_language: str) -> tuple[RawTable, RawTable, RawTable]:
        """The corpus (doc language), queries (query language) and qrels tables."""
        ...


@dataclass(frozen=True)
class ConfigLayout:
    """A hub dataset with one config per (subset, language) and a ``_qrels`` config beside it.
    A hub source names its subsets (``BenchmarkSource.subsets``); a local snapshot's README lists them."""

    name: str
    description: str
    languages: tuple[str, ...]
    data_config: str = "{subset}_{language}"  # splits "corpus" and "queries"
    qrels_config: str = "{subset}_{language}_qrels"  # split "qrels"

    def choices(self, source: BenchmarkSource) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if source.path is None:
            return source.subsets, self.languages
        pairs = [self._parse(config) for config in snapshot_configs(Path(source.path))]
        pairs = [pair for pair in pairs if pair is not None]
        return tuple(sorted({s for s, _ in pairs})), ordered({lang for _, lang in pairs})

    def _parse(self, config: str) -> tuple[str, str] | None:
        if config.endswith("_qrels") or "_" not in config:
            return None
        subset, language = config.rsplit("_", 1)
        return subset, language

    def read(self, source: BenchmarkSource, subset: str, doc_language: str, query_language: str) -> tuple[RawTable, RawTable, RawTable]:
        if source.path is not None:
            # A snapshot may lack one (subset, language) config even when both names occur elsewhere.
            configs = set(snapshot_configs(Path(source.path)))
            for language in dict.fromkeys((doc_language, query_language)):
                config = self.data_config.format(subset=subset, language=language)
                if config not in configs:
                    available = sorted(c for c in configs if self._parse(c) and self._parse(c)[0] == subset)
                    raise BenchmarkError(f"{source.describe()} has no config {config}; configs of {subset}: {available}")
        return (
            read_split(source, self.data_config.format(subset=subset, language=doc_language), "corpus"),
            read_split(source, self.data_config.format(subset=subset, language=query_language), "queries"),
            read_split(source, self.qrels_config.format(subset=subset, language=doc_language), "qrels"),
        )


NANOBEIR_EXTENDED = ConfigLayout(
    name="nanobeir-extended",
    description="LiquidAI/nanobeir-multilingual-extended: configs {Task}_{lang} (corpus, queries) and {Task}_{lang}_qrels (qrels)",
    languages=KNOWN_LANGUAGES,
)


@dataclass(frozen=True)
class BeirFolderLayout:
    """BEIR's download layout under a local folder: ``{path}/{subset}/corpus.jsonl`` (``_id``,
    ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and ``qrels/{qrels_split}.tsv``
    (``query-id``, ``corpus-id``, ``score`` with a header row). BEIR folders are monolingual:
    they offer one language, ``language``. Titles are prepended to texts, as BEIR evaluates."""

    name: str = "beir"
    description: str = "BEIR folders: {subset}/corpus.jsonl, queries.jsonl, qrels/test.tsv (one language)"
    language: str = "en"
    qrels_split: str = "test"

    def choices(self, source: BenchmarkSource) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if source.path is None:
            raise BenchmarkError(f"layout {self.name} reads local folders only; set benchmark.path=/folder/of/beir/datasets")
        root = Path(source.path)
        if not root.is_dir():
            raise BenchmarkError(f"BEIR folder {root} does not exist")
        return tuple(sorted(p.parent.name for p in root.glob("*/corpus.jsonl"))), (self.language,)

    def read(self, source: BenchmarkSource, subset: str, doc_language: str, query_language: str) -> tuple[RawTable, RawTable, RawTable]:
        folder = Path(source.path or ".") / subset
        qrels = folder / "qrels" / f"{self.qrels_split}.tsv"
        corpus = jsonl_table(folder / "corpus.jsonl")
        if "title" in corpus.columns and "text" in corpus.columns:
            titled = tuple(_with_title(title, text) for title, text in zip(corpus.columns["title"], corpus.columns["text"]))
            corpus = RawTable(corpus.origin, {**corpus.columns, "text": titled})
        return corpus, jsonl_table(folder / "queries.jsonl"), tsv_table(qrels)


def _with_title(title: Any, text: Any) -> Any:
    if isinstance(title, str) and title.strip() and isinstance(text, str):
        return f"{title.strip()} {text}"
    return text


LAYOUTS: dict[str, Layout] = {NANOBEIR_EXTENDED.name: NANOBEIR_EXTENDED, "beir": BeirFolderLayout()}


def get_layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise BenchmarkError(f"unknown benchmark layout {name!r}; valid layouts: {sorted(LAYOUTS)}")
    return LAYOUTS[name]
