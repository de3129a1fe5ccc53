"""Reading finished run folders and committed baseline folders back: one reader, one record.

A run folder is what ``runners.evaluate`` writes (``results.parquet`` or ``results.csv``,
``per_query.parquet``, ``environment.json``, ``run.json``, optionally ``latency.csv`` and
Hydra's ``.hydra/overrides.yaml``). A baseline folder is its compact committed copy
(``nanobeir_ext.outputs.baseline`` writes it). Both read back to a :class:`RunFolder` with the
same column types (keys as text, values as float64), so every consumer (comparisons, combined
reports) sees one shape, and a run that is still running or failed is refused here, once.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import pandas as pd
import yaml

from nanobeir_ext.evaluation.results import PER_QUERY_COLUMNS, RESULT_COLUMNS
from nanobeir_ext.outputs.rundir import MANIFEST
from nanobeir_ext.protocol import ModelLabel

BASELINE_MANIFEST = "baseline.json"
BASELINE_FORMAT = 1
PER_QUERY_BASELINE = "per_query_ndcg.csv"
LATENCY_COLUMNS: tuple[str, ...] = ("model", "role", "batch_size", "seq_len", "texts_per_s", "tokens_per_s",
                                    "p50_ms", "p95_ms", "device", "dtype", "weights")
_TEXT_KEYS = ("model", "benchmark", "subset", "doc_lang", "query_lang", "metric", "query_id")


@dataclass(frozen=True)
class RunFolder:
    """A finished run folder or a committed baseline folder, read back."""

    path: Path
    kind: Literal["run", "baseline"]
    results: pd.DataFrame  # RESULT_COLUMNS
    per_query: pd.DataFrame | None  # PER_QUERY_COLUMNS; a baseline holds one metric only
    latency: pd.DataFrame | None  # LATENCY_COLUMNS
    environment: dict[str, Any]
    overrides: tuple[str, ...] = ()  # the job's command-line overrides (Hydra's .hydra/overrides.yaml)
    status: str | None = None  # run.json's status ("complete"); None where the folder has no run.json

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def labels(self) -> list[ModelLabel]:
        """Which model produced which numbers, as environment.json recorded it."""
        return [ModelLabel.from_dict(m) for m in self.environment.get("models", [])]

    @property
    def benchmark(self) -> str:
        return str(self.environment.get("benchmark", {}).get("name", "unknown"))

    @property
    def baseline_model(self) -> str | None:
        """The delta-table baseline the run was configured with (its config.yaml), if any."""
        config = self.path / "config.yaml"
        if not config.is_file():
            return None
        return ((yaml.safe_load(config.read_text()) or {}).get("report") or {}).get("baseline_model")


def is_baseline_folder(path: Path) -> bool:
    return (Path(path) / BASELINE_MANIFEST).is_file()


def read_folder(path: Path) -> RunFolder:
    """Read a finished run folder or a baseline folder; refuse one whose run.json says it is not complete."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"run folder {path} does not exist")
    if is_baseline_folder(path):
        return _read_baseline(path)
    status = _run_status(path)
    if status not in (None, "complete"):
        raise ValueError(f"{path} holds a run that is not complete (status {status!r} in {MANIFEST}); "
                         f"finish or re-run it first")
    if (path / "results.parquet").is_file():
        results = _read(path / "results.parquet", pd.read_parquet)
    elif (path / "results.csv").is_file():
        results = _read(path / "results.csv", read_exact_csv)
    else:
        raise FileNotFoundError(f"{path} is neither a run folder (no results.parquet or results.csv; "
                                f"a shard run only fills the store: run the final job without shard=) "
                                f"nor a baseline folder (no {BASELINE_MANIFEST})")
    per_query = _read(path / "per_query.parquet", pd.read_parquet) if (path / "per_query.parquet").is_file() else None
    return RunFolder(path=path, kind="run", results=_normalise(results, RESULT_COLUMNS, path / "results"),
                     per_query=None if per_query is None else _normalise(per_query, PER_QUERY_COLUMNS,
                                                                          path / "per_query.parquet"),
                     latency=_read_latency(path / "latency.csv"), environment=_read_environment(path),
                     overrides=_read_overrides(path), status=status)


def find_runs(roots: list[Path]) -> list[Path]:
    """Run folders under the given folders (a sweep's parent folder expands to its jobs). A job that
    owns its folder (run.json) but has no results is listed too, so reading it says why (failed,
    still running) instead of the job vanishing from a combined report."""
    found = []
    for root in roots:
        root = Path(root)
        if (root / "per_query.parquet").exists() or (root / MANIFEST).is_file():
            found.append(root)
        else:
            found += sorted({p.parent for pattern in ("*/per_query.parquet", f"*/{MANIFEST}") for p in root.glob(pattern)})
    if not found:
        raise FileNotFoundError(f"no evaluation runs (per_query.parquet) under {[str(r) for r in roots]}")
    return found


def read_exact_csv(path: Path) -> pd.DataFrame:
    """A CSV written at full precision, read back: keys stay text ("no" is Norwegian, "001" a query
    id); values parse back to the same doubles (pandas' float parser round-trips repr output)."""
    header = pd.read_csv(path, nrows=0).columns
    return pd.read_csv(path, dtype={c: str for c in header if c in _TEXT_KEYS}, keep_default_na=False,
                       na_values={c: ["", "nan", "NaN"] for c in header if c not in _TEXT_KEYS})


def _read_baseline(path: Path) -> RunFolder:
    manifest = json.loads((path / BASELINE_MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != BASELINE_FORMAT:
        raise ValueError(f"{path / BASELINE_MANIFEST}: baseline format {manifest.get('format')!r} "
                         f"is not the supported {BASELINE_FORMAT}")
    results = _normalise(read_exact_csv(path / "results.csv"), RESULT_COLUMNS, path / "results.csv")
    per_query = None
    if (path / PER_QUERY_BASELINE).is_file():
        per_query = read_exact_csv(path / PER_QUERY_BASELINE)
        per_query.insert(per_query.columns.get_loc("query_id") + 1, "metric", manifest["per_query_metric"])
        per_query = _normalise(per_query, PER_QUERY_COLUMNS, path / PER_QUERY_BASELINE)
    return RunFolder(path=path, kind="baseline", results=results, per_query=per_query,
                     latency=_read_latency(path / "latency.csv"), environment=_read_environment(path))


def _normalise(frame: pd.DataFrame, columns: tuple[str, ...], where: Path) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}; expected {list(columns)}, got {list(frame.columns)}")
    out = frame[list(columns)].copy()
    for column in columns:
        if column != "value":
            out[column] = out[column].astype(str)
    out["value"] = out["value"].astype("float64")
    return out.reset_index(drop=True)


def _read_latency(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    frame = pd.read_csv(path, keep_default_na=False,
                        dtype={"model": str, "role": str, "device": str, "dtype": str, "weights": str})
    missing = [c for c in LATENCY_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing latency columns {missing}; expected {list(LATENCY_COLUMNS)}")
    return frame[list(LATENCY_COLUMNS)]


def _read(path: Path, reader: Callable[[Path], Any]) -> Any:
    """Read one output file; a damaged one is an error naming it (not a bare parser traceback)."""
    try:
        return reader(path)
    except Exception as error:  # pyarrow, pandas and json raise many types for a damaged file
        raise ValueError(f"{path} cannot be read ({type(error).__name__}: {error}); the file is damaged: "
                         f"re-run the job that wrote it (overwrite=true) or restore it") from error


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _run_status(path: Path) -> str | None:
    manifest = path / MANIFEST
    return _read(manifest, _read_json).get("status") if manifest.is_file() else None


def _read_environment(path: Path) -> dict[str, Any]:
    env_path = path / "environment.json"
    return _read(env_path, _read_json) if env_path.is_file() else {}


def _read_overrides(path: Path) -> tuple[str, ...]:
    overrides = path / ".hydra" / "overrides.yaml"
    return tuple(yaml.safe_load(overrides.read_text()) or ()) if overrides.is_file() else ()
