"""Reading one split into a ``RawTable``: JSON lines or parquet straight from a local snapshot's
data files (far faster than ``datasets.load_dataset`` per config), BEIR's files, and other formats
through ``datasets``. A hub dataset is read from its snapshot at the resolved commit (``hub.py``),
exactly like a local snapshot. Tables are cached per process."""
from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

from nanobeir_ext.data.hub import dataset_snapshot
from nanobeir_ext.data.records import BenchmarkError, BenchmarkSource, BenchmarkUnavailableError, RawTable
from nanobeir_ext.data.snapshot import declared_patterns, glob_data_files, snapshot_data_files, snapshot_stamp


def read_split(source: BenchmarkSource, config: str, split: str) -> RawTable:
    """One split of one config, cached per process (sources are immutable; local
    snapshots are keyed on their README's mtime and size too, so a rewrite is seen)."""
    stamp = snapshot_stamp(Path(source.path)) if source.path is not None else None
    return _read_split_cached(source, config, split, stamp)


@functools.lru_cache(maxsize=64)
def _read_split_cached(source: BenchmarkSource, config: str, split: str, stamp: tuple[int, int] | None) -> RawTable:
    if source.path is None:
        return _read_hub_split(source, config, split)
    origin = f"config {config}, split {split} of {source.describe()}"
    if source.path is not None:
        declared = snapshot_data_files(Path(source.path))
        _check_declared(source, declared, config, split)
        files = declared.get(config, {}).get(split)
        if files:  # name the data files themselves, so an error points at what to fix
            origin = f"{', '.join(str(f) for f in files)} ({origin})"
        columns = _read_files_fast(files) if files else None
        if columns is not None:
            return RawTable(origin, columns)
    return RawTable(origin, _load_with_datasets(source, config, split))


def _check_declared(source: BenchmarkSource, declared: dict[str, dict[str, tuple[Path, ...]]], config: str, split: str) -> None:
    """A local snapshot whose README lists configs must list this one, and its files must be there."""
    if not declared:
        return  # no ``configs:`` list: left to ``datasets``' own discovery
    readme = Path(source.path or ".") / "README.md"
    again = "download the snapshot again (hf download ... --repo-type dataset --local-dir)"
    if config not in declared:
        raise BenchmarkError(f"{readme} declares no config {config} (it declares {len(declared)} configs); "
                             f"the snapshot is incomplete or of another dataset: {again}")
    if split not in declared[config]:
        raise BenchmarkError(f"{readme} declares no split {split!r} for config {config} "
                             f"(splits: {sorted(declared[config])}): {again}")
    if not declared[config][split]:
        raise BenchmarkError(f"{readme} declares config {config}, split {split}, but no file matches its data_files "
                             f"pattern (a folder such as {config}/ is missing): the snapshot is partial; {again}")


def jsonl_table(path: Path) -> RawTable:
    if not path.is_file():
        raise BenchmarkError(f"missing file {path}")
    return RawTable(f"file {path}", {name: tuple(values) for name, values in _read_jsonl(path).items()})


def tsv_table(path: Path) -> RawTable:
    """A qrels TSV with a header row; scores parsed as integers where they are integers."""
    if not path.is_file():
        raise BenchmarkError(f"missing file {path}")
    rows = list(csv.reader(io.StringIO(_utf8_text(path), newline=""), delimiter="\t"))
    rows = [row for row in rows if row]
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    columns: dict[str, tuple[Any, ...]] = {name: tuple(row[i] if i < len(row) else None for row in body) for i, name in enumerate(header)}
    if "score" in columns:
        columns["score"] = tuple(int(v) if isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()) else v for v in columns["score"])
    return RawTable(f"file {path}", columns)


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
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pydict()
    except (pa.ArrowException, OSError) as error:
        raise BenchmarkError(f"{path}: not a readable parquet file ({type(error).__name__}: {error}); "
                             "download it again") from error


_BOM = b"\xef\xbb\xbf"


def _utf8_text(path: Path) -> str:
    """The file as UTF-8 text; a BOM or bytes that are not UTF-8 are an error naming the line."""
    data = path.read_bytes()
    if data.startswith(_BOM):
        raise BenchmarkError(f"{path}: line 1 starts with a UTF-8 byte-order mark (BOM); "
                             "save the file as UTF-8 without a BOM")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise BenchmarkError(f"{path}: line {line} is not UTF-8 (byte {data[error.start]:#04x}); "
                             "re-encode the file as UTF-8") from None


def _read_jsonl(path: Path) -> dict[str, list[Any]]:
    # The json module keeps every value's type exactly (no inference): an int id stays an int
    # and is then reported, a "007" id stays a string. Split on "\n" only: str.splitlines would
    # also split on U+2028 and friends, which JSON leaves unescaped inside strings.
    text = _utf8_text(path)
    if text.lstrip().startswith("["):
        raise BenchmarkError(f"{path}: holds a JSON array, not JSON lines; write one JSON object per line "
                             "(e.g. `jq -c '.[]' FILE`)")
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise BenchmarkError(f"{path}: line {number} is not valid JSON ({error.msg} at column {error.colno}); "
                                 "fix or remove that line") from None
        if not isinstance(record, dict):
            raise BenchmarkError(f"{path}: line {number} holds a JSON {type(record).__name__}, not an object; "
                                 "each line must be one JSON object")
        records.append(record)
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


def _read_hub_split(source: BenchmarkSource, config: str, split: str) -> RawTable:
    """A hub dataset's split from its snapshot at the resolved commit: the README first (its
    ``configs:`` list names the data files), then only this split's files, read as a local snapshot.
    Never ``datasets.load_dataset(repo_id)``: offline it silently reads the newest cached commit."""
    readme = dataset_snapshot(source)
    patterns = declared_patterns(readme.folder / "README.md").get(config, {}).get(split)
    where = f"{source.repo_id} at commit {readme.commit}"
    if not patterns:
        raise BenchmarkUnavailableError(
            f"the README of {where} declares no data files for config {config}, split {split}: set benchmark.revision "
            f"to a commit that has them, benchmark.repo_id to another dataset, or benchmark.path to a local snapshot")
    snapshot = dataset_snapshot(source, patterns)
    files = glob_data_files(snapshot.folder, patterns)  # not snapshot_data_files: its listing is cached per README
    if not files:
        raise BenchmarkUnavailableError(
            f"{where} has no file matching {patterns} (config {config}, split {split}, declared in its README): "
            f"set benchmark.revision to a complete commit or benchmark.path to a local snapshot")
    origin = f"{', '.join(str(f) for f in files)} (config {config}, split {split} of {where})"
    columns = _read_files_fast(files)
    if columns is None:
        columns = _load_with_datasets(BenchmarkSource(layout=source.layout, path=str(snapshot.folder), cache_dir=source.cache_dir), config, split)
    return RawTable(origin, columns)


def _load_with_datasets(source: BenchmarkSource, config: str, split: str) -> dict[str, tuple[Any, ...]]:
    """Formats other than JSON lines and parquet, from a local snapshot folder (a hub dataset's included)."""
    import datasets

    with _quiet_progress(True):
        table = datasets.load_dataset(source.path, name=config, split=split, cache_dir=source.cache_dir)
    return {name: tuple(values) for name, values in table.to_dict().items()}
