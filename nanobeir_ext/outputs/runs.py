"""Reading finished run folders back (for reports that combine separate jobs)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nanobeir_ext.protocol import ModelLabel
from nanobeir_ext.evaluation.results import combine, results_from_per_query


@dataclass(frozen=True)
class RunFolder:
    path: Path
    per_query: pd.DataFrame
    environment: dict
    overrides: tuple[str, ...] = ()  # the job's command-line overrides (Hydra's .hydra/overrides.yaml)

    @property
    def labels(self) -> list[ModelLabel]:
        return [ModelLabel.from_dict(m) for m in self.environment.get("models", [])]

    @property
    def baseline_model(self) -> str | None:
        """The delta-table baseline the run was configured with (its config.yaml), if any."""
        config = self.path / "config.yaml"
        if not config.exists():
            return None
        import yaml

        return ((yaml.safe_load(config.read_text()) or {}).get("report") or {}).get("baseline_model")

    @property
    def benchmark(self) -> str:
        return str(self.environment.get("benchmark", {}).get("name", "unknown"))


def read_run(path: Path) -> RunFolder:
    path = Path(path)
    per_query = path / "per_query.parquet"
    if not per_query.exists():
        raise FileNotFoundError(f"{path} is not a finished evaluation run (no per_query.parquet); "
                                "a shard run only fills the store: run the final job without shard=")
    env_file = path / "environment.json"
    environment = json.loads(env_file.read_text()) if env_file.exists() else {}
    overrides_file = path / ".hydra" / "overrides.yaml"
    import yaml

    overrides = tuple(yaml.safe_load(overrides_file.read_text()) or ()) if overrides_file.exists() else ()
    return RunFolder(path=path, per_query=pd.read_parquet(per_query), environment=environment, overrides=overrides)


_VALUE_KEYS = ["benchmark", "subset", "doc_lang", "query_lang", "query_id", "metric"]


def _overlapping_models(runs: list[RunFolder]) -> set[str]:
    """Models that two runs both report for the same (subset, cell, query, metric): sweep variants,
    not parts of one evaluation split across jobs."""
    seen: dict[str, set[tuple]] = {}
    overlapping = set()
    for run in runs:
        for model, rows in run.per_query.groupby("model", observed=True):
            keys = set(map(tuple, rows[_VALUE_KEYS].itertuples(index=False, name=None)))
            if keys & seen.get(model, set()):
                overlapping.add(model)
            seen.setdefault(model, set()).update(keys)
    return overlapping


def _variant_suffixes(runs: list[RunFolder]) -> list[str]:
    """What tells each run apart: its overrides not shared by every run, else its folder name."""
    common = set.intersection(*(set(r.overrides) for r in runs)) if runs else set()
    return [", ".join(o for o in r.overrides if o not in common) or r.path.name for r in runs]


def combine_runs(runs: list[RunFolder]) -> tuple[pd.DataFrame, pd.DataFrame, list[ModelLabel]]:
    """Per-query rows of all runs, results recomputed from them, and one label per model.

    Runs that split one evaluation (models, languages, shards) merge as they are. Where two runs
    report the same model for the same keys (a sweep over settings), each run's copy of that model
    is labelled with what distinguishes the run, e.g. ``LFM2 [retrieval.k=10]``."""
    variants = _overlapping_models(runs)
    suffixes = _variant_suffixes(runs)
    frames, labels = [], {}
    for run, suffix in zip(runs, suffixes):
        rename = {m: f"{m} [{suffix}]" for m in variants}
        frame = run.per_query.copy()
        frame["model"] = frame["model"].map(lambda m: rename.get(m, m))
        frames.append(frame)
        for label in run.labels:
            label = dataclasses.replace(label, name=rename.get(label.name, label.name))
            if label.name in labels and labels[label.name] != label:
                raise ValueError(f"model {label.name!r} was produced differently in two runs: "
                                 f"{labels[label.name]} vs {label}")
            labels[label.name] = label
    per_query = combine(frames)
    return per_query, results_from_per_query(per_query), list(labels.values())


def find_runs(roots: list[Path]) -> list[Path]:
    """Run folders under the given folders (a sweep's parent folder expands to its jobs)."""
    found = []
    for root in roots:
        root = Path(root)
        if (root / "per_query.parquet").exists():
            found.append(root)
        else:
            found += sorted(p.parent for p in root.glob("*/per_query.parquet"))
    if not found:
        raise FileNotFoundError(f"no evaluation runs (per_query.parquet) under {[str(r) for r in roots]}")
    return found
