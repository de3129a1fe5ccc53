"""``python -m runners.compare run=DIR baseline=published|DIR2``: reproduction and regression reports.

Also refreshes a committed baseline: ``python -m runners.compare run=DIR save_baseline=reports/baselines/smoke``.
Thin: config -> library calls -> report folder; the exit status is the verdict
(0 pass, 1 regression / not reproduced, 2 coverage mismatch / nothing to compare).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from nanobeir_ext.compare.reference import load_reference
from nanobeir_ext.compare.regression import compare_runs
from nanobeir_ext.compare.render import REPORT_MD, write_comparison
from nanobeir_ext.compare.reproduction import PUBLISHED, compare_to_published
from nanobeir_ext.compare.settings import CompareSettings, RegressionRule, SignificanceSettings, Tolerances
from nanobeir_ext.outputs.baseline import write_baseline
from nanobeir_ext.outputs.folders import read_folder
from runners.common import REPO_DIR, exit_with, logged, owned_folder, plain

log = logging.getLogger("nanobeir_ext.compare")
# What a comparison writes (report.md, report.json, its CSV tables): removed when overwrite=true replaces one.
COMPARISON_OUTPUTS = ("report.md", "report.json", "*.csv")


def settings_from_config(cfg: DictConfig) -> CompareSettings:
    t, s, r = cfg.tolerance, cfg.significance, cfg.regression
    return CompareSettings(
        tolerances=Tolerances(published_abs=float(t.published_abs), cell_drop_abs=float(t.cell_drop_abs),
                              mean_drop_abs=float(t.mean_drop_abs), latency_increase_rel=float(t.latency_increase_rel),
                              any_change_abs=None if t.get("any_change_abs") is None else float(t.any_change_abs)),
        significance=SignificanceSettings(metric=str(s.metric), n_resamples=int(s.n_resamples), seed=int(s.seed),
                                          alpha=float(s.alpha), correction=str(s.correction)),
        rule=RegressionRule(gate_metrics=tuple(r.gate_metrics), require_significance=bool(r.require_significance),
                            latency_metrics=tuple(r.latency_metrics)))


def _identity(cfg: DictConfig, run_dir: Path, baseline: str) -> dict[str, Any]:
    """What makes two comparisons the same comparison (not where or how verbosely it is written)."""
    settings = plain(cfg)
    for key in ("out", "overwrite", "progress", "save_baseline", "run", "baseline"):
        settings.pop(key, None)
    return {"run": str(run_dir.resolve()), "baseline": baseline, "settings": settings}


@logged
def run(cfg: DictConfig) -> int:
    """Compare (or save a baseline) as configured; returns the exit status."""
    run_dir = Path(str(cfg.run))
    if cfg.get("save_baseline"):
        out = write_baseline(run_dir, Path(str(cfg.save_baseline)), per_query_metric=str(cfg.significance.metric))
        log.info("baseline written to %s from %s", out, run_dir)
        return 0
    subject = read_folder(run_dir)
    settings = settings_from_config(cfg)
    if str(cfg.baseline) == PUBLISHED:
        reference = load_reference(Path(str(cfg.reference_dir)) if cfg.get("reference_dir")
                                   else REPO_DIR / "reports" / "reference")
        comparison = compare_to_published(subject, reference, dict(cfg.reference_models),
                                          tolerance=settings.tolerances.published_abs)
        baseline_id = PUBLISHED
    else:
        other = read_folder(Path(str(cfg.baseline)))
        comparison = compare_runs(subject, other, settings, progress=bool(cfg.get("progress", True)))
        baseline_id = str(other.path.resolve())
    out = Path(str(cfg.out)) if cfg.get("out") else run_dir / f"compare-{comparison.baseline_name}"
    identity = _identity(cfg, run_dir, baseline_id)
    # A folder holding a different comparison is refused unless overwrite; the same one is rewritten.
    with owned_folder(out, cfg, identity, kind="comparison", outputs=COMPARISON_OUTPUTS, hydra_record=False):
        write_comparison(out, comparison, identity)
    log.info("%s vs %s: %s (exit %d); report in %s", subject.name, comparison.baseline_name, comparison.verdict,
             comparison.exit_code, out / REPORT_MD)
    return comparison.exit_code


@hydra.main(config_path="../configs", config_name="compare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    exit_with(run(cfg))


if __name__ == "__main__":
    main()
