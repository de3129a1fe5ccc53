"""Combining separate jobs' run folders: split evaluations merge, sweep variants are labelled."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nanobeir_ext.evaluation.results import results_from_per_query, sort_long
from nanobeir_ext.outputs.combine import combine_runs
from nanobeir_ext.outputs.folders import read_folder
from tests.compare.test_comparisons import label, make_per_query, make_run


def _with_overrides(run_dir: Path, overrides: list[str]) -> Path:
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    return run_dir


def test_runs_that_split_the_models_merge_as_they_are(tmp_path: Path) -> None:
    a, b = make_per_query(("model-a",), seed=1), make_per_query(("model-b",), seed=2)
    runs = [read_folder(make_run(tmp_path / "a", a)), read_folder(make_run(tmp_path / "b", b))]
    per_query, results, labels = combine_runs(runs)
    expected = sort_long(pd.concat([a, b], ignore_index=True))
    pd.testing.assert_frame_equal(per_query.reset_index(drop=True), expected.astype(per_query.dtypes.to_dict()))
    pd.testing.assert_frame_equal(results, results_from_per_query(expected).astype(results.dtypes.to_dict()))
    assert [m.name for m in labels] == ["model-a", "model-b"]


def test_the_same_model_in_two_runs_is_a_sweep_variant_named_by_its_override(tmp_path: Path) -> None:
    per_query = make_per_query(("model-a",))
    shifted = per_query.assign(value=per_query["value"] / 2)
    runs = [read_folder(_with_overrides(make_run(tmp_path / "k10", per_query), ["experiment=smoke", "retrieval.k=10"])),
            read_folder(_with_overrides(make_run(tmp_path / "k20", shifted), ["experiment=smoke", "retrieval.k=20"]))]
    per_query_all, results, labels = combine_runs(runs)
    assert sorted(m.name for m in labels) == ["model-a [retrieval.k=10]", "model-a [retrieval.k=20]"]
    means = results[results["subset"] == "mean"].groupby("model")["value"].mean()
    assert means["model-a [retrieval.k=20]"] == pytest.approx(means["model-a [retrieval.k=10]"] / 2)
    assert len(per_query_all) == 2 * len(per_query)


def test_one_model_produced_differently_in_two_runs_is_refused(tmp_path: Path) -> None:
    run_a = make_run(tmp_path / "a", make_per_query(("model-a",), langs=("de",)))
    run_b = make_run(tmp_path / "b", make_per_query(("model-a",), langs=("fr",)))
    (run_b / "environment.json").write_text(json.dumps({"models": [label("model-a", "random-init")]}))
    with pytest.raises(ValueError, match="produced differently"):
        combine_runs([read_folder(run_a), read_folder(run_b)])


def test_a_folder_without_per_query_scores_is_named(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "a", make_per_query())
    (run_dir / "per_query.parquet").unlink()
    with pytest.raises(ValueError, match=f"{run_dir}.*per-query"):
        combine_runs([read_folder(run_dir)])
