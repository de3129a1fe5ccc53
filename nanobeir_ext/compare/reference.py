"""Published reference tables (``reports/reference/``) in the long format of run results.

``manifest.json`` in the reference folder lists each data file with its model, metric,
printing precision, source and conditions. Three kinds of table:

- ``matrix``: a full doc-language x query-language table; its cells become rows with
  ``subset == "mean"`` (the card's cells average the subsets);
- ``subsets``: one language's per-subset values (``subset,<metric>``), rows with
  ``doc_lang == query_lang == language``;
- ``diagonal``: same-language values only, for any languages (``lang,subset,<metric>``);
  ``subset`` is a NanoBEIR subset or ``mean`` when the source prints a per-language mean.

A reference need not cover the whole matrix: :meth:`Reference.cells` returns only the cells a
source publishes, so a comparison can say "not published" instead of inventing a value. The
printed row/column averages are kept apart from the cells so that they can be checked
against the cells instead of trusted.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nanobeir_ext.languages import KNOWN_LANGUAGES, MATRIX_LANGUAGES
from nanobeir_ext.evaluation.results import MEAN_SUBSET, RESULT_COLUMNS, sort_long

MANIFEST = "manifest.json"
TABLE_KINDS: tuple[str, ...] = ("matrix", "subsets", "diagonal")
CELL_KINDS: tuple[str, ...] = ("matrix", "diagonal")  # kinds that give matrix cells
# Row AVG: one document language averaged over the query languages; column AVG: the reverse.
AVERAGE_AXES: tuple[str, ...] = ("doc", "query")


@dataclass(frozen=True)
class Source:
    key: str
    title: str
    url: str
    published: str
    recorded: str
    notes: str = ""
    also_in: str = ""
    dataset: str = ""
    conditions: str = ""  # how the source measured: data copy, metric convention, retrieval

    def cite(self) -> str:
        return (f"{self.title}, <{self.url}> (published {self.published}, recorded {self.recorded})"
                + (f". Conditions: {self.conditions}" if self.conditions else ""))


@dataclass(frozen=True)
class ReferenceTable:
    file: str
    kind: str  # one of TABLE_KINDS
    model: str
    benchmark: str
    metric: str
    decimals: int  # printing precision of the values
    source: Source
    language: str | None = None  # subsets tables: the language of queries and documents
    averages_file: str | None = None  # matrix tables: printed row/column AVG
    averages_decimals: int | None = None  # of the printed percentages


@dataclass(frozen=True)
class Reference:
    """Every published table: long results plus the printed averages, as separate frames."""

    directory: Path
    tables: tuple[ReferenceTable, ...]
    results: pd.DataFrame  # RESULT_COLUMNS
    printed_averages: pd.DataFrame  # model, benchmark, metric, axis, lang, printed_percent

    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.model for t in self.tables))

    def table(self, model: str, kind: str) -> ReferenceTable | None:
        return next((t for t in self.tables if t.model == model and t.kind == kind), None)

    def cell_table(self, model: str) -> ReferenceTable | None:
        """The table that gives ``model``'s matrix cells (a full matrix or a diagonal), if any."""
        return next((t for t in self.tables if t.model == model and t.kind in CELL_KINDS), None)

    def cells(self, model: str) -> pd.DataFrame:
        """The published cells only: doc_lang, query_lang, published, from_subsets.

        A diagonal table's cell is its printed per-language mean when the source prints one,
        else the unweighted mean of its published per-subset values (``from_subsets`` True),
        the same convention as the run's ``mean`` rows. Cells the source does not publish are
        absent, never zero.
        """
        columns = ["doc_lang", "query_lang", "published", "from_subsets"]
        spec = self.cell_table(model)
        if spec is None:
            return pd.DataFrame(columns=columns)
        rows = self.results[(self.results["model"] == model) & (self.results["benchmark"] == spec.benchmark)
                            & (self.results["metric"] == spec.metric)]
        if spec.kind == "diagonal":
            rows = rows[rows["doc_lang"] == rows["query_lang"]]
        out = []
        for (doc, query), part in rows.groupby(["doc_lang", "query_lang"], sort=False):
            mean = part[part["subset"] == MEAN_SUBSET]
            if len(mean):
                out.append((doc, query, float(mean["value"].iloc[0]), False))
            elif spec.kind == "diagonal":
                out.append((doc, query, float(part["value"].mean()), True))
        frame = pd.DataFrame(out, columns=columns)
        order = {lang: i for i, lang in enumerate(KNOWN_LANGUAGES)}
        return frame.sort_values(["doc_lang", "query_lang"], key=lambda c: c.map(order), kind="mergesort",
                                 ignore_index=True)

    def matrix(self, model: str) -> pd.DataFrame:
        """Rows = document language, columns = query language, as printed."""
        spec = self.table(model, "matrix")
        if spec is None:
            raise KeyError(f"no published matrix for model {model!r}; models with one: "
                           f"{[t.model for t in self.tables if t.kind == 'matrix']}")
        rows = self.results[(self.results["model"] == model) & (self.results["benchmark"] == spec.benchmark)
                            & (self.results["subset"] == MEAN_SUBSET) & (self.results["metric"] == spec.metric)]
        table = rows.pivot(index="doc_lang", columns="query_lang", values="value")
        table = table.reindex(index=list(MATRIX_LANGUAGES), columns=list(MATRIX_LANGUAGES))
        table.index.name, table.columns.name = "doc_lang", "query_lang"
        return table


def load_reference(directory: Path) -> Reference:
    """Read ``manifest.json`` and every table it lists; raise on any malformed value."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"reference manifest {manifest_path} not found (expected the folder reports/reference)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    sources = {key: Source(key=key, **fields) for key, fields in manifest.get("sources", {}).items()}
    tables, frames, averages = [], [], []
    for entry in manifest.get("tables", []):
        table = _table_spec(entry, sources)
        tables.append(table)
        if table.kind == "matrix":
            frames.append(_read_matrix(directory / table.file, table))
            if table.averages_file:
                averages.append(_read_printed_averages(directory / table.averages_file, table))
        elif table.kind == "diagonal":
            frames.append(_read_diagonal(directory / table.file, table))
        else:
            frames.append(_read_subsets(directory / table.file, table))
    if not tables:
        raise ValueError(f"{manifest_path} lists no tables")
    results = sort_long(pd.concat(frames, ignore_index=True)[list(RESULT_COLUMNS)])
    printed = (pd.concat(averages, ignore_index=True) if averages
               else pd.DataFrame(columns=["model", "benchmark", "metric", "axis", "lang", "printed_percent"]))
    return Reference(directory=directory, tables=tuple(tables), results=results, printed_averages=printed)


def check_printed_averages(reference: Reference) -> pd.DataFrame:
    """Each printed AVG against the mean of its own printed cells.

    Tolerance per average, in percentage points: half a unit of the cells' last printed
    digit (the mean of rounded cells can be off by that much) plus half a unit of the
    average's last printed digit. Columns: model, axis, lang, printed_percent,
    recomputed_percent, difference_pp (printed minus recomputed), tolerance_pp, agrees.
    """
    rows = []
    for spec in reference.tables:
        if spec.kind != "matrix" or spec.averages_file is None:
            continue
        cells = reference.matrix(spec.model)
        recomputed = {"doc": cells.mean(axis=1) * 100, "query": cells.mean(axis=0) * 100}
        tolerance = 0.5 * 10.0 ** -spec.decimals * 100 + 0.5 * 10.0 ** -(spec.averages_decimals or 0)
        printed = reference.printed_averages[reference.printed_averages["model"] == spec.model]
        for row in printed.itertuples(index=False):
            value = float(recomputed[row.axis][row.lang])
            difference = float(row.printed_percent) - value
            rows.append({"model": spec.model, "axis": row.axis, "lang": row.lang,
                         "printed_percent": float(row.printed_percent), "recomputed_percent": value,
                         "difference_pp": difference, "tolerance_pp": tolerance,
                         # 1e-9: a difference exactly at the bound is not a disagreement.
                         "agrees": abs(difference) <= tolerance + 1e-9})
    return pd.DataFrame(rows, columns=["model", "axis", "lang", "printed_percent", "recomputed_percent",
                                       "difference_pp", "tolerance_pp", "agrees"])


def _table_spec(entry: dict, sources: dict[str, Source]) -> ReferenceTable:
    kind = entry.get("kind")
    if kind not in TABLE_KINDS:
        raise ValueError(f"reference table {entry.get('file')!r}: unknown kind {kind!r}; valid choices: {list(TABLE_KINDS)}")
    source_key = entry.get("source")
    if source_key not in sources:
        raise ValueError(f"reference table {entry.get('file')!r} names source {source_key!r}, "
                         f"which the manifest does not define; defined: {sorted(sources)}")
    averages = entry.get("printed_averages") or {}
    if averages and averages.get("unit") != "percent":
        raise ValueError(f"reference table {entry['file']!r}: printed averages must be in percent, got {averages.get('unit')!r}")
    if kind == "subsets" and not entry.get("language"):
        raise ValueError(f"reference table {entry['file']!r} of kind 'subsets' needs a 'language'")
    return ReferenceTable(file=entry["file"], kind=kind, model=entry["model"], benchmark=entry["benchmark"],
                          metric=entry["metric"], decimals=int(entry["decimals"]), source=sources[source_key],
                          language=entry.get("language"), averages_file=averages.get("file"),
                          averages_decimals=averages.get("decimals"))


def _number(text: str, decimals: int, where: str) -> float:
    # Exactly the printed precision: a retyped or reformatted value fails here, not silently.
    if not re.fullmatch(rf"-?\d+\.\d{{{decimals}}}", text.strip()):
        raise ValueError(f"{where}: {text!r} is not a number with exactly {decimals} decimals")
    return float(text)


def _read_matrix(path: Path, spec: ReferenceTable) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    expected = ["doc_lang", *MATRIX_LANGUAGES]
    if list(raw.columns) != expected or raw["doc_lang"].tolist() != list(MATRIX_LANGUAGES):
        raise ValueError(f"{path}: expected header {expected} and rows {list(MATRIX_LANGUAGES)}, "
                         f"got header {list(raw.columns)} and rows {raw['doc_lang'].tolist() if 'doc_lang' in raw else []}")
    rows = []
    for record in raw.to_dict("records"):
        doc = record["doc_lang"]
        for query in MATRIX_LANGUAGES:
            rows.append({"model": spec.model, "benchmark": spec.benchmark, "subset": MEAN_SUBSET, "doc_lang": doc,
                         "query_lang": query, "metric": spec.metric,
                         "value": _number(record[query], spec.decimals, f"{path.name} cell ({doc}, {query})")})
    return pd.DataFrame(rows)


def _read_printed_averages(path: Path, spec: ReferenceTable) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(raw.columns) != ["axis", "lang", "printed_percent"]:
        raise ValueError(f"{path}: expected columns ['axis', 'lang', 'printed_percent'], got {list(raw.columns)}")
    for axis in AVERAGE_AXES:
        langs = raw.loc[raw["axis"] == axis, "lang"].tolist()
        if langs != list(MATRIX_LANGUAGES):
            raise ValueError(f"{path}: axis {axis!r} must list {list(MATRIX_LANGUAGES)} once each, got {langs}")
    if len(raw) != 2 * len(MATRIX_LANGUAGES):
        raise ValueError(f"{path}: unknown axes {sorted(set(raw['axis']) - set(AVERAGE_AXES))}; valid: {list(AVERAGE_AXES)}")
    decimals = spec.averages_decimals if spec.averages_decimals is not None else 2
    values = [_number(v, decimals, f"{path.name} {a} AVG {lang}")
              for a, lang, v in zip(raw["axis"], raw["lang"], raw["printed_percent"])]
    return pd.DataFrame({"model": spec.model, "benchmark": spec.benchmark, "metric": spec.metric,
                         "axis": raw["axis"], "lang": raw["lang"], "printed_percent": values})


def _read_subsets(path: Path, spec: ReferenceTable) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(raw.columns) != ["subset", spec.metric]:
        raise ValueError(f"{path}: expected columns ['subset', {spec.metric!r}], got {list(raw.columns)}")
    if raw["subset"].duplicated().any():
        raise ValueError(f"{path}: duplicate subsets {raw.loc[raw['subset'].duplicated(), 'subset'].tolist()}")
    values = [_number(v, spec.decimals, f"{path.name} {s}") for s, v in zip(raw["subset"], raw[spec.metric])]
    return pd.DataFrame({"model": spec.model, "benchmark": spec.benchmark, "subset": raw["subset"],
                         "doc_lang": spec.language, "query_lang": spec.language, "metric": spec.metric,
                         "value": values})


def _read_diagonal(path: Path, spec: ReferenceTable) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(raw.columns) != ["lang", "subset", spec.metric]:
        raise ValueError(f"{path}: expected columns ['lang', 'subset', {spec.metric!r}], got {list(raw.columns)}")
    unknown = sorted(set(raw["lang"]) - set(KNOWN_LANGUAGES))
    if unknown:
        raise ValueError(f"{path}: unknown languages {unknown}; valid choices: {list(KNOWN_LANGUAGES)}")
    duplicated = raw.duplicated(["lang", "subset"])
    if duplicated.any():
        raise ValueError(f"{path}: duplicate (lang, subset) rows {raw.loc[duplicated, ['lang', 'subset']].values.tolist()}")
    values = [_number(v, spec.decimals, f"{path.name} {lang} {s}")
              for lang, s, v in zip(raw["lang"], raw["subset"], raw[spec.metric])]
    return pd.DataFrame({"model": spec.model, "benchmark": spec.benchmark, "subset": raw["subset"],
                         "doc_lang": raw["lang"], "query_lang": raw["lang"], "metric": spec.metric, "value": values})
