"""Benchmark loaders: one subset of a retrieval benchmark, in one language, as typed records.

A ``BenchmarkSource`` names where the data lives (a hub dataset at a pinned revision,
or a local snapshot folder) and which layout it follows; ``load_subset`` returns a
validated ``SubsetData``. Validation follows what the peers (PyLate,
sentence-transformers) do with the translated NanoBEIR sets: empty texts are dropped
and counted, judgments on dropped documents are removed, and queries left without a
relevant document are dropped and counted. Everything else that is wrong (missing
columns, duplicate or non-string ids, judgments naming unknown ids) is an error that
names the subset, the language, the config/split and the count.

Layouts live in the explicit ``LAYOUTS`` registry: ``nanobeir-extended`` (the hub dataset
or a local snapshot of it) and ``beir`` (BEIR's download folders). A local snapshot of the
extended layout is read straight from the data files its README lists (JSON lines or
parquet), far faster than ``datasets.load_dataset`` per config; anything else (hub repos,
other file formats) goes through ``datasets.load_dataset``.
"""
from __future__ import annotations

import contextlib
import csv
import functools
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol, Sequence

from nanobeir_ext.languages import KNOWN_LANGUAGES

logger = logging.getLogger(__name__)

# The 13 tasks of NanoBEIR (and of its extended multilingual translation).
NANO_TASKS: tuple[str, ...] = (
    "NanoArguAna", "NanoClimateFEVER", "NanoDBPedia", "NanoFEVER", "NanoFiQA2018", "NanoHotpotQA",
    "NanoMSMARCO", "NanoNFCorpus", "NanoNQ", "NanoQuoraRetrieval", "NanoSCIDOCS", "NanoSciFact",
    "NanoTouche2020",
)
_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHOW_IDS = 5  # how many offending ids an error message quotes


class BenchmarkError(ValueError):
    """The requested benchmark data is unknown or invalid."""


class BenchmarkUnavailableError(ConnectionError):
    """The dataset is on the hub, the hub cannot be reached, and nothing is cached."""


@dataclass(frozen=True)
class BenchmarkSource:
    layout: str = "nanobeir-extended"  # key of LAYOUTS
    repo_id: str = "LiquidAI/nanobeir-multilingual-extended"
    revision: str | None = "8a4be55eb80b3ed4d2e9a423a5212228c217d426"
    path: str | None = None  # local snapshot folder; wins over repo_id
    cache_dir: str | None = None  # datasets cache

    def describe(self) -> str:
        if self.path is not None:
            return f"local snapshot {self.path}"
        return f"{self.repo_id} (revision {self.revision or 'main'})"


@dataclass(frozen=True)
class TextCollection:
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    dropped_empty: int  # empty or whitespace-only texts left out

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class SubsetData:
    """One subset: the corpus in ``language``, queries in ``query_language``, and qrels.

    ``query_language`` equals ``language`` unless this is a cross-lingual cell; the
    queries kept are those with at least one relevant (score > 0) document in this
    corpus, and ``qrels`` holds the judgments of exactly those queries on this corpus.
    """

    subset: str
    language: str
    corpus: TextCollection
    queries: TextCollection  # only queries with >= 1 relevant document in the corpus
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> relevance
    queries_without_relevant: int  # non-empty queries dropped for lack of a relevant document
    query_language: str | None = None  # None: same as language (filled in on construction)
    source: BenchmarkSource | None = None
    revision: str | None = None  # resolved dataset commit (hub); None for a local snapshot

    def __post_init__(self) -> None:
        if self.query_language is None:
            object.__setattr__(self, "query_language", self.language)

    @property
    def doc_language(self) -> str:
        return self.language

    def identity(self) -> dict[str, Any]:
        """What was evaluated, for environment.json: origin, revision, choices and counts."""
        source = self.source
        if source is None:
            origin: dict[str, Any] = {"layout": None}
        elif source.path is not None:
            origin = {"layout": source.layout, "path": str(Path(source.path).resolve())}
        else:
            origin = {"layout": source.layout, "repo_id": source.repo_id}
        return {
            **origin,
            "revision": self.revision,
            "subset": self.subset,
            "language": self.language,
            "query_language": self.query_language,
            "documents": len(self.corpus),
            "queries": len(self.queries),
            "qrels": sum(len(judged) for judged in self.qrels.values()),
            "dropped_empty_documents": self.corpus.dropped_empty,
            "dropped_empty_queries": self.queries.dropped_empty,
            "queries_without_relevant": self.queries_without_relevant,
        }


@dataclass(frozen=True)
class RawTable:
    """One split as read from disk or the hub: column name -> values (untouched)."""

    origin: str  # e.g. "config NanoSciFact_en, split corpus" (for error messages)
    columns: Mapping[str, tuple[Any, ...]]


class Layout(Protocol):
    name: str
    description: str
    subsets: tuple[str, ...]  # the subsets a hub source offers (empty where only folders define them)

    def choices(self, source: BenchmarkSource) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The (subsets, languages) this source offers."""
        ...

    def read(self, source: BenchmarkSource, subset: str, doc_language: str, query_language: str) -> tuple[RawTable, RawTable, RawTable]:
        """The corpus (doc language), queries (query language) and qrels tables."""
        ...


# --------------------------------------------------------------------------- the extended layout


@dataclass(frozen=True)
class ConfigLayout:
    """A hub dataset with one config per (subset, language) and a ``_qrels`` config beside it."""

    name: str
    description: str
    subsets: tuple[str, ...]
    languages: tuple[str, ...]
    data_config: str = "{subset}_{language}"  # splits "corpus" and "queries"
    qrels_config: str = "{subset}_{language}_qrels"  # split "qrels"

    def choices(self, source: BenchmarkSource) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if source.path is None:
            return self.subsets, self.languages
        pairs = [self._parse(config) for config in snapshot_configs(Path(source.path))]
        pairs = [pair for pair in pairs if pair is not None]
        return tuple(sorted({s for s, _ in pairs})), _ordered_languages({lang for _, lang in pairs})

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
    subsets=NANO_TASKS,
    languages=KNOWN_LANGUAGES,
)

# --------------------------------------------------------------------------- the BEIR folder layout


@dataclass(frozen=True)
class BeirFolderLayout:
    """BEIR's download layout under a local folder: ``{path}/{subset}/corpus.jsonl`` (``_id``,
    ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and ``qrels/{qrels_split}.tsv``
    (``query-id``, ``corpus-id``, ``score`` with a header row). BEIR folders are monolingual:
    they offer one language, ``language``. Titles are prepended to texts, as BEIR evaluates."""

    name: str = "beir"
    description: str = "BEIR folders: {subset}/corpus.jsonl, queries.jsonl, qrels/test.tsv (one language)"
    subsets: tuple[str, ...] = ()  # defined by the folders found, never by a hub
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
        corpus = _jsonl_table(folder / "corpus.jsonl")
        if "title" in corpus.columns and "text" in corpus.columns:
            titled = tuple(_with_title(title, text) for title, text in zip(corpus.columns["title"], corpus.columns["text"]))
            corpus = RawTable(corpus.origin, {**corpus.columns, "text": titled})
        return corpus, _jsonl_table(folder / "queries.jsonl"), _tsv_table(qrels)


def _with_title(title: Any, text: Any) -> Any:
    if isinstance(title, str) and title.strip() and isinstance(text, str):
        return f"{title.strip()} {text}"
    return text


def _jsonl_table(path: Path) -> RawTable:
    if not path.is_file():
        raise BenchmarkError(f"missing file {path}")
    return RawTable(f"file {path}", {name: tuple(values) for name, values in _read_jsonl(path).items()})


def _tsv_table(path: Path) -> RawTable:
    """A qrels TSV with a header row; scores parsed as integers where they are integers."""
    if not path.is_file():
        raise BenchmarkError(f"missing file {path}")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    columns: dict[str, tuple[Any, ...]] = {name: tuple(row[i] if i < len(row) else None for row in body) for i, name in enumerate(header)}
    if "score" in columns:
        columns["score"] = tuple(int(v) if isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()) else v for v in columns["score"])
    return RawTable(f"file {path}", columns)


LAYOUTS: dict[str, Layout] = {NANOBEIR_EXTENDED.name: NANOBEIR_EXTENDED, "beir": BeirFolderLayout()}


def get_layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise BenchmarkError(f"unknown benchmark layout {name!r}; valid layouts: {sorted(LAYOUTS)}")
    return LAYOUTS[name]


def known_subsets(layout: str = "nanobeir-extended") -> tuple[str, ...]:
    """The subsets a layout defines on the hub (the 13 Nano tasks for the extended layout)."""
    return get_layout(layout).subsets


def _ordered_languages(languages: set[str]) -> tuple[str, ...]:
    rank = {lang: i for i, lang in enumerate(KNOWN_LANGUAGES)}
    return tuple(sorted(languages, key=lambda lang: (rank.get(lang, len(rank)), lang)))


# --------------------------------------------------------------------------- reading splits


def read_split(source: BenchmarkSource, config: str, split: str) -> RawTable:
    """One split of one config, cached per process (sources are immutable; local
    snapshots are keyed on their README's mtime and size too, so a rewrite is seen)."""
    stamp = None
    if source.path is not None:
        readme = Path(source.path) / "README.md"
        stat = readme.stat() if readme.is_file() else None
        stamp = (stat.st_mtime_ns, stat.st_size) if stat else None
    return _read_split_cached(source, config, split, stamp)


@functools.lru_cache(maxsize=64)
def _read_split_cached(source: BenchmarkSource, config: str, split: str, stamp: tuple[int, int] | None) -> RawTable:
    origin = f"config {config}, split {split} of {source.describe()}"
    if source.path is not None:
        files = snapshot_data_files(Path(source.path)).get(config, {}).get(split)
        if files:  # name the data files themselves, so an error points at what to fix
            origin = f"{', '.join(str(f) for f in files)} ({origin})"
        columns = _read_files_fast(files) if files else None
        if columns is not None:
            return RawTable(origin, columns)
    return RawTable(origin, _load_with_datasets(source, config, split))


def _read_files_fast(files: Sequence[Path]) -> dict[str, tuple[Any, ...]] | None:
    """Columns of JSON-lines or parquet data files, or None for formats left to ``datasets``."""
    if not all(f.suffix in (".jsonl", ".parquet") for f in files):
        return None
    columns: dict[str, list[Any]] = {}
    n_rows = 0
    for path in files:
        part = _read_parquet(path) if path.suffix == ".parquet" else _read_jsonl(path)
        rows = len(next(iter(part.values()), []))
        for name in dict.fromkeys([*columns, *part]):
            # A column missing from some file reads as None there, as ``datasets`` would.
            columns.setdefault(name, [None] * n_rows).extend(part.get(name, [None] * rows))
        n_rows += rows
    return {name: tuple(values) for name, values in columns.items()}


def _read_parquet(path: Path) -> dict[str, list[Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pydict()


def _read_jsonl(path: Path) -> dict[str, list[Any]]:
    # The json module keeps every value's type exactly (no inference): an int id stays an int
    # and is then reported, a "007" id stays a string. Split on "\n" only: str.splitlines would
    # also split on U+2028 and friends, which JSON leaves unescaped inside strings.
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    names = list(dict.fromkeys(name for record in records for name in record))
    return {name: [record.get(name) for record in records] for name in names}


@contextlib.contextmanager
def _quiet_progress(enabled: bool) -> Iterator[None]:
    """Silence ``datasets``' per-file progress bars (restoring the caller's setting)."""
    import datasets

    was_disabled = datasets.are_progress_bars_disabled()
    if enabled and not was_disabled:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if enabled and not was_disabled:
            datasets.enable_progress_bars()


def _load_with_datasets(source: BenchmarkSource, config: str, split: str) -> dict[str, tuple[Any, ...]]:
    import datasets

    if source.path is not None:
        with _quiet_progress(True):
            table = datasets.load_dataset(source.path, name=config, split=split, cache_dir=source.cache_dir)
        return {name: tuple(values) for name, values in table.to_dict().items()}
    try:
        table = datasets.load_dataset(source.repo_id, name=config, split=split, revision=source.revision, cache_dir=source.cache_dir)
    except ConnectionError as err:  # datasets and huggingface_hub both raise subclasses of it offline
        raise hub_unavailable(source, err) from err
    return {name: tuple(values) for name, values in table.to_dict().items()}


def hub_unavailable(source: BenchmarkSource, cause: BaseException) -> BenchmarkUnavailableError:
    revision = source.revision or "main"
    return BenchmarkUnavailableError(
        f"cannot load dataset {source.repo_id} at revision {revision}: the Hugging Face hub is unreachable "
        f"or HF_HUB_OFFLINE is set, and the dataset is not in the local cache ({type(cause).__name__}: {cause}). "
        f"Download a snapshot on a machine with hub access, e.g. `hf download {source.repo_id} --repo-type dataset "
        f"--revision {revision} --local-dir /local/snapshot`, copy it here and pass benchmark.path=/local/snapshot"
    )


# --------------------------------------------------------------------------- local snapshots


def snapshot_configs(path: Path) -> tuple[str, ...]:
    return tuple(snapshot_data_files(path))


def snapshot_data_files(path: Path) -> dict[str, dict[str, tuple[Path, ...]]]:
    """config -> split -> data files, from the ``configs:`` front matter of the README."""
    readme = path / "README.md"
    if not path.is_dir():
        raise BenchmarkError(f"local benchmark snapshot {path} is not a folder")
    if not readme.is_file():
        raise BenchmarkError(f"local benchmark snapshot {path} has no README.md (its `configs:` list the data files)")
    stat = readme.stat()
    return _snapshot_data_files(path.resolve(), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _snapshot_data_files(path: Path, _mtime_ns: int, _size: int) -> dict[str, dict[str, tuple[Path, ...]]]:
    from huggingface_hub import DatasetCard

    metadata = DatasetCard.load(path / "README.md").data.to_dict()
    configs = metadata.get("configs") or []
    result: dict[str, dict[str, tuple[Path, ...]]] = {}
    for entry in configs:
        name = entry.get("config_name", "default")
        result[name] = {split: _glob(path, patterns) for split, patterns in _split_patterns(entry.get("data_files")).items()}
    return result


def _split_patterns(data_files: Any) -> dict[str, list[str]]:
    """Normalise the README's data_files forms (str, list of str, list of {split, path})."""
    if data_files is None:
        return {}
    if isinstance(data_files, str):
        return {"train": [data_files]}
    if isinstance(data_files, Mapping):
        return {split: [p] if isinstance(p, str) else list(p) for split, p in data_files.items()}
    patterns: dict[str, list[str]] = {}
    for item in data_files:
        if isinstance(item, str):
            patterns.setdefault("train", []).append(item)
        else:
            paths = item["path"]
            patterns.setdefault(item.get("split", "train"), []).extend([paths] if isinstance(paths, str) else paths)
    return patterns


def _glob(root: Path, patterns: Sequence[str]) -> tuple[Path, ...]:
    files: list[Path] = []
    for pattern in patterns:
        files.extend(sorted(p for p in root.glob(pattern) if p.is_file()))
    return tuple(files)


# --------------------------------------------------------------------------- validation


def _require_columns(table: RawTable, required: Sequence[str], where: str) -> None:
    missing = [name for name in required if name not in table.columns]
    if missing:
        raise BenchmarkError(f"{where}: {table.origin} lacks columns {missing} (has {sorted(table.columns)})")


def _string_ids(table: RawTable, column: str, where: str) -> tuple[str, ...]:
    values = table.columns[column]
    bad = [v for v in values if not isinstance(v, str)]
    if bad:
        raise BenchmarkError(
            f"{where}: column {column!r} of {table.origin} must hold strings; {len(bad)} of {len(values)} "
            f"values are not (first: {bad[:_SHOW_IDS]!r}, types {sorted({type(v).__name__ for v in bad})})"
        )
    return values


def _duplicates(values: Sequence[str]) -> list[str]:
    return [value for value, count in Counter(values).items() if count > 1]


def text_collection(table: RawTable, where: str) -> tuple[TextCollection, frozenset[str]]:
    """Validated ids and non-empty texts, plus every id the table declares (empty texts included)."""
    _require_columns(table, ("_id", "text"), where)
    ids = _string_ids(table, "_id", where)
    duplicated = _duplicates(ids)
    if duplicated:
        raise BenchmarkError(f"{where}: {len(duplicated)} duplicate ids in {table.origin} (first: {duplicated[:_SHOW_IDS]})")
    texts = table.columns["text"]
    not_text = [i for i, t in zip(ids, texts) if t is not None and not isinstance(t, str)]
    if not_text:
        raise BenchmarkError(f"{where}: {len(not_text)} texts in {table.origin} are not strings (ids {not_text[:_SHOW_IDS]})")
    kept = [(i, t) for i, t in zip(ids, texts) if t is not None and t.strip()]
    collection = TextCollection(
        ids=tuple(i for i, _ in kept), texts=tuple(t for _, t in kept), dropped_empty=len(ids) - len(kept)
    )
    return collection, frozenset(ids)


def _score(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def judgments(table: RawTable, where: str, query_ids: frozenset[str], doc_ids: frozenset[str]) -> dict[str, dict[str, int]]:
    """Validated qrels as query id -> doc id -> score (score 1 where the column is absent)."""
    _require_columns(table, ("query-id", "corpus-id"), where)
    query_column = _string_ids(table, "query-id", where)
    doc_column = _string_ids(table, "corpus-id", where)
    raw_scores = table.columns.get("score", (1,) * len(query_column))
    scores = [_score(s) for s in raw_scores]
    bad = [s for s, parsed in zip(raw_scores, scores) if parsed is None]
    if bad:
        raise BenchmarkError(f"{where}: {len(bad)} scores in {table.origin} are not integers (first: {bad[:_SHOW_IDS]!r})")
    for values, known, role in ((query_column, query_ids, "query"), (doc_column, doc_ids, "document")):
        unknown = list(dict.fromkeys(v for v in values if v not in known))
        if unknown:
            raise BenchmarkError(
                f"{where}: {table.origin} names {len(unknown)} unknown {role} ids "
                f"(first: {unknown[:_SHOW_IDS]}; the {role} table has {len(known)} ids)"
            )
    qrels: dict[str, dict[str, int]] = {}
    conflicts: list[tuple[str, str]] = []
    repeated = 0
    for query_id, doc_id, score in zip(query_column, doc_column, scores):
        judged = qrels.setdefault(query_id, {})
        if doc_id in judged:
            repeated += 1
            if judged[doc_id] != score:
                conflicts.append((query_id, doc_id))
        judged[doc_id] = score
    if conflicts:
        raise BenchmarkError(
            f"{where}: {table.origin} judges {len(conflicts)} (query, document) pairs twice with different scores "
            f"(first: {conflicts[:_SHOW_IDS]})"
        )
    if repeated:
        logger.warning("%s: %d repeated identical judgments in %s collapsed", where, repeated, table.origin)
    return qrels


def build_subset(
    subset: str, doc_language: str, query_language: str,
    corpus_table: RawTable, queries_table: RawTable, qrels_table: RawTable,
    source: BenchmarkSource | None = None, revision: str | None = None,
) -> SubsetData:
    """Validate the three tables and apply the drop rules (empty texts, queries without a relevant document)."""
    cell = f"{subset} (documents {doc_language}, queries {query_language})"
    corpus, all_doc_ids = text_collection(corpus_table, cell)
    queries, all_query_ids = text_collection(queries_table, cell)
    qrels = judgments(qrels_table, cell, all_query_ids, all_doc_ids)
    kept_docs = set(corpus.ids)
    kept_qrels: dict[str, dict[str, int]] = {}
    for query_id in queries.ids:
        judged = {doc: score for doc, score in qrels.get(query_id, {}).items() if doc in kept_docs}
        if any(score > 0 for score in judged.values()):
            kept_qrels[query_id] = judged
    kept_queries = [(i, t) for i, t in zip(queries.ids, queries.texts) if i in kept_qrels]
    return SubsetData(
        subset=subset,
        language=doc_language,
        corpus=corpus,
        queries=TextCollection(
            ids=tuple(i for i, _ in kept_queries), texts=tuple(t for _, t in kept_queries), dropped_empty=queries.dropped_empty
        ),
        qrels=kept_qrels,
        queries_without_relevant=len(queries) - len(kept_queries),
        query_language=query_language,
        source=source,
        revision=revision,
    )


# --------------------------------------------------------------------------- public entry points


def _check_choice(source: BenchmarkSource, layout: Layout, subset: str, languages: Sequence[str]) -> None:
    subsets, valid_languages = layout.choices(source)
    where = source.describe()
    if subset not in subsets:
        raise BenchmarkError(f"unknown subset {subset!r} in {where} (layout {layout.name}); valid subsets: {list(subsets)}")
    unknown = [lang for lang in dict.fromkeys(languages) if lang not in valid_languages]
    if unknown:
        raise BenchmarkError(f"unknown language {unknown} in {where} (layout {layout.name}); valid languages: {list(valid_languages)}")


def load_subset(source: BenchmarkSource, subset: str, language: str, query_language: str | None = None) -> SubsetData:
    """Load one subset with its corpus in ``language`` and queries in ``query_language``
    (default: the same language; a different one gives a cross-lingual matrix cell)."""
    layout = get_layout(source.layout)
    query_language = query_language or language
    _check_choice(source, layout, subset, (language, query_language))
    corpus_table, queries_table, qrels_table = layout.read(source, subset, language, query_language)
    return build_subset(
        subset, language, query_language, corpus_table, queries_table, qrels_table,
        source=source, revision=dataset_revision(source),
    )


def load_queries(source: BenchmarkSource, subset: str, language: str) -> TextCollection:
    """Every non-empty query of a subset in one language, judged or not: the set a model encodes once
    and every cell of that query language draws from (cells then keep the queries they can judge)."""
    layout = get_layout(source.layout)
    _check_choice(source, layout, subset, (language,))
    _, queries_table, _ = layout.read(source, subset, language, language)
    return text_collection(queries_table, f"{subset} (queries {language})")[0]


def dataset_revision(source: BenchmarkSource) -> str | None:
    """The commit a hub source resolves to (None for a local snapshot).

    A pinned 40-hex revision is returned as is; a branch or tag is resolved with the hub
    API, or, when the hub cannot be reached, from the local hub cache.
    """
    if source.path is not None:
        return None
    if source.revision is not None and _COMMIT.fullmatch(source.revision):
        return source.revision
    return _resolve_revision(source.repo_id, source.revision)


def _network_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning "could not reach the hub" (httpx's are not ConnectionErrors)."""
    errors: list[type[BaseException]] = [ConnectionError]
    with contextlib.suppress(ImportError):
        import httpx

        errors.append(httpx.TransportError)
    return tuple(errors)


@functools.lru_cache(maxsize=16)
def _resolve_revision(repo_id: str, revision: str | None) -> str:
    from huggingface_hub import HfApi, try_to_load_from_cache

    source = BenchmarkSource(repo_id=repo_id, revision=revision)
    try:
        return HfApi().dataset_info(repo_id, revision=revision).sha
    except _network_errors() as err:
        cached = try_to_load_from_cache(repo_id, "README.md", revision=revision or "main", repo_type="dataset")
        if isinstance(cached, str):
            return Path(cached).parent.name  # .../snapshots/<commit>/README.md
        raise hub_unavailable(source, err) from err
