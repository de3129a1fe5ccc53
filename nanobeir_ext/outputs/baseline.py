"""Run folders and committed baseline folders: one loader for both, and the baseline writer.

A baseline folder is a compact, diffable copy of a run, small enough to commit:
``results.csv`` (every metric), ``per_query_ndcg.csv`` (one metric per query, the one the
significance test uses), ``environment.json``, ``latency.csv`` when the run has one, and
``baseline.json`` (format, source run, per-query metric, file hashes). Floats are written
with Python's shortest round-trip repr, so a run compared with its own baseline is
bit-identical (every delta exactly 0, every p-value exactly 1).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from nanobeir_ext.atomic import atomic_path, write_json
from nanobeir_ext.evaluation.results import PER_QUERY_COLUMNS, RESULT_COLUMNS, sort_long

BASELINE_MANIFEST = "baseline.json"
BASELINE_FORMAT = 1
PER_QUERY_BASELINE = "per_query_ndcg.csv"
LATENCY_COLUMNS: tuple[str, ...] = ("model", "role", "batch_size", "seq_len", "texts_per_s", "tokens_per_s",
                                    "p50_ms", "p95_ms", "device", "dtype", "weights")
_BASELINE_FILES = ("results.csv", PER_QUERY_BASELINE, "environment.json", "latency.csv", "config.yaml",
                   BASELINE_MANIFEST)
_TEXT_KEYS = ("model", "benchmark", "subset", "doc_lang", "query_lang", "metric", "query_id")


@dataclass(frozen=True)
class RunData:
    """What a comparison needs from a run folder or a baseline folder."""

    path: Path
    name: str
    kind: Literal["run", "baseline"]
    results: pd.DataFrame  # RESULT_COLUMNS
    per_query: pd.DataFrame | None  # PER_QUERY_COLUMNS; a baseline holds one metric only
    latency: pd.DataFrame | None
    environment: dict[str, Any]


def is_baseline_folder(path: Path) -> bool:
    return (Path(path) / BASELINE_MANIFEST).is_file()


def load_run(path: Path) -> RunData:
    """Load a run folder (results.parquet or results.csv, ...) or a baseline folder."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"run folder {path} does not exist")
    if is_baseline_folder(path):
        return _load_baseline(path)
    status = _run_status(path)
    if status not in (None, "complete"):
        raise ValueError(f"{path} holds a run that is not complete (status {status!r} in run.json); "
                         f"finish or re-run it before comparing")
    if (path / "results.parquet").is_file():
        results = pd.read_parquet(path / "results.parquet")
    elif (path / "results.csv").is_file():
        results = _read_csv(path / "results.csv")
    else:
        raise FileNotFoundError(f"{path} is neither a run folder (no results.parquet or results.csv) "
                                f"nor a baseline folder (no {BASELINE_MANIFEST})")
    per_query = pd.read_parquet(path / "per_query.parquet") if (path / "per_query.parquet").is_file() else None
    return RunData(path=path, name=path.name, kind="run",
                   results=_normalise(results, RESULT_COLUMNS, path / "results"),
                   per_query=None if per_query is None else _normalise(per_query, PER_QUERY_COLUMNS, path / "per_query"),
                   latency=_read_latency(path / "latency.csv"), environment=_read_environment(path))


def write_baseline(run_dir: Path, out_dir: Path, *, per_query_metric: str = "ndcg@10") -> Path:
    """Write the baseline folder of ``run_dir`` into ``out_dir`` (refreshing an older baseline there).

    Refuses a non-empty ``out_dir`` that is not a baseline folder, so a typo cannot clobber
    unrelated files. Files a refreshed baseline no longer has (e.g. latency.csv) are removed.
    """
    run = load_run(run_dir)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not is_baseline_folder(out_dir):
        raise FileExistsError(f"{out_dir} is not empty and holds no {BASELINE_MANIFEST}; "
                              f"refusing to write a baseline over unrelated files")
    if run.per_query is None:
        raise ValueError(f"{run_dir} has no per-query scores (per_query.parquet); a baseline needs them "
                         f"for the significance test")
    per_query = run.per_query[run.per_query["metric"] == per_query_metric]
    if per_query.empty:
        raise ValueError(f"{run_dir}: per-query table has no {per_query_metric!r} rows; "
                         f"metrics present: {sorted(run.per_query['metric'].unique())}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"results.csv": _write_exact_csv(out_dir / "results.csv", sort_long(run.results)),
               PER_QUERY_BASELINE: _write_exact_csv(out_dir / PER_QUERY_BASELINE,
                                                    sort_long(per_query.drop(columns=["metric"])))}
    written["environment.json"] = write_json(out_dir / "environment.json", run.environment)
    if run.latency is not None:
        written["latency.csv"] = _write_exact_csv(out_dir / "latency.csv", run.latency)
    if (Path(run_dir) / "config.yaml").is_file():
        with atomic_path(out_dir / "config.yaml") as tmp:
            tmp.write_bytes((Path(run_dir) / "config.yaml").read_bytes())
        written["config.yaml"] = out_dir / "config.yaml"
    for stale in _BASELINE_FILES:
        if stale not in written and stale != BASELINE_MANIFEST:
            (out_dir / stale).unlink(missing_ok=True)
    manifest = {"format": BASELINE_FORMAT, "source_run": str(run_dir), "source_kind": run.kind,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "per_query_metric": per_query_metric, "models": sorted(run.results["model"].unique()),
                "files": {name: _sha256(p) for name, p in sorted(written.items())}}
    write_json(out_dir / BASELINE_MANIFEST, manifest)
    return out_dir


def _load_baseline(path: Path) -> RunData:
    manifest = json.loads((path / BASELINE_MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != BASELINE_FORMAT:
        raise ValueError(f"{path / BASELINE_MANIFEST}: baseline format {manifest.get('format')!r} "
                         f"is not the supported {BASELINE_FORMAT}")
    results = _normalise(_read_csv(path / "results.csv"), RESULT_COLUMNS, path / "results.csv")
    per_query = None
    if (path / PER_QUERY_BASELINE).is_file():
        per_query = _read_csv(path / PER_QUERY_BASELINE)
        per_query.insert(per_query.columns.get_loc("query_id") + 1, "metric", manifest["per_query_metric"])
        per_query = _normalise(per_query, PER_QUERY_COLUMNS, path / PER_QUERY_BASELINE)
    return RunData(path=path, name=path.name, kind="baseline", results=results, per_query=per_query,
                   latency=_read_latency(path / "latency.csv"), environment=_read_environment(path))


def _read_csv(path: Path) -> pd.DataFrame:
    # Keys stay text ("no" is Norwegian, "001" a query id); values parse back to the same doubles
    # (pandas' default float parser round-trips repr output; tests/test_compare.py checks it).
    header = pd.read_csv(path, nrows=0).columns
    return pd.read_csv(path, dtype={c: str for c in header if c in _TEXT_KEYS}, keep_default_na=False,
                       na_values={c: ["", "nan", "NaN"] for c in header if c not in _TEXT_KEYS})


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


def _run_status(path: Path) -> str | None:
    # run.json is the evaluation runner's folder manifest (nanobeir_ext.outputs.rundir).
    manifest = path / "run.json"
    return json.loads(manifest.read_text(encoding="utf-8")).get("status") if manifest.is_file() else None


def _read_environment(path: Path) -> dict[str, Any]:
    env_path = path / "environment.json"
    return json.loads(env_path.read_text(encoding="utf-8")) if env_path.is_file() else {}


def _write_exact_csv(path: Path, frame: pd.DataFrame) -> Path:
    # No float_format: pandas writes repr(float), which reads back to the same double.
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
