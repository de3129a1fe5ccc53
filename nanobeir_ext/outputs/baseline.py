"""Writing a committed baseline folder from a finished run (``outputs/folders.py`` reads both back).

A baseline folder is a compact, diffable copy of a run, small enough to commit:
``results.csv`` (every metric), ``per_query_ndcg.csv`` (one metric per query, the one the
significance test uses), ``environment.json``, ``latency.csv`` when the run has one, and
``baseline.json`` (format, source run, per-query metric, file hashes). Floats are written
with Python's shortest round-trip repr, so a run compared with its own baseline is
bit-identical (every delta exactly 0, every p-value exactly 1).
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from nanobeir_ext.atomic import atomic_path, write_json
from nanobeir_ext.evaluation.metrics import PRIMARY_METRIC
from nanobeir_ext.evaluation.results import sort_long
from nanobeir_ext.outputs.folders import (BASELINE_FORMAT, BASELINE_MANIFEST, PER_QUERY_BASELINE, is_baseline_folder,
                                          read_folder)

_BASELINE_FILES = ("results.csv", PER_QUERY_BASELINE, "environment.json", "latency.csv", "config.yaml",
                   BASELINE_MANIFEST)


def write_baseline(run_dir: Path, out_dir: Path, *, per_query_metric: str = PRIMARY_METRIC) -> Path:
    """Write the baseline folder of ``run_dir`` into ``out_dir`` (refreshing an older baseline there).

    Refuses a non-empty ``out_dir`` that is not a baseline folder, so a typo cannot clobber
    unrelated files. Files a refreshed baseline no longer has (e.g. latency.csv) are removed.
    """
    run = read_folder(run_dir)
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


def _write_exact_csv(path: Path, frame: pd.DataFrame) -> Path:
    # No float_format: pandas writes repr(float), which reads back to the same double.
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
