"""One evaluation: encode every (model, subset, language, role) once, then score every matrix cell.

The flow: benchmark loader -> encoder -> embedding store -> exact MaxSim
top-k per cell -> pytrec_eval -> long results table. Phase 1 makes sure every needed
embedding set is in the store (encoding only what is missing, or only this shard's part);
phase 2 reads them back, one document-language corpus at a time, so memory stays bounded.
A :class:`~nanobeir_ext.protocol.Ranker` (BM25) takes the same two phases with its own cache:
phase 1 builds the missing indexes of (subset, document language) under ``<cache_dir>/indexes``,
phase 2 loads each once and searches it with every query language; its runs then go through
the same TREC files, metrics and results table.
What is evaluated (models, cells, work units, shards) is planned in ``plan.py``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import pandas as pd
from tqdm.auto import tqdm

from nanobeir_ext.data import CellCounts, Qrels, SubsetData, TextCollection, load_languages
from nanobeir_ext.embeddings.ragged import RaggedEmbeddings
from nanobeir_ext.embeddings.space import SpaceForecast
from nanobeir_ext.embeddings.store import EmbeddingStore, store_key
from nanobeir_ext.evaluation.metrics import QrelsEvaluator
from nanobeir_ext.evaluation.plan import EvaluationPlan, ModelSpec, WorkUnit, shard_units, work_units
from nanobeir_ext.evaluation.results import PER_QUERY_COLUMNS, results_from_per_query, sort_long
from nanobeir_ext.languages import Cell
from nanobeir_ext.protocol import PLURAL, Encoder, ModelLabel, Ranker, Role, SearchIndex, slug
from nanobeir_ext.retrieval.maxsim import maxsim_topk
from nanobeir_ext.retrieval.trec import Run, write_trec_run

log = logging.getLogger(__name__)

CellKey = tuple[str, str, str]  # (subset, doc_lang, query_lang)


@dataclass
class EncodingLog:
    encoded: list[WorkUnit] = field(default_factory=list)
    reused: list[WorkUnit] = field(default_factory=list)
    truncated: dict[WorkUnit, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class BenchmarkData:
    """Monolingual subsets (corpora, notes) and every query set, by (subset, language)."""

    subsets: dict[tuple[str, str], SubsetData]
    queries: dict[tuple[str, str], TextCollection]
    # Judgments of the queries evaluated in each cell (the document language's judgments, the
    # query language's queries, under the plan's data rules), derived once per cell.
    cell_qrels: dict[CellKey, Qrels]
    cell_counts: dict[CellKey, CellCounts] = field(default_factory=dict)  # what the data rules did per cell
    losses: tuple[str, ...] = ()  # languages left without documents, queries or judgments: warnings

    def collection(self, subset: str, language: str, role: Role) -> TextCollection:
        return self.subsets[(subset, language)].corpus if role == "document" else self.queries[(subset, language)]


@dataclass(frozen=True)
class EvaluationOutcome:
    per_query: pd.DataFrame
    results: pd.DataFrame
    encoding: EncodingLog
    models: tuple[ModelLabel, ...]
    model_identities: dict[str, dict]
    data: BenchmarkData
    excluded_queries: dict[CellKey, int]  # queries not evaluated per cell
    complete: bool  # False for a shard run, which only encodes


EncoderFactory = Callable[[ModelSpec, EvaluationPlan], "Encoder | Ranker"]
INDEX_DIR = "indexes"  # rankers' cache, beside the embedding store: <cache_dir>/indexes
CellSearch = Callable[[str], Run]  # query language -> run of that language's queries over one corpus


def load_data(plan: EvaluationPlan) -> BenchmarkData:
    """Everything the plan reads from the benchmark: each corpus and query set is validated once
    per run, and each cell's judgments are derived from what is loaded."""
    languages = tuple(dict.fromkeys(plan.doc_langs + plan.query_langs))
    subsets, queries, cell_qrels, cell_counts, losses = {}, {}, {}, {}, []
    for subset in tqdm(plan.subsets, desc="load benchmark", unit="subset", disable=not plan.progress):
        loaded = load_languages(plan.source, subset, languages, plan.data_rules)
        losses += loaded.losses()
        for lang in languages:
            subsets[(subset, lang)] = loaded.cell(lang)
            queries[(subset, lang)] = loaded.languages[lang].queries
        for cell in plan.cells:
            key = (subset, cell.doc_lang, cell.query_lang)
            cell_qrels[key], cell_counts[key] = loaded.cell_view(cell.doc_lang, cell.query_lang)
    empty_cells = [key for key, qrels in cell_qrels.items() if not qrels]
    if empty_cells:  # (languages that lost everything were logged by the loader)
        losses.append(f"{len(empty_cells)} cells (subset documents-queries) have no query to evaluate and are "
                      f"missing from every table: {', '.join(f'{s} {d}-{q}' for s, d, q in empty_cells[:10])}"
                      + (" ..." if len(empty_cells) > 10 else ""))
        log.warning("DATA LOSS: %s", losses[-1])
    return BenchmarkData(subsets=subsets, queries=queries, cell_qrels=cell_qrels, cell_counts=cell_counts,
                         losses=tuple(losses))


def store_keys(units: Iterable[WorkUnit], identity: Mapping, data: BenchmarkData) -> dict[WorkUnit, str]:
    """The store key of each unit (a hash over every id and text of its collection), computed once."""
    keys = {}
    for unit in units:
        collection = data.collection(unit.subset, unit.language, unit.role)
        keys[unit] = store_key(identity, unit.role, collection.ids, collection.texts)
    return keys


def ensure_encoded(units: Iterable[WorkUnit], encoder: Encoder, keys: Mapping[WorkUnit, str],
                   data: BenchmarkData, store: EmbeddingStore, progress: bool) -> EncodingLog:
    """Encode every unit missing from the store; reuse the rest. Each finished unit is stored at once,
    so a killed run loses at most the unit in flight."""
    record = EncodingLog()
    start = time.perf_counter()
    units = list(units)
    chars = {unit: sum(map(len, data.collection(unit.subset, unit.language, unit.role).texts)) for unit in units}
    forecast = SpaceForecast(store.root, remaining_chars={})
    for unit in units:  # a stat per set: what is not stored yet will be written
        if not store.contains(keys[unit]):
            forecast.remaining_chars[unit.role] = forecast.remaining_chars.get(unit.role, 0) + chars[unit]
    for unit in tqdm(units, desc="encoder passes", unit="pass", disable=not progress or not units):
        collection = data.collection(unit.subset, unit.language, unit.role)
        key = keys[unit]
        if not len(collection):  # nothing to encode (a language that lost every text): nothing to store
            continue
        # get() verifies the checksum (and deletes a damaged entry), so damage is re-encoded here.
        if store.get(key) is not None:
            record.reused.append(unit)
            record.truncated[unit] = int(store.metadata(key).get("truncated", 0))
            continue
        truncated, written = _encode_and_store(unit, collection, encoder, key, store, progress)
        shortage = forecast.record(unit.role, chars[unit], written)
        if shortage:
            log.warning(shortage)
        record.encoded.append(unit)
        record.truncated[unit] = truncated
    record.seconds = time.perf_counter() - start
    if record.reused:
        log.info("reused %d stored embedding sets, encoded %d", len(record.reused), len(record.encoded))
    return record


def _encode_and_store(unit: WorkUnit, collection: TextCollection, encoder: Encoder, key: str, store: EmbeddingStore,
                      progress: bool) -> tuple[int, int]:
    """Encode one set and store it; returns (texts truncated, bytes written). Its vectors (the encoder's
    list and the packed copy) are freed on return, not held through the next set's encoding."""
    output = encoder.encode(list(collection.texts), unit.role, progress=progress, desc=unit.describe())
    embeddings = RaggedEmbeddings.from_list(collection.ids, output.embeddings)
    entry = store.put(key, embeddings, {"unit": unit.describe(), "truncated": str(output.truncated),
                                        "tokens": str(output.tokens)})
    return output.truncated, entry.path.stat().st_size


def ensure_indexed(units: Iterable[WorkUnit], ranker: Ranker, data: BenchmarkData, index_dir: Path,
                   progress: bool) -> EncodingLog:
    """Phase 1 of a ranker: build every (subset, document language) index missing from its cache;
    reuse the rest. Each index is saved when built, so a killed run loses at most the one in flight."""
    record = EncodingLog()
    start = time.perf_counter()
    units = list(units)
    for unit in tqdm(units, desc="index builds", unit="index", disable=not progress or not units):
        collection = data.collection(unit.subset, unit.language, unit.role)
        if not len(collection):  # a language that lost every document: nothing to index
            continue
        args = (index_dir, unit.subset, unit.language, collection.ids, collection.texts)
        if ranker.is_indexed(*args):
            record.reused.append(unit)
            continue
        ranker.index(*args)
        record.encoded.append(unit)
    record.seconds = time.perf_counter() - start
    if record.reused:
        log.info("reused %d cached indexes, built %d", len(record.reused), len(record.encoded))
    return record


def cell_evaluators(plan: EvaluationPlan, data: BenchmarkData) -> dict[CellKey, QrelsEvaluator]:
    """One evaluator per (subset, cell), its judgments bound once and shared by every model."""
    return {key: QrelsEvaluator(qrels, plan.metrics) for key, qrels in data.cell_qrels.items()}


def retrieve_and_score(plan: EvaluationPlan, spec: ModelSpec, keys: Mapping[WorkUnit, str], data: BenchmarkData,
                       evaluators: Mapping[CellKey, QrelsEvaluator], store: EmbeddingStore,
                       runs_dir: Path | None) -> tuple[list[tuple], dict[CellKey, int]]:
    """Phase 2 for one encoder: MaxSim top-k and metrics for every subset and cell."""

    def load(subset: str, language: str, role: Role) -> RaggedEmbeddings | None:
        if not len(data.collection(subset, language, role)):
            return None  # a language that lost every text: its cells retrieve nothing
        key = keys[WorkUnit(spec.key, subset, language, role)]
        # Phase 1 of this run verified or wrote every entry: its checksum is not computed twice.
        embeddings = store.get(key, verify=False)
        if embeddings is None:  # vanished (or its header was damaged) since phase 1
            raise RuntimeError(f"embedding set {subset} {language} {PLURAL[role]} (key {key[:12]}) is missing or "
                               "corrupt; run again to re-encode it")
        return embeddings

    def searcher(subset: str, doc_lang: str) -> CellSearch:
        # Query sets are small: read each once per subset, not once per cell.
        if subset not in query_sets:
            query_sets.clear()
            query_sets[subset] = {lang: load(subset, lang, "query") for lang in plan.query_langs}
        queries_by_lang, documents = query_sets[subset], load(subset, doc_lang, "document")

        def search(query_lang: str) -> Run:
            queries = queries_by_lang[query_lang]
            return ({} if queries is None or documents is None else
                    maxsim_topk(queries, documents, plan.k, device=plan.device, chunk_tokens=plan.chunk_tokens,
                                padding=plan.padding))
        return search

    query_sets: dict[str, dict[str, RaggedEmbeddings | None]] = {}
    return score_cells(plan, spec, data, evaluators, searcher, runs_dir, desc=f"MaxSim + metrics {spec.name}")


def rank_and_score(plan: EvaluationPlan, spec: ModelSpec, ranker: Ranker, data: BenchmarkData,
                   evaluators: Mapping[CellKey, QrelsEvaluator], index_dir: Path,
                   runs_dir: Path | None) -> tuple[list[tuple], dict[CellKey, int]]:
    """Phase 2 for one ranker: each (subset, document language) index loaded once and searched
    with every query language's queries; metrics as for encoders."""

    def searcher(subset: str, doc_lang: str) -> CellSearch:
        corpus = data.collection(subset, doc_lang, "document")
        index: SearchIndex | None = (ranker.index(index_dir, subset, doc_lang, corpus.ids, corpus.texts)
                                     if len(corpus) else None)  # a language that lost every document

        def search(query_lang: str) -> Run:
            queries = data.collection(subset, query_lang, "query")
            if index is None or not len(queries):
                return {}
            return index.search(list(queries.ids), list(queries.texts), plan.k)
        return search

    return score_cells(plan, spec, data, evaluators, searcher, runs_dir, desc=f"{spec.name} search + metrics")


def score_cells(plan: EvaluationPlan, spec: ModelSpec, data: BenchmarkData,
                evaluators: Mapping[CellKey, QrelsEvaluator], searcher: Callable[[str, str], CellSearch],
                runs_dir: Path | None, desc: str) -> tuple[list[tuple], dict[CellKey, int]]:
    """Every subset and cell of one model: ``searcher(subset, doc_lang)`` prepares a corpus once
    (one document language at a time, so memory stays bounded), its result ranks each query
    language; the runs are written and scored the same way for every kind of retriever."""
    rows: list[tuple] = []
    excluded: dict[CellKey, int] = {}
    cells_by_doc: dict[str, list[Cell]] = {}
    for cell in plan.cells:
        cells_by_doc.setdefault(cell.doc_lang, []).append(cell)
    bar = tqdm(total=len(plan.subsets) * len(plan.cells), desc=desc, disable=not plan.progress)
    for subset in plan.subsets:
        for doc_lang, cells in cells_by_doc.items():
            search = searcher(subset, doc_lang)
            for cell in cells:
                key = (subset, cell.doc_lang, cell.query_lang)
                qrels = data.cell_qrels[key]
                if not qrels:  # no query to evaluate here (a warning said so when the data was loaded)
                    bar.update()
                    continue
                run: Run = search(cell.query_lang)
                if runs_dir is not None:
                    write_trec_run(run, runs_dir / slug(spec.name) / f"{cell.doc_lang}-{cell.query_lang}" / f"{subset}.trec",
                                   tag=slug(spec.name))
                excluded[key] = len(data.queries[(subset, cell.query_lang)]) - len(qrels)
                for m in evaluators[key].evaluate(_restrict(run, qrels)):
                    rows.append((spec.name, plan.benchmark, subset, cell.doc_lang, cell.query_lang, m.query_id, m.metric, m.value))
                bar.update()
    bar.close()
    return rows, excluded


def _check_shape(spec: ModelSpec, retriever: object) -> None:
    """The loaded model must be the shape its kind promises (plan.work_units planned for it)."""
    expected = Ranker if spec.ranks_directly else Encoder
    if not isinstance(retriever, expected):
        raise TypeError(f"models.{spec.key} (kind {spec.kind}) loaded a {type(retriever).__name__}, which is not "
                        f"a {expected.__name__} (nanobeir_ext/protocol.py)")


def _restrict(run: Run, qrels: Mapping[str, Mapping[str, int]]) -> Run:
    return {qid: docs for qid, docs in run.items() if qid in qrels}


def run_evaluation(plan: EvaluationPlan, encoder_factory: EncoderFactory, runs_dir: Path | None = None) -> EvaluationOutcome:
    """Run the plan. With ``plan.shard`` set, only that shard's encoder work is done (results are empty)."""
    store = EmbeddingStore(Path(plan.cache_dir) / "store")
    data = load_data(plan)
    units = shard_units(work_units(plan), plan.shard)  # every unit, unless this run is a shard
    evaluators = cell_evaluators(plan, data) if plan.shard is None else {}
    encoding = EncodingLog()
    labels: list[ModelLabel] = []
    identities: dict[str, dict] = {}
    rows: list[tuple] = []
    excluded: dict[CellKey, int] = {}
    index_dir = Path(plan.cache_dir) / INDEX_DIR
    for spec in plan.models:
        retriever = encoder_factory(spec, plan)
        _check_shape(spec, retriever)
        identities[spec.key] = retriever.cache_identity()
        labels.append(retriever.info)
        model_units = [u for u in units if u.model_key == spec.key]
        if spec.ranks_directly:
            part = ensure_indexed(model_units, retriever, data, index_dir, plan.progress)
        else:
            keys = store_keys(model_units, identities[spec.key], data)  # phase 1 and phase 2 share them
            part = ensure_encoded(model_units, retriever, keys, data, store, plan.progress)
            retriever = None  # free the weights before scoring
        encoding.encoded += part.encoded
        encoding.reused += part.reused
        encoding.truncated.update(part.truncated)
        encoding.seconds += part.seconds
        if plan.shard is None:
            model_rows, model_excluded = (
                rank_and_score(plan, spec, retriever, data, evaluators, index_dir, runs_dir) if spec.ranks_directly
                else retrieve_and_score(plan, spec, keys, data, evaluators, store, runs_dir))
            rows += model_rows
            excluded.update(model_excluded)
    per_query = sort_long(pd.DataFrame(rows, columns=list(PER_QUERY_COLUMNS)))
    results = results_from_per_query(per_query) if rows else pd.DataFrame(columns=per_query.columns.drop("query_id"))
    return EvaluationOutcome(per_query=per_query, results=results, encoding=encoding, models=tuple(labels),
                             model_identities=identities, data=data, excluded_queries=excluded,
                             complete=plan.shard is None)


# The columns of data_counts, from CellCounts' fields.
DATA_COUNT_COLUMNS: dict[str, str] = {
    "evaluated_queries": "queries evaluated",
    "judgments": "judgments evaluated",
    "judgments_on_empty_documents": "judgments on empty docs",
    "judgments_on_absent_documents": "judgments on absent docs",
    "queries_only_empty_relevant": "queries with only empty relevant docs",
    "empty_queries": "empty judged queries",
    "judgments_of_unknown_queries": "judgments of unknown queries",
}


def data_counts(data: BenchmarkData) -> pd.DataFrame:
    """What the data rules did, one row per (subset, cell) they touched, in plan order."""
    rows = [{"subset": subset, "doc_lang": doc, "query_lang": query,
             **{label: getattr(counts, name) for name, label in DATA_COUNT_COLUMNS.items()}}
            for (subset, doc, query), counts in data.cell_counts.items() if counts.touched()]
    return pd.DataFrame(rows, columns=["subset", "doc_lang", "query_lang", *DATA_COUNT_COLUMNS.values()])


_RULE_EFFECT = {
    "pylate": "empty texts not encoded; judgments on empty or absent documents kept (IDCG, recall; never retrieved); "
              "queries whose only relevant documents are empty evaluated (score 0); empty queries not evaluated "
              "(sentence-transformers 5.3 / PyLate NanoBEIREvaluator)",
    "mteb": "every text encoded, empty ones included; every judgment kept (MTEB)",
    "drop_judgments": "empty or whitespace-only texts not encoded and their judgments dropped; queries left "
                      "without a relevant document not evaluated",
}


def data_notes(outcome: EvaluationOutcome) -> list[str]:
    """Human-readable counts of what the data rules and the encoder dropped, kept or cut."""
    data = outcome.data
    counts = list(data.cell_counts.values())
    rule = counts[0].rule if counts else None
    notes = []
    if rule is not None:
        touched = [c for c in counts if c.touched()]
        notes.append(f"empty texts: rule `{rule}` ({_RULE_EFFECT[rule]}); it touched {len(touched)} of {len(counts)} "
                     f"(subset, cell) pairs: {sum(c.judgments_on_empty_documents for c in counts)} judgments on empty "
                     f"documents, {sum(c.judgments_on_absent_documents for c in counts)} on absent documents, "
                     f"{sum(c.queries_only_empty_relevant for c in counts)} queries whose only relevant documents are "
                     f"empty or absent, {sum(c.empty_queries for c in counts)} empty judged queries"
                     + (" (per subset and cell: the table below)" if touched else ""))
    for (subset, lang), d in sorted(data.subsets.items()):
        empty_docs, empty_queries = d.corpus.dropped_empty, d.queries.dropped_empty
        if empty_docs or empty_queries:
            notes.append(f"{subset} {lang}: {empty_docs} empty documents and {empty_queries} empty queries not encoded")
        if d.queries_without_relevant:
            notes.append(f"{subset} {lang}: {d.queries_without_relevant} queries without a relevant document not evaluated")
    short = {k: v for k, v in outcome.excluded_queries.items() if v}
    if short:
        notes.append(f"{len(short)} cells (subset, doc, query language) leave out queries without a relevant document "
                     f"in the document language ({sum(short.values())} query evaluations in all)")
    truncated: dict[tuple[str, str], int] = {}
    for unit, n in outcome.encoding.truncated.items():
        truncated[(unit.model_key, unit.role)] = truncated.get((unit.model_key, unit.role), 0) + n
    for (model, role), n in sorted(truncated.items()):
        if n:
            notes.append(f"{model}: {n} {role} texts longer than the model's {role} length were truncated")
    return notes
