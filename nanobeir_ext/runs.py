"""Reading finished run folders back (for reports that combine separate jobs)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nanobeir_ext.report import ModelLabel
from nanobeir_ext.results import combine, results_from_per_query


@dataclass(frozen=True)
class RunFolder:
    path: Path
    per_query: pd.DataFrame
    environment: dict

    @property
    def labels(self) -> list[ModelLabel]:
        fields = ModelLabel.__dataclass_fields__
        return [ModelLabel(**{k: v for k, v in m.items() if k in fields}) for m in self.environment.get("models", [])]

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
    return RunFolder(path=path, per_query=pd.read_parquet(per_query), environment=environment)


def combine_runs(runs: list[RunFolder]) -> tuple[pd.DataFrame, pd.DataFrame, list[ModelLabel]]:
    """Per-query rows of all runs (a value reported twice must agree), results recomputed from them,
    and one label per model."""
    per_query = combine([r.per_query for r in runs])
    labels: dict[str, ModelLabel] = {}
    for run in runs:
        for label in run.labels:
            if label.name in labels and labels[label.name] != label:
                raise ValueError(f"model {label.name!r} was produced differently in two runs: "
                                 f"{labels[label.name]} vs {label}")
            labels[label.name] = label
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
