"""``python -m runners.evaluate experiment=smoke|paper [overrides]``: the 9x9 evaluation.

Thin: compose the config, turn it into an EvaluationPlan, call the library, write the outputs.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from nanobeir_ext.atomic import write_csv, write_json, write_parquet, write_text
from nanobeir_ext.data import BenchmarkSource, DataRules, dataset_revision
from nanobeir_ext.data.hub import is_commit_hash, revision_text
from nanobeir_ext.outputs.environment import collect_environment
from nanobeir_ext.evaluation.pipeline import EvaluationOutcome, data_counts, data_notes, run_evaluation
from nanobeir_ext.evaluation.plan import EvaluationPlan, ModelSpec, kind_options, parse_shard
from nanobeir_ext.data.fixture import BENCHMARK_DIR
from nanobeir_ext.reporting.model_index import model_index_yaml
from nanobeir_ext.languages import matrix_cells, validate_languages
from nanobeir_ext.protocol import slug
from nanobeir_ext.reporting.report import ReportContext, write_report
from runners.checks import check_evaluation, warn_about_lengths
from runners.common import (REPO_DIR, cache_dir, configure_runtime, held_log_files, logged, output_dir, owned_folder,
                            plain, resolved_yaml)

log = logging.getLogger("nanobeir_ext.evaluate")
# What an evaluation writes; cleared first when overwrite=true replaces a different run.
EVALUATION_OUTPUTS = ("config.yaml", "environment.json", "results.csv", "results.parquet", "per_query.parquet",
                      "report.md", "runs", "figures", "model_index", "compare-*")


def model_specs(cfg: DictConfig) -> tuple[ModelSpec, ...]:
    if not cfg.get("models"):
        raise ValueError("no models configured: pick an experiment (experiment=smoke|paper) or add "
                         "+model@models.NAME=<one of configs/model/*.yaml>")
    specs = []
    for key, m in cfg.models.items():
        if m.get("fixture") and m.get("path"):
            raise ValueError(f"models.{key} sets both fixture={m.fixture} and path={m.path}: a fixture is built, never read "
                             f"from a folder; set models.{key}.fixture=null (and a models.{key}.name) to evaluate the "
                             f"checkpoint, or drop models.{key}.path")
        specs.append(ModelSpec(key=str(key), name=str(m.name), source=str(m.source),
                               revision=config_revision(m.get("revision"), f"models.{key}.revision"),
                               path=m.get("path"), fixture=m.get("fixture"), query_length=m.get("query_length"),
                               document_length=m.get("document_length"), batch_tokens=m.get("batch_tokens"),
                               padding_side=m.get("padding_side"),
                               kind=str(m.get("kind") or "colbert"), options=kind_options(plain(m)),
                               trust_remote_code=m.get("trust_remote_code", False)))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"two models share a name in {names}; give each a distinct models.<key>.name")
    return tuple(specs)


def benchmark_source(cfg: DictConfig) -> BenchmarkSource:
    b = cfg.benchmark
    path = b.get("path")
    if path == "fixture":
        path = str(BENCHMARK_DIR)
    return BenchmarkSource(layout=str(b.layout), repo_id=b.get("repo_id") or "",
                           revision=config_revision(b.get("revision"), "benchmark.revision"),
                           path=path, cache_dir=str(cache_dir(cfg.runtime) / "datasets"),
                           subsets=tuple(b.get("available_subsets") or ()))


def config_revision(value: Any, key: str) -> str | None:
    """A configured revision as a string. Hydra reads ``revision=1.10`` as the float 1.1 and an
    all-digit hash as an int: under ``@hydra.main`` the command line's own text is taken."""
    if value is None or isinstance(value, str):
        return value or None
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        for override in HydraConfig.get().overrides.task:
            name, _, text = override.partition("=")
            if name.lstrip("+~") == key and text:
                return text.strip("'\"")
    return revision_text(value)


def build_plan(cfg: DictConfig) -> EvaluationPlan:
    languages = validate_languages(cfg.benchmark.languages, what="benchmark language")
    doc_langs = validate_languages(cfg.matrix.doc_langs, allowed=languages, what="matrix.doc_langs language")
    query_langs = validate_languages(cfg.matrix.query_langs, allowed=languages, what="matrix.query_langs language")
    cells = matrix_cells(doc_langs, query_langs, diagonal_only=bool(cfg.matrix.get("diagonal_only", False)))
    if not cells:
        raise ValueError("the matrix has no cells: check matrix.doc_langs / matrix.query_langs")
    return EvaluationPlan(
        models=model_specs(cfg), benchmark=str(cfg.benchmark.name), source=benchmark_source(cfg),
        subsets=tuple(cfg.benchmark.subsets), cells=tuple(cells), metrics=tuple(cfg.metrics),
        cache_dir=cache_dir(cfg.runtime), k=int(cfg.retrieval.k), chunk_tokens=None if cfg.retrieval.get("chunk_tokens") is None else int(cfg.retrieval.chunk_tokens),
        device=str(cfg.runtime.device), dtype=str(cfg.runtime.dtype), progress=bool(cfg.runtime.get("progress", True)),
        shard=parse_shard(cfg.get("shard")), padding=str(cfg.retrieval.padding),
        data_rules=DataRules(empty_texts=str(cfg.benchmark.empty_texts), strict=bool(cfg.benchmark.strict)))


def default_encoder_factory(spec: ModelSpec, plan: EvaluationPlan):
    from models.checkpoint import ModelUnavailableError
    from models.registry import load_encoder

    try:
        return _load(spec, plan, load_encoder)
    except ModelUnavailableError as error:
        raise error.with_keys(f"models.{spec.key}") from error


def _load(spec: ModelSpec, plan: EvaluationPlan, load_encoder):
    from nanobeir_ext.protocol import EncoderRequest

    request = EncoderRequest(name=spec.name, source=spec.source, revision=spec.revision, path=spec.path,
                             fixture=spec.fixture, query_length=spec.query_length,
                             document_length=spec.document_length, batch_tokens=spec.batch_tokens,
                             padding_side=spec.padding_side, kind=spec.kind, options=spec.options, trust_remote_code=spec.trust_remote_code)
    return load_encoder(request, device=plan.device, dtype=plan.dtype, cache_dir=plan.cache_dir)


def run_fingerprint(cfg: DictConfig) -> dict[str, Any]:
    """What makes two runs the same run (not how they are displayed or where caches live)."""
    settings = plain(cfg)
    for key in ("overwrite", "shard"):
        settings.pop(key, None)
    for key in ("progress", "cache_dir", "threads"):  # where caches live and how fast: not what is computed
        settings.get("runtime", {}).pop(key, None)
    return settings


def environment(plan: EvaluationPlan, outcome: EvaluationOutcome) -> dict[str, Any]:
    return collect_environment(
        plan.device, REPO_DIR,
        models=[{**label.to_dict(), **hub_revision(spec.revision, label.revision), "identity": outcome.model_identities.get(spec.key)}
                for spec, label in zip(plan.models, outcome.models)],
        benchmark={"name": plan.benchmark, "layout": plan.source.layout, "repo_id": plan.source.repo_id,
                   **(hub_revision(plan.source.revision, dataset_revision(plan.source)) or {"revision": None}),
                   "path": plan.source.path, "subsets": list(plan.subsets),
                   "subset_identities": [d.identity() for d in outcome.data.subsets.values()]},
        encoding={"encoded": [u.describe() for u in outcome.encoding.encoded],
                  "reused": [u.describe() for u in outcome.encoding.reused],
                  "seconds": round(outcome.encoding.seconds, 3)},
        shard=list(plan.shard) if plan.shard else None,
    )


def hub_revision(requested: str | None, commit: str | None) -> dict[str, Any]:
    """What environment.json records of a hub repo: the commit read, as asked, and whether the
    config pins it (a branch or tag moves: the same config may read other bytes later)."""
    if commit is None:  # a local folder or fixture: identified by a content hash instead
        return {}
    return {"revision": commit, "requested_revision": requested or "main", "pinned": is_commit_hash(requested)}


def unpinned_notes(plan: EvaluationPlan, outcome: EvaluationOutcome) -> list[str]:
    """One line per hub repo read at a moving revision (a branch or tag): the same config may read other bytes later."""
    notes = [f"NOT PINNED: {label.name} read {label.revision} for models.{spec.key}.revision={spec.revision or 'main'}"
             for spec, label in zip(plan.models, outcome.models)
             if label.revision and not is_commit_hash(spec.revision)]
    commit = dataset_revision(plan.source)
    if commit and not is_commit_hash(plan.source.revision):
        notes.append(f"NOT PINNED: the dataset read {commit} for benchmark.revision={plan.source.revision or 'main'}")
    return notes


PADDING_NOTES = {"mask": "padding masked: only a document's own vectors take part in each max",
                 "zero": "PyLate's evaluator: a shorter document's padding counts as similarity 0"}


def write_outputs(cfg: DictConfig, plan: EvaluationPlan, outcome: EvaluationOutcome, out: Path) -> None:
    write_json(out / "environment.json", environment(plan, outcome))
    if not outcome.complete:
        return
    write_csv(out / "results.csv", outcome.results)
    write_parquet(out / "results.parquet", outcome.results)
    write_parquet(out / "per_query.parquet", outcome.per_query)
    encoded, reused = len(outcome.encoding.encoded), len(outcome.encoding.reused)
    context = ReportContext(
        benchmark=plan.benchmark, models=outcome.models, baseline_model=cfg.report.get("baseline_model"),
        title=f"nanobeir-ext: {plan.benchmark}, {len(plan.cells)} cells",
        data_notes=tuple(data_notes(outcome)), data_counts=data_counts(outcome.data), warnings=outcome.data.losses,
        expected_subsets=plan.subsets, expected_cells=tuple((c.doc_lang, c.query_lang) for c in plan.cells),
        per_query=outcome.per_query,
        run_notes=(f"encoder passes: {encoded} made, {reused} reused from the store "
                   f"({outcome.encoding.seconds:.1f} s encoding)",
                   f"retrieval: exact MaxSim, retrieval.padding={plan.padding} "
                   f"({PADDING_NOTES[plan.padding]}), top-{plan.k}, {plan.device}"
                   + ("; BM25 ranks with its own per-(subset, document language) index"
                      if any(s.ranks_directly for s in plan.models) else ""),
                   f"data: benchmark.empty_texts={plan.data_rules.empty_texts}, "
                   f"benchmark.strict={str(plan.data_rules.strict).lower()}",
                   *unpinned_notes(plan, outcome)))
    write_report(outcome.results, context, out, figures_enabled=bool(cfg.report.get("figures", True)))
    revision = dataset_revision(plan.source)  # resolved once for every model's card
    for label in outcome.models:
        write_text(out / "model_index" / f"{slug(label.name)}.yaml",
                   model_index_yaml(outcome.results, label.name, dataset_revision=revision))


@logged
def run(cfg: DictConfig, out_dir: str | Path | None = None, encoder_factory=default_encoder_factory) -> dict[str, Any]:
    """Evaluate as configured; returns a summary (used by tests and multirun sweeps)."""
    configure_runtime(cfg.runtime)
    out = output_dir(cfg, out_dir)
    held = held_log_files(out)  # nothing enters the folder before the run owns it
    check_evaluation(cfg)  # every setting checkable without encoding, before any model loads
    plan = build_plan(cfg)

    def checked_encoder(spec: ModelSpec, plan: EvaluationPlan):
        encoder = encoder_factory(spec, plan)
        warn_about_lengths(encoder, spec.key)
        return encoder

    kind = "evaluation" if plan.shard is None else f"shard {cfg.shard}"
    with owned_folder(out, cfg, run_fingerprint(cfg), kind=kind, outputs=EVALUATION_OUTPUTS, held=held):
        write_text(out / "config.yaml", resolved_yaml(cfg))
        log.info("output folder: %s", out)
        outcome = run_evaluation(plan, checked_encoder, runs_dir=out / "runs" if plan.shard is None else None)
        write_outputs(cfg, plan, outcome, out)
    log.info("encoder passes: %d made, %d reused; outputs in %s", len(outcome.encoding.encoded),
             len(outcome.encoding.reused), out)
    return {"out_dir": str(out), "encoded": len(outcome.encoding.encoded), "reused": len(outcome.encoding.reused),
            "complete": outcome.complete}


@hydra.main(config_path="../configs", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
