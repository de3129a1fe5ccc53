"""``python -m runners.report runs=[DIR,...]``: one report from existing run folders, without encoding."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from nanobeir_ext.atomic import write_csv, write_parquet
from nanobeir_ext.reporting.report import ReportContext, write_report
from nanobeir_ext.outputs.combine import combine_runs
from nanobeir_ext.outputs.folders import find_runs, read_folder
from runners.common import held_log_files, logged, output_dir, owned_folder, plain

log = logging.getLogger("nanobeir_ext.reporting.report")
# What a combined report writes: removed when overwrite=true replaces another run's outputs.
REPORT_OUTPUTS = ("results.csv", "results.parquet", "per_query.parquet", "report.md", "figures", "compare-*")


@logged
def run(cfg: DictConfig, out_dir: str | Path | None = None) -> dict[str, Any]:
    if not cfg.runs:
        raise ValueError("give the run folders to combine: runs=[DIR1,DIR2]")
    out = Path(cfg.out) if cfg.get("out") else output_dir(cfg, out_dir)
    held = held_log_files(out)  # nothing enters the folder before the report owns it
    runs = [read_folder(p) for p in find_runs([Path(p) for p in cfg.runs])]
    per_query, results, labels = combine_runs(runs)
    with owned_folder(out, cfg, plain(cfg) | {"out": str(out)}, kind="report", outputs=REPORT_OUTPUTS, held=held):
        benchmarks = sorted({r.benchmark for r in runs})
        write_csv(out / "results.csv", results)
        write_parquet(out / "results.parquet", results)
        write_parquet(out / "per_query.parquet", per_query)
        baseline = cfg.get("baseline_model") or next((r.baseline_model for r in runs if r.baseline_model), None)
        context = ReportContext(benchmark=", ".join(benchmarks), models=tuple(labels), baseline_model=baseline,
                                title=f"nanobeir-ext: combined report of {len(runs)} runs",
                                run_notes=tuple(f"from {r.path}" for r in runs), per_query=per_query)
        write_report(results, context, out, figures_enabled=bool(cfg.get("figures", True)))
    log.info("combined %d runs into %s", len(runs), out)
    return {"out_dir": str(out), "runs": [str(r.path) for r in runs]}


@hydra.main(config_path="../configs", config_name="report", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
