"""Runs killed (SIGKILL, as by the OOM killer or a lost node) at chosen writes lose nothing: the
same command afterwards removes the leftovers and gives byte-identical results."""
from __future__ import annotations

import json

import pytest

from runners import evaluate
from tests.faults.common import cli, temp_files, tiny_cfg
from tests.faults.conftest import new_cache

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("point", ["store-entry", "results.parquet", "run.json"])
def test_a_run_killed_at_a_write_resumes_to_identical_results(tmp_path, reference, fixture_models, warm_cache, point):
    reference_run, _ = reference
    # The store entry is written while encoding: kill that on a cold store; the others at the end.
    cache = new_cache(tmp_path / "cold", fixture_models) if point == "store-entry" else warm_cache
    out = tmp_path / "run"
    code, output = cli(out, cache, kill_at=point)
    assert code == -9, output[-3000:]
    assert json.loads((out / "run.json").read_text())["status"] == "running"  # what a crash leaves
    left = temp_files(cache if point == "store-entry" else out)
    assert left and all(p.name.startswith(f".") for p in left)  # the write died between temp file and rename
    if point == "store-entry":
        assert not list((cache / "store").rglob("*.safetensors"))
    resumed = evaluate.run(tiny_cfg(cache), out_dir=out)
    assert resumed["encoded"] == (4 if point == "store-entry" else 0)
    assert (out / "results.csv").read_bytes() == (reference_run / "results.csv").read_bytes()
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert not temp_files(out)
